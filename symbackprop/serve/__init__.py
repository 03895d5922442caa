"""The answer page: students check their answers in a browser, every attempt kept in SQLite.

It serves one exercise set (``exercises --students``): a student logs in with their id and the
access code on their sheet, sees their own sheet, types an answer with a live preview of the
math (KaTeX, shipped in ``static/``: nothing comes from another site) and gets ``check``'s
verdict.  One module per concern::

    checking     Checking       -> every question of every student prepared; answers in killable workers
    database     Submissions    -> the attempts, committed before the verdict is sent
    page         Pages          -> the HTML (the student's sheet, the instructor's counts), escaped
    app          Server         -> routes, who may see what, body, rate and in-flight limits
    connections  HeadersInTime  -> a connection sends its request's headers in time, or is closed

Needs the ``serve`` extra (Starlette, uvicorn): ``pip install 'symbackprop[serve]'``.
"""
from __future__ import annotations

import secrets
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from .. import grading
from ..errors import SpecError
from ..exercises import ExerciseSet
from ..exercises import load as load_set
from ..progress import progress as progress_line

try:
    import uvicorn

    from .app import RATE_PER_MINUTE, Server, application
    from .connections import HeadersInTime
except ModuleNotFoundError as missing:  # the extra is not installed
    raise SpecError("serve", f"needs {missing.name}: pip install 'symbackprop[serve]'") from None
from .checking import Checking
from .database import Submissions
from .page import Pages

__all__ = ["Checking", "Pages", "Server", "Submissions", "application", "run", "servable", "serve_until_stopped"]


def servable(path: str | Path) -> ExerciseSet:
    """The exercise set at ``path``, if students can log in to it."""
    made = load_set(path)
    if not made.per_student:
        raise SpecError(str(path), "is one sheet for everyone; serve a set written with `exercises --students "
                                   "ROSTER.csv`, whose students log in with their codes")
    if any(v.code_hash is None for v in made.variants):
        raise SpecError(str(path), "holds no access codes; write it again with `exercises --students` (the codes "
                                   "in its folder's codes.csv are kept)")
    return made


def _listening(host: str, port: int) -> socket.socket:
    try:
        sock = socket.create_server((host, port), reuse_port=False)
    except OSError as error:
        raise SpecError("--port", f"cannot listen on {host}:{port} ({error.strerror}); choose another --port "
                                  "or --host") from None
    sock.set_inheritable(False)
    return sock


#: An admin token shorter than this is refused: it guards every student's attempts.
MIN_ADMIN_TOKEN = 16


def run(path: str | Path, host: str = "127.0.0.1", port: int = 8000, db: str | Path = "submissions.sqlite",
        admin_token: str | None = None, workers: int | None = None, seconds: float = grading.SECONDS_PER_ANSWER,
        rate: int = RATE_PER_MINUTE, say: Callable[[str], None] = print) -> None:
    """Serve the set at ``path`` until Ctrl-C, which ends it with one line on stderr."""
    try:
        serve_until_stopped(path, host, port, db, admin_token, workers, seconds, rate, say)
    except KeyboardInterrupt:
        print("serve: stopped by Ctrl-C", file=sys.stderr)


def serve_until_stopped(path: str | Path, host: str = "127.0.0.1", port: int = 8000,
                        db: str | Path = "submissions.sqlite", admin_token: str | None = None,
                        workers: int | None = None, seconds: float = grading.SECONDS_PER_ANSWER,
                        rate: int = RATE_PER_MINUTE, say: Callable[[str], None] = print) -> None:
    """:func:`run`, leaving an interrupt (KeyboardInterrupt) to the caller, as the command line
    reports it with its own exit status."""
    if rate < 1:  # checked before the preparation, which takes minutes
        raise SpecError("--rate-limit", f"must be at least 1 request per student a minute, not {rate}")
    if not 0 <= port <= 65535:
        raise SpecError("--port", f"must be from 0 to 65535, not {port}")
    if admin_token is not None and len(admin_token) < MIN_ADMIN_TOKEN:
        raise SpecError("--admin-token", f"is {len(admin_token)} characters; use at least {MIN_ADMIN_TOKEN}, or "
                                         "leave it out and a new token is drawn and printed")
    made = servable(path)
    _listening(host, port).close()  # a taken port is reported now, not after the preparation
    submissions = Submissions(db)
    say(f"preparing {len(made.questions)} questions for {len(made.variants)} students (once, before serving)")
    with progress_line("preparing the questions", len(made.variants) * len(made.questions)) as bar:
        checking = Checking(made, workers, seconds, bar.advance)  # forks the workers: before any socket
    try:
        pages = Pages(made)
        token = admin_token or secrets.token_urlsafe(18)
        server = Server(made, checking, submissions, pages, token, rate)
        sock = _listening(host, port)
        shown = f"[{host}]" if ":" in host else host
        say(f"serving {len(made.variants)} students, {len(made.questions)} questions at "
            f"http://{shown}:{sock.getsockname()[1]}/ (instructor: /admin), attempts in {db}")
        if admin_token is None:
            say(f"admin token: {token}")
        config = uvicorn.Config(application(server), log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=5, http=HeadersInTime)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        checking.close()
