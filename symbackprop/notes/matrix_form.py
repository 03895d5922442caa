"""The matrix form of backpropagation for a layered network, as SymPy matrix expressions.

Layer by layer: z = W a + b, delta^L = grad_a E (Hadamard) g'(z^L), delta^l =
(W^{l+1} delta^{l+1}) (Hadamard) g'(z^l) (transposed for the other orientation),
dE/db = delta, dE/dW = delta a^T.  The orientation of W follows the notation: with
weights written w_ij from i to j, W has a row per source; with w_ji, a row per
destination.  :func:`explicit` writes any of these expressions out entry by entry in
the network's own symbols, which is how the tests hold them against the derivation.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import HadamardProduct, MatrixSymbol, Transpose

from ..derivation import Derivation
from ..functions import A, Z
from ..network import Network, layer_bias, layer_weight


@dataclass(frozen=True)
class MatrixStep:
    """``lhs = rhs`` for one layer (1-based, inputs are layer 0); ``rule`` as in Step, ``name``
    which of the four backpropagation equations it is (delta_output, delta_hidden,
    gradient_bias, gradient_weight; empty for the forward pass)."""

    lhs: sp.MatrixExpr
    rhs: sp.MatrixExpr
    rule: str
    layer: int
    name: str = ""


class Symbols:
    """The matrix symbols of one layered network, by layer (0 = inputs).

    Vectors: ``z``, ``a``, ``b``, ``delta``, ``slope`` = g'(z), ``error`` = grad_a E of the
    output layer, ``db`` = dE/db; matrices: ``W``, ``dW`` = dE/dW, ``jacobian`` = da/dz
    of a softmax layer.  The printer writes each name in the notation.
    """

    def __init__(self, sizes, rows_are_sources: bool):
        self.sizes = sizes
        self.rows_are_sources = rows_are_sources

    def vector(self, name: str, layer: int) -> MatrixSymbol:
        return MatrixSymbol(f"{name}[{layer}]", self.sizes[layer], 1)

    def matrix(self, name: str, layer: int) -> MatrixSymbol:
        if name == "jacobian":
            return MatrixSymbol(f"jacobian[{layer}]", self.sizes[layer], self.sizes[layer])
        shape = (self.sizes[layer - 1], self.sizes[layer])
        return MatrixSymbol(f"{name}[{layer}]", *(shape if self.rows_are_sources else shape[::-1]))


def matrix_form(network: Network, rows_are_sources: bool) -> list[MatrixStep]:
    """The forward and backward pass of a layered ``network`` in matrix form."""
    s = Symbols(network.layers, rows_are_sources)
    last = len(network.layers) - 1
    has_bias = bool(network.biases)

    def applied(weights, vector):  # W a with W oriented as the notation writes it
        return (Transpose(weights) if rows_are_sources else weights) * vector

    def back(weights, vector):
        return (weights if rows_are_sources else Transpose(weights)) * vector

    steps = []
    for layer in range(1, last + 1):
        z = applied(s.matrix("W", layer), s.vector("a", layer - 1))
        z = z + s.vector("b", layer) if has_bias else z
        steps.append(MatrixStep(s.vector("z", layer), z, "definition", layer))
    for layer in range(last, 0, -1):
        normalized = network.group_by_name[f"layer {layer}"].activation.normalized
        if layer == last:
            error = s.vector("error", layer)
        else:
            error = back(s.matrix("W", layer + 1), s.vector("delta", layer + 1))
        if normalized:
            delta = Transpose(s.matrix("jacobian", layer)) * error
        else:
            delta = HadamardProduct(error, s.vector("slope", layer))
        steps.append(MatrixStep(s.vector("delta", layer), delta, "local_gradient", layer,
                                "delta_output" if layer == last else "delta_hidden"))
        if has_bias:
            steps.append(MatrixStep(s.vector("db", layer), s.vector("delta", layer), "gradient", layer,
                                    "gradient_bias"))
        outer = (s.vector("a", layer - 1) * Transpose(s.vector("delta", layer)) if rows_are_sources
                 else s.vector("delta", layer) * Transpose(s.vector("a", layer - 1)))
        steps.append(MatrixStep(s.matrix("dW", layer), outer, "gradient", layer, "gradient_weight"))
    return steps


def explicit(expression: sp.MatrixExpr, derivation: Derivation, rows_are_sources: bool) -> sp.Matrix:
    """``expression`` as an explicit matrix in the network's symbols (the witness that the
    matrix form says what the derivation says, entry by entry)."""
    net = derivation.network
    sizes = net.layers
    s = Symbols(sizes, rows_are_sources)
    units = lambda layer: [u for u in net.units if u.position and u.position[0] == layer]
    column = lambda values: sp.Matrix(len(values), 1, values)
    replacements = {}
    for layer in range(len(sizes)):
        replacements[s.vector("a", layer)] = column([u.a for u in units(layer)])
        if layer == 0:
            continue
        layer_units = units(layer)
        activation = net.group_by_name[f"layer {layer}"].activation
        replacements[s.vector("z", layer)] = column([u.z for u in layer_units])
        replacements[s.vector("delta", layer)] = column([u.delta for u in layer_units])
        if net.biases:
            replacements[s.vector("b", layer)] = column([layer_bias(layer - 1, j) for j in range(sizes[layer])])
        if activation.normalized:
            replacements[s.matrix("jacobian", layer)] = sp.Matrix(
                [[sp.diff(net.activation_of(row), col.z) for col in layer_units] for row in layer_units])
        else:
            in_a = activation.derivative_in_activation
            replacements[s.vector("slope", layer)] = column([
                in_a.subs(A, u.a) if in_a is not None else activation.derivative.subs(Z, u.z) for u in layer_units])
        weights = sp.Matrix([[layer_weight(layer - 1, i, j) for j in range(sizes[layer])]
                             for i in range(sizes[layer - 1])])
        replacements[s.matrix("W", layer)] = weights if rows_are_sources else weights.T
    last = len(sizes) - 1
    replacements[s.vector("error", last)] = column([derivation.output_errors[u.name] for u in units(last)])
    return sp.Matrix(expression.xreplace(replacements).doit())
