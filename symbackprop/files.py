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

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

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


def check_targets(paths: Iterable[Path], inputs: Iterable[Path] = ()) -> None:
    """Raise SpecError when one of ``paths`` is an input or a folder, or their folder unusable."""
    paths = [Path(p) for p in paths]
    for folder in dict.fromkeys(p.parent for p in paths):
        check_folder(folder)
    read = {Path(p).resolve() for p in inputs}
    for path in paths:
        if path.resolve() in read:
            raise SpecError(str(path), "is also an input of this run; write the output to another path")
        if path.is_dir():
            raise SpecError(str(path), "is a folder; remove it or write the output to another path")


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
