"""The matrix form and the per-sample code against independent witnesses: the scalar code
generated from the concrete formulas, and its own finite differences."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop.functions import Z

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "softmax",
          sb.custom_activation(Z / (1 + sp.exp(-Z)), "swish")]
OUTPUT = {"half_sse": ["identity", "sigmoid", "tanh", "softmax"], "mse": ["identity", "sigmoid", "softmax"],
          "binary_cross_entropy": ["sigmoid"], "cross_entropy": ["softmax"]}
LOG_COSH = sb.custom_loss(sp.log(sp.cosh(sp.Symbol("a", real=True) - sp.Symbol("t", real=True))))


def _activation(choice):
    return choice if isinstance(choice, sb.Activation) else sb.activation(choice)


@st.composite
def layered_networks(draw):
    sizes = draw(st.lists(st.integers(1, 5), min_size=2, max_size=5))
    loss = draw(st.sampled_from([*OUTPUT, LOG_COSH]))
    output = draw(st.sampled_from(OUTPUT.get(loss, ["identity", "tanh"])))
    hidden = [_activation(draw(st.sampled_from(HIDDEN))) for _ in sizes[2:]]
    net = sb.layered(sizes, hidden + [_activation(output)], loss, bias=draw(st.booleans()))
    return net, sb.random_values(net, samples=draw(st.integers(1, 4)), seed=draw(st.integers(0, 10**6)))


def _assert_same_evaluation(evaluation, expected, values, parameters, learning_rate):
    """Loss, every unit's z, a and delta, every gradient and updated parameter equal the witness's."""
    assert evaluation.loss == pytest.approx(expected.loss, rel=1e-12, abs=1e-12)
    for name in expected.z:
        for table in ("z", "a", "delta"):
            np.testing.assert_allclose(getattr(evaluation, table)[name], getattr(expected, table)[name],
                                       rtol=1e-9, atol=1e-12, err_msg=f"{table} of {name}")
    for p in parameters:
        assert evaluation.gradients[p] == pytest.approx(expected.gradients[p], rel=1e-9, abs=1e-12), p
        assert evaluation.updated[p] == pytest.approx(values.parameters[p] - learning_rate * expected.gradients[p],
                                                      rel=1e-9, abs=1e-12), p


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(layered_networks())
def test_matrix_form_agrees_with_the_scalar_code_and_finite_differences(case):
    net, values = case
    derivation = sb.derive(net)
    scalar, matrix = sb.numerics.compiled(derivation), sb.MatrixCompiled(derivation)
    expected = scalar.evaluate(values)
    loss, _ = matrix.gradients(values.inputs, values.targets, matrix.arrays(values.parameters))
    assert loss == pytest.approx(expected.loss, rel=1e-12, abs=1e-12)
    gradients = matrix.gradient(values)
    for p in net.parameters:
        assert gradients[p] == pytest.approx(expected.gradients[p], rel=1e-9, abs=1e-12), p
    evaluation = matrix.evaluate(values, learning_rate=0.3)  # what verify and example read
    _assert_same_evaluation(evaluation, expected, values, net.parameters, 0.3)
    numeric, crossed = matrix.finite_differences(values)
    witness, witness_crossed = scalar.finite_differences(values)
    for p in net.parameters:
        assert crossed[p] == witness_crossed[p], p
        if not crossed[p]:
            assert numeric[p] == pytest.approx(witness[p], rel=1e-6, abs=1e-8), p
            assert numeric[p] == pytest.approx(gradients[p], rel=1e-4, abs=1e-5), p


def test_parameter_arrays_round_trip_in_the_spec_layout():
    net = sb.layered([3, 2, 1])
    values = sb.random_values(net, seed=3)
    matrix = sb.MatrixCompiled(sb.derive(net))
    (w0, b0), _ = matrix.arrays(values.parameters)
    assert w0.shape == (3, 2) and w0[2, 1] == values.parameters[sb.network.layer_weight(0, 2, 1)]
    assert b0[1] == values.parameters[sb.network.layer_bias(0, 1)]
    assert matrix.mapping(matrix.arrays(values.parameters)) == values.parameters


def test_kink_crossed_by_a_perturbation_is_flagged_in_a_deeper_layer():
    net = sb.layered([1, 1, 1, 1], ["identity", "relu", "identity"], "half_sse")
    w0, w1, b1 = sb.network.layer_weight(0, 0, 0), sb.network.layer_weight(1, 0, 0), sb.network.layer_bias(1, 0)
    values = sb.Values(np.array([[1.0]]), np.array([[0.5]]),
                       {**sb.random_values(net).parameters, w0: 0.5, sb.network.layer_bias(0, 0): 0.0,
                        w1: 2.0, b1: -1.0})  # the relu unit's z = 2 * 0.5 - 1 = 0
    matrix = sb.MatrixCompiled(sb.derive(net))
    numeric, crossed = matrix.finite_differences(values)
    assert crossed[w0] and crossed[w1] and crossed[b1]
    w2 = sb.network.layer_weight(2, 0, 0)  # above the kink: the loss is smooth in it
    assert not crossed[w2] and numeric[w2] == pytest.approx(matrix.gradient(values)[w2], rel=1e-6, abs=1e-9)


def test_graph_networks_have_no_matrix_form():
    net = sb.graph(["x"], [{"name": "y", "inputs": ["x"], "activation": "identity"}], ["y"])
    with pytest.raises(ValueError, match="layered"):
        sb.MatrixCompiled(sb.derive(net))


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "leaky_relu", "softmax"])
def test_per_sample_gradient_on_floats_matches_the_array_code(activation):
    net = sb.layered([3, 4, 2], [activation, "softmax" if activation == "softmax" else "identity"],
                     "cross_entropy" if activation == "softmax" else "half_sse")
    values = sb.random_values(net, seed=5)
    compiled = sb.numerics.compiled(sb.derive(net))
    gradients = compiled.sample_gradient(*values.inputs[0], *values.targets[0],
                                         *(values.parameters[p] for p in net.parameters))
    expected = compiled.evaluate(values).gradients
    assert all(isinstance(g, float) for g in gradients)
    assert list(gradients) == pytest.approx([expected[p] for p in net.parameters], rel=1e-12, abs=1e-15)


# --- Elman networks: a batch of sequences through time --------------------------------------------

RECURRENT_HIDDEN = ["tanh", "sigmoid", "relu", "identity"]


@st.composite
def recurrent_networks(draw):
    sizes = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(3, 4)))]
    hidden = [draw(st.sampled_from(RECURRENT_HIDDEN)) for _ in sizes[2:]]
    loss = draw(st.sampled_from(["half_sse", "mse"]))
    output = draw(st.sampled_from(["identity", "sigmoid", "tanh"]))
    net = sb.unrolled(sizes, hidden + [output], loss, bias=draw(st.booleans()), steps=draw(st.integers(1, 5)))
    return net, sb.random_values(net, samples=draw(st.integers(1, 3)), seed=draw(st.integers(0, 10**6)))


def central_differences(loss, parameters, h=1e-6):
    """dE/dp by (E(p + h) - E(p - h)) / 2h of a loss function of the parameter mapping, one at a time."""
    out = {}
    for p, value in parameters.items():
        step = h * max(1.0, abs(value))
        out[p] = (loss({**parameters, p: value + step}) - loss({**parameters, p: value - step})) / (2 * step)
    return out


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(recurrent_networks())
def test_sequence_form_agrees_with_the_scalar_code_and_central_differences(case):
    net, values = case
    derivation = sb.derive(net)
    matrix, scalar = sb.matrix.evaluator(derivation), sb.numerics.compiled(derivation)
    assert isinstance(matrix, sb.matrix.SequenceCompiled)
    expected, evaluation = scalar.evaluate(values), matrix.evaluate(values, learning_rate=0.3)
    assert set(evaluation.gradients) == set(net.parameters) >= set(net.recurrent_weights)
    _assert_same_evaluation(evaluation, expected, values, net.parameters, 0.3)  # every unit at every step
    loss = lambda parameters: float(scalar.forward(sb.Values(values.inputs, values.targets, parameters))[0].mean())
    witness = central_differences(loss, dict(values.parameters))
    numeric, crossed = matrix.finite_differences(values)
    _, witness_crossed = scalar.finite_differences(values)
    for p in net.parameters:
        assert crossed[p] == witness_crossed[p], p
        if not crossed[p]:
            assert numeric[p] == pytest.approx(witness[p], rel=1e-5, abs=1e-7), p
            assert evaluation.gradients[p] == pytest.approx(witness[p], rel=1e-4, abs=1e-6), p


def test_a_batch_of_sequences_is_the_mean_of_each_sequences_sum_over_steps():
    net = sb.unrolled([2, 3, 2], ["tanh", "identity"], "half_sse", steps=4)
    values = sb.random_values(net, samples=5, seed=11)
    matrix = sb.matrix.evaluator(sb.derive(net))
    x, t = matrix.sequences(values)
    assert x.shape == (4, 5, 2) and t.shape == (4, 5, 2)
    assert x[2, 3, 1] == values.inputs[3][2 * 2 + 1]  # sequence 3, step 2, input 1
    loss, grads = matrix.gradients(x, t, matrix.arrays(values.parameters))
    singles = [matrix.gradients(x[:, s:s + 1], t[:, s:s + 1], matrix.arrays(values.parameters)) for s in range(5)]
    assert loss == pytest.approx(np.mean([one for one, _ in singles]), rel=1e-12)
    for n, layer in enumerate(grads):
        for k, array in enumerate(layer):
            if array is not None:
                np.testing.assert_allclose(array, np.mean([g[n][k] for _, g in singles], axis=0), rtol=1e-12)
    # one sequence's loss is the sum over its steps of half the squared error, by hand
    (w0, b0, r0), (w1, b1, _) = matrix.arrays(values.parameters)
    state, total = np.zeros(3), 0.0
    for step in range(4):
        state = np.tanh(x[step, 0] @ w0 + b0 + state @ r0)
        total += 0.5 * np.sum((state @ w1 + b1 - t[step, 0]) ** 2)
    assert singles[0][0] == pytest.approx(total, rel=1e-12)
    assert matrix.mapping(matrix.arrays(values.parameters)) == values.parameters


def test_verify_of_an_elman_network_runs_on_the_sequence_form():
    net = sb.unrolled([2, 3, 1], ["relu", "identity"], "half_sse", steps=3)
    derivation = sb.derive(net)
    report = sb.verify(net, derivation, brute_force=False)
    assert report.ok and {p.name for p in report.parameters} >= {str(r) for r in net.recurrent_weights}
    assert isinstance(sb.matrix.evaluator(derivation), sb.matrix.SequenceCompiled)


def test_a_softmax_hidden_layer_has_no_bptt_formula_and_keeps_the_scalar_code():
    net = sb.unrolled([2, 2, 1], ["softmax", "identity"], "half_sse", steps=2)
    derivation = sb.derive(net)
    assert isinstance(sb.matrix.evaluator(derivation), sb.numerics.Compiled)
    with pytest.raises(ValueError, match="elementwise"):
        sb.matrix.SequenceCompiled(derivation)
    # the softmax's sum over its members m of sum_k w_mk delta_k: each m's own successors (the
    # next step's units among them), instantiated outer sum first
    report = sb.verify(net, derivation, brute_force=False)
    assert report.ok and not report.generic_mismatches
