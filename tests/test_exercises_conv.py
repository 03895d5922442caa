"""A convolutional spec's exercise set (the README's spec): the kernel gradient and the delta below
derived, a kernel entry's and a bias's gradient as numbers drawn per student; the key graded correct
for every student and agreeing with a NumPy network written here (central differences), the usual
mistakes graded incorrect and named, files byte-identical for one seed, sheets and key that compile
and render, and no number computed at a student's worked example on their sheet or answer page."""
import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import symbackprop as sb
from symbackprop.errors import SpecError
from symbackprop.examples import example
from symbackprop.exercises import toml_writer

import katex_node
from compiling import compile_tex, requires_pdflatex

IMAGE = [[[0.1, 0.2, -0.3, 0.4, 0.5], [0.0, -0.1, 0.2, 0.3, -0.4], [0.5, 0.1, 0.1, -0.2, 0.3],
          [0.2, 0.2, -0.5, 0.1, 0.0], [-0.3, 0.4, 0.1, 0.2, 0.6]]]
CONV = {"network": {"input_shape": [1, 5, 5], "loss": "cross_entropy",
                    "layer": [{"kind": "conv", "channels": 2, "kernel": [3, 3], "stride": 1, "padding": 1,
                               "activation": "tanh"},
                              {"kind": "max_pool", "size": [2, 2]},
                              {"kind": "dense", "units": 3, "activation": "softmax"}]},
        "example": {"inputs": IMAGE, "targets": [0.0, 1.0, 0.0]}}
STUDENTS = ["ada", "alan", "grace", "zoe"]
CODES = {s: f"CODE-{s.upper()}" for s in STUDENTS + ["zed"]}


# -- a NumPy reference of our own: conv (padding 1, stride 1, tanh) - 2x2 max pool - dense softmax - CE

def error(example: dict, nudge_z=None) -> float:
    """The cross-entropy of the network at ``example`` (nested as the spec writes it); ``nudge_z``
    = (o, i, j, h) adds h to the conv layer's net input z[o, i, j]."""
    x = np.pad(np.array(example["inputs"], dtype=float), ((0, 0), (1, 1), (1, 1)))
    K, W = np.array(example["weights"][0]), np.array(example["weights"][2])
    b, c = np.array(example["biases"][0]), np.array(example["biases"][2])
    z = np.array([[[b[o] + np.sum(K[o] * x[:, i:i + 3, j:j + 3]) for j in range(5)] for i in range(5)]
                  for o in range(2)])
    if nudge_z is not None:
        z[nudge_z[:3]] += nudge_z[3]
    a = np.tanh(z)
    pooled = np.array([[[a[o, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max() for j in range(2)] for i in range(2)]
                       for o in range(2)])
    y = pooled.ravel() @ W + c
    y = np.exp(y - y.max()) / np.exp(y - y.max()).sum()
    return float(-np.sum(np.array(example["targets"]) * np.log(y)))


def nudged(example: dict, where: tuple, h: float) -> dict:
    """``example`` with weights[l] or biases[l] entry ``where`` = (key, l, *index) plus h."""
    copy = json.loads(json.dumps(example))
    key, level, *index = where
    table = copy[key][level]
    for n in index[:-1]:
        table = table[n]
    table[index[-1]] += h
    return copy


def gradient(example: dict, where: tuple) -> float:
    h = 1e-6
    return (error(nudged(example, where, h)) - error(nudged(example, where, -h))) / (2 * h)


def local_gradients(example: dict) -> np.ndarray:
    """dE/dz of the conv layer by central differences, [o][i][j]."""
    h = 1e-6
    return np.array([[[(error(example, (o, i, j, h)) - error(example, (o, i, j, -h))) / (2 * h) for j in range(5)]
                      for i in range(5)] for o in range(2)])


def _where(target: str) -> tuple:
    numbers = [int(n) for n in re.findall(r"\d+", target)]
    return ("weights" if target.startswith("grad_w") else "biases", *numbers)


@pytest.fixture(scope="module")
def made():
    return sb.exercises(sb.from_dict(CONV), students=STUDENTS, seed=27, codes=CODES)


@pytest.fixture(scope="module")
def written(made, tmp_path_factory):
    folder = tmp_path_factory.mktemp("conv") / "homework"
    sb.exercises.write(made, folder)
    return folder


def _key(folder) -> list[dict]:
    with open(folder / "key.csv", newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_a_conv_spec_asks_the_conv_questions_with_the_entry_drawn_per_student(made):
    assert [q.kind for q in made.questions] == ["grad_kernel", "delta_conv_input", "grad_w[l][o][c][u][v]",
                                                "grad_b[l][o]"]
    kernels = {v.targets["q3"] for v in made.variants}
    assert all(re.fullmatch(r"grad_w\[0\]\[[01]\]\[0\]\[[0-2]\]\[[0-2]\]", t) for t in kernels) and len(kernels) > 1
    assert all(re.fullmatch(r"grad_b\[0\]\[[01]\]", v.targets["q4"]) for v in made.variants)
    image = np.array(made.variant("ada").example["inputs"])
    assert image.shape == (1, 5, 5) and 0 not in image and not np.array_equal(image, np.array(IMAGE))


def test_the_key_is_correct_for_every_student_and_is_the_gradient(made, written):
    rows = _key(written)
    assert len(rows) == 4 * len(STUDENTS)
    verdicts = sb.grade(made, rows)
    assert [v.verdict for v in verdicts] == ["correct"] * len(rows), [v.message for v in verdicts]
    for row in rows:
        if row["question"] in ("q3", "q4"):
            variant = made.variant(row["student"])
            witness = gradient(variant.example, _where(variant.targets[row["question"]]))
            assert float(row["answer"]) == pytest.approx(witness, rel=1e-6, abs=1e-9)
            assert abs(witness) > 1e-6  # numbers that teach nothing are drawn again


def _single_term(variant) -> float:
    """One output position's term of the drawn kernel gradient (the largest), from the reference's own
    local gradients: what a student who forgot the sum over positions gets."""
    o, c, u, v = (int(n) for n in re.findall(r"\d+", variant.targets["q3"])[1:])
    delta = local_gradients(variant.example)
    x = np.pad(np.array(variant.example["inputs"], dtype=float), ((0, 0), (1, 1), (1, 1)))
    terms = [delta[o, i, j] * x[c, i + u, j + v] for i in range(5) for j in range(5)]
    assert sum(1 for t in terms if abs(t) > 1e-9) > 1
    return max(terms, key=abs)


def test_a_wrong_answer_to_every_question_is_incorrect_and_named(made):
    ada = made.variant("ada")
    one = _single_term(ada)
    wrong = [("q1", r"\sum_i \sum_j \delta_{i,j} a_{i-u,j-v}", "flipped indices"),
             ("q1", r"\delta_{i,j} a_{i+u,j+v}", "missing sum over positions"),
             ("q2", r"g'(z_{m,n}) \sum_i \sum_j \delta_{i,j} K_{i-m,j-n}", "flipped indices"),
             ("q2", r"\sum_i \sum_j \delta_{i,j} K_{m-i,n-j}", "missing activation derivative"),
             ("q3", f"{one:.6g}", "missing sum over positions"),
             ("q3", f"{-gradient(ada.example, _where(ada.targets['q3'])):.6g}", "sign error"),
             ("q4", f"{-gradient(ada.example, _where(ada.targets['q4'])):.6g}", "sign error")]
    verdicts = sb.grade(made, [{"student": "ada", "question": q, "answer": answer} for q, answer, _ in wrong])
    for (question, answer, named), verdict in zip(wrong, verdicts):
        assert verdict.verdict == "incorrect", (question, answer, verdict.message)
        assert verdict.message.lower().startswith(named), (question, answer, verdict.message)
        assert verdict.diagnosis, (question, answer)  # and the mistake explained


def test_the_questions_a_conv_spec_cannot_ask_are_refused_naming_those_it_can():
    spec = sb.from_dict(CONV)
    for kinds in ("delta_output", "delta", "update_w[0][0][0]", "grad_w[1][0][0]"):
        with pytest.raises(SpecError, match=r"grad_kernel, delta_conv_input, grad_w\[l\]\[o\]\[c\]\[u\]\[v\], "
                                            r"grad_b\[l\]\[o\], grad_w, grad_b"):
            sb.exercises(spec, questions=kinds)
    with pytest.raises(SpecError, match="needs a convolutional spec"):
        sb.exercises(sb.compact("2-2-1"), questions="grad_kernel")
    alone = sb.from_dict({"network": {**CONV["network"], "layer": CONV["network"]["layer"][:1]}})
    with pytest.raises(SpecError, match="ends in a conv layer; .* need a dense output layer"):
        sb.exercises(alone)
    wide = sb.from_dict({"network": {**CONV["network"], "input_shape": [1, 9, 9]}})
    with pytest.raises(SpecError, match="at most 8 columns, and this network's are 9 wide"):
        sb.exercises(wide)
    fixed = sb.exercises(spec, questions="grad_w[0][1][0][2][2],grad_b[0][0]")
    assert list(fixed.variants[0].targets.values()) == ["grad_w[0][1][0][2][2]", "grad_b[0][0]"]


def test_the_cli_refuses_a_question_with_one_line_and_exit_2(tmp_path):
    spec = tmp_path / "conv.toml"
    spec.write_text(toml_writer.dumps(CONV))
    result = subprocess.run([sys.executable, "-m", "symbackprop", "exercises", str(spec), "--questions", "delta",
                             "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "grad_kernel" in result.stderr and not (tmp_path / "out").exists()


def test_one_seed_gives_byte_identical_files_and_a_new_student_changes_no_one_else(written, tmp_path):
    again = tmp_path / "again"
    sb.exercises.write(sb.exercises(sb.from_dict(CONV), students=STUDENTS, seed=27, codes=CODES), again)
    files = sorted(p.relative_to(written) for p in written.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((written / f).read_bytes() == (again / f).read_bytes() for f in files)
    more = tmp_path / "more"
    sb.exercises.write(sb.exercises(sb.from_dict(CONV), students=STUDENTS + ["zed"], seed=27, codes=CODES), more)
    for student in STUDENTS:
        for name in ("sheet.md", "sheet.tex"):
            assert (written / student / name).read_bytes() == (more / student / name).read_bytes()
    assert _key(written) == [row for row in _key(more) if row["student"] != "zed"]


def test_the_sheet_describes_the_network_and_names_the_questions_as_the_notes_do(written):
    sheet = (written / "ada" / "sheet.md").read_text(encoding="utf-8")
    for text in ("3x3 kernel, stride 1, padding 1", "max pooling", "the cross-entropy", "![The kernel of layer 1",
                 r"z_{o,i,j} = b_{o} + \sum_{c} \sum_{u} \sum_{v} K_{o,c,u,v} a_{c,s i + u - p,s j + v - p}",
                 r"\frac{\partial E}{\partial K_{u,v}}", r"\delta_{m,n}", r"K_{0,0,u,v} = \left[\begin{matrix}"):
        assert text in sheet, text
    assert (written / "ada" / "sheet.svg").read_text().startswith("<svg")
    key = (written / "key.md").read_text(encoding="utf-8")
    assert r"\sum_{i} \sum_{j} a_{i + u,j + v} \delta_{i,j}" in key and r"K_{m - i,n - j}" in key
    assert "](key.svg)" in key and (written / "key.svg").read_text().startswith("<svg")
    tex = (written / "ada" / "sheet.tex").read_text(encoding="utf-8")
    assert r"\begin{tikzpicture}" in tex


@katex_node.requires_katex
def test_sheets_and_key_render_in_katex(written):
    result = katex_node.render_all([str(p) for p in written.rglob("*.md")], timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


@requires_pdflatex
def test_sheet_and_key_compile_with_pdflatex(written):
    for tex in (written / "key.tex", written / "ada" / "sheet.tex"):
        assert "Overfull" not in compile_tex(tex), tex


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", text)]


def _computed(made, student: str) -> list[float]:
    """Every number of the student's worked example that is not on their sheet (what ``example``
    computes: net inputs, the activations of the layers, local gradients, gradients, the error)."""
    spec = made.spec(made.variant(student))
    data = example(spec.network, spec.values, spec.learning_rate).as_dict()
    values = []

    def collect(item):
        if isinstance(item, (list, tuple)):
            for x in item:
                collect(x)
        elif isinstance(item, dict):
            for x in item.values():
                collect(x)
        elif isinstance(item, float) and item != 0:
            values.append(item)

    for key in ("z", "delta", "grad", "loss"):
        collect(data[key])
    collect(data["a"][1:])
    return values


def _leaked(shown: list[float], computed: list[float]) -> list:
    return [(x, y) for x in shown for y in computed if abs(x - y) <= 1e-6 * abs(y)]


def test_the_sheet_shows_no_number_computed_at_the_worked_example(made, written):
    computed = _computed(made, "ada")
    assert computed and not _leaked(_numbers((written / "ada" / "sheet.md").read_text(encoding="utf-8")), computed)
    assert _leaked(_numbers((written / "key.md").read_text(encoding="utf-8")), computed)  # the key has them


def test_the_answer_page_serves_the_conv_set_without_revealing_the_key(made, written, tmp_path):
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    from test_serve import Running
    key = [row for row in _key(written) if row["student"] == "zoe"]
    server = Running(written / "exercises.toml", tmp_path / "attempts.sqlite", "--rate-limit", "10000")
    try:
        for row in key:
            status, verdict = server.post("/api/check", {"student": "zoe", "code": CODES["zoe"],
                                                         "question": row["question"], "answer": row["answer"]})
            assert status == 200 and verdict["verdict"] == "correct", (row, verdict)
        computed = _computed(made, "zoe")
        answer = float(key[2]["answer"])
        for wrong in (f"{answer * 1.7:.6g}", f"{-answer:.6g}", r"\sum_i \sum_j \delta_{i,j} a_{i-u,j-v}"):
            question = "q1" if "sum" in wrong else "q3"
            status, verdict = server.post("/api/check", {"student": "zoe", "code": CODES["zoe"],
                                                         "question": question, "answer": wrong})
            assert status == 200 and verdict["verdict"] == "incorrect", verdict
            assert not _leaked(_numbers(json.dumps(verdict)), computed), verdict
        status, page = server.post("/api/student", {"student": "zoe", "code": CODES["zoe"]})
        assert status == 200 and "Sheet of zoe" in page["sheet"] and "max pooling" in page["sheet"]
        assert not _leaked(_numbers(page["sheet"]), computed)
        status, figure, _ = server.request("GET", "/sheet.svg")
        assert status == 200 and b"<svg" in figure
    finally:
        server.stop()


def test_a_1d_spec_asks_its_numbers_and_its_key_is_correct():
    """check grades the derivations on 2-D layers, so a 1-D spec asks the numbers (kernel entry [l][o][c][u])."""
    spec = sb.from_dict({"network": {"input_shape": [2, 7], "loss": "half_sse",
                                     "layer": [{"kind": "conv", "channels": 2, "kernel": [3], "stride": 2,
                                                "activation": "relu"},
                                               {"kind": "dense", "units": 2, "activation": "sigmoid"}]},
                         "example": {"inputs": [[0.1] * 7, [0.2] * 7], "targets": [0.2, 0.7]}})
    made = sb.exercises(spec, students=["ada", "zoe"], seed=1, notation="haykin")
    assert [q.kind for q in made.questions] == ["grad_w[l][o][c][u]", "grad_b[l][o]"]
    with pytest.raises(SpecError, match="grad_w\\[l\\]\\[o\\]\\[c\\]\\[u\\], grad_b"):
        sb.exercises(spec, questions="grad_kernel")
    from symbackprop.exercises import sheets
    rows = list(csv.DictReader(sheets.render(made, ["md"])["key.csv"].splitlines()))
    assert [v.verdict for v in sb.grade(made, rows)] == ["correct"] * 4


def test_a_mini_batch_sheet_gives_every_sample_and_its_key_is_the_mean():
    second = [[[-x for x in row] for row in channel] for channel in IMAGE]
    spec = sb.from_dict({"network": CONV["network"],
                         "example": {"inputs": [IMAGE, second], "targets": [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]}})
    made = sb.exercises(spec, questions="grad_w[0][1][0][2][2]")
    from symbackprop.exercises import sheets
    files = sheets.render(made, ["md"])
    assert "the input of sample 2, channel by channel" in files["sheet.md"]
    assert r"\left[\begin{matrix}0 & 1 & 0\\1 & 0 & 0\end{matrix}\right]" in files["sheet.md"]  # both targets
    (row,) = csv.DictReader(files["key.csv"].splitlines())
    example = {**made.variants[0].example, **spec.network.nested_parameters(spec.values.parameters)}
    mean = np.mean([gradient({**example, "inputs": image, "targets": target}, ("weights", 0, 1, 0, 2, 2))
                    for image, target in zip(example["inputs"], example["targets"])])
    assert float(row["answer"]) == pytest.approx(mean, rel=1e-6)


def test_the_readme_example_of_a_conv_key(tmp_path):
    """README, Exercises: the README's conv spec, ada and alan, seed 3: ada's kernel gradient worked out."""
    made = sb.exercises(sb.from_dict(CONV), students=["ada", "alan"], seed=3)
    from symbackprop.exercises import sheets
    key = sheets.render(made, ["md"])["key.md"]
    assert (r"\frac{\partial E}{\partial K_{1,0,0,1}} = a_{0,0,2} \delta_{1,1,2} + a_{0,1,2} \delta_{1,2,2} + "
            r"a_{0,2,0} \delta_{1,3,0} = 0.7300 \cdot (-0.1972) + 0.5700 \cdot 0.07521 + 0.5100 \cdot 0.006286 "
            r"= -0.09785") in key
    assert "(17 others are zero)" in key


def test_a_dense_layers_weight_and_bias_are_asked_drawn_per_student_and_graded(made):
    dense = sb.exercises(sb.from_dict(CONV), students=STUDENTS, seed=27, questions="grad_w,grad_b,grad_w[2][7][2]",
                         notation="haykin")
    drawn = {v.targets["q1"] for v in dense.variants}
    assert all(re.fullmatch(r"grad_w\[2\]\[[0-7]\]\[[0-2]\]", t) for t in drawn) and len(drawn) > 1
    from symbackprop.exercises import sheets
    files = sheets.render(dense, ["md"])
    rows = list(csv.DictReader(files["key.csv"].splitlines()))
    assert [v.verdict for v in sb.grade(dense, rows)] == ["correct"] * len(rows)
    for row in rows:
        variant = dense.variant(row["student"])
        witness = gradient(variant.example, _where(variant.targets[row["question"]]))
        assert float(row["answer"]) == pytest.approx(witness, rel=1e-6, abs=1e-9)
    assert "of the weight of layer 3 in row 7, column 2 of its table" in files["ada/sheet.md"]
    wrong = sb.grade(dense, [{"student": "ada", "question": "q3", "answer": f"{-float(rows[2]['answer']):.6g}"}])
    assert wrong[0].verdict == "incorrect" and wrong[0].message.lower().startswith("sign error")


def test_a_conv_set_is_never_written_over_its_own_spec(tmp_path):
    folder = tmp_path / "homework"
    folder.mkdir()
    spec = folder / "exercises.toml"
    spec.write_text(toml_writer.dumps(CONV))
    before = spec.read_bytes()
    result = subprocess.run([sys.executable, "-m", "symbackprop", "exercises", str(spec), "-o", str(folder)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "is also an input of this run" in result.stderr, result.stderr
    assert spec.read_bytes() == before and [p.name for p in folder.iterdir()] == ["exercises.toml"]


@pytest.mark.parametrize("notation", ["haykin", "nielsen"])
def test_the_key_is_correct_and_renders_in_notations_with_other_signs_and_letters(notation, tmp_path):
    """Haykin's delta is -dE/dv (his kernel gradient -sum delta y) and his bias w_j0; Nielsen's letters carry layers."""
    made = sb.exercises(sb.from_dict(CONV), students=["ada", "zoe"], seed=5, notation=notation,
                        questions="grad_kernel,delta_conv_input,grad_w[l][o][c][u][v],grad_b[l][o],grad_w,grad_b")
    sb.exercises.write(made, tmp_path / "set")
    rows = _key(tmp_path / "set")
    verdicts = sb.grade(sb.exercises.load(tmp_path / "set" / "exercises.toml"), rows)
    assert [v.verdict for v in verdicts] == ["correct"] * len(rows), [(r["answer"], v.message) for r, v in
                                                                       zip(rows, verdicts)]
    for row in rows:
        if row["question"] not in ("q1", "q2"):
            variant = made.variant(row["student"])
            assert float(row["answer"]) == pytest.approx(
                gradient(variant.example, _where(variant.targets[row["question"]])), rel=1e-6, abs=1e-9)
    if not katex_node.missing():
        result = katex_node.render_all([str(p) for p in (tmp_path / "set").rglob("*.md")], timeout=120)
        assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("notation", ["default", "haykin", "nielsen"])
def test_the_derivations_as_the_key_prints_them_with_their_left_hand_side_are_correct(notation):
    """The key's answers to q1 and q2 carry their left-hand side (dE/dK_{u,v} = ..., delta_{m,n} = ...);
    a student who writes them so was refused (dE/dK: cannot read) or graded incorrect (delta_{m,n} was read
    as the conv layer's own delta at (m, n)). Another quantity on the left stays incorrect."""
    from symbackprop.exercises import sheets
    made = sb.exercises(sb.from_dict(CONV), notation=notation, questions="grad_kernel,delta_conv_input")
    key = sheets.render(made, ["md"])["key.md"]
    printed = re.findall(r"\*\*Answer:\*\* \$(.+?)\$\n", key)
    assert len(printed) == 2 and all(" = " in answer for answer in printed), printed
    rows = [{"student": "", "question": q, "answer": answer} for q, answer in zip(("q1", "q2"), printed)]
    rows += [{"student": "", "question": "q1", "answer": printed[0].replace("{u,v}", "{v,u}", 1)},
             {"student": "", "question": "q1", "answer": printed[0].split(" = ")[0]}]
    verdicts = sb.grade(made, rows)
    assert [v.verdict for v in verdicts] == ["correct", "correct", "incorrect", "incorrect"], \
        [(r["answer"], v.message) for r, v in zip(rows, verdicts)]


def test_a_sheet_of_many_kernels_breaks_across_pages_instead_of_running_off_one(tmp_path):
    """24 output channels: 24 kernel matrices in one display, which ran past the foot of the page
    (pdflatex: Overfull \\vbox), the last kernels printed off the paper."""
    spec = sb.from_dict({"network": {"input_shape": [1, 4, 4], "loss": "half_sse",
                                     "layer": [{"kind": "conv", "channels": 24, "kernel": [3, 3], "padding": 1,
                                                "activation": "tanh"},
                                               {"kind": "dense", "units": 2, "activation": "identity"}]}})
    sb.exercises.write(sb.exercises(spec, questions="grad_w[l][o][c][u][v]"), tmp_path / "set", ["tex"])
    for name in ("sheet.tex", "key.tex"):
        assert "Overfull \\vbox" not in compile_tex(tmp_path / "set" / name), name


def _printed_answers(made) -> list[str]:
    from symbackprop.exercises import sheets
    return re.findall(r"\*\*Answer:\*\* \$(.+?)\$\n", sheets.render(made, ["md"])["key.md"])


@pytest.mark.parametrize("notation", ["default", "haykin", "nielsen"])
def test_a_number_with_the_name_the_key_prints_on_its_left_is_read_and_another_entrys_name_is_refused(notation):
    """The key prints dE/dK_{1,0,2,2} = -0.09785 (the kernel entry 0-based, no layer), dE/db_{1} = ...;
    a student who copied that form got "cannot read".  The name of another entry is refused, saying so."""
    made = sb.exercises(sb.from_dict(CONV), notation=notation,
                        questions="grad_w[0][1][0][2][2],grad_b[0][1],grad_w[2][3][1],grad_b[2][2]")
    printed = _printed_answers(made)
    assert len(printed) == 4 and all(" = " in answer for answer in printed), printed
    rows = [{"student": "", "question": f"q{n + 1}", "answer": answer} for n, answer in enumerate(printed)]
    names = [answer.split(" = ")[0] for answer in printed]
    values = [answer.split(" = ")[1] for answer in printed]
    rows += [{"student": "", "question": "q1", "answer": f"{names[1]} = {values[0]}"},
             {"student": "", "question": "q3", "answer": f"{names[0]} = {values[2]}"},
             {"student": "", "question": "q1", "answer": f"{names[0].replace('2,2', '2,1')} = {values[0]}"}]
    verdicts = sb.grade(made, rows)
    assert [v.verdict for v in verdicts[:4]] == ["correct"] * 4, [(r["answer"], v.message) for r, v in
                                                                  zip(rows, verdicts)]
    for row, verdict in zip(rows[4:], verdicts[4:]):
        assert verdict.verdict == "cannot read" and "not what this question asks" in verdict.message, \
            (row["answer"], verdict.message)
        assert names[0].split("partial", 2)[2].strip(" }") in verdict.message or \
            names[2].split("partial", 2)[2].strip(" }") in verdict.message, verdict.message  # the asked name


@pytest.mark.parametrize("notation, questions", [("default", "grad_b[0][1],grad_b[2][1]"),
                                                 ("haykin", "grad_b[0][1],grad_w[2][0][1]")])
def test_a_name_two_questions_print_alike_is_read_as_each_ones_own(notation, questions):
    """b_{1} is the conv layer's bias and the dense layer's (Haykin's w_{10} the conv bias and the dense
    weight from unit 0 to unit 1): the question's text shows which, so each question reads it as its own."""
    made = sb.exercises(sb.from_dict(CONV), notation=notation, questions=questions)
    printed = _printed_answers(made)
    assert printed[0].split(" = ")[0] == printed[1].split(" = ")[0], printed
    verdicts = sb.grade(made, [{"student": "", "question": q, "answer": a} for q, a in zip(("q1", "q2"), printed)])
    assert [v.verdict for v in verdicts] == ["correct", "correct"], [v.message for v in verdicts]


@requires_pdflatex
def test_a_16_channel_conv_and_a_dense_layer_of_10_fit_the_page_width(tmp_path):
    """The 16 biases of the conv layer ran 21 pt past the right margin, the dense layer's table of 10
    columns 47 pt and the key's row of its 64 inputs (a column) off the foot of the page (pdflatex:
    Overfull \\hbox, \\vbox): long rows wrap, the table is split by columns; every number is still there."""
    spec = sb.from_dict({"network": {"input_shape": [1, 4, 4], "loss": "half_sse",
                                     "layer": [{"kind": "conv", "channels": 16, "kernel": [3, 3], "padding": 1,
                                                "activation": "tanh"},
                                               {"kind": "max_pool", "size": [2, 2]},
                                               {"kind": "dense", "units": 10, "activation": "identity"}]}})
    made = sb.exercises(spec, students=["ada"], seed=1, questions="grad_w[l][o][c][u][v],grad_b[l][o],grad_w,grad_b")
    sb.exercises.write(made, tmp_path / "set", ["tex", "md"])
    for tex in (tmp_path / "set" / "key.tex", tmp_path / "set" / "ada" / "sheet.tex"):
        output = compile_tex(tex)
        assert "Overfull" not in output, (tex.name, output[output.find("Overfull"):][:300])
    sheet = (tmp_path / "set" / "ada" / "sheet.md").read_text(encoding="utf-8")
    drawn = made.variant("ada").example
    shown = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", sheet)]  # a weight -1 prints as -1
    for value in [*drawn["biases"][0], *drawn["biases"][2], *np.ravel(drawn["weights"][2])]:
        assert any(abs(value - x) < 1e-9 for x in shown), value
    assert "column 9" in sheet and len(re.findall(r"\| row \| column", sheet)) == 2
    rows = list(csv.DictReader((tmp_path / "set" / "key.csv").read_text(encoding="utf-8").splitlines()))
    assert [v.verdict for v in sb.grade(made, rows)] == ["correct"] * len(rows)
