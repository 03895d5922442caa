"""SymPy expressions -> LaTeX in a course's notation.

The derivation is written in notation-free symbols (``z[0][1]``, ``w[1][2][0]``, the
IndexedBase ``w[i, j]`` from i to j, ``delta`` = dE/dz).  A :class:`NotationPrinter`
is SymPy's LaTeX printer configured by a :class:`~symbackprop.notation.Notation`:
symbols per role, index order and letters, layer marks.  Sign conventions (Haykin's
delta = -dE/dv) are applied to the expressions by :func:`in_notation` before printing,
so what is printed is still the result of SymPy operations.
"""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter

from .. import derivation as d
from ..derivation import GenericLayer
from ..bptt import r as RECURRENT
from ..convolution import ConvNetwork
from ..network import Network, Unit, is_shared_bias
from .notation import Notation
from .notation import load as load_notation

#: Haykin's error signal e_k = d_k - y_k of a generic output unit.
ERROR_SIGNAL = sp.IndexedBase("e")
#: The error E_n of sample n of a mini-batch, as a function of a parameter and of n (so that
#: SymPy keeps it inside a sum over the samples: factor_terms took E_n out, leaving sum_n 1).
SAMPLE_ERROR = sp.Function("sample_error")
#: The error E_n of sample n of a mini-batch, in formulas that hold for one sample.
SAMPLE_E = sp.Symbol("sample_E")
#: A layer's one bias (``bias = "shared"``) in the lecture formulas, where b_j would name one per unit.
LAYER_BIAS = sp.Symbol("layer_bias", real=True)
#: The index and the size of a mini-batch.
SAMPLE, BATCH = sp.Symbol("n", integer=True, positive=True), sp.Symbol("N", integer=True, positive=True)
#: Functions printed as \name(x) rather than SymPy's \name{\left(x \right)}.
_OPERATORS = {"tanh", "cosh", "sinh", "log", "sin", "cos", "tan", "atan", "sign"}


def _join(first: str, second: str, separator: str) -> str:
    """Two weight indices: w_{12}, w_{jl}; a comma where they would run together (w_{10,2})."""
    if separator:
        return f"{first}{separator}{second}"
    atom = lambda x: len(x) == 1 or (x.startswith("\\") and x[1:].isalpha())
    return f"{first}{second}" if atom(first) and atom(second) else f"{first},{second}"


def _script(base: str, sub: str = "", sup: str = "") -> str:
    """base^{sup}_{sub}, braced when it has a superscript so that a power of it stays valid."""
    text = base + (f"^{{{sup}}}" if sup else "") + (f"_{{{sub}}}" if sub else "")
    return f"{{{text}}}" if sup else text


def _plain_parentheses(text: str) -> str:
    """Textbook parentheses: SymPy's sized \\left( ... \\right) only around what is taller
    than a line (a fraction); plain ones elsewhere, where sizing reads as noise."""
    opened, plain = [], []
    for match in re.finditer(r"\\left\(|\\right\)", text):
        if match.group().startswith(r"\left"):
            opened.append(match)
        elif opened:
            start = opened.pop()
            if r"\frac" not in text[start.end():match.start()]:
                plain += [(start.start(), start.end(), "("), (match.start(), match.end(), ")")]
    for begin, end, replacement in sorted(plain, reverse=True):
        text = text[:begin] + replacement + text[end:]
    return text


def error_signal(unit: str) -> sp.Symbol:
    """Haykin's e_k = d_k - y_k of output ``unit``: a name for the difference, not a new quantity."""
    return sp.Symbol(f"e{unit}")


def recurrent_symbol(notation: Notation) -> str:
    """The letter of a recurrent weight (hidden unit at t-1 to hidden unit at t): the
    notation's ``recurrent_weight`` role, else r."""
    return notation.symbols.get("recurrent_weight", "r")


#: id(network) -> {repr(notation): its symbol table}, dropped with the network
_TABLES: dict[int, dict[str, dict[sp.Symbol, str]]] = {}


def symbol_table(network: Network, notation: Notation) -> dict[sp.Symbol, str]:
    """LaTeX for every symbol of ``network``: units, parameters and targets.  Built once per
    network and notation (one notes run makes nine printers; at 784-100-10 a table took 1 s)."""
    if id(network) not in _TABLES:
        _TABLES[id(network)] = {}
        weakref.finalize(network, _TABLES.pop, id(network), None)
    tables = _TABLES[id(network)]
    key = repr(notation)
    if key not in tables:
        tables[key] = _built_symbol_table(network, notation)
    return tables[key]


def _built_symbol_table(network: Network, notation: Notation) -> dict[sp.Symbol, str]:
    table: dict[sp.Symbol, str] = {}
    outputs = set(network.outputs)

    def index(unit: Unit) -> str:
        if isinstance(network, ConvNetwork):  # counted from 0 as the spec's arrays: x_{c,i,j}, z_{o,i,j}
            return ",".join(map(str, _conv_place(network, unit)[1]))
        return str(unit.position[1] + 1) if unit.position else rf"\mathrm{{{unit.name}}}"

    def layer_mark(layer: int) -> str:
        """The mark of layer ``layer`` (1 = the first after the inputs) in the notation."""
        layer = layer - 1 + notation.first_layer
        return f"({layer})" if notation.layer_style == "parenthesized" else str(layer)

    def mark(unit: Unit) -> str:
        if isinstance(network, ConvNetwork):
            return layer_mark(_conv_place(network, unit)[0] + 1)
        return layer_mark(unit.position[0]) if unit.position else ""

    def weight(source: str, destination: str, sup: str) -> str:
        return _script(notation.symbol("weight"), _join(*notation.weight_indices(source, destination),
                                                        notation.weight_separator), sup)

    def timed(text: str, unit: Unit) -> str:  # a recurrent network's copy at step t: z_j(t), t from 1
        return text if unit.step is None else f"{text}({unit.step + 1})"

    for unit in network.units:
        if unit.is_input:
            table[unit.a] = timed(_script(notation.symbol("input"), index(unit)), unit)
            continue
        i, sup = index(unit), mark(unit)
        table[unit.z] = timed(_script(notation.symbol("pre_activation"), i, sup), unit)
        table[unit.a] = timed(_script(notation.symbol("output" if unit.name in outputs else "hidden"), i, sup), unit)
        table[unit.delta] = timed(_script(notation.symbol("delta"), i, sup), unit)
        if unit.bias is not None and unit.bias.name.startswith("b["):
            own = "" if is_shared_bias(unit.bias) else i  # a layer's one bias has no unit index
            if isinstance(network, ConvNetwork):  # one bias per output channel of a conv layer
                own = str(_numbers(unit.bias.name)[1])
            table[unit.bias] = (weight("0", own, sup) if notation.bias == "weight"
                                else _script(notation.symbol("bias"), own, sup))
        for edge in unit.inputs:
            if not isinstance(edge.weight, sp.Symbol):  # a pooling unit's dz/da: a number or Heaviside steps
                continue
            if isinstance(network, ConvNetwork) and edge.weight.name.startswith(("w[", "K[")):
                table[edge.weight] = _conv_weight(edge.weight, notation, layer_mark)
            elif edge.weight.name.startswith("w["):
                table[edge.weight] = weight(index(network[edge.source]), i, sup)
            elif edge.weight.name.startswith("r["):
                table[edge.weight] = _script(recurrent_symbol(notation), _join(
                    *notation.weight_indices(index(network[edge.source]), i), notation.weight_separator), sup)
    for name, target in network.targets.items():
        table[target] = timed(_script(notation.symbol("target"), index(network[name])), network[name])
    for unit_name in network.outputs:  # Haykin's error signal e_k = d_k - y_k
        table[error_signal(unit_name)] = timed(_script(notation.symbols.get("error_signal", "e"),
                                                          index(network[unit_name])), network[unit_name])
    table[d.E] = notation.symbol("error")
    table[d.ETA] = notation.symbol("learning_rate")
    return table


def _numbers(name: str) -> list[int]:
    """The integers of a name such as ``[0][1][2][3]`` or ``K[0][1][0][2][2]``."""
    return [int(n) for n in re.findall(r"\[(\d+)\]", name)]


def _conv_place(network, unit: Unit) -> tuple[int, tuple[int, ...]]:
    """(layer, index) of a convolutional network's unit: layer -1 and (c, i, j) for an input
    (named by its place in C order), else the stack's layer and (o, i, j) or (j,)."""
    numbers = _numbers(unit.name)
    if unit.is_input:
        return -1, tuple(int(n) for n in np.unravel_index(numbers[0], network.input_shape))
    return numbers[0], tuple(numbers[1:])


def _conv_weight(weight: sp.Symbol, notation: Notation, layer_mark) -> str:
    """K^{(l)}_{o,c,u,v} (the notation's kernel letter, K unless it names one) of a kernel entry; a
    dense layer's weight as the notation orders its indices, the source counted in C order."""
    layer, *indices = _numbers(weight.name)
    if weight.name.startswith("K["):
        return _script(notation.symbols.get("kernel", "K"), ",".join(map(str, indices)), layer_mark(layer + 1))
    source, destination = (str(n) for n in indices)
    return _script(notation.symbol("weight"), _join(*notation.weight_indices(source, destination),
                                                    notation.weight_separator), layer_mark(layer + 1))


class NotationPrinter(LatexPrinter):
    """LaTeX with the network's and the lecture's symbols written as a course writes them.

    ``layer`` gives the context of a generic formula: which index letter is the unit,
    its predecessor and successor, and whether the unit is an output.
    """

    printmethod = None  # the notation decides how every object prints, not the object's own _latex

    def __init__(self, notation: Notation | None = None, network: Network | None = None,
                 layer: GenericLayer | None = None, settings=None, function: str | None = None):
        super().__init__(settings)
        self.network = network
        self.notation = notation or load_notation("default")
        self.table = dict(symbol_table(network, self.notation)) if network is not None else {
            d.E: self.notation.symbol("error"), d.ETA: self.notation.symbol("learning_rate")}
        self.table.update({SAMPLE: self.notation.letters.sample[0], BATCH: self.notation.letters.sample[1]})
        self.layer = layer
        self.function = function or self.notation.symbol("function")
        self.letters, self.tags = self._letters(layer)

    def _letters(self, layer):
        """Internal index label -> (notation letter, layer tag such as l-1, l, l+1)."""
        if layer is None:
            return {}, {}
        n = self.notation
        if layer.is_output:
            names, tags = n.letters.output, ("L-1", "L")
            internal = (layer.predecessor, layer.unit)
        else:
            names, tags = n.letters.hidden, ("l-1", "l", "l+1")
            internal = (layer.predecessor, layer.unit, layer.successor)
        letters = {str(idx.label): name for idx, name in zip(internal, names)}
        tag = {str(idx.label): t for idx, t in zip(internal, tags)}
        # a layer's members (m) and the index of a softmax denominator sum over the unit's own layer;
        # the latter gets a letter of its own (not Nielsen's layer letter l)
        taken = set(letters.values()) | {str(d.m.label)} | ({"l", "L"} if n.layer_style == "superscript" else set())
        letters[str(d._dummy.label)] = next(c for c in ("l", "i", "n", "r", "s", "q") if c not in taken)
        for member in (d.m, d._dummy):
            tag[str(member.label)] = tag[str(layer.unit.label)]
        return letters, tag

    def doprint(self, expr):
        return _plain_parentheses(super().doprint(expr))

    def _print_Function(self, expr, exp=None):
        name = expr.func.__name__
        if expr.func == d.g:
            return f"{self.function}({self._print(expr.args[0])})"
        if expr.func == SAMPLE_ERROR:
            return _script(self.notation.symbol("error"), self._print(SAMPLE))
        if name in _OPERATORS and len(expr.args) == 1:
            power = f"^{{{exp}}}" if exp else ""
            return f"\\{name}{power}({self._print(expr.args[0])})"
        return super()._print_Function(expr, exp)

    def _print_Symbol(self, expr, style="plain"):
        if expr in self.table:
            return self.table[expr]
        if expr == SAMPLE_E:
            return _script(self.notation.symbol("error"), self._print(SAMPLE))
        if expr == LAYER_BIAS:
            unit = self.layer.unit if self.layer is not None else None
            tag = self._tag(unit) if unit is not None else ""
            n = self.notation
            return (_script(n.symbol("weight"), "0", tag) if n.bias == "weight"
                    else _script(n.symbol("bias"), "", tag))
        return super()._print_Symbol(expr, style)

    def _print_Idx(self, expr):
        label = str(expr.label)
        return self.letters.get(label, label)

    def _tag(self, index) -> str:
        if self.notation.layer_style != "superscript":
            return ""
        return self.tags.get(str(index.label), "")

    def _print_Indexed(self, expr):
        n, base, indices = self.notation, expr.base, expr.indices
        if base == RECURRENT:  # r_ij from unit i at t-1 to unit j at t, both of one layer
            source, destination = (self._print(x) for x in indices)
            return _script(recurrent_symbol(n), _join(*n.weight_indices(source, destination), n.weight_separator),
                           self._tag(indices[1]))
        if base != d.w and len(indices) == 2:  # a quantity at a time step: z_j(t), delta_m(t+1)
            return f"{self._print_Indexed(base[indices[0]])}({self._print(indices[1])})"
        if base == d.w:
            source, destination = (self._print(x) for x in indices)
            return _script(n.symbol("weight"), _join(*n.weight_indices(source, destination), n.weight_separator),
                           self._tag(indices[1]))
        index, = indices
        letter, tag = self._print(index), self._tag(index)
        if base == d.b and n.bias == "weight":
            return _script(n.symbol("weight"), _join(*n.weight_indices("0", letter), n.weight_separator), tag)
        role = {d.z: "pre_activation", d.delta: "delta", d.b: "bias", d.t: "target",
                ERROR_SIGNAL: "error_signal"}.get(base)
        if role is None:  # an activation: of an output unit, a hidden unit, or the one feeding it
            role = "activation"
            if self.layer is not None and str(index.label) in (str(self.layer.unit.label), str(d.m.label)):
                role = "output" if self.layer.is_output else "hidden"
        return _script(n.symbol(role), letter, "" if base in (d.t, ERROR_SIGNAL) else tag)

    def _print_Mul(self, expr):
        # a mean as a text writes it, 1/N before the sum (Bishop 2006, eq. 1.2), not the sum over N
        if len(expr.args) == 2 and any(isinstance(f, sp.Sum) for f in expr.args):
            total, share = sorted(expr.args, key=lambda f: not isinstance(f, sp.Sum))
            if (1 / share).is_Atom and share != 1 and sp.fraction(share)[0] == 1:
                return rf"\frac{{1}}{{{self._print(1 / share)}}} {self._print(total)}"
        return super()._print_Mul(expr)

    def _print_Sum(self, expr):
        # the sum over a layer's units, as lectures write it: \sum_k, with a sign pulled out
        if expr.function.could_extract_minus_sign():
            return "- " + self._print(sp.Sum(-expr.function, *expr.limits))
        signs = ""
        for index, first, last in expr.limits[::-1]:  # SymPy folds nested sums into one; a text nests them
            below = self._print(index) if first == 0 else f"{self._print(index)}={self._limit(first)}"
            above = "" if first == 0 else f"^{{{self._print(last)}}}"  # a layer's units need no bounds; samples do
            signs += f"\\sum_{{{below}}}{above} "
        return signs + self.parenthesize(expr.function, 40)

    def _limit(self, bound) -> str:
        """A limit as a text writes it: symbols added first, then subtracted, the number last
        (t = T - K + 1, where SymPy's order prints -K + T + 1)."""
        if not isinstance(bound, sp.Add):
            return self._print(bound)
        terms = sorted(sp.Add.make_args(bound), key=lambda x: (x.is_number, x.could_extract_minus_sign()))
        text = self._print(terms[0])
        for term in terms[1:]:
            text += f" - {self._print(-term)}" if term.could_extract_minus_sign() else f" + {self._print(term)}"
        return text

    def _print_Heaviside(self, expr, exp=None):
        # a max pooling unit's dz/da (convolution._max_slopes): Iverson's bracket [a_m >= a_q], 1 when it holds
        argument, *tie = expr.args
        if not isinstance(self.network, ConvNetwork) or not isinstance(argument, sp.Add) or len(argument.args) != 2:
            return super()._print_Heaviside(expr, exp)
        high, low = sorted(argument.args, key=lambda term: term.could_extract_minus_sign())
        relation = r"\ge" if tie and tie[0] == 1 else ">"
        text = f"[{self._print(high)} {relation} {self._print(-low)}]"
        return f"{text}^{{{exp}}}" if exp else text

    def _print_KroneckerDelta(self, expr, exp=None):
        # I_km (Bishop's identity-matrix entry): delta_km would clash with the local gradient
        return "I_{" + "".join(self._print(i) for i in expr.args) + "}"

    def _print_log(self, expr, exp=None):
        return self._print_Function(expr, exp)

    def _print_Derivative(self, expr):
        function = expr.expr
        if getattr(function, "func", None) == d.g and len(expr.variables) == 1:
            # g'(z_j) for an activation, as every textbook writes it
            return f"{self.function}'({self._print(function.args[0])})"
        if len(expr.variable_count) > 1:
            return super()._print_Derivative(expr)
        (variable, count), = expr.variable_count
        order = f"^{{{count}}}" if count != 1 else ""
        return (f"\\frac{{\\partial{order} {self._print(function)}}}"
                f"{{\\partial {self._print(variable)}{order}}}")


def latex(expression, notation: Notation | None = None, network: Network | None = None,
          layer: GenericLayer | None = None) -> str:
    """``expression`` in LaTeX, in ``notation`` (default: the default preset)."""
    return NotationPrinter(notation, network, layer).doprint(expression)


def in_notation(lhs: sp.Expr, rhs: sp.Expr, notation: Notation, network: Network | None = None,
                layer: GenericLayer | None = None):
    """The equation ``lhs = rhs`` rewritten in the notation's sign conventions.

    With ``delta_sign = -1`` every delta is replaced by minus the notation's delta (which
    prints the same) and the equation is solved for the left-hand side again, so
    ``delta_k = a_k - t_k`` becomes Haykin's ``delta_k = t_k - a_k``, which notations that
    name the error signal write ``e_k``.
    """
    if notation.delta_sign == -1:
        flip = {u.delta: -u.delta for u in network.computing_units} if network is not None else {}
        flip_indexed = lambda e: e.replace(lambda x: isinstance(x, sp.Indexed) and x.base == d.delta, lambda x: -x)
        lhs, rhs = (flip_indexed(e.xreplace(flip)) for e in (lhs, rhs))
        if lhs.could_extract_minus_sign():
            lhs, rhs = -lhs, -rhs
        rhs = sp.factor_terms(rhs)
    if "error_signal" in notation.symbols:
        pairs = [(network.targets[u], network[u].a, error_signal(u)) for u in network.outputs] if network else []
        if layer is not None and layer.is_output:  # of the unit, or of the unit at step t: t_k(t) - a_k(t)
            pairs += [(d.t[x.indices], d.a[x.indices], ERROR_SIGNAL[x.indices]) for x in rhs.atoms(sp.Indexed)
                      if x.base == d.t]
        for target, activation, signal in pairs:
            rhs = rhs.subs({target - activation: signal, activation - target: -signal})
    return lhs, rhs


@dataclass(frozen=True)
class Shown:
    """One numbered display as the notes print it: ``lhs = rhs`` (``rhs`` may be a chain
    a = b = c), its equation number and the numbers of the equations it follows from."""

    lhs: str
    rhs: str
    rule: str = ""
    tag: str = ""  # "3", or the notation's own name of the equation (Nielsen's BP1)
    uses: tuple[str, ...] = ()
    relation: str = "="
    name: str = ""
    chain: tuple[str, str, str] | None = None  # a chain rule step: (what, with respect to, through)

    @property
    def equation(self) -> str:
        return f"{self.lhs} {self.relation} {self.rhs}"


def shown(lhs: sp.Expr, rhs, notation: Notation, printer: NotationPrinter, rule: str = "", layer=None) -> Shown:
    """``lhs = rhs`` (``rhs`` one expression or a chain of them) in the notation's signs and
    symbols; a gradient-descent step as the text writes it (w <- w - eta dE/dw, or Delta w)."""
    chain = list(rhs) if isinstance(rhs, (list, tuple)) else [rhs]
    relation = "="
    if rule == "gradient_descent":
        (update,) = chain
        if notation.update == "change":
            lhs, chain = sp.Symbol("Delta") * lhs, [update - lhs]
        else:  # w <- w - eta dE/dw, in that order
            relation = r"\leftarrow"
            printer = NotationPrinter(notation, printer.network, printer.layer, {"order": "none"}, printer.function)
    pairs = [in_notation(lhs, r, notation, printer.network, layer) for r in chain]
    lhs = pairs[0][0]
    right = [r for _, r in pairs]
    if relation != "=":
        right = [sp.Add(lhs, r - lhs, evaluate=False) for r in right]
    return Shown(printer.doprint(lhs), " = ".join(printer.doprint(r) for r in right), rule, relation=relation)
