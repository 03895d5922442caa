"""Exercise sets as a lecturer uses them: sheets and keys that compile and render, a key that
grades all correct, numbers that are each student's own, reproducible output, hostile ids refused."""
import csv
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop.errors import SpecError
from symbackprop.exercises import roster, sheets, toml_writer

import katex_node
from compiling import compile_tex, requires_pdflatex

ROOT = Path(__file__).parent.parent
#: Legal ids that need escaping in LaTeX, Markdown and CSV alike.
AWKWARD = ["O'Brien & Co_50%", "José#1 {x}", "a$b^c~d", "Zoë-2"]
#: Matt Mazur's worked example (2015): his w1 is input 1 -> hidden 1, w5 hidden 1 -> output 1.
MAZUR = {"network": {"layers": [2, 2, 2], "activation": ["sigmoid", "sigmoid"], "loss": "half_sse"},
         "example": {"inputs": [0.05, 0.10], "targets": [0.01, 0.99], "learning_rate": 0.5,
                     "weights": [[[0.15, 0.25], [0.20, 0.30]], [[0.40, 0.50], [0.45, 0.55]]],
                     "biases": [[0.35, 0.35], [0.60, 0.60]]}}


def run(*args, cwd=None):
    """The CLI in a fresh interpreter, as a lecturer runs it."""
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, check=False)


def write_roster(path: Path, students) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "name"])
        writer.writerows([s, f"name of {s}"] for s in students)
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def class_of_30(tmp_path_factory):
    """A 30-student roster written and graded through the CLI once, with the times taken."""
    root = tmp_path_factory.mktemp("class")
    roster_csv = write_roster(root / "roster.csv", [f"s{n:02d}" for n in range(1, 31)])
    started = time.perf_counter()
    made = run("exercises", "--students", str(roster_csv), "--seed", "7", "-o", str(root / "set"))
    generated = time.perf_counter()
    graded = run("grade", str(root / "set" / "exercises.toml"), str(root / "set" / "key.csv"), "-o",
                 str(root / "report"))
    finished = time.perf_counter()
    assert made.returncode == 0, made.stderr
    assert graded.returncode == 0, graded.stderr
    print(f"\n30 students: exercises {generated - started:.1f} s, grade {finished - generated:.1f} s")
    return root


def test_grading_the_key_of_30_students_gives_every_row_correct(class_of_30):
    rows = read_csv(class_of_30 / "report.csv")
    assert len(rows) == 30 * 6
    assert {r["verdict"] for r in rows} == {"correct"}, [r for r in rows if r["verdict"] != "correct"][:3]
    report = (class_of_30 / "report.md").read_text()
    assert "| q4 | `delta` | 30 | 30 | 0 | 0 |" in report
    assert "| s17 | 6 | 6 | 0 | 0 | 6 |" in report
    for n in range(1, 31):
        assert (class_of_30 / "set" / f"s{n:02d}" / "sheet.md").is_file()
        assert (class_of_30 / "set" / f"s{n:02d}" / "sheet.tex").is_file()


def test_each_student_has_their_own_numbers_and_units(class_of_30):
    data = tomllib.loads((class_of_30 / "set" / "exercises.toml").read_text())
    assert set(data) == {"kind", "version", "notation", "questions", "network", "students"}
    students = data["students"]
    assert len({tuple(s["example"]["parameters"].values()) for s in students.values()}) == 30
    assert len({s["targets"]["q5"] for s in students.values()}) > 1  # which weight is asked varies too
    sheet = (class_of_30 / "set" / "s03" / "sheet.md").read_text()
    assert "s03" in sheet and "s04" not in sheet


def test_a_key_submitted_under_another_students_id_gets_the_numeric_questions_wrong(class_of_30):
    answers = read_csv(class_of_30 / "set" / "key.csv")
    by_student = {}
    for row in answers:
        by_student.setdefault(row["student"], []).append(row)
    swapped = [{**row, "student": "s02", "id": f"swapped/{row['question']}"} for row in by_student["s01"]]
    exercise_set = sb.exercises.load(class_of_30 / "set" / "exercises.toml")
    verdicts = sb.grade(exercise_set, swapped, workers=1)
    kinds = dict(tomllib.loads((class_of_30 / "set" / "exercises.toml").read_text())["questions"])
    for row, verdict in zip(swapped, verdicts):
        numeric = kinds[row["question"]] in ("delta", "grad_w", "update_w")
        assert verdict.verdict == ("incorrect" if numeric else "correct"), (row, verdict)


def test_rows_of_unknown_students_or_questions_get_a_verdict_not_a_crash(class_of_30, tmp_path):
    submissions = tmp_path / "submissions.csv"
    submissions.write_text("id,student,question,answer\n1,nobody,q1,x\n2,s01,q99,1\n3,s01,q4,not a number $\n"
                           "4,s01,q1,\\delta_j = a_j - t_j\n")
    result = run("grade", str(class_of_30 / "set" / "exercises.toml"), str(submissions), "-o", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    verdicts = [r["verdict"] for r in read_csv(tmp_path / "r.csv")]
    assert verdicts[:3] == ["not in the set", "not in the set", "cannot read"]
    report = (tmp_path / "r.md").read_text()
    assert "nobody" in report and "q99" in report


def test_grading_a_set_never_writes_over_its_submissions(class_of_30, tmp_path):
    submissions = tmp_path / "small.csv"
    submissions.write_bytes((class_of_30 / "set" / "key.csv").read_bytes())
    before = submissions.read_bytes()
    result = run("grade", str(class_of_30 / "set" / "exercises.toml"), str(submissions), "-o", str(tmp_path / "small"))
    assert result.returncode == 2 and "is also an input of this run" in result.stderr
    assert submissions.read_bytes() == before and not (tmp_path / "small.md").exists()


@pytest.mark.parametrize("report", ["set/key", "set/codes", "set/s1/sheet", "set/S1/../key"])
def test_a_report_never_replaces_a_file_of_the_set_it_grades(tmp_path, report):
    """grade set/exercises.toml answers.csv -o set/key replaced the answer key and the worked
    solutions with the report (exit 0)."""
    write_roster(tmp_path / "roster.csv", ["s1", "S2"])
    assert run("exercises", "--students", "roster.csv", "--questions", "delta_output", "-o", "set",
               cwd=tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "set").rglob("*") if p.is_file()}
    (tmp_path / "answers.csv").write_text("id,student,question,answer\n1,s1,q1,a_k - t_k\n")
    result = run("grade", "set/exercises.toml", "answers.csv", "-o", report, cwd=tmp_path)
    assert result.returncode == 2 and "is a file of the exercise set" in result.stderr, result.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "set").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("name", ["key.csv", "exercises.toml", "key.md"])
def test_a_folder_holding_the_users_own_file_of_a_sets_name_needs_force(tmp_path, name):
    """exercises -o u replaced u/key.csv, the user's own file (no exercise set there), exit 0."""
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / name).write_text("my own data\n")
    result = run("exercises", "--questions", "delta_output", "-o", "u", cwd=tmp_path)
    assert result.returncode == 2 and name in result.stderr and "--force" in result.stderr, result.stderr
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == [name]
    assert (tmp_path / "u" / name).read_text() == "my own data\n"
    assert run("exercises", "--questions", "delta_output", "-o", "u", "--force", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("report", ["out/", "out/.", "out/./"])
def test_a_report_path_that_names_a_folder_is_refused(tmp_path, report):
    """-o out/ wrote out.csv and out.md beside the folder (pathlib drops the trailing slash)."""
    (tmp_path / "out").mkdir()
    (tmp_path / "answers.csv").write_text("id,target,answer\n1,delta_output,a_k - t_k\n")
    result = run("grade", "2-2-1", "answers.csv", "-o", report, cwd=tmp_path)
    assert result.returncode == 2 and "names no file" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.csv", "out"]


def test_mazur_numbers_in_the_key_are_the_published_ones(tmp_path):
    """Mazur (2015): net_h1 = 0.3775, out_h1 = 0.593269992, dE/dw5 = 0.082167041, w5+ = 0.35891648,
    w1+ = 0.149780716 (transcribed from the published text)."""
    made = sb.exercises(sb.from_dict(MAZUR), questions="grad_w[1][0][0],update_w[1][0][0],update_w[0][0][0]")
    paths = sb.exercises.write(made, tmp_path, ["md"])
    key = {row["question"]: float(row["answer"]) for row in read_csv(tmp_path / "key.csv")}
    assert key == pytest.approx({"q1": 0.082167041, "q2": 0.35891648, "q3": 0.149780716}, abs=1e-8)
    text = (tmp_path / "key.md").read_text()
    assert "0.35 + 0.15 \\times 0.05 + 0.2 \\times 0.1 = 0.3775" in text
    assert "= 0.59327" in text
    assert sorted(p.name for p in paths) == ["exercises.toml", "key.csv", "key.md", "key.svg", "sheet.md", "sheet.svg"]


def test_the_numbers_of_a_variant_agree_with_finite_differences():
    """A student's numeric answers against central differences of the loss: delta_j as dE/db_j,
    a weight's gradient, and the weight after one step (an independent witness of the key)."""
    made = sb.exercises(sb.compact("3-4-2", "tanh,sigmoid", "half_sse"), students=["ann", "bob"], seed=3,
                        questions="delta[0][1],grad_w[0][2][3],update_w[1][3][0]")
    for variant in made.variants:
        spec = made.spec(variant)
        net, values = spec.network, spec.values
        loss = lambda p: sb.example(net, sb.Values(values.inputs, values.targets, p)).evaluation.loss
        numeric = {}
        for name in ("b[0][1]", "w[0][2][3]", "w[1][3][0]"):
            parameter = next(p for p in net.parameters if str(p) == name)
            up, down = dict(values.parameters), dict(values.parameters)
            up[parameter] += 1e-6
            down[parameter] -= 1e-6
            numeric[name] = (loss(up) - loss(down)) / 2e-6
        key = {row["question"]: float(row["answer"]) for row in csv.DictReader(io.StringIO(
            sheets.render(made, formats=())["key.csv"])) if row["student"] == variant.student}
        weight = values.parameters[next(p for p in net.parameters if str(p) == "w[1][3][0]")]
        assert key["q1"] == pytest.approx(numeric["b[0][1]"], rel=1e-6)
        assert key["q2"] == pytest.approx(numeric["w[0][2][3]"], rel=1e-6)
        assert key["q3"] == pytest.approx(weight - 0.5 * numeric["w[1][3][0]"], rel=1e-8)


def test_same_roster_and_seed_give_byte_identical_files_and_another_seed_other_numbers(tmp_path):
    roster_csv = write_roster(tmp_path / "roster.csv", ["ann", "bob", *AWKWARD])
    outputs = []
    for n, seed in enumerate(["5", "5", "6"]):
        if n == 1:  # the access codes are random; handed out once, they are kept when the set is written again
            (tmp_path / "out1").mkdir()
            (tmp_path / "out1" / "codes.csv").write_bytes((tmp_path / "out0" / "codes.csv").read_bytes())
        result = run("exercises", "2-2-1", "--students", str(roster_csv), "--seed", seed, "--notation", "nielsen",
                     "-o", str(tmp_path / f"out{n}"))
        assert result.returncode == 0, result.stderr
        outputs.append({p.relative_to(tmp_path / f"out{n}"): p.read_bytes()
                        for p in sorted((tmp_path / f"out{n}").rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 3 + 3 * 6 + 3  # key (md, svg, tex), per student sheet (md, svg, tex), key and codes csv, toml
    assert outputs[0][Path("key.csv")] != outputs[2][Path("key.csv")]


HOSTILE = ["../x", "", "a" * 65, "a/b", "a\\b", "..", ".hidden", "con", "NUL.txt", "=HYPERLINK(1)", "tab\tid",
           "bidi\u202etxt", "key.csv", "trailing."]


@pytest.mark.parametrize("student", HOSTILE, ids=repr)
def test_hostile_student_ids_are_refused_with_exit_2_and_nothing_written(tmp_path, student):
    roster_csv = tmp_path / "roster.csv"
    roster_csv.write_text(f'student\nann\n"{student}"\n', encoding="utf-8")
    result = run("exercises", "--students", str(roster_csv), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "student id" in result.stderr or "row 3" in result.stderr
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "x").exists()


def test_ids_that_differ_only_in_case_are_refused(tmp_path):
    with pytest.raises(SpecError, match="listed twice"):
        sb.exercises(sb.compact("2-2-1"), students=["Alice", "alice"])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_an_accepted_id_is_one_folder_inside_the_set_and_escaped_text(student):
    try:
        roster.check_id(student, "students")
    except SpecError:
        return
    assert Path(student).name == student and os.path.normpath(student) == student
    shown = re.sub(r"\\[\\`*_\[\]<>|~^#]|&#36;|&amp;", "", roster.markdown_text(student))
    assert not any(c in shown for c in "\\`*_[]<>|~^#$&")
    latex = roster.latex_text(student)
    assert latex.startswith("\\texttt{") and latex.endswith("}")
    unescaped = re.sub(r"\\(?:[&%$#_{}]|text(?:asciitilde|asciicircum|backslash)\{\})", "", latex[8:-1])
    assert not any(c in unescaped for c in "&%$#_{}~^\\")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=20), st.one_of(st.text(max_size=40), st.floats(allow_nan=False,
       allow_infinity=False), st.integers(-2**60, 2**60), st.lists(st.floats(-1, 1), max_size=4)), max_size=5))
def test_the_toml_writer_round_trips(table):
    table = {k: v for k, v in table.items() if not any(0xD800 <= ord(c) <= 0xDFFF for c in k)}
    assert tomllib.loads(toml_writer.dumps({"t": table})) == {"t": table}


def test_graph_specs_get_generic_questions_and_numeric_ones_are_refused(tmp_path):
    graph = {"network": {"inputs": ["x1"], "outputs": ["y"], "units": [
        {"name": "h", "inputs": ["x1"], "activation": "tanh"}, {"name": "y", "inputs": ["h"],
                                                               "activation": "identity"}]}}
    made = sb.exercises(sb.from_dict(graph))
    assert [q.kind for q in made.questions] == ["delta_output", "delta_hidden", "grad_w_hidden", "update_w_hidden"]
    with pytest.raises(SpecError, match="numeric questions name layered units"):
        sb.exercises(sb.from_dict(graph), questions="delta")
    result = run("exercises", "2-1", "--questions", "delta_hidden", "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "hidden" in result.stderr and "Traceback" not in result.stderr


NOTATIONS = ["haykin", "nielsen"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Sets in two notations for students whose ids need escaping, written once."""
    root = tmp_path_factory.mktemp("sets")
    for notation in NOTATIONS:
        made = sb.exercises(sb.compact("2-3-2", "sigmoid,sigmoid"), students=["ann", *AWKWARD], notation=notation,
                            questions="delta_output,delta_hidden,grad_w_hidden,update_w_hidden,delta,grad_w,"
                                      "grad_b,update_w")
        sb.exercises.write(made, root / notation)
    return root


@requires_pdflatex
@pytest.mark.parametrize("notation", NOTATIONS)
def test_sheets_and_keys_compile_with_pdflatex(written, notation):
    for tex in [written / notation / "key.tex", *(written / notation).glob("*/sheet.tex")]:
        assert "Overfull \\hbox" not in compile_tex(tex), tex
    assert len(list((written / notation).glob("*/sheet.pdf"))) == 1 + len(AWKWARD)


@katex_node.requires_katex
@pytest.mark.parametrize("notation", NOTATIONS)
def test_sheets_and_keys_render_in_katex(written, notation):
    files = [str(p) for p in (written / notation).rglob("*.md")]
    result = katex_node.render_all(files, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


def test_ids_are_shown_escaped_in_every_format(written):
    sheet = next((written / "haykin").glob("O*/sheet.md")).read_text()
    assert "O'Brien &amp; Co\\_50%" in sheet
    tex = next((written / "haykin").glob("O*/sheet.tex")).read_text()
    assert r"\texttt{O'Brien \& Co\_50\%}" in tex
    key = (written / "haykin" / "key.tex").read_text()
    assert r"a\$b\textasciicircum{}c\textasciitilde{}d" in key


def test_the_sheet_asks_in_the_notation_and_gives_the_students_numbers(written):
    sheet = (written / "haykin" / "ann" / "sheet.md").read_text()
    assert r"\Delta w_{ji}" in sheet and r"\mathcal{E}" in sheet  # Haykin's delta rule and error
    data = tomllib.loads((written / "haykin" / "exercises.toml").read_text())
    for value in list(data["students"]["ann"]["example"]["parameters"].values())[:5]:
        assert f"${value:g}$" in sheet
    assert np.isclose(data["students"]["ann"]["example"]["learning_rate"], 0.5)


@settings(max_examples=6, deadline=None)
@given(hidden=st.lists(st.integers(1, 3), min_size=1, max_size=2), outputs=st.integers(1, 2),
       activation=st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "z/(1+exp(-z))"]),
       output=st.sampled_from(["identity", "sigmoid", "tanh"]), loss=st.sampled_from(["half_sse", "sse", "mse"]),
       notation=st.sampled_from(sb.notation.names()), seed=st.integers(0, 2**31))
def test_the_key_of_any_small_network_grades_correct(hidden, outputs, activation, output, loss, notation, seed):
    """Whatever the network, activation, loss and notation: every key answer is read and right."""
    layers = [2, *hidden, outputs]
    spec = sb.from_dict({"network": {"layers": layers, "activation": [activation] * len(hidden) + [output],
                                     "loss": loss}})
    made = sb.exercises(spec, students=["ann", "bob"], seed=seed, notation=notation,
                        questions="delta_output,delta_hidden,grad_w_hidden,grad_b_output,update_w_hidden,delta,"
                                  "grad_w,grad_b,update_w")
    rows = list(csv.DictReader(io.StringIO(sheets.render(made, formats=())["key.csv"])))
    verdicts = sb.grade(made, rows, workers=1)
    assert [v.verdict for v in verdicts] == ["correct"] * len(rows), [
        (r["question"], r["answer"], v.message) for r, v in zip(rows, verdicts) if v.verdict != "correct"]


def test_a_question_is_named_by_its_id_or_its_number_in_any_case():
    made = sb.exercises(sb.compact("2-2-1"), students=["ann"], questions="delta_output,delta", seed=1)
    rows = [{"student": "ann", "question": question, "answer": "(a_k - t_k) g'(z_k)"}
            for question in ("q1", "Q1", "1", " 1 ", "q3", "3", "0", "question 1", "")]
    verdicts = [v.verdict for v in sb.exercises.grade(made, rows, workers=1)]
    assert verdicts == ["correct"] * 4 + ["not in the set"] * 5
    assert made.question_id("Q2") == "q2" and made.question_id("2") == "q2" and made.question_id("q02") is None


def test_a_roster_separated_by_semicolons_is_told_so(tmp_path):
    roster_csv = tmp_path / "roster.csv"
    roster_csv.write_text("student;name\nada;Ada Lovelace\n", encoding="utf-8")
    with pytest.raises(SpecError, match="separated by semicolons"):
        roster.read_roster(roster_csv)


def test_no_sheet_shows_an_input_of_zero_or_asks_a_number_whose_answer_is_zero():
    """A ReLU unit that is off has delta 0, and a weight from an input 0 has gradient 0: a student
    learns nothing from either, nor from an input printed as -0, so those numbers are drawn again."""
    spec = sb.compact("2-3-1", "relu,identity")
    students = [f"s{n}" for n in range(40)]
    made = sb.exercises(spec, students=students, questions="delta,grad_w,grad_b,delta[0][0]", seed=5)
    for variant in made.variants:
        assert all(x != 0 for x in variant.example["inputs"]), variant
        worked = sb.example(spec.network, made.spec(variant).values)
        ev = worked.evaluation
        for target in variant.targets.values():
            level, *rest = (int(n) for n in re.findall(r"\[(\d+)\]", target))
            if target.startswith("delta"):
                value = ev.delta[spec.network[f"[{level}][{rest[-1]}]"].name][0]
            elif target.startswith("grad_b"):
                value = ev.gradients[sb.network.layer_bias(level, rest[0])]
            else:
                value = ev.gradients[sb.network.layer_weight(level, *rest)]
            assert abs(value) >= 5e-7, (variant.student, target, value)
    unchanged = sb.exercises(spec, students=students[:3] + ["another"], questions="delta,grad_w,grad_b,delta[0][0]",
                             seed=5)
    assert [v.example for v in unchanged.variants[:3]] == [v.example for v in made.variants[:3]]


def test_an_input_drawn_as_minus_zero_is_drawn_again(tmp_path):
    """Seed 0 draws s124's second input as -0.003: shown as -0 before."""
    made = sb.exercises(sb.compact("2-3-1"), students=["s124"], questions="delta_output,delta", seed=0)
    inputs = made.variants[0].example["inputs"]
    assert all(abs(x) >= 0.01 for x in inputs), inputs
    files = sheets.render(made, ("md",))
    assert not re.search(r"(?<![\d.])-0(?![.\d])", files["s124/sheet.md"])


@pytest.mark.parametrize("loss, words, formula", [
    ("half_sse", "half the sum of the squared errors", r"\sum_{k} \frac{(a_{k} - t_{k})^{2}}{2}"),
    ("cross_entropy", "the cross-entropy", r"\log"),
    ("log(cosh(a - t))", "a custom error function", r"\cosh")])
def test_the_sheet_names_its_error_function_in_words_and_as_its_formula(loss, words, formula):
    activation = "sigmoid,softmax" if loss == "cross_entropy" else "sigmoid,identity"
    made = sb.exercises(sb.compact("2-2-2", activation, loss), questions="delta_output")
    for format in ("md", "tex"):
        sheet = sheets.render(made, (format,))[f"sheet.{format}"]
        introduction = next(line for line in sheet.splitlines() if "error function" in line)
        assert words in introduction and formula in introduction and "_sse" not in introduction, introduction


def test_a_set_made_with_other_options_is_replaced_only_with_force(tmp_path):
    """The README's serve section wrote its set into the folder of the Haykin set made just before:
    the set silently became a default-notation one."""
    roster_csv = write_roster(tmp_path / "roster.csv", ["ada", "alan"])
    folder = tmp_path / "homework"
    first = run("exercises", "--students", str(roster_csv), "--notation", "haykin", "--seed", "2026", "-o", str(folder))
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    again = run("exercises", "--students", str(roster_csv), "--notation", "haykin", "--seed", "2026", "-o", str(folder))
    assert again.returncode == 0, again.stderr  # the same options: written again, byte for byte
    other = run("exercises", "--students", str(roster_csv), "--seed", "2026", "-o", str(folder))
    assert other.returncode == 2 and other.stderr.count("\n") == 1, other.stderr
    assert "--force" in other.stderr and "notation haykin" in other.stderr, other.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    seeded = run("exercises", "--students", str(roster_csv), "--notation", "haykin", "--seed", "7", "-o", str(folder))
    assert seeded.returncode == 2 and "numbers of 2 students" in seeded.stderr, seeded.stderr
    forced = run("exercises", "--students", str(roster_csv), "--seed", "2026", "--force", "-o", str(folder))
    assert forced.returncode == 0, forced.stderr
    assert sb.exercises.load(folder / "exercises.toml").notation == "default"
    sb.exercises.write(sb.exercises(sb.compact("2-3-1"), students=["ada"], seed=2026), tmp_path / "api", ["md"])
    smaller = sb.exercises(sb.compact("2-2-1"), students=["ada"], seed=2026)
    with pytest.raises(SpecError, match="force=True"):
        sb.exercises.write(smaller, tmp_path / "api", ["md"])
    sb.exercises.write(smaller, tmp_path / "api", ["md"], force=True)
