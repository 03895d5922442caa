"""The third red-team pass: each finding reproduced where a user meets it (the real command, the
real server), most severe first."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

import symbackprop as sb

from test_hardening2 import refused, run


def _tree(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes (what a run must leave alone)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1. exercises never writes over one of its own inputs ---------------------------------------

def _set_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "roster.csv").write_text("student\nann\nbob\n")
    assert run("exercises", "2-2-1", "--students", folder / "roster.csv", "--questions", "delta_output,delta",
               "-o", folder).returncode == 0
    return folder


INPUTS_AS_OUTPUTS = [  # (where the input goes, the arguments naming it): each is a file the set writes
    ("codes.csv", "student,code\nann,X\nbob,Y\n", ["--students", "{path}"]),
    ("key.csv", "student\nann\nbob\n", ["--students", "{path}"]),
    ("ann/sheet.md", "student\nann\n", ["--students", "{path}"]),
    ("exercises.toml", '[network]\nlayers = [2, 1]\nactivation = ["sigmoid"]\nloss = "half_sse"\n',
     ["{path}", "--students", "{roster}"]),
]


@pytest.mark.parametrize("name, content, arguments", INPUTS_AS_OUTPUTS, ids=[c[0] for c in INPUTS_AS_OUTPUTS])
def test_exercises_refuses_an_output_that_is_one_of_its_inputs_and_changes_nothing(tmp_path, name, content,
                                                                                 arguments):
    folder = _set_folder(tmp_path)
    (folder / name).write_text(content)
    before = _tree(folder)
    filled = [a.format(path=folder / name, roster=folder / "roster.csv") for a in arguments]
    result = run("exercises", *filled, "--questions", "delta_output", "-o", folder)
    refused(result, f"{folder / name}: is also an input of this run")
    assert _tree(folder) == before


# -- 2. no reply carries a value computed at the worked example's numbers (unless --reveal) -----

def _numbers(data) -> list[float]:
    """Every number anywhere in a JSON value."""
    if isinstance(data, bool) or data is None or isinstance(data, str):
        return []
    if isinstance(data, (int, float)):
        return [float(data)]
    return [x for item in (data.values() if isinstance(data, dict) else data) for x in _numbers(item)]


@pytest.fixture(scope="module")
def worked():
    """Every number of the 2-2-1 network's worked example that is not on a student's sheet (what
    ``example --json`` computes: pre-activations, activations of the computing units, deltas, gradients,
    updates, the loss)."""
    result = subprocess.run([sys.executable, "-m", "symbackprop", "example", "2-2-1", "--json"],
                            capture_output=True, text=True, check=True)
    data = json.loads(result.stdout)
    return [x for key in ("z", "delta", "grad", "updated", "loss") for x in _numbers(data[key])] + \
        _numbers(data["a"][1:])


MIXED = ["1.500*g'(z[0][1])*w[1][1][0]*delta[1][0]",  # the right formula times 1.5
         "1.500*x[0]", "1.500*delta[1][0]", "1.500*a[0][1]", "1.500*z[0][0] + 0*delta[0][1]",
         "delta[0][1]/(x[0] - x[0])", "delta[0][1]/(x[0] - 0.27)",  # undefined at the worked example
         "g'(z[0][1])*w[1][1][0]*delta[1][0] \\\\ 1.500*delta[0][1]"]  # a derivation's second line


@pytest.mark.parametrize("answer", MIXED)
def test_check_without_reveal_shows_no_number_computed_at_the_worked_example(worked, answer):
    def reply(*flags):
        result = subprocess.run([sys.executable, "-m", "symbackprop", "check", "2-2-1", "--target", "delta[0][1]",
                                 "--answer", answer, "--json", *flags], capture_output=True, text=True)
        assert result.returncode == 1, result.stderr
        return json.loads(result.stdout)

    shown = _numbers(reply())
    leaked = [(x, y, k) for x in shown for y in worked for k in (1, 1.5) if abs(x - k * y) <= 1e-6 * abs(y)]
    assert not leaked, leaked
    revealed = _numbers(reply("--reveal"))  # the grader's own view still shows them
    assert any(abs(x - y) <= 1e-9 * abs(y) for x in revealed for y in worked)


def test_a_number_alone_is_not_told_it_mixes_numbers_with_symbols():
    def said(answer):
        return subprocess.run([sys.executable, "-m", "symbackprop", "check", "2-2-1", "--target", "delta[0][1]",
                               f"--answer={answer}"], capture_output=True, text=True).stdout
    assert said("-0.0147158").strip() == "correct: Correct."
    assert "mixes numbers with symbols" in said("-0.0147158 + 0*x[0]")


# -- 4. a set is replaced whole or not at all ----------------------------------------------------

@pytest.fixture(scope="module")
def two_sets(tmp_path_factory):
    """The files of one class's set with seed 1 and with seed 2 (the same codes), as exercises renders them."""
    from symbackprop.exercises import exercise_set, sheets

    made = {seed: exercise_set.exercises(sb.compact("2-2-1"), ["ann", "bob", "cy"], "delta_output,delta", seed,
                                         codes={"ann": "A", "bob": "B", "cy": "C"}) for seed in (1, 2)}
    return {seed: sheets.render(m, ["md"]) for seed, m in made.items()}


FILE_OPERATIONS = [(os, "replace"), (os, "rename"), (os, "link"), (os, "symlink"), (os, "mkdir"), (os, "unlink"),
                   (os, "chmod"), (Path, "write_bytes")]


def test_an_interrupt_at_any_step_of_writing_a_set_leaves_the_old_set_or_the_new_one(tmp_path, two_sets,
                                                                                    monkeypatch):
    """Ctrl-C and SIGTERM raise KeyboardInterrupt between two steps: stop at the n-th file operation,
    for every n, and the folder holds either the whole old set or the whole new one (never a mix)."""
    from symbackprop.exercises import sheets

    old_set, new_set = two_sets[1], two_sets[2]
    folder = tmp_path / "d"
    for name, text in old_set.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "ann" / "sheet.pdf").write_text("the instructor's own file")
    before = _tree(folder)
    after = {**before, **{name: text.encode() for name, text in new_set.items()}}
    monkeypatch.setattr(sheets, "render", lambda *args, **kwargs: new_set)
    for stop in range(1, 1000):
        count = [0]

        def counting(original):
            def operation(*args, **kwargs):
                count[0] += 1
                if count[0] == stop:
                    raise KeyboardInterrupt
                return original(*args, **kwargs)
            return operation

        with monkeypatch.context() as patch:
            for owner, name in FILE_OPERATIONS:
                patch.setattr(owner, name, counting(getattr(owner, name)))
            try:
                sheets.write(None, folder, ["md"])
                finished = True
            except KeyboardInterrupt:
                finished = False
        now = _tree(folder)
        assert now == (after if finished else before) or (not finished and now == after), f"stopped at step {stop}"
        if finished:
            break
        if now == after:  # interrupted once the new set was in place: back to the old one for the next n
            shutil.rmtree(folder)
            for name, data in before.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
    assert finished and stop > 10


def test_a_student_folder_linked_to_another_file_system_is_refused_before_anything_changes(tmp_path):
    folder = _set_folder(tmp_path)
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        shutil.move(folder / "bob", elsewhere / "bob")
        (folder / "bob").symlink_to(elsewhere / "bob")
        before, linked = _tree(folder), _tree(elsewhere)
        result = run("exercises", "2-2-1", "--students", folder / "roster.csv", "--seed", "9", "-o", folder)
        refused(result, f"{folder / 'bob'}: is a symbolic link", "replace the link by a folder")
        assert _tree(folder) == before and _tree(elsewhere) == linked
    finally:
        shutil.rmtree(elsewhere)


# -- 3. a worker replaced from a short-lived thread lives on -------------------------------------

def test_a_worker_replaced_from_a_thread_that_ends_still_answers_later():
    """A server's request threads end when idle; a worker forked (or replaced after a timeout) from
    one of them used to be killed with it (PR_SET_PDEATHSIG), and the next answer was "crashed"."""
    from symbackprop import grading
    from symbackprop.grading.workers import Pool

    prepared = {"q": grading.prepare(sb.compact("2-2-1").network, "delta_output")}
    results = []
    record = lambda row, result: results.append(result["verdict"])
    pool = Pool(prepared, 1, 1e-4)  # every answer times out: its worker is replaced
    try:
        for _ in range(2):
            thread = threading.Thread(target=pool.run, args=([(0, "q", "(a_k - t_k) g'(z_k)")], record))
            thread.start()
            thread.join()  # the thread that replaced the worker has ended
        assert results == ["cannot read", "cannot read"]
        pool.seconds = 60
        for answer in ("(a_k - t_k) g'(z_k)", "a_k"):
            pool.run([(0, "q", answer)], record)
        assert results[2:] == ["correct", "incorrect"]
    finally:
        pool.close()


def test_a_worker_killed_while_idle_is_replaced_when_the_next_answer_comes():
    from symbackprop import grading
    from symbackprop.grading.workers import Pool

    pool = Pool({"q": grading.prepare(sb.compact("2-2-1").network, "delta_output")}, 1, 60)
    try:
        os.kill(pool.workers[0]["process"].pid, signal.SIGKILL)
        pool.workers[0]["process"].join()
        results = []
        pool.run([(0, "q", "(a_k - t_k) g'(z_k)")], lambda row, result: results.append(result["verdict"]))
        assert results == ["correct"]
    finally:
        pool.close()


# -- 6. templates are read from their folder only ------------------------------------------------

@pytest.mark.parametrize("command", ["derive", "exercises"])
def test_a_template_linked_to_a_file_outside_its_folder_is_refused(tmp_path, command):
    secret = tmp_path / "secret.txt"
    secret.write_text("the instructor's private notes")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "secret.j2").symlink_to(secret)
    page = "notes.j2" if command == "derive" else "sheet.j2"
    (mine / page).write_text("{% include 'secret.j2' %}\n")
    result = run(command, "2-1", "--templates", mine, "-o", tmp_path / "out")
    refused(result, f"secret.j2 resolves to {secret}, outside the templates folder")
    assert not (tmp_path / "out").exists()


def test_a_link_inside_the_templates_folder_is_still_read(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "part.txt").write_text("A LINKED PART\n")
    (mine / "part.j2").symlink_to(mine / "part.txt")
    (mine / "notes.j2").write_text("{% include 'part.j2' %}")
    assert run("derive", "2-1", "--templates", mine, "--format", "md", "-o", tmp_path / "out").returncode == 0
    assert (tmp_path / "out" / "notes.md").read_text().startswith("A LINKED PART")
