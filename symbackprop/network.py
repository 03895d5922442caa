"""Networks as SymPy expressions: a DAG of units, each z = b + sum w a, a = g(z).

Every later stage reads the network from here and never reaches back: the derivation
differentiates these definitions, numerics evaluates them, rendering prints them.
Layered networks are one builder (:func:`layered`); :func:`graph` takes any DAG, with
skip connections, several outputs and tied weights (one parameter on several edges).
"""
from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from .errors import SpecError
from .functions import ACTIVATIONS, LOSSES, Activation, Loss, Z
from .functions import activation as named_activation
from .functions import loss as named_loss
from .limits import MAX_PARAMETERS, MAX_UNITS

_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,30}")


@dataclass(frozen=True)
class Edge:
    """Unit ``source`` feeds the unit that owns this edge, through parameter ``weight``."""

    source: str
    weight: sp.Symbol


@dataclass(frozen=True)
class Unit:
    """One unit. Inputs have no group and no edges; their activation is the input x."""

    name: str
    inputs: tuple[Edge, ...] = ()
    bias: sp.Symbol | None = None
    group: str | None = None
    position: tuple[int, int] | None = None  # (layer, index) of a layered network
    step: int | None = None  # the time step (0-based) of a recurrent network's unrolled copy
    #: "max" or "avg" for a pooling unit (convolution.py): its z is the maximum or the mean of its
    #: inputs, and each edge carries dz/da of its source instead of a parameter
    pool: str | None = None

    @property
    def is_input(self) -> bool:
        return self.group is None

    @cached_property
    def z(self) -> sp.Symbol:
        return sp.Symbol(f"z{self.name}", real=True)

    @cached_property
    def a(self) -> sp.Symbol:
        return sp.Symbol(f"{'x' if self.is_input else 'a'}{self.name}", real=True)

    @cached_property
    def delta(self) -> sp.Symbol:
        return sp.Symbol(f"delta{self.name}", real=True)


@dataclass(frozen=True)
class Group:
    """Units sharing one activation; a normalized activation (softmax) spans its group."""

    name: str
    activation: Activation
    units: tuple[str, ...]


#: The networks alive in this process, oldest first (weak references): a notebook's display of a
#: bare formula such as ``d.deltas["[0][1]"]`` finds here the network its symbols belong to.
BUILT: list[weakref.ref] = []


@dataclass(frozen=True)
class Network:
    """A validated DAG of units with a loss over its output units.

    Units are in topological order, inputs first. ``layers`` holds the layer sizes when
    the network was built by :func:`layered` (the matrix form and the spec's nested
    ``weights[l][i][j]`` need them), and is None for a general graph.
    """

    units: tuple[Unit, ...]
    groups: tuple[Group, ...]
    outputs: tuple[str, ...]
    loss: Loss
    layers: tuple[int, ...] | None = None

    def __post_init__(self):
        _validate(self)
        BUILT[:] = [*(ref for ref in BUILT if ref() is not None), weakref.ref(self)]

    def __getitem__(self, name: str) -> Unit:
        return self.unit_by_name[name]

    @cached_property
    def unit_by_name(self) -> dict[str, Unit]:
        return {u.name: u for u in self.units}

    @cached_property
    def group_by_name(self) -> dict[str, Group]:
        return {g.name: g for g in self.groups}

    @cached_property
    def inputs(self) -> tuple[Unit, ...]:
        return tuple(u for u in self.units if u.is_input)

    @cached_property
    def computing_units(self) -> tuple[Unit, ...]:
        return tuple(u for u in self.units if not u.is_input)

    @cached_property
    def successors(self) -> dict[str, tuple[tuple[str, sp.Symbol], ...]]:
        """unit -> ((successor, weight of the edge), ...): the units it feeds."""
        fed = {u.name: [] for u in self.units}
        for unit in self.computing_units:
            for edge in unit.inputs:
                fed[edge.source].append((unit.name, edge.weight))
        return {name: tuple(v) for name, v in fed.items()}

    @cached_property
    def targets(self) -> dict[str, sp.Symbol]:
        """output unit -> its target symbol t."""
        return {name: sp.Symbol(f"t[{n}]", real=True) for n, name in enumerate(self.outputs)}

    @cached_property
    def weights(self) -> tuple[sp.Symbol, ...]:
        """Weight parameters in order of first use; a tied weight appears once."""
        return tuple(dict.fromkeys(e.weight for u in self.computing_units if u.pool is None for e in u.inputs))

    @cached_property
    def biases(self) -> tuple[sp.Symbol, ...]:
        """Bias parameters in order of first use; a tied bias (one per layer of an unrolled
        recurrent net) appears once."""
        return tuple(dict.fromkeys(u.bias for u in self.computing_units if u.bias is not None))

    @cached_property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        return self.weights + self.biases

    def pre_activation(self, unit: Unit) -> sp.Expr:
        """z = b + sum_i w_i a_i, in the network's symbols (max_i a_i for a max pooling unit)."""
        if unit.pool == "max":
            return sp.Max(*(self[edge.source].a for edge in unit.inputs))
        terms = [edge.weight * self[edge.source].a for edge in unit.inputs]
        return sp.Add(*([unit.bias] if unit.bias is not None else []), *terms)

    def activation_of(self, unit: Unit) -> sp.Expr:
        """a = g(z) in the group's z symbols (a sum over the group for softmax)."""
        group = self.group_by_name[unit.group]
        g = group.activation
        if not g.normalized:
            return g.expression.subs(Z, unit.z)
        return g.expression.subs(Z, unit.z) / sp.Add(*(g.expression.subs(Z, self[m].z) for m in group.units))

    @property
    def loss_outputs(self) -> int:
        """K of a loss that averages over the outputs (mse): the outputs of one sample."""
        return len(self.outputs)

    @property
    def target_groups(self) -> list[list[sp.Symbol]]:
        """The targets of one sample's outputs in groups of :attr:`loss_outputs` (an unrolled network's
        steps): probability targets sum to one within each group."""
        targets, size = list(self.targets.values()), self.loss_outputs
        return [targets[n:n + size] for n in range(0, len(targets), size)]

    @cached_property
    def loss_expression(self) -> sp.Expr:
        """E = sum over outputs of the loss, in the output activation and target symbols."""
        count = sp.Integer(self.loss_outputs)
        return sp.Add(*(self.loss.per_output(self[k].a, self.targets[k], count) for k in self.outputs))

    @cached_property
    def definitions(self) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
        """(symbol, definition) for every z and a, in evaluation order: the forward pass."""
        out = []
        for unit in self.computing_units:
            out.append((unit.z, self.pre_activation(unit)))
            group = self.group_by_name[unit.group]
            if group.units[-1] == unit.name or not group.activation.normalized:
                members = group.units if group.activation.normalized else (unit.name,)
                out.extend((self[m].a, self.activation_of(self[m])) for m in members)
        return tuple(out)

    def expanded(self, expression: sp.Expr, point: Mapping[sp.Symbol, sp.Expr] | None = None) -> sp.Expr:
        """``expression`` with every z and a replaced by its definition down to the inputs.

        Only for the brute-force witness and on request: the size grows exponentially
        with depth, which is why the derivation keeps z, a and delta as symbols.  With a
        ``point`` (numbers for some inputs, targets or parameters) the substitution is made
        as the definitions are expanded, so what remains stays small.
        """
        full: dict[sp.Symbol, sp.Expr] = dict(point or {})
        for symbol, definition in self.definitions:
            full[symbol] = definition.xreplace(full)
        return expression.xreplace(full)


def _validate(net: Network) -> None:
    seen: set[str] = set()
    groups = {g.name: g for g in net.groups}
    if not net.units:
        raise SpecError("network", "has no units")
    for unit in net.units:
        if unit.name in seen:
            raise SpecError(f"unit {unit.name!r}", "the name is used twice; give every unit its own name")
        for edge in unit.inputs:
            if edge.source not in seen:
                raise SpecError(f"unit {unit.name!r}.inputs",
                                f"{edge.source!r} is not a unit defined before it; list units so "
                                "that every unit comes after the units it reads (no cycles)")
        if not unit.is_input:
            if unit.group not in groups or unit.name not in groups[unit.group].units:
                raise SpecError(f"unit {unit.name!r}", f"its group {unit.group!r} does not list it")
            if not unit.inputs and unit.bias is None:
                raise SpecError(f"unit {unit.name!r}.inputs", "a unit needs at least one input or a bias")
        seen.add(unit.name)
    if not net.outputs:
        raise SpecError("network.outputs", "name at least one output unit")
    fed = {e.source for u in net.units for e in u.inputs}
    for name in net.outputs:
        if name not in seen or net.unit_by_name[name].is_input:
            raise SpecError("network.outputs", f"{name!r} is not a computing unit of the network")
        if name in fed:
            raise SpecError("network.outputs", f"output {name!r} feeds another unit; outputs must be sinks")
    for group in net.groups:
        if len({name in net.outputs for name in group.units}) > 1:
            raise SpecError(f"group {group.name!r}", "mixes output and hidden units; give them separate groups")
    parameters = [e.weight for u in net.units for e in u.inputs] + [u.bias for u in net.units if u.bias is not None]
    values = {u.z for u in net.units} | {u.a for u in net.units} | {u.delta for u in net.units}
    if values & set(parameters):
        raise SpecError("parameters", "a parameter name collides with a unit's z, a or delta; rename it")
    if set(net.biases) & set(net.weights):
        raise SpecError("parameters", "a parameter is both a bias and a weight; give the bias its own name")


def _unit_name(layer: int, index: int) -> str:
    return f"[{layer}][{index}]"


def layer_weight(layer: int, source: int, dest: int) -> sp.Symbol:
    """w[l][i][j] of a layered network: unit i of layer l to unit j of layer l+1 (0 = inputs)."""
    return sp.Symbol(layer_weight_name(layer, source, dest), real=True)


def layer_weight_name(layer: int, source: int, dest: int) -> str:
    """The name of :func:`layer_weight`: looking a weight up by name is cheaper than making its Symbol."""
    return f"w[{layer}][{source}][{dest}]"


def layer_bias(layer: int, unit: int) -> sp.Symbol:
    """b[l][j] of a layered network: unit j of layer l+1."""
    return sp.Symbol(f"b[{layer}][{unit}]", real=True)


def shared_bias(layer: int) -> sp.Symbol:
    """b[l]: the one bias of every unit of layer l+1 when biases are shared per layer (Mazur's b1, b2)."""
    return sp.Symbol(f"b[{layer}]", real=True)


def is_shared_bias(parameter: sp.Symbol) -> bool:
    """Whether ``parameter`` is a layer's shared bias b[l] (one per layer, not one per unit)."""
    return re.fullmatch(r"b\[\d+\]", parameter.name) is not None


def check_layers(sizes, bias: bool | str = True, max_parameters: int = MAX_PARAMETERS) -> None:
    """Raise SpecError unless ``sizes`` are layer sizes of a network within the caps, counted
    before anything is built (``[2, 99999999999999999, 1]`` is refused at once)."""
    if (not isinstance(sizes, (list, tuple)) or len(sizes) < 2
            or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in sizes)):
        raise SpecError("network.layers", f"{_short(sizes)} is not a list of at least two positive integers "
                                          "(input layer first), e.g. [2, 3, 1]")
    biases = len(sizes) - 1 if bias == "shared" else sum(sizes[1:]) if bias else 0
    check_size(sum(a * b for a, b in zip(sizes, sizes[1:])) + biases, sum(sizes[1:]), max_parameters)


def check_units(units, max_parameters: int = MAX_PARAMETERS) -> None:
    """Raise SpecError unless the unit descriptions of :func:`graph` have fields of the right
    types and the network stays within the caps, before anything is built."""
    if not isinstance(units, (list, tuple)):
        raise SpecError("network.units", "must be a list of unit descriptions")
    for spec in units:
        if not isinstance(spec, Mapping):
            raise SpecError("network.units", f"{_short(spec)} is not a unit description (a table)")
        name = spec.get("name")
        for key, kind in (("inputs", "a list of unit names"), ("weights", "a list of parameter names")):
            value = spec.get(key, [])
            if not isinstance(value, (list, tuple)) or not all(isinstance(x, str) for x in value):
                raise SpecError(f"unit {name!r}.{key}", f"must be {kind}, not {_short(value)}")
        if not isinstance(spec.get("group", ""), str):
            raise SpecError(f"unit {name!r}.group", f"must be a group name, not {_short(spec['group'])}")
        if not isinstance(spec.get("bias", True), (bool, str)):
            raise SpecError(f"unit {name!r}.bias", f"must be true, false or a bias name, not {_short(spec['bias'])}")
    check_size(sum(len(spec.get("inputs", [])) + bool(spec.get("bias", True)) for spec in units), len(units),
                max_parameters)


def check_size(parameters: int, units: int, max_parameters: int, max_units: int = MAX_UNITS) -> None:
    """Raise SpecError when a network of this many parameters and units is over the caps."""
    if parameters > max_parameters:
        raise SpecError("network", f"has {parameters:,} parameters, more than the limit of {max_parameters:,}; "
                                   "give a smaller network, or raise the limit (--max-parameters, max_parameters=) "
                                   "if you have the time and memory")
    if units > max_units:
        raise SpecError("network", f"has {units:,} computing units, more than the limit of {max_units:,}")


def _short(value) -> str:
    """``repr(value)``, cut to a length that fits in one line of an error message."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}... ({len(text):,} characters)"


def layered(sizes: Sequence[int], activation: str | Activation | Sequence[str | Activation] = "sigmoid",
            loss: str | Loss = "half_sse", bias: bool | str = True, *,
            max_parameters: int = MAX_PARAMETERS) -> Network:
    """A fully connected feed-forward network; ``sizes`` starts with the input layer.

    Symbols follow the spec's 0-based nesting: inputs x[i], then for layer l (0 = first
    non-input layer) z[l][j], a[l][j], delta[l][j], biases b[l][j] and weights
    w[l][i][j] from unit i of the layer below to unit j.  ``bias = "shared"`` gives every
    unit of layer l the one bias b[l], as Mazur (2015) does.  Networks of more than
    ``max_parameters`` weights and biases are refused (SpecError) before they are built.
    """
    check_layers(sizes, bias, max_parameters)
    sizes = list(sizes)
    activations = _per_layer(activation, len(sizes) - 1)
    units = [Unit(f"[{i}]", position=(0, i)) for i in range(sizes[0])]
    groups = []
    below = [u.name for u in units]
    for layer in range(1, len(sizes)):
        names = [_unit_name(layer - 1, j) for j in range(sizes[layer])]
        for j, name in enumerate(names):
            edges = tuple(Edge(src, layer_weight(layer - 1, i, j)) for i, src in enumerate(below))
            own = shared_bias(layer - 1) if bias == "shared" else layer_bias(layer - 1, j)
            units.append(Unit(name, edges, own if bias else None,
                              group=f"layer {layer}", position=(layer, j)))
        groups.append(Group(f"layer {layer}", activations[layer - 1], tuple(names)))
        below = names
    return Network(tuple(units), tuple(groups), tuple(below), _as_loss(loss), tuple(sizes))


def graph(inputs: Sequence[str], units: Sequence[Mapping], outputs: Sequence[str],
          loss: str | Loss = "half_sse", *, max_parameters: int = MAX_PARAMETERS) -> Network:
    """A network from a unit-level description, in topological order.

    Each unit is a mapping with ``name``, ``inputs`` (unit names), optional ``weights``
    (parameter names, one per input; the same name on several edges ties them),
    ``activation`` (name or :class:`Activation`), ``bias`` (bool or a parameter name)
    and ``group`` (units of one group share an activation; softmax normalizes over it).
    More than ``max_parameters`` edges and biases are refused before anything is built.
    """
    check_units(units, max_parameters)
    for key, names in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(names, (list, tuple)) or not all(isinstance(x, str) for x in names):
            raise SpecError(f"network.{key}", f"must be a list of unit names, not {_short(names)}")
    for name in [*inputs, *(spec.get("name") for spec in units)]:
        if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
            raise SpecError("network.units", f"unit name {name!r} must be letters and digits, starting with a letter")
    built = [Unit(name) for name in inputs]
    members: dict[str, list[str]] = {}
    group_activation: dict[str, Activation] = {}
    for spec in units:
        name = spec["name"]
        sources = list(spec.get("inputs", []))
        weight_names = list(spec.get("weights") or [])
        bias = spec.get("bias", True)
        for parameter in weight_names + ([bias] if isinstance(bias, str) else []):
            if not _PLAIN_NAME.fullmatch(parameter):
                raise SpecError(f"unit {name!r}.weights", f"parameter name {parameter!r} must be letters and "
                                                          "digits, starting with a letter")
        weight_names = weight_names or [f"w[{src}->{name}]" for src in sources]
        if len(weight_names) != len(sources):
            raise SpecError(f"unit {name!r}.weights", f"has {len(weight_names)} names for {len(sources)} inputs")
        bias_symbol = sp.Symbol(bias if isinstance(bias, str) else f"b[{name}]", real=True) if bias else None
        group = spec.get("group", name)
        g = _as_activation(spec.get("activation", "sigmoid"), f"unit {name!r}.activation")
        if group_activation.setdefault(group, g) != g:
            raise SpecError(f"unit {name!r}.activation", f"differs from the other units of group {group!r}")
        members.setdefault(group, []).append(name)
        edges = tuple(Edge(src, sp.Symbol(w, real=True)) for src, w in zip(sources, weight_names))
        built.append(Unit(name, edges, bias_symbol, group=group))
    groups = tuple(Group(name, group_activation[name], tuple(names)) for name, names in members.items())
    return Network(tuple(built), groups, tuple(outputs), _as_loss(loss))


def _per_layer(activation, count: int) -> list[Activation]:
    if isinstance(activation, (str, Activation)):
        activation = [activation] * count
    activation = list(activation)
    if len(activation) != count:
        raise SpecError("network.activation", f"has {len(activation)} entries for {count} non-input layers; "
                                              "give one name for all layers or one per non-input layer")
    return [_as_activation(a, f"network.activation[{n}]") for n, a in enumerate(activation)]


def _as_activation(value, field: str) -> Activation:
    if isinstance(value, Activation):
        return value
    if value not in ACTIVATIONS:
        raise SpecError(field, f"unknown activation {value!r}; use one of {', '.join(ACTIVATIONS)} "
                               "or an expression in z")
    return named_activation(value)


def _as_loss(value) -> Loss:
    if isinstance(value, Loss):
        return value
    if value not in LOSSES:
        raise SpecError("network.loss", f"unknown loss {value!r}; use one of {', '.join(LOSSES)} "
                                        "or an expression in a and t")
    return named_loss(value)
