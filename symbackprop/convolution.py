"""Convolutional networks: a DAG of units with tied kernel weights and pooling units, nothing more.

A convolution is a cross-correlation, as in PyTorch and most courses (Goodfellow et al. 2016,
ch. 9; Dumoulin and Visin 2016): output unit (o, i, j) of a conv layer with stride s and
padding p is::

    z[o,i,j] = b[o] + sum_c sum_u sum_v K[o,c,u,v] x[c, i*s+u-p, j*s+v-p]

one edge per kernel entry that lands inside the input (the padding's zeros add nothing), every
output position using the same kernel weights K[l][o][c][u][v].  A max pooling unit's
pre-activation is the maximum of its window, an average pooling unit's their mean; a dense layer
reads the layer below flattened in C order (channel, row, column).  Built so, the network is an
ordinary :class:`~symbackprop.network.Network`: the derivation's sum over a tied weight's uses is
the kernel gradient, and every later stage works on it unchanged.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from .errors import SpecError
from .functions import Activation, Loss
from .functions import activation as named_activation
from .limits import MAX_CONV_UNITS, MAX_PARAMETERS
from .network import Edge, Group, Network, Unit, _as_activation, _as_loss, check_size, layer_bias, layer_weight

KINDS = ("conv", "max_pool", "avg_pool", "dense")
#: Units of one pooling window at most: a max pooling unit's slopes have |window|^2 factors.
MAX_WINDOW = 64
#: The fields a layer of each kind may have (``kind`` aside).
FIELDS = {"conv": {"channels", "kernel", "stride", "padding", "activation"},
          "max_pool": {"size"}, "avg_pool": {"size"}, "dense": {"units", "activation"}}


def kernel_weight(layer: int, out: int, channel: int, *offsets: int) -> sp.Symbol:
    """K[l][o][c][u][v] (K[l][o][c][u] in 1-D): kernel entry (u, v) from input channel c to
    output channel o of layer l (0 = the first layer above the input)."""
    return sp.Symbol(f"K[{layer}][{out}][{channel}]" + "".join(f"[{n}]" for n in offsets), real=True)


def _name(prefix: tuple[int, ...], index: tuple[int, ...]) -> str:
    return "".join(f"[{n}]" for n in (*prefix, *index))


@dataclass(frozen=True)
class Layer:
    """One layer of a convolutional network with the shapes it reads and writes:
    ``shape_in`` and ``shape_out`` are (channels, *spatial), (units,) for a dense layer."""

    kind: str
    shape_in: tuple[int, ...]
    shape_out: tuple[int, ...]
    activation: Activation
    kernel: tuple[int, ...] = ()  # a conv layer's kernel, a pooling layer's window
    stride: int = 1
    padding: int = 0

    @property
    def parameter_count(self) -> int:
        """Weights and biases (with ``bias``, counted by :meth:`biases`)."""
        if self.kind == "conv":
            return self.shape_out[0] * self.shape_in[0] * math.prod(self.kernel)
        if self.kind == "dense":
            return math.prod(self.shape_in) * self.shape_out[0]
        return 0

    @property
    def biases(self) -> int:
        return self.shape_out[0] if self.kind in ("conv", "dense") else 0


@dataclass(frozen=True)
class ConvNetwork(Network):
    """The network with its ``input_shape`` (channels, *spatial) and its ``stack`` of layers."""

    input_shape: tuple[int, ...] = ()
    stack: tuple[Layer, ...] = ()

    @cached_property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of the input and of every layer's output."""
        return (self.input_shape, *(layer.shape_out for layer in self.stack))

    @cached_property
    def weights(self) -> tuple[sp.Symbol, ...]:
        """Every kernel and dense weight in the order of the spec's nesting, layer by layer; a
        kernel entry that only ever meets padding (stride 2 past the border) has gradient 0."""
        return tuple(symbol for l, layer in enumerate(self.stack)
                     if (symbols := weight_symbols(l, layer)) is not None for symbol in symbols.ravel())

    def unit_at(self, layer: int, *index: int) -> Unit:
        """Unit ``index`` of ``layer`` (0 = the first layer above the input; -1 = the input)."""
        return self[_name((layer,), index) if layer >= 0 else f"[{np.ravel_multi_index(index, self.input_shape)}]"]

    def nested_values(self, by_unit: Mapping[str, float], inputs=None) -> list:
        """Each layer's values nested as its shape ([channel][row][column]), the inputs first
        when given (a flat row in C order)."""
        layers = [np.asarray(inputs, dtype=float).reshape(self.input_shape).tolist()] if inputs is not None else []
        for l, layer in enumerate(self.stack):
            layers.append(np.array([by_unit[_name((l,), index)] for index in np.ndindex(*layer.shape_out)])
                          .reshape(layer.shape_out).tolist())
        return layers

    def nested_parameters(self, table: Mapping[sp.Symbol, float]) -> dict:
        """weights[l] (K[out][in][kh][kw] of a conv layer, W[i][j] of a dense one, [] of a
        pooling layer) and biases[l], as the spec nests them."""
        weights, biases = [], []
        for l, layer in enumerate(self.stack):
            symbols = weight_symbols(l, layer)
            weights.append([] if symbols is None else np.vectorize(table.__getitem__, otypes=[float])(symbols).tolist())
            biases.append([table[layer_bias(l, o)] for o in range(layer.biases)] if self.biases else [])
        return {"weights": weights, **({"biases": biases} if self.biases else {})}


def weight_symbols(l: int, layer: Layer) -> np.ndarray | None:
    """The weight symbols of layer ``l`` as an object array nested as the spec's weights[l]."""
    if layer.kind == "conv":
        shape = (layer.shape_out[0], layer.shape_in[0], *layer.kernel)
        return np.array([kernel_weight(l, *index) for index in np.ndindex(*shape)], dtype=object).reshape(shape)
    if layer.kind == "dense":
        shape = (math.prod(layer.shape_in), layer.shape_out[0])
        return np.array([layer_weight(l, *index) for index in np.ndindex(*shape)], dtype=object).reshape(shape)
    return None


def _positive(value, field: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(field, f"must be a positive whole number ({what}), not {value!r}")
    return value


def _sizes(value, dimensions: int, field: str, what: str) -> tuple[int, ...]:
    """[k] in 1-D, [kh, kw] in 2-D."""
    example = "[3]" if dimensions == 1 else "[3, 3]"
    if (not isinstance(value, list) or len(value) != dimensions
            or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in value)):
        raise SpecError(field, f"must be {dimensions} positive whole number{'s' if dimensions > 1 else ''} "
                               f"({what} of a {dimensions}-D input), e.g. {example}, not {value!r}")
    return tuple(value)


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape)


def _layer(n: int, spec: Mapping, shape: tuple[int, ...]) -> Layer:
    """Layer ``n`` of the stack from its description, on input of ``shape``; a shape that does
    not fit is refused naming the layer and the sizes."""
    field = f"network.layer[{n}]"
    kind = spec.get("kind")
    if kind not in KINDS:
        raise SpecError(f"{field}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    for key in spec:
        if key != "kind" and key not in FIELDS[kind]:
            raise SpecError(f"{field}.{key}", f"does not apply to a {kind} layer, which takes "
                                              f"{', '.join(sorted(FIELDS[kind]))}")
    activation = _as_activation(spec.get("activation", "sigmoid"), f"{field}.activation")
    if kind == "dense":
        if n == 0:
            raise SpecError(f"{field}.kind", "a dense layer on the input is a layered network: start with a conv "
                                             "or pooling layer, or write layers = [inputs, ...] instead")
        units = _positive(spec.get("units"), f"{field}.units", "the number of units")
        return Layer(kind, shape, (units,), activation)
    if len(shape) == 1:
        raise SpecError(f"{field}.kind", f"a {kind} layer needs channels and positions, but layer {n - 1} is "
                                         "dense; put the dense layers last")
    spatial, dimensions = shape[1:], len(shape) - 1
    if kind == "conv":
        channels = _positive(spec.get("channels"), f"{field}.channels", "the output channels")
        kernel = _sizes(spec.get("kernel"), dimensions, f"{field}.kernel", "the kernel's size")
        stride = _positive(spec.get("stride", 1), f"{field}.stride", "the step between positions")
        padding = spec.get("padding", 0)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise SpecError(f"{field}.padding", f"must be a whole number of zeros on every side, not {padding!r}")
        padded = tuple(m + 2 * padding for m in spatial)
        if any(k > m for k, m in zip(kernel, padded)):
            raise SpecError(f"{field}.kernel", f"{_shape_text(kernel)} is larger than the padded input "
                                               f"{_shape_text(padded)} (input {_shape_text(spatial)}, padding "
                                               f"{padding}); use a smaller kernel or more padding")
        if any(padding >= k for k in kernel):
            raise SpecError(f"{field}.padding", f"{padding} leaves positions that see only zeros with the kernel "
                                                f"{_shape_text(kernel)}; use padding below every kernel size")
        out = tuple((m - k) // stride + 1 for m, k in zip(padded, kernel))
        return Layer(kind, shape, (channels, *out), activation, kernel, stride, padding)
    if "size" not in spec:
        raise SpecError(f"{field}.size", f"missing; give the pooling window, e.g. {[2] * dimensions}")
    size = _sizes(spec["size"], dimensions, f"{field}.size", "the pooling window")
    if math.prod(size) > MAX_WINDOW:
        raise SpecError(f"{field}.size", f"the window {_shape_text(size)} has more than {MAX_WINDOW} units; "
                                         "pool in several smaller steps")
    out = tuple(m // k for m, k in zip(spatial, size))
    if 0 in out:
        raise SpecError(f"{field}.size", f"the window {_shape_text(size)} leaves nothing of the "
                                         f"{_shape_text(spatial)} input; use a window at most that large")
    return Layer(kind, shape, (shape[0], *out), named_activation("identity"), size, size[0])


def stack(input_shape, layers: Sequence[Mapping]) -> tuple[tuple[int, ...], tuple[Layer, ...]]:
    """The input shape and the layers with their shapes, checked before anything is built."""
    if (not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (2, 3)
            or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in input_shape)):
        raise SpecError("network.input_shape", f"must be [channels, height, width] or [channels, length] of "
                                               f"positive whole numbers, e.g. [1, 5, 5], not {input_shape!r}")
    if not isinstance(layers, (list, tuple)) or not layers:
        raise SpecError("network.layer", "must be a non-empty array of layer tables ([[network.layer]])")
    shape, built = tuple(input_shape), []
    for n, spec in enumerate(layers):
        if not isinstance(spec, Mapping):
            raise SpecError(f"network.layer[{n}]", f"must be a table, not {type(spec).__name__}")
        built.append(_layer(n, spec, shape))
        shape = built[-1].shape_out
    return tuple(input_shape), tuple(built)


def convolutional(input_shape: Sequence[int], layers: Sequence[Mapping], loss: str | Loss = "half_sse",
                  bias: bool = True, *, max_parameters: int = MAX_PARAMETERS) -> ConvNetwork:
    """A convolutional network on inputs of ``input_shape`` ([channels, height, width], or
    [channels, length] in 1-D) with ``layers`` as the spec writes them: mappings with ``kind``
    (conv, max_pool, avg_pool, dense) and that kind's fields (channels, kernel, stride, padding,
    activation; size; units, activation).  Activations may be names or :class:`Activation`.
    More than ``max_parameters`` weights and biases are refused before anything is built."""
    input_shape, built = stack(input_shape, layers)
    check_size(sum(layer.parameter_count + (layer.biases if bias else 0) for layer in built),
               sum(math.prod(layer.shape_out) for layer in built), max_parameters, MAX_CONV_UNITS)
    if not any(layer.parameter_count for layer in built):
        raise SpecError("network.layer", "has no weights to learn (pooling layers only); add a conv or dense layer")
    # inputs x[n] by their place in C order: x[c][i] of a 1-D input would be the name of a dense unit a[l][j]
    units = [Unit(f"[{n}]") for n in range(math.prod(input_shape))]
    groups = []
    for l, layer in enumerate(built):
        group, names = f"layer {l + 1}", []
        for index in np.ndindex(*layer.shape_out):
            names.append(_name((l,), index))
            units.append(_unit(l, layer, index, names[-1], group, bias))
        groups.append(Group(group, layer.activation, tuple(names)))
    outputs = tuple(u.name for u in units[-math.prod(built[-1].shape_out):])
    return ConvNetwork(tuple(units), tuple(groups), outputs, _as_loss(loss), None, input_shape, built)


def _unit(l: int, layer: Layer, index: tuple[int, ...], name: str, group: str, bias: bool) -> Unit:
    """Output unit ``index`` of layer ``l``: its edges from the layer below by the index arithmetic."""
    def source_name(at: tuple[int, ...]) -> str:
        return _name((l - 1,), at) if l else f"[{np.ravel_multi_index(at, layer.shape_in)}]"

    if layer.kind == "dense":
        (j,) = index
        edges = tuple(Edge(source_name(source), layer_weight(l, i, j))
                      for i, source in enumerate(np.ndindex(*layer.shape_in)))
        return Unit(name, edges, layer_bias(l, j) if bias else None, group)
    out, *position = index
    if layer.kind == "conv":
        edges = []
        for c in range(layer.shape_in[0]):
            for offsets in itertools.product(*(range(k) for k in layer.kernel)):
                source = tuple(p * layer.stride + u - layer.padding for p, u in zip(position, offsets))
                if all(0 <= s < m for s, m in zip(source, layer.shape_in[1:])):
                    edges.append(Edge(source_name((c, *source)), kernel_weight(l, out, c, *offsets)))
        return Unit(name, tuple(edges), layer_bias(l, out) if bias else None, group)
    window = [source_name((out, *(p * k + u for p, k, u in zip(position, layer.kernel, offsets))))
              for offsets in itertools.product(*(range(k) for k in layer.kernel))]
    if layer.kind == "avg_pool":
        slopes = [sp.Rational(1, len(window))] * len(window)
    else:
        members = [sp.Symbol(f"{'x' if l == 0 else 'a'}{source}", real=True) for source in window]
        # built unevaluated: Heaviside's evaluation asks the assumptions, 4 ms a factor
        placed = dict(zip(_MEMBERS, members))
        slopes = [sp.Mul(*(sp.Heaviside(argument.xreplace(placed), tie, evaluate=False) for argument, tie in factors),
                         evaluate=False) for factors in _max_slopes(len(window))]
    return Unit(name, tuple(Edge(source, slope) for source, slope in zip(window, slopes)), None, group,
                pool="max" if layer.kind == "max_pool" else "avg")


_MEMBERS = sp.symbols(f"m0:{MAX_WINDOW}", real=True)


@lru_cache(maxsize=64)
def _max_slopes(size: int) -> tuple[tuple[tuple[sp.Expr, int], ...], ...]:
    """d max(m_0..m_size-1)/d m_n for every n, as the factors (argument, value at 0) of a product of
    Heaviside steps in the placeholders :data:`_MEMBERS`: SymPy's derivative of max(m_n, m_q) for
    every other member q, a tie given to the first maximum in C order (as PyTorch's max pooling
    does), so that the slopes of a window sum to one."""
    m = _MEMBERS[:size]
    return tuple(tuple((sp.diff(sp.Max(m[n], m[q]), m[n]).args[0], 0 if q < n else 1) for q in range(size) if q != n)
                 for n in range(size))
