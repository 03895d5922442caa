"""Textbook spellings rewritten into the one the answer grammar reads, before it reads them.

Students paste what their text prints: ``$...$``, ``\\begin{aligned}``, Haykin's ``[d_j(n) - y_j(n)]``
and time index, plain ``dE/dw_ij``, ``\\mathbb{1}[z_j > 0]``, ReLU's ``\\begin{cases}``, remarks after
``\\quad``.  Each rewrite here is a regular expression or a bracket match on the text (linear in its
length, never evaluating it); what they leave is read by :mod:`.reading` like any other answer.
"""
from __future__ import annotations

import re

from ..parsing import ExpressionError

MAX_LINES = 30

UNICODE = {"δ": r"\delta ", "Δ": r"\Delta ", "η": r"\eta ", "σ": r"\sigma ", "φ": r"\varphi ", "ϕ": r"\phi ",
           "α": r"\alpha ", "∂": r"\partial ", "Σ": r"\sum ", "∑": r"\sum ", "·": r"\cdot ", "×": r"\times ",
           "−": "-", "′": "'", "ℓ": r"\ell ", "←": r"\leftarrow ", "∈": r"\in ", "→": r"\rightarrow ",
           "τ": r"\tau ", "≡": r"\equiv ", "≥": r"\geq ", "≤": r"\leq ", "²": "^{2}", "³": "^{3}", "⋅": r"\cdot ",
           "∗": "*", "–": "-", "ε": r"\varepsilon ", "θ": r"\theta ", "λ": r"\lambda ", "μ": r"\mu ",
           "ŷ": r"\hat{y}", "⊙": r"\odot ", "∇": r"\nabla "}
#: a hat as a combining accent (y followed by U+0302)
_COMBINING_HAT = re.compile("([A-Za-z])\u0302")
#: Python's augmented assignment of an update, w -= eta * ...
_AUGMENTED = re.compile(r"([^=<>!+\-]+?)\s*([-+])=\s*([^=]+)")
#: a time index right after a symbol: Haykin's (n), the (t) of w_ij(t), Bishop's (tau); dropped
_TIME_INDEX = re.compile(r"(?<=[A-Za-z0-9}'])\(\s*(?:n|t|\\tau)\s*\)")
#: the next time step, (n+1), (t+1): "the new value"
_NEXT_TIME = re.compile(r"(?<=[A-Za-z0-9}'])\(\s*(?:n|t|\\tau)\s*\+\s*1\s*\)")
_ERROR_NAMES = r"(?:E_n|E|C|L|J|\\mathcal\{E\})"
#: the gradient \nabla_{w_{ij}} E (or \nabla_w E) as the derivative it is
_NABLA = re.compile(rf"\\nabla\s*_\s*(\{{(?:[^{{}}]|\{{[^{{}}]*\}})*\}}|[A-Za-z])\s*({_ERROR_NAMES})(?![A-Za-z])")
#: dE/dw_ij, dC/dw^l_jk: the derivative of the error written with plain d's
_PLAIN_DERIVATIVE = re.compile(rf"(?<![A-Za-z\\])d({_ERROR_NAMES})\s*/\s*d(?=[A-Za-z\\])")
#: the indicator 1[z_j > 0], 1_{z_j > 0}, 1\{z_j > 0\}
_INDICATOR = re.compile(r"\\math(?:bb|bf|rm)\{1\}\s*(?:_\{([^{}]*)\}|\[([^\[\]]*)\]|\\\{(.*?)\\\}|\(([^()]*)\))")
_CASES = re.compile(r"\\begin\{cases\}(.*?)\\end\{cases\}", re.DOTALL)
_ENVIRONMENT = re.compile(r"\\(?:begin|end)\{(?:aligned|align\*?|split|gathered|eqnarray\*?)\}")
_CONDITION = re.compile(r"^\s*(?:\\text\{\s*(?:if|for)\s*\}|if|for)?\s*(.+?)\s*(>=|<=|>|<|\\geq|\\ge|\\leq|\\le|\\gt|"
                        r"\\lt)\s*(.+?)\s*$")
_OTHERWISE = re.compile(r"^\s*(?:\\text\{\s*(?:otherwise|else|if not)\s*\}|otherwise|else)\s*$")
#: where a remark after the formula may start: \quad, or a \text{...} made of words
_REMARK = re.compile(r"\\q?quad|,?\s*\\text\{[^{}]*[^A-Za-z{}][^{}]*\}")
#: what a remark holds besides its words: index letters, "\in", an equation number; anything else
#: may be a second formula ("\quad \text{or} \quad ..."), which must be read, not dropped
_REMARK_REST = re.compile(r"(?:[\s,.]|[A-Za-z](?![A-Za-z_^'(])|\\(?:q?quad|in|forall|ldots|dots|ell)(?![A-Za-z])"
                          r"|\(\s*[\d.]+\s*\))*")
_OPERATOR_START = re.compile(r"\s*([-+*/]|\\cdot|\\times)")
_OPERATOR_END = re.compile(r"([-+*/(=]|\\cdot|\\times|\\leftarrow|\\gets)\s*$")
#: \frac{dE}{dw_ij}, \frac{\mathrm{d} E}{\mathrm{d} w}: derivatives written with d (delta is no d)
_D_FRACTION = re.compile(r"\\[dt]?frac\{\s*(?:\\mathrm\{d\}|d(?!elta))\s*(?=[A-Za-z\\])([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}"
                         r"\{\s*(?:\\mathrm\{d\}|d(?!elta))\s*(?=[A-Za-z\\])")
_EQUATION_LABEL = re.compile(r"\\(?:tag|label)\{[^{}]*\}")
#: one sum over two letters, \sum_{i,j} (Goodfellow et al. 2016 write the kernel gradient so): two sums
_DOUBLE_SUM = re.compile(r"\\sum\s*_\s*\{\s*([A-Za-z])\s*,\s*([A-Za-z])\s*\}(?!\s*\^)")
_WRAPPED_NAME = re.compile(r"\{\s*(\\(?:text|mathrm|operatorname|mathit)\{[A-Za-z]+\})\s*\}(?=\s*[_^'])")
#: A symbol with its indices in braces before its time index, as the notes print it: {a^{l}_{j}}(t).
_BRACED_TIMED = re.compile(r"\{\s*((?:\\[A-Za-z]+|[A-Za-z])(?:\s*[_^](?:\{[^{}]*\}|[A-Za-z0-9]))*)\s*\}"
                           r"(?=\s*\(\s*(?:(?:[tnT]|\\tau)(?:\s*[+-]\s*\d+)?|\d+)\s*\))")


#: a symbol in braces after \partial, as the notes print a timed one: \partial {r^{(1)}_{12}}
_BRACED_DENOMINATOR = re.compile(r"(\\partial\s*)\{\s*((?:\\[A-Za-z]+|[A-Za-z])(?:\s*[_^](?:\{[^{}]*\}|[A-Za-z0-9]))*)"
                                 r"\s*\}")


def lines_of(text: str) -> list[str]:
    """The lines of a derivation (``\\begin{aligned}`` rows, ``\\\\`` or newlines); one line for a
    single formula.  Each is read (and :func:`normalize`-d) on its own."""
    text = _CASES.sub(_cases, text)
    text = _ENVIRONMENT.sub(" ", text)
    lines = []
    for line in (line.replace("&", " ") for line in re.split(r"\\\\|\n", text)):
        if lines and (_OPERATOR_START.match(line) or _OPERATOR_END.search(lines[-1])):
            lines[-1] += " " + line  # a formula wrapped onto the next line
        elif line.strip():
            lines.append(line)
    if len(lines) > MAX_LINES:
        raise ExpressionError(f"the derivation has {len(lines)} lines; at most {MAX_LINES} are read")
    return lines or [""]


def normalize(line: str, timed: bool = False) -> str:
    """One line in the grammar's spelling; ``timed`` (a recurrent network's target) keeps the
    time index (t), (t+1), which the reader reads as the step, not as an iteration."""
    line = _COMBINING_HAT.sub(r"\\hat{\1}", line)
    line = "".join(UNICODE.get(char, char) for char in line).replace("$", " ")
    line = re.sub(r"\\[\[\]()]", " ", line)  # \[ ... \] and \( ... \): display and inline math, like $
    line = _EQUATION_LABEL.sub(" ", line)
    line = _DOUBLE_SUM.sub(r"\\sum_{\1} \\sum_{\2}", line)
    line = _without_remark(line)
    line = _D_FRACTION.sub(lambda m: rf"\frac{{\partial {m.group(1)}}}{{\partial ", line)
    line = _INDICATOR.sub(lambda m: _step(next(filter(None, m.groups()))), line)
    line = line.replace("\\{", "(").replace("\\}", ")")  # \left\{ ... \right\} as brackets
    line = _WRAPPED_NAME.sub(lambda m: m.group(1), line)
    line = _PLAIN_DERIVATIVE.sub(lambda m: rf"\partial {m.group(1)} / \partial ", line)
    line = _NABLA.sub(_gradient, line)
    augmented = _AUGMENTED.fullmatch(line.strip())
    if augmented:  # w -= eta * g is w <- w - (eta * g)
        left, sign, right = augmented.groups()
        line = rf"{left} \leftarrow {left} {sign} ({right})"
    if timed:
        line = _BRACED_DENOMINATOR.sub(r"\1\2", line)
        line = _BRACED_TIMED.sub(lambda m: m.group(1), line)
    else:
        line = _NEXT_TIME.sub("^{+}", line)
        line = _TIME_INDEX.sub(" ", line)
    line = re.sub(r"\\equiv(?![A-Za-z])", "=", line)
    line = re.sub(r"[\s.,;]+$", "", line)  # the full stop or comma that ends a displayed formula
    return _square_brackets(line)


def _gradient(match) -> str:
    """\\nabla_{w_{ij}} E as \\frac{\\partial E}{\\partial w_{ij}}."""
    by = match.group(1)
    return rf"\frac{{\partial {match.group(2)}}}{{\partial {by[1:-1] if by.startswith('{') else by}}}"


def _without_remark(line: str) -> str:
    """The line without a closing remark (\\quad \\text{for every hidden unit } j, \\quad (4.14))."""
    start = _REMARK.search(line)
    if start is None:
        return line
    rest = re.sub(r"\\text\{[^{}]*\}", " ", line[start.start():])
    return line[:start.start()] if _REMARK_REST.fullmatch(rest) else line


def _square_brackets(line: str) -> str:
    """[a - t] and \\left[ ... \\right] as parentheses; [1][0] (a concrete network's index) stays."""
    chars, opened = list(line), []
    for n, char in enumerate(chars):
        if char == "[":
            opened.append(n)
        elif char == "]" and opened:
            start = opened.pop()
            if not re.fullmatch(r"\s*\d+\s*", line[start + 1:n]):
                chars[start], chars[n] = "(", ")"
    return "".join(chars)


def _step(condition: str) -> str:
    """A condition x > y (or <, \\geq, \\le, ...) as the step function of x - y, 1 where it holds."""
    parts = _CONDITION.match(condition)
    if not parts:
        raise ExpressionError(f"the condition {condition.strip()[:40]!r} is not read; "
                              "write z_j > 0, z_j \\le 0 or \\text{otherwise}")
    left, relation, right = parts.groups()
    greater = relation.lstrip("\\").startswith(("g", ">"))
    return f"heaviside(({left}) - ({right}))" if greater else f"heaviside(({right}) - ({left}))"


def _cases(match) -> str:
    """\\begin{cases} v_1 & c_1 \\\\ v_2 & c_2 \\end{cases} as v_1 H(c_1) + v_2 H(c_2), with H the
    step function of the condition (z > 0 is heaviside(z)) and "otherwise" what the others leave."""
    terms, taken = [], []
    for row in filter(str.strip, match.group(1).split(r"\\")):
        value, _, condition = row.partition("&")
        step = "(1" + "".join(f" - {s}" for s in taken) + ")" if _OTHERWISE.match(condition) else _step(condition)
        taken.append(step)
        terms.append(f"({value}) {step}")
    return "(" + " + ".join(terms) + ")" if terms else " "
