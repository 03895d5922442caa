"""The attempts in PostgreSQL, for several server processes or hosts on one database.

The same guarantees as the SQLite file (:mod:`.database`): an attempt is committed (and, with
PostgreSQL's default ``synchronous_commit``, flushed to its disk) before the verdict is sent; the
schema carries its version (table ``symbackprop_schema``) and is created by the first server, under
an advisory lock so that servers started together do not race; tables of another application, or
another version, are refused.  What every server must agree on lives here too: the rate limit's
requests, counted under a lock per student, on the database's clock.  A code once verified is
remembered by each server process in its memory only (a fast digest of every code in a shared
database would undo the slow hash).

Text PostgreSQL cannot hold (a NUL character, a lone surrogate) is stored as U+2400 and U+FFFD.
Needs the ``postgres`` extra (psycopg 3): ``pip install 'symbackprop[serve,postgres]'``.
"""
from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
from datetime import datetime, timezone

from ..errors import SpecError
from ..grading import Verdict
from .database import Attempt, count_request, count_verdicts, select_attempts

try:
    import psycopg
except ModuleNotFoundError:
    raise SpecError("--db", "a PostgreSQL database needs psycopg: pip install 'symbackprop[serve,postgres]'") from None

VERSION = 1
SCHEMA = """
CREATE TABLE symbackprop_schema (version INTEGER NOT NULL);
CREATE TABLE attempts (
    id BIGSERIAL PRIMARY KEY,
    student TEXT NOT NULL,
    question TEXT NOT NULL,
    target TEXT NOT NULL,
    answer TEXT NOT NULL,
    verdict TEXT NOT NULL,
    result TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX attempts_by_student ON attempts (student, id);
CREATE TABLE requests (student TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE INDEX requests_by_student ON requests (student, at);
"""
OURS = ("symbackprop_schema", "attempts", "requests")
#: the advisory lock the first server holds while it creates the schema (any fixed number)
SCHEMA_LOCK = 0x5B9_0001
#: connections per server process, shared by its threads
CONNECTIONS = 8
CONNECT_SECONDS = 10
URL = re.compile(r"postgres(ql)?://")


def is_url(db: str) -> bool:
    return bool(URL.match(str(db)))


def _storable(text: str) -> str:
    return text.replace("\0", "\u2400").encode("utf-8", "surrogatepass").decode("utf-8", "replace")


class PostgresSubmissions:
    """The attempts in the PostgreSQL database at ``url`` (postgresql://USER@HOST:PORT/DB)."""

    def __init__(self, url: str):
        self.url, self.path = url, _without_password(url)
        self._free: queue.LifoQueue = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        try:
            with contextlib.closing(self._open()) as connection:  # not kept: workers are forked after this
                self._create(connection)
        except psycopg.Error as error:
            raise SpecError("--db", f"cannot use {self.path} as the submissions database ({_first_line(error)})") from None

    def _open(self):
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_SECONDS)

    @contextlib.contextmanager
    def _connection(self):
        """One of this process's connections (at most :data:`CONNECTIONS`, opened when first needed);
        one that broke is closed and replaced on the next use."""
        with self._lock:
            opening = self._free.empty() and self._opened < CONNECTIONS
            self._opened += opening
        try:
            connection = self._open() if opening else self._free.get()
        except BaseException:
            with self._lock:
                self._opened -= opening
            raise
        try:
            yield connection
        finally:
            if connection.closed or connection.broken:
                with self._lock:
                    self._opened -= 1
                connection.close()
            else:
                self._free.put(connection)

    def _create(self, connection) -> None:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            present = {name for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(%s)",
                (list(OURS),))}
            if not present:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute("INSERT INTO symbackprop_schema (version) VALUES (%s)", (VERSION,))
                return
            if "symbackprop_schema" not in present:
                raise SpecError("--db", f"{self.path} holds tables of another application ({', '.join(sorted(present))}); "
                                        "use a database of its own for the attempts")
            found = connection.execute("SELECT version FROM symbackprop_schema").fetchall()
            if found != [(VERSION,)]:
                shown = found[0][0] if len(found) == 1 else found
                raise SpecError("--db", f"{self.path} has schema version {shown}; this symbackprop reads version "
                                        f"{VERSION}; use another database")

    def record(self, student: str, question: str, target: str, answer: str, verdict: Verdict) -> Attempt:
        """Store one attempt; it is committed when this returns."""
        time = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        cells = [_storable(x) for x in (student, question, target, answer, verdict.verdict)]
        with self._connection() as connection:
            (number,) = connection.execute(
                "INSERT INTO attempts (student, question, target, answer, verdict, result, time) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (*cells, _storable(json.dumps(verdict.as_dict())), time)).fetchone()
        return Attempt(number, student, question, target, answer, verdict, time)

    def take(self, student: str, per_minute: int) -> int | None:
        """As :meth:`.database.Submissions.take`, for every process and host on the database: under
        a lock per student, on the database's clock."""
        with self._connection() as connection, connection.transaction():
            connection.execute("SET LOCAL synchronous_commit = off")  # a counter lost in a crash is no loss
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_storable(student),))
            (now,) = connection.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
            return count_request(connection, "%s", _storable(student), now, per_minute)

    def attempts(self, student: str | None = None, latest: int | None = None) -> list[Attempt]:
        with self._connection() as connection:
            return select_attempts(connection, "%s", None if student is None else _storable(student), latest)

    def counts(self, column: str) -> dict[str, dict[str, int]]:
        with self._connection() as connection:
            return count_verdicts(connection, column)


def _without_password(url: str) -> str:
    """The URL as shown in messages: a password in it replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

