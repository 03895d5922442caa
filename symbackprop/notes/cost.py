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
        shapes: dict[sp.Expr, int] = {}
        forward = sum(_count(definition, shapes) for _, definition in derivation.network.definitions)
        backward = (sum(_count(formula, shapes) for _, formula in derivation.backward_definitions())
                    + sum(_count(formula, shapes) for formula in derivation.gradients.values()))
        _COUNTED[derivation] = forward, backward
    return _COUNTED[derivation]


def _count(expression: sp.Expr, shapes: dict) -> int:
    """``sympy.count_ops`` of ``expression``, once per shape: the count does not depend on the names
    of the symbols, and a layer's thousands of gradients (delta_j a_i) share one shape, whose
    count took 80% of ``derive 784-100-10``."""
    symbols = expression.free_symbols
    if len(symbols) > len(_PLACEHOLDERS):  # a net input's long sum: one of its kind, counted as it is
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
                      "unit": notes.tex(unit.a), "slope": notes.tex(sp.Derivative(g(unit.z), unit.z)), "z": number(evaluation.z[unit.name][0]),
                      "a": number(evaluation.a[unit.name][0]), "factor": number(smallest), "value": smallest,
                      "at_zero": _at_zero(activation)})
    return found


def _at_zero(activation) -> str | None:
    """g'(0), the slope at the middle of the activation, to compare with; None where it has none."""
    try:
        value = float(activation.derivative.subs(Z, 0))
    except (TypeError, ValueError):
        return None
    return number(value) if math.isfinite(value) else None
