"""Backpropagation through a convolutional layer in index form, derived by SymPy.

Output unit (o, i, j) of a conv layer with stride s and padding p reads its input a (the layer
below, or the network's input x)::

    z[o,i,j] = b[o] + sum_c sum_u sum_v K[o,c,u,v] a[c, i*s+u-p, j*s+v-p]

Each kernel weight is used at every output position, so the chain rule sums over them, and a
unit (c, m, n) of the input feeds every output whose window covers it::

    dE/dK[o,c,u,v] = sum_i sum_j delta[o,i,j] a[c, i*s+u-p, j*s+v-p]
    dE/db[o]       = sum_i sum_j delta[o,i,j]
    dE/da[c,m,n]   = sum_o sum_i sum_j delta[o,i,j] K[o,c, m+p-i*s, n+p-j*s]

the last a full convolution of delta with the kernel flipped (m - i runs backwards through the
kernel as i runs forwards), K being zero outside its kh x kw entries, a zero outside the input.
Below an average pooling layer, z[c,i,j] = 1/(S_h S_w) sum_u sum_v a[c, i S_h + u, j S_w + v], a
unit gets 1/|window| of the delta of the one window that holds it.  Nothing is typed in: every
right-hand side is SymPy differentiating the definition above and summing the Kronecker deltas
away.  :func:`mismatches` evaluates the formulas for every kernel weight and bias, every unit below
a conv layer and every unit below an average pooling layer, the generic-vs-concrete witness of
``verify``.  (Max pooling's slopes are SymPy's derivative of each window's Max, in the network
itself: :func:`convolution._max_slopes`.)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from .convolution import ConvNetwork, kernel_weight
from .derivation import E, Index, Step, _differentiated, a, b, delta, z
from .functions import A, Z
from .network import layer_bias

K = sp.IndexedBase("K")
#: stride and padding of the layer
s, p = sp.symbols("s p", integer=True, nonnegative=True)
H_, W_, _C, _O, _KH, _KW = sp.symbols("H W C O K_h K_w", integer=True, positive=True)
o, c = Index("o", _O), Index("c", _C)
u, v = Index("u", _KH), Index("v", _KW)
i, j = Index("i", H_), Index("j", W_)
m, n = Index("m", sp.Symbol("M", integer=True, positive=True)), Index("n", sp.Symbol("N", integer=True, positive=True))


def _bound(index: Index, name: str) -> Index:
    """A summation copy of ``index`` that prints as its letter but differs from it."""
    return Index(index.label, sp.Symbol(name, integer=True, positive=True))


def _total(term: sp.Expr, *indices: Index) -> sp.Expr:
    for index in reversed(indices):
        term = sp.Sum(term, (index, 0, index.upper))
    return term


@dataclass(frozen=True)
class GenericConv:
    """The index-form formulas of a conv layer of ``dimensions`` spatial axes."""

    dimensions: int
    pre_activation: sp.Expr
    gradient_kernel: sp.Expr
    gradient_bias: sp.Expr
    error_below: sp.Expr
    steps: tuple[Step, ...]


def _positions(dimensions: int) -> tuple[list[Index], list[Index], list[Index]]:
    """(output positions, kernel offsets, input positions) of a layer with that many axes."""
    return [i, j][:dimensions], [u, v][:dimensions], [m, n][:dimensions]


def _input_index(outputs, offsets) -> list[sp.Expr]:
    return [q * s + w - p for q, w in zip(outputs, offsets)]


@lru_cache(maxsize=4)
def derive_conv(dimensions: int, has_bias: bool) -> GenericConv:
    """dE/dK, dE/db and dE/da of the input, by SymPy, for a conv layer in 1-D or 2-D."""
    steps: list[Step] = []

    def step(lhs, rhs, rule, *uses) -> int:
        steps.append(Step(lhs, rhs, rule, uses, "generic", "convolution"))
        return len(steps) - 1

    outputs, offsets, inputs = _positions(dimensions)
    bc = _bound(c, "C'")
    bo = [_bound(x, f"{x.label}'") for x in offsets]

    def net_input(channel, at) -> sp.Expr:
        term = K[(channel, bc, *bo)] * a[(bc, *_input_index(at, bo))]
        return (b[channel] if has_bias else 0) + _total(term, bc, *bo)

    z_def = step(z[(o, *outputs)], net_input(o, outputs), "definition")
    # every output position (o', i', j') may use K[o,c,u,v]: the chain rule sums over them
    other = _bound(o, "O'")
    at = [_bound(x, f"{x.label}''") for x in outputs]
    z_other = net_input(other, at)
    chain = _total(sp.Mul(sp.Derivative(E, z[(other, *at)]), sp.Derivative(z[(other, *at)], K[(o, c, *offsets)]),
                          evaluate=False), other, *at)
    uses = step(sp.Derivative(E, K[(o, c, *offsets)]), chain, "tied_weight_sum", z_def)
    dz_dk = _differentiated(z_other, K[(o, c, *offsets)])
    kernel = sp.Sum(delta[(other, *at)] * dz_dk, (other, 0, other.upper)).doit()
    kernel = _renamed(_total(_collapsed(kernel), *at), at, outputs)
    gradient_kernel = step(sp.Derivative(E, K[(o, c, *offsets)]), kernel, "gradient", uses)
    gradient_bias = sp.Integer(0)
    if has_bias:
        dz_db = _differentiated(z_other, b[o])
        gradient_bias = _renamed(_total(_collapsed(
            sp.Sum(delta[(other, *at)] * dz_db, (other, 0, other.upper)).doit()), *at), at, outputs)
        step(sp.Derivative(E, b[o]), gradient_bias, "gradient", z_def)
    # a unit (c, m, n) of the input feeds every output (o, i, j) whose window covers it
    below = a[(c, *inputs)]
    chain = _total(sp.Mul(sp.Derivative(E, z[(other, *at)]), sp.Derivative(z[(other, *at)], below),
                          evaluate=False), other, *at)
    first = step(sp.Derivative(E, below), chain, "sum_over_successors", z_def)
    dz_da = _differentiated(z_other, below)
    error = _renamed(_total(delta[(other, *at)] * dz_da, other, *at), [other, *at], [o, *outputs])
    step(sp.Derivative(E, below), error, "flipped_kernel", first)
    return GenericConv(dimensions, steps[z_def].rhs, steps[gradient_kernel].rhs, gradient_bias, error, tuple(steps))


#: the pooling window's height and width (its stride too)
S_h, S_w = sp.symbols("S_h S_w", integer=True, positive=True)


@lru_cache(maxsize=2)
def derive_average_pool(dimensions: int) -> sp.Expr:
    """dE/da[c,m,n] below an average pooling layer, by SymPy: z[c,i,j] = 1/(S_h S_w) sum_u sum_v
    a[c, i S_h + u, j S_w + v], so a unit reaches the one window (i, j) that holds it, with
    1/|window| of its delta; the window's condition is kept (it is the answer, not a range)."""
    outputs, _, inputs = _positions(dimensions)
    sizes = [S_h, S_w][-dimensions:]
    offsets = [_bound(Index(x.label, size), f"{x.label}'") for x, size in zip([u, v][:dimensions], sizes)]
    z_def = _total(a[(c, *(q * size + w for q, size, w in zip(outputs, sizes, offsets)))], *offsets)
    z_def = z_def / sp.Mul(*sizes)
    slope = sp.diff(z_def, a[(c, *inputs)]).doit().xreplace({w.upper + 1: size for w, size in zip(offsets, sizes)})
    return _total(delta[(c, *outputs)] * slope, *outputs)


def _collapsed(expression: sp.Expr) -> sp.Expr:
    """A sum over o' of KroneckerDelta(o, o') f(o') as f(o), ranges dropped (o lies in its range)."""
    expression = expression.replace(lambda e: isinstance(e, sp.Piecewise) and len(e.args) == 2
                                    and e.args[1].expr == 0 and e.args[1].cond == sp.true, lambda e: e.args[0].expr)
    return expression


def _renamed(expression: sp.Expr, old: list, new: list) -> sp.Expr:
    """The summation copies ``old`` written as the indices ``new`` they stand for, ranges too."""
    return expression.xreplace({**dict(zip(old, new)), **{x.upper: y.upper for x, y in zip(old, new)}})


def _at(expression: sp.Expr, point: dict) -> float:
    """A concrete formula (sums of products of the network's symbols) at ``point``, term by term:
    SymPy's own substitution rebuilds each 576-term sum of 1x28x28's kernel gradients."""
    if expression.is_Add:
        return sum(_at(term, point) for term in expression.args)
    if expression.is_Mul:
        return float(np.prod([_at(factor, point) for factor in expression.args]))
    if expression.is_Symbol:
        return float(point[expression])
    return float(expression.xreplace(point))


class Summand:
    """A generic formula (a sum over indices of a product of indexed quantities) made NumPy code
    once, for many rows of numbers at once (a student's samples, a class's students): its terms
    at every point of the summed indices' grid.  ``constants`` holds the sizes, stride and
    padding, ``bound`` the indices given per row (o, c, u, v of a kernel weight).  An index
    outside its array (K outside the kernel, a in the padding) reads 0, as the formulas mean."""

    def __init__(self, expression: sp.Expr, constants: dict, bound: tuple = ()):
        limits, term = [], expression
        while isinstance(term, sp.Sum):
            limits, term = list(term.limits) + limits, term.function
        #: the summed indices, in the order of the grid's axes
        self.names = [index for index, _, _ in limits]
        self._grids = np.meshgrid(*(np.arange(int(low.xreplace(constants)), int(high.xreplace(constants)) + 1)
                                    for _, low, high in limits), indexing="ij")
        self._shape = self._grids[0].shape if self._grids else ()
        arguments = [*self.names, *bound]
        self._indexed = sorted(term.atoms(sp.Indexed), key=sp.default_sort_key)
        self._where = [[sp.lambdify(arguments, index.xreplace(constants), "numpy") for index in indexed.indices]
                       for indexed in self._indexed]
        placeholders = {indexed: sp.Symbol(f"q{n}") for n, indexed in enumerate(self._indexed)}
        self._term = sp.lambdify([*placeholders.values(), *arguments],
                                 term.xreplace(placeholders).xreplace(constants), "numpy")

    def terms(self, tables: dict, at: np.ndarray) -> np.ndarray:
        """The terms, (rows, *grid): ``tables`` holds each base's arrays (K, a, delta), one per
        row, ``at`` each row's bound indices (rows x bound)."""
        rows, lifted = len(at), (1,) * len(self._shape)
        shape = (rows, *self._shape)
        arguments = [*(grid[None] for grid in self._grids), *(at[:, k].reshape(rows, *lifted) for k in range(at.shape[1]))]
        row = np.arange(rows).reshape(rows, *lifted)
        values = []
        for indexed, where in zip(self._indexed, self._where):
            table = tables[indexed.base]
            where = [np.broadcast_to(index(*arguments), shape).astype(int) for index in where]
            inside = np.all([(0 <= w) & (w < size) for w, size in zip(where, table.shape[1:])], axis=0)
            clipped = tuple(np.clip(w, 0, size - 1) for w, size in zip(where, table.shape[1:]))
            values.append(np.where(inside, table[(row, *clipped)], 0.0))
        return np.broadcast_to(self._term(*values, *arguments), shape)

    def __call__(self, tables: dict, at: np.ndarray) -> np.ndarray:
        """The formula's value per row: its terms summed."""
        return self.terms(tables, at).reshape(len(at), -1).sum(axis=1)


def _evaluated(expression: sp.Expr, tables: dict, constants: dict) -> float:
    """A generic formula at one point: ``tables`` holds each base's array (K, a, delta),
    ``constants`` the sizes, stride, padding and bound indices."""
    rows = {base: table[None] for base, table in tables.items()}
    return float(Summand(expression, constants)(rows, np.zeros((1, 0), dtype=int))[0])


def _tables(network: ConvNetwork, layer: int, point: dict) -> dict:
    """K, b, the layer's input a and its delta, as arrays, at ``point`` (symbol -> number)."""
    spec = network.stack[layer]
    below = [network.unit_at(layer - 1, *index).a for index in np.ndindex(*spec.shape_in)]  # -1: the input
    kernel = np.ndindex(spec.shape_out[0], spec.shape_in[0], *spec.kernel)
    tables = {a: np.array([point[x] for x in below], dtype=float).reshape(spec.shape_in),
              delta: np.array([point[network.unit_at(layer, *index).delta] for index in np.ndindex(*spec.shape_out)],
                              dtype=float).reshape(spec.shape_out),
              K: np.array([point.get(kernel_weight(layer, *index), 0.0) for index in kernel],
                          dtype=float).reshape(spec.shape_out[0], spec.shape_in[0], *spec.kernel)}
    if network.biases:
        tables[b] = np.array([point[layer_bias(layer, o)] for o in range(spec.shape_out[0])], dtype=float)
    return tables


def _constants(layer, bound: dict) -> dict:
    """The sizes, stride and padding of conv ``layer`` and the ``bound`` indices, for :func:`_evaluated`."""
    outputs, offsets, _ = _positions(len(layer.kernel))
    constants = {s: layer.stride, p: layer.padding, _O: layer.shape_out[0], _C: layer.shape_in[0], **bound}
    constants.update({x.upper + 1: n for x, n in zip(outputs, layer.shape_out[1:])})  # Idx(i, H) runs to H - 1
    constants.update({x.upper + 1: n for x, n in zip(offsets, layer.kernel)})
    return constants


def checked(network: ConvNetwork) -> list[sp.Symbol]:
    """The parameters :func:`mismatches` checks: every kernel weight and bias of a conv layer."""
    return [parameter for l, layer in enumerate(network.stack) if layer.kind == "conv"
            for parameter in [*(kernel_weight(l, *index) for index in np.ndindex(layer.shape_out[0], layer.shape_in[0],
                                                                                  *layer.kernel)),
                              *(layer_bias(l, o) for o in range(layer.biases) if network.biases)]]


def mismatches(derivation, point: dict) -> list[str]:
    """Witness 1 for conv layers: dE/dK of every kernel weight, dE/db of every bias, and the
    delta of every unit below a conv layer from the flipped-kernel formula, generic == concrete
    at ``point`` (symbol -> number)."""
    net: ConvNetwork = derivation.network
    found = []

    def differs(x: float, y: float) -> bool:
        return abs(x - y) > 1e-9 * max(1.0, abs(x), abs(y))

    for l, layer in enumerate(net.stack):
        if layer.kind == "avg_pool" and l:
            found += _pool_mismatches(derivation, l, point)
        if layer.kind != "conv":
            continue
        generic = derive_conv(len(layer.kernel), bool(net.biases))
        _, offsets, _ = _positions(len(layer.kernel))
        tables = _tables(net, l, point)
        for index in np.ndindex(layer.shape_out[0], layer.shape_in[0], *layer.kernel):
            weight = kernel_weight(l, *index)
            formula = _evaluated(generic.gradient_kernel, tables, _constants(layer, dict(zip([o, c, *offsets], index))))
            if differs(formula, _at(derivation.gradients[weight], point)):
                found.append(f"conv dE/d{weight}")
        if net.biases:
            for out in range(layer.shape_out[0]):
                formula = _evaluated(generic.gradient_bias, tables, _constants(layer, {o: out}))
                if differs(formula, _at(derivation.gradients[layer_bias(l, out)], point)):
                    found.append(f"conv dE/d{layer_bias(l, out)}")
        if l == 0:
            continue
        found += _below_mismatches(derivation, l, point, "flipped kernel", lambda bound: _evaluated(
            generic.error_below, tables, _constants(layer, bound)))
    return found


def _pool_mismatches(derivation, l: int, point: dict) -> list[str]:
    """The delta of every unit below average pooling layer ``l`` from 1/|window| of its window's delta."""
    net: ConvNetwork = derivation.network
    layer = net.stack[l]
    outputs, _, _ = _positions(len(layer.kernel))
    tables = {delta: np.array([point[net.unit_at(l, *index).delta] for index in np.ndindex(*layer.shape_out)],
                              dtype=float).reshape(layer.shape_out)}
    constants = {**dict(zip([S_h, S_w][-len(layer.kernel):], layer.kernel)),
                 **{x.upper + 1: size for x, size in zip(outputs, layer.shape_out[1:])}}
    error_below = derive_average_pool(len(layer.kernel))
    return _below_mismatches(derivation, l, point, "average pooling",
                             lambda bound: _evaluated(error_below, tables, {**constants, **bound}))


def _below_mismatches(derivation, l: int, point: dict, formula: str, error) -> list[str]:
    """delta = g'(z) dE/da of every unit below layer ``l``, with dE/da from ``error`` (bound
    indices c, m, n -> number), against the concrete delta at ``point``."""
    net: ConvNetwork = derivation.network
    layer, below = net.stack[l], net.group_by_name[f"layer {l}"].activation
    _, _, inputs = _positions(len(layer.shape_in) - 1)
    found = []
    for index in np.ndindex(*layer.shape_in):
        unit = net.unit_at(l - 1, *index)
        slope = below.derivative_in_activation  # a pooling layer's identity: 1
        slope = slope.subs(A, unit.a) if slope is not None else below.derivative.subs(Z, unit.z)
        computed, concrete = float(slope.xreplace(point)) * error(dict(zip([c, *inputs], index))), \
            _at(derivation.deltas[unit.name], point)
        if abs(computed - concrete) > 1e-9 * max(1.0, abs(computed), abs(concrete)):
            found.append(f"delta of {unit.name} ({formula})")
    return found
