"""Three independent witnesses for every derived result.

1. generic == concrete: the lecture formula of each layer, instantiated for every unit
   (its delta and bias gradient) and for up to :data:`GENERIC_EDGES_PER_UNIT` edges per
   unit (weight gradients), equals the concrete formula (compared at the same point);
2. concrete == brute force: each gradient, expanded down to inputs and parameters,
   equals ``sympy.diff`` of the fully expanded loss (30-digit evaluation at random
   rational points; small networks are also proved equal by simplification);
3. numeric == finite differences: the lambdified gradients of every parameter against
   central differences of the lambdified loss, with kinks (ReLU, step at 0) detected and
   reported.  Layered and Elman networks compute both on matrices (:func:`matrix.evaluator`:
   the generic formulas, one per layer, BPTT's through time, and perturbed weight matrices),
   other graphs with the scalar code of every weight's concrete formula.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import bptt, conv_backprop
from .convolution import ConvNetwork
from .derivation import Derivation, derive, instantiate
from .limits import BRUTE_FORCE_SECONDS, PROOF_SECONDS, time_limit
from .matrix import evaluator
from .network import Network
from .numerics import Values, random_values
from .recurrent import UnrolledNetwork
from .progress import progress

#: |g - n| / max(|g|, |n|, floor) below TOLERANCE passes; central differences with
#: h = FD_STEP carry about 1e-10 of rounding and truncation error, so 1e-4 leaves a wide
#: margin while any real mistake (a missing factor, a wrong index) is off by O(1).
TOLERANCE = 1e-4
FD_STEP = 5e-6
FLOOR = 1e-5
#: ... but they resolve a gradient only down to the rounding of the loss itself: E(w + h)
#: and E(w - h) are each off by about eps |E|, so (E+ - E-) / 2h is noise below
#: eps |E| / h.  At 784-100-10 with a linear output (E = 205) that is 9e-9, and 10,984
#: gradients smaller than 1e-5 were "wrong" by it (up to 1.1 eps |E| / h; 784-300-100-10:
#: 4.5 eps |E| / h, the forward sums of 784 terms round too); differences within
#: ROUNDING_ULPS times that noise pass (the generic witness checks those formulas regardless).
ROUNDING_ULPS = 16
#: Networks up to this many parameters and non-input layers get the brute-force witness
#: by default: SymPy's automatic evaluation of the expanded loss grows exponentially with
#: depth (tanh/cosh assumption queries alone took minutes at five layers).
BRUTE_FORCE_LIMIT = 40
BRUTE_FORCE_DEPTH = 3
#: ... and up to this many are also proved by exact simplification.
EXACT_LIMIT = 8
#: The generic check instantiates dE/dw_ij = delta_j a_i for at most this many edges of
#: each unit, evenly spaced (first and last included); every unit's delta is always
#: checked.  The formula is one per layer, and instantiating it for all 23,550 edges of
#: 784-30-10 took 5 s, the longest part of its verification.
GENERIC_EDGES_PER_UNIT = 32


@dataclass(frozen=True)
class ParameterCheck:
    name: str
    analytic: float
    numeric: float
    rel_error: float
    kink: bool  # the finite difference crosses a kink: its value is not a witness
    brute_force: bool | None  # None when the witness was not run


@dataclass
class Report:
    """The verdict of :func:`verify`; ``ok`` when every witness that ran agrees."""

    parameters: list[ParameterCheck]
    generic_mismatches: list[str] = field(default_factory=list)
    #: "proved", "agrees at random points", "skipped", "failed", or "too large to evaluate" (its
    #: numbers outgrow 30-digit arithmetic or its time limit)
    brute_force: str = "skipped"

    @property
    def max_rel_error(self) -> float:
        errors = [p.rel_error for p in self.parameters if not p.kink]
        return max(errors, default=0.0)

    @property
    def ok(self) -> bool:
        return (not self.generic_mismatches and self.brute_force != "failed"
                and all(p.kink or p.rel_error < TOLERANCE for p in self.parameters))

    def as_dict(self) -> dict:
        return {"ok": self.ok, "max_rel_error": self.max_rel_error,
                "brute_force": self.brute_force, "generic_mismatches": self.generic_mismatches,
                "parameters": [{"name": p.name, "analytic": p.analytic, "numeric": p.numeric,
                                "rel_error": p.rel_error, "kink": p.kink} for p in self.parameters]}


def relative_error(analytic: float, numeric: float, floor: float = FLOOR) -> float:
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)


def noise_floor(loss: float) -> float:
    """The ``floor`` of :func:`relative_error` at which central differences of a loss this
    large are still a witness: below it a difference is compared with their rounding noise."""
    return max(FLOOR, ROUNDING_ULPS * np.finfo(float).eps * max(abs(loss), 1.0) / FD_STEP / TOLERANCE)


def verify(network: Network, derivation: Derivation | None = None, values: Values | None = None,
           *, brute_force: bool | None = None, seed: int = 0) -> Report:
    """Check ``derivation`` of ``network`` with the three witnesses at ``values``.

    ``brute_force`` forces the expanded ``sympy.diff`` witness on or off; by default it
    runs for networks of up to :data:`BRUTE_FORCE_LIMIT` parameters and
    :data:`BRUTE_FORCE_DEPTH` non-input layers.
    """
    derivation = derivation or derive(network)
    values = values or random_values(network, seed=seed)
    numbers = evaluator(derivation)
    evaluation = numbers.evaluate(values)
    numeric, crossed = numbers.finite_differences(values, step=FD_STEP)
    report = Report([])
    report.generic_mismatches = _generic_mismatches(derivation, values, evaluation)
    if brute_force is None:
        brute_force = (len(network.parameters) <= BRUTE_FORCE_LIMIT
                       and _depth(network) <= BRUTE_FORCE_DEPTH)
    agreement = {}
    try:
        with time_limit(BRUTE_FORCE_SECONDS):
            agreement = _brute_force(derivation, seed) if brute_force else {}
    except (TimeoutError, OverflowError):  # mpmath: "too many digits in integer"
        report.brute_force, brute_force = "too large to evaluate", False
    if brute_force:
        exact = len(network.parameters) <= EXACT_LIMIT and all(agreement.values())
        report.brute_force = ("failed" if not all(agreement.values())
                              else "proved" if exact and _proved(derivation) else "agrees at random points")
    floor = noise_floor(evaluation.loss)
    for p in network.parameters:
        g, n = evaluation.gradients[p], float(numeric[p])
        report.parameters.append(ParameterCheck(p.name, g, n, relative_error(g, n, floor), bool(crossed[p]),
                                                agreement.get(p)))
    return report


def _depth(network: Network) -> int:
    """The number of computing units on the longest path from an input to an output."""
    depth: dict[str, int] = {}
    for unit in network.units:
        depth[unit.name] = max((depth[e.source] + 1 for e in unit.inputs), default=0)
    return max(depth.values())


def _point(derivation: Derivation, values: Values, evaluation) -> dict:
    net = derivation.network
    point = {p: v for p, v in values.parameters.items()}
    point.update({u.a: x for u, x in zip(net.inputs, values.inputs[0])})
    point.update({net.targets[k]: v for k, v in zip(net.outputs, values.targets[0])})
    for unit in net.computing_units:
        point.update({unit.z: evaluation.z[unit.name][0], unit.a: evaluation.a[unit.name][0],
                      unit.delta: evaluation.delta[unit.name][0]})
    return point


def _generic_mismatches(derivation: Derivation, values: Values, evaluation) -> list[str]:
    """Witness 1: every unit's delta and bias gradient, and the weight gradients of up to
    :data:`GENERIC_EDGES_PER_UNIT` edges per unit, generic (summed over a tied weight's
    edges) vs concrete."""
    net = derivation.network
    point = _point(derivation, values, evaluation)
    mismatches = []
    edges_of: dict[sp.Symbol, list[tuple[str, str]]] = {}
    units_of: dict[sp.Symbol, list[tuple[str]]] = {}  # a bias -> its units (tied in an unrolled recurrent net)
    for unit in net.computing_units:
        for edge in unit.inputs:
            edges_of.setdefault(edge.weight, []).append((unit.name, edge.source))
        if unit.bias is not None:
            units_of.setdefault(unit.bias, []).append((unit.name,))

    def at_point(e: sp.Expr) -> complex:  # 30 digits for the symbols used (not all 266,610 parameters)
        return complex(e.xreplace({s: sp.Float(float(point[s]), 30) for s in e.free_symbols if s in point}).evalf(30))

    def differs(x: sp.Expr, y: sp.Expr) -> bool:
        if x == y:  # the same expression: equal everywhere (most edges: delta_j a_i on both sides)
            return False
        x, y = at_point(x), at_point(y)
        return abs(x - y) > 1e-12 * max(1.0, abs(x), abs(y))

    def generic(kind: str, unit: str, source: str | None = None) -> sp.Expr:
        return instantiate(derivation, getattr(derivation.generic[net[unit].group], kind), unit, source)

    # a tied parameter's sum over its uses is checked once, not once per use; a conv layer's kernel
    # weights and biases by their index-form formulas (conv_backprop), every one of them
    checked: set[sp.Symbol] = set(conv_backprop.checked(net)) if isinstance(net, ConvNetwork) else set()
    with progress("checking generic formulas", len(net.computing_units)) as bar:
        for unit in net.computing_units:
            if differs(generic("delta", unit.name), derivation.deltas[unit.name]):
                mismatches.append(f"delta of {unit.name}")
            if unit.bias is not None and unit.bias not in checked:
                checked.add(unit.bias)
                if differs(sp.Add(*(generic("gradient_bias", *use) for use in units_of[unit.bias])),
                           derivation.gradients[unit.bias]):
                    mismatches.append(f"dE/d{unit.bias}")
            for edge in _spread(unit.inputs if unit.pool is None else (), GENERIC_EDGES_PER_UNIT):
                if edge.weight in checked:
                    continue
                checked.add(edge.weight)
                summed = sp.Add(*(generic("gradient_weight", *use) for use in edges_of[edge.weight]))
                if differs(summed, derivation.gradients[edge.weight]):
                    mismatches.append(f"dE/d{edge.weight} on the edge {edge.source} -> {unit.name}")
            bar.advance()
    if isinstance(net, UnrolledNetwork):
        mismatches += bptt.mismatches(derivation, point)
    if isinstance(net, ConvNetwork):
        mismatches += conv_backprop.mismatches(derivation, point)
    return mismatches


def _spread(items: tuple, count: int) -> list:
    """At most ``count`` of ``items``, evenly spaced, first and last included."""
    return [items[n] for n in sorted(set(np.linspace(0, len(items) - 1, count).round().astype(int)))] \
        if len(items) > count else list(items)


def _random_point(derivation: Derivation, seed: int) -> dict:
    """Random rationals for inputs, targets and parameters (targets sum to 1 when the
    loss assumes probabilities), away from kinks with probability 1."""
    net = derivation.network
    rng = np.random.default_rng(seed + 1)
    draw = lambda: sp.Rational(int(rng.integers(-900, 900)), 1000)
    point = {u.a: draw() for u in net.inputs}
    point.update({p: draw() for p in net.parameters})
    targets = [sp.Rational(int(rng.integers(50, 950)), 1000) for _ in net.outputs]
    if net.loss.targets_sum_to_one:  # within each group of one step's outputs
        size = net.loss_outputs
        targets = [v / sum(targets[n - n % size:n - n % size + size]) for n, v in enumerate(targets)]
    point.update(dict(zip(net.targets.values(), targets)))
    return point


def _brute_force(derivation: Derivation, seed: int) -> dict[sp.Symbol, bool]:
    """Witness 2 at a random rational point, in 30-digit arithmetic.

    ``sympy.diff`` of the fully expanded loss, evaluated by :func:`_evaluate`, which
    visits each shared subexpression once (the expanded tree is exponential in depth,
    its DAG is not).
    """
    net = derivation.network
    loss = net.expanded(net.loss_expression)
    point = {s: sp.Float(v, 30) for s, v in _random_point(derivation, seed).items()}
    agreement = {}
    with progress("brute force", len(net.parameters)) as bar:
        for p in net.parameters:
            x = _evaluate(sp.diff(loss, p), point, {})
            y = derivation.gradient_expanded(p, point).evalf(30)
            agreement[p] = bool(abs(x - y) <= sp.Float("1e-20", 30) * max(1, abs(x)))
            bar.advance()
    return agreement


def _evaluate(expression: sp.Basic, point: dict, memo: dict) -> sp.Basic:
    """``expression`` at ``point``, each distinct subexpression evaluated once."""
    if expression in memo:
        return memo[expression]
    if expression in point:
        value = point[expression]
    elif not expression.args:
        value = expression.evalf(30) if isinstance(expression, sp.Expr) else expression
    else:
        value = expression.func(*(_evaluate(arg, point, memo) for arg in expression.args))
        if isinstance(value, sp.Expr):
            value = value.evalf(30)
    memo[expression] = value
    return value


def _proved(derivation: Derivation) -> bool:
    """Exact: simplify(diff(expanded E) - expanded gradient) == 0 for every parameter."""
    net = derivation.network
    loss = net.expanded(net.loss_expression)
    eliminated = {group[-1]: 1 - sp.Add(*group[:-1]) for group in net.target_groups} \
        if net.loss.targets_sum_to_one else {}
    loss = loss.subs(eliminated)
    try:  # bounded: without a proof, the random-point agreement still stands
        with time_limit(PROOF_SECONDS):
            for p in net.parameters:
                gradient = derivation.gradient_expanded(p)
                gradient = gradient.subs(eliminated)
                difference = sp.diff(loss, p) - gradient
                # products multiplied out first: that cancels a tied weight's sum of uses at
                # once where simplify took 7 CPU-s of the 10 (the README's unrolled Elman net)
                if sp.expand_mul(difference) != 0 and sp.simplify(difference) != 0:
                    return False
    except TimeoutError:
        return False
    return True
