"""Numbers from the derivation: forward pass, loss, deltas, gradients, one SGD step.

The derived formulas are turned into NumPy code with ``sympy.lambdify``.  Its ``cse``
hook receives the network's own intermediate definitions (z, a forward, then delta
backward) as the common subexpressions, so the generated code is the backward pass
itself and never the exponentially large expanded gradient.
"""
from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from .derivation import Derivation
from .functions import Z
from .network import Network
from .progress import Progress, progress

_MODULES = [{"Heaviside": lambda x, h0=0.5: np.heaviside(x, h0)}, "numpy"]
_SCALAR_MODULES = [{"Heaviside": lambda x, h0=0.5: h0 if x == 0 else float(x > 0)}, "math"]


class _Reciprocals:
    """A printer mixin: x**-n printed as 1/x**n.  SymPy prints x**(-1.0), and NumPy's float
    power takes 70% longer than a division (sigmoid's 1/(1 + exp(-z)) on 4096 x 64)."""

    def _print_Pow(self, expr, **settings):
        if expr.exp.is_integer and expr.exp.is_negative:
            divisor = expr.base if expr.exp == -1 else sp.Pow(expr.base, -expr.exp)
            return f"1/{self.parenthesize(divisor, PRECEDENCE['Mul'], strict=True)}"
        return super()._print_Pow(expr, **settings)


class _NumPyPrinter(_Reciprocals, NumPyPrinter):
    """NumPy code with 1/x**n for x**-n."""


def _printer(base: type, names: dict[sp.Symbol, str], functions: set, bar: Progress):
    """A code printer that writes each symbol under its identifier in ``names`` and keeps
    SymPy's order of terms: sorting every 785-term sum of 784-30-10 for printing took 80%
    of the code generation, and renaming the expressions by ``xreplace`` most of the rest.
    Each top-level expression printed advances ``bar``."""
    class Printer(base):
        def _print_Symbol(self, symbol):
            return names.get(symbol) or super()._print_Symbol(symbol)

        def doprint(self, expr, *args, **kwargs):
            bar.advance()
            return super().doprint(expr, *args, **kwargs)

    return Printer({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                    "user_functions": {name: name for name in functions}, "order": "none"})


def _lambdify(arguments, outputs, assignments=(), modules=None, printer=None):
    """Function of ``arguments`` computing ``outputs`` (a list, or one expression) after
    ``assignments`` in order.

    Symbols are printed as plain identifiers: ``w[0][1][2]`` is a fine SymPy name but not
    a Python variable.  ``modules`` are lambdify's (default NumPy); "math" gives code for
    Python floats, which is faster per call than NumPy on scalars; ``printer`` the code printer
    for other modules (the matrix form's backends).
    """
    modules = modules or _MODULES
    assignments = list(assignments)
    names = {symbol: f"v{n}" for n, symbol in enumerate(
        dict.fromkeys([*arguments, *(lhs for lhs, _ in assignments)]))}
    functions = {name for module in modules if isinstance(module, dict) for name in module}
    base = printer or (_NumPyPrinter if "numpy" in modules else PythonCodePrinter)
    with progress("generating code", len(assignments) + (len(outputs) if isinstance(outputs, list) else 1)) as bar:
        return sp.lambdify([sp.Symbol(names[s]) for s in arguments], outputs, modules=modules,
                           printer=_printer(base, names, functions, bar),
                           cse=lambda exprs: (assignments, exprs), docstring_limit=0)


@dataclass(frozen=True)
class Values:
    """Numbers for one network: inputs x[sample][i], targets t[sample][k], and parameters."""

    inputs: np.ndarray
    targets: np.ndarray
    parameters: Mapping[sp.Symbol, float]


@dataclass(frozen=True)
class Evaluation:
    """Everything one forward and backward pass computes, per sample and averaged."""

    loss: float  # mean over samples
    z: dict[str, np.ndarray]  # unit -> value per sample
    a: dict[str, np.ndarray]
    delta: dict[str, np.ndarray]
    gradients: dict[sp.Symbol, float]  # mean over samples
    updated: dict[sp.Symbol, float]


class Compiled:
    """The derivation as NumPy functions of (inputs, targets, parameters).

    Inputs and targets broadcast: pass arrays of samples, or a 2-D grid of parameter
    values against samples to evaluate many perturbed networks in one call.
    """

    def __init__(self, derivation: Derivation):
        net = derivation.network
        self.derivation = derivation
        self.network = net
        self.parameters = net.parameters
        self.arguments = ([u.a for u in net.inputs] + list(net.targets.values()) + list(self.parameters))
        forward = list(net.definitions)
        backward = derivation.backward_definitions()
        loss = net.loss_expression
        self._units = net.computing_units
        self._definitions = forward
        outputs = ([loss] + [u.z for u in self._units] + [u.a for u in self._units]
                   + [u.delta for u in self._units] + [derivation.gradients[p] for p in self.parameters])
        self._full = _lambdify(self.arguments, outputs, forward + backward)

    @cached_property
    def _forward(self):
        """Loss and z only, for finite differences; layered networks use the matrix form."""
        return _lambdify(self.arguments, [self.network.loss_expression] + [u.z for u in self._units],
                         self._definitions)

    @cached_property
    def sample_gradient(self):
        """dE/dp for one sample as a function of floats: (inputs, targets, parameters) in the
        order of :attr:`arguments` -> gradients in the order of :attr:`parameters`.

        Python arithmetic on floats, no arrays: a few microseconds for small networks, where
        NumPy's per-call overhead would dominate (for many samples use :meth:`evaluate`).
        ``math.exp`` raises OverflowError where NumPy would return inf (|z| beyond ~709).
        """
        return _lambdify(self.arguments, [self.derivation.gradients[p] for p in self.parameters],
                         list(self.network.definitions) + self.derivation.backward_definitions(),
                         _SCALAR_MODULES)

    def _call(self, function, values: Values, parameter_arrays=None):
        x = np.asarray(values.inputs, dtype=float)
        t = np.asarray(values.targets, dtype=float)
        params = parameter_arrays if parameter_arrays is not None else [values.parameters[p] for p in self.parameters]
        return function(*x.T, *t.T, *params)

    def evaluate(self, values: Values, learning_rate: float = 0.0) -> Evaluation:
        """Forward pass, loss, deltas and gradients; mini-batches average loss and gradients."""
        samples = len(values.inputs)
        results = [np.broadcast_to(np.asarray(r, dtype=float), (samples,))
                   for r in self._call(self._full, values)]
        n = len(self._units)
        loss, zs, acts, deltas, grads = (results[0], results[1:1 + n], results[1 + n:1 + 2 * n],
                                         results[1 + 2 * n:1 + 3 * n], results[1 + 3 * n:])
        names = [u.name for u in self._units]
        gradients = {p: float(g.mean()) for p, g in zip(self.parameters, grads)}
        updated = {p: float(values.parameters[p] - learning_rate * gradients[p]) for p in self.parameters}
        return Evaluation(float(loss.mean()), dict(zip(names, zs)), dict(zip(names, acts)),
                          dict(zip(names, deltas)), gradients, updated)

    def forward(self, values: Values, parameter_arrays=None):
        """(loss per sample, z per unit per sample); parameters may be arrays that broadcast."""
        loss, *zs = self._call(self._forward, values, parameter_arrays)
        return loss, dict(zip((u.name for u in self._units), zs))

    def finite_differences(self, values: Values, step: float = 5e-6, batch: int = 2**21):
        """Central differences of the mean loss for every parameter, in batched calls.

        Perturbed parameter vectors are evaluated as rows of one broadcast call, ``batch``
        entries (rows x parameters) at a time, so memory stays bounded for large networks.
        Returns (gradient per parameter, crossed) where ``crossed[p]`` is True when the
        perturbation of p moves some unit across a kink of its activation (ReLU or step
        at 0, ...), so the difference quotient means nothing there.
        """
        count = len(self.parameters)
        base = np.array([values.parameters[p] for p in self.parameters], dtype=float)
        h = step * np.maximum(1.0, np.abs(base))
        gradient = np.empty(count)
        crossed = np.zeros(count, dtype=bool)
        kinks = [(unit.name, sp.lambdify(Z, kink, "numpy")) for unit in self._units
                 for kink in self.network.group_by_name[unit.group].activation.kinks]
        chunk = max(1, batch // (2 * count))
        for start in range(0, count, chunk):
            index = np.arange(start, min(start + chunk, count))
            grid = np.repeat(base[None, :], 2 * len(index), axis=0)
            grid[np.arange(len(index)), index] += h[index]
            grid[len(index) + np.arange(len(index)), index] -= h[index]
            loss, zs = self.forward(values, [column[:, None] for column in grid.T])
            loss = np.broadcast_to(loss, (2 * len(index), len(values.inputs))).mean(axis=1)
            gradient[index] = (loss[:len(index)] - loss[len(index):]) / (2 * h[index])
            for name, kink in kinks:
                side = np.broadcast_to(np.sign(kink(np.asarray(zs[name]))), (2 * len(index), len(values.inputs)))
                plus, minus = side[:len(index)], side[len(index):]
                crossed[index] |= np.any(plus != minus, axis=1) | np.any(plus == 0, axis=1)
        return dict(zip(self.parameters, gradient)), dict(zip(self.parameters, crossed))


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled(derivation: Derivation) -> Compiled:
    """The NumPy functions of ``derivation``, generated once per derivation: the worked
    example and the verification of the same notes share them (for 784-30-10 the code
    generation alone takes 15 s)."""
    if derivation not in _COMPILED:
        _COMPILED[derivation] = Compiled(derivation)
    return _COMPILED[derivation]


def random_values(network: Network, samples: int = 1, seed: int = 0) -> Values:
    """Seeded random inputs, targets and parameters with two decimals, so runs repeat
    and a worked example reads like one from a textbook.

    Targets lie in [0.05, 0.95]; for probability losses (cross-entropy) each sample's
    targets are one-hot, as the derivation assumed they sum to one.
    """
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-1, 1, (samples, len(network.inputs))).round(2)
    if network.loss.targets_sum_to_one:  # one-hot within each group (each step of an unrolled network)
        size, groups = network.loss_outputs, len(network.outputs) // network.loss_outputs
        targets = np.eye(size)[rng.integers(0, size, samples * groups)].reshape(samples, -1)
    else:
        targets = rng.uniform(0.05, 0.95, (samples, len(network.outputs))).round(2)
    drawn = rng.uniform(-1, 1, len(network.parameters)).round(2)
    return Values(inputs, targets, {p: float(v) for p, v in zip(network.parameters, drawn)})
