"""Evaluation cases and the evaluator: an answer, a reference or a mutant at every test point at once.

A case is one layered network at one random point with the unit of the target (U), the unit
feeding it (P) and a unit it feeds (S) bound; every quantity an answer can name is a table of
numbers per case, so evaluating an expression is a handful of NumPy operations, not a loop.
A recurrent network's cases have a time axis too (:mod:`.through_time` builds them): the
step t is bound like a unit, and a sum over t runs over the case's steps.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import numpy as np
import sympy as sp

from ..functions import Activation
from ..network import layer_bias, layer_weight
from .vocabulary import ETA, LAST, OUTPUTS, TIME, P, S, U, dEdr, dEdw, r, w, z

RTOL, ATOL = 1e-8, 1e-12
PAD = 6  # every layer's tables have this many positions; beyond a layer's width, fixed random values


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
    #: a recurrent network's cases: T per case, the step bound to t, and the tied weights' tables
    #: [c, L, i, j] (r within layer L; dEdw, dEdr the whole gradients); then every table of
    #: ``tables`` is [case, step, layer, position], step 0 the zero state before the first step
    steps: np.ndarray | None = None
    time: np.ndarray | None = None
    pairs: dict = field(default_factory=dict)  # "r", "dEdw", "dEdr" -> (C, layers, PAD, PAD)

    @property
    def count(self) -> int:
        return len(self.eta)

    def rows(self, chosen: slice | np.ndarray) -> Cases:
        """The cases ``chosen`` picks: a slice (one variant's, of cases built for a whole class; all of
        them: these), or case numbers, repeats allowed (each case once per unit of a layer)."""
        if isinstance(chosen, slice) and chosen.indices(self.count) == (0, self.count, 1):
            return self
        pick = lambda table: {key: value[chosen] for key, value in table.items()}
        return replace(self, layer=pick(self.layer), position=pick(self.position), width=self.width[chosen],
                       tables=pick(self.tables), weights=self.weights[chosen], activation=self.activation[chosen],
                       eta=self.eta[chosen], outputs=self.outputs[chosen], symbols=pick(self.symbols),
                       labels=[self.labels[n] for n in np.arange(self.count)[chosen]],
                       steps=None if self.steps is None else self.steps[chosen],
                       time=None if self.time is None else self.time[chosen], pairs=pick(self.pairs))


class NotElementwise(Exception):
    """g or g' of a softmax layer: not one number per unit."""


def _refuse(x):
    raise NotElementwise


def _activation_functions(activation: Activation):
    """(g, g') as NumPy functions; partials of module-level functions, so that a prepared
    target pickles (:mod:`symbackprop.cache`) and its code is generated again when loaded."""
    if activation.normalized:
        return _refuse, _refuse
    return functools.partial(_elementwise, activation, False), functools.partial(_elementwise, activation, True)


def _elementwise(activation: Activation, slope: bool, x: np.ndarray) -> np.ndarray:
    return np.broadcast_to(_lambdified(activation, slope)(x), x.shape).astype(float)


@functools.lru_cache(maxsize=64)
def _lambdified(activation: Activation, slope: bool):
    # NumPy as a module object, not the name "numpy": the name makes lambdify run ``from numpy
    # import *``, which loads numpy.testing, numpy.f2py and numpy.ma (0.1 s of a cold check)
    modules = [{"Heaviside": lambda x, h0=0.5: np.heaviside(x, h0)}, np]
    return sp.lambdify(sp.Symbol("z", real=True), activation.derivative if slope else activation.expression, modules)


def build_cases(points: list, summed: sp.Symbol, size: int | None = None) -> tuple[Cases, np.ndarray]:
    """points: (family, values, layer of the unit, {role: position}, eta), in groups of ``size``
    (one variant's each; default: one group).  Returns the cases and, per case, (delta, dE/dw,
    dE/db) of the bound unit and weight from the derivation.  What the networks lack gets the
    same fixed random values in every group, so that a group's cases do not depend on the others."""
    count = len(points)
    size = size or count
    depth = max(len(f.sizes) for f, *_ in points) + 2
    rng = np.random.default_rng(12345)
    fill = lambda low, high, *shape: np.tile(rng.uniform(low, high, (size, *shape)), (count // size, *[1] * len(shape)))
    tables = {base: fill(-1, 1, depth, PAD) for base in ("z", "a", "b", "delta", "dEda")}
    tables["t"] = fill(0.05, 0.95, depth, PAD)
    weights = fill(-1, 1, depth, PAD, PAD)
    width = np.zeros((count, depth), dtype=int)
    activation = np.zeros((count, depth), dtype=int)
    functions, function_of = [], {}
    references = np.zeros((count, 3))
    layer = {role: np.zeros(count, dtype=int) for role in (P, U, S)}
    position = {role: np.zeros(count, dtype=int) for role in (P, U, S)}
    etas, outputs, labels = np.zeros(count), np.zeros(count), []
    evaluated = {}  # a point shared by several groups (the random ones of a class's question) is evaluated once
    for c, (family, values, unit_layer, positions, eta) in enumerate(points):
        net, sizes = family.network, family.sizes
        if id(values) not in evaluated:
            evaluated[id(values)] = family.compiled.evaluate(values)
        result = evaluated[id(values)]
        width[c, :len(sizes)] = sizes
        tables["a"][c, 0, :sizes[0]] = values.inputs[0]
        activation[c] = activation_row(net, depth, functions, function_of)
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


def activation_row(net, depth: int, functions: list, function_of: dict) -> np.ndarray:
    """Per layer of ``net``, where its activation's (g, g') is in ``functions`` (added when new);
    the input layer and the padding beyond the output layer take their neighbour's."""
    row = np.zeros(depth, dtype=int)
    for unit in net.computing_units:
        key = net.group_by_name[unit.group].activation
        if key not in function_of:
            function_of[key] = len(functions)
            functions.append(_activation_functions(key))
        row[unit.position[0]] = function_of[key]
    last = max(unit.position[0] for unit in net.computing_units)
    row[0], row[last + 1:] = row[1], row[last]
    return row


class Unbound(Exception):
    """An index letter that is neither bound to a unit nor summed."""


_NUMPY = {"exp": np.exp, "log": np.log, "ln": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tan": np.tan,
          "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "abs": np.abs, "sign": np.sign,
          "heaviside": lambda x: np.heaviside(x, 0.5), "relu": lambda x: np.maximum(x, 0.0), "sech": lambda x: 1 / np.cosh(x),
          "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
          "dsigmoid": lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2, "dtanh": lambda x: 1 - np.tanh(x) ** 2,
          "dlog": lambda x: 1 / x}


def evaluate(expression: sp.Expr, cases: Cases) -> np.ndarray:
    """``expression`` at every case, as a float array (C,).  Index roles are bound by the cases;
    a sum runs over its index's layer, masked to each case's width."""
    with np.errstate(all="ignore"):
        env = bindings(cases, (P, U, S))
        return np.broadcast_to(np.asarray(value_at(expression, cases, env), dtype=float), (cases.count,))


def bindings(cases: Cases, roles) -> dict:
    """What the cases bind: each of ``roles`` to its (layer, position), and the step t."""
    env = {role: (cases.layer[role], cases.position[role]) for role in roles}
    if cases.time is not None:
        env[TIME] = (None, cases.time)
    return env


def _lookup(index, env):
    if index not in env:
        raise Unbound(str(index))
    return env[index]


def value_at(e, cases: Cases, env):
    if e.is_Number:
        return float(e)
    if isinstance(e, sp.Add):
        return sum(value_at(x, cases, env) for x in e.args)
    if isinstance(e, sp.Mul):
        out = 1.0
        for x in e.args:
            out = out * value_at(x, cases, env)
        return out
    if isinstance(e, sp.Pow):
        return np.power(value_at(e.base, cases, env), value_at(e.exp, cases, env))
    rows = np.arange(cases.count)
    if isinstance(e, sp.Indexed):
        if e.base in (w, r, dEdw, dEdr):
            (lx, px), (ly, py) = (_lookup(i, env) for i in e.indices)
            table = cases.weights if e.base == w else cases.pairs[str(e.base)]
            return table[rows, np.maximum(lx, ly), px, py]
        level, pos = _lookup(e.indices[0], env)
        if cases.steps is None:
            return cases.tables[str(e.base)][rows, level, pos]
        step = value_at(e.indices[1], cases, env) if len(e.indices) > 1 else _lookup(TIME, env)[1]
        step = np.clip(np.broadcast_to(np.asarray(step), (cases.count,)), 0, cases.tables["a"].shape[1] - 1)
        return cases.tables[str(e.base)][rows, step.astype(int), level, pos]
    if isinstance(e, sp.Sum):  # SymPy merges nested sums into one with several limits
        return _sum(e.function, list(e.limits), cases, env)
    if e == ETA:
        return cases.eta
    if e == OUTPUTS:
        return cases.outputs
    if e == TIME:
        return _lookup(e, env)[1]
    if e == LAST and cases.steps is not None:
        return cases.steps
    if isinstance(e, sp.Symbol):
        if e in cases.symbols:
            return cases.symbols[e]
        raise Unbound(str(e))
    if isinstance(e, sp.Function):
        name = type(e).__name__
        args = [np.broadcast_to(np.asarray(value_at(x, cases, env), dtype=float), (cases.count,)) for x in e.args]
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
    raise Unbound(str(e))


def _sum(function, limits, cases: Cases, env):
    """The sum of ``function`` over the last limit (the outermost), then the rest, each within
    its limits: over the layer of its role, masked to each case's width (a limit that is not a
    number is the layer's end), or over the steps 1..T of each case."""
    if not limits:
        return value_at(function, cases, env)
    variable, lower, upper = limits[-1]
    total = 0.0
    if variable == TIME and cases.steps is not None:
        first = _step_limit(lower, cases, env, 1)
        last = _step_limit(upper, cases, env, cases.steps)
        for step in range(1, int(cases.steps.max()) + 1):
            term = _sum(function, limits[:-1], cases, {**env, TIME: (None, np.full(cases.count, step))})
            total = total + np.where((first <= step) & (step <= last), term, 0.0)
        return np.where(upper.is_Integer & (last > cases.steps), np.nan, total)  # past the sequence: undefined
    level = _summed_layer(variable, function, env, cases)
    first = int(lower) if lower.is_Integer else 0
    last = int(upper) if upper.is_Integer else PAD
    widths = cases.width[np.arange(cases.count), level]
    for n in range(max(first, 0), min(last + 1, PAD, int(widths.max()))):  # a unit past every case's layer adds 0
        inner = {**env, variable: (level, np.full(cases.count, n))}
        term = _sum(function, limits[:-1], cases, inner)
        total = total + np.where(n < widths, term, 0.0)
    past = upper.is_Integer and last >= widths  # units the layer lacks
    return np.where(past, np.nan, total)


def _step_limit(limit, cases: Cases, env, default):
    """A time sum's limit at every case: a number, or t or T plus a number; ``default`` for one
    that names no step (the N of a sum written without limits)."""
    if limit.free_symbols - {TIME, LAST}:
        return default
    return np.asarray(value_at(limit, cases, env))


def _summed_layer(variable, function, env, cases: Cases):
    """The layer a sum's index runs over: its role's; a letter of a recurrent weight r_jm, the
    layer of the other unit (r joins one layer to itself); any other letter, the summed role's."""
    if variable in (P, U, S):
        return env[variable][0]
    for x in sp.preorder_traversal(function):
        if isinstance(x, sp.Indexed) and x.base == r and variable in x.indices:
            other = next((i for i in x.indices if i != variable and i in env), None)
            if other is not None:
                return env[other][0]
    return env[cases.summed][0]


def close(x: np.ndarray, y: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Equal within ``rtol`` at every point; an infinity is close only to itself and NaN to
    nothing (|inf - y| <= rtol * inf would make 1/0 equal to any number)."""
    return bool(np.all(_near(np.asarray(x), np.asarray(y), rtol, atol)))


def close_to_any(x: np.ndarray, rows: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """:func:`close` to one of ``rows`` (one row per earlier value), in one NumPy pass: a target's
    mutants are compared with every one kept before them (80,000 comparisons for ten students)."""
    return bool(np.any(close_rows(x, rows, rtol, atol)))


def close_rows(x: np.ndarray, rows: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> np.ndarray:
    """Per row of ``rows`` (any leading shape, the points last): whether it is :func:`close` to ``x``."""
    return np.all(_near(np.asarray(x), np.asarray(rows), rtol, atol), axis=-1)


def _near(x: np.ndarray, y: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        near = np.isfinite(x) & np.isfinite(y) & (np.abs(x - y) <= rtol * np.maximum(np.abs(x), np.abs(y)) + atol)
    return near | (np.isinf(x) & (x == y))
