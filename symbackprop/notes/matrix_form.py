"""The matrix form of backpropagation for a layered network, as SymPy matrix expressions,
and the printer that writes it in a notation.

Layer by layer: z = W a + b, delta^L = grad_a E (Hadamard) g'(z^L), delta^l =
(W^{l+1} delta^{l+1}) (Hadamard) g'(z^l) (transposed for the other orientation),
dE/db = delta, dE/dW = delta a^T.  The orientation of W follows the notation: with
weights written w_ij from i to j, W has a row per source; with w_ji, a row per
destination.  Where the notation makes the bias the weight w_j0 from a unit fixed at +1
(Haykin, Bishop), W holds it as a column (or row), the layer's input gets the +1 in front
(a-hat), and the backward pass uses W-bar, W without it.  Where the notation's delta is
-dE/dz (Haykin), the output delta and the gradients carry the minus sign.  :func:`explicit`
writes any of these expressions out entry by entry in the network's own symbols, which is
how the tests hold them against the derivation.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import HadamardProduct, MatrixSymbol, Transpose

from ..derivation import Derivation
from ..functions import A, Z
from ..network import Network, layer_bias, layer_weight
from .notation import Notation
from .printing import SAMPLE_E, NotationPrinter


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

    def __init__(self, sizes, rows_are_sources: bool, augmented: bool = False):
        self.sizes = sizes
        self.rows_are_sources = rows_are_sources
        self.augmented = augmented  # W holds the bias weights; ``ahat`` is a with a 1 in front

    def vector(self, name: str, layer: int) -> MatrixSymbol:
        return MatrixSymbol(f"{name}[{layer}]", self.sizes[layer] + (name == "ahat"), 1)

    def matrix(self, name: str, layer: int) -> MatrixSymbol:
        if name == "jacobian":
            return MatrixSymbol(f"jacobian[{layer}]", self.sizes[layer], self.sizes[layer])
        shape = (self.sizes[layer - 1] + (self.augmented and name != "Wbar"), self.sizes[layer])
        return MatrixSymbol(f"{name}[{layer}]", *(shape if self.rows_are_sources else shape[::-1]))


def matrix_form(network: Network, rows_are_sources: bool, delta_sign: int = 1,
                augmented: bool = False) -> list[MatrixStep]:
    """The forward and backward pass of a layered ``network`` in matrix form: delta is
    ``delta_sign`` dE/dz, and with ``augmented`` the biases are a column (row) of W."""
    s = Symbols(network.layers, rows_are_sources, augmented)
    last = len(network.layers) - 1
    has_bias = bool(network.biases) and not augmented
    inputs = "ahat" if augmented else "a"
    backward = "Wbar" if augmented else "W"

    def applied(weights, vector):  # W a with W oriented as the notation writes it
        return (Transpose(weights) if rows_are_sources else weights) * vector

    def back(weights, vector):
        return (weights if rows_are_sources else Transpose(weights)) * vector

    steps = []
    for layer in range(1, last + 1):
        z = applied(s.matrix("W", layer), s.vector(inputs, layer - 1))
        z = z + s.vector("b", layer) if has_bias else z
        steps.append(MatrixStep(s.vector("z", layer), z, "definition", layer))
    for layer in range(last, 0, -1):
        normalized = network.group_by_name[f"layer {layer}"].activation.normalized
        if layer == last:  # delta^L = sign dE/dz^L
            error = s.vector("error", layer)
            sign = delta_sign
        else:  # dE/da^l = W delta^{l+1} / sign, so delta^l = sign dE/dz^l has no sign of its own
            error = back(s.matrix(backward, layer + 1), s.vector("delta", layer + 1))
            sign = 1
        if normalized:
            delta = Transpose(s.matrix("jacobian", layer)) * error
        else:
            delta = HadamardProduct(error, s.vector("slope", layer))
        delta = -delta if sign == -1 else delta
        steps.append(MatrixStep(s.vector("delta", layer), delta, "local_gradient", layer,
                                "delta_output" if layer == last else "delta_hidden"))
        own = s.vector("delta", layer) if delta_sign == 1 else -s.vector("delta", layer)
        if has_bias:
            steps.append(MatrixStep(s.vector("db", layer), own, "gradient", layer, "gradient_bias"))
        outer = (s.vector(inputs, layer - 1) * Transpose(own) if rows_are_sources
                 else own * Transpose(s.vector(inputs, layer - 1)))
        steps.append(MatrixStep(s.matrix("dW", layer), outer, "gradient", layer, "gradient_weight"))
    return steps


def explicit(expression: sp.MatrixExpr, derivation: Derivation, rows_are_sources: bool, delta_sign: int = 1,
             augmented: bool = False) -> sp.Matrix:
    """``expression`` as an explicit matrix in the network's symbols (the witness that the
    matrix form says what the derivation says, entry by entry); delta stands for
    ``delta_sign`` times the derivation's delta."""
    net = derivation.network
    sizes = net.layers
    s = Symbols(sizes, rows_are_sources, augmented)
    units = lambda layer: [u for u in net.units if u.position and u.position[0] == layer]
    column = lambda values: sp.Matrix(len(values), 1, values)
    replacements = {}
    for layer in range(len(sizes)):
        replacements[s.vector("a", layer)] = column([u.a for u in units(layer)])
        replacements[s.vector("ahat", layer)] = column([1] + [u.a for u in units(layer)])
        if layer == 0:
            continue
        layer_units = units(layer)
        activation = net.group_by_name[f"layer {layer}"].activation
        replacements[s.vector("z", layer)] = column([u.z for u in layer_units])
        replacements[s.vector("delta", layer)] = column([delta_sign * u.delta for u in layer_units])
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
        replacements[s.matrix("Wbar", layer)] = weights if rows_are_sources else weights.T
        if augmented:
            weights = sp.Matrix([[layer_bias(layer - 1, j) for j in range(sizes[layer])]]).col_join(weights)
        replacements[s.matrix("W", layer)] = weights if rows_are_sources else weights.T
    last = len(sizes) - 1
    replacements[s.vector("error", last)] = column([derivation.output_errors[u.name] for u in units(last)])
    return sp.Matrix(expression.xreplace(replacements).doit())


class MatrixPrinter(NotationPrinter):
    """Matrix symbols W[l], delta[l], ... as the notation writes them: W^{(l)}, delta^{(l)};
    g' of each layer under its own name where one letter stands for different activations
    (``functions``: layer number -> (letter, activation name)); of one ``sample``'s error E_n in
    mini-batch notes, where E is the mean and dE/db = delta would be false."""

    def __init__(self, notation: Notation, network: Network, functions: dict[str, tuple[str, str]],
                 sample: bool = False):
        super().__init__(notation, network)
        self.error = self._print(SAMPLE_E) if sample else notation.symbol("error")
        activations = lambda letter: {name for f, name in functions.values() if f == letter}
        self.functions = {layer: rf"{{{f}^{{{self._mark(int(layer) - notation.first_layer + 1)}}}}}"
                          if len(activations(f)) > 1 else f for layer, (f, _) in functions.items()}

    def _mark(self, layer: int) -> str:
        number = layer - 1 + self.notation.first_layer
        return f"({number})" if self.notation.layer_style == "parenthesized" else str(number)

    def functions_named(self) -> list[dict]:
        """The layers whose g' the matrix form names by layer (their activations differ)."""
        return [{"layer": layer, "function": f} for layer, f in self.functions.items() if "^" in f]

    @staticmethod
    def weight_matrices(steps: list[MatrixStep]) -> list[MatrixSymbol]:
        found = {e for s in steps for e in sp.preorder_traversal(s.rhs)
                 if isinstance(e, MatrixSymbol) and e.name.startswith("W[")}
        return sorted(found, key=lambda e: e.name)

    def _print_MatrixSymbol(self, expr):
        n = self.notation
        name, layer = expr.name[:-1].split("[")
        layer = int(layer)
        mark = self._mark(layer)
        bold = lambda role: rf"\boldsymbol{{{n.symbol(role)}}}^{{{mark}}}"
        last = layer == len(self.network.layers) - 1
        if name in ("a", "ahat") and layer == 0:
            vector = rf"\boldsymbol{{{n.symbol('input')}}}"
        else:
            vector = bold("output" if last else "hidden")
        augmented = (rf"\hat{{{vector}}}" if layer == 0
                     else rf"\hat{{\boldsymbol{{{n.symbol('hidden')}}}}}^{{{mark}}}")
        function = self.functions[str(layer - 1 + n.first_layer)] if name == "slope" else ""
        return {"W": rf"{n.symbol('weight_matrix')}^{{{mark}}}",
                "Wbar": rf"\bar{{{n.symbol('weight_matrix')}}}^{{{mark}}}",
                "z": bold("pre_activation"), "b": bold("bias"), "delta": bold("delta"),
                "a": vector, "ahat": augmented,
                "slope": rf"{function}'(\boldsymbol{{{n.symbol('pre_activation')}}}^{{{mark}}})",
                "error": rf"\nabla_{{\boldsymbol{{{n.symbol('output')}}}}} {self.error}",
                "jacobian": rf"\frac{{\partial \boldsymbol{{{n.symbol('output')}}}}}"
                            rf"{{\partial \boldsymbol{{{n.symbol('pre_activation')}}}^{{{mark}}}}}",
                "db": rf"\frac{{\partial {self.error}}}"
                      rf"{{\partial \boldsymbol{{{n.symbol('bias')}}}^{{{mark}}}}}",
                "dW": rf"\frac{{\partial {self.error}}}{{\partial "
                      rf"{n.symbol('weight_matrix')}^{{{mark}}}}}"}[name]

    def _print_Transpose(self, expr):
        inner = self._print(expr.arg)
        return rf"\left({inner}\right)^{{T}}" if ("^" in inner or r"\frac" in inner) else f"{inner}^{{T}}"

    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(arg, 50) for arg in expr.args)
