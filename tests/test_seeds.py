"""The seeds' worked cases, against formulas transcribed from the seeds by hand."""
import sympy as sp

import symbackprop as sb
from symbackprop.network import layer_weight


def test_seed_003_two_three_one_linear_output():
    """Seed 003: y = sum_j W2_j h_j, h_j = f(s_j), s_j = sum_i W1_ij x_i; with E = (d - y)^2 / 2
    the updates are Delta W2_j = alpha (d - y) h_j and Delta W1_ij = alpha (d - y) W2_j f'(s_j) x_i,
    so dE/dW = -(d - y) dy/dW."""
    net = sb.layered([2, 3, 1], ["tanh", "identity"], "half_sse", bias=False)
    derivation = sb.derive(net)
    x = sp.symbols("x0:2", real=True)
    W1 = [[layer_weight(0, i, j) for j in range(3)] for i in range(2)]
    W2 = [layer_weight(1, j, 0) for j in range(3)]
    s = [sum(W1[i][j] * x[i] for i in range(2)) for j in range(3)]
    h = [sp.tanh(sj) for sj in s]
    y = sum(W2[j] * h[j] for j in range(3))
    d = sp.Symbol("d", real=True)
    ours = {net.inputs[0].a: x[0], net.inputs[1].a: x[1], net.targets[net.outputs[0]]: d}
    gradients = [(W2[j], -(d - y) * h[j]) for j in range(3)]
    gradients += [(W1[i][j], -(d - y) * W2[j] * (1 - sp.tanh(s[j]) ** 2) * x[i]) for i in range(2) for j in range(3)]
    assert len(gradients) == 9 == len(net.parameters)
    for weight, seed_formula in gradients:
        derived = derivation.gradient_expanded(weight).xreplace(ours)
        assert sp.simplify(derived - seed_formula) == 0, weight


def test_seed_000_local_gradients_for_output_and_hidden_neuron():
    """Seed 000: delta_k = (a_k - t_k) g_k'(z_k), delta_j = g_j'(z_j) sum_k delta_k w_jk,
    dE/dw_ij = delta_j a_i, dE/db_j = delta_j; with sigmoid, g' = a (1 - a)."""
    net = sb.layered([2, 2, 2], "sigmoid", "half_sse")
    derivation = sb.derive(net)
    for unit in net.computing_units:
        a = unit.a
        if unit.name in net.outputs:
            t = net.targets[unit.name]
            seed_formula = (a - t) * a * (1 - a)
        else:
            seed_formula = a * (1 - a) * sum(w * net[k].delta for k, w in net.successors[unit.name])
        assert sp.expand(derivation.deltas[unit.name] - seed_formula) == 0
        generic = sb.instantiate(derivation, derivation.generic[unit.group].delta, unit.name)
        assert sp.expand(generic - seed_formula) == 0
        assert derivation.gradients[unit.bias] == unit.delta
        for edge in unit.inputs:
            assert derivation.gradients[edge.weight] == unit.delta * net[edge.source].a


def test_default_network_passes_all_three_witnesses():
    spec = sb.from_dict(sb.spec.DEFAULT)
    report = sb.verify(spec.network, values=spec.values)
    assert report.ok and report.brute_force == "agrees at random points"
    assert len(report.parameters) == 13 and report.max_rel_error < 1e-6
