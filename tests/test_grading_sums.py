"""Sums as students write them: their limits honoured, their summation letters local to them.

The expected verdicts are the mathematics of the targets, worked out by hand: dE/dr_ij sums
a_i(t-1) delta_j(t) over t = 1..T with a zero first term (a_i(0) = 0), dE/dw_ij of an input weight
x_i(t) delta_j(t) with a nonzero one, and a hidden delta sums over every unit it feeds.
"""
from __future__ import annotations

import functools

import pytest

import symbackprop as sb
from symbackprop import grading

ELMAN = sb.compact("2-3-1", "tanh,identity", steps=3)
LAYERED = sb.compact("2-3-1", "sigmoid,identity")


@functools.lru_cache(maxsize=None)
def prepared(spec_name: str, target: str, notation: str = "default"):
    spec = {"elman": ELMAN, "layered": LAYERED}[spec_name]
    return grading.prepare(spec.network, target, notation)


def verdict(spec_name: str, target: str, answer: str, notation: str = "default"):
    return grading.check_prepared(prepared(spec_name, target, notation), answer)


TERM = r"a_i(t-1) \delta_j(t)"


@pytest.mark.parametrize("answer", [rf"\sum_{{t=1}}^{{T}} {TERM}", rf"\sum_t {TERM}", rf"\sum_{{t=2}}^{{T}} {TERM}",
                                    r"\sum_{\tau=1}^{T} a_i(\tau-1) \delta_j(\tau)",
                                    rf"\frac{{\partial E}}{{\partial r_{{ij}}}} = \sum_{{t = 1}}^{{T}} {TERM}"])
def test_a_time_sum_over_every_step_is_the_gradient(answer):
    assert verdict("elman", "grad_r", answer).verdict == "correct", answer


@pytest.mark.parametrize("answer", [rf"\sum_{{t=1}}^{{T-2}} {TERM}", rf"\sum_{{t=T-2}}^{{T}} {TERM}",
                                    rf"\sum_{{t=T-1}}^{{T}} {TERM}", rf"\sum_{{t=3}}^{{T}} {TERM}",
                                    rf"\sum_{{t=2}}^{{T-1}} {TERM}", rf"\sum_{{t=1}}^{{3}} {TERM}"])
def test_a_time_sum_over_part_of_the_steps_is_not(answer):
    assert verdict("elman", "grad_r", answer).verdict == "incorrect", answer


def test_a_sum_over_the_last_step_alone_is_named():
    result = verdict("elman", "grad_r", rf"\sum_{{t=T}}^{{T}} {TERM}")
    assert result.verdict == "incorrect" and result.message == "Gradient from the last step only."


def test_an_input_weights_first_term_counts():
    assert verdict("elman", "grad_w_hidden", r"\sum_{t=1}^{T} x_i(t) \delta_j(t)").verdict == "correct"
    assert verdict("elman", "grad_w_hidden", r"\sum_{t=2}^{T} x_i(t) \delta_j(t)").verdict == "incorrect"


def test_a_derivation_line_that_changes_the_limits_is_wrong():
    derivation = "\n".join([rf"\frac{{\partial E}}{{\partial r_{{ij}}}} = \sum_{{t=1}}^{{T}} {TERM}",
                            rf"= \sum_{{t=1}}^{{T-1}} {TERM}"])
    result = verdict("elman", "grad_r", derivation)
    assert result.verdict == "incorrect" and result.first_wrong_line == 2


@pytest.mark.parametrize("answer, expected", [
    (r"\sigma'(z_j) \sum_{k=1}^{K} w_{jk} \delta_k", "correct"),
    (r"\sigma'(z_j) \sum_{k=0}^{n} w_{jk} \delta_k", "correct"),
    (r"\sigma'(z_j) \sum_{m} w_{jm} \delta_m", "correct"),
    (r"\sigma'(z_j) \sum_{k=3} w_{jk} \delta_k", "incorrect"),
    (r"\sigma'(z_j) \sum_{k=2}^{K} w_{jk} \delta_k", "incorrect"),
    (r"\sigma'(z_j) \sum_{k=1}^{2} w_{jk} \delta_k", "incorrect"),  # the test networks' layers have 2 to 4 units
    ("sigma'(z_j) * sum_{k=3}^{K} w_jk delta_k", "incorrect"),
])
def test_the_limits_of_a_sum_over_units(answer, expected):
    assert verdict("layered", "delta_hidden", answer).verdict == expected, answer


@pytest.mark.parametrize("spec_name, target, answer", [
    ("layered", "delta_hidden", r"g'(z_j) \sum_{k=1}^{100} w_{jk}\delta_k"),
    ("layered", "delta_hidden", r"g'(z_j) \sum_{k=1}^{99999999999999999999} w_{jk}\delta_k"),
    ("layered", "delta_hidden", r"g'(z_j) \sum_{k=0}^{5} w_{jk}\delta_k"),
    ("elman", "grad_r", rf"\sum_{{t=1}}^{{1000}} {TERM}"),
])
def test_a_sum_whose_numeric_end_lies_past_the_layer_or_the_sequence_is_not_the_whole_of_it(spec_name, target, answer):
    """The test networks have a few units and steps: a sum to 100 ran over all of them and was correct."""
    judged = verdict(spec_name, target, answer)
    assert judged.verdict == "incorrect" and "past the last unit or step" in judged.message, judged.message


@pytest.mark.parametrize("letter", ["t", "n"])
def test_a_time_sum_that_ends_at_its_own_letter_is_not_the_whole_sequence(letter):
    """\\sum_{t=1}^{t} read t as the target's step (T for a gradient): a false accept."""
    term = TERM.replace("t", letter)
    result = verdict("elman", "grad_r", rf"\sum_{{{letter}=1}}^{{{letter}}} {term}")
    assert result.verdict != "correct", result.message


def test_an_unreadable_limit_is_said():
    result = verdict("layered", "delta_hidden", r"\sigma'(z_j) \sum_{k=j+1}^{K} w_{jk} \delta_k")
    assert result.verdict == "cannot read" and "starts at" in result.message
    result = verdict("elman", "grad_r", rf"\sum_{{t=1}}^{{T/2}} {TERM}")
    assert result.verdict == "cannot read"


@pytest.mark.parametrize("end", ["K-1", "K - 2", "j", "k", "i", "z_j", "a_k", "2.5", "-1", "1/2", "K/2",
                                 r"\sum_{m=1}^{K} 1"])
def test_a_sum_that_ends_at_anything_but_the_layer_or_a_unit_number_is_not_the_whole_layer(end):
    """An end such as K-1 or j sums over part of the layer (and -1 over none): taken for the
    whole layer, each was a false accept."""
    result = verdict("layered", "delta_hidden", rf"\sigma'(z_j) \sum_{{k=1}}^{{{end}}} w_{{jk}} \delta_k")
    assert result.verdict in ("incorrect", "cannot read"), end
    assert result.verdict == "incorrect" or "ends at" in result.message


@pytest.mark.parametrize("end", ["K", "N", "n", "m", "n_{l+1}", "n_{(l+1)}", "3"])
def test_a_sum_that_ends_at_a_size_letter_is_read(end):
    result = verdict("layered", "delta_hidden", rf"\sigma'(z_j) \sum_{{k=1}}^{{{end}}} w_{{jk}} \delta_k")
    assert result.verdict == ("incorrect" if end == "3" else "correct"), (end, result.message)


SIGMOID = sb.compact("2-3-1", "sigmoid,identity")
RELU = sb.compact("2-3-1", "relu,identity")


@functools.lru_cache(maxsize=None)
def on(spec_name: str, target: str, notation: str):
    spec = {"sigmoid": SIGMOID, "relu": RELU}[spec_name]
    return grading.prepare(spec.network, target, notation)


BP2 = {"k": r"\sum_k w^{l+1}_{kj} \delta^{l+1}_k", "m": r"\sum_m w^{l+1}_{mj} \delta^{l+1}_m",
       "q": r"\sum_{q=1}^{n} w^{l+1}_{qj} \delta^{l+1}_q", "plain": r"sum_k w^{l+1}_{kj} delta^{l+1}_k",
       "call": r"sum(w^{l+1}_{kj} \delta^{l+1}_k, k)"}


@pytest.mark.parametrize("letter", sorted(BP2))
def test_nielsens_own_bp2_is_read_with_a_local_summation_letter(letter):
    """dC/db^l_j = delta^l_j = sigma'(z^l_j) sum_k w^{l+1}_kj delta^{l+1}_k (Nielsen 2015, BP2 and BP3):
    in dC/db and dC/dw^l_jk the letter k otherwise names the unit feeding j."""
    bias = rf"\frac{{\partial C}}{{\partial b^l_j}} = \delta^l_j = \sigma'(z^l_j) {BP2[letter]}"
    assert grading.check_prepared(on("sigmoid", "grad_b_hidden", "nielsen"), bias).verdict == "correct"
    weight = rf"a^{{l-1}}_k \sigma'(z^l_j) {BP2[letter]}"
    assert grading.check_prepared(on("sigmoid", "grad_w_hidden", "nielsen"), weight).verdict == "correct"


@pytest.mark.parametrize("letter", ["k", "m"])
def test_a_missing_relu_slope_is_named_whatever_the_summation_letter(letter):
    result = grading.check_prepared(on("relu", "grad_b_hidden", "nielsen"), BP2[letter])
    assert result.verdict == "incorrect" and result.message == "Missing activation derivative.", letter


def test_a_letter_bound_by_a_sum_is_not_the_same_letter_outside_it():
    # outside the sum, k is still the unit feeding j: a^{l-1}_k; a sum over k leaves it alone
    swapped = r"a^{l-1}_j \sigma'(z^l_k) \sum_k w^{l+1}_{kj} \delta^{l+1}_k"
    assert grading.check_prepared(on("sigmoid", "grad_w_hidden", "nielsen"), swapped).verdict == "incorrect"
    # in the default notation (i feeds j, j feeds k) a sum over i is still the wrong index
    wrong = grading.check_prepared(on("sigmoid", "delta_hidden", "default"), r"g'(z_j) \sum_i w_{jk} \delta_k")
    assert wrong.verdict == "incorrect" and wrong.message == "Sum over the wrong index."


@pytest.mark.parametrize("target, answer", [
    ("grad_r", r"\sum_{\tau=1}^{t} \delta_j(\tau) a_i(\tau-1)"),
    ("grad_r", r"\frac{\partial E}{\partial r_{ij}} = \sum_{\tau=1}^{t} a_i(\tau-1) \delta_j(\tau)"),
    ("grad_r", r"\sum_{n=1}^{t} a_i(n-1) \delta_j(n)"),
    ("grad_r", r"\sum_{\tau=1}^{t-1} a_i(\tau) \delta_j(\tau+1)"),
    ("grad_r", r"\sum_{\tau=t}^{T} a_i(\tau-1) \delta_j(\tau)"),
    ("grad_w_hidden", r"\sum_{\tau=1}^{t} x_i(\tau) \delta_j(\tau)"),
])
def test_a_total_gradient_has_no_free_step_for_its_sum_to_end_at(target, answer):
    """dE/dr_ij sums over every step of the sequence: a limit t (the step of a delta, free there) was
    taken as T, and the sum to t graded correct."""
    result = verdict("elman", target, answer)
    assert result.verdict == "incorrect", (answer, result.message)
    assert "sums over every step, to T" in result.message, result.message


def test_a_free_step_in_a_deltas_sum_is_its_own_step():
    """delta_j(t) has t free: a time sum whose limits name t is read at that step."""
    future = r"g'(z_j(t)) \left[\sum_k w_{jk}\delta_k(t) + \sum_{\tau=t+1}^{t+1} \sum_m r_{jm}\delta_m(\tau)\right]"
    assert verdict("elman", "delta_hidden_bptt", future).verdict == "correct"
    now = r"g'(z_j(t)) \left[\sum_k w_{jk}\delta_k(t) + \sum_{\tau=t}^{t} \sum_m r_{jm}\delta_m(\tau)\right]"
    assert verdict("elman", "delta_hidden_bptt", now).message == "Time-index shift."
