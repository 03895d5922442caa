"""Tests for symbackprop.answers: LaTeX and plain answers read through notation presets.

Expected expressions are written by hand from the textbook formulas, in the internal
convention (w[x, y] from x to y, delta = dE/dz)."""
import time

import numpy as np
import pytest
import sympy as sp
from hostile import CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st

from symbackprop import notation
from symbackprop.grading.building import KNOWN_FUNCTIONS
from symbackprop.grading.reading import read_answer
from symbackprop.grading.spelling import lines_of
from symbackprop.grading.vocabulary import (DELTA, ETA, P, S, U, Vocabulary, a, b, dEda, delta, dg, quoted, t,
                                             updated, w, z)
from symbackprop.parsing import ExpressionError

HIDDEN = {"default": {"i": P, "j": U, "k": S}, "haykin": {"i": P, "j": U, "k": S},
          "nielsen": {"k": S, "j": U}, "wikipedia": {"i": P, "j": U, "l": S}, "bishop": {"i": P, "j": U, "k": S}}


def read(text, preset="default", letters=None):
    vocabulary = Vocabulary(notation.load(preset), HIDDEN[preset] if letters is None else letters)
    return read_answer(text, vocabulary)


def value(text, preset="default"):
    answer = read(text, preset)
    assert not answer.remarks
    return answer.sides[-1]


def same(x, y):
    """Equal as mathematics (the reader builds unevaluated trees)."""
    return sp.simplify(sp.expand(x.doit() if hasattr(x, "doit") else x) - y) == 0


def total(term):
    return sp.Sum(term, (S, 0, sp.Symbol("N")))


BP_HIDDEN = dg(z[U]) * total(w[U, S] * delta[S])


@pytest.mark.parametrize("text, preset", [
    ("\\delta_j = g'(z_j)\\sum_k w_{jk}\\delta_k", "default"),
    ("g'(z_j)*sum(w_jk*delta_k, k)", "default"),
    ("g'(z_j) \\cdot \\sum_{k} w_{j,k} \\, \\delta_{k}", "default"),
    ("\\left( \\sum_{k=1}^{n} w_{jk}\\delta_k \\right) g'(z_j)", "default"),
    ("\\sum_{k \\in K} \\delta_k w_{jk} \\; g^{\\prime}(z_j)", "default"),
    ("δ_j = g′(z_j) Σ_k w_{jk} δ_k", "default"),
    ("\\varphi'(\\mathrm{net}_j) \\sum_{\\ell} w_{j\\ell} \\delta_\\ell", "wikipedia"),
    ("\\varphi'_j(v_j) \\sum_k \\delta_k w_{kj}", "haykin"),
    ("h'(a_j) \\sum_k w_{kj} \\delta_k", "bishop"),
    ("\\delta^l_j = \\sum_k w^{l+1}_{kj} \\delta^{l+1}_k \\sigma'(z^l_j)", "nielsen"),
    ("\\delta^{(l)}_j = \\sum_k w^{(l+1)}_{kj} \\delta^{(l+1)}_k \\sigma'(z^{(l)}_j)", "nielsen"),
])
def test_the_hidden_delta_in_every_spelling_reads_as_bp2(text, preset):
    sign = -1 if preset == "haykin" else 1  # Haykin's delta is -dE/dv: the student's delta_k is -delta[k]
    assert same(value(text, preset), sign * BP_HIDDEN)


def test_left_hand_side_is_kept_as_a_side():
    answer = read("\\delta_j = g'(z_j)\\sum_k w_{jk}\\delta_k")
    assert answer.sides[0] == delta[U] and answer.relations == ("=",)


def test_haykin_symbols_map_to_the_internal_convention():
    # e_j = d_j - y_j, delta_j = -dE/dv_j, w_ji from i to j, the bias is w_j0, time index (n) dropped
    assert same(value("e_j(n) \\varphi'(v_j(n))", "haykin"), (t[U] - a[U]) * dg(z[U]))
    assert value("\\delta_j", "haykin") == -delta[U]
    assert value("w_{ji}", "haykin") == w[P, U]
    assert value("w_{j0}", "haykin") == b[U]
    answer = read("w_{ji}(n+1) = w_{ji}(n) + \\eta \\delta_j(n) y_i(n)", "haykin")
    assert answer.sides[0] == updated(w[P, U])
    assert same(answer.sides[1], w[P, U] - ETA * delta[U] * a[P])


def test_partial_derivatives_read_as_what_they_equal():
    assert value("\\frac{\\partial E}{\\partial a_k}") == dEda[S]
    assert value("\\frac{\\partial E}{\\partial z_j}") == quoted(delta[U])
    assert same(value("\\frac{\\partial E}{\\partial w_{ij}}").args[0], delta[U] * a[P])
    assert value("\\frac{\\partial a_j}{\\partial z_j}") == dg(z[U])
    assert value("\\frac{\\partial z_k}{\\partial a_j}") == w[U, S]
    assert value("\\frac{\\partial z_j}{\\partial w_{ij}}") == a[P]
    assert value("\\frac{\\partial C}{\\partial a^l_j}", "nielsen") == dEda[U]


def test_update_left_hand_sides_are_marked():
    assert read("\\Delta w_{ij} = -\\eta \\delta_j a_i").sides[0] == DELTA * w[P, U]
    assert read("w_{ij} \\leftarrow w_{ij} - \\eta \\delta_j a_i").relations == ("<-",)
    assert read("w_{ij}^{+} = w_{ij} - \\eta \\delta_j a_i").sides[0] == updated(w[P, U])


def test_implicit_products_powers_and_fractions():
    assert same(value("(a_k - t_k) a_k (1 - a_k)"), (a[S] - t[S]) * a[S] * (1 - a[S]))
    assert same(value("\\frac{1}{2}(a_j - t_j)^2"), (a[U] - t[U]) ** 2 / 2)
    assert same(value("\\frac12 a_j^2"), a[U] ** 2 / 2)
    assert same(value("0.5*a_j**2 / 2"), a[U] ** 2 / 4)


def test_layer_superscripts_that_contradict_the_letter_are_remarks():
    answer = read("\\sum_k w^{l}_{kj} \\delta^{l+1}_k \\sigma'(z^l_j)", "nielsen")
    assert answer.remarks and "w^{l}_{kj}" in answer.remarks[0] and "l+1" in answer.remarks[0]


@pytest.mark.parametrize("text, preset, words", [
    ("q_j", "haykin", ["unknown symbol q_{j}", "column 1", "v, y, phi, w, b, d"]),
    ("a_j + \\input{x}", "default", ["\\input", "column 7"]),
    ("a_j + ", "default", ["ends too early"]),
    ("w_j", "default", ["needs 2 index letter(s)"]),
    ("\\delta^l = ((w^{l+1})^T \\delta^{l+1})", "nielsen", ["index letter", "vector form"]),
    ("w_{jk}^T \\delta_k", "default", ["matrix form"]),
    ("g'", "default", ["needs its argument"]),
    ("a'_j(z_j)", "default", ["prime needs a function"]),
    ("a_j^{z_j}", "default", ["exponents must be numbers"]),
    ("E", "default", ["only in derivatives"]),
    ("sum(w_jk delta_k)", "default", ["sum at column 1 needs its index"]),
    ("+".join(["a_j"] * 301), "default", ["names 301 symbols; at most 300"]),
    ("sum(sum(sum(sum(a_k*a_m*a_n*a_p, k), m), n), p)", "default", ["nested more than 3 deep"]),
    ("zj + qk", "default", ["unknown symbol qk"]),
    ("{frac {partial E}{partial w_{ij}}}", "wikipedia", ["looks like LaTeX that lost its backslash"]),
    ("\\frac{\\partial t_j}{\\partial b_j}", "default", ["not a derivative this checker reads"]),
    ("a_j \u00e9", "default", ["U+00E9", "column 5"]),
])
def test_unreadable_answers_say_what_and_where(text, preset, words):
    with pytest.raises(ExpressionError) as info:
        read(text, preset)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("text", CORPUS)
def test_hostile_inputs_are_refused_or_read_as_mathematics_quickly(text, tmp_path):
    canary = tmp_path / "canary"
    start = time.thread_time()
    try:
        answer = read(text.format(canary=canary))
    except ExpressionError as error:
        assert str(error) and "\n" not in str(error)
    else:  # read: it is arithmetic on the notation's symbols, nothing else
        for side in answer.sides:
            assert all(isinstance(s, (sp.Symbol, sp.IndexedBase, sp.Indexed)) for s in side.free_symbols)
    assert time.thread_time() - start < 1.0
    assert not canary.exists()


def test_the_reader_never_calls_eval_exec_or_sympify():
    import inspect

    from symbackprop.grading import reading as answers
    source = inspect.getsource(answers)
    for name in ("eval(", "exec(", "sympify(", "parse_expr(", "parse_latex("):
        assert name not in source


def numeric(expression, x):
    """``expression`` of a_j at a_j = x, with the reader's named functions as NumPy (g is tanh here)."""
    from symbackprop.grading.evaluation import _NUMPY
    modules = [{**_NUMPY, "g": np.tanh, "dg": lambda v: 1 - np.tanh(v) ** 2}, "numpy"]
    return float(sp.lambdify([], expression.xreplace({a[U]: sp.Float(x)}), modules)())


LITERAL_FUNCTIONS = sorted(KNOWN_FUNCTIONS - {"max", "min"})
LATEX_COMMANDS = {"exp", "log", "ln", "tanh", "sinh", "cosh", "sin", "cos", "tan", "sqrt", "sech"}
FUNCTION_SPELLINGS = ([f"{name}^{{n}}" for name in LITERAL_FUNCTIONS]
                      + [f"\\operatorname{{{name}}}^{{n}}" for name in LITERAL_FUNCTIONS]
                      + [f"\\{name}^n" for name in sorted(LATEX_COMMANDS)]
                      + ["\\sigma^{n}", "ReLU^n", "H^n", "g^n", "g'^{n}", "\\mathrm{ReLU}'^n"])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.sampled_from(FUNCTION_SPELLINGS), st.integers(2, 5), st.floats(0.1, 0.9), st.booleans())
def test_a_power_on_a_function_name_is_a_power_of_its_value(written, n, x, parentheses):
    """f^n(x) = f(x)^n for every function the reader knows: sigma^2(z) is not sigma(z)."""
    power = read(written.replace("^n", f"^{n}").replace("{n}", f"{{{n}}}") + "(a_j)")
    assert power.sides[-1].has(sp.Pow)
    base = written.split("^")[0]
    plain = read(f"({base}(a_j))^{n}" if parentheses else f"{base}(a_j)^{{{n}}}")
    assert numeric(power.sides[-1], x) == pytest.approx(numeric(plain.sides[-1], x), rel=1e-12)


@pytest.mark.parametrize("text, expected", [
    ("e^{-z_j}", sp.exp(-z[U])),
    ("\\frac{1}{1 + e^{-z_j}}", 1 / (1 + sp.exp(-z[U]))),
    ("\\cosh^2 z_j", sp.Function("cosh")(z[U]) ** 2),  # the reader's functions stay unevaluated names
    ("1 - \\tanh^2(z_j)", 1 - sp.Function("tanh")(z[U]) ** 2),
    ("[t_j - a_j] a_j", (t[U] - a[U]) * a[U]),
    ("\\left[ t_j - a_j \\right]", t[U] - a[U]),
    ("$a_j$.", a[U]),
    ("$$a_j,$$", a[U]),
    ("a_j \\quad \\text{for every hidden unit } j \\in l", a[U]),
    ("a_j \\quad (4.14)", a[U]),
    ("dE/dw_ij", quoted(delta[U] * a[P])),
    ("dE/db_j", quoted(delta[U])),
    ("∂E/∂z_j", quoted(delta[U])),
    ("-\\partial E/\\partial z_j", -quoted(delta[U])),
    ("\\frac{\\partial z_k}{\\partial z_j}", w[U, S] * dg(z[U])),
    ("\\frac{\\partial a_j}{\\partial w_{ij}}", dg(z[U]) * a[P]),
])
def test_textbook_spellings_read_as_what_they_mean(text, expected):
    assert same(value(text), expected)


def test_haykin_error_signal_derivatives_and_bishops_e_n():
    assert same(value("\\frac{\\partial E}{\\partial e_j}", "haykin"), -dEda[U])
    assert value("\\frac{\\partial e_j}{\\partial y_j}", "haykin") == -1
    assert value("\\frac{\\partial e_j}{\\partial y_i}", "haykin") == 0
    assert same(value("\\frac{\\partial E_n}{\\partial a_j}", "bishop").args[0], delta[U])


def test_indicators_and_cases_are_step_functions():
    assert same(value("\\mathbb{1}[z_j > 0]"), sp.Function("heaviside")(z[U]))
    answer = read_answer(lines_of("\\begin{cases} a_j & z_j > 0 \\\\ 2 a_j & \\text{otherwise} \\end{cases}")[0],
                         Vocabulary(notation.load("default"), HIDDEN["default"]))
    H = sp.Function("heaviside")
    assert same(answer.sides[0], a[U] * H(z[U]) + 2 * a[U] * (1 - H(z[U])))


@pytest.mark.parametrize("text, new", [
    ("w^{new}_{ij} = w^{old}_{ij} - \\eta \\delta_j a_i", True),
    ("w_{ij}(t+1) = w_{ij}(t) - \\eta \\delta_j a_i", True),
    ("w_{ij}^{(\\tau+1)} = w_{ij}^{(\\tau)} - \\eta \\delta_j a_i", True),
    ("w_{ij} \\rightarrow w'_{ij} = w_{ij} - \\eta \\delta_j a_i", True),
])
def test_update_spellings_name_the_new_weight(text, new):
    answer = read(text)  # Nielsen's arrow keeps the old weight it starts from, for the checker to compare
    assert answer.sides[-2] == updated(w[P, U]) and same(answer.sides[-1], w[P, U] - ETA * delta[U] * a[P])


def test_arrows_in_weight_indices_and_arrow_updates():
    arrows = {"i": P, "j": U, "k": S}
    assert read("w_{j→k}", "arrows", arrows).sides[0] == w[U, S]
    answer = read("w_{i→j} → w_{i→j} - \\eta \\delta_j z_i", "arrows", arrows)
    assert answer.relations == ("<-",) and answer.sides[0] == w[P, U]


def test_derivation_lines_split_on_aligned_rows_and_newlines():
    text = "\\begin{aligned} \\delta_j &= a_j \\\\ &= a_j \\end{aligned}"
    assert [line.split() for line in lines_of(text)] == [["\\delta_j", "=", "a_j"], ["=", "a_j"]]
    assert len(lines_of("a_j = b_j\n= c_j\n\n")) == 2
    assert len(lines_of("a_j +\nb_j")) == len(lines_of("\\delta_j =\n a_j")) == 1  # one formula, wrapped
    with pytest.raises(ExpressionError, match="at most 30"):
        lines_of("a_j\n" * 31)


@pytest.mark.parametrize("hedge", ["a_j \\quad \\text{or} \\quad a_j + t_j", "a_j \\text{ or maybe } 2 a_j",
                                   "a_j \\qquad \\delta_j"])
def test_a_second_formula_after_quad_or_text_is_not_dropped_as_a_remark(hedge):
    try:
        answer = read(hedge)
    except ExpressionError:
        return
    assert not same(answer.sides[-1], a[U])
