"""What backpropagation buys, for the notes' own network (Nielsen 2015, ch. 2, "In what sense is
backpropagation a fast algorithm?"): its cost against finite differences, and what the
worked example shows about saturation.

The operation counts are SymPy's (:func:`sympy.count_ops`) on the network's own formulas:
the forward pass (every z and a), the backward pass (every delta and every gradient).
Finite differences need a forward pass per parameter, plus one at the point itself.  The
saturation factors are g'(z) of each unit at the worked example's first sample, from the
activation's own derivative.
"""
from __future__ import annotations

import math
import weakref

import sympy as sp

from ..derivation import g
from ..functions import Z
from .worked import by_layer, number


def cost(notes) -> dict:
    """Parameter count, operations of each pass and their ratios, for ``notes`` (a ``_Notes``)."""
    net = notes.network
    forward, backward = _operations(notes.derivation)
    parameters = len(net.parameters)
    differences = (parameters + 1) * forward
    return {"parameters": parameters, "forward": forward, "backward": backward,
            "ratio": _ratio(backward / forward), "differences": differences,
            "saving": _ratio(differences / (forward + backward))}


#: The passes' operation counts of each derivation: the Markdown and the LaTeX notes of one
#: ``derive`` count the same formulas.
_COUNTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _operations(derivation) -> tuple[int, int]:
    """Operations of the forward pass (every z and a) and of the backward pass (every delta and gradient)."""
    if derivation not in _COUNTED:
        shapes: dict = {}
        forward = _forward(derivation.network, shapes)
        backward = (sum(_count(formula, shapes) for _, formula in derivation.backward_definitions())
                    + sum(_count(formula, shapes) for formula in derivation.gradients.values()))
        _COUNTED[derivation] = forward, backward
    return _COUNTED[derivation]


def _forward(net, shapes: dict) -> int:
    """Operations of every unit's z and a.  The units of a layer whose net input is a plain sum of
    distinct weights times distinct sources (plus a bias) share one count, taken once on the
    first one's own definition: building all 110 net inputs of 784-100-10 took longer than
    counting them."""
    total = 0
    for unit in net.computing_units:
        plain = (unit.pool is None and all(edge.weight.is_Symbol for edge in unit.inputs)
                 and len({edge.source for edge in unit.inputs}) == len(unit.inputs))
        if plain:
            key = ("net input", unit.group, len(unit.inputs), unit.bias is not None)
            if key not in shapes:
                shapes[key] = _count(net.pre_activation(unit), shapes)
            total += shapes[key]
        else:
            total += _count(net.pre_activation(unit), shapes)
        total += _count(net.activation_of(unit), shapes)
    return total


def _count(expression: sp.Expr, shapes: dict) -> int:
    """``sympy.count_ops`` of ``expression``, once per shape: the count does not depend on the names
    of the symbols, and counting each of 784-100-10's 79,510 gradients (delta_j a_i, one shape)
    took most of its ``derive``.  A long sum with no term subtracted (a net input) costs its terms
    and one addition between each two; SymPy's count of the whole sum was as slow again."""
    if expression.is_Mul and all(factor.is_Symbol for factor in expression.args):  # a gradient delta_j a_i
        key = ("product of symbols", len(expression.args))
        if key not in shapes:
            shapes[key] = sp.count_ops(expression)
        return shapes[key]
    symbols = expression.free_symbols
    if len(symbols) > len(_PLACEHOLDERS):  # a net input's long sum: one of its kind
        if expression.is_Add and not any(term.could_extract_minus_sign() for term in expression.args):
            return sum(_count(term, shapes) for term in expression.args) + len(expression.args) - 1
        return sp.count_ops(expression)
    shape = expression.xreplace(dict(zip(sorted(symbols, key=sp.default_sort_key), _PLACEHOLDERS)))
    if shape not in shapes:
        shapes[shape] = sp.count_ops(expression)
    return shapes[shape]


#: Stand-ins for the symbols of a small formula when its shape is looked up.
_PLACEHOLDERS = sp.symbols("s:8")


def _ratio(value: float) -> str:
    """A ratio as a reader compares it: 2.3, 41, 1,200."""
    return f"{value:.2g}" if value < 10 else f"{round(value):,}"


def saturation(notes) -> list[dict]:
    """Per layer with an activation whose slope varies (sigmoid, tanh; not a linear layer nor
    softmax): the unit of the worked example's first sample with the smallest factor g'(z),
    and that factor."""
    if notes.example is None:
        return []
    net, evaluation = notes.network, notes.example.evaluation
    found = []
    for layer in by_layer(net):
        group = net.group_by_name[layer[0].group]
        activation = group.activation
        if activation.normalized or not activation.derivative.has(Z):
            continue
        slope = sp.lambdify(Z, activation.derivative, "numpy")
        factors = [(abs(float(slope(float(evaluation.z[u.name][0])))), u) for u in layer]
        factors = [(f, u) for f, u in factors if math.isfinite(f)]
        if not factors:
            continue
        smallest, unit = min(factors, key=lambda pair: pair[0])
        if found and found[-1]["group"] == group.name:  # one row per layer (a recurrent layer's steps together)
            if smallest >= found[-1]["value"]:
                continue
            found.pop()
        found.append({"group": group.name, "layer": notes.layer_number(group), "activation": activation.name,
                      "unit": notes.tex(unit.a), "slope": notes.tex(sp.Derivative(g(unit.z), unit.z)),
                      "z": number(evaluation.z[unit.name][0]), "a": number(evaluation.a[unit.name][0]),
                      "factor": number(smallest), "value": smallest,
                      "at_zero": _at_zero(activation)})
    return found


def _at_zero(activation) -> str | None:
    """g'(0), the slope at the middle of the activation, to compare with; None where it has none."""
    try:
        value = float(activation.derivative.subs(Z, 0))
    except (TypeError, ValueError):
        return None
    return number(value) if math.isfinite(value) else None
