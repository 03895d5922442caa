"""Grading through time: BPTT's targets on Elman networks (delta_hidden_bptt, grad_r, grad_r[h][i][j]).

Independent witnesses: the unrolled loss written out here as a SymPy expression (an Elman
forward pass from the parameters' names, the zero state before step 1, half the sum of squares
summed over the steps) and differentiated by sympy.diff; the answers and their mutations are
written by hand from delta_j(t) = g'(z_j(t)) [sum_k w_jk delta_k(t) + sum_m r_jm delta_m(t+1)] and
dE/dr_ij = sum_t a_i(t-1) delta_j(t) (Haykin 2009, ch. 15; Wikipedia "Backpropagation through time").
"""
import csv
import functools
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hostile import CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop import grading
from symbackprop.errors import SpecError
from symbackprop.grading import through_time
from symbackprop.grading.evaluation import evaluate
from symbackprop.grading.prepared import family_of
from symbackprop.grading.vocabulary import P, U

SPEC = sb.compact("2-3-1", "tanh,identity", steps=3)  # the README's Elman network
FUTURE = "\\delta_j(t) = g'(z_j(t)) \\left[\\sum_k w_{jk}\\delta_k(t) + \\sum_m r_{jm}\\delta_m(t+1)\\right]"

#: (notation, target, answer, the mistake it makes), each written by hand from the formulas
THROUGH_TIME_MISTAKES = [
    ("default", "delta_hidden_bptt", "\\delta_j(t) = g'(z_j(t)) \\sum_k w_{jk}\\delta_k(t)", "missing the future term"),
    ("haykin", "delta_hidden_bptt", "\\delta_j(n) = \\varphi'(v_j(n)) \\sum_k \\delta_k(n) w_{kj}",
     "missing the future term"),
    ("nielsen", "delta_hidden_bptt", "\\delta^l_j(t) = \\sigma'(z^l_j(t)) \\sum_k w^{l+1}_{kj} \\delta^{l+1}_k(t)",
     "missing the future term"),
    ("default", "grad_r", "\\frac{\\partial E}{\\partial r_{ij}} = a_i(t-1)\\delta_j(t)",
     "gradient from the last step only"),
    ("default", "grad_r", "a_i(T-1)\\delta_j(T)", "gradient from the last step only"),
    ("haykin", "grad_r", "-\\delta_j(n) y_i(n-1)", "gradient from the last step only"),
    ("wikipedia", "grad_r", "o_{i,t-1}\\delta_{j,t}", "gradient from the last step only"),
    ("default", "grad_r", "\\sum_t a_i(t)\\delta_j(t)", "time-index shift"),
    ("haykin", "grad_r", "-\\sum_n \\delta_j(n) y_i(n)", "time-index shift"),
    ("default", "delta_hidden_bptt", "g'(z_j(t)) [\\sum_k w_{jk}\\delta_k(t) + \\sum_m r_{jm}\\delta_m(t)]",
     "time-index shift"),
    ("default", "delta_hidden_bptt", "\\sum_k w_{jk}\\delta_k(t) + \\sum_m r_{jm}\\delta_m(t+1)",
     "missing activation derivative"),
    ("haykin", "delta_hidden_bptt", "\\varphi'(v_i(n)) [\\sum_k \\delta_k(n) w_{kj} + \\sum_m \\delta_m(n+1) r_{mj}]",
     "derivative of the wrong unit"),
    ("default", "grad_r", "\\sum_t a_j(t-1)\\delta_i(t)", "swapped unit indices"),
    ("haykin", "grad_r", "-\\sum_n \\delta_i(n) y_j(n-1)", "swapped unit indices"),
    ("xhy", "delta_hidden_bptt", "f'(z_j^{<t>}) (\\sum_k w_{jk}\\delta_k^{<t>} + \\sum_m r_{jm}\\delta_m^{<t>})",
     "time-index shift"),
    ("default", "delta_hidden_bptt", "g'(z_j(t)) [\\sum_k w_{jk}\\delta_k(t) + \\sum_m r_{jm}\\delta_m(t-1)]",
     "time-index shift"),
    ("default", "delta_hidden_bptt", "g'(z_j(t)) [\\sum_k w_{jk}\\delta_k(t) + \\sum_m r_{mj}\\delta_m(t+1)]",
     "transposed recurrent weight index"),
    ("xhy", "delta_hidden_bptt", "f'(z_j^{<t>}) (\\sum_k w_{jk}\\delta_k^{<t>} + \\sum_m r_{mj}\\delta_m^{<t+1>})",
     "transposed recurrent weight index"),
    ("default", "grad_r", "\\sum_t a_j(t-1)\\delta_j(t)", "the unit's own activation"),
    ("wikipedia", "grad_r", "\\sum_t o_{j,t-1}\\delta_{j,t}", "the unit's own activation"),
    ("bishop", "grad_r", "\\sum_t a_i(t-1)\\delta_j(t)", "pre-activation for the activation"),
    ("haykin", "grad_w_hidden", "-\\sum_n \\delta_j(n) y_i(n-1)", "input of the step before"),
    ("xhy", "grad_w_hidden", "\\sum_t h_i^{<t-1>}\\delta_j^{<t>}", "input of the step before"),
]


@functools.lru_cache
def prepared(target, notation="default", spec=SPEC):
    return grading.prepare(spec.network, target, notation, spec.values, spec.learning_rate)


@pytest.mark.parametrize("notation,target,answer,mistake", THROUGH_TIME_MISTAKES)
def test_each_mistake_through_time_is_named_and_never_accepted(notation, target, answer, mistake):
    result = grading.check_prepared(prepared(target, notation), answer)
    assert result.verdict == "incorrect", (result.message, result.diagnosis)
    assert result.message.rstrip(".").split(": ")[-1].lower() == mistake, (result.message, result.diagnosis)
    assert result.diagnosis and result.counterexample["expected"] != result.counterexample["answer"]


def test_messages_speak_the_notation():
    haykin = grading.check_prepared(prepared("grad_r", "haykin"), "-\\delta_j(n) y_i(n-1)")
    assert "r_ji" in haykin.diagnosis[0] and "y_i(t-1) delta_j(t)" in haykin.diagnosis[0]
    future = grading.check_prepared(prepared("delta_hidden_bptt", "nielsen"),
                                    "\\sigma'(z^l_j(t)) \\sum_k w^{l+1}_{kj} \\delta^{l+1}_k(t)")
    assert "r_mj delta_m(t+1)" in future.diagnosis[0]


# --- the brute-force witness -----------------------------------------------------------------------
FUNCTIONS = {"tanh": sp.tanh, "sigmoid": lambda x: 1 / (1 + sp.exp(-x)), "identity": lambda x: x}


def unrolled_loss(sizes, activations, steps, shifted=None):
    """E of the Elman network over ``steps`` in symbols named as the spec names them (w[l][i][j],
    r[h][i][j], b[l][j], x[i](s), t[s][k], s from 0); ``shifted`` = (s, layer, j) adds eps to that
    unit's z, so that its delta is dE/deps at eps = 0."""
    eps = sp.Symbol("eps")
    name = sp.Symbol
    state = {layer: [0] * sizes[layer] for layer in range(1, len(sizes) - 1)}  # a(t-1): zero before step 1
    total = 0
    for s in range(steps):
        below = [name(f"x[{i}]({s})") for i in range(sizes[0])]
        for layer in range(1, len(sizes)):
            zs = []
            for j in range(sizes[layer]):
                value = name(f"b[{layer - 1}][{j}]") + sum(name(f"w[{layer - 1}][{i}][{j}]") * below[i]
                                                          for i in range(sizes[layer - 1]))
                if layer in state:
                    value += sum(name(f"r[{layer - 1}][{m}][{j}]") * state[layer][m] for m in range(sizes[layer]))
                zs.append(value + (eps if shifted == (s, layer, j) else 0))
            below = [FUNCTIONS[activations[layer - 1]](value) for value in zs]
            if layer in state:
                state[layer] = below
        total += sum((below[k] - name(f"t[{s}][{k}]")) ** 2 for k in range(sizes[-1])) / 2
    return total, eps


def point_of(network, values):
    """A sequence's numbers by the names :func:`unrolled_loss` uses."""
    width, outputs = network.sizes[0], network.sizes[-1]
    point = {str(p): v for p, v in values.parameters.items()}
    point.update({f"x[{i}]({s})": values.inputs[0, s * width + i] for s in range(network.steps) for i in range(width)})
    point.update({f"t[{s}][{k}]": values.targets[0, s * outputs + k]
                  for s in range(network.steps) for k in range(outputs)})
    return point


def at(expression, point, eps=None):
    return float(expression.xreplace({**{sp.Symbol(k): v for k, v in point.items()}, **({eps: 0} if eps else {})}))


specs = st.builds(lambda sizes, steps, hidden, out: sb.compact("-".join(map(str, sizes)),
                                                                ",".join([hidden] * (len(sizes) - 2) + [out]),
                                                                steps=steps),
                  st.lists(st.integers(1, 3), min_size=3, max_size=4), st.integers(1, 4),
                  st.sampled_from(["tanh", "sigmoid", "identity"]), st.sampled_from(["identity", "sigmoid"]))


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(specs, st.randoms(use_true_random=False))
def test_references_equal_brute_force_diff_of_the_unrolled_loss(spec, random):
    """BPTT's generic formulas on the spec's own network at random points, and the concrete
    grad_r[h][i][j]'s reference, against sympy.diff of the unrolled loss."""
    network = spec.network
    sizes, steps = network.sizes, network.steps
    activations = [g.activation.name for g in network.groups][:len(sizes) - 1]
    hidden = sizes[1:-1]
    family = family_of(network)
    rng = np.random.default_rng(random.randrange(1000))
    for name in ("delta_hidden_bptt", "grad_r", "grad_w_hidden"):
        target = grading.parse_target(name, network)
        level = random.randrange(1, len(sizes) - 1)
        points = [through_time._point(family, through_time._sequence(network, rng), level, target, rng)
                  for _ in range(3)]
        cases, reference = through_time._cases(points, target, 1)
        formula = through_time._formula(target.kind, network.groups[0].activation, True)
        found = evaluate(formula, cases)
        for (_, values, _, positions, step), value, derived in zip(points, found, reference):
            i, j = int(positions[P]), int(positions[U])
            if target.kind == "delta":
                loss, eps = unrolled_loss(sizes, activations, steps, (step - 1, level, j))
                expected = at(sp.diff(loss, eps), point_of(network, values), eps)
            else:
                loss, _ = unrolled_loss(sizes, activations, steps)
                weight = f"r[{level - 1}][{i}][{j}]" if target.kind == "grad_r" else f"w[{level - 1}][{i}][{j}]"
                expected = at(sp.diff(loss, sp.Symbol(weight)), point_of(network, values))
            assert value == pytest.approx(expected, rel=1e-7, abs=1e-10), (name, sizes, steps)
            assert derived == pytest.approx(expected, rel=1e-7, abs=1e-10), (name, sizes, steps)
    h = random.randrange(len(hidden))
    i, j = random.randrange(hidden[h]), random.randrange(hidden[h])
    concrete = grading.prepare(network, f"grad_r[{h}][{i}][{j}]", "default", spec.values, spec.learning_rate)
    loss, _ = unrolled_loss(sizes, activations, steps)
    gradient = sp.diff(loss, sp.Symbol(f"r[{h}][{i}][{j}]"))
    for c in range(concrete.cases.count):
        point = {str(symbol): values[c] for symbol, values in concrete.cases.symbols.items()}
        assert concrete.reference[c] == pytest.approx(at(gradient, point), rel=1e-7, abs=1e-10)
    assert concrete.example == pytest.approx(at(gradient, point_of(network, spec.values)), rel=1e-7, abs=1e-10)


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(specs.filter(lambda s: s.network.steps >= 2), st.randoms(use_true_random=False))
def test_a_correct_answer_is_accepted_and_each_mutation_named(spec, random):
    network = spec.network
    steps = network.steps
    answers = {"delta_hidden_bptt": (FUTURE, {
        "missing the future term": "g'(z_j(t)) \\sum_k w_{jk}\\delta_k(t)",
        "time-index shift": "g'(z_j(t)) [\\sum_k w_{jk}\\delta_k(t) + \\sum_m r_{jm}\\delta_m(t)]"}),
        "grad_r": ("\\sum_{t=1}^{T} a_{i,t-1} \\delta_{j,t}", {
            "gradient from the last step only": "a_i(t-1) \\delta_j(t)",
            "time-index shift": "\\sum_t a_i(t) \\delta_j(t)"})}
    h = random.randrange(len(network.sizes) - 2)
    i, j = random.randrange(network.sizes[h + 1]), random.randrange(network.sizes[h + 1])
    terms = [f"a[{h}][{i}]({s - 1})*delta[{h}][{j}]({s})" for s in range(1, steps)]
    answers[f"grad_r[{h}][{i}][{j}]"] = (" + ".join(terms), {
        "gradient from the last step only": terms[-1],
        **({"time-index shift": " + ".join(f"a[{h}][{i}]({s})*delta[{h}][{j}]({s})" for s in range(steps))}
           if steps >= 3 else {})})
    for target, (right, wrong) in answers.items():
        ready = grading.prepare(network, target, "default", spec.values, spec.learning_rate)
        accepted = grading.check_prepared(ready, right)
        assert accepted.verdict == "correct", (target, accepted.message, accepted.diagnosis)
        for mistake, answer in wrong.items():
            result = grading.check_prepared(ready, answer)
            assert result.verdict == "incorrect" and result.message.rstrip(".").lower() == mistake, \
                (target, answer, result.message, result.diagnosis)


def test_the_worked_example_number_of_a_recurrent_weight():
    ready = prepared("grad_r[0][1][2]")
    loss, _ = unrolled_loss([2, 3, 1], ["tanh", "identity"], 3)
    expected = at(sp.diff(loss, sp.Symbol("r[0][1][2]")), point_of(SPEC.network, SPEC.values))
    assert grading.check_prepared(ready, f"{expected:.6f}").verdict == "correct"
    assert grading.check_prepared(ready, f"{expected * 1.01 + 0.01:.6f}").verdict == "incorrect"


def test_targets_of_one_step_are_refused_or_summed_through_time():
    for name in ("delta_hidden", "grad_w_output", "grad_b_hidden", "update_w_hidden"):
        with pytest.raises(SpecError, match="not graded on a recurrent network"):
            grading.parse_target(name, SPEC.network)
    summed = grading.check_prepared(prepared("grad_w_hidden"), "\\sum_t x_i(t) \\delta_j(t)")
    assert summed.verdict == "correct"
    one_step = grading.check_prepared(prepared("grad_w_hidden"), "\\delta_j a_i")
    assert one_step.verdict == "incorrect" and one_step.message == "Gradient from the last step only."
    with pytest.raises(SpecError, match="outside the recurrent weights"):
        grading.parse_target("grad_r[0][3][0]", SPEC.network)
    with pytest.raises(SpecError, match="not a target of a recurrent network"):
        grading.parse_target("grad_w[0][0][0]", SPEC.network)


def test_a_feed_forward_reading_is_unchanged_by_the_time_index():
    """w_ij(t) is the iteration's weight for a feed-forward target, read as before."""
    feed_forward = grading.prepare(sb.compact("2-3-2").network, "update_w_hidden")
    assert grading.check_prepared(feed_forward, "w_{ij}(t+1) = w_{ij}(t) - \\eta \\delta_j a_i").verdict == "correct"


# --- the command line ------------------------------------------------------------------------------
RECURRENT = ["2-3-1", "--activation", "tanh,identity", "--recurrent", "--steps", "3"]


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          timeout=300, check=False, cwd=cwd)


def test_check_cli_through_time():
    right = run("check", *RECURRENT, "--target", "grad_r", "--answer", "\\sum_t a_i(t-1) \\delta_j(t)")
    assert right.returncode == 0 and right.stdout.startswith("correct"), right.stderr
    wrong = run("check", *RECURRENT, "--target", "delta_hidden_bptt", "--answer",
                "g'(z_j(t)) \\sum_k w_{jk}\\delta_k(t)")
    assert wrong.returncode == 1 and "Missing the future term" in wrong.stdout
    for target in ("grad_r", "delta_hidden_bptt", "grad_r[0][0][0]"):
        refused = run("check", "2-3-1", "--target", target, "--answer", "x")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert refused.stderr.strip() == (f"error: --target: {target} needs a recurrent network "
                                          "(recurrent = true or --recurrent)")
    one_step = run("check", *RECURRENT, "--target", "delta_hidden", "--answer", "x")
    assert one_step.returncode == 2 and "delta_hidden_bptt" in one_step.stderr and "Traceback" not in one_step.stderr
    helped = run("check", "--help")
    assert "delta_hidden_bptt" in helped.stdout and "grad_r[h][i][j]" in helped.stdout


def test_grade_cli_through_time(tmp_path):
    submissions = tmp_path / "answers.csv"
    with submissions.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "target", "answer"])
        writer.writerow(["ann", "delta_hidden_bptt", FUTURE])
        writer.writerow(["bob", "grad_r", "a_i(t-1) \\delta_j(t)"])
        writer.writerow(["cy", "grad_r[0][1][2]", "a[0][1](0)*delta[0][2](1) + a[0][1](1)*delta[0][2](2)"])
        writer.writerow(["dee", "grad_r", "\\sum_t a_i(t-1"])
    done = run("grade", *RECURRENT, str(submissions), "-o", str(tmp_path / "report"), "--workers", "1")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert [row["verdict"] for row in rows] == ["correct", "incorrect", "correct", "cannot read"]
    assert "last step only" in rows[1]["message"].lower()
    assert "1 cannot read" in done.stdout and (tmp_path / "report.md").read_text().count("grad_r") >= 1


def test_restating_the_target_is_no_answer():
    for target, answer in (("delta_hidden_bptt", "\\delta_j(t)"), ("grad_r", "\\frac{\\partial E}{\\partial r_{ij}}"),
                           ("grad_w_hidden", "dE/dw_ij"),
                           ("delta_hidden_bptt", "g'(z_j(t)) \\frac{\\partial E}{\\partial a_j(t)}")):
        result = grading.check_prepared(prepared(target), answer)
        assert result.verdict == "incorrect" and result.message == "The answer restates what it should derive."


def test_a_recurrent_weight_is_no_symbol_of_a_feed_forward_answer():
    feed_forward = grading.prepare(sb.compact("2-3-2").network, "delta_hidden")
    result = grading.check_prepared(feed_forward, "g'(z_j) \\sum_m r_{jm} \\delta_m")
    assert result.verdict == "cannot read" and result.message.startswith("unknown symbol r_{jm}")
    assert ", r," not in result.message


def test_the_readme_check_example_is_a_real_run():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("**Grading answers through time.**")[1].split("```\n")[1]
    command, *printed = block.replace("\\\n", " ").splitlines()
    words = shlex.split(command.removeprefix("$ "))
    result = run(*words[3:])
    assert result.returncode == 1
    assert result.stdout.splitlines()[:2] == printed[:2]
    assert result.stdout.splitlines()[2].startswith(printed[2].removesuffix(" ...}"))


HOSTILE_IN_TIME = ["\\delta_j(t+" + "9" * 1990 + ")", "a[0][1](" + "9" * 1990 + ")", "\\delta_j(t)" * 300,
                   "\\sum_t " * 50 + "a_i(t)", "h^{<" * 500 + "t" + ">}" * 500, "\\delta_{j,t,t,t}(t)",
                   "a_i(t-1" * 200, "\\delta_j(\\tau+1)(\\tau-1)(t)"]


@pytest.mark.parametrize("text", [*HOSTILE_IN_TIME, *CORPUS])
def test_hostile_answers_through_time_are_refused_or_graded_quickly(text, tmp_path):
    canary = tmp_path / "canary"
    for target in ("delta_hidden_bptt", "grad_r[0][1][2]"):
        start = time.thread_time()
        result = grading.check_prepared(prepared(target), text.format(canary=canary) if text in CORPUS else text)
        assert result.verdict in ("incorrect", "cannot read"), (text[:40], result.message)
        assert "\n" not in result.message and "checker failed" not in result.message, result.message
        assert time.thread_time() - start < 2.0, text[:40]
    assert not canary.exists()


def test_a_chain_rule_derivation_through_time_is_checked_line_by_line():
    lines = ("\\frac{\\partial E}{\\partial r_{ij}} = \\sum_t \\frac{\\partial E}{\\partial z_j(t)} "
             "\\frac{\\partial z_j(t)}{\\partial r_{ij}} \\\\ = \\sum_{t=1}^{T} \\delta_j(t) a_i(t-1)")
    assert grading.check_prepared(prepared("grad_r"), lines).verdict == "correct"
    wrong = lines.replace("a_i(t-1)", "a_i(t)")
    result = grading.check_prepared(prepared("grad_r"), wrong)
    assert result.verdict == "incorrect" and result.message == "Line 2: time-index shift."
    future = ("\\frac{\\partial E}{\\partial a_j(t)} = \\sum_k \\frac{\\partial E}{\\partial z_k(t)} "
              "\\frac{\\partial z_k(t)}{\\partial a_j(t)} + \\sum_m \\frac{\\partial E}{\\partial z_m(t+1)} "
              "\\frac{\\partial z_m(t+1)}{\\partial a_j(t)}")
    derivation = (f"\\delta_j(t) = g'(z_j(t)) {future.split(' = ')[0]} \\\\ = g'(z_j(t)) ({future.split(' = ')[1]})"
                  " \\\\ = g'(z_j(t)) (\\sum_k w_{jk}\\delta_k(t) + \\sum_m r_{jm}\\delta_m(t+1))")
    checked = grading.check_prepared(prepared("delta_hidden_bptt"), derivation)
    assert checked.verdict == "correct", (checked.message, checked.lines)


def test_the_hand_checked_elman_numbers_grade_through_time():
    """The 1-1-1 Elman net over 2 steps worked by hand in tests/test_recurrent.py: dE/dr = h(0) dh(1) +
    h(1) dh(2) = 0 + 0.716297870 * (-0.304469371) = -0.218090762; the last step's term alone is the same
    here (h(0) = 0), so the number tells only the sum from a wrong one."""
    from test_recurrent import ELMAN_111
    spec = sb.from_dict(ELMAN_111)
    ready = grading.prepare(spec.network, "grad_r[0][0][0]", "default", spec.values, spec.learning_rate)
    assert grading.check_prepared(ready, "-0.21809").verdict == "correct"
    assert grading.check_prepared(ready, "0.716297870 * (-0.304469371)").verdict == "correct"
    assert grading.check_prepared(ready, "0.184536122 * 0.716297870").verdict == "incorrect"  # dh(1) h(1)
    # the spec's own symbols count steps from 0: a[0][0](0) is h(1), delta[0][0](1) is dh(2)
    assert grading.check_prepared(ready, "a[0][0](0)*delta[0][0](1)").verdict == "correct"
    assert grading.check_prepared(ready, "a[0][0](1)*delta[0][0](1)").verdict == "incorrect"  # h(2) dh(2)


def test_a_notation_names_its_recurrent_weight(tmp_path):
    """A course that writes u_ij for the recurrent weight (a notation file on top of a preset)."""
    from symbackprop.notes import notation as notations
    custom = tmp_path / "course.toml"
    custom.write_text('base = "default"\n[symbols]\nrecurrent_weight = "u"\n[plain]\nrecurrent_weight = "u"\n')
    course = notations.load(custom)
    ready = grading.prepare(SPEC.network, "grad_r", course, SPEC.values, SPEC.learning_rate)
    right = "\\frac{\\partial E}{\\partial u_{ij}} = \\sum_t a_i(t-1) \\delta_j(t)"
    assert grading.check_prepared(ready, right).verdict == "correct"
    late = grading.check_prepared(ready, "a_i(t-1) \\delta_j(t)")
    assert "u_ij is the same weight at every step" in late.diagnosis[0]
    custom.write_text('base = "default"\n[symbols]\nrecurrent_weight = "\\\\input{x}"\n')
    with pytest.raises(SpecError, match="notation.symbols.recurrent_weight"):
        notations.load(custom)


def test_the_output_delta_is_read_at_any_step_t_and_only_there():
    ready = prepared("delta_output")
    assert grading.check_prepared(ready, "\\delta_k^{<t>} = (a_k^{<t>} - t_k^{<t>})").verdict == "correct"
    other_step = grading.check_prepared(ready, "\\delta_k(t) = a_k(t+1) - t_k(t)")
    assert other_step.verdict == "cannot read" and "same at every step" in other_step.message


def test_cross_entropy_over_several_steps_is_graded_per_step():
    """A softmax output per step: delta_k(t) = a_k(t) - t_k(t) (Bishop 2006, eq. 4.109, at each step)."""
    spec = sb.compact("2-3-2", "tanh,softmax", "cross_entropy", steps=3)
    output = grading.prepare(spec.network, "delta_output")
    assert grading.check_prepared(output, "a_k(t) - t_k(t)").verdict == "correct"
    extra = grading.check_prepared(output, "(a_k - t_k) a_k (1 - a_k)")
    assert extra.verdict == "incorrect" and extra.message == "Extra activation derivative."
    gradient = grading.prepare(spec.network, "grad_r")
    assert grading.check_prepared(gradient, r"\sum_{t=1}^{T} a_i(t-1) \delta_j(t)").verdict == "correct"
    assert grading.check_prepared(gradient, r"a_i(T-1) \delta_j(T)").verdict == "incorrect"


# --- numbers through time: the worked example's slips, by a NumPy BPTT written here -----------------
README_ELMAN = sb.load(Path(__file__).parent / "elman.toml")


@functools.lru_cache
def readme_elman(target, notation="default"):
    return grading.prepare(README_ELMAN.network, target, notation, README_ELMAN.values, README_ELMAN.learning_rate)


def test_the_elman_test_spec_is_the_readmes():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("**Recurrent (Elman) networks**")[1].split("```toml\n")[1].split("```")[0]
    ours = (Path(__file__).parent / "elman.toml").read_text()
    strip = lambda text: [line.split("#")[0].rstrip() for line in text.splitlines() if line.split("#")[0].strip()]
    assert strip(block) == strip(ours)


SLOPES = {"tanh": (np.tanh, lambda a: 1 - a ** 2), "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a))}


def elman_gradient_r(spec=README_ELMAN, hidden=("tanh",), future=True, transposed=False, slope=True,
                     dropped_step=None):
    """dE/dr of an Elman spec (``hidden`` activations, identity output, 1/2 (y - t)^2 per step), one
    matrix [i][j] per hidden layer, by BPTT in NumPy, optionally with one slip made at every step of
    every hidden layer: the future term r_jm delta_m(t+1) left out, taken as r_mj delta_m(t+1), the
    slope g'(z_j(t)) left out, or one step's term left out of the sum."""
    p = {str(k): v for k, v in spec.values.parameters.items()}
    sizes, steps = spec.network.sizes, spec.network.steps
    depth = len(sizes) - 1
    W = [np.array([[p[f"w[{n}][{i}][{j}]"] for j in range(sizes[n + 1])] for i in range(sizes[n])])
         for n in range(depth)]
    R = [np.array([[p[f"r[{h}][{i}][{j}]"] for j in range(sizes[h + 1])] for i in range(sizes[h + 1])])
         for h in range(depth - 1)]
    B = [np.array([p[f"b[{n}][{j}]"] for j in range(sizes[n + 1])]) for n in range(depth)]
    x = spec.values.inputs[0].reshape(steps, sizes[0])
    target = spec.values.targets[0].reshape(steps, sizes[-1])
    a = [[np.zeros(sizes[h + 1]) for h in range(depth - 1)]]  # a[s][h]: hidden layer h after step s (0: none)
    errors = []
    for s in range(steps):
        below, states = x[s], []
        for h in range(depth - 1):
            below = SLOPES[hidden[h]][0](below @ W[h] + a[-1][h] @ R[h] + B[h])
            states.append(below)
        a.append(states)
        errors.append(below @ W[-1] + B[-1] - target[s])
    deltas = [[np.zeros(sizes[h + 1]) for h in range(depth - 1)] for _ in range(steps + 1)]
    for s in range(steps - 1, -1, -1):
        above = errors[s]
        for h in range(depth - 2, -1, -1):
            ahead = (R[h].T if transposed else R[h]) @ deltas[s + 1][h] if future else 0.0
            gain = SLOPES[hidden[h]][1](a[s + 1][h]) if slope else 1.0
            deltas[s][h] = above = gain * (W[h + 1] @ above + ahead)
    return [sum(np.outer(a[s][h], deltas[s][h]) for s in range(steps) if s != dropped_step) for h in range(depth - 1)]


DEEP_ELMAN = sb.compact("2-3-2-1", "tanh,sigmoid,identity", steps=4)


def test_the_numpy_bptt_is_the_finite_difference_of_the_error():
    deep, _ = unrolled_loss([2, 3, 2, 1], ["tanh", "sigmoid", "identity"], 4)
    found = elman_gradient_r(DEEP_ELMAN, ("tanh", "sigmoid"))
    for h, i, j in ((0, 2, 1), (1, 0, 1), (1, 1, 1)):
        expected = at(sp.diff(deep, sp.Symbol(f"r[{h}][{i}][{j}]")), point_of(DEEP_ELMAN.network, DEEP_ELMAN.values))
        assert found[h][i, j] == pytest.approx(expected)
    p = {str(k): v for k, v in README_ELMAN.values.parameters.items()}
    loss, _ = unrolled_loss([2, 3, 1], ["tanh", "identity"], 3)
    point = point_of(README_ELMAN.network, README_ELMAN.values)
    for i, j in ((2, 2), (1, 2), (0, 1)):
        assert elman_gradient_r()[0][i, j] == pytest.approx(at(sp.diff(loss, sp.Symbol(f"r[0][{i}][{j}]")), point))
    assert elman_gradient_r()[0][2, 2] == pytest.approx(0.0170198, abs=1e-7)  # the README's key
    assert p["r[0][2][2]"] == 0.1


@pytest.mark.parametrize("weight", [(2, 2), (1, 2), (0, 1), (2, 0)])
@pytest.mark.parametrize("notation", ["default", "haykin"])
def test_a_number_through_time_with_a_slip_in_its_deltas_is_named(weight, notation):
    """README's exercise set: the number dE/dr_ij computed with the future term dropped from every
    delta, or with r_mj for r_jm, or without the slope, is named, not "differs"."""
    i, j = weight
    ready = readme_elman(f"grad_r[0][{i}][{j}]", notation)
    assert grading.check_prepared(ready, f"{elman_gradient_r()[0][i, j]:.6g}").verdict == "correct"
    slips = {"Missing the future term.": elman_gradient_r(future=False)[0],
             "Transposed recurrent weight index.": elman_gradient_r(transposed=True)[0],
             "Missing activation derivative.": elman_gradient_r(slope=False)[0]}
    for message, values in slips.items():
        if abs(values[i, j] - elman_gradient_r()[0][i, j]) < 1e-3 * abs(elman_gradient_r()[0][i, j]):
            continue  # the slip changes nothing at this weight
        result = grading.check_prepared(ready, f"{values[i, j]:.4g}")
        assert result.verdict == "incorrect" and result.message == message, (weight, message, result.message)


@pytest.mark.parametrize("weight", [(2, 2), (1, 2), (0, 1)])
def test_a_number_through_time_missing_one_steps_term_is_named(weight):
    i, j = weight
    ready = readme_elman(f"grad_r[0][{i}][{j}]")
    whole = elman_gradient_r()[0][i, j]
    assert elman_gradient_r(dropped_step=0)[0][i, j] == whole  # a_i(0) = 0: the t = 1 term is no slip
    last_term = whole - elman_gradient_r(dropped_step=2)[0][i, j]
    last = grading.check_prepared(ready, f"{last_term:.4g}")  # = the sum without t = 2, as a_i(0) = 0
    assert last.message == "Gradient from the last step only.", last.message
    result = grading.check_prepared(ready, f"{elman_gradient_r(dropped_step=2)[0][i, j]:.4g}")
    assert result.verdict == "incorrect" and result.message == "One step missing from the sum.", result.message


def test_the_slips_through_time_get_the_same_verdict_cold_and_cached():
    import pickle
    for target, answer, message in (("grad_r[0][2][2]", "-0.0003338", "Missing the future term."),
                                    ("grad_r[0][2][2]", "0.01506", "One step missing from the sum."),
                                    ("grad_r", r"\sum_{\tau=1}^{t} a_i(\tau-1) \delta_j(\tau)", None)):
        cold = readme_elman(target)
        cached = pickle.loads(pickle.dumps(cold))
        verdict = grading.check_prepared(cold, answer)
        assert verdict == grading.check_prepared(cached, answer) and verdict.verdict == "incorrect"
        assert message is None or verdict.message == message, verdict.message


@pytest.mark.parametrize("weight", [(0, 2, 1), (1, 0, 1)])
def test_the_slips_through_time_are_made_in_every_hidden_layer(weight):
    """Two hidden layers: the lower one's deltas come from the upper one's, each computed with the slip."""
    h, i, j = weight
    ready = grading.prepare(DEEP_ELMAN.network, f"grad_r[{h}][{i}][{j}]", "default", DEEP_ELMAN.values,
                            DEEP_ELMAN.learning_rate)
    right = elman_gradient_r(DEEP_ELMAN, ("tanh", "sigmoid"))[h][i, j]
    assert grading.check_prepared(ready, f"{right:.6g}").verdict == "correct"
    for message, slip in (("Missing the future term.", {"future": False}),
                          ("Transposed recurrent weight index.", {"transposed": True}),
                          ("Missing activation derivative.", {"slope": False}),
                          ("One step missing from the sum.", {"dropped_step": 1})):
        value = elman_gradient_r(DEEP_ELMAN, ("tanh", "sigmoid"), **slip)[h][i, j]
        result = grading.check_prepared(ready, f"{value:#.4g}")
        assert result.verdict == "incorrect" and result.message == message, (weight, message, result.message)
