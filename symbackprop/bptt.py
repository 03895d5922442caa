"""Backpropagation through time for a generic recurrent unit, derived by SymPy.

Neuron j of a recurrent (hidden) layer at step t, with the layer below indexed by i, the
layer above by k and its own layer, one step apart, by m::

    z_j(t) = b_j + sum_i w_ij a_i(t) + sum_m r_mj a_m(t-1)          a_j(t) = g(z_j(t))

a_j(t) feeds z_k(t) above it and z_m(t+1) of its own layer, so the chain rule gives the
recursion backwards in time, and each tied weight's gradient is a sum over its uses::

    delta_j(t) = g'(z_j(t)) [sum_k w_jk delta_k(t) + sum_m r_jm delta_m(t+1)]
    dE/dr_mj = sum_t a_m(t-1) delta_j(t)        dE/dw_ij = sum_t a_i(t) delta_j(t)        dE/db_j = sum_t delta_j(t)

Nothing here is typed in: every right-hand side is SymPy differentiating the definitions
above (as :mod:`symbackprop.derivation` does for one step).  :func:`instantiate` writes a
formula for a unit of an unrolled network, which is how it is checked against the
concrete derivation (:func:`mismatches`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .derivation import E, Index, Step, _bound, _differentiated, a, b, delta, g, i, j, k, m, w, z
from .functions import A, Activation, Z
from .network import layer_bias, layer_weight
from .recurrent import UnrolledNetwork, recurrent_weight

#: The recurrent weight r_ij from unit i at t-1 to unit j at t, and the time index t = 1..T.
r = sp.IndexedBase("r")
T = sp.Symbol("T", integer=True, positive=True)
t = Index("t", (1, T))
#: The first step a truncated sum keeps: T - K + 1 for truncation depth K.
K = sp.Symbol("K", integer=True, positive=True)
#: The source of a recurrent weight in dE/dr_mj: a unit of j's own layer, as m in z_j's sum.
source = Index("m", sp.Symbol("R", integer=True, positive=True))


def _sum(term: sp.Expr, index: sp.Idx) -> sp.Sum:
    return sp.Sum(term, (index, 0, sp.Symbol("N", integer=True, positive=True) - 1))


@dataclass(frozen=True)
class GenericRecurrent:
    """The BPTT formulas of a recurrent layer; ``steps`` says how SymPy found them."""

    delta: sp.Expr
    gradient_recurrent: sp.Expr
    gradient_weight: sp.Expr
    gradient_bias: sp.Expr | None
    truncated_recurrent: sp.Expr
    steps: tuple[Step, ...]


def _time_sum(term: sp.Expr, first: sp.Expr = 1) -> sp.Sum:
    return sp.Sum(term, (t, first, T))


def _net_input(unit: sp.Idx, time: sp.Expr, below: sp.Idx, peer: sp.Idx | None, has_bias: bool) -> sp.Expr:
    """z_unit(time) of a layer fed by ``below`` at the same step and, when ``peer`` names
    the index of its own layer, by itself one step back."""
    p = _bound(below)
    total = (b[unit] if has_bias else 0) + _sum(w[p, unit] * a[p, time], p)
    if peer is None:
        return total
    q = _bound(peer)
    return total + _sum(r[q, unit] * a[q, time - 1], q)


@lru_cache(maxsize=64)
def derive_recurrent(activation: Activation, has_bias: bool) -> GenericRecurrent:
    """BPTT for a hidden layer of elementwise ``activation`` (softmax layers have none)."""
    steps: list[Step] = []

    def step(lhs, rhs, rule, *uses) -> int:
        steps.append(Step(lhs, rhs, rule, uses, "generic", "recurrent"))
        return len(steps) - 1

    z_def_rhs = _net_input(j, t, i, m, has_bias)
    z_def = step(z[j, t], z_def_rhs, "definition")
    step(a[j, t], g(z[j, t]), "definition")
    above = step(z[k, t], _net_input(k, t, j, None, has_bias), "definition")
    ahead = step(z[m, t + 1], _net_input(m, t + 1, i, j, has_bias), "definition")
    d_above = _differentiated(steps[above].rhs, a[j, t])
    d_ahead = _differentiated(steps[ahead].rhs, a[j, t])
    chain = sp.Add(_sum(sp.Mul(sp.Derivative(E, z[k, t]), sp.Derivative(z[k, t], a[j, t]), evaluate=False), k),
                   _sum(sp.Mul(sp.Derivative(E, z[m, t + 1]), sp.Derivative(z[m, t + 1], a[j, t]),
                               evaluate=False), m), evaluate=False)
    first = step(sp.Derivative(E, a[j, t]), chain, "sum_over_successors", above, ahead)
    d1 = step(sp.Derivative(z[k, t], a[j, t]), d_above, "differentiate", above)
    d2 = step(sp.Derivative(z[m, t + 1], a[j, t]), d_ahead, "differentiate", ahead)
    error = _sum(d_above * delta[k, t], k) + _sum(d_ahead * delta[m, t + 1], m)
    de_da = step(sp.Derivative(E, a[j, t]), error, "substitute", first, d1, d2)
    in_a = activation.derivative_in_activation
    slope = in_a.subs(A, a[j, t]) if in_a is not None else activation.derivative.subs(Z, z[j, t])
    d_slope = step(sp.Derivative(g(z[j, t]), z[j, t]), slope, "activation_derivative")
    local = slope * error
    step(delta[j, t], local, "local_gradient", de_da, d_slope)

    gradients = []
    for weight in (r[source, j], w[i, j]) + ((b[j],) if has_bias else ()):
        dz = _differentiated(z_def_rhs, weight)
        uses = step(sp.Derivative(z[j, t], weight), dz, "differentiate", z_def)
        gradient = _time_sum(delta[j, t] * dz)
        step(sp.Derivative(E, weight), _time_sum(sp.Mul(sp.Derivative(E, z[j, t]), sp.Derivative(z[j, t], weight),
                                                        evaluate=False)), "tied_weight_sum")
        step(sp.Derivative(E, weight), gradient, "gradient", len(steps) - 1, uses)
        gradients.append(gradient)
    truncated = gradients[0].func(gradients[0].function, (t, T - K + 1, T))
    step(sp.Derivative(E, r[source, j]), truncated, "truncated_sum")
    return GenericRecurrent(local, gradients[0], gradients[1], gradients[2] if has_bias else None, truncated,
                            tuple(steps))


def instantiate(network: UnrolledNetwork, expression: sp.Expr, hidden: int, unit: int, step: int | None = None,
                predecessor: int | None = None) -> sp.Expr:
    """A generic BPTT formula of hidden layer ``hidden`` in the unrolled network's symbols.

    j is bound to ``unit``, t to ``step`` (1-based, as printed), the weight's source i to
    ``predecessor``; sums over k, m and t run over the layer above, j's own layer and the
    steps.  A unit before the first step (the zero state) or after the last (no future
    error) contributes 0.
    """
    sizes = network.sizes
    layer_of = {i: hidden, j: hidden + 1, m: hidden + 1, source: hidden + 1, k: hidden + 2}
    bound = {j: unit} | ({t: step} if step is not None else {})
    if predecessor is not None:
        bound[i] = predecessor
        bound[source] = predecessor

    def value(index: sp.Expr, at: dict) -> int:
        return int(index.xreplace(at))

    def concrete(indexed: sp.Indexed, at: dict) -> sp.Expr:
        base, (first, *rest) = indexed.base, indexed.indices
        if base in (w, r):
            p, q = value(first, at), value(rest[0], at)
            return (recurrent_weight(hidden, p, q) if base == r
                    else layer_weight(layer_of[rest[0]] - 1, p, q))
        if base == b:
            return layer_bias(layer_of[first] - 1, value(first, at))
        when = value(rest[0], at)
        if not 1 <= when <= network.steps:
            return sp.Integer(0)
        target = network.unit_at(when - 1, layer_of[first], value(first, at))
        return {a: target.a, z: target.z, delta: target.delta}[base]

    def bind(e: sp.Expr, at: dict) -> sp.Expr:
        def unrolled_sum(s: sp.Sum) -> sp.Expr:
            index, low, high = s.limits[0]
            if index == t:
                low, high = (value(x.xreplace({T: sp.Integer(network.steps)}), at) for x in (low, high))
                span = range(max(low, 1), high + 1)
            else:
                span = range(sizes[layer_of[index]])
            return sp.Add(*(bind(s.function, {**at, index: n}) for n in span))

        e = e.replace(lambda s: isinstance(s, sp.Sum), unrolled_sum)
        return e.replace(lambda s: isinstance(s, sp.Indexed), lambda s: concrete(s, at))

    return bind(expression, bound)


def mismatches(derivation, point) -> list[str]:
    """Witness 1 for BPTT: each recurrent layer's delta at every unit and step, and dE/dr
    and dE/dw of every weight into it, generic == concrete at ``point`` (symbol -> number)."""
    net = derivation.network
    found = []

    def differs(x: sp.Expr, y: sp.Expr) -> bool:
        x, y = complex(x.xreplace(point).evalf(30)), complex(y.xreplace(point).evalf(30))
        return abs(x - y) > 1e-12 * max(1.0, abs(x), abs(y))

    for h in net.hidden_layers:
        activation = net.unit_at(0, h + 1, 0)
        group = net.group_by_name[activation.group]
        if group.activation.normalized:
            continue
        generic = derive_recurrent(group.activation, activation.bias is not None)
        for q in range(net.sizes[h + 1]):
            for step in range(1, net.steps + 1):
                unit = net.unit_at(step - 1, h + 1, q)
                if differs(instantiate(net, generic.delta, h, q, step), derivation.deltas[unit.name]):
                    found.append(f"BPTT delta of {unit.name}")
            for p in range(net.sizes[h + 1]):
                if differs(instantiate(net, generic.gradient_recurrent, h, q, predecessor=p),
                           derivation.gradients[recurrent_weight(h, p, q)]):
                    found.append(f"BPTT dE/d{recurrent_weight(h, p, q)}")
            for p in range(net.sizes[h]):
                if differs(instantiate(net, generic.gradient_weight, h, q, predecessor=p),
                           derivation.gradients[layer_weight(h, p, q)]):
                    found.append(f"BPTT dE/d{layer_weight(h, p, q)}")
            if generic.gradient_bias is not None and differs(instantiate(net, generic.gradient_bias, h, q),
                                                             derivation.gradients[layer_bias(h, q)]):
                found.append(f"BPTT dE/d{layer_bias(h, q)}")
    return found
