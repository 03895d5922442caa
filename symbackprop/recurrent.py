"""Elman networks unrolled through time: a DAG with tied weights, nothing more.

Each hidden layer feeds itself at the next time step through its recurrent weights
r[h][i][j] (unit i of hidden layer h at t-1 to unit j at t); the state before the first
step is zero, so the first step has no recurrent edges.  Unrolled over T steps, the
network is an ordinary :class:`~symbackprop.network.Network` whose every weight is used
once per step: the derivation's tied-weight sum is backpropagation through time
(Werbos 1990; Haykin 2009, ch. 15), and every later stage works on it unchanged.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from .errors import SpecError
from .functions import Activation, Loss
from .limits import MAX_PARAMETERS
from .network import Edge, Group, Network, Unit, check_layers, check_size, layer_bias, layer_weight, layered

#: The longest sequence a spec may unroll: the unrolled network has T copies of every
#: unit, and the notes print a table row per step.
MAX_STEPS = 50


def recurrent_weight(hidden: int, source: int, dest: int) -> sp.Symbol:
    """r[h][i][j]: unit i of hidden layer h (0 = first non-input layer) at t-1 to unit j at t."""
    return sp.Symbol(f"r[{hidden}][{source}][{dest}]", real=True)


def unit_name(step: int, layer: int, index: int) -> str:
    """Layer 0 is the input layer here: "[i](t)" for an input, "[l][j](t)" above it (l = layer - 1)."""
    return f"[{index}]({step})" if layer == 0 else f"[{layer - 1}][{index}]({step})"


@dataclass(frozen=True)
class UnrolledNetwork(Network):
    """The unrolled network with its layer ``sizes`` (input first) and ``steps`` T.

    Outputs and targets run over (step, unit); the loss is summed over the steps, so a
    loss that averages (mse) averages over one step's outputs.
    """

    sizes: tuple[int, ...] = ()
    steps: int = 1

    @property
    def loss_outputs(self) -> int:
        return self.sizes[-1]

    @cached_property
    def targets(self) -> dict[str, sp.Symbol]:
        """output unit -> t[t][k], target k at step t."""
        last = len(self.sizes) - 1
        return {unit_name(step, last, k): sp.Symbol(f"t[{step}][{k}]", real=True)
                for step in range(self.steps) for k in range(self.sizes[-1])}

    @property
    def hidden_layers(self) -> range:
        """h of every recurrent layer (the hidden ones), as in recurrent_weights[h]."""
        return range(len(self.sizes) - 2)

    def unit_at(self, step: int, layer: int, index: int) -> Unit:
        """Unit ``index`` of ``layer`` (0 = inputs) at ``step``."""
        return self[unit_name(step, layer, index)]

    @cached_property
    def weights(self) -> tuple[sp.Symbol, ...]:
        """Every weight, the recurrent ones included even over a single step (where no edge
        uses them and their gradient is 0), so the parameters do not depend on T."""
        used = Network.weights.func(self)
        return used + tuple(r for r in self.recurrent_weights if r not in used)

    @cached_property
    def recurrent_weights(self) -> tuple[sp.Symbol, ...]:
        return tuple(recurrent_weight(h, i, j) for h in self.hidden_layers
                     for i in range(self.sizes[h + 1]) for j in range(self.sizes[h + 1]))

    def per_step(self, by_unit: dict[str, float], inputs=None) -> list:
        """A list over t of the layered nesting [layer][j] (inputs first when given, as a
        flat row of all steps' inputs)."""
        first = 0 if inputs is not None else 1
        width = self.sizes[0]
        return [[[float(inputs[step * width + j]) if layer == 0 else by_unit[unit_name(step, layer, j)]
                  for j in range(self.sizes[layer])] for layer in range(first, len(self.sizes))]
                for step in range(self.steps)]

    def nested_parameters(self, table: dict) -> dict:
        """weights[l][i][j], biases[l][j] and recurrent_weights[h][i][j], as the spec nests them."""
        sizes = self.sizes
        out = {"weights": [[[table[layer_weight(layer, i, j)] for j in range(sizes[layer + 1])]
                            for i in range(sizes[layer])] for layer in range(len(sizes) - 1)]}
        if self.biases:
            out["biases"] = [[table[layer_bias(layer, j)] for j in range(sizes[layer + 1])]
                             for layer in range(len(sizes) - 1)]
        out["recurrent_weights"] = [[[table[recurrent_weight(h, i, j)] for j in range(sizes[h + 1])]
                                     for i in range(sizes[h + 1])] for h in self.hidden_layers]
        return out


def unrolled(sizes: Sequence[int], activation: str | Activation | Sequence[str | Activation] = "tanh",
             loss: str | Loss = "half_sse", bias: bool = True, steps: int = 2, *,
             max_parameters: int = MAX_PARAMETERS) -> UnrolledNetwork:
    """An Elman network over ``steps`` time steps: the layered network ``sizes`` at every
    step, the same weights at every step, and each hidden layer fed its own activations
    of the step before through r[h][i][j]."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise SpecError("network.steps", f"must be a whole number of time steps from 1 to {MAX_STEPS}, "
                                         f"not {steps!r}")
    check_layers(sizes, bias, max_parameters)
    recurrent = sum(n * n for n in sizes[1:-1])
    check_size(sum(a * b for a, b in zip(sizes, sizes[1:])) + (sum(sizes[1:]) if bias else 0) + recurrent,
               sum(sizes[1:]) * steps, max_parameters)  # the caps hold for the unrolled network
    template = layered(sizes, activation, loss, bias)  # validates activations and loss
    sizes = template.layers
    if len(sizes) < 3:
        raise SpecError("network.layers", f"{list(sizes)} has no hidden layer to recur; a recurrent network "
                                          "needs at least one, e.g. [2, 3, 1]")
    units, members = [], {}
    for step in range(steps):
        units += [Unit(unit_name(step, 0, i), position=(0, i), step=step) for i in range(sizes[0])]
        for layer in range(1, len(sizes)):
            activation_of_layer = template.groups[layer - 1].activation
            group = f"layer {layer}" + (f" step {step}" if activation_of_layer.normalized else "")
            for j in range(sizes[layer]):
                edges = [Edge(unit_name(step, layer - 1, i), layer_weight(layer - 1, i, j))
                         for i in range(sizes[layer - 1])]
                if layer < len(sizes) - 1 and step > 0:
                    edges += [Edge(unit_name(step - 1, layer, m), recurrent_weight(layer - 1, m, j))
                              for m in range(sizes[layer])]
                name = unit_name(step, layer, j)
                units.append(Unit(name, tuple(edges), layer_bias(layer - 1, j) if bias else None, group=group,
                                  position=(layer, j), step=step))
                members.setdefault((group, activation_of_layer), []).append(name)
    groups = tuple(Group(name, g, tuple(names)) for (name, g), names in members.items())
    last = len(sizes) - 1
    outputs = tuple(unit_name(step, last, k) for step in range(steps) for k in range(sizes[-1]))
    return UnrolledNetwork(tuple(units), groups, outputs, template.loss, None, tuple(sizes), steps)
