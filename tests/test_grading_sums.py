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
                                    rf"\sum_{{\tau=1}}^{{T}} a_i(\tau-1) \delta_j(\tau)",
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


def test_an_unreadable_limit_is_said():
    result = verdict("layered", "delta_hidden", r"\sigma'(z_j) \sum_{k=j+1}^{K} w_{jk} \delta_k")
    assert result.verdict == "cannot read" and "starts at" in result.message
    result = verdict("elman", "grad_r", rf"\sum_{{t=1}}^{{T/2}} {TERM}")
    assert result.verdict == "cannot read"
