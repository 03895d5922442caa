"""The finite-difference witness at the edge of what floating point resolves."""
import numpy as np
import sympy as sp

import symbackprop as sb
from symbackprop.verification import FD_STEP, noise_floor, relative_error


def _saturated():
    """2-3-1, hidden unit 0 saturated (z = 20: sigma' = 2e-9) and a target of 100: E = 5000,
    so the gradients into unit 0 (~2e-7) sit at the rounding of E over h (~2e-7)."""
    net = sb.layered([2, 3, 1], ["sigmoid", "identity"], "half_sse")
    values = sb.random_values(net, seed=1)
    parameters = dict(values.parameters)
    for i in range(2):
        parameters[sp.Symbol(f"w[0][{i}][0]", real=True)] = 10.0
    return net, values.__class__(np.ones((1, 2)), np.full((1, 1), 100.0), parameters)


def test_gradients_below_the_rounding_of_a_large_loss_pass_and_real_ones_are_still_checked():
    net, values = _saturated()
    derivation = sb.derive(net)
    report = sb.verify(net, derivation, values)
    tiny = {p.name: p for p in report.parameters if abs(p.analytic) < 1e-6}
    assert set(tiny) == {"w[0][0][0]", "w[0][1][0]", "b[0][0]"}
    # a fixed floor of 1e-5 (the rule before) calls them wrong
    assert all(abs(p.analytic - p.numeric) / max(abs(p.analytic), abs(p.numeric), 1e-5) > 1e-4 for p in tiny.values())
    # the witness really is at its noise there: the numeric value is rounding, not the gradient
    loss = sb.matrix.evaluator(derivation).evaluate(values).loss
    assert all(abs(p.numeric - p.analytic) < 16 * np.finfo(float).eps * loss / FD_STEP for p in tiny.values())
    assert report.ok, report.max_rel_error
    # ... while every gradient above the noise would still be caught wrong by 1 %
    resolvable = [p for p in report.parameters if abs(p.analytic) > 1e-3]
    assert len(resolvable) >= 5
    floor = noise_floor(loss)
    assert all(relative_error(1.01 * p.analytic, p.numeric, floor) > 1e-4 for p in resolvable)


def test_the_noise_floor_is_the_old_floor_for_ordinary_losses():
    assert noise_floor(0.3) == noise_floor(1.0) == 1e-5
    assert noise_floor(5000.0) > 1e-2
    assert relative_error(1.0, 1.0 + 2e-5) > 1e-5 and relative_error(1e-9, 0.0, noise_floor(5000.0)) < 1e-4
