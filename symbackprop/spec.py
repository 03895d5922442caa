"""From what a user writes to a validated network with example values.

Three ways in, one result (:class:`Spec`): a TOML file (:func:`load`), a compact string
such as ``2-3-1`` with flags (:func:`compact`), or a dict with the TOML's structure
(:func:`from_dict`).  Every problem is a :class:`SpecError` naming the field and what
would be right.  Expression text is read by :mod:`symbackprop.parsing`, never ``eval``.
"""
from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy as sp

from . import files
from .errors import SpecError
from .functions import ACTIVATIONS, LOSSES, A, Activation, Loss, T, Z, custom_activation, custom_loss
from .functions import activation as named_activation
from .functions import loss as named_loss
from .limits import EXPRESSION_SECONDS, MAX_PARAMETERS, MAX_SPEC_BYTES, time_limit
from .convolution import ConvNetwork, convolutional, weight_symbols
from .network import (Network, check_units, check_layers, graph, is_shared_bias, layer_bias, layer_weight, layered,
                      shared_bias)
from .numerics import Values, random_values
from .recurrent import UnrolledNetwork, recurrent_weight, unrolled

#: The built-in default: 2 inputs, 3 sigmoid hidden units, 1 linear output, half SSE.
DEFAULT = {"network": {"layers": [2, 3, 1], "activation": ["sigmoid", "identity"],
                       "loss": "half_sse", "bias": True}}
DEFAULT_LEARNING_RATE = 0.5

_NETWORK_FIELDS = {"layers", "activation", "loss", "bias", "inputs", "outputs", "units", "recurrent", "steps",
                   "input_shape", "layer"}
_UNIT_FIELDS = {"name", "inputs", "weights", "activation", "bias", "group"}
_EXAMPLE_FIELDS = {"inputs", "targets", "learning_rate", "weights", "biases", "recurrent_weights", "parameters",
                   "seed", "fixed"}


@dataclass(frozen=True)
class Spec:
    """A network and the numbers of its worked example."""

    network: Network
    values: Values
    learning_rate: float
    #: the parameters the worked example's step leaves as they are (Mazur keeps his biases fixed)
    fixed: frozenset = frozenset()
    #: the mapping it was read from (the TOML's structure), so that it can be written out again
    data: Mapping = field(default_factory=dict, compare=False, repr=False)


def load(path: str | Path, *, max_parameters: int = MAX_PARAMETERS) -> Spec:
    """Read a TOML spec file (at most :data:`limits.MAX_SPEC_BYTES` of it)."""
    data = files.read_toml(path, MAX_SPEC_BYTES, "spec file",
                           "give the path of a TOML file, or a compact form such as 2-3-1")
    return from_dict(data, max_parameters=max_parameters)


def compact(form: str, activation: str | None = None, loss: str | None = None, bias: bool = True,
            seed: int = 0, steps: int | None = None, *, max_parameters: int = MAX_PARAMETERS) -> Spec:
    """A layered network from ``"2-3-1"``, ``activation="sigmoid,identity"`` and a loss name;
    with ``steps``, an Elman network unrolled over that many time steps.

    Without ``activation``, the default network's: sigmoid hidden layers, an identity output.
    """
    try:
        sizes = [int(part) for part in form.split("-")]
    except ValueError:
        raise SpecError("layers", f"{form!r} is neither a spec file nor a compact form such as 2-3-1") from None
    names = ([name.strip() for name in activation.split(",")] if activation is not None
             else ["sigmoid"] * (len(sizes) - 2) + ["identity"])
    network = {"layers": sizes, "activation": names[0] if len(names) == 1 else names,
               "loss": (loss or "half_sse").strip(), "bias": bias}
    if steps is not None:
        network.update(recurrent=True, steps=steps)
    return from_dict({"network": network, "example": {"seed": seed}}, max_parameters=max_parameters)


def from_dict(data: Mapping, *, max_parameters: int = MAX_PARAMETERS) -> Spec:
    """A spec from a mapping with the structure of the TOML file; networks of more than
    ``max_parameters`` weights and biases are refused before any work on them."""
    _known(_table(data, "spec"), {"network", "example"}, "")
    if "network" not in data:
        raise SpecError("network", "missing; a spec needs a [network] table")
    net_data = _table(data["network"], "network")
    _known(net_data, _NETWORK_FIELDS, "network")
    return _with_example(_network(net_data, max_parameters), data.get("example", {}), data)


def with_example(spec: Spec, example: Mapping) -> Spec:
    """``spec``'s network with the numbers of another ``[example]`` table (each student of an
    exercise set has their own): the network is built once, not once per student."""
    return _with_example(spec.network, example, {**spec.data, "example": example})


def _with_example(network: Network, example, data: Mapping) -> Spec:
    example = _table(example, "example")
    _known(example, _EXAMPLE_FIELDS, "example")
    return Spec(network, _values(network, example), _number(example.get("learning_rate", DEFAULT_LEARNING_RATE),
                                                                "example.learning_rate"),
                _fixed(network, example.get("fixed", [])), data)


def _table(value, field: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise SpecError(field, f"must be a table, not {type(value).__name__}")
    return value


def _known(table: Mapping, allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed fields: {', '.join(sorted(allowed))}"
            raise SpecError(f"{where}.{key}" if where else str(key), f"unknown field; {hint}")


def _network(data: Mapping, max_parameters: int) -> Network:
    if "input_shape" in data or "layer" in data:
        return _convolutional(data, max_parameters)
    if "units" in data:
        if "layers" in data:
            raise SpecError("network", "give either layers (a layered network) or units (a graph), not both")
        return _graph(data, max_parameters)
    if "layers" not in data:
        raise SpecError("network.layers", "missing; give layer sizes such as [2, 3, 1], or units for a graph")
    bias = data.get("bias", True)
    if not isinstance(bias, bool) and bias != "shared":
        raise SpecError("network.bias", f'must be true, false or "shared" (one bias per layer), not {bias!r}')
    layers = data["layers"]
    check_layers(layers, bias, max_parameters)  # before the expressions, which take SymPy's time
    loss = _loss(data.get("loss", "half_sse"))
    activations = data.get("activation", "sigmoid")
    if isinstance(activations, list):
        activations = [_activation(a, f"network.activation[{n}]") for n, a in enumerate(activations)]
    else:
        activations = _activation(activations, "network.activation")
    recurrent = data.get("recurrent", False)
    if not isinstance(recurrent, bool):
        raise SpecError("network.recurrent", f"must be true or false, not {recurrent!r}")
    if recurrent:
        if bias == "shared":
            raise SpecError("network.bias", '"shared" applies to a feed-forward network; '
                                            "use true or false with recurrent = true")
        if "steps" not in data:
            raise SpecError("network.steps", "missing; a recurrent network needs steps = T, the sequence length")
        return unrolled(layers, activations, loss, bias, data["steps"], max_parameters=max_parameters)
    if "steps" in data:
        raise SpecError("network.steps", "applies to a recurrent network only; add recurrent = true or remove steps")
    return layered(layers, activations, loss, bias, max_parameters=max_parameters)


def _convolutional(data: Mapping, max_parameters: int) -> ConvNetwork:
    """[network] with input_shape and [[network.layer]] tables (conv, max_pool, avg_pool, dense)."""
    for key in ("layers", "units", "activation", "recurrent", "steps", "inputs", "outputs"):
        if key in data:
            raise SpecError(f"network.{key}", "does not apply to a convolutional network (input_shape and "
                                              "[[network.layer]]); give each layer its own activation")
    for key in ("input_shape", "layer"):
        if key not in data:
            raise SpecError(f"network.{key}", "missing; a convolutional network needs input_shape = [channels, "
                                              "height, width] and [[network.layer]] tables")
    bias = data.get("bias", True)
    if not isinstance(bias, bool):
        raise SpecError("network.bias", f"must be true or false, not {bias!r}")
    layers = data["layer"]
    if not isinstance(layers, list) or not layers:
        raise SpecError("network.layer", "must be a non-empty array of layer tables ([[network.layer]])")
    read = []
    for n, layer in enumerate(layers):
        layer = dict(_table(layer, f"network.layer[{n}]"))
        if "activation" in layer:
            layer["activation"] = _activation(layer["activation"], f"network.layer[{n}].activation")
        read.append(layer)
    return convolutional(data["input_shape"], read, _loss(data.get("loss", "half_sse")), bias,
                         max_parameters=max_parameters)


def _graph(data: Mapping, max_parameters: int) -> Network:
    units = data["units"]
    if not isinstance(units, list) or not units:
        raise SpecError("network.units", "must be a non-empty array of unit tables ([[network.units]])")
    for key in ("inputs", "outputs"):
        if not isinstance(data.get(key), list) or not all(isinstance(x, str) for x in data[key]):
            raise SpecError(f"network.{key}", "must be a list of unit names")
    for n, unit in enumerate(units):
        _known(_table(unit, f"network.units[{n}]"), _UNIT_FIELDS, f"network.units[{n}]")
    check_units(units, max_parameters)
    loss = _loss(data.get("loss", "half_sse"))
    specs = []
    for n, unit in enumerate(units):
        field = f"network.units[{n}]"
        if not isinstance(unit.get("name"), str):
            raise SpecError(f"{field}.name", "missing; every unit needs a name")
        specs.append({**unit, "activation": _activation(unit.get("activation", "sigmoid"), f"{field}.activation")})
    return graph(data["inputs"], specs, data["outputs"], loss, max_parameters=max_parameters)


def _activation(value, field: str) -> Activation:
    """A name, a table {name = ..., parameter = ...}, or an expression in z."""
    if isinstance(value, Mapping):
        name = value.get("name")
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise SpecError(f"{field}.name", f"{name!r} is not one of {', '.join(ACTIVATIONS)}")
        parameters = {k: v for k, v in value.items() if k != "name"}
        allowed = set(inspect.signature(ACTIVATIONS[name][0]).parameters)
        for key, v in parameters.items():
            if key not in allowed:
                raise SpecError(f"{field}.{key}", f"{name} takes {', '.join(sorted(allowed)) or 'no parameters'}")
            _number(v, f"{field}.{key}")
        activation = named_activation(name, **parameters)
    elif not isinstance(value, str):
        raise SpecError(field, f"must be a name or an expression in z, not {value!r}")
    elif value.strip() in ACTIVATIONS:
        activation = named_activation(value.strip())
    else:
        expression = _expression(value, {"z": Z}, field, f"an activation name ({', '.join(ACTIVATIONS)}) "
                                                          "or an expression in z")
        if Z not in expression.free_symbols:
            raise SpecError(field, f"{value!r} is not a function of z")
        activation = custom_activation(expression, value)
    _computable(activation, field)
    return activation


def _loss(value) -> Loss:
    if not isinstance(value, str):
        raise SpecError("network.loss", f"must be a name or an expression in a and t, not {value!r}")
    if value.strip() in LOSSES:
        return named_loss(value.strip())
    expression = _expression(value, {"a": A, "t": T}, "network.loss",
                             f"a loss name ({', '.join(LOSSES)}) or an expression in a and t")
    if A not in expression.free_symbols:
        raise SpecError("network.loss", f"{value!r} is not a function of the output a")
    loss = custom_loss(expression, value)
    _computable(loss, "network.loss")
    return loss


def _expression(text: str, symbols: dict, field: str, expected: str) -> sp.Expr:
    from .parsing import ExpressionError, parse_expression  # lark only for a spec that writes an expression

    try:
        with time_limit(EXPRESSION_SECONDS):
            return parse_expression(text, symbols)
    except ExpressionError as error:
        raise SpecError(field, f"{text[:80]!r} is not {expected}: {error}") from None
    except TimeoutError:
        raise SpecError(field, f"{text[:80]!r} took SymPy more than {EXPRESSION_SECONDS:g} s to build; "
                               "write a simpler expression") from None


def _computable(function: Activation | Loss, field: str) -> None:
    """Refuse what has no numeric value: division by zero (softplus with beta = 0), a Dirac
    delta in the derivative (heaviside or sign inside a product), numbers beyond float64."""
    try:
        with time_limit(EXPRESSION_SECONDS):
            parts = (("it", function.expression), ("its derivative", function.derivative))
    except TimeoutError:
        raise SpecError(field, f"its derivative took SymPy more than {EXPRESSION_SECONDS:g} s; "
                               "write a simpler expression") from None
    for which, expression in parts:
        if expression.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise SpecError(field, f"{which} is undefined ({function.name} divides by zero or similar); "
                                   "change its parameters")
        if expression.has(sp.DiracDelta):
            raise SpecError(field, f"{which} has a Dirac delta (from heaviside or sign), which has no number to "
                                   "compute; write it with smooth functions (an activation can also be step)")
        for number in expression.atoms(sp.Number):
            if not math.isfinite(_float(number)):
                raise SpecError(field, f"{which} has the number {sp.Float(number, 3)}, beyond float64 "
                                       "(1.8e308); scale it down")


def _float(number: sp.Number) -> float:
    try:
        return float(number)
    except OverflowError:
        return math.inf


def _number(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field, f"must be a number, not {value!r}")
    if not math.isfinite(value):
        raise SpecError(field, f"must be a finite number, not {value}")
    return float(value)


def _matrix(value, shape: tuple[int, ...], field: str) -> np.ndarray:
    """A nested list of finite numbers of exactly ``shape``, with a message naming the entry."""
    if not shape:
        return np.asarray(_number(value, field))
    if not isinstance(value, list) or len(value) != shape[0]:
        got = f"{len(value)} entries" if isinstance(value, list) else repr(value)
        raise SpecError(field, f"must be a list of {shape[0]} entries, got {got}")
    return np.array([_matrix(v, shape[1:], f"{field}[{n}]") for n, v in enumerate(value)])


def _samples(value, width: int, field: str) -> np.ndarray:
    """One sample [..] or a mini-batch [[..], [..]]."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return _matrix(value, (len(value), width), field)
    return _matrix(value, (width,), field)[None, :]


def _depth(value) -> int:
    """How deeply ``value`` nests lists, following the first entries."""
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth


def _rows(network: Network, value, width: int, field: str) -> np.ndarray:
    """Samples of a feed-forward network; for a recurrent one, a sequence (one row per
    time step) or a batch of sequences, each flattened to the unrolled network's units;
    for a convolutional one, inputs nested [channel][row][column] or a list of those."""
    if isinstance(network, ConvNetwork) and field == "example.inputs":
        shape = network.input_shape
        if _depth(value) > len(shape):
            return _matrix(value, (len(value), *shape), field).reshape(len(value), -1)
        return _matrix(value, shape, field).reshape(1, -1)
    if not isinstance(network, UnrolledNetwork):
        return _samples(value, width, field)
    per_step = width // network.steps
    if isinstance(value, list) and value and all(isinstance(v, list) and v and isinstance(v[0], list) for v in value):
        return _matrix(value, (len(value), network.steps, per_step), field).reshape(len(value), -1)
    return _matrix(value, (network.steps, per_step), field).reshape(1, -1)


def _values(network: Network, example: Mapping) -> Values:
    seed = example.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError("example.seed", f"must be a non-negative integer, not {seed!r}")
    drawn = random_values(network, samples=1, seed=seed)
    inputs = (_rows(network, example["inputs"], len(network.inputs), "example.inputs")
              if "inputs" in example else drawn.inputs)
    targets = (_rows(network, example["targets"], len(network.outputs), "example.targets")
               if "targets" in example else drawn.targets[:1].repeat(len(inputs), axis=0))
    if len(inputs) != len(targets):
        raise SpecError("example.targets", f"has {len(targets)} samples for {len(inputs)} input samples")
    if network.loss.targets_sum_to_one and not np.allclose(targets.reshape(len(targets), -1, network.loss_outputs)
                                                              .sum(axis=2), 1):
        raise SpecError("example.targets", f"{network.loss.name} expects probability targets: each sample's "
                                           "targets (each step's, through time) must sum to 1 (one-hot, e.g. "
                                           "[0, 1, 0])")
    parameters = dict(drawn.parameters)
    parameters.update(_layered_parameters(network, example))
    named = _table(example.get("parameters", {}), "example.parameters")
    by_name = {p.name: p for p in network.parameters}
    for name, v in named.items():
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            raise SpecError(f"example.parameters.{name}", "is not a parameter of the network"
                            + (f"; did you mean {close[0]!r}?" if close else ""))
        parameters[by_name[name]] = float(_number(v, f"example.parameters.{name}"))
    return Values(inputs, targets, parameters)


def _layered_parameters(network: Network, example: Mapping) -> dict:
    if isinstance(network, ConvNetwork):
        return _conv_parameters(network, example)
    out = {}
    sizes = network.sizes if isinstance(network, UnrolledNetwork) else network.layers
    if ("weights" in example or "biases" in example) and sizes is None:
        raise SpecError("example.weights", "nested weights/biases need a layered network; "
                                           "name parameters in [example.parameters] instead")
    if "recurrent_weights" in example:
        out.update(_recurrent_parameters(network, example["recurrent_weights"]))
    if "weights" in example:
        if not isinstance(example["weights"], list) or len(example["weights"]) != len(sizes) - 1:
            raise SpecError("example.weights", f"must hold {len(sizes) - 1} matrices weights[l][i][j] "
                                               f"for layers {sizes}")
        for layer, matrix in enumerate(example["weights"]):
            values = _matrix(matrix, (sizes[layer], sizes[layer + 1]), f"example.weights[{layer}]")
            for (i, j), v in np.ndenumerate(values):
                out[layer_weight(layer, i, j)] = float(v)
    if "biases" in example:
        if not any(u.bias is not None for u in network.computing_units):
            raise SpecError("example.biases", "the network has bias = false; remove biases or set bias = true")
        shared = any(is_shared_bias(b) for b in network.biases)
        if not isinstance(example["biases"], list) or len(example["biases"]) != len(sizes) - 1:
            each = "numbers biases[l], one per layer (bias = \"shared\")" if shared else "lists biases[l][j]"
            raise SpecError("example.biases", f"must hold {len(sizes) - 1} {each} for layers {list(sizes)}")
        if shared:
            out.update({shared_bias(layer): _number(v, f"example.biases[{layer}]")
                        for layer, v in enumerate(example["biases"])})
            return out
        for layer, row in enumerate(example["biases"]):
            for j, v in enumerate(_matrix(row, (sizes[layer + 1],), f"example.biases[{layer}]")):
                out[layer_bias(layer, j)] = float(v)
    return out


def _fixed(network: Network, names) -> frozenset:
    """The parameters named in ``[example] fixed``: "biases", "weights", or parameter names."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SpecError("example.fixed", f'must be a list such as ["biases"] or of parameter names, not {names!r}')
    groups = {"biases": network.biases, "weights": network.weights}
    by_name = {p.name: p for p in network.parameters}
    fixed = set()
    for name in names:
        if name in groups:
            fixed.update(groups[name])
        elif name in by_name:
            fixed.add(by_name[name])
        else:
            close = difflib.get_close_matches(name, [*groups, *by_name], n=1)
            raise SpecError("example.fixed", f'{name!r} is neither "biases", "weights" nor a parameter of the network'
                                              + (f"; did you mean {close[0]!r}?" if close else ""))
    return frozenset(fixed)


def _recurrent_parameters(network: Network, matrices) -> dict:
    """recurrent_weights[h][i][j]: hidden layer h's unit i at t-1 -> unit j at t."""
    if not isinstance(network, UnrolledNetwork):
        raise SpecError("example.recurrent_weights", "applies to a recurrent network only; add recurrent = true "
                                                     "and steps = T to [network], or remove recurrent_weights")
    sizes, hidden = network.sizes, network.hidden_layers
    if not isinstance(matrices, list) or len(matrices) != len(hidden):
        raise SpecError("example.recurrent_weights", f"must hold {len(hidden)} square matrices "
                                                     f"recurrent_weights[h][i][j], one per hidden layer of {list(sizes)}")
    out = {}
    for h, matrix in enumerate(matrices):
        values = _matrix(matrix, (sizes[h + 1], sizes[h + 1]), f"example.recurrent_weights[{h}]")
        out.update({recurrent_weight(h, i, j): float(v) for (i, j), v in np.ndenumerate(values)})
    return out


def _conv_parameters(network: ConvNetwork, example: Mapping) -> dict:
    """weights[l]: K[out][in][kh][kw] of a conv layer (K[out][in][k] in 1-D), W[i][j] of a dense
    one (i over the layer below flattened in C order), [] of a pooling layer; biases[l][o]."""
    if "recurrent_weights" in example:
        raise SpecError("example.recurrent_weights", "applies to a recurrent network only; remove it")
    layers, out = network.stack, {}
    for key in ("weights", "biases"):
        if key in example and (not isinstance(example[key], list) or len(example[key]) != len(layers)):
            raise SpecError(f"example.{key}", f"must hold {len(layers)} entries, one per layer "
                                              f"({', '.join(layer.kind for layer in layers)}); [] for a pooling layer")
    if "biases" in example and not network.biases:
        raise SpecError("example.biases", "the network has bias = false; remove biases or set bias = true")
    for l, layer in enumerate(layers):
        symbols = weight_symbols(l, layer)
        what = {"conv": "K[out][in]" + ("[kh][kw]" if len(layer.kernel) == 2 else "[k]"),
                "dense": "W[i][j] (i over the layer below flattened: " + "x".join(map(str, layer.shape_in)) + ")"}
        if "weights" in example:
            field = f"example.weights[{l}]"
            if symbols is None:
                if example["weights"][l] != []:
                    raise SpecError(field, f"must be [] for a {layer.kind} layer, which has no weights")
            else:
                try:
                    values = _matrix(example["weights"][l], symbols.shape, field)
                except SpecError as error:
                    raise SpecError(error.field, f"{error.message}: the {layer.kind} layer's weights are "
                                                 f"{what[layer.kind]} of shape "
                                                 f"{'x'.join(map(str, symbols.shape))}") from None
                out.update({symbols[index]: float(v) for index, v in np.ndenumerate(values)})
        if "biases" in example:
            field = f"example.biases[{l}]"
            row = _matrix(example["biases"][l], (layer.biases,), field)
            out.update({layer_bias(l, o): float(v) for o, v in enumerate(row)})
    return out
