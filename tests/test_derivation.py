"""The derivation against independent witnesses: brute-force sympy.diff and finite differences."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop.functions import Z

CUSTOM_ACTIVATIONS = [sb.custom_activation(Z / (1 + sp.exp(-Z)), "swish"),
                      sb.custom_activation(sp.log(1 + Z**2), "log(1+z^2)")]
NAMED = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "step"]
LOSSES = ["half_sse", "sse", "mse", "binary_cross_entropy", sb.custom_loss(sp.log(sp.cosh(sp.Symbol("a", real=True)
                                                                                         - sp.Symbol("t", real=True))))]


def _activation(choice):
    return choice if isinstance(choice, sb.Activation) else sb.activation(choice)


@st.composite
def networks(draw):
    sizes = draw(st.lists(st.integers(1, 4), min_size=2, max_size=5))
    hidden = [_activation(draw(st.sampled_from(NAMED + CUSTOM_ACTIVATIONS))) for _ in sizes[2:]]
    loss = draw(st.sampled_from(LOSSES + ["cross_entropy"]))
    if loss == "cross_entropy":
        output = sb.activation("softmax")
    elif loss == "binary_cross_entropy":
        output = sb.activation("sigmoid")
    else:
        output = _activation(draw(st.sampled_from(["identity", "sigmoid", "tanh"] + CUSTOM_ACTIVATIONS)))
    return sb.layered(sizes, hidden + [output], loss, bias=draw(st.booleans())), draw(st.integers(0, 10**6))


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_three_witnesses_agree_on_random_networks(case):
    net, seed = case
    derivation = sb.derive(net)
    report = sb.verify(net, derivation, sb.random_values(net, samples=2, seed=seed), seed=seed)
    assert not report.generic_mismatches
    if len(net.layers) <= 4 and len(net.parameters) <= 40:  # the brute-force witness's default reach
        assert report.brute_force in ("proved", "agrees at random points")
        assert all(p.brute_force for p in report.parameters)
    compared = [p for p in report.parameters if not p.kink]
    assert all(p.rel_error < 1e-4 for p in compared), [(p.name, p.rel_error) for p in compared]


def test_textbook_activation_derivatives_are_found_by_sympy():
    a = sp.Symbol("a", real=True)
    assert sp.expand(sb.activation("sigmoid").derivative_in_activation - a * (1 - a)) == 0
    assert sp.expand(sb.activation("tanh").derivative_in_activation - (1 - a**2)) == 0
    assert sb.activation("identity").derivative_in_activation == 1
    assert sb.activation("relu").derivative_in_activation is None  # no such form: stays g'(z)


def test_softmax_with_cross_entropy_simplifies_to_a_minus_t():
    net = sb.layered([2, 3, 3], ["tanh", "softmax"], "cross_entropy")
    derivation = sb.derive(net)
    for name in net.outputs:
        assert derivation.deltas[name] == net[name].a - net.targets[name]
    k = derivation.generic["layer 2"].unit
    assert derivation.generic["layer 2"].delta == sb.derivation.a[k] - sb.derivation.t[k]


def test_softmax_with_squared_error_keeps_the_sum_over_outputs():
    net = sb.layered([2, 3], "softmax", "half_sse")
    derivation = sb.derive(net)
    generic = derivation.generic["layer 1"].delta
    assert generic.has(sp.Sum)
    assert sb.verify(net, derivation).ok
    # every output's delta depends on every output's error
    for name in net.outputs:
        assert set(net.targets.values()) <= derivation.deltas[name].free_symbols


def test_skip_connection_dag():
    net = sb.graph(["x1", "x2"], [
        {"name": "h", "inputs": ["x1", "x2"], "activation": "tanh"},
        {"name": "y", "inputs": ["h", "x1"], "activation": "sigmoid"},  # x1 skips the hidden unit
    ], ["y"], "half_sse")
    derivation = sb.derive(net)
    assert derivation.gradients[sp.Symbol("w[x1->y]", real=True)] == net["y"].delta * net["x1"].a
    report = sb.verify(net, derivation, brute_force=True)
    assert report.ok and report.brute_force == "proved"


def test_tied_weight_sums_over_its_uses_in_an_unrolled_elman_network():
    net = sb.graph(["x1", "x2"], [
        {"name": "h1", "inputs": ["x1"], "weights": ["u"], "activation": "tanh"},
        {"name": "h2", "inputs": ["x2", "h1"], "weights": ["u", "r"], "activation": "tanh"},
        {"name": "y1", "inputs": ["h1"], "weights": ["v"], "activation": "identity"},
        {"name": "y2", "inputs": ["h2"], "weights": ["v"], "activation": "identity"},
    ], ["y1", "y2"], "half_sse")
    u = sp.Symbol("u", real=True)
    assert net.weights.count(u) == 1
    derivation = sb.derive(net)
    assert derivation.gradients[u] == net["h1"].delta * net["x1"].a + net["h2"].delta * net["x2"].a
    # independent witness: differentiate the loss written out by hand
    x1, x2, r, v, t1, t2 = (sp.Symbol(n, real=True) for n in ("x1", "x2", "r", "v", "t1", "t2"))
    b = {n: sp.Symbol(f"b[{n}]", real=True) for n in ("h1", "h2", "y1", "y2")}
    h1 = sp.tanh(u * x1 + b["h1"])
    h2 = sp.tanh(u * x2 + r * h1 + b["h2"])
    loss = ((v * h1 + b["y1"] - t1) ** 2 + (v * h2 + b["y2"] - t2) ** 2) / 2
    rename = {net["x1"].a: x1, net["x2"].a: x2, net.targets["y1"]: t1, net.targets["y2"]: t2}
    point = {x1: 0.3, x2: -0.7, u: 0.5, r: 0.9, v: -1.1, t1: 0.2, t2: 0.4,
             b["h1"]: 0.1, b["h2"]: -0.2, b["y1"]: 0.05, b["y2"]: 0.3}
    for p in (u, r, v):
        derived = derivation.gradient_expanded(p).xreplace(rename)
        assert abs(float((derived - sp.diff(loss, p)).evalf(subs=point))) < 1e-12


def test_kinks_are_reported_not_mismatched():
    net = sb.layered([1, 1, 1], ["relu", "identity"], "half_sse")
    w0, b0 = net.parameters[0], net.biases[0]
    values = sb.Values(np.array([[1.0]]), np.array([[0.5]]),
                       {**sb.random_values(net).parameters, w0: 0.5, b0: -0.5})  # z = 0 exactly
    report = sb.verify(net, values=values)
    kinked = {p.name for p in report.parameters if p.kink}
    assert str(w0) in kinked and str(b0) in kinked
    assert report.ok


def test_mini_batch_averages_loss_and_gradients():
    net = sb.layered([2, 2, 1], ["sigmoid", "identity"])
    values = sb.random_values(net, samples=3, seed=4)
    batch = sb.example(net, values, learning_rate=0.1)
    singles = [sb.example(net, sb.Values(values.inputs[s:s + 1], values.targets[s:s + 1], values.parameters), 0.1)
               for s in range(3)]
    assert batch.evaluation.loss == pytest.approx(np.mean([s.evaluation.loss for s in singles]))
    for p in net.parameters:
        mean = np.mean([s.evaluation.gradients[p] for s in singles])
        assert batch.evaluation.gradients[p] == pytest.approx(mean)
        assert batch.evaluation.updated[p] == pytest.approx(values.parameters[p] - 0.1 * mean)


def test_deep_network_derives_without_expanding():
    net = sb.layered([4, 16, 16, 16, 16, 4], "sigmoid")
    derivation = sb.derive(net)
    assert len(derivation.gradients) == 964
    # intermediate symbols keep every formula small: a product of few factors
    assert max(sp.count_ops(f) for f in derivation.deltas.values()) < 60
    assert sb.verify(net, derivation).ok


def test_the_fast_constructors_build_what_sympy_builds():
    """Gradients and their steps are built without SymPy's general constructors (for speed at
    266,610 parameters); they must be the very objects ``*`` and ``Derivative`` make."""
    net = sb.graph(["x1", "x2"], [
        {"name": "h", "inputs": ["x1", "x2"], "weights": ["u", "u"], "activation": "tanh"},
        {"name": "y", "inputs": ["h", "x1"], "activation": "sigmoid"},
    ], ["y"], "half_sse")
    for candidate in (net, sb.layered([3, 2, 2], ["tanh", "sigmoid"])):
        derivation = sb.derive(candidate)
        steps = {s.subject: s for s in derivation.steps if s.rule in ("gradient", "tied_weight_sum")}
        for p in candidate.parameters:
            assert steps[p.name].lhs == sp.Derivative(sb.derivation.E, p)
            assert hash(steps[p.name].lhs) == hash(sp.Derivative(sb.derivation.E, p))
        for unit in candidate.computing_units:
            for edge in unit.inputs:
                uses = [(u, e) for u in candidate.computing_units for e in u.inputs if e.weight == edge.weight]
                expected = sp.Add(*(u.delta * candidate[e.source].a for u, e in uses))
                assert derivation.gradients[edge.weight] == expected
                assert derivation.gradients[edge.weight].args == expected.args
