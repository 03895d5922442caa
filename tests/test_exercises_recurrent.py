"""An Elman (recurrent) spec's exercise set: the questions through time (BPTT's delta, a
recurrent weight's gradient derived and as a number), a key graded correct for every student
and agreeing with finite differences of a NumPy Elman network written here, the usual
mistakes through time graded incorrect and named, and sheets and key that compile."""
import csv
import re

import numpy as np
import pytest

import symbackprop as sb
from symbackprop.errors import SpecError

import katex_node
from compiling import compile_tex, requires_pdflatex

ELMAN = {"network": {"layers": [2, 3, 1], "activation": ["tanh", "identity"], "loss": "half_sse",
                     "recurrent": True, "steps": 3},
         "example": {"inputs": [[0.5, -0.3], [0.1, 0.2], [-0.4, 0.7]], "targets": [[0.1], [0.2], [-0.1]],
                     "recurrent_weights": [[[0.1, 0.2, 0.0], [0.0, -0.3, 0.4], [0.5, 0.0, 0.1]]]}}
STUDENTS = ["ada", "alan", "grace", "zoe"]
_NAME = re.compile(r"([wrb])\[(\d+)\]\[(\d+)\](?:\[(\d+)\])?")


def _arrays(example: dict):
    """W (input -> hidden), V (hidden -> output), R (hidden at t-1 -> hidden at t), b, c from the
    example's named parameters (w[l][i][j], r[h][i][j], b[l][j])."""
    W, V, R = np.zeros((2, 3)), np.zeros((3, 1)), np.zeros((3, 3))
    b, c = np.zeros(3), np.zeros(1)
    for name, value in example["parameters"].items():
        kind, first, second, third = _NAME.fullmatch(name).groups()
        if kind == "b":
            (b if first == "0" else c)[int(second)] = value
        elif kind == "r":
            R[int(second), int(third)] = value
        else:
            (W if first == "0" else V)[int(second), int(third)] = value
    return W, V, R, b, c


def elman_error(example: dict, nudge=None) -> float:
    """E = sum over t of 1/2 (y(t) - target(t))^2 of a 2-3-1 Elman network (tanh hidden layer,
    identity output, zero state before the first step).  ``nudge`` = (i, j, h, steps): r_ij plus
    h at those steps (0-based) only."""
    W, V, R, b, c = _arrays(example)
    state, error = np.zeros(3), 0.0
    for t, (x, target) in enumerate(zip(np.array(example["inputs"]), np.array(example["targets"]))):
        recurrent = R.copy()
        if nudge is not None and t in nudge[3]:
            recurrent[nudge[0], nudge[1]] += nudge[2]
        state = np.tanh(x @ W + state @ recurrent + b)
        error += 0.5 * float(np.sum((state @ V + c - target) ** 2))
    return error


def gradient_r(example: dict, i: int, j: int, steps) -> float:
    """dE/dr_ij by central differences, r_ij nudged at ``steps``: all of them for the gradient
    through time, the last alone for the last step's term a_i(T-1) delta_j(T)."""
    h = 1e-6
    return (elman_error(example, (i, j, h, steps)) - elman_error(example, (i, j, -h, steps))) / (2 * h)


@pytest.fixture(scope="module")
def made():
    return sb.exercises(sb.from_dict(ELMAN), students=STUDENTS, seed=23)


@pytest.fixture(scope="module")
def written(made, tmp_path_factory):
    folder = tmp_path_factory.mktemp("elman") / "homework"
    sb.exercises.write(made, folder)
    return folder


def test_a_recurrent_spec_asks_the_questions_through_time(made):
    assert [q.kind for q in made.questions] == ["delta_hidden_bptt", "grad_r", "grad_r[h][i][j]"]
    drawn = {v.targets["q3"] for v in made.variants}
    assert all(re.fullmatch(r"grad_r\[0\]\[[0-2]\]\[[0-2]\]", t) for t in drawn) and len(drawn) > 1


def test_the_key_is_correct_for_every_student_and_is_the_gradient_through_time(made, written):
    with open(written / "key.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 3 * len(STUDENTS)
    verdicts = sb.grade(made, rows)
    assert [v.verdict for v in verdicts] == ["correct"] * len(rows), [v.message for v in verdicts]
    for row in rows:
        if row["question"] != "q3":
            continue
        variant = made.variant(row["student"])
        i, j = (int(x) for x in re.findall(r"\d+", variant.targets["q3"])[1:])
        witness = gradient_r(variant.example, i, j, range(3))
        assert float(row["answer"]) == pytest.approx(witness, rel=1e-6, abs=1e-9)
        assert abs(witness - gradient_r(variant.example, i, j, [2])) > 1e-4  # the earlier steps count


def test_the_last_steps_term_alone_is_incorrect_and_named(made):
    rows, numbers = [], []
    for student in STUDENTS:
        variant = made.variant(student)
        i, j = (int(x) for x in re.findall(r"\d+", variant.targets["q3"])[1:])
        numbers.append(gradient_r(variant.example, i, j, [2]))
        rows.append({"student": student, "question": "q3", "answer": f"{numbers[-1]:.6g}"})
    rows += [{"student": "ada", "question": "q2", "answer": r"\frac{\partial E}{\partial r_{ij}} = a_i(t-1) \delta_j(t)"},
             {"student": "ada", "question": "q1",
              "answer": r"\delta_j(t) = (1 - a_j(t)^2) \sum_k \delta_k(t) w_{jk}"}]
    verdicts = sb.grade(made, rows)
    assert [v.verdict for v in verdicts] == ["incorrect"] * len(rows), [v.message for v in verdicts]
    for verdict in verdicts[:len(STUDENTS)]:
        assert "last step" in verdict.message.lower(), verdict.message
    assert "last step" in verdicts[-2].message.lower(), verdicts[-2].message
    assert "future term" in verdicts[-1].message.lower(), verdicts[-1].message


def test_a_numbers_question_answered_with_the_general_formula_is_not_correct(made):
    """q3 asks the number dE/dr_ij of the student's sequence: the general formula, the key's q2 answer
    copied (its letters bound to the drawn weight), computes nothing and was graded correct. The same
    on a layered set: the general dE/dw_ij for a weight's number. The number, with or without the
    quantity's name on the left, is still graded by its value."""
    general = r"\sum_{t=1}^{T} a_{i}(t - 1) \delta_{j}(t)"
    rows = [{"student": "ada", "question": "q3", "answer": answer}
            for answer in (general, r"a_i(t-1) \delta_j(t)", r"\frac{\partial E}{\partial r_{ij}} = " + general)]
    verdicts = sb.grade(made, rows)
    assert [v.verdict for v in verdicts] == ["cannot read"] * 3, [v.message for v in verdicts]
    assert all("give the value" in v.message for v in verdicts)
    variant = made.variant("ada")
    i, j = (int(x) for x in re.findall(r"\d+", variant.targets["q3"])[1:])
    value = f"{gradient_r(variant.example, i, j, range(3)):.6g}"
    right = sb.grade(made, [{"student": "ada", "question": "q3", "answer": value},
                            {"student": "ada", "question": "q3",
                             "answer": r"\frac{\partial E}{\partial r_{ij}} = " + value}])
    assert [v.verdict for v in right] == ["correct"] * 2, [v.message for v in right]
    layered = sb.exercises(sb.compact("2-2-1", "sigmoid,sigmoid"), students=["ada"], seed=1, questions="grad_w")
    assert [v.verdict for v in sb.grade(layered, [{"student": "ada", "question": "q1",
                                                   "answer": r"\delta_j a_i"}])] == ["cannot read"]


@pytest.mark.parametrize("notation", ["default", "haykin", "nielsen"])
def test_the_keys_printed_answers_with_their_left_hand_side_are_correct(notation):
    """The key ends each question with its answer, the question's name on the left; the number's,
    dE/d{r^{(1)}_{21}} = 0.03306, could not be read (the braces the notes put round a timed symbol,
    and no sheet name for r). Another recurrent weight's name on the left is refused."""
    from symbackprop.exercises import sheets
    made = sb.exercises(sb.from_dict(ELMAN), students=STUDENTS[:2], seed=23, notation=notation)
    key = sheets.render(made, ["md"])["key.md"]
    printed = re.findall(r"\*\*Answer:\*\* \$(.+?)\$\n", key)
    assert len(printed) == 2 + 2 and all(" = " in answer for answer in printed), printed  # q1, q2 once; q3 each
    rows = [{"student": student, "question": question, "answer": answer}
            for student, numbers in zip(STUDENTS[:2], printed[2:])
            for question, answer in (("q1", printed[0]), ("q2", printed[1]), ("q3", numbers))]
    verdicts = sb.grade(made, rows)
    assert [v.verdict for v in verdicts] == ["correct"] * len(rows), [(r["answer"], v.message)
                                                                      for r, v in zip(rows, verdicts)]
    name, number = rows[2]["answer"].split(" = ")
    other = re.sub(r"_\{(\d)(\d)\}", lambda m: "_{" + m.group(2) + m.group(1) + "}" if m.group(1) != m.group(2)
                   else "_{" + m.group(1) + str(int(m.group(2)) % 3 + 1) + "}", name)
    refused = sb.grade(made, [{"student": rows[2]["student"], "question": "q3", "answer": f"{other} = {number}"}])[0]
    assert refused.verdict == "cannot read" and "not what this question asks" in refused.message, refused.message


def test_questions_of_one_step_are_refused_on_a_recurrent_spec():
    with pytest.raises(SpecError, match="delta_hidden_bptt, grad_r, grad_r"):
        sb.exercises(sb.from_dict(ELMAN), questions="delta_hidden,grad_r")
    with pytest.raises(SpecError, match="needs a recurrent spec"):
        sb.exercises(sb.compact("2-3-1", "tanh,identity"), questions="grad_r[h][i][j]")


def test_the_sheet_states_the_questions_and_the_key_works_through_time(written):
    sheet = (written / "ada" / "sheet.md").read_text(encoding="utf-8")
    assert r"\delta_{j}(t)" in sheet and r"\frac{\partial E}{\partial r_{ij}}" in sheet
    assert "summed over the 3 steps" in sheet
    key = (written / "key.md").read_text(encoding="utf-8")
    assert r"\sum_{t=1}^{T} a_{i}(t - 1) \delta_{j}(t)" in key and "its own layer at the next step" in key
    terms = re.findall(r"\\frac\{\\partial E\}\{\\partial \{r\^\{\(1\)\}_\{\d\d\}\}\} = ([^$=]+) = ", key)
    assert terms and all("+" in t for t in terms)  # the per-step terms, summed


@katex_node.requires_katex
def test_sheets_and_key_render_in_katex(written):
    result = katex_node.render_all([str(p) for p in written.rglob("*.md")], timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


@requires_pdflatex
def test_sheet_and_key_compile_with_pdflatex(written):
    for tex in (written / "key.tex", written / "ada" / "sheet.tex"):
        assert "Overfull" not in compile_tex(tex), tex


def test_the_answer_page_serves_the_questions_through_time(written, tmp_path):
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    from test_serve import Running
    with open(written / "codes.csv", newline="", encoding="utf-8") as stream:
        codes = {row["student"]: row["code"] for row in csv.DictReader(stream)}
    with open(written / "key.csv", newline="", encoding="utf-8") as stream:
        key = [row for row in csv.DictReader(stream) if row["student"] == "zoe"]
    server = Running(written / "exercises.toml", tmp_path / "attempts.sqlite", "--rate-limit", "10000")
    try:
        for row in key:
            status, verdict = server.post("/api/check", {"student": "zoe", "code": codes["zoe"],
                                                         "question": row["question"], "answer": row["answer"]})
            assert status == 200 and verdict["verdict"] == "correct", (row, verdict)
        status, verdict = server.post("/api/check", {"student": "zoe", "code": codes["zoe"], "question": "q2",
                                                     "answer": r"a_i(t-1) \delta_j(t)"})
        assert status == 200 and verdict["verdict"] == "incorrect" and "last step" in verdict["message"].lower()
        status, page = server.post("/api/student", {"student": "zoe", "code": codes["zoe"]})
        assert status == 200 and "Sheet of zoe" in page["sheet"] and "backpropagation through time" in page["sheet"]
    finally:
        server.stop()


@pytest.mark.parametrize("notation", ["haykin", "nielsen"])
def test_the_key_is_correct_in_notations_with_other_signs_and_letters(notation, tmp_path):
    """Haykin's delta is -dE/dv and his weights run target-first; Nielsen counts layers from the inputs."""
    made = sb.exercises(sb.from_dict(ELMAN), students=["ada", "zoe"], seed=5, notation=notation)
    sb.exercises.write(made, tmp_path / "set")
    with open(tmp_path / "set" / "key.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    verdicts = sb.grade(sb.exercises.load(tmp_path / "set" / "exercises.toml"), rows)
    assert [v.verdict for v in verdicts] == ["correct"] * len(rows), [(r["answer"], v.message) for r, v in
                                                                       zip(rows, verdicts)]
    for row in rows:
        if row["question"] == "q3":
            variant = made.variant(row["student"])
            i, j = (int(x) for x in re.findall(r"\d+", variant.targets["q3"])[1:])
            assert float(row["answer"]) == pytest.approx(gradient_r(variant.example, i, j, range(3)), rel=1e-6)


def test_a_symbol_in_braces_before_its_time_index_is_read_as_the_notes_print_it():
    spec = sb.from_dict(ELMAN)
    rows = [{"target": "grad_r", "answer": r"\sum_{t=1}^{T} {a_{i}}(t - 1) {\delta_{j}}(t)"},
            {"target": "grad_r", "answer": r"{a_{i}}(t - 1) {\delta_{j}}(t)"},
            {"target": "grad_r", "answer": r"\sum_{t=1}^{T} {a_{i} + 1}(t - 1) \delta_{j}(t)"}]
    verdicts = sb.grade(spec, rows)
    assert verdicts[0].verdict == "correct", verdicts[0].message
    assert verdicts[1].verdict == "incorrect" and "last step" in verdicts[1].message.lower()
    assert verdicts[2].verdict != "correct"  # a sum in braces is no symbol: (t - 1) is not its time index


def test_the_sheet_names_every_weight_its_unrolled_figure_has_no_clear_label_for(made, written):
    """The sheet shows the notes' unrolled figure; a tied weight with no clear place on any copy
    of its edge is named under it, as the notes' caption names it."""
    from symbackprop.notes import through_time
    from symbackprop.notes.printing import NotationPrinter

    network = made.spec(made.variants[0]).network
    latex = NotationPrinter(sb.notation.load("default"), network).doprint
    figure = through_time.figure(network, latex)
    labelled = {arrow.label for arrow in figure.arrows if arrow.label}
    sheet = (written / "ada" / "sheet.md").read_text(encoding="utf-8")
    unnamed = [latex(w) for w in network.weights if latex(w) not in labelled and latex(w) + r"\colon" not in sheet]
    assert figure.unplaced and not unnamed, unnamed
