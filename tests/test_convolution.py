"""Convolutional networks: hand-checked examples (2-D, 1-D with stride and padding, pooling), an
independent NumPy forward pass with central differences on random conv specs, bad specs."""
import itertools
import json
import subprocess
import sys

import numpy as np
import sympy as sp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop.convolution import ConvNetwork, kernel_weight


def conv_spec(input_shape, layers, example, loss="half_sse", bias=True):
    return {"network": {"input_shape": input_shape, "loss": loss, "bias": bias, "layer": layers}, "example": example}


def test_hand_checked_one_channel_3x3_input_2x2_kernel():
    """x = [[1, 2, 0], [0, 1, -1], [2, 0, 1]], K = [[1, 0], [-1, 2]], b = 0.5, identity, half SSE,
    targets [1, 0, 0, 1]. By hand:
      z00 = 0.5 + 1*1 + 0*2 - 1*0 + 2*1 = 3.5     z01 = 0.5 + 1*2 + 0*0 - 1*1 + 2*(-1) = -0.5
      z10 = 0.5 + 1*0 + 0*1 - 1*2 + 2*0 = -1.5    z11 = 0.5 + 1*1 + 0*(-1) - 1*0 + 2*1 = 3.5
      delta = z - t = [2.5, -0.5, -1.5, 2.5];  E = (6.25 + 0.25 + 2.25 + 6.25) / 2 = 7.5
      dE/dK_uv = sum_ij delta_ij x_(i+u)(j+v):
      K00: 2.5*1 - 0.5*2 - 1.5*0 + 2.5*1 = 4      K01: 2.5*2 - 0.5*0 - 1.5*1 + 2.5*(-1) = 1
      K10: 2.5*0 - 0.5*1 - 1.5*2 + 2.5*0 = -3.5   K11: 2.5*1 - 0.5*(-1) - 1.5*0 + 2.5*1 = 5.5
      dE/db = 2.5 - 0.5 - 1.5 + 2.5 = 3"""
    spec = sb.from_dict(conv_spec([1, 3, 3], [{"kind": "conv", "channels": 1, "kernel": [2, 2],
                                                "activation": "identity"}],
                                  {"inputs": [[[1, 2, 0], [0, 1, -1], [2, 0, 1]]], "targets": [1, 0, 0, 1],
                                   "weights": [[[[[1, 0], [-1, 2]]]]], "biases": [[0.5]]}))
    data = sb.example(spec.network, spec.values, 0.1).as_dict()
    assert data["loss"] == pytest.approx(7.5)
    assert data["z"][0] == [[[3.5, -0.5], [-1.5, 3.5]]]
    assert data["delta"][0] == [[[2.5, -0.5], [-1.5, 2.5]]]
    assert np.allclose(data["grad"]["weights"][0], [[[[4, 1], [-3.5, 5.5]]]])
    assert data["grad"]["biases"] == [[pytest.approx(3.0)]]
    assert np.allclose(data["updated"]["weights"][0], [[[[0.6, -0.1], [-0.65, 1.45]]]])
    assert sb.verify(spec.network, values=spec.values).ok


def test_hand_checked_1d_with_stride_2_and_padding_1():
    """x = [1, -2, 3, 0.5], kernel [1, 2, -1], stride 2, padding 1, b = 0, identity, targets [3, 4]:
    padded [0, 1, -2, 3, 0.5, 0], two outputs (6 - 3) // 2 + 1:
      z0 = 0*1 + 1*2 + (-2)(-1) = 4     z1 = (-2)*1 + 3*2 + 0.5*(-1) = 3.5    delta = [1, -0.5]
      dE/dk0 = 1*0 - 0.5*(-2) = 1   dE/dk1 = 1*1 - 0.5*3 = -0.5   dE/dk2 = 1*(-2) - 0.5*0.5 = -2.25
      dE/db = 0.5"""
    spec = sb.from_dict(conv_spec([1, 4], [{"kind": "conv", "channels": 1, "kernel": [3], "stride": 2,
                                            "padding": 1, "activation": "identity"}],
                                  {"inputs": [[1, -2, 3, 0.5]], "targets": [3, 4], "weights": [[[[1, 2, -1]]]],
                                   "biases": [[0]]}))
    data = sb.example(spec.network, spec.values).as_dict()
    assert data["z"][0] == [[4.0, 3.5]]
    assert np.allclose(data["grad"]["weights"][0], [[[1, -0.5, -2.25]]])
    assert data["grad"]["biases"][0] == [pytest.approx(0.5)]


@pytest.mark.parametrize("kind, loss, grad_k", [("max_pool", 0.5 * 0.8 ** 2, 0.8 * 0.9),
                                                ("avg_pool", 0.5 * 0.45 ** 2, -0.45 * 0.275)])
def test_hand_checked_pooling(kind, loss, grad_k):
    """x = [[0.3, 0.9], [0.1, -0.2]], a 1x1 kernel K = 2, b = 0: z = [[0.6, 1.8], [0.2, -0.4]].
    Max: 1.8, delta 1.8 - 1 = 0.8 reaches the winner only, dE/dK = 0.8 * 0.9.
    Average: 0.55, delta -0.45 reaches each unit as -0.45 / 4, dE/dK = -0.45 * mean(x) = -0.45 * 0.275."""
    spec = sb.from_dict(conv_spec([1, 2, 2], [{"kind": "conv", "channels": 1, "kernel": [1, 1],
                                               "activation": "identity"}, {"kind": kind, "size": [2, 2]}],
                                  {"inputs": [[[0.3, 0.9], [0.1, -0.2]]], "targets": [1.0],
                                   "weights": [[[[[2.0]]]], []], "biases": [[0.0], []]}))
    data = sb.example(spec.network, spec.values).as_dict()
    assert data["loss"] == pytest.approx(loss)
    assert data["grad"]["weights"][0][0][0][0][0] == pytest.approx(grad_k)
    assert data["grad"]["weights"][1] == [] and data["grad"]["biases"][1] == []
    expected = [[[0, 0.8], [0, 0]]] if kind == "max_pool" else [[[-0.1125] * 2] * 2]
    assert np.allclose(data["delta"][0], expected)


def test_ties_in_a_max_pool_go_to_the_first_maximum():
    """Equal values in a window (ReLU zeros, a constant input): the first in C order wins, as in
    PyTorch, so the window's slopes still sum to one."""
    spec = sb.from_dict(conv_spec([1, 2, 2], [{"kind": "conv", "channels": 1, "kernel": [1, 1],
                                               "activation": "identity"}, {"kind": "max_pool", "size": [2, 2]}],
                                  {"inputs": [[[0.5, 0.5], [0.5, 0.5]]], "targets": [0.0],
                                   "weights": [[[[[1.0]]]], []], "biases": [[0.0], []]}))
    data = sb.example(spec.network, spec.values).as_dict()
    assert np.allclose(data["delta"][0], [[[0.5, 0], [0, 0]]])
    assert data["grad"]["biases"][0] == [pytest.approx(0.5)]


def _numpy_loss(network: ConvNetwork, nested: dict, x: np.ndarray, t: np.ndarray) -> float:
    """An independent forward pass: the conv, pooling and dense layers with plain loops."""
    functions = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "identity": lambda z: z,
                 "relu": lambda z: np.maximum(z, 0), "softmax": lambda z: np.exp(z) / np.exp(z).sum()}
    a = np.asarray(x, dtype=float).reshape(network.input_shape)
    for l, layer in enumerate(network.stack):
        b = np.asarray(nested["biases"][l]) if "biases" in nested else None
        if layer.kind == "dense":
            z = a.ravel() @ np.asarray(nested["weights"][l]) + (0 if b is None else b)
        elif layer.kind == "conv":
            kernel, p, s = np.asarray(nested["weights"][l]), layer.padding, layer.stride
            padded = np.pad(a, [(0, 0)] + [(p, p)] * (a.ndim - 1))
            z = np.zeros(layer.shape_out)
            for o, *position in itertools.product(*map(range, layer.shape_out)):
                window = tuple(slice(q * s, q * s + k) for q, k in zip(position, layer.kernel))
                z[(o, *position)] = np.sum(kernel[o] * padded[(slice(None), *window)]) + (0 if b is None else b[o])
        else:
            z = np.zeros(layer.shape_out)
            for c, *position in itertools.product(*map(range, layer.shape_out)):
                window = a[(c, *(slice(q * k, q * k + k) for q, k in zip(position, layer.kernel)))]
                z[(c, *position)] = window.max() if layer.kind == "max_pool" else window.mean()
        a = functions[layer.activation.name](z)
    if network.loss.name == "cross_entropy":
        return float(-np.sum(t * np.log(a.ravel())))
    return float(0.5 * np.sum((a.ravel() - t) ** 2))


@st.composite
def conv_specs(draw):
    """Small random 1-D and 2-D conv specs: one or two conv/pool layers, then maybe a dense one."""
    dimensions = draw(st.sampled_from([1, 2]))
    shape = [draw(st.integers(1, 2)), *(draw(st.integers(3, 5)) for _ in range(dimensions))]
    layers, spatial = [], shape[1:]
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.booleans()) or layers and layers[-1]["kind"] != "conv":
            kernel = [draw(st.integers(1, min(3, n + 1))) for n in spatial]
            padding = draw(st.integers(0, min(kernel) - 1))
            stride = draw(st.integers(1, 2))
            layers.append({"kind": "conv", "channels": draw(st.integers(1, 2)), "kernel": kernel, "stride": stride,
                           "padding": padding, "activation": draw(st.sampled_from(["tanh", "sigmoid", "identity"]))})
            spatial = [(n + 2 * padding - k) // stride + 1 for n, k in zip(spatial, kernel)]
        elif min(spatial) >= 2:
            layers.append({"kind": draw(st.sampled_from(["max_pool", "avg_pool"])), "size": [2] * dimensions})
            spatial = [n // 2 for n in spatial]
    softmax = draw(st.booleans())
    if softmax or draw(st.booleans()) or all(layer["kind"] != "conv" for layer in layers):
        layers.append({"kind": "dense", "units": draw(st.integers(2, 3)),
                       "activation": "softmax" if softmax else "sigmoid"})
    return conv_spec(shape, layers, {"seed": draw(st.integers(0, 1000))},
                     loss="cross_entropy" if softmax else "half_sse", bias=draw(st.booleans()))


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(conv_specs())
def test_gradients_of_random_conv_specs_match_central_differences_of_a_numpy_forward_pass(data):
    spec = sb.from_dict(data)
    net, values = spec.network, spec.values
    evaluation = sb.example(net, values).evaluation
    gradients = evaluation.gradients
    nested = net.nested_parameters(values.parameters)
    x, t = values.inputs[0], values.targets[0]
    for p in net.parameters:
        h = 1e-6
        shifted = [net.nested_parameters({**values.parameters, p: values.parameters[p] + d}) for d in (h, -h)]
        numeric = (_numpy_loss(net, shifted[0], x, t) - _numpy_loss(net, shifted[1], x, t)) / (2 * h)
        assert gradients[p] == pytest.approx(numeric, rel=1e-5, abs=1e-7), p
    assert _numpy_loss(net, nested, x, t) == pytest.approx(evaluation.loss, rel=1e-12)
    assert sb.verify(net, values=values, brute_force=False).ok  # brute force: the hand-checked examples


def test_a_kernel_entry_that_only_meets_padding_has_gradient_zero():
    """Length 1, kernel 2, padding 1, stride 2: the one output sees [0, x], so K[..][0] never meets the input."""
    spec = sb.from_dict(conv_spec([1, 1], [{"kind": "conv", "channels": 1, "kernel": [2], "stride": 2,
                                            "padding": 1}], {"inputs": [[0.7]], "targets": [0.2]}))
    grads = sb.example(spec.network, spec.values).as_dict()["grad"]["weights"][0]
    assert grads[0][0][0] == 0.0 and grads[0][0][1] != 0.0
    assert kernel_weight(0, 0, 0, 0) in spec.network.parameters


ISSUE_SPEC = """
[network]
input_shape = [1, 5, 5]
loss = "cross_entropy"

[[network.layer]]
kind = "conv"
channels = 2
kernel = [3, 3]
stride = 1
padding = 1
activation = "tanh"

[[network.layer]]
kind = "max_pool"
size = [2, 2]

[[network.layer]]
kind = "dense"
units = 3
activation = "softmax"

[example]
inputs = [[[0.1, 0.2, -0.3, 0.4, 0.5], [0.0, -0.1, 0.2, 0.3, -0.4], [0.5, 0.1, 0.1, -0.2, 0.3],
           [0.2, 0.2, -0.5, 0.1, 0.0], [-0.3, 0.4, 0.1, 0.2, 0.6]]]
targets = [0.0, 1.0, 0.0]
"""


def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True, timeout=300)


def test_the_issue_spec_verifies_and_nests_its_gradients_in_example_and_verify_json(tmp_path):
    path = tmp_path / "conv.toml"
    path.write_text(ISSUE_SPEC)
    example = run("example", str(path), "--json")
    assert example.returncode == 0, example.stderr
    data = json.loads(example.stdout)
    assert [np.shape(a) for a in data["a"]] == [(1, 5, 5), (2, 5, 5), (2, 2, 2), (3,)]
    assert [np.shape(w) for w in data["grad"]["weights"]] == [(2, 1, 3, 3), (0,), (8, 3)]
    assert [len(b) for b in data["grad"]["biases"]] == [2, 0, 3]
    verified = run("verify", str(path), "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and report["grad"]["weights"][0] == data["grad"]["weights"][0]


GOOD_LAYERS = [{"kind": "conv", "channels": 2, "kernel": [3, 3], "padding": 1},
               {"kind": "max_pool", "size": [2, 2]}, {"kind": "dense", "units": 3}]


@pytest.mark.parametrize("change, field, words", [
    ({0: {"kernel": [8, 3]}}, "network.layer[0].kernel", ["8x3", "larger than the padded input 7x7", "5x5"]),
    ({0: {"kernel": [3]}}, "network.layer[0].kernel", ["2 positive whole numbers"]),
    ({0: {"padding": 3}}, "network.layer[0].padding", ["3x3"]),
    ({0: {"channels": 0}}, "network.layer[0].channels", ["positive"]),
    ({0: {"size": [2, 2]}}, "network.layer[0].size", ["does not apply to a conv layer"]),
    ({1: {"size": [6, 6]}}, "network.layer[1].size", ["6x6 leaves nothing of the 5x5 input"]),
    ({1: {"kind": "min_pool"}}, "network.layer[1].kind", ["conv, max_pool, avg_pool, dense"]),
    ({2: {"activation": "swish2"}}, "network.layer[2].activation", []),
    ({0: {"kind": "avg_pool", "size": [2, 2]}}, "network.layer[0].channels", ["avg_pool layer, which takes size"]),
])
def test_bad_shapes_are_refused_naming_the_layer_and_the_sizes(change, field, words):
    layers = [{**layer, **change.get(n, {})} for n, layer in enumerate(GOOD_LAYERS)]
    with pytest.raises(sb.SpecError) as error:
        sb.from_dict(conv_spec([1, 5, 5], layers, {}))
    assert error.value.field == field
    assert all(word in error.value.message for word in words), error.value.message


def test_a_network_without_weights_is_refused():
    with pytest.raises(sb.SpecError, match="no weights to learn"):
        sb.from_dict(conv_spec([1, 4, 4], [{"kind": "max_pool", "size": [2, 2]}], {}))


def test_weights_of_the_wrong_size_name_the_layer_and_its_shape():
    with pytest.raises(sb.SpecError) as error:
        sb.from_dict(conv_spec([1, 5, 5], GOOD_LAYERS, {"weights": [np.zeros((2, 1, 3, 3)).tolist(), [],
                                                                     np.zeros((7, 3)).tolist()]}))
    assert error.value.field == "example.weights[2]"
    assert "8x3" in error.value.message and "dense" in error.value.message


def test_a_bad_conv_spec_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(ISSUE_SPEC.replace("kernel = [3, 3]", "kernel = [9, 3]"))
    result = run("verify", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "network.layer[0].kernel: 9x3" in result.stderr


def test_generic_conv_formulas_are_the_published_ones():
    """Goodfellow et al. 2016, ch. 9 (and Dumoulin and Visin 2016), transcribed: the kernel gradient
    correlates the layer's input with delta; the error below is delta convolved with the flipped kernel."""
    from symbackprop.conv_backprop import H_, K, W_, c, derive_conv, i, j, m, n, o, p, s, u, v
    from symbackprop.derivation import a, delta

    generic = derive_conv(2, True)
    positions = ((j, 0, W_ - 1), (i, 0, H_ - 1))
    assert generic.gradient_kernel == sp.Sum(delta[o, i, j] * a[c, s * i + u - p, s * j + v - p], *positions)
    assert generic.gradient_bias == sp.Sum(delta[o, i, j], *positions)
    assert generic.error_below.function == delta[o, i, j] * K[o, c, m + p - s * i, n + p - s * j]


TWO_CONV = conv_spec([1, 5, 5], [{"kind": "conv", "channels": 2, "kernel": [3, 3], "padding": 1, "stride": 2,
                                  "activation": "tanh"},
                                 {"kind": "conv", "channels": 1, "kernel": [2, 2], "activation": "sigmoid"}],
                     {"seed": 3})


def test_verify_checks_every_kernel_weight_and_the_flipped_kernel_delta_generic_against_concrete():
    from symbackprop import conv_backprop
    from symbackprop.numerics import compiled
    from symbackprop.verification import _point

    spec = sb.from_dict(TWO_CONV)
    derivation = sb.derive(spec.network)
    point = _point(derivation, spec.values, compiled(derivation).evaluate(spec.values))
    assert conv_backprop.mismatches(derivation, point) == []
    weight, below = kernel_weight(1, 0, 1, 1, 0), spec.network.unit_at(0, 1, 2, 0)
    derivation.gradients[weight] = derivation.gradients[weight] * 1.01
    derivation.deltas[below.name] = derivation.deltas[below.name] * 1.01
    assert conv_backprop.mismatches(derivation, point) == [f"conv dE/d{weight}",
                                                           f"delta of {below.name} (flipped kernel)"]


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(conv_specs())
def test_the_array_form_equals_the_scalar_code_of_the_concrete_derivation_on_a_batch(data):
    """conv_matrix (im2col windows, one product per layer) against the per-unit code lambdified from
    the concrete DAG (numerics), on three samples at once, and its finite differences against theirs."""
    from symbackprop.conv_matrix import ConvCompiled
    from symbackprop.numerics import Values, compiled

    spec = sb.from_dict(data)
    net, drawn = spec.network, sb.random_values(spec.network, samples=3, seed=7)
    values = Values(drawn.inputs, drawn.targets, spec.values.parameters)
    derivation = sb.derive(net)
    arrays, scalar = ConvCompiled(derivation), compiled(derivation)
    fast, slow = arrays.evaluate(values, 0.5), scalar.evaluate(values, 0.5)
    assert fast.loss == pytest.approx(slow.loss, rel=1e-12)
    for table in ("z", "a", "delta"):
        for unit, column in getattr(slow, table).items():
            assert np.allclose(getattr(fast, table)[unit], column, rtol=1e-10, atol=1e-12), (table, unit)
    for p in net.parameters:
        assert fast.gradients[p] == pytest.approx(slow.gradients[p], rel=1e-9, abs=1e-12), p
    (fast_fd, _), (slow_fd, _) = arrays.finite_differences(values), scalar.finite_differences(values)
    for p in net.parameters:
        assert fast_fd[p] == pytest.approx(slow_fd[p], rel=1e-6, abs=1e-9), p


def test_the_delta_below_an_average_pool_is_checked_from_sympys_window_formula():
    """SymPy's dE/da below an average pool: 1/(S_h S_w) of the delta of the one window holding the
    unit (the window's condition kept); a wrong delta below the pool is caught."""
    from symbackprop import conv_backprop
    from symbackprop.conv_backprop import S_h, S_w, c, derive_average_pool, i, j, m, n
    from symbackprop.derivation import delta
    from symbackprop.numerics import compiled
    from symbackprop.verification import _point

    formula = derive_average_pool(2)
    assert formula.function.args[0].expr == delta[c, i, j] / (S_h * S_w)
    inside = formula.function.args[0].cond.subs({S_h: 2, S_w: 2, m: 3, n: 0})
    assert [bool(inside.subs({i: row, j: 0})) for row in range(3)] == [False, True, False]  # rows 2-3: window 1
    spec = sb.from_dict(conv_spec([1, 5, 4], [{"kind": "conv", "channels": 2, "kernel": [2, 2], "activation": "tanh"},
                                              {"kind": "avg_pool", "size": [2, 2]},
                                              {"kind": "dense", "units": 2}], {"seed": 2}))
    derivation = sb.derive(spec.network)
    point = _point(derivation, spec.values, compiled(derivation).evaluate(spec.values))
    assert conv_backprop.mismatches(derivation, point) == []
    assert sb.verify(spec.network, derivation, spec.values, brute_force=False).ok
    below = spec.network.unit_at(0, 1, 3, 0)  # channel 1, row 3: in the second window of column 0
    derivation.deltas[below.name] = derivation.deltas[below.name] + 0.01
    assert conv_backprop.mismatches(derivation, point) == [f"delta of {below.name} (average pooling)"]


@pytest.mark.parametrize("conv_activation, loss, last", [
    ("z/(1+exp(-z))", "log(cosh(a - t))", {"kind": "dense", "units": 2, "activation": {"name": "leaky_relu",
                                                                                      "slope": 0.1}}),
    ("softmax", "cross_entropy", None),  # softmax over a whole conv layer, the network's output
])
def test_custom_and_normalized_activations_and_losses_work_in_conv_layers(conv_activation, loss, last):
    layers = [{"kind": "conv", "channels": 1, "kernel": [3], "stride": 2, "padding": 1,
               "activation": conv_activation}] + ([last] if last else [])
    spec = sb.from_dict(conv_spec([2, 6], layers, {"seed": 4}, loss=loss))
    report = sb.verify(spec.network, values=spec.values)
    assert report.ok and report.brute_force in ("proved", "agrees at random points")
