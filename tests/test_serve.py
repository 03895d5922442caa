"""The answer page: the real server (``python -m symbackprop serve``) on a free loopback port,
its JSON API, its database through kills and a second server, its pages in a real browser.

Witnesses: each verdict the API gives is compared with ``sb.check`` on the same student's
numbers (another path through the checker); what was stored is read back through the export
and straight from the SQLite file; escaping is read off the admin page's HTML.
"""
from __future__ import annotations

import csv
import functools
import http.client
import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop import grading
from symbackprop.exercises import access, exercise_set

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from hostile import CORPUS
from test_grading import _alive, _children  # the grading tests' look at /proc

TOKEN = "instructor-token-for-tests"
STUDENTS = ["ann", "bob", "d'Arcy&co"]
QUESTIONS = "delta_output,delta_hidden,delta"


def run(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """An exercise set for three students, written by the CLI as a lecturer would."""
    folder = tmp_path_factory.mktemp("set")
    roster = folder / "roster.csv"
    roster.write_text("student,name\n" + "".join(f'"{s}",x\n' for s in STUDENTS), encoding="utf-8")
    result = run("exercises", "2-2-1", "--activation", "sigmoid", "--students", str(roster), "--questions", QUESTIONS, "--seed", "3",
                 "-o", str(folder / "out"))
    assert result.returncode == 0, result.stderr
    out = folder / "out"
    with open(out / "codes.csv", encoding="utf-8") as stream:
        codes = {row["student"]: row["code"] for row in csv.DictReader(stream)}
    with open(out / "key.csv", encoding="utf-8") as stream:
        key = {(row["student"], row["question"]): row["answer"] for row in csv.DictReader(stream)}
    return {"dir": out, "toml": out / "exercises.toml", "codes": codes, "key": key,
            "set": exercise_set.load(out / "exercises.toml")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """One server process on 127.0.0.1."""

    def __init__(self, toml: Path, db: Path, *flags: str):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "symbackprop", "serve", str(toml), "--port", str(self.port), "--db", str(db),
             "--admin-token", TOKEN, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server ended: {self.process.stderr.read()}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the server did not start")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            return response.status, response.read(), response.headers
        finally:
            connection.close()

    def post(self, path: str, data, headers: dict | None = None):
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        status, text, _ = self.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
        return status, json.loads(text)

    def check(self, made, student, question, answer, code=None):
        return self.post("/api/check", {"student": student, "code": code or made["codes"][student],
                                        "question": question, "answer": answer})

    def export(self) -> list[dict]:
        status, text, headers = self.request("GET", "/admin/export.csv", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        return list(csv.DictReader(io.StringIO(text.decode("utf-8"))))

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture(scope="module")
def server(made, tmp_path_factory):
    running = Running(made["toml"], tmp_path_factory.mktemp("db") / "attempts.sqlite", "--rate-limit", "10000")
    yield running
    running.stop()


@functools.cache
def _reference(made_dir: Path, student: str, question: str):
    the_set = exercise_set.load(made_dir / "exercises.toml")
    variant = the_set.variant(student)
    spec = the_set.spec(variant)
    return grading.prepare(spec.network, variant.targets[question], the_set.notation_object, spec.values,
                           spec.learning_rate, sheet=True)  # the page grades a student's sheet


def witness(made, student, question, answer) -> dict:
    """What the checker says of the answer on that student's numbers, in this process (no server,
    no worker), as strict JSON: infinities as the text "Infinity"."""
    verdict = grading.check_prepared(_reference(made["dir"], student, question), answer)
    return json.loads(json.dumps(verdict.as_dict()), parse_constant=str)


# --------------------------------------------------------------------------------------------
# access codes

def test_codes_are_listed_printed_on_each_sheet_and_stored_only_as_hashes(made):
    assert list(made["codes"]) == STUDENTS
    stored = made["toml"].read_text(encoding="utf-8")
    for student, code in made["codes"].items():
        assert code in (made["dir"] / student / "sheet.md").read_text(encoding="utf-8")
        assert code in (made["dir"] / student / "sheet.tex").read_text(encoding="utf-8")
        assert code not in stored and code.replace("-", "") not in stored
        variant = made["set"].variant(student)
        assert access.verify(code, variant.code_hash)
        assert access.verify(code.lower().replace("-", " "), variant.code_hash)  # as typed by hand
        assert not access.verify(code[:-1] + ("2" if code[-1] != "2" else "3"), variant.code_hash)
    other = made["set"].variant("bob").code_hash
    assert not access.verify(made["codes"]["ann"], other)


def test_a_student_left_off_the_roster_and_added_again_keeps_their_code(tmp_path):
    """The red team: written again without bob, the set's codes.csv lost bob's row, and with bob back
    he got a new code, so the sheet he held no longer opened the page."""
    from symbackprop.cli import main

    def write(*students):
        roster = tmp_path / "roster.csv"
        roster.write_text("student\n" + "".join(f"{s}\n" for s in students))
        assert main(["exercises", "2-2-1", "--students", str(roster), "--questions", "delta_output",
                     "--format", "md", "-o", str(tmp_path / "set")]) == 0
        return access.read_codes(tmp_path / "set" / "codes.csv")

    first = write("ann", "bob")
    assert write("ann") == first  # bob's row kept, ann's code unchanged
    assert write("ann", "bob") == first
    made = exercise_set.load(tmp_path / "set" / "exercises.toml")
    assert access.verify(first["bob"], made.variant("bob").code_hash)


def test_codes_are_drawn_at_random_not_from_the_seed():
    first, second = (exercise_set.exercises(sb.compact("2-2-1"), ["ann", "bob"], "delta_output", seed=1)
                     for _ in range(2))
    assert first.codes["ann"] != second.codes["ann"] and first.codes["bob"] != second.codes["bob"]
    assert all(len(code.replace("-", "")) == access.LENGTH for code in first.codes.values())


@settings(max_examples=15, deadline=None)
@given(code=st.text(alphabet=access.ALPHABET, min_size=access.LENGTH, max_size=access.LENGTH),
       other=st.text(alphabet=access.ALPHABET, min_size=access.LENGTH, max_size=access.LENGTH),
       typed=st.lists(st.sampled_from(["lower", "space", "hyphen"]), max_size=3, unique=True))
def test_a_code_verifies_however_it_is_typed_and_no_other_does(code, other, typed):
    stored = access.hash_code(code, "ann", 0)
    shown = code
    for change in typed:
        shown = {"lower": shown.lower(), "space": " ".join(shown), "hyphen": f"{shown[:5]}-{shown[5:]}"}[change]
    assert access.verify(shown, stored)
    assert access.verify(other, stored) == (other == code)


# --------------------------------------------------------------------------------------------
# the JSON API

def test_right_answers_from_the_key_are_correct_and_every_verdict_is_checks(made, server):
    for student in STUDENTS:
        for question in ("q1", "q2", "q3"):
            answer = made["key"][student, question]
            status, verdict = server.check(made, student, question, answer)
            assert status == 200
            assert verdict == witness(made, student, question, answer)
            assert verdict["verdict"] == "correct", (student, question, verdict)


def test_wrong_and_unreadable_answers(made, server):
    cases = [("ann", "q1", "(a_k - t_k)", "incorrect"),                    # the derivative factor left out
             ("ann", "q3", made["key"]["bob", "q3"] + "1", "incorrect"),   # a wrong number
             ("bob", "q2", "\\frac{a_j}{", "cannot read"),
             ("bob", "q1", "(a_k - t_k) g'(z_k) \\\\ = (t_k - a_k) g'(z_k)", "incorrect")]  # line 2 wrong
    for student, question, answer, expected in cases:
        status, verdict = server.check(made, student, question, answer)
        assert status == 200 and verdict["verdict"] == expected, verdict
        assert verdict == witness(made, student, question, answer)
    assert [line["verdict"] for line in verdict["lines"]] == ["correct", "incorrect"]
    # a wrong number is told so, not given the right one (the key stays the instructor's)
    right = made["key"]["ann", "q3"]
    _, verdict = server.check(made, "ann", "q3", "0.5")
    digits = right.lstrip("-0.")[:4]
    assert verdict["verdict"] == "incorrect" and len(digits) == 4 and digits not in json.dumps(verdict)


def test_hostile_answers_run_nothing_and_the_server_goes_on(made, server, tmp_path):
    canary = tmp_path / "canary"
    for text in CORPUS:
        answer = text.format(canary=canary)
        status, verdict = server.check(made, "bob", "q2", answer)
        if len(answer) > sb.grading.reading.MAX_LENGTH:
            assert status == 413 and "at most" in verdict["error"], answer[:40]
        else:
            assert status == 200 and verdict["verdict"] in ("cannot read", "incorrect"), (answer[:60], verdict)
            assert verdict == witness(made, "bob", "q2", answer)
    assert not canary.exists()
    assert server.check(made, "bob", "q1", made["key"]["bob", "q1"])[1]["verdict"] == "correct"


def test_wrong_code_is_401_unknown_question_404_malformed_body_400(made, server):
    status, answer = server.check(made, "ann", "q1", "1", code=made["codes"]["bob"])
    assert status == 401 and "access code" in answer["error"]
    assert server.check(made, "nobody", "q1", "1", code=made["codes"]["ann"])[0] == 401
    status, answer = server.check(made, "ann", "q9", "1")
    assert status == 404 and "q1, q2, q3" in answer["error"]
    for body, said in [(b"{not json", "not JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "not JSON"),
                       (b"[" * 7000 + b"]" * 7000, "nested too deeply"),
                       (json.dumps({"student": "ann", "code": made["codes"]["ann"], "question": "q1"}).encode(),
                        "answer"),
                       (json.dumps({"student": "ann", "code": 7, "question": "q1", "answer": "1"}).encode(), "code")]:
        status, answer = server.post("/api/check", body)
        assert status == 400 and said in answer["error"] and len(answer["error"].splitlines()) == 1, answer


FIELDS = st.sampled_from(["student", "code", "question", "answer"])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12)


def as_body(value) -> bytes:
    return json.dumps(value).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200), JSON_VALUES.map(as_body),
                      st.dictionaries(FIELDS, JSON_VALUES, max_size=4).map(as_body),
                      st.dictionaries(FIELDS, st.sampled_from(["ann", "bob", "q1", "q9", "", "a_k", "\u0000", "<b>"]),
                                      max_size=4).map(as_body)))
def test_no_body_makes_the_api_fail(made, server, body):
    """Any bytes, any JSON: an answer with a reason (400, 401, 404, 413), never a crash."""
    status, text, _ = server.request("POST", "/api/check", body, {"Content-Type": "application/json"})
    answer = json.loads(text)
    assert status in (400, 401, 404, 413) and len(answer["error"].splitlines()) == 1, (status, answer)


def test_a_body_over_the_answer_limit_is_refused_before_it_is_read(made, server):
    from symbackprop.serve.app import MAX_BODY

    assert server.check(made, "ann", "q1", "a" * (MAX_BODY + 10))[0] == 413
    # chunked, with no length declared: refused once the limit is passed, not read to the end
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    chunks = (b"x" * 65536 for _ in range(10_000))  # 650 MB if it were all read
    try:
        connection.request("POST", "/api/check", chunks, {"Content-Type": "application/json"}, encode_chunked=True)
        status = connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        status = 413  # the server answered and closed while the client still sent
    finally:
        connection.close()
    assert status == 413


def test_a_student_sees_their_own_sheet_and_only_their_own_attempts(made, server):
    marker = "a_k * 12345"
    assert server.check(made, "ann", "q1", marker)[0] == 200
    status, ann = server.post("/api/student", {"student": "ann", "code": made["codes"]["ann"]})
    assert status == 200 and marker in [a["answer"] for a in ann["attempts"]]
    status, bob = server.post("/api/student", {"student": "bob", "code": made["codes"]["bob"]})
    assert status == 200 and marker not in json.dumps(bob)
    assert "Sheet of ann" in ann["sheet"] and "Sheet of bob" in bob["sheet"]
    ann_numbers = made["set"].variant("ann").example["inputs"]
    assert all(str(x) in ann["sheet"] for x in ann_numbers)  # their own numbers
    assert server.post("/api/student", {"student": "ann", "code": made["codes"]["bob"]})[0] == 401


def test_ids_answers_and_messages_are_escaped_on_the_pages(made, server):
    hostile = ["<script>alert('stored')</script>", "<img src=x onerror=alert(1)>", "=HYPERLINK(\"http://x\")"]
    for answer in hostile:
        assert server.check(made, "d'Arcy&co", "q1", answer)[0] == 200
    status, page, _ = server.request("GET", "/admin", headers={"Authorization": f"Bearer {TOKEN}"})
    page = page.decode()
    assert status == 200
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;stored&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "d&#39;Arcy&amp;co" in page and "d'Arcy&co" not in page
    _, sheet = server.post("/api/student", {"student": "d'Arcy&co", "code": made["codes"]["d'Arcy&co"]})
    assert "Sheet of d&#39;Arcy&amp;co" in sheet["sheet"]
    rows = server.export()
    cells = [row["answer"] for row in rows if row["student"] == "d'Arcy&co"]
    assert "'=HYPERLINK(\"http://x\")" in cells and "=HYPERLINK(\"http://x\")" not in cells


def test_admin_needs_the_token_and_its_cookie_is_strict_and_csrf_safe(made, server):
    assert server.request("GET", "/admin")[0] == 401
    assert server.request("GET", "/admin", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert server.request("GET", "/admin/export.csv")[0] == 401
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = server.request("POST", "/admin/login", f"token={TOKEN}".encode(),
                                  {**form, "Origin": "http://evil.example"})
    assert status == 403  # a login posted from another site
    assert server.request("POST", "/admin/login", b"token=wrong", form)[0] == 401
    status, _, headers = server.request("POST", "/admin/login", f"token={TOKEN}".encode(),
                                        {**form, "Origin": f"http://127.0.0.1:{server.port}"})
    cookie = headers["Set-Cookie"]
    assert status == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    assert server.request("GET", "/admin", headers=jar)[0] == 200
    assert server.request("GET", "/admin/export.csv", headers=jar)[0] == 200
    # what a cross-site form can send to the students' API: not JSON, so refused, cookie or not
    status, _, _ = server.request("POST", "/api/check", b"student=ann&code=x&question=q1&answer=1", {**form, **jar})
    assert status == 415


def test_admin_counts_per_question_and_per_student(made, server):
    rows = server.export()
    status, page, _ = server.request("GET", "/admin", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    page = page.decode()
    for question, number in (("q1", 1), ("q2", 2), ("q3", 3)):
        mine = [r for r in rows if r["question"] == question]
        counts = [len(mine)] + [sum(r["verdict"] == v for r in mine) for v in ("correct", "incorrect", "cannot read")]
        assert f"<tr><td>{number} ({question})</td>" in page
        assert "".join(f"<td>{n}</td>" for n in counts) in page, question
    assert rows[0].keys() >= {"id", "target", "answer", "student", "question", "time", "verdict", "message",
                              "diagnosis", "counterexample", "first_wrong_line"}


def test_fifty_concurrent_requests_are_all_answered_and_stored(made, server):
    before = len(server.export())
    jobs = [(STUDENTS[n % 3], f"q{n % 3 + 1}", made["key"][STUDENTS[n % 3], f"q{n % 3 + 1}"]) for n in range(50)]

    def one(job):
        start = time.perf_counter()
        status, verdict = server.check(made, *job)
        return status, verdict["verdict"], time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, jobs))
    elapsed = time.perf_counter() - start
    assert [(s, v) for s, v, _ in results] == [(200, "correct")] * 50
    assert len(server.export()) == before + 50
    latencies = sorted(t for *_, t in results)
    print(f"\n50 concurrent: {50 / elapsed:.1f} requests/s, p95 {statistics.quantiles(latencies, n=20)[-1]:.3f} s")


# --------------------------------------------------------------------------------------------
# faults: kill -9, two servers on one file, a dead worker, the rate limit

def test_every_answered_attempt_survives_kill_9_and_a_restart(made, tmp_path):
    db = tmp_path / "attempts.sqlite"
    first = Running(made["toml"], db, "--rate-limit", "10000")
    answered = []
    try:
        for n in range(12):
            answer = f"a_k * {n}"
            status, _ = first.check(made, "ann", "q1", answer)
            assert status == 200
            answered.append(answer)
        workers = _children(first.process.pid)
        assert workers  # the checking workers
    finally:
        first.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers))  # they died with the server
    second = Running(made["toml"], db, "--rate-limit", "10000")
    try:
        assert [row["answer"] for row in second.export()] == answered
        assert second.check(made, "ann", "q1", "a_k")[0] == 200
    finally:
        second.stop()
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA user_version").fetchone() == (2,)
        assert connection.execute("SELECT COUNT(*) FROM attempts").fetchone() == (13,)


def test_two_servers_on_one_database_file_keep_every_attempt(made, tmp_path):
    db = tmp_path / "shared.sqlite"
    servers = [Running(made["toml"], db, "--rate-limit", "10000") for _ in range(2)]
    try:
        jobs = [(servers[n % 2], f"b * {n}") for n in range(40)]
        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(lambda job: job[0].check(made, "bob", "q2", job[1])[0], jobs))
        assert statuses == [200] * 40
        for running in servers:
            assert sorted(row["answer"] for row in running.export()) == sorted(answer for _, answer in jobs)
    finally:
        for running in servers:
            running.stop()
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_gradebook_has_each_students_latest_attempt_per_question(made, tmp_path):
    running = Running(made["toml"], tmp_path / "db.sqlite", "--rate-limit", "10000")
    try:
        for student, question, answer in [("ann", "q1", "1"), ("ann", "q1", made["key"]["ann", "q1"]),
                                          ("ann", "q3", made["key"]["ann", "q3"]), ("ann", "q3", "7"),
                                          ("bob", "q2", made["key"]["bob", "q2"])]:
            assert running.check(made, student, question, answer)[0] == 200
        assert running.request("GET", "/admin/grades.csv")[0] == 401
        status, text, headers = running.request("GET", "/admin/grades.csv", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        running.stop()
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(text.decode("utf-8")))) == [
        ["Student", "SIS Login ID", "Section", "q1", "q2", "q3", "total"], ["ann", "ann", "", "1", "", "0", "1"],
        ["bob", "bob", "", "", "1", "", "1"], ["d'Arcy&co", "d'Arcy&co", "", "", "", "", "0"]]


def test_a_worker_past_its_time_limit_is_replaced_and_the_rate_limit_holds(made, tmp_path):
    running = Running(made["toml"], tmp_path / "db.sqlite", "--rate-limit", "4", "--timeout", "0.0001",
                      "--workers", "1")
    try:
        long_derivation = " \\\\ ".join(["(a_k - t_k) g'(z_k)"] * 30)  # some 0.2 s to check
        for _ in range(3):
            status, verdict = running.check(made, "ann", "q1", long_derivation)
            assert status == 200 and verdict["verdict"] == "cannot read" and "longer than" in verdict["message"]
        assert running.check(made, "ann", "q1", "a_k")[0] == 200  # the fourth: still answered
        status, text, headers = running.request(
            "POST", "/api/check", json.dumps({"student": "ann", "code": "wrong", "question": "q1",
                                              "answer": "1"}).encode(), {"Content-Type": "application/json"})
        assert status == 429 and int(headers["Retry-After"]) > 0 and "minute" in json.loads(text)["error"]
        assert running.check(made, "bob", "q1", made["key"]["bob", "q1"])[0] == 200  # a limit per student
    finally:
        running.stop()


# --------------------------------------------------------------------------------------------
# the command line

def test_bad_sets_and_a_taken_port_exit_2_with_one_line(made, tmp_path):
    run("exercises", "2-2-1", "--questions", "delta_output", "-o", str(tmp_path / "everyone"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for args, said in [((str(tmp_path / "everyone" / "exercises.toml"),), "--students"),
                           ((str(tmp_path / "missing.toml"),), "cannot read"),
                           ((str(made["toml"]), "--port", port), "--port")]:
            result = run("serve", *args, "--db", str(tmp_path / "db.sqlite"), timeout=120)
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
            assert len(result.stderr.strip().splitlines()) == 1 and said in result.stderr, result.stderr
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as connection:
        connection.execute("PRAGMA user_version = 7")
    result = run("serve", str(made["toml"]), "--db", str(newer), "--port", str(free_port()), timeout=120)
    assert result.returncode == 2 and "schema version 7" in result.stderr and "Traceback" not in result.stderr


def test_without_the_serve_extra_the_command_says_how_to_install_it(made, tmp_path):
    blocker = tmp_path / "blocked" / "starlette"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError('no starlette here', name='starlette')\n")
    result = subprocess.run([sys.executable, "-m", "symbackprop", "serve", str(made["toml"])], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path / "blocked")},
                            check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "error: serve: needs starlette: pip install 'symbackprop[serve]'"


def test_the_page_loads_nothing_from_another_site(server):
    status, page, headers = server.request("GET", "/")
    assert status == 200 and "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"  # the page and the API; the shipped files may be cached
    assert b"http://" not in page and b"https://" not in page and b"//cdn" not in page
    for asset in ("/static/katex/katex.min.js", "/static/katex/katex.min.css", "/static/page.js",
                  "/static/katex/fonts/KaTeX_Main-Regular.woff2"):
        status, _, headers = server.request("GET", asset)
        assert status == 200 and headers["Cache-Control"] is None, asset
    css = server.request("GET", "/static/katex/katex.min.css")[1].decode()
    assert "url(http" not in css and ".woff)" not in css


def test_the_wheel_ships_the_page_its_templates_and_katex(tmp_path):
    root = Path(__file__).parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", str(root), "--no-deps", "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    wheel, = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    static = "symbackprop/serve/static/"
    assert {"symbackprop/serve/app.py", static + "page.js", static + "katex/katex.min.js", static + "katex/katex.min.css",
            static + "katex/fonts/KaTeX_Main-Regular.woff2", "symbackprop/templates/serve/page.html",
            "symbackprop/templates/serve/admin.html", "symbackprop/templates/html.j2"} <= names


# --------------------------------------------------------------------------------------------
# a real browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)), reason="needs Debian's chromium "
                    "and chromium-driver (.ci/run installs them)")
def test_a_student_types_an_answer_in_headless_chromium_and_reads_the_verdict(made, server, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        browser.get(f"http://127.0.0.1:{server.port}/")
        browser.find_element(By.ID, "student").send_keys("bob")
        browser.find_element(By.ID, "code").send_keys(made["codes"]["bob"])
        browser.find_element(By.ID, "enter").click()
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: b.find_element(By.ID, "work").is_displayed())
        assert "Sheet of bob" in browser.find_element(By.ID, "sheet").text
        assert browser.find_elements(By.CSS_SELECTOR, "#sheet .katex")  # the sheet's math rendered
        choices = browser.find_elements(By.CSS_SELECTOR, "#questions label")
        assert [c.text.split(".")[0] for c in choices] == ["1", "2", "3"]  # each question as the sheet asks it
        assert choices[0].text.startswith("1. Derive the local gradient") and "output unit" in choices[0].text
        assert "Compute the local gradient" in choices[2].text and choices[2].find_elements(By.CSS_SELECTOR, ".katex")
        box = browser.find_element(By.ID, "answer")
        in_view = "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight;"
        assert browser.execute_script(in_view, box)  # the answer box in the first screen
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        assert browser.execute_script(in_view, box)  # and still in reach at the end of the sheet
        browser.save_screenshot(str(tmp_path / "page.png"))
        browser.execute_script("window.scrollTo(0, 0)")
        choices[0].find_element(By.TAG_NAME, "input").click()
        box.send_keys("(a_k - t_k) g'(z_k)")
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#preview .katex"))  # the live preview
        browser.find_element(By.ID, "check").click()
        wait.until(lambda b: b.find_element(By.ID, "verdict").text not in ("", "checking"))
        assert browser.find_element(By.ID, "verdict").text == "correct"
        box.clear()
        box.send_keys("(a_k - t_k)")
        browser.find_element(By.ID, "check").click()
        wait.until(lambda b: b.find_element(By.ID, "verdict").text not in ("", "checking", "correct"))
        assert browser.find_element(By.ID, "verdict").text == "incorrect"
        assert browser.find_element(By.ID, "message").text
        box.clear()
        box.send_keys("(a_k - t_k) g'(z_k)\n= (t_k - a_k) g'(z_k)")  # a derivation whose second line is wrong
        browser.find_element(By.ID, "check").click()
        wait.until(lambda b: b.find_element(By.ID, "first-wrong-line").text)
        assert browser.find_element(By.ID, "first-wrong-line").text.startswith("First wrong line: 2")
        rows = browser.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")
        assert len(rows) >= 2 and "(a_k - t_k)" in rows[0].text
        origins = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert origins and all(name.startswith(f"http://127.0.0.1:{server.port}/") for name in origins)
        browser.get(f"http://127.0.0.1:{server.port}/admin")  # the instructor logs in with the form
        browser.find_element(By.NAME, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda b: b.find_elements(By.ID, "per-question"))
        assert "Answers so far" in browser.find_element(By.TAG_NAME, "h1").text
        assert "bob" in browser.find_element(By.ID, "per-student").text
    finally:
        browser.quit()


def test_a_question_may_be_sent_as_its_number_or_in_capitals(made, server):
    answer = made["key"][("ann", "q1")]
    for question in ("Q1", "1"):
        status, data = server.check(made, "ann", question, answer)
        assert status == 200 and data["verdict"] == "correct", data
    assert server.check(made, "ann", "4", answer)[0] == 404
    assert {r["question"] for r in server.export() if r["student"] == "ann"} <= {"q1", "q2", "q3"}


def test_an_admin_token_under_16_characters_is_refused(made, tmp_path):
    from symbackprop import serve

    result = run("serve", str(made["toml"]), "--admin-token", "x" * 15, "--db", str(tmp_path / "db.sqlite"),
                 "--port", str(free_port()), timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--admin-token" in result.stderr and "16" in result.stderr and "15" in result.stderr
    with pytest.raises(sb.errors.SpecError, match="16"):
        serve.run(made["toml"], port=free_port(), db=tmp_path / "db.sqlite", admin_token="abc")
    assert not (tmp_path / "db.sqlite").exists()


def _report_mask(connection) -> None:
    connection.send(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_a_worker_starts_with_ctrl_c_held_until_it_ignores_it():
    """The server listens before its workers are forked, so a Ctrl-C can land between a worker's
    fork and its SIG_IGN: it must wait (blocked) rather than raise in the worker."""
    import multiprocessing

    from symbackprop.grading import workers

    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    process = context.Process(target=_report_mask, args=(theirs,), daemon=True)
    workers._fork(process)
    assert signal.SIGINT in mine.recv()  # blocked in the child as it starts
    process.join(10)
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # and never in the parent


def test_ctrl_c_in_serve_run_is_one_line(made, tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: the server and its checking workers."""
    port = free_port()
    script = (f"from symbackprop import serve\nserve.run({str(made['toml'])!r}, port={port}, "
              f"db={str(tmp_path / 'db.sqlite')!r}, admin_token={TOKEN!r}, workers=2)\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "stopped" in err and "serving" in out
