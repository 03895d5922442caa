"""Numeric answers: graded against the significant digits asked, written in the sheet's own symbols.

The expected numbers come from a NumPy forward pass written here and central finite differences,
not from the checker.
"""
from __future__ import annotations

import numpy as np
import pytest

import symbackprop as sb
from symbackprop import grading
from symbackprop.exercises import exercises
from symbackprop.exercises import grade as grade_set

NETWORK = {"layers": [2, 2, 1], "activation": ["sigmoid", "identity"], "loss": "half_sse", "bias": True}
PARAMETERS = {"w[0][0][0]": 0.3, "w[0][0][1]": -0.6, "w[0][1][0]": 0.8, "w[0][1][1]": 0.25, "b[0][0]": 0.1,
              "b[0][1]": -0.2, "w[1][0][0]": 0.7, "w[1][1][0]": -0.45, "b[1][0]": 0.05}
EXAMPLE = {"inputs": [0.9, -0.4], "targets": [0.35], "learning_rate": 0.5, "parameters": PARAMETERS}
SPEC = sb.spec.from_dict({"network": NETWORK, "example": EXAMPLE})


def _error(parameters: dict) -> float:
    """E = 1/2 (y - t)^2 of the 2-2-1 network, by hand."""
    x = np.array(EXAMPLE["inputs"])
    hidden = [1 / (1 + np.exp(-(sum(parameters[f"w[0][{i}][{j}]"] * x[i] for i in range(2))
                                 + parameters[f"b[0][{j}]"]))) for j in range(2)]
    y = sum(parameters[f"w[1][{j}][0]"] * hidden[j] for j in range(2)) + parameters["b[1][0]"]
    return 0.5 * (y - EXAMPLE["targets"][0]) ** 2


def _gradient(name: str) -> float:
    step = 1e-6
    up, down = dict(PARAMETERS), dict(PARAMETERS)
    up[name] += step
    down[name] -= step
    return (_error(up) - _error(down)) / (2 * step)


GRADIENT = _gradient("w[0][1][0]")  # from x_2 to hidden unit 1: grad_w[0][1][0]


@pytest.fixture(scope="module")
def weight():
    return grading.prepare(SPEC.network, "grad_w[0][1][0]", "default", SPEC.values, SPEC.learning_rate)


def _significant(value: float, digits: int) -> str:
    return f"{value:.{digits}g}"


def test_a_number_to_fewer_digits_than_asked_is_refused_saying_how_many(weight):
    for digits in (1, 2, 3):
        result = grading.check_prepared(weight, _significant(GRADIENT, digits))
        assert result.verdict == "incorrect", digits
        assert f"has {digits} significant digit" in result.message and "4 are asked" in result.message


def test_four_or_more_right_digits_pass(weight):
    for digits in (4, 5, 8):
        assert grading.check_prepared(weight, _significant(GRADIENT, digits)).verdict == "correct", digits
    assert grading.check_prepared(weight, f"{GRADIENT * 1e3:.4f}e-3").verdict == "correct"


@pytest.fixture(scope="module")
def revealed():
    return grading.prepare(SPEC.network, "grad_w[0][1][0]", "default", SPEC.values, SPEC.learning_rate, reveal=True)


def test_a_number_off_in_the_fourth_digit_was_rounded_too_early(revealed):
    leading = 10 ** np.floor(np.log10(abs(GRADIENT)))
    off = GRADIENT + 4 * leading * 1e-3  # four units in the fourth significant digit
    result = grading.check_prepared(revealed, f"{off:.6g}")
    assert result.verdict == "incorrect" and result.message.startswith("Rounded too early")
    assert "4 are asked" in result.message
    far = grading.check_prepared(revealed, f"{GRADIENT * 1.7:.6g}")
    assert far.verdict == "incorrect" and "differs from the worked example's value" in far.message


def _replies(prepared, answers: list[str]) -> set[str]:
    """The distinct replies (message, diagnosis, counterexample) to some answers."""
    replies = set()
    for answer in answers:
        result = grading.check_prepared(prepared, answer)
        assert result.verdict == "incorrect", answer
        shown = {k: v for k, v in (result.counterexample or {}).items() if k != "answer"}
        replies.add(repr((result.message, result.diagnosis, sorted(shown.items()))))
    return replies


def test_wrong_numbers_do_not_tell_a_student_how_many_digits_are_right(weight):
    """Without reveal, "agrees to 3 digits" against "to 2" would let a student find the key digit by
    digit (at most ten tries a digit); every wrong number of four digits gets one reply."""
    leading = 10 ** np.floor(np.log10(abs(GRADIENT)))
    offs = [4e-3, 4e-2, 3e-1, 3.0, 7.0]  # off in the 4th, 3rd, 2nd, 1st digit, and far
    assert len(_replies(weight, [f"{GRADIENT + off * leading:.4g}" for off in offs])) == 1


def test_short_numbers_get_the_same_reply_near_the_value_and_far_from_it(weight):
    """"Too few digits" for a short number near the key and "differs" for one far from it is the same
    oracle, one digit at a time."""
    leading = 10 ** np.floor(np.log10(abs(GRADIENT)))
    for digits in (1, 2, 3):
        unit = leading * 10.0 ** (1 - digits)
        near = round(GRADIENT / unit) * unit
        answers = [f"{x:.{digits}g}" for x in (near, near + 3 * unit, near - 4 * unit, -7 * near)]
        answers = [a for a in answers if len(a.lstrip("-0.").replace(".", "")) == digits]
        assert len(_replies(weight, answers)) == 1, (digits, answers)


def test_a_formula_in_the_sheets_own_symbols_is_read():
    cases = {"default": (r"\delta^{(1)}_{1} x_{2}", r"\delta_{1}^{(1)}\, x_2"),
             "haykin": (r"-\delta^{(1)}_{1} x_{2}", r"- x_{2} \delta^{(1)}_{1}"),
             "nielsen": (r"\delta^{2}_{1} x_{2}", r"x_2 \delta^2_1")}
    for notation, answers in cases.items():
        prepared = grading.prepare(SPEC.network, "grad_w[0][1][0]", notation, SPEC.values, SPEC.learning_rate)
        for answer in answers:
            assert grading.check_prepared(prepared, answer).verdict == "correct", (notation, answer)
        wrong = answers[0].replace("x_{2}", "x_{1}")
        assert grading.check_prepared(prepared, wrong).verdict == "incorrect", notation
    prepared = grading.prepare(SPEC.network, "grad_w[0][1][0]", "default", SPEC.values, SPEC.learning_rate)
    outside = grading.check_prepared(prepared, r"\delta^{(1)}_{1} x_{7}")
    assert outside.verdict == "cannot read" and "not a symbol of your sheet" in outside.message


def test_a_number_with_the_sheets_name_on_the_left():
    delta = grading.prepare(SPEC.network, "delta[0][0]", "default", SPEC.values, SPEC.learning_rate)
    # delta of hidden unit 1 = sigma'(z) w_out dE/dy, the chain rule by hand on the finite-difference gradient
    value = _gradient("b[0][0]")
    assert grading.check_prepared(delta, rf"\delta^{{(1)}}_{{1}} = {value:.6f}").verdict == "correct"
    other = grading.check_prepared(delta, rf"\delta^{{(1)}}_{{2}} = {value:.6f}")
    assert other.verdict == "incorrect" and "left-hand side is not" in other.message
    assert "delta^{(1)}_{1}" in other.message  # the question's quantity as the sheet prints it
    weight = grading.prepare(SPEC.network, "grad_w[0][1][0]", "default", SPEC.values, SPEC.learning_rate)
    named = rf"\frac{{\partial E}}{{\partial w^{{(1)}}_{{21}}}} = {GRADIENT:.5g}"
    assert grading.check_prepared(weight, named).verdict == "correct"
    refused = grading.check_prepared(weight, named.replace("{21}", "{12}"))
    assert refused.verdict == "cannot read" and "not what this question asks" in refused.message


def test_the_questions_own_name_is_no_answer():
    """dE/dw^{(1)}_{21} alone, the question as the sheet prints it, read as its own value: it was graded
    correct (on a sheet too), full marks for copying the question. Also on the right of a number."""
    weight = grading.prepare(SPEC.network, "grad_w[0][1][0]", "default", SPEC.values, SPEC.learning_rate,
                             sheet=True)
    for answer in (r"\frac{\partial E}{\partial w^{(1)}_{21}}", rf"{GRADIENT:.5g} = \frac{{\partial E}}{{\partial w^{{(1)}}_{{21}}}}",
                   r"1.000 \frac{\partial E}{\partial w^{(1)}_{21}}"):
        verdict = grading.check_prepared(weight, answer)
        assert verdict.verdict == "incorrect" and "restates" in verdict.message, (answer, verdict.message)
    delta = grading.prepare(SPEC.network, "delta[0][0]", "default", SPEC.values, SPEC.learning_rate)
    assert grading.check_prepared(delta, r"\frac{\partial E}{\partial z^{(1)}_{1}}").verdict == "incorrect"


def _same_reply_for_every_threshold(prepared, template: str, thresholds) -> set[str]:
    replies = set()
    for c in thresholds:
        result = grading.check_prepared(prepared, template.replace("C", f"({c:.7f})"))
        shown = {k: v for k, v in (result.counterexample or {}).items() if k != "answer"}
        replies.add(repr((result.verdict, result.message, result.diagnosis, sorted(shown.items()))))
    return replies


def test_a_formula_cannot_compare_the_key_with_a_number():
    """The red team's oracle: a step function (or a narrow bump) of the quantities a student works out,
    graded at the worked example, answered whether the key lies below a threshold c; 22 requests pinned
    a key to 6 digits.  A formula in those symbols is checked at the random points only, so the reply
    is the same on both sides of the key."""
    delta = grading.prepare(SPEC.network, "delta[0][0]", "default", SPEC.values, SPEC.learning_rate, sheet=True)
    weight = grading.prepare(SPEC.network, "grad_w[0][1][0]", "default", SPEC.values, SPEC.learning_rate,
                             sheet=True)
    for prepared, key, templates in (
            (delta, _gradient("b[0][0]"), [r"\delta^{(1)}_{1} + H(\delta^{(1)}_{1} - C)",
                                          r"\delta^{(1)}_{1} + \exp(-100000000 (\delta^{(1)}_{1} - C)^2)"]),
            (weight, GRADIENT, [r"\delta^{(1)}_{1} x_{2} + H(\delta^{(1)}_{1} x_{2} + 10.00 - 10 - C)",
                                r"\frac{\partial E}{\partial w^{(1)}_{21}} + H(\frac{\partial E}{\partial w^{(1)}_{21}} - C)"])):
        for template in templates:
            for near in (1e-3, 1e-5):
                assert len(_same_reply_for_every_threshold(prepared, template, (key - near, key + near))) == 1, \
                    (template, near)
    # a formula in them stays a formula: the sheet's symbols and a number on the left still read
    assert grading.check_prepared(weight, r"\delta^{(1)}_{1} x_{2}").verdict == "correct"
    assert grading.check_prepared(weight, rf"\delta^{{(1)}}_{{1}} x_{{2}} = {GRADIENT:.6g}").verdict == "correct"


def test_the_key_through_time_cannot_be_compared_with_a_number_either():
    from test_recurrent import ELMAN_111
    spec = sb.from_dict(ELMAN_111)
    ready = grading.prepare(spec.network, "grad_r[0][0][0]", "default", spec.values, spec.learning_rate)
    key = -0.218090762  # worked by hand in tests/test_recurrent.py
    assert grading.check_prepared(ready, "a[0][0](0)*delta[0][0](1)").verdict == "correct"
    template = "a[0][0](0)*delta[0][0](1) + H(a[0][0](0)*delta[0][0](1) - C)"
    for near in (1e-3, 1e-5):
        assert len(_same_reply_for_every_threshold(ready, template, (key - near, key + near))) == 1, near


def test_a_sheets_wrong_number_is_told_it_differs_from_the_sheet():
    made = exercises(SPEC, ["ana"], questions=["grad_w[0][1][0]"])
    spec = made.spec(made.variants[0])
    prepared = grading.prepare(spec.network, "grad_w[0][1][0]", made.notation_object, spec.values,
                               spec.learning_rate, sheet=True)
    example = prepared.example
    rows = [{"student": "ana", "question": made.questions[0].id, "answer": f"{example * 1.9:.6g}"},
            {"student": "ana", "question": made.questions[0].id, "answer": f"{example:.2g}"}]
    wrong, short = grade_set(made, rows, workers=1)
    assert wrong.verdict == "incorrect" and "differs from the value of your sheet" in wrong.message
    assert short.verdict == "incorrect" and "your sheet asks for 4" in short.message


# --- slips with numbers, computed by hand from the forward pass above -------------------------

def _forward(parameters: dict, x) -> tuple[list, float]:
    hidden = [1 / (1 + np.exp(-(sum(parameters[f"w[0][{i}][{j}]"] * x[i] for i in range(2))
                                 + parameters[f"b[0][{j}]"]))) for j in range(2)]
    return hidden, sum(parameters[f"w[1][{j}][0]"] * hidden[j] for j in range(2)) + parameters["b[1][0]"]


HIDDEN, OUTPUT = _forward(PARAMETERS, EXAMPLE["inputs"])
OUTPUT_DELTA = OUTPUT - EXAMPLE["targets"][0]  # identity output, 1/2 (y - t)^2


@pytest.mark.parametrize("notation", ["default", "haykin"])
def test_the_wrong_input_is_named(notation):
    prepared = grading.prepare(SPEC.network, "grad_w[0][1][0]", notation, SPEC.values, SPEC.learning_rate)
    delta = GRADIENT / EXAMPLE["inputs"][1]
    result = grading.check_prepared(prepared, f"{delta * EXAMPLE['inputs'][0]:.6g}")  # x_1 for x_2
    assert result.verdict == "incorrect" and result.message == "The wrong input.", result.message


@pytest.mark.parametrize("notation", ["default", "nielsen"])
def test_a_unit_missing_from_the_sum_is_named(notation):
    wide = sb.spec.from_dict({"network": {**NETWORK, "layers": [2, 1, 2]}, "example": {
        "inputs": [0.9, -0.4], "targets": [0.35, 0.6], "learning_rate": 0.5,
        "parameters": {"w[0][0][0]": 0.3, "w[0][1][0]": 0.8, "b[0][0]": 0.1, "w[1][0][0]": 0.7, "w[1][0][1]": -0.45,
                       "b[1][0]": 0.05, "b[1][1]": -0.3}}})
    x = [0.9, -0.4]
    h = 1 / (1 + np.exp(-(0.3 * x[0] + 0.8 * x[1] + 0.1)))
    outputs = [0.7 * h + 0.05 - 0.35, -0.45 * h - 0.3 - 0.6]  # y_k - t_k
    prepared = grading.prepare(wide.network, "delta[0][0]", notation, wide.values, wide.learning_rate)
    whole = h * (1 - h) * (0.7 * outputs[0] - 0.45 * outputs[1])
    assert grading.check_prepared(prepared, f"{whole:.6g}").verdict == "correct"
    result = grading.check_prepared(prepared, f"{h * (1 - h) * 0.7 * outputs[0]:.6g}")
    assert result.verdict == "incorrect" and result.message == "One unit missing from the sum.", result.message


def test_the_derivative_of_the_layer_above_skipped_in_numbers():
    deep = sb.spec.from_dict({"network": {"layers": [2, 2, 1, 1], "activation": ["sigmoid", "sigmoid", "identity"],
                                          "loss": "half_sse", "bias": False},
                              "example": {"inputs": [0.9, -0.4], "targets": [0.35], "learning_rate": 0.5,
                                          "parameters": {"w[0][0][0]": 0.3, "w[0][1][0]": 0.8, "w[0][0][1]": -0.6,
                                                         "w[0][1][1]": 0.25, "w[1][0][0]": 0.7, "w[1][1][0]": -0.45,
                                                         "w[2][0][0]": 1.3}}})
    x = [0.9, -0.4]
    h = [1 / (1 + np.exp(-(0.3 * x[0] + 0.8 * x[1]))), 1 / (1 + np.exp(-(-0.6 * x[0] + 0.25 * x[1])))]
    g = 1 / (1 + np.exp(-(0.7 * h[0] - 0.45 * h[1])))
    error_at_g = 1.3 * (1.3 * g - 0.35)  # dE/dg, before g's own slope
    prepared = grading.prepare(deep.network, "delta[0][0]", "default", deep.values, deep.learning_rate)
    right = h[0] * (1 - h[0]) * 0.7 * g * (1 - g) * error_at_g  # 0.0203000414: its 4th to 6th digits are 0
    assert grading.check_prepared(prepared, f"{right:.6g}").verdict == "correct"  # 0.0203, the zeros left out
    assert grading.check_prepared(prepared, "0.02033").verdict == "incorrect"  # three units off in the 4th
    result = grading.check_prepared(prepared, f"{h[0] * (1 - h[0]) * 0.7 * error_at_g:.6g}")
    assert result.message == "Derivative of the layer above skipped.", result.message


def test_a_batch_sum_for_the_mean_is_missing_one_over_n():
    batch = sb.spec.from_dict({"network": NETWORK, "example": {**EXAMPLE, "inputs": [[0.9, -0.4], [0.2, 0.7]],
                                                               "targets": [[0.35], [0.8]]}})
    prepared = grading.prepare(batch.network, "grad_b[1][0]", "default", batch.values, batch.learning_rate)
    per_sample = [_forward(PARAMETERS, x)[1] - t for x, t in (([0.9, -0.4], 0.35), ([0.2, 0.7], 0.8))]
    assert grading.check_prepared(prepared, f"{np.mean(per_sample):.6g}").verdict == "correct"
    result = grading.check_prepared(prepared, f"{np.sum(per_sample):.6g}")
    assert result.verdict == "incorrect" and result.message == "Missing 1/N over the batch.", result.message
    assert "2 samples" in result.diagnosis[0]


# --- a number off by a factor 2 or 1/2 is told so ahead of mistakes that happen to give it ------------
HIDDEN_DELTAS = [h * (1 - h) * PARAMETERS[f"w[1][{j}][0]"] * OUTPUT_DELTA for j, h in enumerate(HIDDEN)]
KEYS = {"delta[1][0]": OUTPUT_DELTA, "grad_b[1][0]": OUTPUT_DELTA, "grad_w[1][1][0]": OUTPUT_DELTA * HIDDEN[1],
        "delta[0][0]": HIDDEN_DELTAS[0], "delta[0][1]": HIDDEN_DELTAS[1], "grad_b[0][1]": HIDDEN_DELTAS[1],
        "grad_w[0][0][1]": HIDDEN_DELTAS[1] * EXAMPLE["inputs"][0]}


@pytest.mark.parametrize("target", KEYS)
@pytest.mark.parametrize("notation", ["default", "haykin", "nielsen"])
def test_twice_or_half_the_value_is_a_factor_2(target, notation):
    """With two inputs, a hidden delta summed over the inputs instead of the units fed is exactly
    twice the value: a student's number twice the key was told "Sum over the wrong index"."""
    prepared = grading.prepare(SPEC.network, target, notation, SPEC.values, SPEC.learning_rate)
    sign = -1 if notation == "haykin" and target.startswith("delta") else 1  # Haykin's delta is -dE/dv
    key = sign * KEYS[target]
    assert grading.check_prepared(prepared, f"{key:.6g}").verdict == "correct", (target, notation)
    for factor, message in ((2, "Factor 2."), (0.5, "Factor 1/2.")):
        result = grading.check_prepared(prepared, f"{factor * key:#.4g}")
        assert result.verdict == "incorrect" and result.message == message, (target, notation, result.message)
