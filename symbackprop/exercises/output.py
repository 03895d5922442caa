"""Writing a set of files whole: all of them, or none changed.

Every file is first written into a temporary folder inside the destination and only then
moved into place, so a failure while writing (a full disk, a bad path) leaves what was there.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import SpecError


def write_files(directory: str | Path, files: dict[str, str], option: str = "-o") -> list[Path]:
    """``files`` (path relative to ``directory`` -> text) written into ``directory``; the paths."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory, prefix=".writing-"))
    except OSError as error:
        raise SpecError(option, f"cannot write into {directory} ({error.strerror})") from None
    try:
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text, encoding="utf-8")
        for name in files:
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, directory / name)
    except OSError as error:
        raise SpecError(option, f"cannot write {directory} ({error.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [directory / name for name in files]
