"""Spellings students write that the reader now reads (issue 23 item 3), each graded as what it means.

Expected verdicts are the textbook formulas: Nielsen's BP1 (Hadamard product), the arrows notation's
(y-hat - y) f'(s), the sigmoid's slope e^{-x}/(1 + e^{-x})^2, ReLU as max(0, z) with slope H(z).
"""
from __future__ import annotations

import functools

import pytest

import symbackprop as sb
from symbackprop import grading

SPECS = {"sigmoid": sb.compact("2-3-1", "sigmoid,identity"), "relu": sb.compact("2-1", "relu")}


@functools.lru_cache(maxsize=None)
def prepared(spec: str, target: str, notation: str):
    return grading.prepare(SPECS[spec].network, target, notation)


@pytest.mark.parametrize("spec, notation, target, answer", [
    ("sigmoid", "arrows", "delta_output", r"(\hat{y}_j - y_j) f'_j(s_j)"),
    ("sigmoid", "arrows", "delta_output", "(ŷ_j - y_j) f'_j(s_j)"),
    ("sigmoid", "arrows", "delta_output", "(y\u0302_j - y_j) f'_j(s_j)"),
    ("sigmoid", "arrows", "delta_output", r"f'_j(s_j) \cdot (\hat y_j - y_j)"),
    ("sigmoid", "nielsen", "delta_output", r"(a^L_j - y_j) \odot \sigma'(z^L_j)"),
    ("sigmoid", "nielsen", "delta_output", "\\delta^L_j = (a^L_j - y_j) ⊙ \\sigma'(z^L_j)"),
    ("sigmoid", "default", "grad_w_hidden", r"\nabla_{w_{ij}} E = \delta_j a_i"),
    ("sigmoid", "nielsen", "grad_w_hidden", r"\nabla_{w^l_{jk}} C = a^{l-1}_k \delta^l_j"),
    ("sigmoid", "default", "update_w_hidden", r"w_{ij} -= \eta \delta_j a_i"),
    ("sigmoid", "default", "update_w_hidden", "w_ij -= eta*delta_j*a_i"),
    ("sigmoid", "default", "update_w_hidden", "w_ij += -eta*a_i*delta_j"),
    ("sigmoid", "wikipedia", "delta_hidden",
     r"\frac{e^{-\mathrm{net}_j}}{(1 + e^{-\mathrm{net}_j})^2} \sum_l w_{jl} \delta_l"),
    ("sigmoid", "wikipedia", "delta_hidden", r"\frac{e^{-\text{net}_j}}{(1 + e^{-\text{net}_j})^{2}} \sum_{l} w_{jl} \delta_l"),
    ("relu", "default", "delta_output", r"(\max(0, z_k) - t_k) H(z_k)"),
    ("relu", "default", "delta_output", r"(\max(z_k, 0) - t_k) \cdot H(z_k)"),
])
def test_new_spellings_are_read_and_right(spec, notation, target, answer):
    result = grading.check_prepared(prepared(spec, target, notation), answer)
    assert result.verdict == "correct", (answer, result.message)


@pytest.mark.parametrize("spec, notation, target, answer, message", [
    ("sigmoid", "nielsen", "delta_output", r"(a^L_j - y_j) \odot \sigma(z^L_j)", None),
    ("sigmoid", "default", "update_w_hidden", r"w_{ij} += \eta \delta_j a_i", "Wrong sign in the update"),
    ("relu", "default", "delta_output", r"\max(0, z_k) - t_k", "Missing activation derivative."),
    ("sigmoid", "default", "grad_w_hidden", r"\nabla_{w_{ij}} E = \delta_i a_j", "unit indices are swapped"),
])
def test_new_spellings_of_wrong_answers_are_wrong(spec, notation, target, answer, message):
    result = grading.check_prepared(prepared(spec, target, notation), answer)
    assert result.verdict == "incorrect", (answer, result.message)
    if message is not None:
        assert message in " ".join([result.message, *result.diagnosis]), result.message
