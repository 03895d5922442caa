"""A convolutional network's concrete targets: grad_w[l][o][c][u][v] of a kernel entry
(grad_w[l][o][c][u] in 1-D; grad_w[l][i][j] of a dense layer) and grad_b[l][o], as numbers of the
worked example.

The reference is the gradient the network's own derivation gives at the example (its array form,
as ``example`` prints it: the mean over a mini-batch's samples).  The known mistakes are SymPy's
generic kernel gradient (:func:`~symbackprop.conv_backprop.derive_conv`) changed as students change
it and evaluated on the example's own tables: the kernel offset flipped (a_{i-u} for a_{i+u}),
one output position's term alone (the sum over positions missing), and delta without the
activation derivative (dE/da for dE/dz).  A conv layer's gradient of a formula with letters is
not graded here: the answer is the number.
"""
from __future__ import annotations

import re

import numpy as np
import sympy as sp

from ..conv_backprop import _constants, _evaluated, _positions, _tables, c, derive_conv, o
from ..convolution import ConvNetwork, weight_symbols
from ..errors import SpecError
from ..functions import A, Z
from ..network import layer_bias
from ..notes import notation as notations
from ..notes.notation import Notation
from ..numerics import Values
from .evaluation import Cases
from .mistakes import wording
from .prepared import Prepared, Target, family_of
from .vocabulary import P, S, U, Vocabulary

_TARGET = re.compile(r"(grad_w|grad_b)((?:\[\d+\])+)")
USE = "grad_w[l][o][c][u][v] (grad_w[l][o][c][u] in 1-D, grad_w[l][i][j] of a dense layer) or grad_b[l][o]"

MESSAGES = {
    "flipped indices": ("The kernel offset is flipped: the kernel weight {weight} meets the input a_{{i+u}} at "
                        "output position i (a cross-correlation, as the forward pass reads it), not a_{{i-u}}; "
                        "the flip belongs to the delta of the layer below."),
    "missing sum over positions": ("One output position's term only: {weight} is used at every output position, so "
                                   "its gradient sums the term over all of them (the local gradient delta_{{i,j}}, "
                                   "times the input a kernel weight meets there)."),
    "missing activation derivative": ("The layer's delta is dE/dz = dE/da g'(z): your number uses dE/da, without "
                                      "the activation derivative g'(z) of each output unit."),
    "sign error": "Sign error: your number is the negative of the gradient.",
}


def is_conv_target(name: str) -> bool:
    return _TARGET.fullmatch(name.replace(" ", "")) is not None


def parse_target(name: str, network: ConvNetwork) -> Target:
    """grad_w or grad_b of one parameter of the spec's network; ``concrete`` holds (l, *indices)."""
    squeezed = name.replace(" ", "")
    match = _TARGET.fullmatch(squeezed)
    if match is None:
        raise SpecError("--target", f"unknown target {name[:60]!r} on a convolutional network; use {USE} (0-based, "
                                    "like weights[l] and biases[l]), or a generic target")
    kind, numbers = match.group(1), tuple(int(x) for x in re.findall(r"\d+", match.group(2)))
    level = numbers[0]
    if level >= len(network.stack):
        raise SpecError("--target", f"{squeezed}: the network has {len(network.stack)} layers (0-based)")
    layer = network.stack[level]
    symbols = weight_symbols(level, layer)
    if kind == "grad_w":
        if symbols is None:
            raise SpecError("--target", f"{squeezed}: layer {level} is a pooling layer, it has no weights")
        if len(numbers) - 1 != symbols.ndim or any(n >= size for n, size in zip(numbers[1:], symbols.shape)):
            raise SpecError("--target", f"{squeezed} is outside weights[{level}] of shape "
                                        f"{'x'.join(map(str, symbols.shape))} (0-based)")
    elif not network.biases or len(numbers) != 2 or numbers[1] >= layer.biases:
        raise SpecError("--target", f"{squeezed}: layer {level} has "
                                    f"{layer.biases if network.biases else 'no'} biases (grad_b[l][o], 0-based)")
    return Target(squeezed, kind, False, numbers)


def parameter_of(network: ConvNetwork, target: Target) -> sp.Symbol:
    level, *rest = target.concrete
    if target.kind == "grad_b":
        return layer_bias(level, rest[0])
    return weight_symbols(level, network.stack[level])[tuple(rest)]


def prepare(network: ConvNetwork, target: Target, notation: str | Notation, values: Values | None,
            learning_rate: float, reveal: bool, sheet: bool) -> Prepared:
    """The worked example's value of ``target`` and its known mistakes' values."""
    if values is None:
        raise SpecError("example", f"{target.name} is a number of the worked example; the spec has no [example]")
    notation = notation if isinstance(notation, Notation) else notations.load(notation)
    parameter = parameter_of(network, target)
    result = family_of(network).compiled.evaluate(values, learning_rate)
    value = float(result.gradients[parameter])
    if not np.isfinite(value):
        raise SpecError("example", f"{target.name} of the worked example is not finite; use smaller inputs or weights")
    samples = [_point(network, values, result, n) for n in range(len(values.inputs))]
    mistakes = _mistakes(network, target, samples, value)
    words = {**wording(notation, target, network.loss.name), "target": f"dE/d{parameter}", "weight": str(parameter)}
    cases = _one_case(learning_rate)
    prepared = Prepared(target, Vocabulary(notation), cases, np.array([value]), parameter, [], words,
                        example=value, reveal=reveal, sheet=sheet, samples=len(values.inputs), numbers_only=True)
    prepared.example_mutants = [((name,), [MESSAGES[name]], number)
                                for name, number in mistakes]
    return prepared


def _one_case(learning_rate: float) -> Cases:
    """The single evaluation case a number is evaluated at (answers here hold no symbols)."""
    roles = {role: np.zeros(1, dtype=int) for role in (P, U, S)}
    return Cases(roles, dict(roles), np.zeros((1, 1), dtype=int), {}, np.zeros((1, 1, 1, 1)),
                 np.zeros((1, 1), dtype=int), [], np.array([learning_rate]), np.zeros(1), S,
                 labels=[{"network": "the spec's"}])


def _point(network: ConvNetwork, values: Values, result, sample: int) -> dict:
    """Every unit's a, z and delta and every parameter at one sample, symbol -> number."""
    point = {u.a: float(x) for u, x in zip(network.inputs, values.inputs[sample])}
    point.update(values.parameters)
    for unit in network.computing_units:
        point.update({unit.a: float(result.a[unit.name][sample]), unit.z: float(result.z[unit.name][sample]),
                      unit.delta: float(result.delta[unit.name][sample])})
    return point


def _mistakes(network: ConvNetwork, target: Target, samples: list[dict], value: float) -> list[tuple[str, float]]:
    """(mistake, its value at the worked example, mean over samples) for a conv layer's parameter;
    a mistake that gives the right value (a zero term, a linear activation) is left out."""
    found = [("sign error", -value)]
    level, *rest = target.concrete
    layer = network.stack[level]
    if layer.kind != "conv":
        return found
    generic = derive_conv(len(layer.kernel), bool(network.biases))
    _, offsets, _ = _positions(len(layer.kernel))
    formula = generic.gradient_kernel if target.kind == "grad_w" else generic.gradient_bias
    bound = dict(zip([o, c, *offsets], rest))

    def mean(expression, points) -> float:
        return float(np.mean([_evaluated(expression, _tables(network, level, point), _constants(layer, bound))
                              for point in points]))

    if target.kind == "grad_w":
        found.append(("flipped indices", mean(formula.xreplace({x: -x for x in offsets}), samples)))
    slopes = _without_slope(network, level, samples)
    if slopes is not None:
        found.append(("missing activation derivative", mean(formula, slopes)))
    term, limits = formula, []
    while isinstance(term, sp.Sum):
        limits, term = list(term.limits) + limits, term.function
    positions = [x for x, _, _ in limits]
    for at in np.ndindex(*layer.shape_out[1:]):
        found.append(("missing sum over positions", mean(term.xreplace(dict(zip(positions, at))), samples)))
    return [(name, number) for name, number in found if not np.isclose(number, value, rtol=1e-9, atol=1e-12)]


def _without_slope(network: ConvNetwork, level: int, samples: list[dict]) -> list[dict] | None:
    """The samples with each unit of layer ``level`` carrying dE/da (delta / g'(z)) as its delta;
    None for a softmax layer (no slope per unit) or where a slope is 0."""
    activation = network.group_by_name[f"layer {level + 1}"].activation  # groups count from 1
    if activation.normalized:
        return None
    out = []
    for point in samples:
        changed = dict(point)
        for index in np.ndindex(*network.stack[level].shape_out):
            unit = network.unit_at(level, *index)
            slope = activation.derivative_in_activation
            slope = slope.subs(A, unit.a) if slope is not None else activation.derivative.subs(Z, unit.z)
            slope = float(slope.xreplace(point))
            if slope == 0:
                return None
            changed[unit.delta] = point[unit.delta] / slope
        out.append(changed)
    return out
