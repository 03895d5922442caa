"""The worked example: numbers for one sample or a mini-batch, and one gradient step.

Kept apart from :mod:`numerics` because this is what users read (the JSON of
``example`` and the tables of the notes), nested the way the spec nests its values.
"""
from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace

import sympy as sp

from .derivation import Derivation, derive
from .convolution import ConvNetwork
from .matrix import evaluator
from .errors import SpecError
from .network import Network, layer_bias, layer_weight_name, shared_bias
from .numerics import Evaluation, Values
from .recurrent import UnrolledNetwork


@dataclass(frozen=True)
class Example:
    """Values, learning rate and the evaluation at them."""

    network: Network
    values: Values
    learning_rate: float
    evaluation: Evaluation
    fixed: frozenset = frozenset()  # parameters the step leaves as they are

    def as_dict(self) -> dict:
        """The JSON of ``python -m symbackprop example``: nested as in the spec."""
        net, ev = self.network, self.evaluation
        per_sample = lambda table, inputs=None: [
            _layers(net, {name: float(v[s]) for name, v in table.items()}, inputs[s] if inputs is not None else None)
            for s in range(len(self.values.inputs))]
        single = len(self.values.inputs) == 1
        unwrap = (lambda x: x[0]) if single else (lambda x: x)
        return {"loss": ev.loss,
                "z": unwrap(per_sample(ev.z)),
                "a": unwrap(per_sample(ev.a, self.values.inputs)),
                "delta": unwrap(per_sample(ev.delta)),
                "grad": nested_parameters(net, ev.gradients),
                "updated": nested_parameters(net, ev.updated),
                "learning_rate": self.learning_rate}


def example(network: Network, values: Values, learning_rate: float = 0.5,
            derivation: Derivation | None = None, fixed: Collection[sp.Symbol] = ()) -> Example:
    """Forward pass, loss, deltas, gradients (mean over a mini-batch) and one SGD step,
    all weights updated simultaneously from the same gradients; the ``fixed`` parameters
    keep their values (Mazur's biases)."""
    numbers = evaluator(derivation or derive(network))
    evaluation = numbers.evaluate(values, learning_rate)
    if fixed:
        evaluation = replace(evaluation, updated={p: values.parameters[p] if p in fixed else v
                                                  for p, v in evaluation.updated.items()})
    return Example(network, values, learning_rate, evaluation, frozenset(fixed))


def check_finite(result: Example) -> None:
    """Raise SpecError when a number of the worked example overflows float64, naming the
    first ones and the inputs: notes or verdicts built on inf teach nothing."""
    _, bad = nulled(result.as_dict())
    if bad:
        inputs = [float(x) for x in result.values.inputs[0]]
        raise SpecError("example", f"the worked example is not finite ({', '.join(bad[:3])}"
                                   f"{', ...' if len(bad) > 3 else ''} overflow float64 at inputs {inputs}); "
                                   "use smaller inputs, weights or learning rate, or an activation and loss "
                                   "that stay finite")


def nulled(data: dict) -> tuple[dict, list[str]]:
    """``data`` with every number that is not finite replaced by None, and the names of those
    numbers (RFC 8259 JSON has no NaN or Infinity)."""
    bad = []

    def replaced(value, where):
        if isinstance(value, dict):
            return {k: replaced(v, f"{where}.{k}" if where else k) for k, v in value.items()}
        if isinstance(value, list):
            return [replaced(v, f"{where}[{n}]") for n, v in enumerate(value)]
        if isinstance(value, float) and not math.isfinite(value):
            bad.append(where)
            return None
        return value

    return replaced(data, ""), bad


def _layers(net: Network, by_unit: dict[str, float], inputs=None):
    """Per-layer lists for a layered network (inputs first when given), a list of them over
    the time steps for a recurrent one, else a name map."""
    if isinstance(net, UnrolledNetwork):
        return net.per_step(by_unit, inputs)
    if isinstance(net, ConvNetwork):
        return net.nested_values(by_unit, inputs)
    if net.layers is None:
        named = dict(by_unit)
        if inputs is not None:
            named = {**{u.name: float(x) for u, x in zip(net.inputs, inputs)}, **named}
        return named
    layers = [[by_unit[u.name] for u in net.computing_units if u.position[0] == layer]
              for layer in range(1, len(net.layers))]
    return ([[float(x) for x in inputs]] if inputs is not None else []) + layers


def nested_parameters(net: Network, table: dict) -> dict:
    """``{parameter: number}`` nested as the spec nests the network's parameters."""
    if isinstance(net, (UnrolledNetwork, ConvNetwork)):
        return net.nested_parameters(table)
    if net.layers is None:
        return {"parameters": {str(p): table[p] for p in net.parameters}}
    sizes, by_name = net.layers, {p.name: value for p, value in table.items()}
    weights = [[[by_name[layer_weight_name(layer, i, j)] for j in range(sizes[layer + 1])]
                for i in range(sizes[layer])] for layer in range(len(sizes) - 1)]
    out = {"weights": weights}
    if net.biases:
        out["biases"] = [table[shared_bias(layer)] if shared_bias(layer) in table
                         else [table[layer_bias(layer, j)] for j in range(sizes[layer + 1])]
                         for layer in range(len(sizes) - 1)]
    return out
