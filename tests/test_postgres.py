"""serve on PostgreSQL: a throwaway server (Debian's initdb and pg_ctl, run as an unprivileged user
when the tests run as root), two serve processes on one database behaving as one server, and
``serve --processes``.  Skipped, with the reason, where PostgreSQL or psycopg is absent.

Witnesses: what one server answered 200 is read back through the other's export and straight from
the database with psycopg; the rate limit is counted by the requests sent to both."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from test_serve import TOKEN, Running, free_port, made  # noqa: F401 - the set the answer page's tests write

psycopg = pytest.importorskip("psycopg", reason="psycopg not installed: pip install -e '.[serve,postgres]'")
BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None) or (
    os.path.dirname(shutil.which("initdb")) if shutil.which("initdb") else None)
pytestmark = pytest.mark.skipif(BIN is None, reason="PostgreSQL's initdb and pg_ctl not found (.ci/run installs "
                                                    "Debian's postgresql)")


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on a free loopback port, its files in a folder of its own; as root, run as
    the unprivileged user nobody (PostgreSQL refuses root)."""
    folder = tempfile.mkdtemp(prefix="symbackprop-postgres-")
    os.chmod(folder, 0o755)
    user = None
    if os.getuid() == 0:
        user = pwd.getpwnam("nobody")
        os.chown(folder, user.pw_uid, user.pw_gid)
    as_user = {"user": user.pw_uid, "group": user.pw_gid} if user else {}
    data, port = os.path.join(folder, "data"), free_port()
    run = lambda *command: subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=folder,
                                          check=True, **as_user)
    run(f"{BIN}/initdb", "-D", data, "-U", "symbackprop", "--auth=trust", "-E", "UTF8", "--no-locale")
    run(f"{BIN}/pg_ctl", "-D", data, "-l", os.path.join(folder, "log"), "-w", "-o",
        f"-p {port} -k {folder} -h 127.0.0.1", "start")
    try:
        yield f"postgresql://symbackprop@127.0.0.1:{port}"
    finally:
        subprocess.run([f"{BIN}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True, timeout=60,
                       cwd=folder, **as_user)
        shutil.rmtree(folder, ignore_errors=True)


def _database(server: str, name: str) -> str:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


def test_two_servers_on_one_database_are_one_server(made, postgres):
    url = _database(postgres, "shared")
    first, second = Running(made["toml"], url, "--rate-limit", "10000"), None
    try:
        second = Running(made["toml"], url, "--rate-limit", "10000")
        jobs = [((first, second)[n % 2], f"b * {n}") for n in range(40)]
        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(lambda job: job[0].check(made, "bob", "q2", job[1])[0], jobs))
        assert statuses == [200] * 40
        for running in (first, second):  # an attempt made through one is in the other's export
            assert sorted(row["answer"] for row in running.export()) == sorted(answer for _, answer in jobs)
        answered = [f"a * {n}" for n in range(10) if first.check(made, "ann", "q1", f"a * {n}")[0] == 200]
        first.stop(signal.SIGKILL)  # what it answered 200 is committed
        exported = [row["answer"] for row in second.export() if row["student"] == "ann"]
        assert exported == answered and len(answered) == 10
    finally:
        for running in (first, second):
            if running is not None:
                running.stop()
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT COUNT(*) FROM attempts").fetchone() == (50,)
        assert connection.execute("SELECT version FROM symbackprop_schema").fetchall() == [(1,)]


@pytest.mark.parametrize("where", ["postgres", "sqlite"])
def test_a_students_rate_limit_is_one_limit_across_servers(made, postgres, tmp_path, where):
    url = _database(postgres, "limited") if where == "postgres" else str(tmp_path / "limited.sqlite")
    servers = [Running(made["toml"], url, "--rate-limit", "5") for _ in range(2)]
    try:
        statuses = [servers[n % 2].check(made, "ann", "q1", "a_k")[0] for n in range(5)]
        assert statuses == [200] * 5
        for running in servers:  # the sixth request, through either server, is over the one limit
            status, body = running.check(made, "ann", "q1", "a_k")
            assert status == 429 and "minute" in body["error"]
        assert servers[1].check(made, "bob", "q1", "a_k")[0] == 200  # a limit per student
    finally:
        for running in servers:
            running.stop()


def test_the_schema_of_another_application_or_version_is_refused(made, postgres, tmp_path):
    foreign, other = _database(postgres, "foreign_app"), _database(postgres, "other_version")
    with psycopg.connect(foreign, autocommit=True) as connection:
        connection.execute("CREATE TABLE attempts (id INTEGER, what TEXT)")
    with psycopg.connect(other, autocommit=True) as connection:
        connection.execute("CREATE TABLE symbackprop_schema (version INTEGER)")
        connection.execute("INSERT INTO symbackprop_schema VALUES (7)")
    for url, expected in ((foreign, "another application"), (other, "schema version 7")):
        done = subprocess.run([os.sys.executable, "-m", "symbackprop", "serve", str(made["toml"]), "--db", url,
                               "--port", str(free_port())], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and expected in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_processes_on_one_port_answer_and_store_every_request(made, postgres):
    url = _database(postgres, "processes")
    running = Running(made["toml"], url, "--rate-limit", "10000", "--processes", "3", "--workers", "1")
    try:
        deadline = time.monotonic() + 60
        serving = set()
        while len(serving) < 3 and time.monotonic() < deadline:  # every process accepts on the one port
            serving = {pid for pid in _children(running.process.pid) if _children(pid)}
            time.sleep(0.2)
        assert len(serving) == 3
        jobs = [f"a * {n}" for n in range(60)]
        with ThreadPoolExecutor(30) as pool:
            statuses = list(pool.map(lambda answer: running.check(made, "ann", "q1", answer)[0], jobs))
        assert statuses == [200] * 60
        assert sorted(row["answer"] for row in running.export()) == sorted(jobs)
    finally:
        running.stop()
    assert running.process.returncode == 0


def _children(pid: int) -> list[int]:
    found = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(task) as stream:
            found += [int(x) for x in stream.read().split()]
    return found
