"""Recurrent (Elman) networks through time: a hand-checked example, the three witnesses plus
an independent NumPy forward pass on random specs, the generic BPTT formulas, bad specs."""
import json
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop import bptt
from symbackprop.functions import A, K, T, Z
from symbackprop.network import layer_bias, layer_weight
from symbackprop.recurrent import MAX_STEPS, recurrent_weight

ELMAN_111 = {"network": {"layers": [1, 1, 1], "activation": ["tanh", "identity"], "loss": "half_sse",
                         "recurrent": True, "steps": 2},
             "example": {"inputs": [[1.0], [-0.5]], "targets": [[0.5], [0.2]], "weights": [[[0.8]], [[1.5]]],
                         "biases": [[0.1], [-0.2]], "recurrent_weights": [[[0.6]]], "learning_rate": 0.5}}


def test_hand_checked_elman_1_1_1_over_two_steps():
    """h(t) = tanh(u x(t) + r h(t-1) + c), y(t) = v h(t) + d, E = 1/2 sum_t (y(t) - target(t))^2,
    h(0) = 0; u = 0.8, r = 0.6, v = 1.5, c = 0.1, d = -0.2, x = (1, -0.5), targets (0.5, 0.2).
    Worked by hand (tanh from a calculator):
      t=1: z = 0.8*1 + 0.1 = 0.9, h1 = tanh 0.9 = 0.716297870, y1 = 1.5 h1 - 0.2 = 0.874446805, e1 = 0.374446805
      t=2: z = 0.8*(-0.5) + 0.6*h1 + 0.1 = 0.129778722, h2 = 0.129054997, y2 = -0.006417504, e2 = -0.206417504
      output deltas are the errors e_t; hidden, backwards in time:
      dh2 = (1 - h2^2) v e2 = -0.304469371        (no step after the last)
      dh1 = (1 - h1^2) (v e1 + r dh2) = 0.184536122   (the future term r dh2)
      dE/dv = h1 e1 + h2 e2 = 0.241576239   dE/dd = e1 + e2 = 0.168029301
      dE/du = x1 dh1 + x2 dh2 = 0.336770807  dE/dr = h0 dh1 + h1 dh2 = -0.218090762  dE/dc = dh1 + dh2 = -0.119933249
      E = (e1^2 + e2^2) / 2 = 0.091409298"""
    spec = sb.from_dict(ELMAN_111)
    data = sb.example(spec.network, spec.values, spec.learning_rate).as_dict()
    close = lambda x: pytest.approx(x, abs=5e-9)
    assert data["loss"] == close(0.091409298)
    assert data["z"] == [[[close(0.9)], [close(0.874446805)]], [[close(0.129778722)], [close(-0.006417504)]]]
    assert data["a"][1] == [[-0.5], [close(0.129054997)], [close(-0.006417504)]]
    assert data["delta"] == [[[close(0.184536122)], [close(0.374446805)]],
                             [[close(-0.304469371)], [close(-0.206417504)]]]
    grad = data["grad"]
    assert grad["weights"] == [[[close(0.336770807)]], [[close(0.241576239)]]]
    assert grad["biases"] == [[close(-0.119933249)], [close(0.168029301)]]
    assert grad["recurrent_weights"] == [[[close(-0.218090762)]]]
    assert data["updated"]["recurrent_weights"] == [[[close(0.6 + 0.5 * 0.218090762)]]]


def test_hand_example_verifies_with_every_witness_and_the_bptt_formulas():
    spec = sb.from_dict(ELMAN_111)
    report = sb.verify(spec.network, values=spec.values, brute_force=True)
    assert report.ok and report.brute_force in ("proved", "agrees at random points"), report.as_dict()
    assert {p.name for p in report.parameters} == {"w[0][0][0]", "w[1][0][0]", "r[0][0][0]", "b[0][0]", "b[1][0]"}


def _generic_checks_catch(mutate) -> list[tuple[int, int]]:
    net = sb.unrolled([2, 2, 1], ["tanh", "identity"], "half_sse", steps=3)
    derivation = sb.derive(net)
    values = sb.random_values(net, seed=3)
    evaluation = sb.numerics.compiled(derivation).evaluate(values)
    from symbackprop.verification import _point
    point = _point(derivation, values, evaluation)
    generic = bptt.derive_recurrent(sb.activation("tanh"), True)
    formula = mutate(generic)
    return [(q, step) for q in range(2) for step in (1, 2, 3)
            if abs(float(bptt.instantiate(net, formula, 0, q, step).xreplace(point) -
                         derivation.deltas[net.unit_at(step - 1, 1, q).name].xreplace(point))) > 1e-9]


def test_generic_bptt_delta_equals_concrete_and_a_missing_future_term_does_not():
    assert _generic_checks_catch(lambda g: g.delta) == []
    without_future = lambda g: g.delta.replace(lambda e: isinstance(e, sp.Sum) and e.limits[0][0] == bptt.m,
                                               lambda e: sp.Integer(0))
    # every step but the last has a future term, so exactly those differ
    assert _generic_checks_catch(without_future) == [(0, 1), (0, 2), (1, 1), (1, 2)]


def test_generic_bptt_formulas_are_sympy_results_in_the_textbook_shape():
    """The lecture formulas, transcribed from the issue (Haykin 2009 §15.7 writes the same sums)."""
    j, k, m, t = bptt.j, bptt.k, bptt.m, bptt.t
    a, delta, w, r = bptt.a, bptt.delta, bptt.w, bptt.r
    generic = bptt.derive_recurrent(sb.activation("tanh"), True)
    N = sp.Symbol("N", integer=True, positive=True)
    future = sp.Sum(r[j, m] * delta[m, t + 1], (m, 0, N - 1))
    expected = (1 - a[j, t] ** 2) * (sp.Sum(w[j, k] * delta[k, t], (k, 0, N - 1)) + future)
    assert sp.simplify(generic.delta - expected) == 0
    assert generic.gradient_recurrent == sp.Sum(a[bptt.source, t - 1] * delta[j, t], (t, 1, bptt.T))
    assert generic.gradient_weight == sp.Sum(a[bptt.i, t] * delta[j, t], (t, 1, bptt.T))
    assert generic.truncated_recurrent.limits == ((t, bptt.T - bptt.K + 1, bptt.T),)
    assert {s.rule for s in generic.steps} >= {"sum_over_successors", "tied_weight_sum", "local_gradient"}


# --- random recurrent specs against an independent NumPy forward pass -----------------------------

NAMED = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "step"]
CUSTOM = sb.custom_activation(Z / (1 + sp.exp(-Z)), "swish")


def _numpy_elman_loss(sizes, activations, loss, parameters, xs, ts):
    """E of one sequence, written from the Elman equations with NumPy arrays (not the unrolled
    network): h_l(t) = g_l(W_l^T h_{l-1}(t) + R_l^T h_l(t-1) + b_l), zero initial state."""
    functions = [sp.lambdify(Z, g.expression, "numpy") for g in activations]
    per_output = sp.lambdify((A, T, K), loss.expression, "numpy")
    get = lambda symbol: parameters.get(symbol, 0.0)
    layers = range(len(sizes) - 1)
    W = [np.array([[get(layer_weight(l, i, j)) for j in range(sizes[l + 1])] for i in range(sizes[l])]) for l in layers]
    b = [np.array([get(layer_bias(l, j)) for j in range(sizes[l + 1])]) for l in layers]
    R = [np.array([[get(recurrent_weight(h, i, j)) for j in range(sizes[h + 1])] for i in range(sizes[h + 1])])
         for h in range(len(sizes) - 2)]
    state = [np.zeros(n) for n in sizes[1:-1]]
    total = 0.0
    for x, target in zip(xs, ts):
        a = np.asarray(x, dtype=float)
        for l in layers:
            z = a @ W[l] + b[l] + (state[l] @ R[l] if l < len(R) else 0)
            a = np.broadcast_to(np.asarray(functions[l](z), dtype=float), z.shape)
            if activations[l].normalized:
                a = a / a.sum()
            if l < len(R):
                state[l] = a
        total += float(np.sum(per_output(a, np.asarray(target), sizes[-1])))
    return total


@st.composite
def recurrent_specs(draw):
    sizes = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(3, 4)))]
    hidden = [draw(st.sampled_from(NAMED + [CUSTOM])) for _ in sizes[2:]]
    output = draw(st.sampled_from(["identity", "sigmoid", "tanh", "softmax"]))
    loss = draw(st.sampled_from(["half_sse", "sse", "mse"]))
    activations = [g if isinstance(g, sb.Activation) else sb.activation(g) for g in hidden + [output]]
    net = sb.unrolled(sizes, activations, loss, bias=draw(st.booleans()), steps=draw(st.integers(1, 5)))
    return net, activations, draw(st.integers(0, 10**6))


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(recurrent_specs())
def test_three_witnesses_and_a_numpy_elman_agree_on_random_recurrent_specs(case):
    net, activations, seed = case
    derivation = sb.derive(net)
    values = sb.random_values(net, seed=seed)
    # the brute-force witness where the expanded loss stays small: at most 3 units on the
    # longest path (one more per step and per layer), as verify's default
    small = len(net.parameters) <= 24 and len(net.sizes) - 1 + net.steps - 1 <= 3
    report = sb.verify(net, derivation, values, brute_force=small, seed=seed)
    assert not report.generic_mismatches, report.generic_mismatches
    if small:
        assert report.brute_force in ("proved", "agrees at random points")
    compared = [p for p in report.parameters if not p.kink]
    assert all(p.rel_error < 1e-4 for p in compared), [(p.name, p.rel_error) for p in compared]
    assert {str(p) for p in net.parameters} >= {str(r) for r in net.recurrent_weights}
    # the unrolled network itself, against the Elman equations written independently
    xs = values.inputs[0].reshape(net.steps, net.sizes[0])
    ts = values.targets[0].reshape(net.steps, net.sizes[-1])
    evaluation = sb.numerics.compiled(derivation).evaluate(values)
    loss = lambda p: _numpy_elman_loss(net.sizes, activations, net.loss, p, xs, ts)
    assert evaluation.loss == pytest.approx(loss(values.parameters), rel=1e-9, abs=1e-12)
    for check in compared:
        parameter = next(p for p in net.parameters if str(p) == check.name)
        h = 1e-6 * max(1.0, abs(values.parameters[parameter]))
        plus, minus = ({**values.parameters, parameter: values.parameters[parameter] + s} for s in (h, -h))
        numeric = (loss(plus) - loss(minus)) / (2 * h)
        assert abs(numeric - evaluation.gradients[parameter]) <= 1e-5 * max(1.0, abs(numeric)), check.name


def test_a_batch_of_sequences_averages_like_a_mini_batch():
    data = json.loads(json.dumps(ELMAN_111))
    data["example"]["inputs"] = [[[1.0], [-0.5]], [[0.3], [0.2]]]
    data["example"]["targets"] = [[[0.5], [0.2]], [[0.0], [0.1]]]
    spec = sb.from_dict(data)
    result = sb.example(spec.network, spec.values).as_dict()
    assert len(result["z"]) == 2 and len(result["z"][0]) == 2  # [sequence][step][layer][unit]
    one = sb.example(spec.network, sb.Values(spec.values.inputs[:1], spec.values.targets[:1], spec.values.parameters))
    two = sb.example(spec.network, sb.Values(spec.values.inputs[1:], spec.values.targets[1:], spec.values.parameters))
    r = recurrent_weight(0, 0, 0)
    assert result["grad"]["recurrent_weights"][0][0][0] == pytest.approx(
        (one.evaluation.gradients[r] + two.evaluation.gradients[r]) / 2)


# --- bad specs name the field -----------------------------------------------------------------------

def _with(network=None, example=None):
    data = json.loads(json.dumps(ELMAN_111))
    data["network"].update(network or {})
    data["example"].update(example or {})
    for table in ("network", "example"):
        data[table] = {k: v for k, v in data[table].items() if v is not None}
    return data


@pytest.mark.parametrize("data, field, fix", [
    (_with({"steps": 0}), "network.steps", f"from 1 to {MAX_STEPS}"),
    (_with({"steps": MAX_STEPS + 1}), "network.steps", f"from 1 to {MAX_STEPS}"),
    (_with({"steps": "3"}), "network.steps", "whole number"),
    (_with({"steps": True}), "network.steps", "whole number"),
    (_with({"steps": None}), "network.steps", "missing"),
    (_with({"recurrent": "yes"}), "network.recurrent", "true or false"),
    (_with({"recurrent": None}), "network.steps", "recurrent = true"),
    (_with({"layers": [1, 1], "activation": "tanh"}), "network.layers", "hidden layer"),
    (_with(example={"recurrent_weights": [[[0.6, 0.1]]]}), "example.recurrent_weights[0][0]", "1 entries"),
    (_with(example={"recurrent_weights": [[[0.6]], [[0.1]]]}), "example.recurrent_weights", "one per hidden layer"),
    (_with(example={"recurrent_weights": [[["x"]]]}), "example.recurrent_weights[0][0][0]", "number"),
    (_with(example={"inputs": [[1.0], [-0.5], [0.2]]}), "example.inputs", "2 entries"),
    (_with(example={"inputs": [[1.0, 2.0], [-0.5, 0.1]]}), "example.inputs[0]", "1 entries"),
    (_with(example={"targets": [[0.5]]}), "example.targets", "2 entries"),
    (_with({"layers": [1, 2, 2], "activation": ["tanh", "softmax"], "loss": "cross_entropy"},
           {"targets": [[0.5, 0.2], [1, 0]], "weights": None, "biases": None, "recurrent_weights": None}),
     "example.targets", "each step's"),
])
def test_bad_recurrent_specs_name_the_field(data, field, fix):
    with pytest.raises(sb.SpecError) as error:
        sb.from_dict(data)
    assert error.value.field == field and fix in str(error.value), str(error.value)


def test_cross_entropy_through_time_sums_to_one_per_step():
    """A softmax output per step with cross-entropy: delta_k(t) = a_k(t) - t_k(t) at every step (Bishop 2006,
    eq. 4.109, per step), the targets one-hot per step, and verify's three witnesses agree."""
    network = sb.unrolled([2, 3, 2], ["tanh", "softmax"], "cross_entropy", steps=3)
    derivation = sb.derive(network)
    for name in network.outputs:
        unit = network[name]
        assert sp.simplify(derivation.deltas[name] - (unit.a - network.targets[name])) == 0, name
    values = sb.random_values(network, seed=3)
    assert np.allclose(values.targets.reshape(3, 2).sum(axis=1), 1) and set(values.targets.ravel()) <= {0.0, 1.0}
    result = run("verify", "2-3-2", "--activation", "tanh,softmax", "--loss", "cross_entropy", "--recurrent",
                 "--steps", "3")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


def test_recurrent_weights_of_a_feed_forward_spec_are_refused():
    with pytest.raises(sb.SpecError, match="recurrent = true"):
        sb.from_dict({"network": {"layers": [1, 1, 1]}, "example": {"recurrent_weights": [[[0.1]]]}})


# --- the command line ------------------------------------------------------------------------------

def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_compact_recurrent_example_json_and_verify():
    result = run("example", "2-3-1", "--activation", "tanh,identity", "--loss", "half_sse", "--recurrent",
                 "--steps", "3", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["z"]) == 3 and [len(layer) for layer in data["z"][0]] == [3, 1]
    assert [len(layer) for layer in data["a"][2]] == [2, 3, 1]
    assert np.shape(data["grad"]["recurrent_weights"]) == (1, 3, 3)
    result = run("verify", "2-3-1", "--activation", "tanh,identity", "--recurrent", "--steps", "3", "--json")
    assert result.returncode == 0, result.stderr
    names = {p["name"] for p in json.loads(result.stdout)["parameters"]}
    assert {f"r[0][{i}][{j}]" for i in range(3) for j in range(3)} <= names


@pytest.mark.parametrize("args, needle", [
    (["2-3-1", "--steps", "3"], "--steps"),
    (["2-3-1", "--recurrent"], "--recurrent"),
    (["2-3-1", "--recurrent", "--steps", "0"], "network.steps"),
    (["2-1", "--recurrent", "--steps", "2"], "network.layers"),
])
def test_bad_recurrent_command_lines_exit_2_with_one_line(args, needle):
    result = run("example", *args)
    assert result.returncode == 2 and needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_checking_a_recurrent_spec_grades_per_step_and_bptt_targets_and_refuses_one_step_ones():
    """delta_output is the same at every step; dE/dr is BPTT's (tests/test_grading_recurrent.py);
    a one-step hidden delta would be graded wrong, so it is refused."""
    spec = sb.from_dict(ELMAN_111)
    right = sb.check(spec, "delta_output", r"a_k - t_k")
    assert right.verdict == "correct", right.message
    assert sb.check(spec, "grad_r[0][0][0]", "-0.21809").verdict == "correct"  # the hand-checked dE/dr
    refused = run("check", "2-3-1", "--recurrent", "--steps", "2", "--target", "delta_hidden", "--answer", "0.1")
    assert refused.returncode == 2 and "delta_hidden_bptt" in refused.stderr and "Traceback" not in refused.stderr
