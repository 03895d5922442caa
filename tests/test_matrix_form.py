"""The matrix form says what the derivation says: written out entry by entry for random
layered networks, it equals the concrete deltas and gradients at random points."""
import random

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
    return spec.network, draw(st.booleans())


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
    net, rows_are_sources = case
    derivation = sb.derive(net)
    for step in matrix_form(net, rows_are_sources):
        lhs, rhs = explicit(step.lhs, derivation, rows_are_sources), explicit(step.rhs, derivation, rows_are_sources)
        if step.rule == "definition":
            expected = lhs.applyfunc(lambda z: dict(net.definitions)[z])
        elif step.rule == "local_gradient":
            expected = lhs.applyfunc(lambda d: derivation.deltas[next(u.name for u in net.units if u.delta == d)])
        else:  # gradients: dE/dW and dE/db are the matrices of the parameters' gradients
            layer = step.layer - 1
            if step.name == "gradient_bias":
                expected = sp.Matrix([derivation.gradients[sb.network.layer_bias(layer, j)]
                                      for j in range(net.layers[step.layer])])
            else:
                grads = sp.Matrix([[derivation.gradients[sb.network.layer_weight(layer, i, j)]
                                    for j in range(net.layers[step.layer])] for i in range(net.layers[layer])])
                expected = grads if rows_are_sources else grads.T
        assert rhs.shape == expected.shape
        for mine, theirs in zip(rhs, expected):
            for seed in range(2):
                assert abs(_at_random_point(derivation, mine - theirs, seed)) < 1e-12, (step, mine, theirs)
