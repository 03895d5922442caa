"""Checking a convolutional network's numbers: grad_w[l][o][c][u][v] and grad_b[l][o] of the worked example.

The expected numbers, right and wrong, come from a NumPy forward and backward pass written here
(a 1x4x4 input, a 3x3 tanh conv, a dense identity output, half the squared error), not from the checker.
"""
from __future__ import annotations

import shlex
import time
from pathlib import Path

import numpy as np
import pytest
from hostile import CORPUS

import symbackprop as sb
from symbackprop import grading
from symbackprop.cli import main
from symbackprop.errors import SpecError

X = np.array([[0.1, 0.2, -0.3, 0.4], [0.0, -0.1, 0.2, 0.3], [0.5, 0.1, 0.1, -0.2], [0.2, 0.2, -0.5, 0.1]])
KERNEL = np.array([[0.3, -0.2, 0.1], [0.4, 0.25, -0.35], [-0.1, 0.2, 0.15]])
BIAS, DENSE, DENSE_BIAS, TARGET = 0.05, np.array([0.6, -0.4, 0.3, 0.8]), -0.1, 0.7
SPEC = sb.from_dict({
    "network": {"input_shape": [1, 4, 4], "loss": "half_sse",
                "layer": [{"kind": "conv", "channels": 1, "kernel": [3, 3], "activation": "tanh"},
                          {"kind": "dense", "units": 1, "activation": "identity"}]},
    "example": {"inputs": [X.tolist()], "targets": [TARGET],
                "weights": [[[KERNEL.tolist()]], [[w] for w in DENSE]], "biases": [[BIAS], [DENSE_BIAS]]}})


def _backward():
    """(delta of the conv units, dE/da of them) by hand: z = K * x (cross-correlation), a = tanh z."""
    z = np.array([[np.sum(KERNEL * X[i:i + 3, j:j + 3]) for j in range(2)] for i in range(2)]) + BIAS
    a = np.tanh(z)
    y = DENSE @ a.ravel() + DENSE_BIAS
    error_a = ((y - TARGET) * DENSE).reshape(2, 2)
    return error_a * (1 - a ** 2), error_a


DELTA, ERROR_A = _backward()


def _kernel_gradient(local, u, v, offset=lambda i, u: i + u, rows=range(2)):
    """sum_i sum_j local[i, j] x[offset(i, u), offset(j, v)], an input outside the image read as 0."""
    inside = lambda m: 0 <= m < 4
    return sum(local[i, j] * X[offset(i, u), offset(j, v)] for i in rows for j in range(2)
               if inside(offset(i, u)) and inside(offset(j, v)))


U, V = 0, 1
RIGHT = _kernel_gradient(DELTA, U, V)


@pytest.fixture(scope="module")
def prepared():
    return grading.prepare(SPEC.network, f"grad_w[0][0][0][{U}][{V}]", "default", SPEC.values, 0.5)


def verdict(prepared, text):
    return grading.check_prepared(prepared, text)


def test_one_sum_over_two_letters_is_the_double_sum(kernel):
    """Goodfellow et al. (2016) write the kernel gradient with one sum over i, j: its second letter was
    dropped, so the right answer was graded 'Missing sum over positions'. With limits it is refused."""
    assert grading.check_prepared(kernel, "\\sum_{i,j} \\delta_{i,j} a_{i+u,j+v}").verdict == "correct"
    assert grading.check_prepared(kernel, "\\sum_{i, j} \\delta_{i,j} a_{i-u,j-v}").message == "Flipped indices."
    limited = grading.check_prepared(kernel, "\\sum_{i,j}^{n} \\delta_{i,j} a_{i+u,j+v}")
    assert limited.verdict == "cannot read" and "one sum per letter" in limited.message


@pytest.mark.parametrize("notation", ["default", "nielsen"])
def test_the_kernel_gradient_in_several_spellings_is_correct(notation):
    prepared = grading.prepare(SPEC.network, f"grad_w[0][0][0][{U}][{V}]", notation, SPEC.values, 0.5)
    for text in (f"{RIGHT:.4f}", f"{RIGHT:.6g}", f"{RIGHT:.4e}", f"2 * ({RIGHT / 2:.7f})", f"\\frac{{{RIGHT * 3:.6f}}}{{3}}"):
        assert verdict(prepared, text).verdict == "correct", text


def test_the_bias_gradient_is_the_sum_of_the_deltas():
    prepared = grading.prepare(SPEC.network, "grad_b[0][0]", "default", SPEC.values, 0.5)
    assert verdict(prepared, f"{DELTA.sum():.5f}").verdict == "correct"
    missing = verdict(prepared, f"{DELTA[1, 0]:.5f}")
    assert missing.message == "Missing sum over positions."


@pytest.mark.parametrize("name, value", [
    ("Flipped indices.", _kernel_gradient(DELTA, U, V, offset=lambda i, u: i - u)),
    ("Missing sum over positions.", DELTA[1, 1] * X[1 + U, 1 + V]),
    ("Missing activation derivative.", _kernel_gradient(ERROR_A, U, V)),
    ("Sign error.", -RIGHT)])
def test_each_named_mistake_is_named(prepared, name, value):
    assert not np.isclose(value, RIGHT, rtol=1e-3)
    result = verdict(prepared, f"{value:.6f}")
    assert (result.verdict, result.message) == ("incorrect", name)


@pytest.mark.parametrize("value", [_kernel_gradient(DELTA, U, V, rows=range(1)),  # a sum over a sub-range
                                   _kernel_gradient(DELTA, U, V, offset=lambda i, u: i + u + 1)])  # a wrong offset
def test_no_false_accept(prepared, value):
    assert not np.isclose(value, RIGHT, rtol=1e-3)
    assert verdict(prepared, f"{value:.6f}").verdict == "incorrect"


def test_a_formula_is_refused_with_a_message_asking_for_the_number(prepared):
    result = verdict(prepared, "\\sum_i \\sum_j \\delta_{i,j} a_{i+u,j+v}")
    assert result.verdict == "cannot read" and "number" in result.message


@pytest.mark.parametrize("target, words", [("grad_w[0][0][0][3][0]", "outside weights[0] of shape 1x1x3x3"),
                                           ("grad_b[0][1]", "layer 0 has 1 biases"),
                                           ("grad_w[2][0][0]", "has 2 layers"),
                                           ("delta[0][0]", "grad_w[l][o][c][u][v]")])
def test_targets_outside_the_network_are_refused_naming_it(target, words):
    with pytest.raises(SpecError, match=words.replace("[", r"\[").replace("]", r"\]")):
        grading.prepare(SPEC.network, target, "default", SPEC.values, 0.5)


@pytest.fixture(scope="module")
def kernel():
    return grading.prepare(SPEC.network, "grad_kernel", "default", SPEC.values, 0.5)


RIGHT_KERNEL = ["\\sum_i \\sum_j \\delta_{i,j} a_{i+u,j+v}", "sum_i sum_j delta_{i,j} x_{i+u,j+v}",
                "\\sum_{i} \\sum_{j} a_{i+u, j+v} \\delta_{i, j}", "\\sum_m \\sum_n \\delta_{m,n} a_{m+u,n+v}",
                "\\sum_i \\sum_j \\frac{\\partial E}{\\partial z_{i,j}} a_{i+u,j+v}",
                "\\sum_i \\sum_j \\frac{\\partial E}{\\partial a_{i,j}} g'(z_{i,j}) a_{i+u,j+v}"]


@pytest.mark.parametrize("notation", ["default", "nielsen"])
def test_the_kernel_gradient_formula_in_several_spellings_is_correct(notation):
    prepared = grading.prepare(SPEC.network, "grad_kernel", notation, SPEC.values, 0.5)
    for text in RIGHT_KERNEL:
        assert verdict(prepared, text).verdict == "correct", text


@pytest.mark.parametrize("text, name", [
    ("\\sum_i \\sum_j \\delta_{i,j} a_{i-u,j-v}", "Flipped indices."),
    ("\\delta_{i,j} a_{i+u,j+v}", "Missing sum over positions."),
    ("\\sum_i \\sum_j \\frac{\\partial E}{\\partial a_{i,j}} a_{i+u,j+v}", "Missing activation derivative."),
    ("-\\sum_i \\sum_j \\delta_{i,j} a_{i+u,j+v}", "Sign error.")])
def test_each_named_mistake_in_the_kernel_formula_is_named(kernel, text, name):
    result = verdict(kernel, text)
    assert (result.verdict, result.message) == ("incorrect", name)


@pytest.mark.parametrize("text", ["\\sum_{i=1}^{1} \\sum_j \\delta_{i,j} a_{i+u,j+v}",  # a sum over a sub-range
                                  "\\sum_i \\sum_j \\delta_{i,j} a_{i+u+1,j+v}",  # a wrong offset
                                  "\\sum_i \\sum_j \\delta_{i,j} a_{i+v,j+u}",  # the offsets swapped
                                  "\\sum_i \\sum_j \\delta_{i,j} a_{i,j}"])  # no offset
def test_no_false_accept_of_the_kernel_formula(kernel, text):
    assert verdict(kernel, text).verdict == "incorrect"


def test_grad_kernel_needs_a_convolutional_spec():
    with pytest.raises(SpecError, match="convolutional spec"):
        grading.prepare(sb.compact("2-3-2", "sigmoid,sigmoid").network, "grad_kernel")


@pytest.fixture(scope="module")
def below():
    return grading.prepare(SPEC.network, "delta_conv_input", "default", SPEC.values, 0.5)


@pytest.mark.parametrize("notation", ["default", "nielsen"])
def test_the_delta_below_as_the_flipped_kernel_convolution_is_correct(notation):
    prepared = grading.prepare(SPEC.network, "delta_conv_input", notation, SPEC.values, 0.5)
    for text in ("g'(z_{m,n}) \\sum_i \\sum_j \\delta_{i,j} K_{m-i,n-j}",
                 "\\sum_i \\sum_j \\delta_{i,j} K_{m-i, n-j} g'(z_{m,n})",
                 "(1 - a_{m,n}^2) sum_i sum_j delta_{i,j} K_{m-i,n-j}",  # tanh' written out
                 "\\sum_p \\sum_q \\frac{\\partial E}{\\partial z_{p,q}} K_{m-p,n-q} \\tanh'(z_{m,n})"):
        assert verdict(prepared, text).verdict == "correct", text


@pytest.mark.parametrize("text, name", [
    ("g'(z_{m,n}) \\sum_i \\sum_j \\delta_{i,j} K_{i-m,j-n}", "Flipped indices."),
    ("g'(z_{m,n}) \\delta_{i,j} K_{m-i,n-j}", "Missing sum over positions."),
    ("\\sum_i \\sum_j \\delta_{i,j} K_{m-i,n-j}", "Missing activation derivative.")])
def test_each_named_mistake_in_the_delta_below_is_named(below, text, name):
    result = verdict(below, text)
    assert (result.verdict, result.message) == ("incorrect", name)


@pytest.mark.parametrize("text", ["\\frac{\\partial E}{\\partial a_{m,n}}",
                                  "(1 - a_{m,n}^2) \\frac{\\partial E}{\\partial a_{m,n}}",
                                  "g'(z_{m,n}) \\frac{\\partial E}{\\partial a_{m,n}}"])
def test_the_delta_below_with_de_da_left_unworked_restates_it(below, text):
    """The red team: on a tanh layer this was "g'(z_j) is not defined for a softmax layer"."""
    result = verdict(below, text)
    assert (result.verdict, result.message) == ("incorrect", "The answer restates what it should derive."), result
    assert "softmax" not in " ".join(result.diagnosis) and "K_{m-i,n-j}" in result.diagnosis[0]


@pytest.mark.parametrize("text", ["g'(z_{m,n}) \\sum_{i=1}^{1} \\sum_j \\delta_{i,j} K_{m-i,n-j}",
                                  "g'(z_{m,n}) \\sum_i \\sum_j \\delta_{i,j} K_{m-i+1,n-j}",
                                  "g'(z_{m,n}) \\sum_i \\sum_j \\delta_{i,j} K_{n-j,m-i}"])
def test_no_false_accept_of_the_delta_below(below, text):
    assert verdict(below, text).verdict == "incorrect"


@pytest.mark.parametrize("target", ["prepared", "kernel", "below"])  # a number, the two conv formulas
@pytest.mark.parametrize("text", CORPUS)
def test_hostile_answers_are_refused_quickly_and_run_nothing(request, target, text, tmp_path):
    prepared = request.getfixturevalue(target)
    canary = tmp_path / "canary"
    start = time.perf_counter()
    assert verdict(prepared, text.format(canary=canary)).verdict in ("cannot read", "incorrect")
    assert time.perf_counter() - start < 2.0
    assert not canary.exists()


def test_the_readme_conv_check_example_is_a_real_run(tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    (tmp_path / "conv.toml").write_text(readme.split("**Convolutional networks**")[1].split("```toml\n")[1].split("```")[0])
    block = readme.split("`check` and `grade` take a conv spec's own targets")[1].split("```\n")[1]
    command, *printed = block.splitlines()
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(command.removeprefix("$ "))[3:]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == printed[:2] and out[2].startswith(printed[2].removesuffix(" ...}"))


def test_a_sum_past_the_layers_positions_is_not_accepted(kernel):
    result = verdict(kernel, "\\sum_{i=1}^{100} \\sum_j \\delta_{i,j} a_{i+u,j+v}")
    assert result.verdict == "incorrect" and "undefined" in result.message


def test_haykins_signs_and_letters_in_both_conv_formulas():
    """Haykin's delta is -dE/dv and his activations y: dE/dK = -sum delta y, the delta below keeps its form."""
    kernel = grading.prepare(SPEC.network, "grad_kernel", "haykin", SPEC.values, 0.5)
    below = grading.prepare(SPEC.network, "delta_conv_input", "haykin", SPEC.values, 0.5)
    assert verdict(kernel, "-\\sum_i \\sum_j \\delta_{i,j} y_{i+u,j+v}").verdict == "correct"
    assert verdict(kernel, "\\sum_i \\sum_j \\delta_{i,j} y_{i+u,j+v}").message == "Sign error."
    assert verdict(below, "\\varphi'(v_{m,n}) \\sum_i \\sum_j \\delta_{i,j} K_{m-i,n-j}").verdict == "correct"


def test_a_softmax_conv_layer_is_prepared_and_its_g_prime_refused():
    """No g' per unit under softmax: the mistakes that need one are left out, an answer with g' is refused."""
    spec = sb.from_dict({"network": {"input_shape": [1, 4, 4], "loss": "half_sse",
                                     "layer": [{"kind": "conv", "channels": 1, "kernel": [2, 2], "activation": "softmax"},
                                               {"kind": "dense", "units": 1, "activation": "identity"}]},
                         "example": {"inputs": [X.tolist()], "targets": [TARGET]}})
    for target, text in (("grad_kernel", "\\sum_i \\sum_j \\frac{\\partial E}{\\partial a_{i,j}} g'(z_{i,j}) a_{i+u,j+v}"),
                         ("delta_conv_input", "g'(z_{m,n}) \\sum_i \\sum_j \\delta_{i,j} K_{m-i,n-j}")):
        prepared = grading.prepare(spec.network, target, "default", spec.values, 0.5)
        result = verdict(prepared, text)
        assert result.verdict == "incorrect" and "softmax" in result.message


@pytest.mark.parametrize("text, letter", [
    ("\\sum_i \\sum_j \\delta_{i,j} a_{i+u,j+v} + 0 a_{p,q}", "p"),
    ("\\sum_i \\sum_j \\delta_{p,q} a_{i+u,j+v}", "p")])
def test_a_letter_bound_by_nothing_is_called_free_not_a_missing_sum(kernel, text, letter):
    """p and q are no position the layer sums over (i, j) nor the target's (u, v): the answer was
    diagnosed 'Missing sum over positions', which sends the student to add a sum that is already there."""
    result = verdict(kernel, text)
    assert result.verdict == "incorrect" and "missing sum" not in result.message.lower(), result.message
    assert f"{letter} " in result.message and "free" in result.message and "u and v" in result.message, \
        result.message


def test_a_letter_bound_by_nothing_in_the_delta_below_is_called_free(below):
    result = verdict(below, "g'(z_{m,n}) \\sum_i \\sum_j \\delta_{i,j} K_{m-i,n-j} + 0 \\delta_{r,r}")
    assert result.verdict == "incorrect" and "free" in result.message and "m and n" in result.message, \
        result.message
    assert verdict(below, "g'(z_{m,n}) \\delta_{i,j} K_{m-i,n-j}").message == "Missing sum over positions."


@pytest.mark.parametrize("target, words", [("grad_w[0][1]", "weights[0] of a conv layer take 5 indices, "
                                                            "grad_w[l][o][c][u][v]"),
                                           ("grad_w[0][0][0][0][0][0]", "take 5 indices"),
                                           ("grad_w[1][0]", "weights[1] of a dense layer take 3 indices, "
                                                            "grad_w[l][i][j]")])
def test_a_kernel_target_with_the_wrong_number_of_indices_says_how_many_it_takes(target, words):
    with pytest.raises(SpecError) as error:
        grading.prepare(SPEC.network, target, "default", SPEC.values, 0.5)
    assert words in error.value.message and "outside" not in error.value.message, error.value.message
