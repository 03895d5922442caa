"""The matrix form on every array library against the NumPy path (itself checked against the scalar
code in test_matrix), and NumPy's in-place code against the same formulas lambdified."""
import importlib.util
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from test_matrix import layered_networks, recurrent_networks

import symbackprop as sb
from symbackprop import backends

LIBRARIES = [pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(module) is None,
                                                         reason=f"{module} is not installed (pip install "
                                                                f"'symbackprop[{name}]')"))
             for name, module in [("torch", "torch"), ("jax", "jax")]]


def _assert_same_gradients(result, expected, backend):
    """(loss, gradients per layer) of another library equal NumPy's to 1e-9, in the library's arrays."""
    (loss, layers), (expected_loss, expected_layers) = result, expected
    assert not isinstance(loss, (float, np.generic)) and loss.shape == (), type(loss)  # the library's scalar
    assert float(loss) == pytest.approx(expected_loss, rel=1e-9, abs=1e-12)
    for layer, expected_layer in zip(layers, expected_layers, strict=True):
        for array, witness in zip(layer, expected_layer, strict=True):
            assert (array is None) == (witness is None)
            if witness is not None:
                np.testing.assert_allclose(backend.host(array), witness, rtol=1e-9, atol=1e-12)


def _both(derivation, library, compiled=sb.MatrixCompiled):
    return compiled(derivation), compiled(derivation, backend=library)


@pytest.mark.parametrize("library", LIBRARIES)
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=layered_networks())
def test_layered_networks_agree_with_numpy(library, case):
    net, values = case  # every built-in and a custom activation, softmax outputs and hidden layers, a custom loss
    numpy, other = _both(sb.derive(net), library)
    expected = numpy.gradients(values.inputs, values.targets, numpy.arrays(values.parameters))
    x, t = other.backend.array(values.inputs), other.backend.array(values.targets)
    _assert_same_gradients(other.gradients(x, t, other.arrays(values.parameters)), expected, other.backend)
    assert other.gradient(values) == pytest.approx(numpy.gradient(values), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("library", LIBRARIES)
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=recurrent_networks())
def test_recurrent_networks_agree_with_numpy(library, case):
    net, values = case
    numpy, other = _both(sb.derive(net), library, sb.SequenceCompiled)
    x, t = numpy.sequences(values)
    expected = numpy.gradients(x, t, numpy.arrays(values.parameters))
    _assert_same_gradients(other.gradients(other.backend.array(x), other.backend.array(t),
                                           other.arrays(values.parameters)), expected, other.backend)


@pytest.mark.parametrize("library", LIBRARIES)
def test_softmax_with_cross_entropy_agrees_with_numpy_on_a_batch(library):
    net = sb.layered([6, 8, 8, 5], ["relu", "tanh", "softmax"], "cross_entropy")
    values = sb.random_values(net, samples=64, seed=4)
    numpy, other = _both(sb.derive(net), library)
    expected = numpy.gradients(values.inputs, values.targets, numpy.arrays(values.parameters))
    _assert_same_gradients(other.gradients(values.inputs, values.targets, other.arrays(values.parameters)),
                           expected, other.backend)
    assert other.evaluate(values).gradients == pytest.approx(numpy.evaluate(values).gradients, rel=1e-9)


@pytest.mark.parametrize("library", LIBRARIES)
def test_other_libraries_leave_finite_differences_to_numpy(library):
    net = sb.layered([2, 2, 1])
    other = sb.MatrixCompiled(sb.derive(net), backend=library)
    with pytest.raises(ValueError, match="finite differences run on NumPy"):
        other.finite_differences(sb.random_values(net, seed=1))


def test_an_unknown_backend_or_a_gpu_for_numpy_is_refused_with_the_choices():
    derivation = sb.derive(sb.layered([2, 2, 1]))
    with pytest.raises(ValueError, match="backend 'tensorflow': use one of numpy, torch, jax"):
        sb.MatrixCompiled(derivation, backend="tensorflow")
    with pytest.raises(ValueError, match="NumPy computes on the CPU"):
        sb.MatrixCompiled(derivation, device="cuda")


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_device_the_library_does_not_have_is_refused_in_one_line(library):
    with pytest.raises(ValueError, match="device 'tpu9'.*no such device"):
        sb.MatrixCompiled(sb.derive(sb.layered([2, 2, 1])), backend=library, device="tpu9")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_on_a_gpu_agrees_with_numpy_or_says_there_is_none():
    import torch
    net = sb.layered([3, 4, 2], ["sigmoid", "softmax"], "cross_entropy")
    derivation = sb.derive(net)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="finds no GPU"):
            sb.MatrixCompiled(derivation, backend="torch", device="cuda")
        pytest.skip("no GPU on this machine: the refusal is tested, the numbers are not")
    values = sb.random_values(net, samples=16, seed=2)
    numpy, gpu = sb.MatrixCompiled(derivation), sb.MatrixCompiled(derivation, backend="torch", device="cuda")
    loss, layers = gpu.gradients(values.inputs, values.targets, gpu.arrays(values.parameters))
    assert loss.device.type == "cuda" and layers[0][0].device.type == "cuda"
    _assert_same_gradients((loss, layers), numpy.gradients(values.inputs, values.targets,
                                                           numpy.arrays(values.parameters)), gpu.backend)


# --- NumPy in place ---------------------------------------------------------------------------------

Z, A, T, E = sp.symbols("Z A T E", real=True)
FORMULAS = [1 / (1 + sp.exp(-Z)), A * E * (1 - A), A * (1 - A) * (A - T), backends.row_sum((A - T) ** 2 / 2),
            sp.exp(Z) / backends.row_sum(sp.exp(Z)), A * (E - backends.row_sum(A * E)), E * sp.Heaviside(Z),
            sp.Max(0, Z) + sp.Min(Z, 0) / 100, sp.log(sp.cosh(A - T)), -2 * E / A ** 3 + 3, E, -A, sp.sqrt(A) * E,
            A ** T, E * (1 - sp.tanh(Z) ** 2), sp.Piecewise((Z, Z > 0), (Z / 10, True))]


@pytest.mark.parametrize("formula", FORMULAS, ids=str)
def test_in_place_code_computes_the_lambdified_formula_and_writes_only_its_own_buffers(formula):
    rng = np.random.default_rng(7)
    arrays = [rng.uniform(0.1, 2.0, (6, 3)) for _ in range(4)]
    arrays[0][0, 0] = 0.0  # Heaviside's H(0) = 1/2
    kernel = backends.backend("numpy").kernel([Z, A, T, E], formula, consumable=[3])
    expected = kernel(*arrays)
    if isinstance(formula, sp.Piecewise):
        assert kernel.slots == []  # no ufunc: the lambdified code, allocating
    buffers = [np.full((6, 3) if kind == "full" else (6, 1), np.nan) for kind in kernel.slots]
    for _ in range(2):  # the same buffers again on the next call
        given_ = [a.copy() for a in arrays]
        result = kernel.into(buffers, *given_)
        np.testing.assert_allclose(np.broadcast_to(result, (6, 3)), np.broadcast_to(expected, (6, 3)), rtol=1e-14)
        for n in range(3):  # Z, A, T are read only; E may be overwritten
            np.testing.assert_array_equal(given_[n], arrays[n])


def test_gradients_of_successive_batches_are_independent_and_leave_the_inputs_alone():
    net = sb.layered([5, 7, 3], ["sigmoid", "softmax"], "cross_entropy")
    matrix = sb.MatrixCompiled(sb.derive(net))
    first, second = (sb.random_values(net, samples=9, seed=s) for s in (1, 2))
    arrays = matrix.arrays(first.parameters)
    kept = [np.array(a) for layer in arrays for a in layer]
    x, t = first.inputs.copy(), first.targets.copy()
    loss, layers = matrix.gradients(first.inputs, first.targets, arrays)
    returned = [a for layer in layers for a in layer]
    copies = [a.copy() for a in returned]
    other_loss, _ = matrix.gradients(second.inputs, second.targets, arrays)  # in the first call's buffers
    assert other_loss != loss and matrix.gradients(first.inputs, first.targets, arrays)[0] == loss
    for array, copy in zip(returned, copies):
        np.testing.assert_array_equal(array, copy)
    for array, copy in zip([a for layer in arrays for a in layer], kept):
        np.testing.assert_array_equal(array, copy)
    np.testing.assert_array_equal(first.inputs, x)
    np.testing.assert_array_equal(first.targets, t)


def test_a_library_that_is_not_installed_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails, as without it
    with pytest.raises(ImportError, match=r"backend='torch' needs torch: pip install 'symbackprop\[torch\]'"):
        sb.MatrixCompiled(sb.derive(sb.layered([2, 2, 1])), backend="torch")
