"""One line of progress on a terminal for work that runs longer than a second.

Deriving, generating code for and verifying 784-30-10 takes seconds each; a user at a
terminal should see that something moves.  Nothing is printed when stderr is not a
terminal (pipes, files, tests) or when the work ends within the first second.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Seconds of work before the line appears, and between two updates of it.
DELAY = 1.0
INTERVAL = 0.1


class Progress:
    """Counts finished items of ``total``; :meth:`advance` after each."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self._start = self._shown = time.monotonic()
        self._visible = False
        self._terminal = sys.stderr.isatty()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if not self._terminal:
            return
        now = time.monotonic()
        if now - self._start > DELAY and now - self._shown > INTERVAL:
            self._shown, self._visible = now, True
            shown = min(self.done, self.total)
            sys.stderr.write(f"\r{self.label}: {shown}/{self.total} ({now - self._start:.0f} s)\x1b[K")
            sys.stderr.flush()

    def close(self) -> None:
        """Erase the line, so what the command prints next starts clean."""
        if self._visible:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


@contextmanager
def progress(label: str, total: int) -> Iterator[Progress]:
    """``with progress("deriving", n) as bar: ... bar.advance()``"""
    bar = Progress(label, total)
    try:
        yield bar
    finally:
        bar.close()
