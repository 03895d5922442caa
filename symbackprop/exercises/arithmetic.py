"""The substituted arithmetic of a worked example, as a key shows it (Mazur 2015 style):
each equation of the network, then the same expression with the example's numbers in
place of its symbols, then the value.

The expression is the derivation's own (SymPy), put in the notation's sign conventions by
:func:`printing.in_notation`; only the printing of each symbol changes, so the arithmetic
line has exactly the shape of the formula above it.  Values come from the compiled
derivation (float64), not from the rounded numbers shown.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from ..derivation import E, ETA, Derivation
from ..examples import Example
from ..notes.notation import Notation
from ..notes.printing import NotationPrinter, error_signal, in_notation
from ..notes.worked import factor, textbook_delta

#: Characters of arithmetic and value (a command counting one, braces and spaces none) that fit
#: on one row of the LaTeX key.
ROW_CHARACTERS = 60


def _visible(tex: str) -> int:
    """About how many characters ``tex`` prints: a command is one, braces and spaces none."""
    return len(re.sub(r"[{}\s]", "", re.sub(r"\\[a-zA-Z]+", "x", tex)))


def number(value: float, digits: int = 6) -> str:
    """``digits`` significant digits, a power of ten written as LaTeX."""
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text


class ArithmeticPrinter(NotationPrinter):
    """The notation's printer with every symbol that has a number printed as that number
    (negative ones in parentheses) and products written with a cross."""

    def __init__(self, notation: Notation, network, numbers: dict, settings=None):
        super().__init__(notation, network, settings={"mul_symbol": "times", **(settings or {})})
        self.numbers = numbers

    def _number(self, expr):
        value = self.numbers[expr]
        return f"({number(value)})" if value < 0 else number(value)

    def _print_Symbol(self, expr, style="plain"):
        return self._number(expr) if expr in self.numbers else super()._print_Symbol(expr, style)

    def _print_Derivative(self, expr):
        return self._number(expr) if expr in self.numbers else super()._print_Derivative(expr)


@dataclass(frozen=True)
class Line:
    """lhs = formula = the formula with numbers = value (``relation`` between lhs and the rest)."""

    lhs: str
    formula: str
    substituted: str  # empty when the formula is a single symbol
    value: str
    relation: str = "="
    tag: str = ""

    @property
    def rhs(self) -> str:
        return " = ".join(part for part in (self.formula, self.substituted, self.value) if part)

    @property
    def equation(self) -> str:
        return f"{self.lhs} {self.relation} {self.rhs}"

    @property
    def rows(self) -> tuple[Line, ...]:
        """The equation in aligned rows as a page has room for: the formula, then the numbers and
        the value, the value on a row of its own after long arithmetic."""
        if not self.substituted:
            return (self,)
        first = Line(self.lhs, self.formula, "", "", self.relation)
        if _visible(self.substituted) + _visible(self.value) <= ROW_CHARACTERS:
            return first, Line("", self.substituted, "", self.value)
        return first, Line("", self.substituted, "", ""), Line("", self.value, "", "")


class WorkedNumbers:
    """The lines of one variant's worked example (its first sample), in the notation."""

    def __init__(self, derivation: Derivation, worked: Example, notation: Notation):
        net, ev = derivation.network, worked.evaluation
        self.derivation, self.network, self.notation, self.example = derivation, net, notation, worked
        first = lambda table, name: float(table[name][0])
        numbers = {u.a: float(x) for u, x in zip(net.inputs, worked.values.inputs[0])}
        numbers.update({net.targets[u]: float(t) for u, t in zip(net.outputs, worked.values.targets[0])})
        numbers.update({error_signal(u): float(numbers[net.targets[u]] - first(ev.a, u)) for u in net.outputs})
        for unit in net.computing_units:
            numbers[unit.z], numbers[unit.a] = first(ev.z, unit.name), first(ev.a, unit.name)
            numbers[unit.delta] = notation.delta_sign * first(ev.delta, unit.name)
        numbers.update({p: float(v) for p, v in worked.values.parameters.items()})
        numbers.update({sp.Derivative(E, p): ev.gradients[p] for p in net.parameters})
        numbers[ETA] = worked.learning_rate
        self.numbers = numbers
        self.symbolic = NotationPrinter(notation, net)
        self.arithmetic = ArithmeticPrinter(notation, net, numbers)

    def line(self, lhs, rhs, value: float) -> Line:
        """An equation of the derivation, in the notation's sign conventions."""
        lhs, rhs = in_notation(lhs, rhs, self.notation, self.network)
        return self._written(lhs, rhs, value)

    def _written(self, lhs, rhs, value: float, relation: str = "=") -> Line:
        """``lhs relation rhs`` with its terms in the order written (d - y, w - eta g)."""
        in_order = {"order": "none"}
        formula = NotationPrinter(self.notation, self.network, settings=in_order)
        formula.table.update(self.symbolic.table)
        substituted = "" if rhs.is_Atom else ArithmeticPrinter(self.notation, self.network, self.numbers,
                                                               in_order).doprint(rhs)
        return Line(self.symbolic.doprint(lhs), formula.doprint(rhs), substituted, number(value), relation)

    def forward(self) -> list[Line]:
        """Every definition of the forward pass, in order."""
        return [self.line(symbol, definition, self.numbers[symbol]) for symbol, definition in self.network.definitions]

    def backward(self, unit_names=None) -> list[Line]:
        """The error signals (where the notation names them) and the local gradients, outputs first;
        only of ``unit_names`` and the units they depend on, when given."""
        needed = None if unit_names is None else self._depends(unit_names)
        lines = []
        if "error_signal" in self.notation.symbols:
            net = self.network
            lines += [self._written(error_signal(u), sp.Add(net.targets[u], -net[u].a, evaluate=False),
                                    self.numbers[error_signal(u)]) for u in net.outputs]
        net = self.network
        for step in self.derivation.steps:
            if step.level == "concrete" and step.rule == "local_gradient" and (needed is None or step.subject in needed):
                if step.subject in net.outputs:
                    lines.append(self.line(step.lhs, step.rhs, self.numbers[step.lhs]))
                else:  # as the notes write it: g'(z_j), then the sum over the units it feeds
                    unit = net[step.subject]
                    lines.append(self._written(step.lhs, textbook_delta(net, unit, step.rhs), self.numbers[step.lhs]))
        return lines

    def _depends(self, unit_names) -> set[str]:
        """The units whose deltas the deltas of ``unit_names`` are computed from (and themselves)."""
        net, todo, seen = self.network, list(unit_names), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo += [u.name for u in net.computing_units if any(e.source == name for e in u.inputs)]
        return seen

    def gradient(self, parameter) -> Line:
        step = next(s for s in self.derivation.steps
                    if s.level == "concrete" and s.rule == "gradient" and s.lhs == sp.Derivative(E, parameter))
        return self.line(step.lhs, step.rhs, self.example.evaluation.gradients[parameter])

    def through_time(self, parameter) -> list[Line]:
        """A tied weight's gradient: the derivation's sum over the steps with the numbers put in,
        then the value of each step's term and their sum (the steps whose term is zero, as the
        state before the first step is, are not in the derivation's sum)."""
        step = next(s for s in self.derivation.steps
                    if s.level == "concrete" and s.rule == "tied_weight_sum" and s.lhs == sp.Derivative(E, parameter))
        total = self.example.evaluation.gradients[parameter]
        ev = self.example.evaluation
        raw = {**self.numbers, **{u.delta: float(ev.delta[u.name][0]) for u in self.network.computing_units}}
        terms = [float(term.xreplace(raw)) for term in sp.Add.make_args(step.rhs)]
        summed = Line(self.symbolic.doprint(step.lhs), "", " + ".join(factor(x) for x in terms), number(total))
        return [self.line(step.lhs, step.rhs, total), summed]

    def update(self, parameter) -> list[Line]:
        """One step of gradient descent for ``parameter``, as the notation writes it: the new
        value directly, or the change and then the new value."""
        gradient, new = sp.Derivative(E, parameter), self.example.evaluation.updated[parameter]
        step = sp.Mul(-1, ETA, gradient, evaluate=False)
        if self.notation.update != "change":
            return [self._written(parameter, sp.Add(parameter, step, evaluate=False), new, r"\leftarrow")]
        change = sp.Symbol(f"Delta {parameter}")
        self.symbolic.table[change] = r"\Delta " + self.symbolic.doprint(parameter)
        self.numbers[change] = new - self.numbers[parameter]
        return [self._written(change, step, self.numbers[change]),
                self._written(parameter, sp.Add(parameter, change, evaluate=False), new, r"\leftarrow")]
