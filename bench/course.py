"""A whole course: writing, grading and serving an exercise set of 300 and of 1,000 students, this
version next to a baseline version (``--baseline DIR``) in the same run.

Run: python bench/course.py [--baseline DIR] [--students 300,1000] [--db postgresql://...]   (bench/run.py prints the same
table after its own).  Every command runs in a fresh interpreter with an empty cache folder of its
own, as a lecturer's first run would:

* ``exercises 2-3-1 --students ROSTER --format md`` (six questions, the default);
* ``grade SET key.csv`` (every answer right) and ``grade SET wrong.csv`` (every answer of the key
  negated, each still incorrect with its diagnosis; both from a cold cache);
* the same three on the README's convolutional spec (:data:`CONV_SPEC`: four questions, two of them
  each student's own kernel and bias gradients), as ratios to the layered set's in the same run;
* ``serve``: seconds from the start of the command to its first answered ``/api/check``, with an
  empty cache and again (a restart) with the cache the first start left;
* then every student logs in once (their code verified, as the page does when it opens) and every
  student posts one check from the key at the same time, each on a connection of their own (up to
  :data:`CONCURRENCY` at once): how many got 200, requests per second, the 95th percentile.

A command of the baseline still running after :data:`TIMEOUT` seconds is stopped and shown as such.
"""
from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TIMEOUT = 150.0
#: the README's spec of *Convolutional networks*: a 1x5x5 image, a 3x3 conv layer of 2 channels
#: with padding, 2x2 max pooling, a dense softmax layer
CONV_STEPS = ("conv exercises", "conv grade key", "conv grade wrong")
CONV_SPEC = """[network]
input_shape = [1, 5, 5]
loss = "cross_entropy"

[[network.layer]]
kind = "conv"
channels = 2
kernel = [3, 3]
padding = 1
activation = "tanh"

[[network.layer]]
kind = "max_pool"
size = [2, 2]

[[network.layer]]
kind = "dense"
units = 3
activation = "softmax"
"""
CONCURRENCY = 300
TOKEN = "bench-admin-token"
#: Runs ``python -m symbackprop`` from the directory in argv[1], ahead of an editable install of
#: this checkout (whose import hook would otherwise win over PYTHONPATH).
FROM_DIRECTORY = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in "
                   "repr(f).lower()]; sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'symbackprop'; "
                   "runpy.run_module('symbackprop', run_name='__main__', alter_sys=True)")


def launcher(tree: str) -> list[str]:
    return [sys.executable, "-c", FROM_DIRECTORY, os.path.abspath(tree)]


def timed(command: list[str], environment: dict) -> tuple[float, float] | None:
    """(wall seconds, CPU seconds of the command and every process it waited for), None after
    :data:`TIMEOUT`.  On a machine shared with other work the CPU seconds compare; wall time
    grows with the load."""
    start, before = time.perf_counter(), _children_cpu()
    try:
        subprocess.run(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=TIMEOUT, check=True)
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - start, _children_cpu() - before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_cpu(pid: int) -> float:
    """CPU seconds so far of a running process and its living descendants (the checking workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/stat") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
        total = sum(int(x) for x in fields[11:15]) / tick  # utime, stime, and of waited children
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as stream:
                total += sum(_tree_cpu(int(child)) for child in stream.read().split())
    except OSError:  # ended meanwhile
        return 0.0
    return total


def _request(port: int, path: str, data: dict | None = None) -> tuple[int, float]:
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        if data is None:
            connection.request("GET", path)
        else:
            connection.request("POST", path, json.dumps(data), {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        connection.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_start(command: list[str], environment: dict, first: dict) -> tuple[tuple | None, subprocess.Popen, int]:
    """(wall, CPU) seconds from starting ``serve`` to its first answered check (``first``), and the server."""
    port = _free_port()
    start = time.perf_counter()
    process = subprocess.Popen([*command, "--port", str(port), "--admin-token", TOKEN, "--rate-limit", "100000"],
                               env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.perf_counter() - start < TIMEOUT and process.poll() is None:
        try:
            if _request(port, "/api/check", first)[0] == 200:
                return (time.perf_counter() - start, _tree_cpu(process.pid)), process, port
        except OSError:
            time.sleep(0.05)
    return None, process, port


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def concurrent_checks(port: int, logins: list[dict], checks: list[dict]) -> dict:
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda body: _request(port, "/api/student", body), logins))
        start = time.perf_counter()
        answered = list(pool.map(lambda body: _request(port, "/api/check", body), checks))
        elapsed = time.perf_counter() - start
    times = sorted(seconds for _, seconds in answered)
    return {"ok": sum(status == 200 for status, _ in answered), "count": len(answered),
            "rate": len(answered) / elapsed, "p95": times[int(0.95 * (len(times) - 1))],
            "median": statistics.median(times)}


def _wrong(key: Path, wrong: Path) -> None:
    """Every answer of the key negated: a sign error in each, which grading must diagnose."""
    with open(key, encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    with open(wrong, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, ["id", "student", "question", "answer"])
        writer.writeheader()
        writer.writerows({**row, "answer": f"-({row['answer']})"} for row in rows)


def written_and_graded(command: list[str], network: str, roster: Path, scratch: Path, prefix: str, fresh) -> dict:
    """``exercises`` on ``network`` for the roster, then ``grade`` of its key and of every key answer
    negated, each from a cold cache; steps named with ``prefix``."""
    scratch.mkdir()
    steps = [f"{prefix}{step}" for step in ("exercises", "grade key", "grade wrong")]
    try:
        return dict(zip(steps, _written_and_graded(command, network, roster, scratch, prefix, fresh)))
    except subprocess.CalledProcessError as error:  # e.g. a baseline without exercises on that network
        return dict.fromkeys(steps, f"exit {error.returncode}")


def _written_and_graded(command: list[str], network: str, roster: Path, scratch: Path, prefix: str, fresh) -> list:
    row = {f"{prefix}exercises": timed([*command, "exercises", network, "--students", str(roster), "--format", "md",
                                        "-o", str(scratch / "set")], fresh(f"{prefix}exercises"))}
    toml, key = scratch / "set" / "exercises.toml", scratch / "set" / "key.csv"
    _wrong(key, scratch / "wrong.csv")
    for step, answers in (("grade key", key), ("grade wrong", scratch / "wrong.csv")):
        row[prefix + step] = timed([*command, "grade", str(toml), str(answers), "-o", str(scratch / step.replace(" ", "-"))],
                                   fresh(prefix + step))
    return list(row.values())


def measure(tree: str, students: int, scratch: Path, db: str | None = None) -> dict:
    """The course's commands for ``students`` with the package in ``tree``; ``serve`` on the database
    ``db`` (a postgresql:// URL) when given, else on a new SQLite file."""
    command = launcher(tree)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    fresh = lambda name: {**base, "XDG_CACHE_HOME": str(scratch / f"cache-{name}")}
    roster = scratch / "roster.csv"
    roster.write_text("student\n" + "".join(f"s{n:04d}\n" for n in range(students)), encoding="utf-8")
    spec = scratch / "conv.toml"
    spec.write_text(CONV_SPEC, encoding="utf-8")
    row = {}
    for prefix, network in (("", "2-3-1"), ("conv ", str(spec))):
        row.update(written_and_graded(command, network, roster, scratch / f"{prefix.strip() or 'layered'}", prefix,
                                      fresh))
    toml, key = scratch / "layered" / "set" / "exercises.toml", scratch / "layered" / "set" / "key.csv"
    with open(scratch / "layered" / "set" / "codes.csv", encoding="utf-8") as stream:
        codes = {r["student"]: r["code"] for r in csv.DictReader(stream)}
    with open(key, encoding="utf-8") as stream:
        answers = [r for r in csv.DictReader(stream) if r["question"] == "q4"]
    checks = [{"student": r["student"], "code": codes[r["student"]], "question": "q4", "answer": r["answer"]}
              for r in answers]
    serve = [*command, "serve", str(toml)]
    for label, environment in (("serve start", fresh("serve")), ("serve restart", fresh("serve"))):
        database = db or str(scratch / f"{label.replace(' ', '-')}.sqlite")
        row[label], process, port = serve_start([*serve, "--db", database], environment, checks[0])
        try:
            if label == "serve restart" and row[label] is not None:
                row["concurrent"] = concurrent_checks(port, [{"student": c["student"], "code": c["code"]}
                                                             for c in checks], checks)
        finally:
            stop(process)
    return row


def course(trees: dict[str, str], counts: list[int], db: str | None = None) -> list[dict]:
    rows = []
    for students in counts:
        row = {"students": students}
        for name, tree in trees.items():
            print(f"  course of {students}: {name} ...", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as scratch:
                row[name] = measure(tree, students, Path(scratch), db)
        rows.append(row)
    return rows


def _seconds(value) -> str:
    if isinstance(value, str):  # the command failed
        return value
    return f"> {TIMEOUT:.0f} s" if value is None else f"{value[0]:.1f} s ({value[1]:.1f} s CPU)"


def _ratio(a, b) -> str:
    """b / a in wall time and in CPU time, when both ran."""
    if not isinstance(a, tuple) or not isinstance(b, tuple):
        return ""
    return f"{b[0] / a[0]:.1f} ({b[1] / a[1]:.1f} CPU)"


def report(rows: list[dict]) -> None:
    seconds, ratio = _seconds, _ratio
    trees = [name for name in rows[0] if name != "students"]
    print("\nA course (2-3-1, six questions; each command in a fresh interpreter, cold cache unless said)\n")
    header = ["students", "step", *trees, *(["baseline / this"] if "baseline" in trees else [])]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---:", "---"] + ["---:"] * (len(header) - 2)) + "|")
    for row in rows:
        for step in ("exercises", "grade key", "grade wrong", "serve start", "serve restart", *CONV_STEPS):
            cells = [seconds(row[t].get(step)) for t in trees]
            extra = [ratio(row["this"][step], row["baseline"][step])] if "baseline" in trees else []
            print(f"| {row['students']:,} | {step} | " + " | ".join(cells + extra) + " |")
        shown = []
        for t in trees:
            c = row[t].get("concurrent")
            shown.append("not run" if c is None else
                         f"{c['ok']}/{c['count']} ok, {c['rate']:.0f}/s, p95 {c['p95']:.2f} s")
        print(f"| {row['students']:,} | concurrent checks (codes verified) | " + " | ".join(shown)
              + (" | |" if "baseline" in trees else " |"))
    print("\nThe README's convolutional spec (four questions, two of each student's own numbers) against 2-3-1 "
          "(six), in the same run\n")
    print("| students | step | " + " | ".join(f"{t}: 2-3-1 | {t}: conv | {t}: conv / 2-3-1" for t in trees) + " |")
    print("|" + "|".join(["---:", "---"] + ["---:"] * (3 * len(trees))) + "|")
    for row in rows:
        for step in ("exercises", "grade key", "grade wrong"):
            cells = [cell for t in trees for cell in (seconds(row[t][step]), seconds(row[t][f"conv {step}"]),
                                                      ratio(row[t][step], row[t][f"conv {step}"]))]
            print(f"| {row['students']:,} | {step} | " + " | ".join(cells) + " |")
    if len(rows) > 1:
        steps = ("grade key", "grade wrong", "serve start")
        growth = {t: [(rows[-1][t][s][0] / rows[0][t][s][0], rows[-1][t][s][1] / rows[0][t][s][1]) for s in steps
                      if rows[-1][t].get(s) and rows[0][t].get(s)] for t in trees}
        print(f"\n{rows[-1]['students']:,} / {rows[0]['students']:,} students ({', '.join(steps)}), wall and CPU: "
              + "; ".join(f"{t}: " + ", ".join(f"{w:.1f}x ({c:.1f}x CPU)" for w, c in growth[t]) for t in trees))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a directory with an earlier version (git archive COMMIT | tar -x -C DIR)")
    parser.add_argument("--students", default="300,1000", help="class sizes, comma-separated (default 300,1000)")
    parser.add_argument("--db", help="serve on this PostgreSQL database (postgresql://USER@HOST:PORT/DB) instead "
                                     "of a new SQLite file")
    args = parser.parse_args()
    trees = {"this": str(Path(__file__).resolve().parent.parent), **({"baseline": args.baseline} if args.baseline else {})}
    report(course(trees, [int(n) for n in args.students.split(",")], args.db))


if __name__ == "__main__":
    main()
