"""Reading what users name and writing what they asked for, without losing anything.

Inputs are read up to a size limit, never whole (a path may name ``/dev/zero``).  Outputs
are written as a set: notes and their figure, a report's CSV and summary.  The set is
written into a temporary folder beside the targets, whose name says what it is
(``.symbackprop-<pid>-....tmp``), then each file is renamed into place: a run that is
killed leaves its old files whole and at most that folder, which the next run writing
there recognises (its process is gone) and removes.  Before anything is moved, every
target is checked: none may be an input of the run or a folder, so a refusal leaves every
existing file as it was.  New files get the user's umask (0644 under umask 022).
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
from contextlib import contextmanager
from collections.abc import Iterable, Mapping
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .errors import SpecError

_PREFIX = ".symbackprop-"
_TEMPORARY = re.compile(rf"{re.escape(_PREFIX)}(\d+)-\w+\.tmp")


def read_bounded(path: str | Path, limit: int, what: str, hint: str = "", too_large: str = "") -> bytes:
    """The bytes of ``path``, refused once more than ``limit`` (devices and pipes included);
    ``hint`` and ``too_large`` are what to do when it cannot be read, or is too large."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as error:
        tail = f"; {hint}" if hint else ""
        raise SpecError(str(path), f"cannot read it as a {what} ({error.strerror}){tail}") from None
    if len(data) > limit:
        size = f"{limit // 2**20} MB" if limit % 2**20 == 0 else f"{limit:,} bytes"
        tail = f"; {too_large}" if too_large else ""
        raise SpecError(str(path), f"is larger than {size}, the limit for a {what}{tail}")
    return data


def read_toml(path: str | Path, limit: int, what: str, hint: str = "") -> dict:
    """A TOML file of at most ``limit`` bytes as a table; one SpecError when it cannot be read, is not
    UTF-8 TOML, or nests too deeply to parse (tomllib recurses: 5,000 levels raised RecursionError)."""
    raw = read_bounded(path, limit, what, hint)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SpecError(str(path), f"is not valid TOML: {error}") from None
    except RecursionError:
        raise SpecError(str(path), f"nests arrays or tables too deeply to read; a {what} needs a few levels") from None


#: Separators spreadsheets use instead of commas (a semicolon where the comma is the decimal mark).
SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def separator_hint(header: list[str], required) -> str:
    """Why the header lacks its columns when the file is separated by something else than commas."""
    line = ",".join(header)
    for separator, name in SEPARATORS.items():
        if set(required) <= {cell.strip().lower() for cell in line.split(separator)}:
            return (f": its columns are separated by {name}; save the file with commas as separators "
                    "(CSV, comma-delimited)")
    return ""


def write_atomically(path: Path, content: str | bytes) -> None:
    """One private file (mode 0600) written as a set of one: the cache of prepared references."""
    write_set({Path(path): content}, mode=0o600)


def write_set(texts: Mapping[Path, str | bytes], replaces: Iterable[Path] = (), inputs: Iterable[Path] = (),
              mode: int | None = None) -> list[Path]:
    """Write ``texts`` (path -> text or bytes, in one folder and its subfolders) as one set; the
    paths written.

    ``replaces`` are older members of the set that this one has no use for (the figure of
    notes written without one): removed once the new files are in place.  Raises
    SpecError, before any file is touched, when a target is an input or a folder, or the
    folder cannot be written.  New files get the umask's mode, or ``mode``.  An exercise
    set's sheets go into a subfolder per student: every file is staged in the one folder
    they share, then renamed into place.
    """
    paths = [Path(p) for p in texts]
    folder = Path(os.path.commonpath([p.parent for p in paths])) if len(paths) > 1 else paths[0].parent
    check_targets(paths, inputs)
    stale = [Path(p) for p in replaces if Path(p) not in texts and os.path.lexists(p)]
    check_not_inputs(stale, inputs)
    try:
        for parent in dict.fromkeys(p.parent for p in paths):
            parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SpecError(str(folder), f"cannot create this folder ({error.strerror}); choose another") from None
    remove_abandoned(folder)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", suffix=".tmp", dir=folder))
    except OSError as error:
        raise SpecError(str(folder), f"cannot write into this folder ({error.strerror})") from None
    staged = {path: scratch / str(n) for n, path in enumerate(paths)}  # flat: the names may repeat per folder
    try:
        for path, text in zip(paths, texts.values()):
            staged[path].write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
            if mode is not None:  # before the rename: the scratch folder is private meanwhile
                os.chmod(staged[path], mode)
        for path in paths:
            os.replace(staged[path], path)
        for path in stale:
            path.unlink()
    except OSError as error:
        raise SpecError(str(folder), f"cannot write the files ({error.strerror})") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return paths


def replace_folder(folder: Path, texts: Mapping[str, str | bytes], inputs: Iterable[Path] = (),
                   modes: Mapping[str, int] | None = None) -> list[Path]:
    """Make ``texts`` (path inside ``folder`` -> text or bytes) the files of ``folder`` in one step; the
    paths written.

    For a set whose files must agree with each other (an exercise set: its sheets and the numbers
    it grades by), renaming file by file is not enough: an interrupt between two renames leaves
    a mix.  The new folder is staged beside ``folder`` (``.symbackprop-<pid>-....tmp``), with
    everything else ``folder`` holds hard-linked into it, then the two directory entries are
    exchanged in one system call (Linux ``renameat2``; elsewhere two renames with the interrupting
    signals held).  What cannot be carried over that way (a subfolder the set writes into that is a
    symbolic link, anything on another file system, a mount point) is refused, as an output that is
    an input is, before anything is touched.  ``modes``: name -> mode of files kept private.
    """
    link = Path(folder)
    check_targets([link / name for name in texts], inputs)
    real = link.resolve() if link.exists() else link.absolute()  # a link to the folder stays a link
    subfolders = {(real / name).parent for name in texts} - {real}
    if real.exists():
        _check_replaceable(real, subfolders)
    check_folder(real.parent)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SpecError(str(real.parent), f"cannot create this folder ({error.strerror}); choose another") from None
    remove_abandoned(real.parent)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", suffix=".tmp", dir=real.parent))
    except OSError as error:
        raise SpecError(str(real.parent), f"cannot write into this folder ({error.strerror}), which is needed "
                                          f"to replace {link.name} as a whole") from None
    try:
        os.chmod(stage, stat.S_IMODE(real.stat().st_mode) if real.exists() else 0o777 & ~_umask())
        if real.exists():
            _link_tree(real, stage, real.stat().st_dev)
        for name, text in texts.items():
            path = stage / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # a kept hard link of the old file: never written through
            path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
            if modes and name in modes:
                os.chmod(path, modes[name])
        if real.exists():
            here = Path.cwd()
            _exchange(stage, real)
            if here == real or real in here.parents:
                os.chdir(here)  # this process's folder was the old one: the same path now names the new one
        else:
            os.rename(stage, real)
    except OSError as error:
        raise SpecError(str(link), f"cannot write the files ({error.strerror})") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # the old folder once exchanged, else the unfinished one
    return [link / name for name in texts]


def _check_replaceable(real: Path, subfolders: set[Path]) -> None:
    """Refuse what the new folder could not hold as the old one does: the folder a mount point, or a
    folder the set writes into a symbolic link (its files would be written through it, at once)."""
    if os.path.ismount(real):
        raise SpecError(str(real), "is a mount point, which cannot be replaced as a whole; write the set into a "
                                   "folder inside it")
    for sub in sorted(subfolders):
        if sub.is_symlink():
            raise SpecError(str(sub), f"is a symbolic link (to {os.readlink(sub)}); the set replaces its folder "
                                      "as a whole, so a folder it writes into must be a real folder inside it: "
                                      "replace the link by a folder")


def _link_tree(source: Path, stage: Path, device: int) -> None:
    """Everything in ``source`` hard-linked into ``stage`` (folders made anew with their modes,
    symbolic links copied as links); a folder on another file system is refused."""
    for entry in os.scandir(source):
        target = stage / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            if entry.stat().st_dev != device:
                raise SpecError(entry.path, "is on another file system (a mount point), which cannot be carried "
                                            "over when the set's folder is replaced; move it out of the folder")
            target.mkdir()
            os.chmod(target, stat.S_IMODE(entry.stat().st_mode))
            _link_tree(Path(entry.path), target, device)
        else:
            try:
                os.link(entry.path, target)
            except OSError as error:
                raise SpecError(entry.path, f"cannot be carried over into the set's new folder ({error.strerror}); "
                                            "move it out of the folder") from None


@contextmanager
def _signals_held():
    """Ctrl-C, SIGTERM and SIGHUP wait until the block ends (where threads can mask signals)."""
    held = {signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])}
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(new: Path, old: Path) -> None:
    """Swap the directory entries ``new`` and ``old`` (``new`` then names the old folder)."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    if renameat2 is not None:
        renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        if renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(old), _RENAME_EXCHANGE) == 0:
            return
        number = ctypes.get_errno()
        if number not in (errno.ENOSYS, errno.EINVAL):  # EINVAL: this file system cannot exchange
            raise OSError(number, os.strerror(number), str(old))
    aside = new.with_name(f"{new.name[:-len('.tmp')]}_old.tmp")
    with _signals_held():  # no interrupt between the renames
        os.rename(old, aside)
        try:
            os.rename(new, old)
        except OSError:
            os.rename(aside, old)
            raise
        os.rename(aside, new)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_targets(paths: Iterable[Path], inputs: Iterable[Path] = ()) -> None:
    """Raise SpecError when one of ``paths`` is an input or a folder, or their folder unusable."""
    paths = [Path(p) for p in paths]
    for folder in dict.fromkeys(p.parent for p in paths):
        check_folder(folder)
    check_not_inputs(paths, inputs)
    for path in paths:
        if path.is_dir():
            raise SpecError(str(path), "is a folder; remove it or write the output to another path")


def check_not_inputs(paths: Iterable[Path], inputs: Iterable[Path] = ()) -> None:
    """Raise SpecError when one of ``paths`` (to be written or removed) is an input: one of the
    files ``inputs`` names, or a file that exists in a folder ``inputs`` names, at any depth (a
    templates folder's included parts)."""
    read = {Path(p).resolve() for p in inputs}
    folders = [p for p in read if p.is_dir()]
    for path in paths:
        real = Path(path).resolve()
        if real in read or (real.exists() and any(real.is_relative_to(f) for f in folders)):
            raise SpecError(str(path), "is also an input of this run; write the output to another path")


def check_folder(folder: Path) -> None:
    """Raise SpecError when ``folder`` cannot hold output: a file, a link to nothing, read-only."""
    existing = Path(folder)
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent  # the nearest part of the path that exists
    if existing.is_symlink() and not existing.exists():
        raise SpecError(str(existing), f"is a symbolic link to {os.readlink(existing)}, which does not exist; "
                                       "create that folder or choose another")
    if not existing.is_dir():
        raise SpecError(str(existing), "is a file, not a folder; choose a folder for the output")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SpecError(str(existing), "is a folder you cannot write into; choose another")


def remove_abandoned(folder: Path) -> list[Path]:
    """Remove the temporary folders that killed runs left in ``folder``; the ones removed."""
    removed = []
    for entry in folder.iterdir():
        found = _TEMPORARY.fullmatch(entry.name)
        if found and entry.is_dir() and not _running(int(found.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _running(pid: int) -> bool:
    """Whether process ``pid`` may still be writing; when in doubt, yes (its folder stays)."""
    if os.name == "nt" or pid == os.getpid():  # Windows' os.kill(pid, 0) would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # someone else's process, or no such pid number
        return True
    return True
