"""Tests for symbackprop.grading: verdicts, diagnoses, batch grading, hostile answers.

Every expected verdict comes from the textbook formula written by hand: BP2 for a hidden
delta (delta_j = g'(z_j) sum_k w_jk delta_k), (a_k - t_k) g'(z_k) for an output delta with
half the sum of squares, dE/dw_ij = delta_j a_i, Delta w_ij = -eta delta_j a_i, each in the
spelling of the notation preset (Haykin: delta_j = -dE/dv_j, e_j = d_j - y_j)."""
import csv
import json
import subprocess
import sys
import time

import pytest
from hostile import CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop import grading
from symbackprop.errors import SpecError

# sigmoid everywhere, so a missing g' of the output is a real mistake; two outputs
SPEC = sb.compact("2-3-2", "sigmoid,sigmoid")


@pytest.fixture(scope="module")
def prepared():
    cache = {}

    def get(target, notation="default", spec=SPEC):
        key = (target, notation, id(spec))
        if key not in cache:
            cache[key] = grading.prepare(spec.network, target, notation, spec.values, spec.learning_rate)
        return cache[key]
    return get


def verdict(prepared, target, answer, notation="default", spec=SPEC):
    return grading.check_prepared(prepared(target, notation, spec), answer)


CORRECT = [
    ("default", "delta_hidden", "\\delta_j = g'(z_j)\\sum_k w_{jk}\\delta_k"),
    ("default", "delta_hidden", "g'(z_j)*sum(w_jk*delta_k, k)"),
    ("default", "delta_hidden", "sum(delta_k*w_jk, k)*g'(z_j)"),
    ("default", "delta_hidden", "a_j (1 - a_j) \\sum_k w_{jk} \\delta_k"),
    ("default", "delta_hidden", "\\sigma'(z_j) \\sum_m w_{jm} \\delta_m"),
    ("default", "delta_hidden", "\\delta_j = \\frac{\\partial E}{\\partial z_j} = g'(z_j)\\sum_k w_{jk}\\delta_k"),
    ("default", "delta_hidden", "(a_j - a_j^2) sum(w_jk*delta_k, k)"),
    ("default", "delta_hidden", "sigmoid(z_j)*(1 - sigmoid(z_j))*sum(w_jk*delta_k, k)"),
    ("default", "delta_output", "(a_k - t_k) a_k (1 - a_k)"),
    ("default", "delta_output", "\\delta_k = \\frac{\\partial E}{\\partial a_k} \\sigma'(z_k)"),
    ("default", "delta_output", "a_k^2 (t_k - a_k) + a_k (a_k - t_k)"),
    ("default", "grad_w_hidden", "\\frac{\\partial E}{\\partial w_{ij}} = \\delta_j a_i"),
    ("default", "grad_w_hidden", "a_i*g'(z_j)*sum(w_jk*delta_k, k)"),
    ("default", "grad_w_output", ("\\frac{\\partial E}{\\partial w_{jk}} = \\frac{\\partial E}{\\partial z_k}"
                                 "\\frac{\\partial z_k}{\\partial w_{jk}} = (a_k - t_k) g'(z_k) a_j")),
    ("default", "grad_b_hidden", "delta_j"),
    ("default", "grad_b_output", "(a_k - t_k)*a_k*(1-a_k)"),
    ("default", "update_w_hidden", "\\Delta w_{ij} = -\\eta \\delta_j a_i"),
    ("default", "update_w_hidden", "w_{ij} \\leftarrow w_{ij} - \\eta \\delta_j a_i"),
    ("default", "update_w_hidden", "w_ij - eta*a_i*delta_j"),
    ("default", "update_w_output", "-lr * delta_k * a_j"),
    ("default", "delta_hidden", "g'(zj) * sum_k wjk*deltak"),
    ("default", "delta_hidden", "delta_j = f'(z_j) * sum_{k} w_{jk} delta_k"),
    ("default", "delta_hidden", "phi'(z_j) sum_k(w_jk delta_k)"),
    ("haykin", "delta_output", "\\delta_j(n) = e_j(n)\\varphi'_j(v_j(n))"),
    ("haykin", "delta_output", "(d_j - y_j) y_j (1 - y_j)"),
    ("haykin", "delta_hidden", "\\varphi'(v_j) \\sum_k \\delta_k w_{kj}"),
    ("haykin", "update_w_hidden", "\\Delta w_{ji} = \\eta \\delta_j y_i"),
    ("haykin", "update_w_hidden", "w_{ji}(n+1) = w_{ji}(n) + \\eta \\delta_j(n) y_i(n)"),
    ("haykin", "grad_b_hidden", "\\frac{\\partial E}{\\partial w_{j0}} = -\\delta_j"),
    ("nielsen", "delta_hidden", "\\delta^l_j = \\sum_k w^{l+1}_{kj} \\delta^{l+1}_k \\sigma'(z^l_j)"),
    ("nielsen", "delta_output", "\\delta^L_j = \\frac{\\partial C}{\\partial a^L_j} \\sigma'(z^L_j)"),
    ("nielsen", "grad_w_hidden", "\\frac{\\partial C}{\\partial w^l_{jk}} = a^{l-1}_k \\delta^l_j"),
    ("wikipedia", "delta_hidden", "\\varphi'(\\mathrm{net}_j) \\sum_{\\ell} w_{j\\ell} \\delta_\\ell"),
    ("wikipedia", "grad_w_hidden", "o_i \\delta_j"),
    ("bishop", "delta_hidden", "h'(a_j) \\sum_k w_{kj} \\delta_k"),
    ("bishop", "grad_w_output", "(y_k - t_k) y_k (1 - y_k) z_j"),
    ("xhy", "update_w_hidden", "\\Delta w_{ij} = -\\alpha \\delta_j x_i"),
    ("arrows", "delta_output", "(\\hat{y}_j - y_j) f'_j(s_j)"),
]


@pytest.mark.parametrize("notation, target, answer", CORRECT)
def test_correct_answers_in_every_form_pass(prepared, notation, target, answer):
    result = verdict(prepared, target, answer, notation)
    assert result.verdict == "correct", (result.message, result.diagnosis)
    assert result.exit_status == 0


MISTAKES = [
    ("default", "delta_output", "(t_k - a_k) g'(z_k)", "sign error"),
    ("haykin", "delta_output", "(y_j - d_j) \\varphi'(v_j)", "sign error"),
    ("default", "delta_hidden", "\\sum_k w_{jk} \\delta_k", "missing activation derivative"),
    ("haykin", "delta_output", "e_j", "missing activation derivative"),
    ("default", "delta_hidden", "sum(g'(z_k)*w_jk*delta_k, k)", "derivative of the wrong unit"),
    ("nielsen", "delta_hidden", "\\sum_k w^{l+1}_{kj} \\delta^{l+1}_k \\sigma'(z^{l+1}_k)",
     "derivative of the wrong unit"),
    ("default", "delta_output", "(a_k - t_k) g'(z_j)", "derivative of the wrong unit"),
    ("default", "delta_hidden", "g'(z_j) \\sum_k w_{kj} \\delta_k", "transposed weight index"),
    ("nielsen", "delta_hidden", "\\sum_k w^{l+1}_{jk} \\delta^{l+1}_k \\sigma'(z^l_j)", "transposed weight index"),
    ("haykin", "delta_hidden", "\\varphi'(v_j) \\sum_k \\delta_k w_{jk}", "transposed weight index"),
    ("default", "delta_hidden", "g'(z_j) w_{jk} \\delta_k", "missing sum"),
    ("haykin", "delta_hidden", "phi'(v_j) delta_k w_kj", "missing sum"),
    ("default", "delta_hidden", "g'(z_j) \\sum_j w_{jk} \\delta_k", "sum over the wrong index"),
    ("wikipedia", "delta_hidden", "\\varphi'(net_j) \\sum_i w_{j\\ell} \\delta_\\ell", "sum over the wrong index"),
    ("default", "delta_hidden", "(a_j - t_j) g'(z_j)", "output formula for a hidden unit"),
    ("haykin", "delta_hidden", "e_j \\varphi'(v_j)", "output formula for a hidden unit"),
    ("default", "delta_output", "2 (a_k - t_k) g'(z_k)", "factor 2"),
    ("nielsen", "delta_output", "2(a_j - y_j)\\sigma'(z_j)", "factor 2"),
    ("default", "grad_w_output", "\\frac{1}{2} (a_k - t_k) g'(z_k) a_j", "factor 1/2"),
    ("haykin", "delta_output", "0.5 e_j \\varphi'(v_j)", "factor 1/2"),
    ("default", "grad_w_hidden", "\\delta_j a_j", "input of the wrong layer"),
    ("nielsen", "grad_w_output", "a_j \\delta_j", "input of the wrong layer"),
    ("default", "update_w_output", "\\Delta w_{jk} = -\\delta_k a_j", "missing learning rate"),
    ("haykin", "update_w_hidden", "\\delta_j y_i", "missing learning rate"),
    ("default", "update_w_hidden", "w_{ij} + \\eta \\delta_j a_i", "sign error"),
    ("haykin", "update_w_hidden", "\\Delta w_{ji} = -\\eta \\delta_j y_i", "sign error"),
]


@pytest.mark.parametrize("notation, target, answer, mistake", MISTAKES)
def test_known_mistakes_are_named_with_a_point_where_they_differ(prepared, notation, target, answer, mistake):
    result = verdict(prepared, target, answer, notation)
    assert result.verdict == "incorrect" and result.exit_status == 1
    assert result.message.lower().rstrip(".") == mistake, (result.message, result.diagnosis)
    assert result.diagnosis and result.counterexample["expected"] != result.counterexample["answer"]


def test_every_diagnosis_is_tested_in_two_notations():
    for name in {m.name for m in grading.MISTAKES}:
        assert len({n for n, _, _, m in MISTAKES if m == name}) >= 2, name


def test_diagnoses_speak_in_the_students_notation(prepared):
    haykin = verdict(prepared, "delta_hidden", "\\varphi'(v_j) \\sum_k \\delta_k w_{jk}", "haykin")
    assert "correct if w_jk were w_kj" in haykin.diagnosis[0]
    default = verdict(prepared, "delta_hidden", "g'(z_j) \\sum_k w_{kj} \\delta_k")
    assert "correct if w_kj were w_jk" in default.diagnosis[0]
    missing = verdict(prepared, "delta_output", "e_j", "haykin")
    assert "phi'(v_j)" in missing.diagnosis[0]


NEAR_MISSES = [
    ("delta_hidden", "a_j (1 + a_j) \\sum_k w_{jk} \\delta_k"),
    ("delta_hidden", "g'(z_j)*sum(w_jk*delta_k, k) + 0.000001"),
    ("delta_hidden", "1.000001*g'(z_j)*sum(w_jk*delta_k, k)"),
    ("delta_hidden", "g'(z_j)*sum(w_jk*delta_k*a_k, k)"),
    ("delta_hidden", "g'(z_j)*(w_j1*delta_1 + w_j2*delta_2)"),
    ("delta_output", "(a_k - t_k) a_k (1 - a_k)^2"),
    ("delta_output", "(a_k - t_k) (1 - a_k)"),
    ("grad_w_hidden", "\\delta_j a_i + \\delta_j"),
    ("update_w_hidden", "w_ij - eta*delta_j*a_i*a_i"),
]


@pytest.mark.parametrize("target, answer", NEAR_MISSES)
def test_near_misses_fail(prepared, target, answer):
    assert verdict(prepared, target, answer).verdict in ("incorrect", "cannot read")


def test_a_constant_factor_is_reported(prepared):
    result = verdict(prepared, "delta_hidden", "3*g'(z_j)*sum(w_jk*delta_k, k)")
    assert result.verdict == "incorrect" and "3 times the correct one" in result.diagnosis[0]


def test_activation_specific_forms_follow_the_spec():
    """sigma'(z_j) is right when the hidden layer is sigmoid and wrong when it is tanh."""
    tanh = sb.compact("2-3-1", "tanh,identity")
    prepared = grading.prepare(tanh.network, "delta_hidden")
    assert grading.check_prepared(prepared, "(1 - a_j^2) sum(w_jk*delta_k, k)").verdict == "correct"
    assert grading.check_prepared(prepared, "g'(z_j) sum(w_jk*delta_k, k)").verdict == "correct"
    assert grading.check_prepared(prepared, "a_j(1 - a_j) sum(w_jk*delta_k, k)").verdict == "incorrect"


def test_layer_superscripts_against_the_letters(prepared):
    result = verdict(prepared, "delta_hidden", "\\sum_k w^{l}_{kj} \\delta^{l+1}_k \\sigma'(z^l_j)", "nielsen")
    assert result.verdict == "incorrect" and "layer superscript" in result.diagnosis[0]


def test_free_index_and_wrong_left_hand_side(prepared):
    assert "index m" in verdict(prepared, "delta_hidden", "g'(z_j) w_jm delta_m").message
    wrong_lhs = verdict(prepared, "delta_hidden", "\\delta_k = g'(z_j)\\sum_k w_{jk}\\delta_k")
    assert wrong_lhs.verdict == "incorrect" and wrong_lhs.message.startswith("The left-hand side")


def test_concrete_targets_in_network_symbols_and_numbers(prepared):
    example = sb.example(SPEC.network, SPEC.values, SPEC.learning_rate)
    gradient = example.evaluation.gradients[sb.network.layer_weight(1, 2, 0)]
    assert verdict(prepared, "grad_w[1][2][0]", "delta[1][0]*a[0][2]").verdict == "correct"
    assert verdict(prepared, "grad_w[1][2][0]", "(a[1][0]-t[0])*a[1][0]*(1-a[1][0])*a[0][2]").verdict == "correct"
    assert verdict(prepared, "grad_w[1][2][0]", f"{gradient:.6f}").verdict == "correct"
    flipped = verdict(prepared, "grad_w[1][2][0]", f"{-gradient:.6f}")
    assert flipped.verdict == "incorrect" and flipped.message == "Sign error."
    assert verdict(prepared, "grad_w[1][2][0]", "delta[1][0]*a[0][1]").verdict == "incorrect"
    hidden = "g'(z[0][1])*(w[1][1][0]*delta[1][0] + w[1][1][1]*delta[1][1])"
    assert verdict(prepared, "delta[0][1]", hidden).verdict == "correct"
    assert verdict(prepared, "delta[0][1]", "g'(z[0][1])*w[1][1][0]*delta[1][0]").verdict == "incorrect"
    new_weight = SPEC.values.parameters[sb.network.layer_weight(1, 2, 0)] - SPEC.learning_rate * gradient
    assert verdict(prepared, "update_w[1][2][0]", f"{new_weight:.6f}").verdict == "correct"
    assert verdict(prepared, "update_w[1][2][0]", "w[1][2][0] - eta*delta[1][0]*a[0][2]").verdict == "correct"
    assert verdict(prepared, "delta[0][1]", "z_7").verdict == "cannot read"


def test_bad_targets_are_spec_errors():
    with pytest.raises(sb.SpecError, match="unknown target"):
        grading.prepare(SPEC.network, "delta_outptu")
    with pytest.raises(sb.SpecError, match="outside the network"):
        grading.prepare(SPEC.network, "grad_w[5][0][0]")


@pytest.mark.parametrize("text", CORPUS)
def test_hostile_answers_are_refused_quickly_and_run_nothing(prepared, text, tmp_path):
    canary = tmp_path / "canary"
    start = time.perf_counter()
    result = verdict(prepared, "delta_hidden", text.format(canary=canary))
    assert result.verdict in ("cannot read", "incorrect")
    assert time.perf_counter() - start < 2.0
    assert not canary.exists()


def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_check_cli_exit_status_and_json():
    right = run("check", "--target", "delta_hidden", "--answer", "g'(z_j)*sum(w_jk*delta_k, k)")
    assert right.returncode == 0 and right.stdout.startswith("correct")
    wrong = run("check", "--target", "delta_hidden", "--answer", "g'(z_j)*sum(w_kj*delta_k, k)", "--json")
    data = json.loads(wrong.stdout)
    assert wrong.returncode == 1 and set(data) == {"verdict", "message", "diagnosis", "counterexample"}
    assert data["message"] == "Transposed weight index." and "expected" in data["counterexample"]
    unreadable = run("check", "--target", "delta_hidden", "--answer", "\\input{/etc/passwd}")
    assert unreadable.returncode == 2 and unreadable.stdout.startswith("cannot read")
    bad = run("check", "--target", "delta_nowhere", "--answer", "a_j")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown target" in bad.stderr


def test_grade_cli_marks_every_row_and_writes_both_reports(tmp_path):
    canary = tmp_path / "canary"
    rows = [("1", "delta_hidden", "g'(z_j)*sum(w_jk*delta_k, k)", "alice"),
            ("2", "delta_hidden", "g'(z_j) w_jk delta_k", "bob"),
            ("3", "grad_w_output", "delta_k a_j", "carol"),
            ("4", "no_such_target", "a_j", "dave")]
    rows += [(str(10 + n), "delta_hidden", text.format(canary=canary), "mallory") for n, text in enumerate(CORPUS)]
    rows.append(("99", "delta[0][0]" * 10_000, "a_j", "eve"))  # a hostile target is marked, not copied
    submissions = tmp_path / "answers.csv"
    with open(submissions, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "target", "answer", "student"])
        writer.writerows(rows)
    report = tmp_path / "out" / "report.csv"
    result = run("grade", str(SPEC_FILE(tmp_path)), str(submissions), "-o", str(report))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [str(report), str(report.with_suffix(".md"))]
    assert result.stdout.splitlines()[2].startswith(f"{len(rows)} answers: 2 correct, ")
    with open(report, newline="", encoding="utf-8") as stream:
        graded = list(csv.DictReader(stream))
    assert [r["id"] for r in graded] == [r[0] for r in rows] and graded[0]["student"] == "alice"
    assert [r["verdict"] for r in graded[:4]] == ["correct", "incorrect", "correct", "cannot read"]
    assert graded[1]["message"] == "Missing sum."
    assert all(r["verdict"] in ("cannot read", "incorrect") for r in graded[4:])
    assert "unknown target" in graded[-1]["message"] and len(graded[-1]["target"]) < 300
    summary = report.with_suffix(".md").read_text()
    assert "| delta_hidden |" in summary and "Missing sum" in summary
    assert not canary.exists()


def SPEC_FILE(folder):
    path = folder / "spec.toml"
    path.write_text('[network]\nlayers = [2, 3, 2]\nactivation = "sigmoid"\n')
    return path


def test_grade_cli_refuses_a_file_without_the_header_and_writes_nothing(tmp_path):
    submissions = tmp_path / "answers.csv"
    submissions.write_text("1,delta_hidden,a_j\n")
    report = tmp_path / "report.csv"
    result = run("grade", str(SPEC_FILE(tmp_path)), str(submissions), "-o", str(report))
    assert result.returncode == 2 and "header row" in result.stderr and result.stderr.count("\n") == 1
    assert not report.exists() and not report.with_suffix(".md").exists()


def test_a_stuck_answer_is_stopped_and_the_batch_goes_on(monkeypatch):
    original = grading.check_prepared

    def slow(prepared, text):
        if text == "STUCK":
            time.sleep(60)
        return original(prepared, text)

    monkeypatch.setattr(grading, "check_prepared", slow)  # forked workers inherit it
    rows = [{"id": "1", "target": "delta_hidden", "answer": "STUCK"},
            {"id": "2", "target": "delta_hidden", "answer": "g'(z_j)*sum(w_jk*delta_k, k)"}]
    start = time.perf_counter()
    verdicts = grading.grade(SPEC, rows, workers=2, seconds=1.0)
    assert time.perf_counter() - start < 30
    assert verdicts[0].verdict == "cannot read" and "longer than 1 s" in verdicts[0].message
    assert verdicts[1].verdict == "correct"


def test_softmax_cross_entropy_and_mean_squared_error_outputs():
    softmax = sb.compact("3-4-3", "tanh,softmax", "cross_entropy")
    prepared = grading.prepare(softmax.network, "delta_output")
    assert grading.check_prepared(prepared, "a_k - t_k").verdict == "correct"
    assert grading.check_prepared(prepared, "t_k - a_k").message == "Sign error."
    assert "softmax" in grading.check_prepared(prepared, "(a_k - t_k) g'(z_k)").message
    # mse = sum (a - t)^2 / K: the test networks have 2 and 3 outputs, so 2/K = 1 cannot pass by luck
    mse = sb.compact("2-3-2", "relu,identity", "mse")
    prepared = grading.prepare(mse.network, "delta_output")
    assert grading.check_prepared(prepared, "2 (a_k - t_k) / K").verdict == "correct"
    assert grading.check_prepared(prepared, "(a_k - t_k)").verdict == "incorrect"


def test_graph_specs_take_generic_targets_and_biasless_networks_refuse_bias_targets():
    net = sb.graph(["x1", "x2"], [{"name": "h1", "inputs": ["x1", "x2"], "activation": "tanh", "group": "h"},
                                  {"name": "h2", "inputs": ["x1", "x2"], "activation": "tanh", "group": "h"},
                                  {"name": "o", "inputs": ["h1", "h2"], "activation": "identity"}], ["o"])
    prepared = grading.prepare(net, "delta_hidden")
    assert grading.check_prepared(prepared, "(1 - a_j^2) sum(w_jk delta_k, k)").verdict == "correct"
    with pytest.raises(sb.SpecError, match="no biases"):
        grading.prepare(sb.compact("2-3-1", bias=False).network, "grad_b_hidden")


def test_one_output_texts_and_the_index_of_a_units_function(prepared):
    # the blog in shared/seeds/002 writes delta_j = (y-hat - y) f'_j(s_j) for its single output
    assert verdict(prepared, "delta_output", "\\delta_j = (\\hat{y} - y)f'_j(s_j)", "arrows").verdict == "correct"
    # shared/seeds/003 speaks of "fi prime at neuron j": the derivative of another unit's function
    wrong = verdict(prepared, "delta_output", "(\\hat{y} - y)f'_i(s_j)", "arrows")
    assert wrong.verdict == "incorrect" and "function's index i" in wrong.diagnosis[0]


def test_sign_messages_fit_the_target_and_the_notation(prepared):
    hidden = verdict(prepared, "delta_hidden", "-g'(z_j) sum(w_jk delta_k, k)")
    assert "passes unchanged through w_jk delta_k" in hidden.diagnosis[0]
    haykin = verdict(prepared, "grad_w_hidden", "delta_j y_i", "haykin")
    assert haykin.message == "Sign error." and "dE/dw_ji = -delta_j y_i" in haykin.diagnosis[0]
    update = verdict(prepared, "update_w_output", "eta delta_k a_j")
    assert "gradient descent moves against the gradient" in update.diagnosis[0]


def test_report_lists_counts_and_example_ids():
    rows = [{"id": str(n), "target": "delta_hidden", "answer": answer}
            for n, answer in enumerate(["g'(z_j) w_jk delta_k", "g'(z_j) w_jk delta_k", "q", "delta_j"])]
    verdicts = [grading.Verdict("incorrect", "Missing sum."), grading.Verdict("incorrect", "Missing sum."),
                grading.Verdict("cannot read", "unknown symbol q at column 1"), grading.Verdict("correct", "Correct.")]
    summary = grading.report_markdown(rows, verdicts)
    assert "| delta_hidden | 4 | 1 | 2 | 1 |" in summary
    assert "- 2 x Missing sum (e.g. id 0, 1)" in summary and "unknown symbol q at column ..." in summary


def test_spreadsheet_exports_with_a_byte_order_mark_and_capitalised_headers_are_read(tmp_path):
    submissions = tmp_path / "export.csv"
    submissions.write_bytes("\ufeffID, Target ,Answer,student\n1,delta_hidden,g'(z_j) sum_k w_jk delta_k,ann\n2,delta_hidden\n"
                            .encode("utf-8"))
    header, rows = grading.read_submissions(submissions)
    assert header[:3] == ["id", "target", "answer"] and rows[0]["student"] == "ann"
    verdicts = grading.grade(SPEC, rows, workers=1)
    assert verdicts[0].verdict == "correct" and verdicts[1].message == "the row has no answer column"


def test_a_report_that_cannot_be_written_leaves_the_old_one(tmp_path):
    (tmp_path / "report.md").mkdir()  # the summary cannot be written where a folder is
    (tmp_path / "report.csv").write_text("the old report")
    rows = [{"id": "1", "target": "delta_hidden", "answer": "delta_j"}]
    with pytest.raises(SpecError, match="is a folder"):
        grading.write_report(tmp_path / "report.csv", ["id", "target", "answer"], rows,
                             [grading.Verdict("correct", "Correct.")])
    assert (tmp_path / "report.csv").read_text() == "the old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv", "report.md"]


@pytest.mark.parametrize("notation, target, answer", [
    ("default", "delta_hidden", "\\delta_j"),
    ("default", "delta_hidden", "\\frac{\\partial E}{\\partial z_j}"),
    ("default", "delta_hidden", "\\frac{\\partial E}{\\partial a_j} \\frac{\\partial a_j}{\\partial z_j}"),
    ("default", "grad_w_output", "\\frac{\\partial E}{\\partial w_{jk}}"),
    ("haykin", "delta_hidden", "-\\frac{\\partial E}{\\partial v_j}"),
    ("haykin", "grad_b_output", "\\frac{\\partial E}{\\partial w_{j0}}"),
])
def test_restating_the_target_is_no_derivation(prepared, notation, target, answer):
    result = verdict(prepared, target, answer, notation)
    assert result.verdict == "incorrect" and result.message == "The answer restates what it should derive."


def test_bp1_with_de_da_is_the_output_answer(prepared):
    assert verdict(prepared, "delta_output", "\\frac{\\partial E}{\\partial a_k} g'(z_k)").verdict == "correct"


def test_left_hand_sides_of_updates(prepared):
    assert verdict(prepared, "update_w_hidden", "w_{ij}^+ = w_{ij} - \\eta\\delta_j a_i").verdict == "correct"
    assert verdict(prepared, "update_w_hidden", "\\Delta w_{jk} = -\\eta\\delta_j a_i").message == \
        "The left-hand side is not Delta w_ij."
    assert verdict(prepared, "delta_hidden", "\\Delta w_{ij} = g'(z_j)").message.startswith(
        "The left-hand side is a weight update")


def test_grade_shows_progress_on_a_terminal(tmp_path, monkeypatch):
    import io

    from symbackprop import progress
    from symbackprop.cli import main

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr(progress, "DELAY", -1.0)
    monkeypatch.setattr(progress, "INTERVAL", -1.0)
    submissions = tmp_path / "answers.csv"
    submissions.write_text("id,target,answer\n" + "".join(f"s{n},delta_output,a_k - t_k\n" for n in range(3)))
    assert main(["grade", str(submissions), "-o", str(tmp_path / "report")]) == 0
    assert "\rgrading: 3/3" in terminal.getvalue()


SLOPES = ["g'(z_j)", "a_j (1 - a_j)", "(a_j - a_j^2)", "sigmoid(z_j)*(1 - sigmoid(z_j))", "\\sigma'(z_j)",
          "\\frac{\\partial a_j}{\\partial z_j}", "\\frac{1}{1 + exp(-z_j)} \\frac{exp(-z_j)}{1 + exp(-z_j)}"]
BACKWARD = ["\\sum_k w_{jk}\\delta_k", "sum(delta_k*w_jk, k)", "\\sum_{m} \\delta_m w_{jm}", "sum_k w_jk delta_k",
            "\\sum_k \\frac{\\partial z_k}{\\partial a_j} \\delta_k"]


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.sampled_from(SLOPES), st.sampled_from(BACKWARD), st.booleans(), st.booleans(),
       st.sampled_from(["", "1*", "2*0.5*", "\\frac{3}{3}"]))
def test_every_spelling_of_bp2_passes(prepared, slope, backward, swap, left, unit):
    factors = [f"({slope})", f"({backward})"]
    text = unit + (" ".join(factors[::-1]) if swap else " ".join(factors))
    assert verdict(prepared, "delta_hidden", ("\\delta_j = " if left else "") + text).verdict == "correct", text


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from(SLOPES), st.sampled_from(BACKWARD),
       st.sampled_from([" + 0.001 a_j", "*1.0001", " - 0.0001", "*a_j", " + \\delta_j", "*(1 + t_j - t_j + 1e-5)"]))
def test_every_small_change_of_bp2_fails(prepared, slope, backward, change):
    text = f"({slope}) ({backward}){change}"
    assert verdict(prepared, "delta_hidden", text).verdict == "incorrect", text


def test_a_hidden_counterexample_has_what_bp2_needs_to_be_redone_by_hand(prepared):
    """Haykin: delta_j = y_j (1 - y_j) sum_k delta_k w_kj (sigmoid hidden layer), from the shown numbers."""
    result = verdict(prepared, "delta_hidden", "phi'(v_j) sum_k delta_k w_jk", "haykin")
    shown = result.counterexample["values"]
    y = shown["y_j"]
    by_hand = y * (1 - y) * sum(d * w for d, w in zip(shown["delta_k for k = 0, 1, ..."],
                                                       shown["w_kj for k = 0, 1, ..."]))
    assert by_hand == pytest.approx(result.counterexample["expected"], rel=1e-9)


def test_an_output_answer_in_the_hidden_layer_letters_is_read_that_way(prepared):
    """The default notation calls the output unit k (fed by j); many students call it j (fed by i)."""
    right = verdict(prepared, "grad_w_output", "\\delta_j a_i")
    assert right.verdict == "correct" and "read with j as the output unit" in right.message
    wrong = verdict(prepared, "delta_output", "(t_j - a_j) a_j (1 - a_j)")
    assert wrong.message == "Sign error." and "negative of delta_j" in wrong.diagnosis[1]
    assert verdict(prepared, "delta_output", "(a_j - t_k) g'(z_j)").verdict == "incorrect"
