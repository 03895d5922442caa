"""Homework checking: one answer against the derivation, or a whole class in worker processes.

How an answer is decided (the README's "Checking homework" says the same):

* The reference numbers come from the derivation itself (:func:`derive` and the NumPy code
  of :mod:`numerics`): for a generic target, on two layered networks of different widths
  and depths built from the spec's activations and loss (2-3-2 and 3-4-4-3; hidden targets
  at every hidden layer), at four random points each, with the unit, the unit feeding it
  and the learning rate drawn at random per point; for a concrete target, on the spec's
  network at its worked example and at random points.
* The answer is evaluated at the same points with the index letters bound to the same
  units and each sum running over the layer of its index, so a sum written for one width
  cannot pass by luck.  Quantities an answer names that the network lacks (the target of a
  hidden unit, a weight with its indices swapped) get fixed random values, so they are
  defined and wrong.
* Equal means |answer - reference| <= 1e-8 max(|answer|, |reference|) + 1e-12 at every
  point: float64 evaluation of formulas this size is accurate to about 1e-14, while every
  real mistake is off by O(1) relatively at a random point.  A number-only answer to a
  concrete target is compared with the worked example to 1e-3 (four significant digits).
* A wrong answer is compared with mutants of the reference: the known mistakes applied to
  it (table :data:`MISTAKES`), alone and in pairs; equal to a mutant at every point means
  the student made that mistake.  Otherwise it "differs at" the point shown.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from pathlib import Path

import numpy as np
import sympy as sp

from . import files
from . import notation as notations
from . import numerics
from .answers import (
    DELTA,
    ETA,
    MAX_LENGTH,
    OUTPUTS,
    Answer,
    ExpressionError,
    P,
    S,
    U,
    Vocabulary,
    a,
    dEda,
    delta,
    dg,
    quoted,
    read_answer,
    t,
    updated,
    w,
    z,
)
from .derivation import derive
from .errors import SpecError
from .limits import MAX_SUBMISSIONS_BYTES
from .functions import A, Activation, K, T
from .network import Network, layer_bias, layer_weight, layered
from .notation import Letters, Notation
from .numerics import Values

__all__ = ["GENERIC_TARGETS", "Verdict", "check", "grade", "prepare"]

GENERIC_TARGETS = ("delta_output", "delta_hidden", "grad_w_output", "grad_w_hidden", "grad_b_output",
                   "grad_b_hidden", "update_w_output", "update_w_hidden")
_CONCRETE = re.compile(r"(delta|grad_b)\[(\d+)\]\[(\d+)\]|(grad_w|update_w)\[(\d+)\]\[(\d+)\]\[(\d+)\]")
RTOL, ATOL = 1e-8, 1e-12
NUMBER_RTOL = 1e-3
POINTS = 4
PAD = 6  # every layer's tables have this many positions; beyond a layer's width, fixed random values
SECONDS_PER_ANSWER = 5.0


@dataclass
class Verdict:
    """The decision on one answer: ``verdict`` is "correct", "incorrect" or "cannot read"."""

    verdict: str
    message: str
    diagnosis: list[str] = field(default_factory=list)
    counterexample: dict | None = None

    @property
    def exit_status(self) -> int:
        return {"correct": 0, "incorrect": 1}.get(self.verdict, 2)

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "message": self.message, "diagnosis": self.diagnosis,
                "counterexample": self.counterexample or {}}


# ---------------------------------------------------------------------------------------
# points: every quantity an answer can name, per case, as arrays

@dataclass
class Cases:
    """C evaluation cases: a network at a point, with the unit (U), the unit feeding it (P)
    and a unit it feeds (S) bound.  Tables are indexed [case, layer, position]."""

    layer: dict  # role symbol -> int array (C,)
    position: dict  # role symbol -> int array (C,)
    width: np.ndarray  # (C, layers)
    tables: dict  # base -> (C, layers, PAD)
    weights: np.ndarray  # (C, layers, PAD, PAD): [c, L, i, j] from position i of layer L-1 to j of layer L
    activation: np.ndarray  # (C, layers) index into functions
    functions: list  # (g, g') numpy callables
    eta: np.ndarray
    outputs: np.ndarray
    summed: sp.Symbol  # the role a sum over a letter not bound to a role runs over
    symbols: dict = field(default_factory=dict)  # concrete network symbol -> (C,)
    symbol_layer: dict = field(default_factory=dict)  # concrete z symbol -> its layer
    labels: list = field(default_factory=list)  # per case: network and units, for counterexamples

    @property
    def count(self) -> int:
        return len(self.eta)


class _NotElementwise(Exception):
    """g or g' of a softmax layer: not one number per unit."""


def _refuse(x):
    raise _NotElementwise


def _activation_functions(activation: Activation):
    if activation.normalized:
        return _refuse, _refuse
    modules = [{"Heaviside": lambda x, h0=0.5: np.heaviside(x, h0)}, "numpy"]
    value = sp.lambdify(sp.Symbol("z", real=True), activation.expression, modules)
    slope = sp.lambdify(sp.Symbol("z", real=True), activation.derivative, modules)
    return (lambda x: np.broadcast_to(value(x), x.shape).astype(float),
            lambda x: np.broadcast_to(slope(x), x.shape).astype(float))


class _Family:
    """One test network with its derivation and numeric code."""

    def __init__(self, network: Network):
        self.network = network
        self.derivation = derive(network)
        self.compiled = numerics.compiled(self.derivation)
        self.sizes = network.layers


@functools.lru_cache(maxsize=16)
def _family(network: Network) -> _Family:
    """Derived once per network: every target of a batch shares the test networks."""
    return _Family(network)


def _random_values(network: Network, rng) -> Values:
    inputs = rng.uniform(-1, 1, (1, len(network.inputs)))
    if network.loss.targets_sum_to_one:
        targets = np.eye(len(network.outputs))[[rng.integers(len(network.outputs))]]
    else:
        targets = rng.uniform(0.05, 0.95, (1, len(network.outputs)))
    return Values(inputs, targets, {p: float(rng.uniform(-1, 1)) for p in network.parameters})


def _build_cases(points: list, summed: sp.Symbol) -> tuple[Cases, np.ndarray]:
    """points: (family, values, layer of the unit, {role: position}, eta).  Returns the cases
    and, per case, (delta, dE/dw, dE/db) of the bound unit and weight from the derivation."""
    count = len(points)
    depth = max(len(f.sizes) for f, *_ in points) + 2
    rng = np.random.default_rng(12345)
    tables = {base: rng.uniform(-1, 1, (count, depth, PAD)) for base in ("z", "a", "b", "delta", "dEda")}
    tables["t"] = rng.uniform(0.05, 0.95, (count, depth, PAD))
    weights = rng.uniform(-1, 1, (count, depth, PAD, PAD))
    width = np.zeros((count, depth), dtype=int)
    activation = np.zeros((count, depth), dtype=int)
    functions, function_of = [], {}
    references = np.zeros((count, 3))
    layer = {role: np.zeros(count, dtype=int) for role in (P, U, S)}
    position = {role: np.zeros(count, dtype=int) for role in (P, U, S)}
    etas, outputs, labels = np.zeros(count), np.zeros(count), []
    for c, (family, values, unit_layer, positions, eta) in enumerate(points):
        net, sizes = family.network, family.sizes
        result = family.compiled.evaluate(values)
        width[c, :len(sizes)] = sizes
        tables["a"][c, 0, :sizes[0]] = values.inputs[0]
        for group_index, group in enumerate(net.groups):
            key = group.activation
            if key not in function_of:
                function_of[key] = len(functions)
                functions.append(_activation_functions(key))
            activation[c, group_index + 1] = function_of[key]
        activation[c, 0] = activation[c, 1]
        activation[c, len(sizes):] = activation[c, len(sizes) - 1]
        for unit in net.computing_units:
            level, j = unit.position
            tables["z"][c, level, j] = result.z[unit.name][0]
            tables["a"][c, level, j] = result.a[unit.name][0]
            tables["delta"][c, level, j] = result.delta[unit.name][0]
            if unit.bias is not None:
                tables["b"][c, level, j] = values.parameters[unit.bias]
            for i, edge in enumerate(unit.inputs):
                weights[c, level, i, j] = values.parameters[edge.weight]
        last = len(sizes) - 1
        for k, name in enumerate(net.outputs):
            tables["t"][c, last, k] = values.targets[0, k]
            error = family.derivation.output_errors[name]
            point = {net[name].a: result.a[name][0], net.targets[name]: values.targets[0, k]}
            tables["dEda"][c, last, k] = float(error.xreplace(point))
        for level in range(last - 1, -1, -1):
            for j in range(sizes[level]):
                tables["dEda"][c, level, j] = sum(weights[c, level + 1, j, k] * tables["delta"][c, level + 1, k]
                                                  for k in range(sizes[level + 1]))
        for role, offset in ((P, -1), (U, 0), (S, 1)):
            layer[role][c] = unit_layer + offset
            position[role][c] = positions[role]
        etas[c], outputs[c] = eta, len(net.outputs)
        u, p = positions[U], positions[P]
        gradient_b = result.gradients.get(layer_bias(unit_layer - 1, u), np.nan) if net.layers else np.nan
        references[c] = (result.delta[f"[{unit_layer - 1}][{u}]"][0],
                         result.gradients[layer_weight(unit_layer - 1, p, u)], gradient_b)
        labels.append({"network": "-".join(map(str, sizes)), "layer": unit_layer,
                       "positions": {str(role): int(positions[role]) for role in (P, U, S)}})
    cases = Cases(layer, position, width, tables, weights, activation, functions, etas, outputs, summed,
                  labels=labels)
    return cases, references


# ---------------------------------------------------------------------------------------
# evaluation of an answer (or a reference, or a mutant) at every case at once

class _Unbound(Exception):
    """An index letter that is neither bound to a unit nor summed."""


_NUMPY = {"exp": np.exp, "log": np.log, "ln": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tan": np.tan,
          "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "abs": np.abs, "sign": np.sign,
          "heaviside": lambda x: np.heaviside(x, 0.5), "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
          "dsigmoid": lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2, "dtanh": lambda x: 1 - np.tanh(x) ** 2,
          "dlog": lambda x: 1 / x}


def evaluate(expression: sp.Expr, cases: Cases) -> np.ndarray:
    """``expression`` at every case, as a float array (C,).  Index roles are bound by the cases;
    a sum runs over its index's layer, masked to each case's width."""
    with np.errstate(all="ignore"):
        env = {role: (cases.layer[role], cases.position[role]) for role in (P, U, S)}
        return np.broadcast_to(np.asarray(_value(expression, cases, env), dtype=float), (cases.count,))


def _lookup(index, env):
    if index not in env:
        raise _Unbound(str(index))
    return env[index]


def _value(e, cases: Cases, env):
    if e.is_Number:
        return float(e)
    if isinstance(e, sp.Add):
        return sum(_value(x, cases, env) for x in e.args)
    if isinstance(e, sp.Mul):
        out = 1.0
        for x in e.args:
            out = out * _value(x, cases, env)
        return out
    if isinstance(e, sp.Pow):
        return np.power(_value(e.base, cases, env), _value(e.exp, cases, env))
    rows = np.arange(cases.count)
    if isinstance(e, sp.Indexed):
        spots = [_lookup(i, env) for i in e.indices]
        if e.base == w:
            (lx, px), (ly, py) = spots
            return cases.weights[rows, np.maximum(lx, ly), px, py]
        (level, pos), = spots
        return cases.tables[str(e.base)][rows, level, pos]
    if isinstance(e, sp.Sum):  # SymPy merges nested sums into one with several limits
        return _sum(e.function, [limit[0] for limit in e.limits], cases, env)
    if e == ETA:
        return cases.eta
    if e == OUTPUTS:
        return cases.outputs
    if isinstance(e, sp.Symbol):
        if e in cases.symbols:
            return cases.symbols[e]
        raise _Unbound(str(e))
    if isinstance(e, sp.Function):
        name = type(e).__name__
        args = [np.broadcast_to(np.asarray(_value(x, cases, env), dtype=float), (cases.count,)) for x in e.args]
        if name in ("g", "dg"):
            inner = next((x for x in sp.preorder_traversal(e.args[0]) if isinstance(x, sp.Indexed) and x.base == z
                          or x in cases.symbol_layer), None)
            if inner is None:
                level = env[U][0]
            elif isinstance(inner, sp.Indexed):
                level = _lookup(inner.indices[0], env)[0]
            else:
                level = np.full(cases.count, cases.symbol_layer[inner])
            kinds = cases.activation[rows, level]
            out = np.empty(cases.count)
            for kind in np.unique(kinds):
                mask = kinds == kind
                out[mask] = cases.functions[kind][name == "dg"](args[0][mask])
            return out
        if name == "quoted":
            return args[0]
        if name in ("max", "min"):
            return (np.maximum if name == "max" else np.minimum).reduce(args)
        if name in _NUMPY:
            return _NUMPY[name](args[0])
    raise _Unbound(str(e))


def _sum(function, variables, cases: Cases, env):
    """The sum of ``function`` over the last variable (the outermost limit), then the rest;
    each runs over the layer of its role, masked to each case's width."""
    if not variables:
        return _value(function, cases, env)
    variable = variables[-1]
    level = env[variable if variable in (P, U, S) else cases.summed][0]
    total = 0.0
    for r in range(PAD):
        inner = {**env, variable: (level, np.full(cases.count, r))}
        term = _sum(function, variables[:-1], cases, inner)
        total = total + np.where(r < cases.width[np.arange(cases.count), level], term, 0.0)
    return total


def _close(x: np.ndarray, y: np.ndarray, rtol: float = RTOL) -> bool:
    return bool(np.all(np.abs(x - y) <= rtol * np.maximum(np.abs(x), np.abs(y)) + ATOL))


# ---------------------------------------------------------------------------------------
# targets, templates and the mistakes a grader knows

@dataclass(frozen=True)
class Target:
    """What an answer is for: kind (delta, grad_w, grad_b, update_w), output or hidden, and for
    a concrete target the spec's 0-based indices (layer, source, unit)."""

    name: str
    kind: str
    output: bool
    concrete: tuple[int, int, int] | None = None


def parse_target(name: str, network: Network) -> Target:
    if name in GENERIC_TARGETS:
        kind, _, where = name.rpartition("_")
        if kind == "grad_b" and not any(u.bias is not None for u in network.computing_units):
            raise SpecError("--target", f"{name}: the network has no biases")
        return Target(name, kind, where == "output")
    match = _CONCRETE.fullmatch(name.replace(" ", ""))
    if not match:
        raise SpecError("--target", f"unknown target {name[:60]!r}; use one of {', '.join(GENERIC_TARGETS)}, or "
                                    "delta[l][j], grad_b[l][j], grad_w[l][i][j], update_w[l][i][j] (0-based)")
    if network.layers is None:
        raise SpecError("--target", "concrete targets name layered units (delta[l][j]); this spec is a graph")
    kind = match.group(1) or match.group(4)
    numbers = [int(x) for x in match.groups()[1:] if x is not None and x.isdigit()]
    level, source, unit = (numbers[0], 0, numbers[1]) if len(numbers) == 2 else numbers
    sizes = network.layers
    if level >= len(sizes) - 1 or unit >= sizes[level + 1] or source >= sizes[level]:
        raise SpecError("--target", f"{name} is outside the network {'-'.join(map(str, sizes))} "
                                    "(indices are 0-based, like weights[l][i][j] and biases[l][j])")
    if kind == "grad_b" and network[f"[{level}][{unit}]"].bias is None:
        raise SpecError("--target", f"{name}: the network has no biases")
    return Target(name.replace(" ", ""), kind, level == len(sizes) - 2, (level, source, unit))


def _local_gradient(network_loss, output_activation: Activation, output: bool) -> sp.Expr:
    """delta (dE/dz, internal) of unit U as the chain rule writes it, with g' explicit."""
    if not output:
        return sp.Mul(dg(z[U]), sp.Sum(sp.Mul(w[U, S], delta[S]), (S, 0, sp.Symbol("N"))))
    if output_activation.normalized:
        return delta[U]
    error = network_loss.derivative.xreplace({A: a[U], T: t[U], K: OUTPUTS})
    return sp.Mul(error, dg(z[U]))


def _reference_expression(kind: str, local: sp.Expr, sign: int) -> sp.Expr:
    return {"delta": sign * local, "grad_w": local * a[P], "grad_b": local,
            "update_w": -ETA * local * a[P]}[kind]


def _replace_sum(e, function):
    return e.replace(lambda x: isinstance(x, sp.Sum), function)


def _swap_weights(e):
    return e.replace(lambda x: isinstance(x, sp.Indexed) and x.base == w, lambda x: w[x.indices[1], x.indices[0]])


def _derivative_inside(e):
    if not e.has(dg(z[U])) or not e.has(sp.Sum):
        return None
    return _replace_sum(e.xreplace({dg(z[U]): 1}), lambda s: sp.Sum(s.function * dg(z[S]), *s.limits))


def _output_formula(e, loss):
    if not e.has(sp.Sum):
        return None
    return _replace_sum(e, lambda s: loss.derivative.xreplace({A: a[U], T: t[U], K: OUTPUTS}))


@dataclass(frozen=True)
class Mistake:
    """A known mistake: how it changes the reference, and what a grader says about it.
    ``transform`` returns None where the mistake cannot occur (no sum to drop)."""

    name: str
    transform: Callable
    message: str


def _if_has(atom, function):
    return lambda e, loss: function(e) if e.has(atom) else None


#: The mistakes the diagnosis names.  Messages are formatted with the notation's
#: spellings of the target's quantities (see :func:`_words`).
MISTAKES = (
    Mistake("sign error", lambda e, loss: -e, "{sign}"),
    Mistake("missing activation derivative", _if_has(dg(z[U]), lambda e: e.xreplace({dg(z[U]): 1})),
            "The factor {g_u} (= d{a_u}/d{z_u}, the slope of unit {u}'s activation) is missing; the chain rule "
            "passes through it between the error and {z_u}: correct if multiplied by {g_u}."),
    Mistake("derivative of the wrong unit", lambda e, loss: _derivative_inside(e),
            "The activation derivative belongs to unit {u}, not to the units it feeds: correct if {g_s} "
            "inside the sum were {g_u} in front of it."),
    Mistake("derivative of the wrong unit", _if_has(dg(z[U]), lambda e: e.xreplace({dg(z[U]): dg(z[P])})),
            "The activation derivative is taken at the wrong unit: correct if {g_p} were {g_u} "
            "(the derivative of the unit whose delta this is)."),
    Mistake("transposed weight index", _if_has(w[U, S], _swap_weights),
            "Transposed weight index: correct if {w_su} were {w_us} (in this notation the weight from {u} to {s} "
            "is {w_us})."),
    Mistake("missing sum", _if_has(sp.Sum, lambda e: _replace_sum(e, lambda s: s.function)),
            "The sum over the units {u} feeds is missing: unit {u} sends its output to every unit {s} of the "
            "next layer, so its error is {sum_us}, summed over {s}."),
    Mistake("sum over the wrong index", _if_has(sp.Sum, lambda e: _replace_sum(e, lambda s: sp.Sum(
        s.function, (U, 0, sp.Symbol("N"))))),
            "The sum runs over the wrong index: it must run over {s} (the units {u} feeds), not over {u}."),
    Mistake("sum over the wrong index", _if_has(sp.Sum, lambda e: _replace_sum(e, lambda s: sp.Sum(
        s.function, (P, 0, sp.Symbol("N"))))),
            "The sum runs over the wrong index: it must run over {s} (the units {u} feeds), not over {p}."),
    Mistake("output formula for a hidden unit", _output_formula,
            "This is the output-layer formula: a hidden unit has no target, its error comes back from the units "
            "it feeds: correct if {error_u} were {sum_us}, summed over {s}."),
    Mistake("factor 2", lambda e, loss: 2 * e,
            "Off by a factor 2: your answer is twice the correct one{half}."),
    Mistake("factor 1/2", lambda e, loss: e / 2,
            "Off by a factor 1/2: your answer is half the correct one{half}."),
    Mistake("input of the wrong layer", _if_has(a[P], lambda e: e.xreplace({a[P]: a[U]})),
            "The input comes from the wrong layer: correct if {a_u} were {a_p} (d{z_u}/d{w_pu} is the activation "
            "of unit {p}, where the weight starts)."),
    Mistake("missing learning rate", _if_has(ETA, lambda e: e.xreplace({ETA: 1})),
            "The learning rate {eta} is missing: the step is {eta} times the gradient."),
)


def _label(target: Target, notation: Notation, p: str, u: str) -> str:
    """The target as the student's notation names it: delta_j, dE/dw_ij, Delta w_ji."""
    plain = notation.plain
    weight = plain["weight"][0] + "_" + "".join(notation.weight_indices(p, u))
    bias = (plain["weight"][0] + "_" + "".join(notation.weight_indices("0", u)) if notation.bias == "weight"
            else f"{plain['bias'][0]}_{u}")
    return {"delta": f"{plain['delta'][0]}_{u}", "grad_w": f"d{plain['error'][0]}/d{weight}",
            "grad_b": f"d{plain['error'][0]}/d{bias}", "update_w": f"Delta {weight}"}[target.kind]


_MISTAKE_NAMES = frozenset(m.name for m in MISTAKES)


def _words(notation: Notation, target: Target, loss_name: str) -> dict:
    """The spellings a message uses, in the student's notation and index letters."""
    plain = notation.plain
    letters = notation.letters.output if target.output else notation.letters.hidden[:2]
    p, u = (x.lstrip("\\").replace("ell", "l") for x in letters)
    s = notation.letters.hidden[2].lstrip("\\").replace("ell", "l") if not target.output else "m"
    if s == p and not target.output:
        s = s if target.kind == "delta" else "m"
    f, zz, aa = plain["function"][0], plain["pre_activation"][0], plain["activation"][0]
    dd, tt = plain["delta"][0], plain["target"][0]

    separator = "->" if "arrow" in notation.weight_separator or "\\to" in notation.weight_separator else ""

    def weight(x, y):
        i, j = notation.weight_indices(x, y)
        return f"{plain['weight'][0]}_{i}{separator}{j}"

    error, eta = plain["error"][0], plain["learning_rate"][0]
    negative = f"Sign error: your answer is the negative of {_label(target, notation, p, u)}. "
    if target.kind == "update_w":
        sign = (f"Wrong sign in the update: gradient descent moves against the gradient, "
                f"Delta {weight(p, u)} = -{eta} d{error}/d{weight(p, u)}.")
    elif target.kind == "delta" and not target.output:
        sign = negative + (f"The sign comes from the output error and passes unchanged through "
                           f"{weight(u, s)} {dd}_{s} and {f}'({zz}_{u}).")
    elif notation.delta_sign < 0:
        sign = negative + (f"In this notation {dd}_{u} = -d{error}/d{zz}_{u}: the output's is e_{u} {f}'({zz}_{u}) "
                           f"with e = {tt} - {aa}, and d{error}/d{weight(p, u)} = -{dd}_{u} {aa}_{p}.")
    else:
        sign = negative + (f"{dd}_{u} = d{error}/d{zz}_{u}, and the output's error term is ({aa} - {tt}), "
                           f"not ({tt} - {aa}).")
    return {"p": p, "u": u, "s": s, "g_u": f"{f}'({zz}_{u})", "g_s": f"{f}'({zz}_{s})", "g_p": f"{f}'({zz}_{p})",
            "a_u": f"{aa}_{u}", "a_p": f"{aa}_{p}", "z_u": f"{zz}_{u}", "w_us": weight(u, s), "w_su": weight(s, u),
            "w_pu": weight(p, u), "sum_us": f"{weight(u, s)} {dd}_{s}", "delta_s": f"{dd}_{s}", "error_u": f"({aa}_{u} - {tt}_{u})",
            "eta": eta, "sign": sign, "target": _label(target, notation, p, u),
            "half": " (the 1/2 of E = 1/2 sum (a - t)^2 cancels the 2 of the square)"
            if loss_name == "half_sse" else ""}


# ---------------------------------------------------------------------------------------
# a prepared target: reference numbers, mutants, vocabulary

@dataclass
class Prepared:
    """Everything needed to grade answers to one target, computed once."""

    target: Target
    vocabulary: Vocabulary
    cases: Cases
    reference: np.ndarray
    weight: sp.Expr  # the weight an update changes, as answers name it
    mutants: list  # (names, message(s), values)
    words: dict
    example: float | None = None  # concrete targets: the worked example's value (mean over samples)
    example_mutants: list = field(default_factory=list)
    renamed: Prepared | None = None  # an output target read with the hidden-layer letters (j fed by i)


def _spec_parts(network: Network):
    groups = network.groups
    hidden = [g_.activation for g_ in groups if g_.units[0] not in network.outputs]
    output = next(g_.activation for g_ in groups if g_.units[0] in network.outputs)
    bias = any(u.bias is not None for u in network.computing_units)
    return hidden, output, bias


def _generic_points(network: Network, output: bool, rng) -> list:
    hidden, out, bias = _spec_parts(network)
    if not hidden and not output:
        raise SpecError("--target", "hidden-layer targets need a spec with a hidden layer")
    first, last = (hidden[0], hidden[-1]) if hidden else (out, out)
    shallow = _family(layered([2, 3, 2], [first, out], network.loss, bias))
    deep = _family(layered([3, 4, 4, 3], [first, last, out], network.loss, bias))
    homes = [(shallow, 2), (deep, 3)] if output else [(shallow, 1), (deep, 1), (deep, 2)]
    points = []
    for family, level in homes:
        for _ in range(POINTS):
            sizes = family.sizes
            positions = {P: rng.integers(sizes[level - 1]), U: rng.integers(sizes[level]),
                         S: rng.integers(sizes[level + 1]) if level + 1 < len(sizes) else 0}
            points.append((family, _random_values(family.network, rng), level, positions, rng.uniform(0.1, 0.9)))
    return points


def _letters(notation: Notation, target: Target) -> dict:
    """student letter -> role; where a notation uses one letter for two roles (Nielsen's k),
    the role the target's formula needs wins."""
    clean = lambda x: x.lstrip("\\").replace("ell", "l")
    if target.output:
        p, u = map(clean, notation.letters.output)
        return {p: P, u: U}
    p, u, s = map(clean, notation.letters.hidden)
    letters = {p: P, s: S} if target.kind == "delta" else {s: S, p: P}
    letters[u] = U
    return letters


def prepare(network: Network, target_name: str, notation: str | Notation = "default",
            values: Values | None = None, learning_rate: float = 0.5, seed: int = 0) -> Prepared:
    """The reference and the known-mistake mutants of one target, computed once per batch."""
    notation = notation if isinstance(notation, Notation) else notations.load(notation)
    target = parse_target(target_name, network)
    rng = np.random.default_rng(seed)
    if target.concrete is None:
        points = _generic_points(network, target.output, rng)
        names = {}
    else:
        points, names = _concrete_points(network, target, values, learning_rate, rng)
    cases, numbers = _build_cases(points, U if target.output else S)
    _, output_activation, _ = _spec_parts(network)
    local = _local_gradient(network.loss, output_activation, target.output)
    column = {"delta": 0, "grad_w": 1, "grad_b": 2, "update_w": 1}[target.kind]
    reference = numbers[:, column] * {"delta": notation.delta_sign, "update_w": -cases.eta}.get(target.kind, 1)
    template = _reference_expression(target.kind, local, notation.delta_sign)
    if not _close(evaluate(template, cases), reference, 1e-6):  # the template must be the derivation's
        raise RuntimeError(f"internal: the {target.name} template disagrees with the derivation")
    if target.concrete is not None:
        cases.symbols = _symbol_values(cases, names)
        cases.symbol_layer = {symbol: spot[1] for symbol, spot in names.items() if spot[0] == "z"}
    vocabulary = Vocabulary(notation, _letters(notation, target), target.output,
                            ("l", "L") if target.output else ("l",), {str(s): s for s in names})
    weight = w[P, U] if target.concrete is None else layer_weight(*target.concrete)
    words = _words(notation, target, network.loss.name)
    mutants = _mutants(template, reference, cases, network.loss)
    prepared = Prepared(target, vocabulary, cases, reference, weight, mutants, words)
    hidden_letters = Letters(notation.letters.hidden[:2], notation.letters.hidden)
    if target.concrete is None and target.output and notation.letters.output != hidden_letters.output:
        renamed = replace(notation, letters=hidden_letters)
        prepared.renamed = replace(prepared, vocabulary=replace(vocabulary, letters=_letters(renamed, target)),
                                   words=_words(renamed, target, network.loss.name))
    if target.concrete is not None:
        _attach_example(prepared, network, values, learning_rate)
    return prepared


def _mutants(template, reference, cases, loss) -> list:
    """Known mistakes applied to the reference, alone and in pairs, kept when they differ
    from the reference and from each other at the test points."""
    singles, seen = [], [reference]
    for index, mistake in enumerate(MISTAKES):
        changed = _mutate(mistake, template, loss, cases, seen)
        if changed is not None:
            singles.append((index, (mistake.name,), (mistake.message,), *changed))
    pairs = []
    for first, names, messages, expression, _ in singles:
        for mistake in MISTAKES[first + 1:]:
            changed = _mutate(mistake, expression, loss, cases, seen)
            if changed is not None and mistake.name not in names:
                pairs.append((first, (*names, mistake.name), (*messages, mistake.message), *changed))
    return [(names, messages, values) for _, names, messages, _, values in singles + pairs]


def _mutate(mistake: Mistake, expression, loss, cases: Cases, seen: list):
    """(mutant, its values) when the mistake applies and is told apart at the test points."""
    changed = mistake.transform(expression, loss)
    if changed is None:
        return None
    try:
        values = evaluate(changed, cases)
    except (_Unbound, _NotElementwise):
        return None
    if not np.all(np.isfinite(values)) or any(_close(values, v) for v in seen):
        return None
    seen.append(values)
    return changed, values


# --- concrete targets ----------------------------------------------------------------------

def _concrete_points(network, target, values, learning_rate, rng):
    level, source, unit = target.concrete
    family = _family(network)
    sizes = network.layers
    points = []
    first = Values(values.inputs[:1], values.targets[:1], values.parameters) if values is not None else None
    for n in range(POINTS + 1):
        point = first if n == 0 and first is not None else _random_values(network, rng)
        successor = rng.integers(sizes[level + 2]) if level + 2 < len(sizes) else 0
        eta = learning_rate if n == 0 else rng.uniform(0.1, 0.9)
        points.append((family, point, level + 1, {P: source, U: unit, S: successor}, eta))
    return points, _network_symbols(network)


def _network_symbols(network: Network) -> dict:
    """Each symbol of a layered network -> (table, layer, position...) it is read from."""
    names = {u.a: ("a", 0, i) for i, u in enumerate(network.inputs)}
    for u in network.computing_units:
        level, j = u.position
        names.update({u.z: ("z", level, j), u.a: ("a", level, j), u.delta: ("delta", level, j)})
        if u.bias is not None:
            names[u.bias] = ("b", level, j)
        for i, edge in enumerate(u.inputs):
            names[edge.weight] = ("w", level, i, j)
    last = len(network.layers) - 1
    names.update({symbol: ("t", last, k) for k, symbol in enumerate(network.targets.values())})
    return names


def _symbol_values(cases: Cases, names: dict) -> dict:
    out = {}
    for symbol, (table, level, *spot) in names.items():
        out[symbol] = cases.weights[:, level, spot[0], spot[1]] if table == "w" else cases.tables[table][:, level, spot[0]]
    return out


def _attach_example(prepared: Prepared, network: Network, values: Values | None, learning_rate: float) -> None:
    """The worked example's number (as ``example`` prints it: mean over samples)."""
    if values is None:
        return
    level, source, unit = prepared.target.concrete
    result = _family(network).compiled.evaluate(values, learning_rate)
    kind = prepared.target.kind
    if kind == "delta":
        value = float(np.mean(result.delta[f"[{level}][{unit}]"])) * prepared.vocabulary.notation.delta_sign
    elif kind == "grad_b":
        value = result.gradients[layer_bias(level, unit)]
    else:
        value = result.gradients[layer_weight(level, source, unit)] * (-learning_rate if kind == "update_w" else 1)
    prepared.example = value
    if len(values.inputs) == 1:
        prepared.example_mutants = [(names, messages, v[0]) for names, messages, v in prepared.mutants]


# ---------------------------------------------------------------------------------------
# one answer

def check_prepared(prepared: Prepared, text: str) -> Verdict:
    """Grade one answer against a prepared target.  An output-layer answer that is wrong in
    the notation's letters but right, or wrong in a known way, with the hidden-layer letters
    (neuron j fed by i, as most texts call the unit of a formula) is read that way: renaming
    the free indices consistently changes nothing."""
    verdict = _check_read(prepared, text)
    if verdict.verdict != "incorrect" or prepared.renamed is None:
        return verdict
    other = prepared.renamed
    renamed = _check_read(other, text)
    reading = (f"read with {other.words['u']} as the output unit and {other.words['p']} feeding it (this "
               f"notation writes {prepared.words['u']} and {prepared.words['p']})")
    if renamed.verdict == "correct":
        return Verdict("correct", f"Correct, {reading}.")
    if renamed.verdict == "incorrect" and _named(renamed) and not _named(verdict):
        return Verdict("incorrect", renamed.message, [f"Answer {reading}.", *renamed.diagnosis],
                       renamed.counterexample)
    return verdict


def _check_read(prepared: Prepared, text: str) -> Verdict:
    try:
        answer = read_answer(text, prepared.vocabulary)
    except ExpressionError as error:
        return Verdict("cannot read", str(error))
    if answer.remarks:
        return Verdict("incorrect", "An index names the wrong unit or layer.", list(answer.remarks))
    try:
        sides = _answer_sides(prepared, answer)
    except _Unbound as error:
        return Verdict("incorrect", f"The index {error} is neither bound to the unit of the target nor summed "
                                    f"over; the formula for {prepared.words['u']} cannot depend on it.")
    except _NotElementwise:
        return Verdict("incorrect", f"{prepared.words['g_u']} is not defined for a softmax layer: each output "
                                    "depends on every z of its layer (the Jacobian is a matrix); write what "
                                    "the delta equals, e.g. in terms of a and t.")
    except _Wrong as error:
        return Verdict("incorrect", str(error))
    except ExpressionError as error:
        return Verdict("cannot read", str(error))
    for number, (side, values) in enumerate(sides):
        verdict = _judge(prepared, side, values, number, len(sides))
        if verdict is not None:
            return verdict
    restated = _restates(prepared, sides[-1][0])
    if restated:
        return Verdict("incorrect", "The answer restates what it should derive.", [restated])
    return Verdict("correct", "Correct." if len(sides) == 1 else "Correct: every side equals the target.")


class _Wrong(Exception):
    """An answer wrong in its form (the left-hand side names another quantity)."""


def _restates(prepared: Prepared, side) -> str | None:
    """Why a right-hand side that equals the target is no derivation: it names the target
    itself (delta_j for delta_j, dE/dw_ij for dE/dw_ij), or, for a hidden unit, leaves dE/da_j
    unworked (BP1's dE/da_k is the answer for an output unit, not for a hidden one)."""
    target, words = prepared.target, prepared.words
    if target.concrete is not None:
        level, _, unit = target.concrete
        own = sp.Symbol(f"delta[{level}][{unit}]", real=True)
        return (f"{words['target']} is what the answer should work out" if target.kind == "delta" and side.has(own)
                else None)
    itself = {"delta": delta[U], "grad_w": quoted(sp.Mul(delta[U], a[P], evaluate=False)),
              "grad_b": quoted(delta[U])}.get(target.kind)
    if itself is not None and side.has(itself):
        return f"{words['target']} is what the answer should work out, in terms of the network's quantities."
    if not target.output and target.kind != "update_w" and side.has(dEda[U]):
        return (f"d{prepared.vocabulary.notation.plain['error'][0]}/d{words['a_u']} is left unworked: for a hidden "
                f"unit it is {words['sum_us']}, summed over {words['s']}.")
    return None


def _answer_sides(prepared: Prepared, answer: Answer) -> list:
    """(expression, values) of each side to compare with the reference; an update's left
    side says whether the answer is the change (Delta w) or the new weight (w <-, w^+)."""
    sides = list(answer.sides)
    cases = prepared.cases
    update = prepared.target.kind == "update_w"
    weight = prepared.weight
    new_value = False
    if any(s.has(DELTA) for s in sides[1:]) or (sides[0].has(DELTA) and len(sides) == 1):
        raise ExpressionError("Delta (the change of a weight) belongs on the left-hand side only")
    if not update and (sides[0].has(DELTA) or sides[0].has(updated) or answer.relations[:1] == ("<-",)):
        raise _Wrong(f"The left-hand side is a weight update; the target is {prepared.words['target']}.")
    if len(sides) > 1 and update:
        left = sides.pop(0)
        if left.has(DELTA):
            named = left.xreplace({DELTA: 1})
        else:
            new_value = True
            named = left.replace(lambda x: isinstance(x, sp.Function) and type(x).__name__ == "updated",
                                 lambda x: x.args[0])
        if not _close(evaluate(named, cases), evaluate(weight, cases)):
            raise _Wrong(f"The left-hand side is not {prepared.words['target']}.")
    elif update:
        new_value = sides[0].has(weight)
    if any(s.has(updated) for s in sides):
        raise ExpressionError("a new weight value (w^+, w(n+1)) belongs on the left-hand side only")
    out = []
    for side in sides:
        values = evaluate(side, cases)
        if new_value:
            values = values - evaluate(weight, cases)
        out.append((side, values))
    return out


def _judge(prepared: Prepared, side, values, number: int, count: int) -> Verdict | None:
    """None when ``side`` equals the target, else the verdict on it."""
    reference = prepared.reference
    where = "" if count == 1 else f"Side {number + 1}: "
    if not side.free_symbols and prepared.example is not None:  # a number: the worked example's value
        return _judge_number(prepared, float(values[0]), where)
    if not np.all(np.isfinite(values)):
        bad = int(np.argmin(np.isfinite(values)))
        return Verdict("incorrect", f"{where}The answer is undefined (division by zero, log of a negative "
                                    "number, overflow) at a point where the target is defined.", [],
                       _counterexample(prepared, values, bad, side))
    if _close(values, reference):
        return None
    if number == 0 and count > 1:
        return Verdict("incorrect", f"The left-hand side is not {prepared.words['target']}.",
                       [f"The target is {prepared.words['target']}; the left-hand side names another quantity."],
                       _counterexample(prepared, values, side=side))
    for names, messages, mutant in prepared.mutants:
        if _close(values, mutant):
            return Verdict("incorrect", f"{where}{_headline(names)}", [m.format(**prepared.words) for m in messages],
                           _counterexample(prepared, values, side=side))
    diagnosis = []
    with np.errstate(all="ignore"):
        ratio = values / reference
    if np.all(np.isfinite(ratio)) and np.ptp(ratio) <= 1e-8 * np.max(np.abs(ratio)):
        diagnosis.append(f"Your answer is {ratio[0]:.6g} times the correct one at every test point: a constant "
                         "factor is wrong.")
    elif count == 1 and _close(np.abs(values), np.abs(reference)):
        diagnosis.append("Right size, wrong sign at some points.")
    return Verdict("incorrect", f"{where}The answer differs from the target.", diagnosis,
                   _counterexample(prepared, values, side=side))


def _headline(names) -> str:
    """"Sign error and missing sum." for the mistakes an answer made."""
    label = " and ".join(names)
    return f"{label[0].upper()}{label[1:]}."


def _named(verdict: Verdict) -> bool:
    """Whether a verdict names known mistakes (rather than "differs")."""
    return all(part in _MISTAKE_NAMES for part in verdict.message.rstrip(".").lower().split(" and "))


def _judge_number(prepared: Prepared, value: float, where: str) -> Verdict | None:
    expected = prepared.example
    close = lambda x, y: abs(x - y) <= NUMBER_RTOL * max(abs(x), abs(y)) + 1e-9
    if close(value, expected):
        return None
    if prepared.target.kind == "update_w":
        new = float(prepared.cases.symbols.get(prepared.weight, [np.nan])[0]) + expected
        if close(value, new):
            return None
    for names, messages, mutant in prepared.example_mutants:
        if close(value, mutant):
            return Verdict("incorrect", f"{where}{_headline(names)}", [m.format(**prepared.words) for m in messages],
                           {"expected": expected, "answer": value, "at": "the spec's worked example"})
    return Verdict("incorrect", f"{where}The number differs from the worked example's value {expected:.6g} "
                                f"(relative tolerance {NUMBER_RTOL:g}).", [],
                   {"expected": expected, "answer": value, "at": "the spec's worked example"})


def _counterexample(prepared: Prepared, values: np.ndarray, case: int | None = None, side=None) -> dict:
    """The test point where the answer is furthest from the target, in the student's words
    (for a concrete target, the network's symbols the answer uses)."""
    reference = prepared.reference
    if case is None:
        with np.errstate(all="ignore"):
            gap = np.abs(values - reference) / np.maximum(np.abs(reference), 1e-12)
        case = int(np.nanargmax(gap)) if np.any(np.isfinite(gap)) else 0
    cases, words = prepared.cases, prepared.words
    label = cases.labels[case]
    found = {"network": label["network"]}
    if prepared.target.concrete is None:
        shown = {words["z_u"]: z[U], words["a_u"]: a[U], words["a_p"]: a[P]}
        if prepared.target.output:
            shown[f"{prepared.vocabulary.notation.plain['target'][0]}_{words['u']}"] = t[U]
        positions = label["positions"]
        found.update({"layer": label["layer"], "units": {words["u"]: positions[str(U)], words["p"]: positions[str(P)]}})
    else:
        used = side.free_symbols if side is not None else ()
        shown = {str(symbol): symbol for symbol in sorted(used, key=str) if symbol in cases.symbols}
        found["at"] = "the spec's worked example (first sample)" if case == 0 else f"random point {case}"
    if prepared.target.kind == "update_w":
        shown[words["eta"]] = ETA
    sign = prepared.vocabulary.notation.delta_sign  # a Haykin student's delta is -dE/dz
    found["values"] = {name: round(float(evaluate(e, cases)[case]) * (sign if name.startswith("delta") else 1), 12)
                       for name, e in shown.items()}
    if prepared.target.concrete is None and not prepared.target.output:  # enough to redo BP2 by hand
        for name, quantity, factor in ((words["w_us"], w[U, S], 1), (f"{words['delta_s']}", delta[S], sign)):
            found["values"][f"{name} for {words['s']} = 0, 1, ..."] = _over_successors(quantity, cases, case, factor)
    found.update({"expected": float(reference[case]), "answer": float(values[case])})
    return found


def _over_successors(quantity, cases: Cases, case: int, factor: int) -> list[float]:
    """``quantity`` at one case for every unit the bound unit feeds."""
    level = int(cases.layer[S][case])
    env = {role: (cases.layer[role], cases.position[role]) for role in (P, U)}
    return [round(float(_value(quantity, cases, {**env, S: (cases.layer[S], np.full(cases.count, r))})[case])
                  * factor, 12) for r in range(int(cases.width[case, level]))]


# ---------------------------------------------------------------------------------------
# workers: every answer in a process that can be killed

def _serve(connection, prepared: dict) -> None:
    """Worker loop: (row, target, text) in, (row, verdict dict) out; None ends it."""
    while True:
        task = connection.recv()
        if task is None:
            return
        row, target, text = task
        try:
            verdict = check_prepared(prepared[target], text)
        except RecursionError:
            verdict = Verdict("cannot read", "the answer is nested too deeply")
        except Exception as error:  # noqa: BLE001 - a bug must cost one row, not the batch
            verdict = Verdict("cannot read", f"the checker failed on this answer ({type(error).__name__}); "
                                             "please report it")
        connection.send((row, verdict.as_dict()))


class _Pool:
    """Worker processes (forked, so the prepared targets are shared) with a time limit per
    answer: a worker past its limit is killed and replaced, and its row is marked."""

    def __init__(self, prepared: dict, workers: int, seconds: float):
        self.prepared, self.seconds = prepared, seconds
        self.context = multiprocessing.get_context("fork")
        self.workers = [self._start() for _ in range(max(1, workers))]

    def _start(self):
        mine, theirs = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(theirs, self.prepared), daemon=True)
        process.start()
        theirs.close()
        return {"process": process, "connection": mine, "task": None, "since": 0.0}

    def run(self, tasks: Iterable, on_result: Callable) -> None:
        pending = iter(tasks)
        exhausted = False
        while True:
            for worker in self.workers:
                if worker["task"] is None and not exhausted:
                    task = next(pending, None)
                    if task is None:
                        exhausted = True
                        break
                    worker["task"], worker["since"] = task, time.monotonic()
                    worker["connection"].send(task)
            busy = [x for x in self.workers if x["task"] is not None]
            if not busy:
                return
            ready = wait([x["connection"] for x in busy], timeout=0.05)
            now = time.monotonic()
            for n, worker in enumerate(self.workers):
                if worker["task"] is None:
                    continue
                if worker["connection"] in ready:
                    try:
                        row, result = worker["connection"].recv()
                    except (EOFError, OSError):
                        on_result(worker["task"][0], Verdict("cannot read", "the checker crashed on this answer")
                                  .as_dict())
                        self._replace(n)
                        continue
                    worker["task"] = None
                    on_result(row, result)
                elif now - worker["since"] > self.seconds:
                    on_result(worker["task"][0], Verdict(
                        "cannot read", f"the answer took longer than {self.seconds:g} s to check; "
                                       "write it more simply").as_dict())
                    self._replace(n)

    def _replace(self, n: int) -> None:
        old = self.workers[n]
        old["process"].kill()
        old["process"].join()
        old["connection"].close()
        self.workers[n] = self._start()

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker["connection"].send(None)
            except OSError:
                pass
        for worker in self.workers:
            worker["process"].join(timeout=1)
            if worker["process"].is_alive():
                worker["process"].kill()
                worker["process"].join()


def check(spec, target: str, answer: str, notation: str | Notation = "default",
          seconds: float = SECONDS_PER_ANSWER) -> Verdict:
    """Grade one answer; ``spec`` is a :class:`Spec` or a :class:`Network`.  The answer is
    checked in a child process stopped after ``seconds``."""
    network, values, rate = _unpack(spec)
    prepared = {target: prepare(network, target, notation, values, rate)}
    results = {}
    pool = _Pool(prepared, 1, seconds)
    try:
        pool.run([(0, target, answer)], lambda row, result: results.__setitem__(row, result))
    finally:
        pool.close()
    return Verdict(**results[0])


def _unpack(spec):
    if isinstance(spec, Network):
        return spec, None, 0.5
    return spec.network, spec.values, spec.learning_rate


# ---------------------------------------------------------------------------------------
# a class: CSV in, CSV and Markdown report out

REQUIRED_COLUMNS = ("id", "target", "answer")


def read_submissions(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a submissions CSV; raises SpecError when it cannot be used."""
    csv.field_size_limit(16 * 1024 * 1024)
    text = files.read_bounded(path, MAX_SUBMISSIONS_BYTES, "submissions").decode("utf-8-sig", errors="replace")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [name.strip() for name in reader.fieldnames or []]
        header = [name.lower() if name.lower() in REQUIRED_COLUMNS else name for name in header]
        reader.fieldnames = header
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise SpecError(str(path), f"the header row must name {', '.join(REQUIRED_COLUMNS)}; "
                                       f"missing {', '.join(missing)}")
        rows = list(reader)
    except csv.Error as error:
        raise SpecError(str(path), f"is not a readable CSV file: {error}") from None
    return header, rows


def grade(spec, rows: Sequence[dict], notation: str | Notation = "default", workers: int | None = None,
          seconds: float = SECONDS_PER_ANSWER, progress: Callable | None = None) -> list[Verdict]:
    """A verdict for every row (``target`` and ``answer`` keys); a bad row is marked, never
    stops the batch.  Each target's reference is prepared once, answers are checked in
    ``workers`` processes (default: every core)."""
    network, values, rate = _unpack(spec)
    notation = notation if isinstance(notation, Notation) else notations.load(notation)
    prepared, verdicts = {}, [None] * len(rows)
    tasks = []
    for n, row in enumerate(rows):
        target = (row.get("target") or "").strip()
        answer = row.get("answer")
        if answer is None:
            verdicts[n] = Verdict("cannot read", "the row has no answer column")
            continue
        if target not in prepared:
            try:
                prepared[target] = prepare(network, target, notation, values, rate)
            except SpecError as error:
                prepared[target] = error
        if isinstance(prepared[target], SpecError):
            verdicts[n] = Verdict("cannot read", str(prepared[target]))
            continue
        tasks.append((n, target, answer))
    usable = {k: v for k, v in prepared.items() if not isinstance(v, SpecError)}
    done = [0]

    def record(row, result):
        verdicts[row] = Verdict(**result)
        done[0] += 1
        if progress is not None:
            progress(done[0], len(tasks))

    if tasks:
        pool = _Pool(usable, workers or os.cpu_count() or 1, seconds)
        try:
            pool.run(tasks, record)
        finally:
            pool.close()
    return verdicts


def _short(text: str, limit: int) -> str:
    """``text``, or its start and length when longer than was ever read (hostile rows)."""
    return text if len(text) <= limit else f"{text[:min(limit, 200)]}... [{len(text)} characters]"


def report_csv(header: list[str], rows: list[dict], verdicts: list[Verdict]) -> str:
    out = io.StringIO()
    extra = [c for c in header if c not in REQUIRED_COLUMNS]
    writer = csv.writer(out)
    writer.writerow([*REQUIRED_COLUMNS, *extra, "verdict", "message", "diagnosis", "counterexample"])
    for row, verdict in zip(rows, verdicts):
        cells = [row.get("id") or "", _short(row.get("target") or "", 100), _short(row.get("answer") or "", MAX_LENGTH),
                 *(row.get(c) or "" for c in extra)]
        writer.writerow([*cells, verdict.verdict,
                         verdict.message, " | ".join(verdict.diagnosis),
                         json.dumps(verdict.counterexample) if verdict.counterexample else ""])
    return out.getvalue()


def report_markdown(rows: list[dict], verdicts: list[Verdict], title: str = "Homework report") -> str:
    """A summary a TA reads first: per target how many were right, the commonest mistakes."""
    by_target: dict[str, Counter] = {}
    mistakes: dict[str, Counter] = {}
    unreadable: Counter = Counter()
    examples: dict[tuple, list] = {}  # (target, mistake) -> ids of the first answers that made it
    for row, verdict in zip(rows, verdicts):
        target = _short((row.get("target") or "").strip(), 100) or "(no target)"
        by_target.setdefault(target, Counter())[verdict.verdict] += 1
        if verdict.verdict == "incorrect":
            mistake = verdict.message.rstrip(".")
            mistakes.setdefault(target, Counter())[mistake] += 1
            examples.setdefault((target, mistake), []).append(row.get("id") or "?")
        elif verdict.verdict == "cannot read":
            unreadable[re.sub(r"column \d+", "column ...", verdict.message)[:100]] += 1
    total = Counter(v.verdict for v in verdicts)
    counts_line = (f"{len(verdicts)} answers: {total['correct']} correct, {total['incorrect']} incorrect, "
                   f"{total['cannot read']} cannot read.")
    lines = [f"# {title}", "", counts_line, "", "| target | answers | correct | incorrect | cannot read |",
             "|---|---:|---:|---:|---:|"]
    for target, counts in sorted(by_target.items()):
        lines.append(f"| {target} | {sum(counts.values())} | {counts['correct']} | {counts['incorrect']} | "
                     f"{counts['cannot read']} |")
    lines += ["", "## Commonest mistakes", ""]
    for target, counts in sorted(mistakes.items()):
        lines.append(f"### {target}")
        lines += [f"- {count} x {name} (e.g. id {', '.join(examples[target, name][:3])})"
                  for name, count in counts.most_common(8)]
        lines.append("")
    if unreadable:
        lines += ["## Answers that could not be read", ""]
        lines += [f"- {count} x {message}" for message, count in unreadable.most_common(8)]
    return "\n".join(lines) + "\n"


def write_report(path: Path, header, rows, verdicts, inputs: Iterable[Path] = ()) -> list[Path]:
    """``path`` (CSV, one row per answer) and ``path`` with .md (the summary), written as one
    set by :func:`files.write_set`: both, or neither and the old pair untouched; never over
    one of ``inputs``."""
    path = Path(path)
    return files.write_set({path: report_csv(header, rows, verdicts),
                            path.with_suffix(".md"): report_markdown(rows, verdicts)}, inputs=inputs)
