"""The numbers of a convolutional network on arrays: batches and MNIST-sized networks.

The scalar code of :mod:`numerics` has one expression per unit and weight: 4,608 conv units of
25 edges each for a 1x28x28 image.  Here every layer is a few array operations over the whole
batch, each the array form of a formula :func:`~symbackprop.verify` checks:

* a conv layer gathers every window of the padded input at once (a strided view, im2col) and
  multiplies it with the kernel in one product, z[o,i,j] = b[o] + sum_cuv K[o,c,u,v] a[c,is+u-p,js+v-p];
  its kernel gradient is the same windows against delta (:func:`conv_backprop.derive_conv`'s
  dE/dK), and the error below is delta times the kernel scattered back to the window positions
  (the full convolution with the flipped kernel), one addition per kernel entry;
* max pooling passes delta to the first maximum of each window, average pooling 1/|window| of it;
* a dense layer is the layered matrix form on the layer below flattened in C order;
* each layer's activation and local gradient are the network's generic formulas lambdified over
  the layer's units (:class:`~symbackprop.matrix.MatrixCompiled`), so softmax spans the layer.

One-dimensional layers run as two-dimensional ones of height 1.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import derivation as dv
from .convolution import ConvNetwork, Layer, weight_symbols
from .derivation import Derivation
from .matrix import _E, MatrixCompiled, _in_matrices
from .network import layer_bias
from .numerics import Evaluation, Values


def _planar(layer: Layer) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel or window, stride, padding) of ``layer`` along (rows, columns), as a 2-D layer."""
    if len(layer.kernel) == 2:
        return tuple(layer.kernel), (layer.stride,) * 2, (layer.padding,) * 2
    return (1, *layer.kernel), (1, layer.stride), (0, layer.padding)


def _as_planes(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(channels, height, width) of a layer's output; (units,) of a dense layer stays as it is."""
    return shape if len(shape) != 2 else (shape[0], 1, shape[1])


class ConvCompiled(MatrixCompiled):
    """A convolutional network's forward pass, gradients and finite differences on arrays.

    Parameters are ``(W, b)`` per layer: a conv layer's kernel K[o, c, u, v] (of height 1 in
    1-D), a dense layer's W[i, j], None for a pooling layer; b[o] or b[j] (None without biases).
    Activations are arrays (samples, channels, height, width) or (samples, units).
    """

    def __init__(self, derivation: Derivation):
        net = derivation.network
        if not isinstance(net, ConvNetwork):
            raise ValueError("the conv array form needs a network built by convolutional")
        self._start(net, "numpy", None)
        position = {p: n for n, p in enumerate(net.parameters)}
        self._indices = []
        for l, layer in enumerate(net.stack):
            symbols = weight_symbols(l, layer)
            weights = None if symbols is None else np.vectorize(position.__getitem__, otypes=[int])(symbols)
            if weights is not None and layer.kind == "conv":
                weights = weights.reshape(weights.shape[:2] + _planar(layer)[0])
            biases = (np.array([position[layer_bias(l, o)] for o in range(layer.biases)])
                      if net.biases and layer.biases else None)
            self._indices.append((weights, biases))
        self._activations, self._deltas, self._uses_z, self._kinks = [], [], [], []
        self._im2col: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for group in net.groups:
            layer = derivation.generic[group.name]
            errors = {layer.successor: (dv.w, _E)} if layer.successor is not None else {}
            self._compile_layer(group.activation, _in_matrices(layer.delta, errors, net.loss_outputs))
        self._compile_loss(net)

    def _shapes(self, n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        layer = self.network.stack[n]
        return _as_planes(layer.shape_in), _as_planes(layer.shape_out)

    def _pre_activation(self, n: int, below: np.ndarray, weight, bias) -> np.ndarray:
        """Z of layer n from the activations below (samples first), before its activation."""
        layer = self.network.stack[n]
        if layer.kind == "dense":
            z = below.reshape(len(below), -1) @ weight
            return z if bias is None else z + bias
        if layer.kind == "conv":
            samples, (_, height, width) = len(below), self._shapes(n)[1]
            z = (self._columns(n, below) @ weight.reshape(len(weight), -1).T).reshape(samples, height, width, -1)
            z = z.transpose(0, 3, 1, 2)
            return z if bias is None else z + bias[:, None, None]
        return self._pooled(n, below).max(axis=-1) if layer.kind == "max_pool" else self._pooled(n, below).mean(axis=-1)

    def _windows(self, n: int, below: np.ndarray) -> np.ndarray:
        """(samples, channels, out height, out width, kh, kw): every window of the padded input, a view."""
        kernel, (sh, sw), (ph, pw) = _planar(self.network.stack[n])
        padded = np.pad(below, [(0, 0), (0, 0), (ph, ph), (pw, pw)]) if ph or pw else below
        return sliding_window_view(padded, kernel, axis=(2, 3))[:, :, ::sh, ::sw]

    def _columns(self, n: int, below: np.ndarray) -> np.ndarray:
        """im2col: one row per (sample, output position), one column per (channel, u, v), so that
        a conv layer is one matrix product; kept for the backward pass of the same activations."""
        cached = self._im2col.get(n)
        if cached is None or cached[0] is not below:
            windows = self._windows(n, below)
            channels, _, _, kh, kw = windows.shape[1:]
            cached = below, windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, channels * kh * kw)
            self._im2col[n] = cached
        return cached[1]

    def _pooled(self, n: int, below: np.ndarray) -> np.ndarray:
        """(samples, channels, out height, out width, window): each window's units in C order."""
        (sh, sw), _, _ = _planar(self.network.stack[n])
        _, (channels, height, width) = self._shapes(n)
        kept = below[:, :, :height * sh, :width * sw].reshape(len(below), channels, height, sh, width, sw)
        return kept.transpose(0, 1, 2, 4, 3, 5).reshape(len(below), channels, height, width, sh * sw)

    def _layer(self, n: int, below: np.ndarray, weight, bias) -> tuple[np.ndarray, np.ndarray]:
        z = self._pre_activation(n, below, weight, bias)
        return z, self._applied(self._activations[n], z)

    @staticmethod
    def _applied(function, *tables) -> np.ndarray:
        """A layer's formula over its units as one row per sample (softmax spans the layer)."""
        shape = next(t.shape for t in tables if t is not None)
        flat = [None if t is None else t.reshape(len(t), -1) for t in tables]
        return np.broadcast_to(function(*flat), flat[0].shape if flat[0] is not None else flat[1].shape).reshape(shape)

    def forward(self, inputs: np.ndarray, arrays: list[tuple]) -> list[tuple[np.ndarray, np.ndarray]]:
        states, below = [], np.asarray(inputs, dtype=float).reshape(len(inputs), *_as_planes(self.network.input_shape))
        for n, (weight, bias) in enumerate(arrays):
            states.append(self._layer(n, below, weight, bias))
            below = states[-1][1]
        return states

    def loss(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self._loss(outputs.reshape(len(outputs), -1), targets)[..., 0]

    def gradients(self, inputs, targets, arrays: list[tuple]) -> tuple[float, list[tuple]]:
        x, t = np.asarray(inputs, dtype=float), np.asarray(targets, dtype=float)
        states = self.forward(x, arrays)
        _, grads = self._backward([x.reshape(len(x), *_as_planes(self.network.input_shape))]
                                  + [a for _, a in states], [z for z, _ in states], t, arrays)
        return float(self.loss(states[-1][1], t).mean()), grads

    def _backward(self, activations: list, pre: list, t: np.ndarray, arrays: list[tuple]) -> tuple[list, list]:
        deltas, grads, error = [], [], None
        samples = len(t)
        for n in reversed(range(len(arrays))):
            a, below = activations[n + 1], activations[n]
            delta = self._applied(self._deltas[n], pre[n], a, t.reshape(samples, -1) if error is None else None,
                                  error, None)
            deltas.append(delta)
            grads.append(self._parameter_gradients(n, below, delta, arrays[n]))
            error = self._error_below(n, below, delta, arrays[n][0]) if n else None
        return deltas[::-1], grads[::-1]

    def _parameter_gradients(self, n: int, below: np.ndarray, delta: np.ndarray, arrays: tuple) -> tuple:
        """(dE/dW, dE/db) of layer n averaged over the samples: dE/dK = sum_ij delta a(window)."""
        layer, (weight, bias) = self.network.stack[n], arrays
        samples = len(delta)
        if layer.kind == "dense":
            return below.reshape(samples, -1).T @ delta / samples, None if bias is None else delta.mean(axis=0)
        if layer.kind == "conv":
            rows = delta.transpose(0, 2, 3, 1).reshape(-1, delta.shape[1])
            kernel = (rows.T @ self._columns(n, below)).reshape(weight.shape) / samples
            return kernel, None if bias is None else delta.sum(axis=(0, 2, 3)) / samples
        return None, None

    def _error_below(self, n: int, below: np.ndarray, delta: np.ndarray, weight) -> np.ndarray:
        """dE/da of the layer below: the full convolution of delta with the flipped kernel (each
        window position gets delta times its kernel entry), the maximum's or the window's share of
        a pooling delta, delta W^T of a dense layer; one addition per kernel or window entry."""
        layer = self.network.stack[n]
        if layer.kind == "dense":
            return (delta @ weight.T).reshape(below.shape)
        if layer.kind == "conv":
            (kh, kw), (sh, sw), (ph, pw) = _planar(layer)
            _, height, width = delta.shape[1:]
            spread = np.einsum("nohw,ocuv->nchwuv", delta, weight, optimize=True)
            padded = np.zeros((len(below), below.shape[1], below.shape[2] + 2 * ph, below.shape[3] + 2 * pw))
            for u in range(kh):
                for v in range(kw):
                    padded[:, :, u:u + sh * height:sh, v:v + sw * width:sw] += spread[..., u, v]
            return padded[:, :, ph:ph + below.shape[2], pw:pw + below.shape[3]]
        window = self._pooled(n, below)
        if layer.kind == "max_pool":
            share = np.zeros_like(window)
            np.put_along_axis(share, window.argmax(axis=-1)[..., None], 1.0, axis=-1)  # ties: the first maximum
        else:
            share = np.full_like(window, 1.0 / window.shape[-1])
        share *= delta[..., None]
        (sh, sw), _, _ = _planar(layer)
        _, (channels, height, width) = self._shapes(n)
        error = np.zeros_like(below)
        error[:, :, :height * sh, :width * sw] = (share.reshape(len(below), channels, height, width, sh, sw)
                                                  .transpose(0, 1, 2, 4, 3, 5).reshape(len(below), channels,
                                                                                      height * sh, width * sw))
        return error

    def evaluate(self, values: Values, learning_rate: float = 0.0) -> Evaluation:
        x, t = np.asarray(values.inputs, dtype=float), np.asarray(values.targets, dtype=float)
        arrays = self.arrays(values.parameters)
        states = self.forward(x, arrays)
        deltas, grads = self._backward([x.reshape(len(x), *_as_planes(self.network.input_shape))]
                                       + [a for _, a in states], [z for z, _ in states], t, arrays)
        return self._evaluation(float(self.loss(states[-1][1], t).mean()), [z for z, _ in states],
                                [a for _, a in states], deltas, grads, values, learning_rate)

    def _evaluation(self, loss, zs, activations, deltas, grads, values, learning_rate) -> Evaluation:
        gradients = self.mapping(grads)
        updated = {p: values.parameters[p] - learning_rate * g for p, g in gradients.items()}
        names = [[u for u in group.units] for group in self.network.groups]
        column = lambda tables: {name: table.reshape(len(table), -1)[:, k] for names_of, table in zip(names, tables)
                                 for k, name in enumerate(names_of)}
        return Evaluation(loss, column(zs), column(activations), column(deltas), gradients, updated)

    def finite_differences(self, values: Values, step: float = 5e-6, batch: int = 2**22):
        """Central differences of the mean loss for every parameter, as :meth:`Compiled.finite_differences`.

        A parameter of layer n moves only layer n's Z: a kernel weight K[o,c,u,v] moves channel o
        by h times the windows' entry (c, u, v), a bias its channel or unit by h, a dense weight
        W[i, j] unit j by h a_i.  The perturbed networks of a chunk of parameters start from the
        unperturbed Z with that shift and run the layers above as one batch (networks x samples).
        crossed[p] when a unit crosses a kink of its activation or a window's maximum changes.
        """
        base, h = self._perturbation(values, step)
        x, t = np.asarray(values.inputs, dtype=float), np.asarray(values.targets, dtype=float)
        arrays = self.arrays(values.parameters)
        gradient, crossed = np.zeros(len(base)), np.zeros(len(base), dtype=bool)
        states = self.forward(x, arrays)
        samples = len(x)
        activations = [x.reshape(samples, *_as_planes(self.network.input_shape))] + [a for _, a in states]
        for n, (weight_at, bias_at) in enumerate(self._indices):
            shifts = self._shifts(n, activations[n], weight_at, bias_at)
            z = states[n][0]
            chunk = max(1, batch // (2 * z.size))
            for start in range(0, len(shifts), chunk):
                part = shifts[start:start + chunk]
                at = np.array([position for position, _ in part])
                moved = np.stack([shift for _, shift in part]) * h[at].reshape(-1, *[1] * z.ndim)
                perturbed = np.concatenate([z[None] + moved, z[None] - moved]).reshape(-1, *z.shape[1:])
                loss, flags = self._above(n, perturbed, arrays, t, len(part))
                gradient[at] = (loss[:len(part)] - loss[len(part):]) / (2 * h[at])
                crossed[at] = flags
        return dict(zip(self.network.parameters, gradient)), dict(zip(self.network.parameters, crossed))

    def _shifts(self, n: int, below: np.ndarray, weight_at, bias_at) -> list[tuple[int, np.ndarray]]:
        """(parameter position, dZ/dparameter of layer n with the shape of Z) for each of its parameters."""
        layer = self.network.stack[n]
        if weight_at is None:
            return []
        samples = len(below)
        out = []
        if layer.kind == "conv":
            windows = self._windows(n, below)
            shape = (samples, *_as_planes(layer.shape_out))
            for (o, c, u, v), position in np.ndenumerate(weight_at):
                shift = np.zeros(shape)
                shift[:, o] = windows[:, c, :, :, u, v]
                out.append((position, shift))
            for o, position in enumerate(() if bias_at is None else bias_at):
                shift = np.zeros(shape)
                shift[:, o] = 1.0
                out.append((position, shift))
            return out
        flat = below.reshape(samples, -1)
        for (i, j), position in np.ndenumerate(weight_at):
            shift = np.zeros((samples, layer.shape_out[0]))
            shift[:, j] = flat[:, i]
            out.append((position, shift))
        for j, position in enumerate(() if bias_at is None else bias_at):
            shift = np.zeros((samples, layer.shape_out[0]))
            shift[:, j] = 1.0
            out.append((position, shift))
        return out

    def _above(self, n: int, z: np.ndarray, arrays: list[tuple], targets: np.ndarray, count: int):
        """(mean loss per perturbed network, crossed per perturbation) for the stacked (plus, minus)
        networks' Z of layer n, each of ``len(targets)`` samples, run through the layers above."""
        samples = len(targets)
        crossed = np.zeros(count, dtype=bool)

        def kinks(m: int, zm: np.ndarray) -> None:
            for kink in self._kinks[m]:
                side = np.sign(np.broadcast_to(kink(zm), zm.shape)).reshape(2, count, -1)
                crossed[:] |= np.any(side[0] != side[1], axis=1) | np.any(side[0] == 0, axis=1)

        kinks(n, z)
        a = self._applied(self._activations[n], z)
        for m in range(n + 1, len(arrays)):
            if self.network.stack[m].kind == "max_pool":
                winners = self._pooled(m, a).argmax(axis=-1).reshape(2, count, -1)
                crossed |= np.any(winners[0] != winners[1], axis=1)
            z = self._pre_activation(m, a, *arrays[m])
            kinks(m, z)
            a = self._applied(self._activations[m], z)
        loss = self.loss(a, np.tile(targets, (2 * count, 1))).reshape(2 * count, samples).mean(axis=1)
        return loss, crossed
