"""The gradebook (grade -o REPORT writes REPORT-grades.csv; serve's /admin/grades.csv): one row per
roster student, one column per question with the latest attempt's mark, a total; ids inert."""
import csv
import io
import subprocess
import sys

import pytest

import symbackprop as sb
from symbackprop.exercises import gradebook
from symbackprop.grading import Verdict

STUDENTS = ["ann", "bob", "O'Brien & Co_50%", "cy"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("set")
    roster = folder / "roster.csv"
    roster.write_text("student\n" + "".join(f'"{s}"\n' for s in STUDENTS), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "symbackprop", "exercises", "2-2-1", "--students", str(roster),
                           "--questions", "delta_output,delta", "--format", "md", "-o", str(folder / "set")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with open(folder / "set" / "key.csv", encoding="utf-8") as stream:
        key = {(row["student"], row["question"]): row["answer"] for row in csv.DictReader(stream)}
    return folder, key


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_grade_writes_the_gradebook_with_the_latest_attempt_of_each_question(written):
    folder, key = written
    answers = [("ann", "q1", "42"), ("ann", "q1", key["ann", "q1"]),  # wrong, then right: 1
               ("ann", "q2", key["ann", "q2"]), ("ann", "q2", "\\frac{"),  # right, then unreadable: 0
               ("bob", "2", key["bob", "q2"]),  # q1 never attempted: empty; q2 named by its number
               ("O'Brien & Co_50%", "q1", key["O'Brien & Co_50%", "q1"]), ("O'Brien & Co_50%", "q2", "-1"),
               ("nobody", "q1", "1"), ("bob", "q9", "1")]  # not in the set: not in the gradebook
    submissions = folder / "answers.csv"
    with open(submissions, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "student", "question", "answer"])
        writer.writerows([n, *row] for n, row in enumerate(answers))
    done = subprocess.run([sys.executable, "-m", "symbackprop", "grade", str(folder / "set" / "exercises.toml"),
                           str(submissions), "-o", str(folder / "report")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert str(folder / "report-grades.csv") in done.stdout
    rows = _rows((folder / "report-grades.csv").read_text(encoding="utf-8"))
    assert rows == [["Student", "SIS Login ID", "Section", "q1", "q2", "total"],
                    ["ann", "ann", "", "1", "0", "1"],
                    ["bob", "bob", "", "", "1", "1"],
                    ["O'Brien & Co_50%", "O'Brien & Co_50%", "", "1", "0", "1"],
                    ["cy", "cy", "", "", "", "0"]]


def test_a_report_without_a_roster_has_no_gradebook(tmp_path):
    made = sb.exercises(sb.compact("2-2-1", "sigmoid,identity", "half_sse"), questions="delta_output")
    rows = [{"id": "1", "student": "", "question": "q1", "answer": "a_k - t_k"}]
    written = sb.exercises.write_report(tmp_path / "r.csv", made, ["id", "student", "question", "answer"], rows,
                                        sb.exercises.grade(made, rows, workers=1))
    assert sorted(path.name for path in written) == ["r.csv", "r.md"]


def test_cells_are_inert_for_spreadsheets():
    made = sb.exercises(sb.compact("2-2-1", "sigmoid,identity", "half_sse"), students=["ann"],
                        questions="delta_output")
    hostile = made.variants[0].__class__("=HYPERLINK(1)", made.variants[0].example, made.variants[0].targets)
    made.variants = (hostile,)  # an id the roster refuses, as a database could still hold it
    rows = _rows(gradebook.gradebook_csv(made, [("=HYPERLINK(1)", "q1", Verdict("correct", "Correct."))]))
    assert rows[1][:2] == ["'=HYPERLINK(1)", "'=HYPERLINK(1)"] and rows[1][3:] == ["1", "1"]
