"""What the symbols of an answer mean: the internal symbols every formula is read into, and a
target's :class:`Vocabulary` (the notation's spellings, the index letters and their roles).

Symbols map to the derivation's internal convention, whatever the notation: ``w[x, y]`` is the
weight from x to y, ``delta`` is dE/dz, Haykin's ``e_j`` is ``t_j - a_j``.  Index letters become
the role symbols :data:`P`, :data:`U`, :data:`S` (the unit feeding the unit, the unit, the unit it
feeds); other letters stay as they are and must be summed.  A recurrent network's quantity is
``base[unit, step]`` with the step :data:`TIME` (the letters t, n, tau) or :data:`LAST` (T) plus an
offset.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy as sp

from ..notes.notation import Notation

#: Index roles: the unit feeding the unit (P), the unit (U), the unit it feeds (S).
P, U, S = sp.Symbol("pred."), sp.Symbol("unit."), sp.Symbol("succ.")
z, a, t, b, delta, w, dEda = (sp.IndexedBase(n) for n in ("z", "a", "t", "b", "delta", "w", "dEda"))
ETA = sp.Symbol("eta")
OUTPUTS = sp.Symbol("K")  # the number of output units (the mean squared error divides by it)
DELTA = sp.Symbol("Delta")  # the "change of" marker of an update's left-hand side
g, dg = sp.Function("g"), sp.Function("dg")  # the layer's activation and its derivative
updated = sp.Function("updated")  # w^+, w(n+1): the new value of a weight
#: dE/dz, dE/dw, dE/db as written: equal to what they stand for, but an answer that only
#: restates its target (dE/dw_ij for dE/dw_ij) can be told from one that derives it
quoted = sp.Function("quoted")
SUM_END = sp.Symbol("N")
#: a concrete question's own derivative as written (dE/dw^{(1)}_{21} for grad_w[0][1][0]): its value
ASKED = sp.Symbol("asked.")
#: A recurrent network's quantities: r[x, y] from unit x at t-1 to unit y at t (one layer), the
#: step t (any time letter) and the last step T; dE/dw and dE/dr as whole tied-weight gradients.
r = sp.IndexedBase("r")
TIME, LAST = sp.Symbol("time."), sp.Symbol("T.")
dEdw, dEdr = sp.IndexedBase("dEdw"), sp.IndexedBase("dEdr")
#: a conv layer's dE/dK_{u,v} as written: only the name of grad_kernel's target, on its left-hand side
dEdK = sp.IndexedBase("dEdK")
FUNCTION_LETTERS = ("f", "g", "h", "phi", "varphi")
ERROR_LETTERS = ("E", "L", "J", "C")  # the error, cost or loss, where the notation gives them no other meaning


@dataclass(frozen=True)
class Vocabulary:
    """What the symbols of one target's answers mean.

    ``letters`` maps a student's index letter (``\\ell`` is ``l``) to :data:`P`, :data:`U`
    or :data:`S`; ``output`` says the unit is an output unit (then a lone target or output
    symbol, as in a one-output text's y - t, is the unit's own); ``layer_bases`` are the
    letters a layer superscript may name the unit's layer with (``l``, and ``L`` for an
    output unit); ``names`` maps a concrete network's symbol names (``w[0][1][2]``) to
    its SymPy symbols, and ``printed`` its symbols as the notes and sheets print them
    (``\\delta^{(1)}_{1}``, by :func:`written_key`); ``asked`` is the concrete quantity the
    question differentiates by (the weight of grad_w[0][1][2]); ``timed`` reads a time index on
    each unit's quantity (a quantity written without one is at step t).
    """

    notation: Notation
    letters: Mapping[str, sp.Symbol] = field(default_factory=dict)
    output: bool = False  # the unit is an output: y and t without an index mean its own
    layer_bases: tuple[str, ...] = ("l",)
    names: Mapping[str, sp.Expr] = field(default_factory=dict)
    timed: bool = False  # a recurrent network's target: read time indices
    #: a recurrent network's target that is the same at every step (delta_output): time indices
    #: are read, must all be t, and are dropped
    per_step: bool = False
    #: the layer of each role's unit relative to the unit's (dE/dr_ij: i is in j's own layer)
    offsets: Mapping[sp.Symbol, int] = field(default_factory=lambda: {P: -1, U: 0, S: 1})
    printed: Mapping[str, sp.Expr] = field(default_factory=dict)
    #: what a letter means inside a sum over it, where that is not its role outside (the letter is local)
    bound: Mapping[str, sp.Symbol] = field(default_factory=dict)
    asked: sp.Expr | None = None
    #: a conv layer's generic target: a unit's quantity has one index per axis of its layer, each a
    #: letter plus or minus letters and numbers (delta_{i,j}, a_{i+u,j+v})
    positions: int = 0

    def role_of(self, spelling: str) -> str | None:
        """A spelling's role; f, g, h, phi also name the activation function, and E, L, J, C the
        error, where the notation gives them no other meaning (students bring letters from other courses);
        through time, h is the hidden state (and only there is there a recurrent weight)."""
        table = _spellings(self.notation)
        if spelling in table:
            return table[spelling] if self.timed or table[spelling] != "recurrent_weight" else None
        if self.timed and spelling == "h":  # a recurrent layer's state h_j(t), h^{<t>}
            return "hidden"
        return "function" if spelling in FUNCTION_LETTERS else "error" if spelling in ERROR_LETTERS else None

    @property
    def reads_time(self) -> bool:
        return self.timed or self.per_step

    def describe(self) -> str:
        """The symbols a student of this notation may use, for error messages."""
        plain = self.notation.plain
        seen = dict.fromkeys(plain[role][0] for role in plain if self.timed or role != "recurrent_weight")
        return ", ".join(seen)



_SPELLINGS: dict[str, dict[str, str]] = {}


def _spellings(notation: Notation) -> dict[str, str]:
    """spelling -> role: the notation's plain spellings and its LaTeX symbols, read the
    way the grammar reads them (``\\mathcal{E}`` is E, ``\\hat{y}`` is yhat)."""
    key = repr(notation)
    if key not in _SPELLINGS:
        table = {}
        for role, latex in notation.symbols.items():
            if role != "weight_matrix":  # answers are read one neuron at a time: Nielsen's w is w^l_jk
                table[_latex_name(latex)] = role
        for role, spellings in notation.plain.items():
            for spelling in spellings:
                table[spelling.replace("_", "")] = role
        _SPELLINGS[key] = table
    return _SPELLINGS[key]


def _latex_name(latex: str) -> str:
    match = re.fullmatch(r"\\(?:mathcal|mathrm|text|operatorname|mathit)\{(\w+)\}|\\hat\{(\w+)\}|\\?(\w+)", latex)
    if not match:
        return latex
    font, hat, plain = match.groups()
    return font or (hat + "hat" if hat else plain)


def written_key(head: str, sups: str, subs: str, commas: bool = False) -> str:
    """A symbol with number indices as one string, however it was written: ``\\delta_{1}^{(1)}``,
    ``\\delta^{(1)}_1`` and the notes' ``{\\delta^{(1)}_{1}}`` are all ``delta^(1)_1``; ``commas``
    keeps the commas between indices (a conv sheet's K_{1,10,0,1} is not K_{11,0,0,1})."""
    subs = re.sub(r"[\s{}]" if commas else r"[\s,{}]", "", subs)
    return head + (f"^{sups}" if sups else "") + (f"_{subs}" if subs else "")


_PRINTED = re.compile(r"(?:\\mathrm|\\text|\\mathit|\\operatorname)?\\?([A-Za-z]+)(?:\^\{?([^_{}]*)\}?)?(?:_\{?([^{}]*)\}?)?")


def printed_names(table: Mapping[sp.Expr, str]) -> dict[str, sp.Expr]:
    """The written key of each symbol of a network's LaTeX table (:func:`notes.printing.symbol_table`)
    -> the symbol: the names a sheet shows, read back."""
    names = {}
    for symbol, latex in table.items():
        key = printed_key(latex)
        if key is not None:
            names[key] = symbol
    return names


def printed_key(latex: str, commas: bool = False) -> str | None:
    """The :func:`written_key` of a name as the notes and sheets print it (None if it is no symbol
    with indices)."""
    match = _PRINTED.fullmatch(re.sub(r"[{}\s]", "", latex.replace("\\mathrm{", "").replace("\\text{", "")))
    return written_key(match.group(1), match.group(2) or "", match.group(3) or "", commas) if match else None
