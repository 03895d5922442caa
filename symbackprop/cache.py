"""Results kept on disk between runs: a cold ``check`` reads the references an earlier run prepared.

Preparing one target derives two test networks and generates their code (0.4 s, most of a
cold ``check``); the result goes to the user's cache folder, ``$XDG_CACHE_HOME/symbackprop``
or else ``~/.cache/symbackprop``, one file per key.  Deleting the folder, or any file in it,
at any time only costs the next run that time again.

* **Key:** SHA-256 of what the result depends on: the source of this package (any change of
  code is a new key, not only a new version number), the versions of Python, SymPy and
  NumPy, the function's name and the *content* of its arguments (a network by its layers,
  activations, loss and units, values by their numbers).  The key is stored in the file
  again and compared after loading.
* **Format: pickle**, because a prepared target holds SymPy expressions, NumPy arrays and
  the notation, and a JSON form of it would be a second copy of the checker's data model to
  keep in step.  Unpickling can run code, so a file is read only from a folder this user
  owns with mode 0700 (created so), only when the file too is this user's, is a regular file
  (not a link) and is writable by nobody else: whoever can put a file there can already run
  code as this user.  Any other state disables the cache (results are computed, never read).
* **Writes** are atomic (a temporary file, renamed); a file that fails to load, has another
  key or the wrong type is ignored and replaced.  Failures to write are ignored too: the
  cache can only save time, never change a result.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from .files import write_atomically

#: Set to "0" to neither read nor write the cache (tests, benchmarks of a cold start).
SWITCH = "SYMBACKPROP_CACHE"


def folder() -> Path | None:
    """The cache folder, created 0700 when missing; None when it is unusable or unsafe."""
    if os.environ.get(SWITCH) == "0":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "symbackprop"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077
    return path if private else None


def library_file(name: str) -> str | bool:
    """A path for a library's own cache in the folder (lark's parser tables: building them
    took 0.1 s of every cold start, loading them 0.01 s), or False without a usable folder.
    Lark checks the grammar's digest stored in the file and rebuilds when it differs."""
    place = folder()
    return str(place / name) if place is not None else False


@lru_cache(maxsize=1)
def _code() -> str:
    """Digest of this package's source and of the libraries' versions it computes with."""
    import numpy
    import sympy

    digest = hashlib.sha256(f"{sys.version} {sympy.__version__} {numpy.__version__}".encode())
    for source in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _content(value) -> bytes:
    """The bytes a result depends on: arrays by their numbers, networks by their structure
    (layers, groups with their activations, loss; the units of a general graph), the rest
    (strings, numbers, a notation) by its repr."""
    import numpy as np

    from .network import Network
    from .numerics import Values

    if isinstance(value, Network):
        units = None if value.layers else value.units  # a layered network is its layers and groups
        return repr((value.layers, value.groups, value.outputs, value.loss, bool(value.biases), units)).encode()
    if isinstance(value, Values):
        names = "\0".join(p.name for p in value.parameters).encode()
        numbers = np.array(list(value.parameters.values()), dtype=float)
        return b"|".join([np.asarray(value.inputs, float).tobytes(), np.asarray(value.targets, float).tobytes(),
                          names, numbers.tobytes()])
    return repr(value).encode()


def key(name: str, *arguments) -> str:
    digest = hashlib.sha256(f"{_code()}|{name}".encode())
    for argument in arguments:
        digest.update(b"\0" + _content(argument))
    return digest.hexdigest()


def _read(path: Path, expected_key: str, kind: type):
    """The stored result, or None when the file is missing, not safe to unpickle, or not
    what was asked for."""
    try:
        with open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NOFOLLOW)) as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
            stored_key, result = pickle.load(stream)
    except Exception:  # noqa: BLE001 - missing, truncated, written by other code: compute again
        return None
    return result if stored_key == expected_key and isinstance(result, kind) else None


def remembered(compute: Callable, *arguments, kind: type):
    """``compute(*arguments)``, read from the cache when an earlier run stored it (and of
    type ``kind``), else computed and stored."""
    place = folder()
    if place is None:
        return compute(*arguments)
    expected = key(f"{compute.__module__}.{compute.__qualname__}", *arguments)
    path = place / f"{expected}.pickle"
    result = _read(path, expected, kind)
    if result is None:
        result = compute(*arguments)
        try:
            write_atomically(path, pickle.dumps((expected, result), protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, pickle.PicklingError, AttributeError, TypeError):
            pass
    return result
