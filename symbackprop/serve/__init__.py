"""The answer page: students check their answers in a browser, every attempt kept in SQLite or PostgreSQL.

It serves one exercise set (``exercises --students``): a student logs in with their id and the
access code on their sheet, sees their own sheet, types an answer with a live preview of the
math (KaTeX, shipped in ``static/``: nothing comes from another site) and gets ``check``'s
verdict.  One module per concern::

    checking     Checking       -> every question of every student prepared; answers in killable workers
    database     Submissions    -> the attempts (and the rate limit's requests), committed before the verdict is sent
    postgres     PostgresSubmissions -> the same in PostgreSQL, for several processes or hosts on one database
    page         Pages          -> the HTML (the student's sheet, the instructor's counts), escaped
    app          Server         -> routes, who may see what, body, rate and in-flight limits
    connections  HeadersInTime  -> a connection sends its request's headers in time, or is closed

Needs the ``serve`` extra (Starlette, uvicorn): ``pip install 'symbackprop[serve]'``.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from .. import grading
from ..errors import SpecError
from ..exercises import ExerciseSet
from ..exercises import load as load_set
from ..grading.workers import die_with
from ..limits import MAX_PROCESSES
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

__all__ = ["Checking", "Pages", "Server", "Submissions", "application", "open_database", "run", "servable",
           "serve_until_stopped"]


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


def open_database(db: str | Path) -> Submissions:
    """The attempts' store: PostgreSQL for a postgresql:// URL (:mod:`.postgres`), else the SQLite file."""
    if isinstance(db, str) and db.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresSubmissions  # psycopg only for this

        return PostgresSubmissions(db)
    return Submissions(db)


def run(path: str | Path, host: str = "127.0.0.1", port: int = 8000, db: str | Path = "submissions.sqlite",
        admin_token: str | None = None, workers: int | None = None, seconds: float = grading.SECONDS_PER_ANSWER,
        rate: int = RATE_PER_MINUTE, say: Callable[[str], None] = print, processes: int = 1) -> None:
    """Serve the set at ``path`` until Ctrl-C, which ends it with one line on stderr."""
    try:
        serve_until_stopped(path, host, port, db, admin_token, workers, seconds, rate, say, processes)
    except KeyboardInterrupt:
        print("serve: stopped by Ctrl-C", file=sys.stderr)


def serve_until_stopped(path: str | Path, host: str = "127.0.0.1", port: int = 8000,
                        db: str | Path = "submissions.sqlite", admin_token: str | None = None,
                        workers: int | None = None, seconds: float = grading.SECONDS_PER_ANSWER,
                        rate: int = RATE_PER_MINUTE, say: Callable[[str], None] = print, processes: int = 1) -> None:
    """:func:`run`, leaving an interrupt (KeyboardInterrupt) to the caller, as the command line
    reports it with its own exit status.  ``processes`` serve on the one port, each with its
    checking workers (``workers`` each; by default the cores shared among them)."""
    if rate < 1:  # checked before the preparation, which takes minutes
        raise SpecError("--rate-limit", f"must be at least 1 request per student a minute, not {rate}")
    if not 0 <= port <= 65535:
        raise SpecError("--port", f"must be from 0 to 65535, not {port}")
    if admin_token is not None and len(admin_token) < MIN_ADMIN_TOKEN:
        raise SpecError("--admin-token", f"is {len(admin_token)} characters; use at least {MIN_ADMIN_TOKEN}, or "
                                         "leave it out and a new token is drawn and printed")
    if not 1 <= processes <= MAX_PROCESSES:
        raise SpecError("--processes", f"must be from 1 to {MAX_PROCESSES}, not {processes}")
    made = servable(path)
    _listening(host, port).close()  # a taken port is reported now, not after the preparation
    submissions = open_database(db)
    say(f"preparing {len(made.questions)} questions for {len(made.variants)} students (once, before serving)")
    with progress_line("preparing the questions", len(made.variants) * len(made.questions)) as bar:
        checking = Checking(made, workers or max(1, (os.cpu_count() or 1) // processes), seconds, bar.advance)
    pages = Pages(made)
    token = admin_token or secrets.token_urlsafe(18)
    server = Server(made, checking, submissions, pages, token, rate)
    sock = _listening(host, port)
    shown = f"[{host}]" if ":" in host else host
    say(f"serving {len(made.variants)} students, {len(made.questions)} questions at "
        f"http://{shown}:{sock.getsockname()[1]}/ (instructor: /admin), attempts in {submissions.path}"
        + (f", {processes} processes" if processes > 1 else ""))
    if admin_token is None:
        say(f"admin token: {token}")

    def serve_here() -> None:
        checking.start()  # forks the workers: before any connection is accepted
        try:
            config = uvicorn.Config(application(server), log_level="warning", access_log=False, lifespan="off",
                                    timeout_graceful_shutdown=5, http=HeadersInTime)
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            checking.close()

    if processes == 1:
        serve_here()
    else:
        processes_on_one_socket(processes, serve_here)


def processes_on_one_socket(count: int, serve_here: Callable[[], None]) -> None:
    """``serve_here`` in ``count`` forked processes that accept on the socket they inherit; this one
    passes SIGTERM and SIGINT on to them, replaces one that dies, and returns when all have ended.
    Each ends with this one, however this one ends (the checking workers' PR_SET_PDEATHSIG)."""
    parent, stopping = os.getpid(), []

    def fork() -> int:
        child = os.fork()
        if child == 0:
            for sig in (signal.SIGTERM, signal.SIGINT):  # until its server sets its own
                signal.signal(sig, signal.SIG_DFL)
            die_with(parent, [])
            status = 0
            try:
                serve_here()
            except BaseException:  # noqa: BLE001 - told on stderr; the parent starts another
                traceback.print_exc()
                status = 1
            finally:
                os._exit(status)
        return child

    children = {fork() for _ in range(count)}

    def stop(signum, _frame) -> None:
        stopping.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while children:
            try:
                ended, _ = os.wait()
            except ChildProcessError:
                break
            if ended in children:
                children.discard(ended)
                if not stopping:
                    children.add(fork())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
