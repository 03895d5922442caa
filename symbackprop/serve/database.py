"""Every attempt in SQLite (the standard library's), committed before the student gets the verdict.

WAL mode, so readers (the admin page) never block the writer; ``synchronous=FULL``, so a
committed attempt survives a crash of the machine, not only of the server; a busy timeout, so
two servers on one file take turns instead of failing.  The schema carries its version in
``PRAGMA user_version`` and is created, in one exclusive transaction, by the first server that
opens an empty file.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import SpecError
from ..grading import Verdict

VERSION = 2
#: version 2 added the requests of the rate limit (shared by every server on the file)
REQUESTS = """
CREATE TABLE requests (student TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX requests_by_student ON requests (student, at);
"""
SCHEMA = """
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    student TEXT NOT NULL,
    question TEXT NOT NULL,
    target TEXT NOT NULL,
    answer TEXT NOT NULL,
    verdict TEXT NOT NULL,
    result TEXT NOT NULL,  -- check --json's object
    time TEXT NOT NULL     -- UTC, ISO 8601
);
CREATE INDEX attempts_by_student ON attempts (student, id);
""" + REQUESTS
#: a request older than this no longer counts against the rate limit
WINDOW_SECONDS = 60
BUSY_SECONDS = 10.0
COLUMNS = ["id", "student", "question", "target", "answer", "verdict", "result", "time"]


def _columns(connection: sqlite3.Connection) -> list[str]:
    """The columns of the attempts table, in order (none when there is no such table)."""
    return [row[1] for row in connection.execute("PRAGMA table_info(attempts)")]


@dataclass(frozen=True)
class Attempt:
    id: int
    student: str
    question: str
    target: str
    answer: str
    verdict: Verdict
    time: str

    def as_row(self) -> dict:
        """The columns of a submissions CSV (``grade``'s input), with the attempt's time."""
        return {"id": str(self.id), "student": self.student, "question": self.question, "answer": self.answer,
                "time": self.time}


class Submissions:
    """The attempts in the SQLite file at ``path``; one connection per thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        try:
            self._create()
        except sqlite3.Error as error:
            raise SpecError("--db", f"cannot use {self.path} as the submissions database ({error})") from None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    def _connection(self) -> sqlite3.Connection:
        if getattr(self._local, "connection", None) is None:
            self._local.connection = self._connect()
        return self._local.connection

    def _create(self) -> None:
        """The schema, by whichever server comes first; its own connection, closed again (the
        checking workers are forked after this and must hold no database handle)."""
        with contextlib.closing(self._connect()) as connection:
            self._create_in(connection)

    def _create_in(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN EXCLUSIVE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version == 0 and not tables:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {VERSION}")
            elif version not in (0, 1, VERSION):
                raise SpecError("--db", f"{self.path} has schema version {version}; this symbackprop reads "
                                        f"version {VERSION}; use another --db file")
            elif _columns(connection) != COLUMNS:  # another application's file, whatever its version says
                raise SpecError("--db", f"{self.path} is not a database of attempts (it holds the tables "
                                        f"{', '.join(sorted(tables))}); use another --db file")
            elif "requests" not in tables:  # of version 1: the rate limit's table added
                for statement in REQUESTS.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {VERSION}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def record(self, student: str, question: str, target: str, answer: str, verdict: Verdict) -> Attempt:
        """Store one attempt; it is on disk when this returns."""
        time = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        cursor = self._connection().execute(
            "INSERT INTO attempts (student, question, target, answer, verdict, result, time) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (student, question, target, answer, verdict.verdict, json.dumps(verdict.as_dict()), time))
        return Attempt(cursor.lastrowid, student, question, target, answer, verdict, time)

    def take(self, student: str, per_minute: int) -> int | None:
        """Count one request of ``student`` against ``per_minute`` in any 60 s, for every server on
        the file; None when it is allowed, else the seconds until it would be.  Its own connection,
        without a sync per commit (a counter lost in a power cut is no loss)."""
        if getattr(self._local, "limits", None) is None:
            self._local.limits = self._connect()
            self._local.limits.execute("PRAGMA synchronous=NORMAL")
        connection, now = self._local.limits, time.time()
        connection.execute("BEGIN IMMEDIATE")
        try:
            wait = count_request(connection, "?", student, now, per_minute)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return wait

    def attempts(self, student: str | None = None, latest: int | None = None) -> list[Attempt]:
        """One student's attempts (or everyone's), oldest first; ``latest``: only the last so many."""
        return select_attempts(self._connection(), "?", student, latest)

    def counts(self, column: str) -> dict[str, dict[str, int]]:
        """Per ``student`` or per ``question``: how many attempts had each verdict."""
        return count_verdicts(self._connection(), column)


def select_attempts(connection, mark: str, student: str | None, latest: int | None) -> list[Attempt]:
    """:meth:`Submissions.attempts` on an open connection whose driver's placeholder is ``mark``."""
    where, arguments = (f"WHERE student = {mark}", [student]) if student is not None else ("", [])
    query = f"SELECT id, student, question, target, answer, result, time FROM attempts {where} ORDER BY id"
    if latest is not None:
        query = f"SELECT * FROM ({query} DESC LIMIT {mark}) AS latest ORDER BY id"
        arguments.append(latest)
    rows = connection.execute(query, arguments).fetchall()
    return [Attempt(n, s, q, t, a, Verdict(**json.loads(r)), time) for n, s, q, t, a, r, time in rows]


def count_verdicts(connection, column: str) -> dict[str, dict[str, int]]:
    """:meth:`Submissions.counts` on an open connection."""
    if column not in ("student", "question"):
        raise ValueError(column)
    counts: dict[str, dict[str, int]] = {}
    query = f"SELECT {column}, verdict, COUNT(*) FROM attempts GROUP BY {column}, verdict ORDER BY {column}"
    for key, verdict, count in connection.execute(query).fetchall():
        counts.setdefault(key, {})[verdict] = count
    return counts


def count_request(connection, mark: str, student: str, now: float, per_minute: int) -> int | None:
    """The rate limit's step in an open transaction (``mark``: the driver's placeholder): forget
    requests older than the window, then refuse or count this one."""
    connection.execute(f"DELETE FROM requests WHERE student = {mark} AND at <= {mark}", (student, now - WINDOW_SECONDS))
    count, oldest = connection.execute(f"SELECT COUNT(*), MIN(at) FROM requests WHERE student = {mark}",
                                       (student,)).fetchone()
    if count >= per_minute:
        return int(WINDOW_SECONDS - (now - oldest)) + 1
    connection.execute(f"INSERT INTO requests (student, at) VALUES ({mark}, {mark})", (student, now))
    return None
