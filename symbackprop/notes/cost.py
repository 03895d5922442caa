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

import sympy as sp

from ..derivation import g
from ..functions import Z
from .worked import by_layer, number


def cost(notes) -> dict:
    """Parameter count, operations of each pass and their ratios, for ``notes`` (a ``_Notes``)."""
    net, derivation = notes.network, notes.derivation
    forward = sum(sp.count_ops(definition) for _, definition in net.definitions)
    backward = (sum(sp.count_ops(formula) for _, formula in derivation.backward_definitions())
                + sum(sp.count_ops(formula) for formula in derivation.gradients.values()))
    parameters = len(net.parameters)
    differences = (parameters + 1) * forward
    return {"parameters": parameters, "forward": forward, "backward": backward,
            "ratio": _ratio(backward / forward), "differences": differences,
            "saving": _ratio(differences / (forward + backward))}


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
