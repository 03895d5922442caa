"""Activations and losses as data: a name, its SymPy definition, and nothing else.

The derivation engine never branches on a name; a custom activation such as
``z/(1+exp(-z))`` goes through exactly the same path as ``sigmoid``.  What a textbook
writes as ``sigma' = a(1 - a)`` is *found* here by SymPy (see
:meth:`Activation.derivative_in_activation`), not looked up.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import sympy as sp

from .limits import SIMPLIFY_SECONDS, time_limit

#: The pre-activation variable every activation is written in.
Z = sp.Symbol("z", real=True)
#: The activation variable of textbook derivative forms such as a(1 - a).
A = sp.Symbol("a", real=True)
#: The target variable of loss expressions.
T = sp.Symbol("t", real=True)
#: The number of output units, for losses that average (mse).
K = sp.Symbol("K", integer=True, positive=True)

# Points at which candidate textbook forms are fitted before SymPy proves them.
_FIT_POINTS = (-1.7, -0.6, -0.2, 0.3, 0.8, 1.9)


@dataclass(frozen=True)
class Activation:
    """g(z) for one unit, or, when ``normalized``, a_j = g(z_j) / sum_l g(z_l) over a group.

    ``normalized`` is how softmax is written: its Jacobian is not diagonal, and the
    derivation handles it through the same chain rule with a sum over the group.
    """

    name: str
    expression: sp.Expr
    normalized: bool = False

    @cached_property
    def derivative(self) -> sp.Expr:
        """g'(z), by SymPy."""
        return sp.diff(self.expression, Z)

    @cached_property
    def derivative_in_activation(self) -> sp.Expr | None:
        """g'(z) as a polynomial of degree <= 2 in a = g(z), when one exists, else None.

        The coefficients are fitted at a few points and then *proved* by SymPy
        (``simplify(g' - P(g)) == 0``), so sigmoid gives a(1 - a) and tanh 1 - a^2
        without either being named anywhere.
        """
        return None if self.normalized else _in_activation(self.expression)

    @cached_property
    def kinks(self) -> tuple[sp.Expr, ...]:
        """Expressions in z that vanish where g is not differentiable (ReLU, step, ELU at 0)."""
        found = set()
        for node in sp.preorder_traversal(self.expression):
            if isinstance(node, sp.Piecewise):
                found.update(c.lhs - c.rhs for _, c in node.args if isinstance(c, sp.core.relational.Relational))
            elif isinstance(node, (sp.Max, sp.Min)):
                args = node.args
                found.update(x - y for x in args for y in args if sp.default_sort_key(x) < sp.default_sort_key(y))
            elif isinstance(node, (sp.Abs, sp.Heaviside, sp.sign)):
                found.add(node.args[0])
        return tuple(sorted(found, key=sp.default_sort_key))


@dataclass(frozen=True)
class Loss:
    """A loss E = sum over outputs of ``expression(a, t, K)``.

    ``targets_sum_to_one`` records that the loss is meant for probability targets
    (cross-entropy), which is what lets SymPy simplify softmax + cross-entropy to a - t.
    """

    name: str
    expression: sp.Expr
    targets_sum_to_one: bool = False

    def per_output(self, a: sp.Expr, t: sp.Expr, outputs: sp.Expr) -> sp.Expr:
        return self.expression.xreplace({A: a, T: t, K: outputs})

    @cached_property
    def derivative(self) -> sp.Expr:
        """d(per-output loss)/da, by SymPy."""
        return sp.diff(self.expression, A)


@lru_cache(maxsize=256)
def _in_activation(expression: sp.Expr) -> sp.Expr | None:
    """:attr:`Activation.derivative_in_activation` of g = ``expression``; cached across
    activations with equal expressions (every network built by name makes new ones)."""
    if expression.has(sp.Piecewise, sp.Heaviside, sp.Max, sp.Min, sp.Abs):
        return None
    g, dg = expression, sp.diff(expression, Z)
    if not dg.has(Z):
        return dg
    try:  # bounded: fitting at the points evaluates g itself, which a tower like z^z^z^z^z makes endless
        with time_limit(SIMPLIFY_SECONDS):
            return _fitted_form(g, dg)
    except TimeoutError:
        return None


def _fitted_form(g: sp.Expr, dg: sp.Expr) -> sp.Expr | None:
    """The polynomial P of degree <= 2 with g' = P(g), fitted at :data:`_FIT_POINTS` and proved."""
    coefficients = sp.symbols("c0:3")
    candidate = sum(c * A**n for n, c in enumerate(coefficients))
    try:  # an activation such as exp(exp(exp(z))) overflows at the points: no such form
        equations = [candidate.subs(A, g.subs(Z, point).evalf(30)) - dg.subs(Z, point).evalf(30)
                     for point in _FIT_POINTS]
        fitted = sp.solve_linear_system(
            sp.Matrix([[e.coeff(c) for c in coefficients] + [-e.subs({c: 0 for c in coefficients})]
                       for e in equations[:3]]), *coefficients)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if not fitted or any(not v.is_number or not v.is_extended_real or abs(v) > 1e6 for v in fitted.values()):
        return None  # a textbook form has small real coefficients; nsimplify of 1e(10^79) would not end
    exact = {c: sp.nsimplify(fitted[c], rational=True, tolerance=1e-12) for c in coefficients}
    form = _tidiest(candidate.subs(exact))
    residual = [abs(sp.N(e.subs(exact))) for e in equations]
    if max(residual) > 1e-12:
        return None
    return form if sp.simplify(dg - form.subs(A, g)) == 0 else None


def _tidiest(polynomial: sp.Expr) -> sp.Expr:
    """The shorter of the expanded and factored forms; -a(a - 1) is written a(1 - a)."""
    factored = sp.factor(polynomial)
    coefficient, factors = factored.as_coeff_mul()
    if coefficient == -1 and any(f.is_Add for f in factors):
        first = next(f for f in factors if f.is_Add)
        rest = list(factors)
        rest.remove(first)
        factored = sp.Mul(-first, *rest)
    expanded = sp.expand(polynomial)
    return expanded if sp.count_ops(expanded) < sp.count_ops(factored) else factored


def _sigmoid(z):
    return 1 / (1 + sp.exp(-z))


_DEFAULT_SLOPE = sp.Rational(1, 100)


def _leaky_relu(slope=_DEFAULT_SLOPE):
    return sp.Piecewise((Z, Z > 0), (slope * Z, True))


def _elu(alpha=1):
    return sp.Piecewise((Z, Z > 0), (alpha * (sp.exp(Z) - 1), True))


def _softplus(beta=1):
    return sp.log(1 + sp.exp(beta * Z)) / beta


#: name -> (builder of the expression in Z from keyword parameters, normalized?)
ACTIVATIONS = {
    "identity": (lambda: Z, False),
    "sigmoid": (lambda: _sigmoid(Z), False),
    "tanh": (lambda: sp.tanh(Z), False),
    "relu": (lambda: sp.Max(0, Z), False),
    "leaky_relu": (_leaky_relu, False),
    "softplus": (_softplus, False),
    "elu": (_elu, False),
    "step": (lambda: sp.Piecewise((1, Z >= 0), (0, True)), False),
    "softmax": (lambda: sp.exp(Z), True),
}

#: name -> (per-output expression in A, T, K; probability targets?)
LOSSES = {
    "half_sse": ((A - T) ** 2 / 2, False),
    "sse": ((A - T) ** 2, False),
    "mse": ((A - T) ** 2 / K, False),
    "binary_cross_entropy": (-(T * sp.log(A) + (1 - T) * sp.log(1 - A)), False),
    "cross_entropy": (-T * sp.log(A), True),
}


def activation(name: str, **parameters) -> Activation:
    """The named activation of :data:`ACTIVATIONS`, with its parameters (e.g. ``slope``)."""
    builder, normalized = ACTIVATIONS[name]
    values = {k: v if isinstance(v, sp.Basic) else sp.Rational(str(v)) for k, v in parameters.items()}
    return Activation(name, builder(**values), normalized)


def custom_activation(expression: sp.Expr, name: str | None = None) -> Activation:
    """An activation given as any SymPy expression in :data:`Z`."""
    return Activation(name or str(expression), expression)


def loss(name: str) -> Loss:
    expression, targets_sum_to_one = LOSSES[name]
    return Loss(name, expression, targets_sum_to_one)


def custom_loss(expression: sp.Expr, name: str | None = None) -> Loss:
    """A loss given as any SymPy expression in :data:`A` and :data:`T` (summed over outputs)."""
    return Loss(name or str(expression), expression)
