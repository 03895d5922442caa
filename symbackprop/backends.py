"""The array libraries the matrix form runs on: one derivation, printed for NumPy, PyTorch or JAX.

A backend is a printer and the module it targets (as SymPy's own ``lambdify(..., "torch")``),
chosen here in one place: :class:`~symbackprop.matrix.MatrixCompiled` lambdifies the same
derived layer formulas with whichever backend it is given, and never names a library.
NumPy also gets :class:`InPlace` code for the batch gradients: the same formula as a
sequence of ufunc calls that write into buffers kept from one call to the next, so that a
batch spends its time in the matrix products and not in allocating temporaries.
"""
from __future__ import annotations

import functools
import importlib
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import numerics

#: The sum along each row (over the units of a layer), kept as a column.
row_sum = sp.Function("row_sum")


@dataclass(frozen=True)
class Backend:
    """An array library for the matrix form: how to print a formula for it and how to feed it."""

    name: str
    modules: list  # lambdify's modules: the library and what the printed code calls beyond it
    printer: type  # the code printer for those modules
    array: Callable  # numbers (nested lists, NumPy arrays) -> the library's float64 array on the device
    namespace: object  # stack, einsum, full_like with NumPy's signatures
    host: Callable = np.asarray  # the library's array -> a NumPy array
    compile: Callable = staticmethod(lambda function: function)  # a whole gradient pass, as the library runs it best
    in_place: bool = False  # ufunc calls with out= into buffers reused across calls (InPlace)

    def lambdify(self, arguments: Sequence[sp.Symbol], expression: sp.Expr) -> Callable:
        """The library's function of whole arrays computing ``expression``."""
        return numerics._lambdify(arguments, expression, modules=self.modules, printer=self.printer)

    def kernel(self, arguments: Sequence[sp.Symbol], expression: sp.Expr, consumable: Sequence[int] = ()):
        """``expression`` as a function of arrays that allocates its result (``kernel(*arrays)``:
        the lambdified function itself, no wrapper to call through) and writes into buffers
        (``kernel.into(buffers, *arrays)``, on an in-place backend :class:`InPlace` code, whose
        buffers ``kernel.slots`` lists; elsewhere the allocating function)."""
        function = self.lambdify(arguments, expression)
        function.slots, function.into = [], lambda buffers, *arrays: function(*arrays)
        if self.in_place:
            try:
                in_place = InPlace(arguments, expression, consumable)
                function.slots, function.into = in_place.slots, in_place.function
            except _NotUfuncs:  # a custom formula with a function NumPy has no ufunc for: allocating
                pass
        return function


def _numpy(device: str | None) -> Backend:
    if device not in (None, "cpu"):
        raise ValueError(f"device {device!r}: NumPy computes on the CPU; use backend='torch' for a GPU")
    return Backend("numpy", [{"row_sum": lambda x: np.sum(x, axis=-1, keepdims=True)}, *numerics._MODULES],
                   numerics._NumPyPrinter, lambda values: np.asarray(values, dtype=float), np, in_place=True)


def _library(name: str, extra: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"backend={extra!r} needs {name}: pip install 'symbackprop[{extra}]'") from None


def _torch(device: str | None) -> Backend:
    torch = _library("torch", "torch")
    from sympy.printing.pytorch import TorchPrinter
    try:
        device = torch.device(device or "cpu")
    except RuntimeError:
        raise ValueError(f"device {device!r}: PyTorch knows no such device; use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda': PyTorch finds no GPU on this machine; leave device out for the CPU")
    scalar = lambda x, like: torch.as_tensor(x, dtype=like.dtype, device=like.device)

    def extreme(pick):  # Max(0, z): torch.max takes no number, torch.maximum two tensors
        def fold(*arguments):
            like = next(a for a in arguments if isinstance(a, torch.Tensor))
            return functools.reduce(pick, [scalar(a, like) for a in arguments])
        return fold

    def where(condition, then, otherwise):  # numbers in both branches would give float32
        like = torch.empty((), dtype=torch.float64, device=condition.device)
        return torch.where(condition, scalar(then, like), scalar(otherwise, like))

    functions = {"row_sum": lambda x: torch.sum(x, dim=-1, keepdim=True),
                 "heaviside": lambda x, h0=0.5: torch.heaviside(x, scalar(h0, x)),
                 "max": extreme(torch.maximum), "min": extreme(torch.minimum), "where": where,
                 "sigmoid": torch.sigmoid}
    class Printer(_Logistic, TorchPrinter):
        def _print_Function(self, expr):  # TorchPrinter's ignores the user functions (row_sum)
            if expr.func.__name__ in self._settings["user_functions"]:
                return f"{expr.func.__name__}({', '.join(self._print(a) for a in expr.args)})"
            return super()._print_Function(expr)

    return Backend("torch", [functions, "torch"], Printer,
                   lambda values: torch.as_tensor(values, dtype=torch.float64, device=device), torch,
                   host=lambda tensor: tensor.detach().cpu().numpy())


def _jax(device: str | None) -> Backend:
    jax = _library("jax", "jax")
    jax.config.update("jax_enable_x64", True)  # float64, as the other backends and the derivation's witnesses
    from sympy.printing.numpy import JaxPrinter
    try:
        place = jax.devices(device)[0] if device else None
    except RuntimeError:
        raise ValueError(f"device {device!r}: JAX finds no such device on this machine; leave device out for the "
                         "CPU") from None
    array = lambda values: jax.device_put(jax.numpy.asarray(values, dtype=jax.numpy.float64), place)
    functions = {"row_sum": lambda x: jax.numpy.sum(x, axis=-1, keepdims=True), "sigmoid": jax.nn.sigmoid}
    return Backend("jax", [functions, "jax"], type("Printer", (_Logistic, JaxPrinter), {}), array, jax.numpy,
                   compile=jax.jit)


class _Logistic(numerics._Reciprocals):
    """A printer mixin for libraries with a logistic function: 1/(1 + exp(-x)) printed as
    sigmoid(x), one pass over the array instead of four (PyTorch: 0.32 ms against 0.75 ms on
    4096 x 64), as NumPy's printer writes log(1 + x) as log1p(x)."""

    def _print_Pow(self, expr, **settings):
        base = expr.base
        if expr.exp == -1 and base.is_Add and len(base.args) == 2 and sp.S.One in base.args:
            power = next(a for a in base.args if a != 1)
            if isinstance(power, sp.exp):
                return f"sigmoid({self._print(-power.args[0])})"
        return super()._print_Pow(expr, **settings)


BACKENDS = {"numpy": _numpy, "torch": _torch, "jax": _jax}


def backend(name: str = "numpy", device: str | None = None) -> Backend:
    """The backend called ``name`` (numpy, torch or jax) on ``device`` (cpu, cuda; the library's default)."""
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r}: use one of {', '.join(BACKENDS)}")
    return BACKENDS[name](device)


# ---------------------------------------------------------------------------------------
# NumPy in place

class _NotUfuncs(Exception):
    """A formula with a part that has no NumPy ufunc (a Piecewise, a user's function)."""


_UFUNCS = {sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", sp.sinh: "sinh", sp.cosh: "cosh", sp.sin: "sin",
           sp.cos: "cos", sp.atan: "arctan", sp.Abs: "absolute", sp.sign: "sign", sp.Max: "maximum",
           sp.Min: "minimum", sp.Heaviside: "heaviside"}


class InPlace:
    """One formula as straight-line NumPy ufunc calls, each writing into a buffer with ``out=``.

    The expression (after common subexpressions are taken out) is printed node by node; a
    node's result goes into the buffer of an operand nothing reads afterwards, else into a
    free buffer, else a new one: :attr:`slots` lists the buffers the caller keeps (shape of
    the arguments, or one column for a row sum) and passes to :attr:`function` on every call.
    Arguments at the indices ``consumable`` may be overwritten once read for the last time.
    """

    def __init__(self, arguments: Sequence[sp.Symbol], expression: sp.Expr, consumable: Sequence[int] = ()):
        definitions, (reduced,) = sp.cse([expression], symbols=(sp.Symbol(f"_c{n}") for n in itertools.count()),
                                         order="none")
        uses = Counter(node for tree in [*(rhs for _, rhs in definitions), reduced]
                       for node in sp.preorder_traversal(tree) if isinstance(node, sp.Symbol))
        self._names = {symbol: f"v{n}" for n, symbol in enumerate(arguments)}
        self._reads = Counter({f"v{n}": uses[symbol] for n, symbol in enumerate(arguments)})  # still to come
        self._writable = {f"v{n}" for n in consumable}
        self._kinds: dict[str, str] = {}  # buffer -> full or column
        self._free: list[str] = []
        self._lines: list[str] = []
        self.slots: list[str] = []
        for symbol, rhs in definitions:
            self._names[symbol] = self._value(rhs)
            self._reads[self._names[symbol]] = uses[symbol]
        result = self._value(reduced)
        source = "\n    ".join([f"def kernel(buffers, {', '.join(f'v{n}' for n in range(len(arguments)))}):",
                                *(f"b{n} = buffers[{n}]" for n in range(len(self.slots))), *self._lines,
                                f"return {result}"])
        namespace = {name: getattr(np, name) for name in ["sum", "add", "subtract", "multiply", "divide",
                                                          "negative", "square", "sqrt", "power",
                                                          *filter(None, _UFUNCS.values())]}
        exec(compile(source, f"<in place: {expression}>", "exec"), namespace)  # code printed from SymPy, as lambdify
        self.function = namespace["kernel"]
        self.source = source

    def _kind(self, operand: str) -> str:
        """full (an argument's shape), column (a row sum) or number."""
        if operand.startswith(("v", "b")):
            return self._kinds.get(operand, "full")
        return "number"

    def _value(self, expression: sp.Expr) -> str:
        """The name (or literal) that holds ``expression`` once the printed lines have run."""
        if expression.is_number:
            try:
                return repr(float(expression))
            except TypeError:
                raise _NotUfuncs(expression) from None
        if isinstance(expression, sp.Symbol):
            if expression not in self._names:
                raise _NotUfuncs(expression)
            return self._names[expression]
        if isinstance(expression, sp.Add):
            return self._sum(expression)
        if isinstance(expression, sp.Mul):
            return self._product(expression)
        if isinstance(expression, sp.Pow):
            return self._power(expression)
        if expression.func == row_sum:
            operand = self._value(expression.args[0])
            return self._call("sum", [operand], "column", keywords=", axis=-1, keepdims=True")
        if expression.func in (sp.Max, sp.Min):
            operands = [self._value(a) for a in expression.args]
            return functools.reduce(lambda x, y: self._call(_UFUNCS[expression.func], [x, y]), operands)
        if _UFUNCS.get(expression.func) is None:
            raise _NotUfuncs(expression)
        operands = [self._value(a) for a in expression.args]
        if expression.func == sp.Heaviside and len(operands) == 1:
            operands.append("0.5")  # H(0) = 1/2, SymPy's convention (and the lambdified code's)
        return self._call(_UFUNCS[expression.func], operands)

    def _sum(self, expression: sp.Add) -> str:
        constant, terms = expression.as_coeff_add()
        total = self._value(terms[0]) if constant == 0 else repr(float(constant))
        for term in terms[constant == 0:]:
            coefficient, _ = term.as_coeff_Mul()
            if coefficient < 0:
                total = self._call("subtract", [total, self._value(-term)])
            else:
                total = self._call("add", [total, self._value(term)])
        return total

    def _product(self, expression: sp.Mul) -> str:
        coefficient, factors = expression.as_coeff_mul()
        over = [f for f in factors if f.is_Pow and f.exp.is_number and f.exp < 0]
        under = [f for f in factors if f not in over]
        total = repr(float(coefficient)) if coefficient not in (1, -1) or not under else None
        for factor in under:
            operand = self._value(factor)
            total = operand if total is None else self._call("multiply", [total, operand])
        for factor in over:
            total = self._call("divide", [total, self._value(sp.Pow(factor.base, -factor.exp))])
        return self._call("negative", [total]) if coefficient == -1 and under else total

    def _power(self, expression: sp.Pow) -> str:
        base, exponent = expression.args
        if exponent.is_number and exponent < 0:
            return self._call("divide", ["1.0", self._value(sp.Pow(base, -exponent))])
        if exponent == 2:
            return self._call("square", [self._value(base)])
        if exponent == sp.Rational(1, 2):
            return self._call("sqrt", [self._value(base)])
        return self._call("power", [self._value(base), self._value(exponent)])

    def _call(self, function: str, operands: list[str], kind: str | None = None, keywords: str = "") -> str:
        """Print ``function(*operands, out=...)`` into a buffer of ``kind`` (the widest operand's)."""
        kinds = [self._kind(o) for o in operands]
        kind = kind or ("full" if "full" in kinds else "column" if "column" in kinds else "number")
        if kind == "number":
            raise _NotUfuncs(function)  # constants are folded by SymPy before they get here
        for operand in operands:
            self._reads[operand] -= 1
        done = [o for o in dict.fromkeys(operands) if self._reads[o] == 0 and (o.startswith("b") or o in self._writable)]
        out = next((o for o in done if self._kind(o) == kind), None)
        if out is None:
            out = next((b for b in self._free if self._kinds[b] == kind), None)
            if out is None:
                out = f"b{len(self.slots)}"
                self.slots.append(kind)
                self._kinds[out] = kind
            else:
                self._free.remove(out)
        self._free.extend(o for o in done if o != out and o.startswith("b"))
        self._reads[out] = 1  # a result is read once, unless it is a common subexpression (set by the caller)
        self._lines.append(f"{function}({', '.join(operands)}{keywords}, out={out})")
        return out
