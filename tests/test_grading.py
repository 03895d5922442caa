"""Tests for symbackprop.grading: verdicts, diagnoses, batch grading, hostile answers.

Every expected verdict comes from the textbook formula written by hand: BP2 for a hidden
delta (delta_j = g'(z_j) sum_k w_jk delta_k), (a_k - t_k) g'(z_k) for an output delta with
half the sum of squares, dE/dw_ij = delta_j a_i, Delta w_ij = -eta delta_j a_i, each in the
spelling of the notation preset (Haykin: delta_j = -dE/dv_j, e_j = d_j - y_j)."""
import csv
import functools
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
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
    ("default", "delta_hidden", "(1 - a_j^2) \\sum_k w_{jk} \\delta_k", "another activation's derivative"),
    ("haykin", "delta_hidden", "(1 - y_j^2) \\sum_k \\delta_k w_{kj}", "another activation's derivative"),
    ("default", "grad_w_hidden", "\\delta_i a_j", "swapped unit indices"),
    ("haykin", "grad_w_hidden", "-\\delta_i y_j", "swapped unit indices"),
    ("nielsen", "grad_w_hidden", "a_j \\delta_k", "swapped unit indices"),
    ("default", "grad_w_hidden", "\\delta_j z_i", "pre-activation for the activation"),
    ("wikipedia", "grad_w_hidden", "\\delta_j net_i", "pre-activation for the activation"),
    ("default", "delta_hidden", "g'(z_j) \\sum_k w_{jk} (a_k - t_k) g'(z_k)", "output delta in a hidden formula"),
    ("haykin", "delta_hidden", "\\varphi'(v_j) \\sum_k e_k \\varphi'(v_k) w_{kj}", "output delta in a hidden formula"),
    ("default", "update_w_output", "w_{jk} \\leftarrow -\\eta \\delta_k a_j", "old weight missing"),
    ("nielsen", "update_w_hidden", "w^l_{jk} \\rightarrow -\\eta a^{l-1}_k \\delta^l_j", "old weight missing"),
    ("default", "delta_hidden", "g'(z_j) \\sum_k w_{jk} \\frac{\\partial E}{\\partial a_k}", "derivative of the layer above skipped"),
    ("haykin", "delta_hidden", "-\\varphi'(v_j) \\sum_k w_{kj} \\frac{\\partial E}{\\partial y_k}",
     "derivative of the layer above skipped"),
    ("nielsen", "delta_hidden", "\\sigma'(a^l_j) \\sum_k w^{l+1}_{kj} \\delta^{l+1}_k", "derivative at the activation"),
    ("haykin", "delta_output", "e_j \\varphi'(y_j)", "derivative at the activation"),
]
#: mistakes only a particular network can show: (activations, loss) of a 2-3-2 network
SPEC_MISTAKES = [
    (("tanh,sigmoid", "half_sse"), "default", "delta_hidden", "a_j (1 - a_j) \\sum_k w_{jk} \\delta_k",
     "another activation's derivative"),
    (("softplus,sigmoid", "half_sse"), "nielsen", "delta_hidden", ("\\sigma(z^l_j)(1 - \\sigma(z^l_j)) \\sum_k "
     "w^{l+1}_{kj} \\delta^{l+1}_k"), "another activation's derivative"),
    (("sigmoid,identity", "half_sse"), "default", "delta_hidden", "\\sum_k a_k (1 - a_k) w_{jk} \\delta_k",
     "derivative of the wrong unit"),
    (("sigmoid,identity", "half_sse"), "haykin", "delta_hidden", "\\sum_k y_k (1 - y_k) \\delta_k w_{kj}",
     "derivative of the wrong unit"),
    (("sigmoid,sigmoid", "mse"), "default", "delta_output", "(a_k - t_k) g'(z_k)", "missing 2/K"),
    (("sigmoid,sigmoid", "mse"), "haykin", "delta_output", "e_j \\varphi'(v_j)", "missing 2/K"),
    (("sigmoid,sigmoid", "mse"), "default", "delta_output", "2 (a_k - t_k) g'(z_k)", "missing 1/K"),
    (("sigmoid,sigmoid", "mse"), "nielsen", "delta_output", "2 (a_j - y_j) \\sigma'(z_j)", "missing 1/K"),
    (("tanh,tanh", "half_sse"), "haykin", "delta_output", "e_j (1 - y_j)^2", "(1 - tanh)^2 for 1 - tanh^2"),
    (("tanh,tanh", "half_sse"), "nielsen", "delta_hidden",
     "(1 - \\tanh(z^l_j))^2 \\sum_k w^{l+1}_{kj} \\delta^{l+1}_k", "(1 - tanh)^2 for 1 - tanh^2"),
    (("sigmoid,softmax", "cross_entropy"), "nielsen", "delta_output", "(a^L_j - y_j) a^L_j (1 - a^L_j)",
     "extra activation derivative"),
    (("sigmoid,sigmoid", "binary_cross_entropy"), "haykin", "delta_output", "e_j y_j (1 - y_j)",
     "extra activation derivative"),
    (("sigmoid,sigmoid", "binary_cross_entropy"), "default", "delta_output", "(a_k - t_k) g'(z_k)",
     "extra activation derivative"),
]


@pytest.mark.parametrize("notation, target, answer, mistake", MISTAKES)
def test_known_mistakes_are_named_with_a_point_where_they_differ(prepared, notation, target, answer, mistake):
    result = verdict(prepared, target, answer, notation)
    assert result.verdict == "incorrect" and result.exit_status == 1
    assert result.message.lower().rstrip(".") == mistake, (result.message, result.diagnosis)
    assert result.diagnosis and result.counterexample["expected"] != result.counterexample["answer"]


@pytest.mark.parametrize("network, notation, target, answer, mistake", SPEC_MISTAKES)
def test_mistakes_a_network_shows_are_named(prepared, network, notation, target, answer, mistake):
    spec = sb.compact("2-3-2", network[0], network[1])
    result = grading.check_prepared(prepared(target, notation, spec), answer)
    assert result.message.rstrip(".") == mistake[0].upper() + mistake[1:], (result.message, result.diagnosis)
    assert result.diagnosis and result.counterexample["expected"] != result.counterexample["answer"]


def test_every_diagnosis_is_tested_in_two_notations():
    from test_grading_recurrent import THROUGH_TIME_MISTAKES  # a recurrent network's, tested there
    named = [(n, m) for n, _, _, m in MISTAKES] + [(n, m) for _, n, _, _, m in SPEC_MISTAKES]
    named += [(n, m) for n, _, _, m in THROUGH_TIME_MISTAKES]
    for name in {m.name for m in grading.MISTAKES if not m.numbers}:  # slips with numbers: test_grading_numbers
        assert len({n for n, m in named if m == name}) >= 2, name


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


def test_swapped_subscripts_under_right_superscripts_are_named_as_a_swap(prepared):
    """Nielsen's a^{l-1}_j delta^l_k: the layers are right, the letters swapped; changing the
    superscripts (the advice a layer check alone gives) would still be wrong."""
    result = verdict(prepared, "grad_w_hidden", "a^{l-1}_j \\delta^l_k", "nielsen")
    assert result.message == "Swapped unit indices." and "exchange j and k" in result.diagnosis[0]
    assert not any("superscript should be" in line for line in result.diagnosis)


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
    assert wrong.returncode == 1 and set(data) == {"verdict", "message", "diagnosis", "counterexample", "lines"}
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
    assert "| `delta_hidden` |" in summary and "Missing sum" in summary
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
    original = grading.judging.check_prepared

    def slow(prepared, text):
        if text == "STUCK":
            time.sleep(60)
        return original(prepared, text)

    monkeypatch.setattr(grading.judging, "check_prepared", slow)  # forked workers inherit it
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
    assert "| `delta_hidden` | 4 | 1 | 2 | 1 |" in summary
    assert "- 2 x Missing sum (e.g. id `0`, `1`)" in summary and "unknown symbol q at column ..." in summary


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


TEXTBOOK = tomllib.loads((Path(__file__).parent / "textbook_answers.toml").read_text(encoding="utf-8"))["answer"]


@pytest.mark.parametrize("entry", TEXTBOOK, ids=lambda e: f"{e['notation']}-{e['target']}-{e['answer'][:30]}")
def test_textbook_spellings_of_correct_answers_are_read_and_correct(prepared, entry):
    spec = spec_with(entry.get("activations", "sigmoid,sigmoid"), entry.get("steps"))
    result = verdict(prepared, entry["target"], entry["answer"], entry["notation"], spec)
    assert result.verdict == "correct", (result.message, result.diagnosis)


@functools.lru_cache
def spec_with(activations, steps=None):
    """The 2-3-2 network with ``activations``; with ``steps``, an Elman network over that many steps."""
    if activations == "sigmoid,sigmoid" and steps is None:
        return SPEC
    return sb.compact("2-3-2", activations, steps=steps)


def test_a_power_on_a_function_is_no_false_accept(prepared):
    """softplus' is sigma, not sigma^2; tanh' is 1 - tanh^2, not 1 - tanh."""
    softplus, tanh = spec_with("softplus,sigmoid"), spec_with("tanh,sigmoid")
    wrong = verdict(prepared, "delta_hidden", "\\delta_j = \\sigma^2(z_j)\\sum_k w_{jk}\\delta_k", spec=softplus)
    assert wrong.verdict == "incorrect"
    for power in ("\\sigma^{3}(z_j)", "\\tanh^2(z_j)", "\\cosh^2(z_j)"):
        assert verdict(prepared, "delta_hidden", f"{power} \\sum_k w_{{jk}}\\delta_k", spec=softplus).verdict == \
            "incorrect"
    right = verdict(prepared, "delta_hidden", "(1-\\tanh^2(z_j))\\sum_k w_{jk}\\delta_k", spec=tanh)
    assert right.verdict == "correct"
    assert verdict(prepared, "delta_hidden", "(1-\\tanh(z_j))\\sum_k w_{jk}\\delta_k", spec=tanh).verdict == \
        "incorrect"


DERIVATION = ["\\delta_j = \\frac{\\partial E}{\\partial z_j}",
              ("= \\sum_k \\frac{\\partial E}{\\partial z_k} \\frac{\\partial z_k}{\\partial a_j} "
               "\\frac{\\partial a_j}{\\partial z_j}"),
              "= g'(z_j) \\sum_k w_{jk} \\delta_k"]


@pytest.mark.parametrize("joined", ["\n", " \\\\ ", "aligned"])
def test_a_right_derivation_is_correct_line_by_line(prepared, joined):
    text = ("\\begin{aligned}" + " \\\\ ".join(line.replace("=", "&=", 1) for line in DERIVATION) + "\\end{aligned}"
            if joined == "aligned" else joined.join(DERIVATION))
    result = verdict(prepared, "delta_hidden", text)
    assert result.verdict == "correct" and result.message == "Correct: each of the 3 lines equals the target."
    assert [line["verdict"] for line in result.lines] == ["correct"] * 3 and result.first_wrong_line is None
    assert result.lines[2] == {"line": 3, "text": DERIVATION[2], "verdict": "correct", "message": "Correct."}


def test_a_wrong_second_line_is_named_with_its_mistake(prepared):
    lines = [DERIVATION[0], "= \\sum_k w_{jk} \\delta_k", DERIVATION[2]]
    result = verdict(prepared, "delta_hidden", "\n".join(lines))
    assert result.verdict == "incorrect" and result.message == "Line 2: missing activation derivative."
    assert result.first_wrong_line == 2 and [x["verdict"] for x in result.lines] == ["correct", "incorrect", "correct"]


def test_a_wrong_last_line_and_a_restating_last_line(prepared):
    wrong = verdict(prepared, "delta_hidden", "\n".join([*DERIVATION[:2], "= g'(z_j) w_{jk} \\delta_k"]))
    assert wrong.message == "Line 3: missing sum." and wrong.first_wrong_line == 3
    restated = verdict(prepared, "delta_hidden", "\n".join([DERIVATION[2], "= \\delta_j"]))
    assert restated.message == "Line 2: the answer restates what it should derive."


@pytest.mark.parametrize("hostile", ["__import__('os').system('touch {canary}')", "9**9**9**9", "\\input{{{canary}}}",
                                     "(" * 900 + "a_j" + ")" * 900])
def test_a_derivation_with_a_hostile_line(prepared, hostile, tmp_path):
    canary = tmp_path / "canary"
    text = "\n".join([DERIVATION[0], hostile.format(canary=canary), DERIVATION[2]])
    start = time.perf_counter()
    result = verdict(prepared, "delta_hidden", text)
    assert time.perf_counter() - start < 2 and not canary.exists()
    assert result.verdict in ("cannot read", "incorrect") and result.message.startswith("Line 2: ")
    assert result.lines[2]["verdict"] == "correct"


def test_messages_say_right_hand_side_not_side_2(prepared):
    result = verdict(prepared, "delta_hidden", "\\delta_j = g'(z_j) w_{jk} \\delta_k")
    assert result.message == "The right-hand side: missing sum."
    chained = verdict(prepared, "delta_hidden", "\\delta_j = g'(z_j) w_{jk} \\delta_k = g'(z_j) \\sum_k w_{jk} \\delta_k")
    assert chained.message == "The expression after the first '=': missing sum."


def test_numbers_do_not_reveal_the_worked_example_unless_asked():
    example = sb.example(SPEC.network, SPEC.values, SPEC.learning_rate)
    gradient = example.evaluation.gradients[sb.network.layer_weight(1, 2, 0)]
    hidden = grading.prepare(SPEC.network, "grad_w[1][2][0]", "default", SPEC.values, SPEC.learning_rate)
    shown = grading.prepare(SPEC.network, "grad_w[1][2][0]", "default", SPEC.values, SPEC.learning_rate, reveal=True)
    for prepared, reveal in ((hidden, False), (shown, True)):
        wrong = grading.check_prepared(prepared, f"{gradient * 1.7:.6f}")
        assert wrong.verdict == "incorrect"
        assert (f"{gradient:.6g}" in wrong.message) == reveal and ("expected" in wrong.counterexample) == reveal
        symbolic = grading.check_prepared(prepared, "delta[1][0]*a[0][1]")  # shown at a random point instead
        assert reveal or symbolic.counterexample["at"].startswith("random point")


def test_numbers_mixed_with_symbols_are_checked_at_the_worked_example_only(prepared):
    weight = sb.network.layer_weight(1, 2, 0)
    gradient = sb.example(SPEC.network, SPEC.values, SPEC.learning_rate).evaluation.gradients[weight]
    right = verdict(prepared, "update_w[1][2][0]", f"w[1][2][0] - {SPEC.learning_rate}*{gradient:.9f}")
    assert right.verdict == "correct" and "checked there only" in right.diagnosis[0]
    wrong = verdict(prepared, "update_w[1][2][0]", f"w[1][2][0] - {SPEC.learning_rate}*{2 * gradient:.9f}")
    assert wrong.verdict == "incorrect" and "checked there only" in wrong.diagnosis[0]


def test_letters_the_notation_leaves_free_get_a_hint_with_its_letters(prepared):
    """The blog behind the arrows preset calls the output unit o and the hidden unit k."""
    result = verdict(prepared, "delta_output", "\\delta_o = (\\hat{y}_o - y_o) f'_o(s_o)", "arrows")
    assert result.verdict == "incorrect" and "index o" in result.message
    assert "names the unit j and the unit i feeding it" in result.diagnosis[0]
    nielsen = verdict(prepared, "delta_hidden", "\\sigma'(z_q) \\sum_k w_{kq} \\delta_k", "nielsen")
    assert "names the unit j and the unit k feeding it, with k for the units it feeds" in nielsen.diagnosis[0]


def test_a_huge_answer_refuses_only_its_row(tmp_path):
    submissions = tmp_path / "answers.csv"
    with open(submissions, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "target", "answer"])
        writer.writerow(["big", "delta_hidden", "a" * 50_000_000])
        writer.writerow(["ok", "delta_hidden", "g'(z_j)*sum(w_jk*delta_k, k)"])
        writer.writerow(["lines", "delta_hidden", 'a_j "quoted",\n' * 200_000])  # a quoted cell of many lines
        writer.writerow(["last", "delta_hidden", "g'(z_j)*sum(w_jk*delta_k, k)"])
    _, rows = grading.read_submissions(submissions)
    assert [row["id"] for row in rows] == ["big", "ok", "lines", "last"]
    verdicts = grading.grade(SPEC, rows, workers=1)
    for refused in (verdicts[0], verdicts[2]):
        assert refused.verdict == "cannot read" and refused.message.startswith(
            f"answer longer than {grading.reading.MAX_LENGTH} characters")
    assert verdicts[1].verdict == verdicts[3].verdict == "correct"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_a_csv_with_a_byte_order_mark_is_decoded_by_it(tmp_path, encoding):
    submissions = tmp_path / "answers.csv"
    submissions.write_bytes("id,target,answer,name\n1,delta_hidden,delta_j,Müller\n".encode(encoding))
    _, rows = grading.read_submissions(submissions)
    assert rows[0]["name"] == "Müller" and rows[0]["id"] == "1"


@pytest.mark.parametrize("data, words", [
    ("id,target,answer,name\n1,delta_hidden,delta_j,Müller\n".encode("latin-1"), ["byte 46 (0xFC, line 2)", "UTF-8"]),
    ("id,target,answer\n".encode("utf-16-le"), ["byte 1 is a NUL byte", "UTF-16"]),
])
def test_a_csv_in_another_encoding_exits_2_naming_the_byte(tmp_path, data, words):
    submissions = tmp_path / "answers.csv"
    submissions.write_bytes(data)
    result = run("grade", str(submissions), "-o", str(tmp_path / "report"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert all(word in result.stderr for word in words), result.stderr
    assert not (tmp_path / "report.csv").exists()


HOSTILE_CELLS = ["=HYPERLINK(\"http://evil\",\"x\")", "@SUM(A1)", "=cmd|' /C calc'!A0", "+1+1", "-2+3", "\tx", "\rx",
                 "'quoted"]


def test_report_csv_cells_are_inert_for_spreadsheets_and_recoverable():
    rows = [{"id": cell, "target": cell, "answer": cell, "note": cell} for cell in HOSTILE_CELLS]
    verdicts = [grading.Verdict("cannot read", "-x", ["=y"]) for _ in rows]
    text = grading.report_csv(["id", "target", "answer", "note"], rows, verdicts)
    graded = list(csv.DictReader(io.StringIO(text, newline="")))
    for row, cell in zip(graded, HOSTILE_CELLS):
        for column in ("id", "target", "answer", "note", "message", "diagnosis"):
            assert row[column].startswith("'") and not row[column].startswith(("=", "+", "-", "@", "\t", "\r"))
        assert row["answer"][1:] == cell  # drop the first ' of a cell that starts with one: the raw text
    assert graded[0]["first_wrong_line"] == ""


def test_report_markdown_escapes_html_markdown_pipes_and_newlines():
    hostile = "<script>alert(1)</script> <img src=x onerror=alert(1)> ![x](http://e/x.png) [x](javascript:alert(1))"
    rows = [{"id": "a|b\n# injected", "target": "t|x\n## head", "answer": "a"},
            {"id": "2", "target": "delta_hidden", "answer": "a"}]
    verdicts = [grading.Verdict("incorrect", hostile + " | col\n# heading"), grading.Verdict("cannot read", hostile)]
    summary = grading.report_markdown(rows, verdicts)
    assert "<script" not in summary and "<img" not in summary and "](" not in summary.replace("\\](", "")
    assert not any(line.startswith(("# injected", "## head", "# heading")) for line in summary.splitlines())
    table = [line for line in summary.splitlines() if line.startswith("| `")]
    assert all(line.count("|") - line.count("\\|") == 6 for line in table)  # no cell added by a |


def test_report_counts_where_derivations_first_go_wrong_and_keeps_words_whole():
    rows = [{"id": str(n), "target": "grad_w_hidden", "answer": "a"} for n in range(4)]
    lines = lambda *verdicts: [{"line": n + 1, "text": "x", "verdict": v, "message": ""} for n, v in enumerate(verdicts)]
    message = "unknown symbol grad_w_hidden_and_a_long_tail at column 1: the default notation has " + "x, " * 40
    verdicts = [grading.Verdict("incorrect", "Line 2: missing sum.", lines=lines("correct", "incorrect", "correct")),
                grading.Verdict("incorrect", "Line 2: missing sum.", lines=lines("correct", "incorrect")),
                grading.Verdict("correct", "Correct.", lines=lines("correct", "correct")),
                grading.Verdict("cannot read", message, lines=lines("cannot read"))]
    summary = grading.report_markdown(rows, verdicts)
    assert "3 answers of several lines, 1 right on every line." in summary and "| 2 | 2 |" in summary
    assert "- 2 x Missing sum" in summary
    unread = next(line for line in summary.splitlines() if "unknown symbol" in line)
    assert "grad\\_w\\_hidden\\_and\\_a\\_long\\_tail" in unread and unread.endswith(", ...")
    report = grading.report_csv(["id", "target", "answer"], rows, verdicts)
    assert [r["first_wrong_line"] for r in csv.DictReader(io.StringIO(report))] == ["2", "2", "", "1"]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_when_the_grade_process_is_killed(tmp_path):
    submissions = tmp_path / "answers.csv"
    submissions.write_text("id,target,answer\n" + "".join(f"{n},delta_hidden,g'(z_j) w_jk delta_k + {n}\n"
                                                          for n in range(20_000)))
    main = subprocess.Popen([sys.executable, "-m", "symbackprop", "grade", str(submissions), "-o",
                             str(tmp_path / "report"), "--workers", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(workers := _children(main.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2, "the workers never started"
    finally:
        main.kill()
        main.wait()
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers))


def test_check_cli_lines_and_reveal():
    derivation = "\n".join([DERIVATION[0], "= \\sum_k w_{jk} \\delta_k", DERIVATION[2]])
    result = run("check", "2-3-2", "--activation", "sigmoid,sigmoid", "--target", "delta_hidden", "--answer",
                 derivation, "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 1 and data["message"] == "Line 2: missing activation derivative."
    assert [line["line"] for line in data["lines"]] == [1, 2, 3] and data["lines"][1]["verdict"] == "incorrect"
    text = run("check", "--target", "delta_hidden", "--answer", derivation)
    assert "  line 2: incorrect: = \\sum_k w_{jk} \\delta_k" in text.stdout.splitlines()
    wrong = ["check", "--target", "grad_w[1][2][0]", "--answer", "0.123456"]
    hidden, shown = run(*wrong), run(*wrong, "--reveal")
    assert hidden.returncode == shown.returncode == 1 and "expected" not in hidden.stdout
    assert "expected" in shown.stdout and "worked example's value " in shown.stdout


BASES = {"default": "\\delta_j = g'(z_j) \\sum_k w_{jk} \\delta_k",
         "haykin": "\\delta_j = \\varphi'(v_j) \\sum_k \\delta_k w_{kj}",
         "nielsen": "\\delta^l_j = \\sum_k w^{l+1}_{kj} \\delta^{l+1}_k \\sigma'(z^l_j)",
         "wikipedia": "\\delta_j = \\varphi'(\\mathrm{net}_j) \\sum_{\\ell} w_{j\\ell} \\delta_\\ell",
         "bishop": "\\delta_j = h'(a_j) \\sum_k w_{kj} \\delta_k"}
WRAPPERS = ["${}$", "$$ {} $$", "{}.", "{},", "{} \\quad \\text{{for every hidden unit }} j",
            "\\begin{{aligned}} {} \\end{{aligned}}", "{} \\tag{{2}}", "\\[ {} \\]", "{}\n"]


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("notation", sorted(BASES))
def test_every_wrapper_is_read_in_every_notation(prepared, notation, wrapper):
    result = verdict(prepared, "delta_hidden", wrapper.format(BASES[notation]), notation)
    assert result.verdict == "correct", (result.message, wrapper)


def test_a_concrete_update_may_write_the_learning_rate_as_its_number(prepared):
    """Every test point of a concrete target uses the spec's learning rate (0.5 here)."""
    assert verdict(prepared, "update_w[1][2][0]", "w[1][2][0] - 0.5*delta[1][0]*a[0][2]").verdict == "correct"
    missing = verdict(prepared, "update_w[1][2][0]", "w[1][2][0] - delta[1][0]*a[0][2]")
    assert missing.message == "Missing learning rate."


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(SLOPES), st.sampled_from(BACKWARD)), min_size=2, max_size=5),
       st.integers(0, 5), st.sampled_from(["\n", " \\\\ "]))
def test_the_first_wrong_line_of_any_derivation_is_found(prepared, steps, wrong, separator):
    """Lines of right BP2 spellings, one of them made wrong (the slope dropped): that one is named."""
    lines = [f"({slope}) ({backward})" for slope, backward in steps]
    if wrong < len(lines):
        lines[wrong] = f"({steps[wrong][1]})"
    text = separator.join(("\\delta_j = " if n == 0 else "= ") + line for n, line in enumerate(lines))
    result = verdict(prepared, "delta_hidden", text)
    assert len(result.lines) == len(lines)
    if wrong < len(lines):
        assert result.first_wrong_line == wrong + 1 and result.message.startswith(f"Line {wrong + 1}: ")
        assert result.message.endswith("missing activation derivative.")
    else:
        assert result.verdict == "correct" and result.first_wrong_line is None


def test_grade_reveals_the_worked_example_only_when_asked():
    rows = [{"id": "1", "target": "grad_w[1][2][0]", "answer": "0.123456"}]
    hidden, shown = grading.grade(SPEC, rows, workers=1)[0], grading.grade(SPEC, rows, workers=1, reveal=True)[0]
    assert "expected" not in hidden.counterexample and "expected" in shown.counterexample
    assert hidden.message != shown.message


@pytest.mark.parametrize("answer", ["1/0", "0.1234*exp(1000)", "exp(1000)-exp(1000)", "-1/0"])
@pytest.mark.parametrize("target", ["delta[0][0]", "grad_w[0][0][0]"])
def test_an_infinite_or_undefined_number_is_never_correct(target, answer):
    # |inf - y| <= rtol * inf held for every y: 1/0 was graded correct for any number
    verdict = grading.check(sb.compact("2-3-1"), target, answer)
    assert verdict.verdict == "incorrect", verdict.as_dict()


@pytest.mark.parametrize("delimiter, named", [(";", "semicolons"), ("\t", "tabs")])
def test_a_csv_separated_by_another_delimiter_is_told_which(tmp_path, delimiter, named):
    submissions = tmp_path / "answers.csv"
    submissions.write_text(f"id{delimiter}target{delimiter}answer\n1{delimiter}delta_hidden{delimiter}a_j\n")
    report = tmp_path / "report"
    result = run("grade", str(SPEC_FILE(tmp_path)), str(submissions), "-o", str(report))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"separated by {named}" in result.stderr and "commas" in result.stderr, result.stderr
    assert not report.with_suffix(".csv").exists()
