"""The matrix form says what the derivation says: written out entry by entry for random
layered networks and every orientation, sign and place of the bias a notation can choose,
it equals the concrete deltas and gradients at random points; and each equation the notes
print, evaluated at the worked example's numbers, gives the derivation's numbers, in every preset."""
import random

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop.notes.matrix_form import explicit, matrix_form

ELEMENTWISE = ["sigmoid", "tanh", "identity", "softplus", "z/(1+exp(-z))"]


@st.composite
def networks(draw):
    sizes = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    hidden = [draw(st.sampled_from(ELEMENTWISE)) for _ in sizes[2:]]
    output, loss = draw(st.sampled_from([("identity", "half_sse"), ("sigmoid", "binary_cross_entropy"),
                                         ("softmax", "cross_entropy"), ("tanh", "log(cosh(a - t))")]))
    if output == "softmax":
        sizes[-1] = max(2, sizes[-1])
    spec = sb.from_dict({"network": {"layers": sizes, "activation": hidden + [output], "loss": loss,
                                     "bias": draw(st.booleans())}})
    augmented = draw(st.booleans()) and bool(spec.network.biases)
    return spec.network, draw(st.booleans()), draw(st.sampled_from([1, -1])), augmented


def _at_random_point(derivation, expression, seed):
    rng = random.Random(seed)
    net = derivation.network
    point = {s: sp.Rational(rng.randint(-90, 90), 100) for s in
             [u.a for u in net.inputs] + list(net.targets.values()) + list(net.parameters)}
    if net.loss.targets_sum_to_one:  # the derivation used sum_k t_k = 1 (a - t for softmax)
        weights = [sp.Integer(rng.randint(1, 9)) for _ in net.targets]
        point.update({t: w / sum(weights) for t, w in zip(net.targets.values(), weights)})
    return sp.N(derivation.expanded(expression, point).xreplace(point).doit(), 20)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(networks())
def test_matrix_form_equals_the_concrete_formulas(case):
    net, rows_are_sources, sign, augmented = case
    derivation = sb.derive(net)
    for step in matrix_form(net, rows_are_sources, sign, augmented):
        rhs = explicit(step.rhs, derivation, rows_are_sources, sign, augmented)
        expected = _expected(step, derivation, rows_are_sources, sign, augmented)
        assert rhs.shape == expected.shape
        for mine, theirs in zip(rhs, expected):
            for seed in range(2):
                assert abs(_at_random_point(derivation, mine - theirs, seed)) < 1e-12, (step, mine, theirs)


def _expected(step, derivation, rows_are_sources, sign, augmented):
    """What the derivation says the left-hand side of ``step`` is (delta with the notation's sign)."""
    net = derivation.network
    lhs = explicit(step.lhs, derivation, rows_are_sources, sign, augmented)
    if step.rule == "definition":
        return lhs.applyfunc(lambda z: dict(net.definitions)[z])
    if step.rule == "local_gradient":
        return lhs.applyfunc(lambda d: derivation.deltas[next(u.name for u in net.units if u.delta in (d, -d))]
                             * sign)
    layer = step.layer - 1  # gradients: dE/dW and dE/db are the matrices of the parameters' gradients
    if step.name == "gradient_bias":
        return sp.Matrix([derivation.gradients[sb.network.layer_bias(layer, j)] for j in range(net.layers[step.layer])])
    grads = sp.Matrix([[derivation.gradients[sb.network.layer_weight(layer, i, j)]
                        for j in range(net.layers[step.layer])] for i in range(net.layers[layer])])
    if augmented:
        grads = sp.Matrix([[derivation.gradients[sb.network.layer_bias(layer, j)]
                            for j in range(net.layers[step.layer])]]).col_join(grads)
    return grads if rows_are_sources else grads.T


@pytest.mark.parametrize("notation", sb.notation.names())
@pytest.mark.parametrize("spec", ["default", "softmax"])
def test_each_printed_matrix_equation_gives_the_derivations_numbers(notation, spec):
    """The equations as the notes print them (this preset's orientation, sign and bias),
    evaluated at the worked example, against the example's numbers from the derivation."""
    spec = sb.from_dict(sb.spec.DEFAULT) if spec == "default" else sb.compact("2-3-3", "tanh,softmax", "cross_entropy")
    n = sb.notation.load(notation)
    net = spec.network
    derivation = sb.derive(net)
    evaluation = sb.example(net, spec.values, spec.learning_rate, derivation).evaluation
    rows, sign, augmented = n.weight_order == "from_to", n.delta_sign, n.bias == "weight"
    numbers = {**{u.a: spec.values.inputs[0][k] for k, u in enumerate(net.inputs)},
               **{t: spec.values.targets[0][k] for k, t in enumerate(net.targets.values())}, **spec.values.parameters}
    for u in net.computing_units:
        numbers.update({u.z: evaluation.z[u.name][0], u.a: evaluation.a[u.name][0],
                        u.delta: evaluation.delta[u.name][0]})
    by_name = {"z": evaluation.z, "delta": evaluation.delta}
    printed = sb.render(derivation, notation=n)
    steps = matrix_form(net, rows, sign, augmented)
    assert len(steps) == 3 * (len(net.layers) - 1) + (len(net.layers) - 1) * (not augmented)
    for step in steps:
        rhs = explicit(step.rhs, derivation, rows, sign, augmented).xreplace(numbers).doit()
        if step.rule == "definition":
            want = [by_name["z"][u.name][0] for u in net.computing_units if u.position[0] == step.layer]
        elif step.rule == "local_gradient":
            want = [sign * by_name["delta"][u.name][0] for u in net.computing_units if u.position[0] == step.layer]
        else:
            want = list(_expected(step, derivation, rows, sign, augmented).xreplace(numbers).doit())
            want = [float(x) for x in want]
        assert [float(x) for x in rhs] == pytest.approx(want, abs=1e-9), (notation, step)
    assert printed.count(r"\in \mathbb{R}^{") == len(net.layers) - 1
