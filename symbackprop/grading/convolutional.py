"""A convolutional network's concrete targets: grad_w[l][o][c][u][v] of a kernel entry
(grad_w[l][o][c][u] in 1-D; grad_w[l][i][j] of a dense layer) and grad_b[l][o], as numbers of the
worked example.

The reference is the gradient the network's own derivation gives at the example (its array form,
as ``example`` prints it: the mean over a mini-batch's samples).  The known mistakes are SymPy's
generic kernel gradient (:func:`~symbackprop.conv_backprop.derive_conv`) changed as students change
it and evaluated on the example's own tables: the kernel offset flipped (a_{i-u} for a_{i+u}),
one output position's term alone (the sum over positions missing), and delta without the
activation derivative (dE/da for dE/dz).  A conv layer's gradient of a formula with letters is
not graded here: the answer is the number.
"""
from __future__ import annotations

import re

import numpy as np
import sympy as sp

from ..conv_backprop import K, Summand, _constants, _evaluated, _positions, c, derive_conv, o
from ..convolution import ConvNetwork, convolutional, kernel_weight, weight_symbols
from ..derivation import Index, a, b, delta, w
from ..errors import SpecError
from ..functions import A, Z
from ..network import layer_bias
from ..notes import notation as notations
from ..notes.convolutional import ConvPrinter
from ..notes.notation import Notation
from ..notes.printing import NotationPrinter
from ..numerics import Values
from ..parsing import ExpressionError
from .evaluation import _NUMPY, Cases, NotElementwise, Unbound, _activation_functions
from .mistakes import wording
from .prepared import Prepared, Target, family_of, random_values
from .vocabulary import ASKED, SUM_END, P, S, U, Vocabulary, printed_key

_TARGET = re.compile(r"(grad_w|grad_b)((?:\[\d+\])+)")
USE = "grad_w[l][o][c][u][v] (grad_w[l][o][c][u] in 1-D, grad_w[l][i][j] of a dense layer) or grad_b[l][o]"

MESSAGES = {
    "flipped indices": ("The kernel offset is flipped: the kernel weight {weight} meets the input a_{{i+u}} at "
                        "output position i (a cross-correlation, as the forward pass reads it), not a_{{i-u}}; "
                        "the flip belongs to the delta of the layer below."),
    "missing sum over positions": ("One output position's term only: {weight} is used at every output position, so "
                                   "its gradient sums the term over all of them (the local gradient delta_{{i,j}}, "
                                   "times the input a kernel weight meets there)."),
    "missing activation derivative": ("The layer's delta is dE/dz = dE/da g'(z): the answer uses dE/da, without "
                                      "the activation derivative g'(z) of each output unit."),
    "sign error": "Sign error: the answer is the negative of the target.",
}
#: the same mistakes made in the delta of the layer below
BELOW = {**MESSAGES,
         "flipped indices": ("The kernel is not flipped: unit (m, n) below meets the kernel entry K_{{m-i,n-j}} at "
                             "output position (i, j) (the forward pass reads a_{{i+u}}, so u = m - i); its delta is "
                             "the full convolution of delta with the kernel flipped, not with K_{{i-m,j-n}}."),
         "missing sum over positions": ("One output position's term only: unit (m, n) feeds every output position "
                                        "whose window covers it, so its delta sums delta_{{i,j}} K_{{m-i,n-j}} over "
                                        "all of them."),
         "missing activation derivative": ("The delta below is dE/dz = g'(z_{{m,n}}) dE/da_{{m,n}}: the answer is "
                                           "dE/da_{{m,n}}, without the activation derivative of unit (m, n).")}


def parse_target(name: str, network: ConvNetwork) -> Target:
    """grad_w or grad_b of one parameter of the spec's network; ``concrete`` holds (l, *indices)."""
    squeezed = name.replace(" ", "")
    if squeezed in GENERIC:
        return Target(squeezed, squeezed, False)
    match = _TARGET.fullmatch(squeezed)
    if match is None:
        raise SpecError("--target", f"unknown target {name[:60]!r} on a convolutional network; use {', '.join(GENERIC)}, {USE} "
                                    "(0-based, like weights[l] and biases[l]), or a generic target")
    kind, numbers = match.group(1), tuple(int(x) for x in re.findall(r"\d+", match.group(2)))
    level = numbers[0]
    if level >= len(network.stack):
        raise SpecError("--target", f"{squeezed}: the network has {len(network.stack)} layers (0-based)")
    layer = network.stack[level]
    symbols = weight_symbols(level, layer)
    if kind == "grad_w":
        if symbols is None:
            raise SpecError("--target", f"{squeezed}: layer {level} is a pooling layer, it has no weights")
        if len(numbers) - 1 != symbols.ndim:
            form = "grad_w" + "".join(f"[{x}]" for x in ("locuv" if layer.kind == "conv" else "lij")[:symbols.ndim + 1])
            raise SpecError("--target", f"{squeezed}: weights[{level}] of a {layer.kind} layer take "
                                        f"{symbols.ndim + 1} indices, {form} (0-based)")
        if any(n >= size for n, size in zip(numbers[1:], symbols.shape)):
            raise SpecError("--target", f"{squeezed} is outside weights[{level}] of shape "
                                        f"{'x'.join(map(str, symbols.shape))} (0-based)")
    elif not network.biases or len(numbers) != 2 or numbers[1] >= layer.biases:
        raise SpecError("--target", f"{squeezed}: layer {level} has "
                                    f"{layer.biases if network.biases else 'no'} biases (grad_b[l][o], 0-based)")
    return Target(squeezed, kind, False, numbers)


def numbered(n: int) -> Index:
    """An index that prints as the number ``n`` (a layer's printer tags an index by its letter)."""
    return Index(sp.Symbol(str(n), integer=True), sp.Integer(n + 1))


def sheet_parameter(network: ConvNetwork, kind: str, level: int, rest) -> sp.Expr:
    """The parameter a sheet's number question differentiates by, as the sheet and the key print it:
    a conv layer's kernel entry K_{o,c,u,v} and bias b_{o} (0-based, without a layer), a dense
    layer's weight w from unit i of the layer below (flattened) to unit j, and its bias."""
    if network.stack[level].kind == "conv":
        return K[tuple(rest)] if kind == "grad_w" else b[numbered(rest[0])]
    unit = numbered(rest[-1])
    return w[(numbered(rest[0]), unit)] if kind == "grad_w" else b[unit]


def sheet_printer(network: ConvNetwork, notation: Notation, level: int, derivation) -> NotationPrinter:
    """The printer of layer ``level``'s numbers: the conv chapter's (several indices) for a conv
    layer, the dense layer's own (its letters and order) for a dense one."""
    if network.stack[level].kind == "conv":
        return ConvPrinter(notation, None)
    return NotationPrinter(notation, None, derivation.generic[f"layer {level + 1}"])  # groups count from 1


_SHEET_NAMES: dict = {}


def sheet_names(network: ConvNetwork, notation: Notation) -> dict[str, list[sp.Symbol]]:
    """The written key (:func:`printed_key`) of every parameter's name as a sheet prints it -> the
    parameters so named (two may share one: a conv bias b_{1} and a dense one)."""
    cache_key = (network, repr(notation))
    if cache_key not in _SHEET_NAMES:
        derivation, names = family_of(network).derivation, {}
        for level, layer in enumerate(network.stack):
            symbols = weight_symbols(level, layer)
            if symbols is None:
                continue
            printer = sheet_printer(network, notation, level, derivation)
            entries = [("grad_w", index) for index in np.ndindex(*symbols.shape)]
            entries += [("grad_b", (o,)) for o in range(layer.biases if network.biases else 0)]
            for kind, index in entries:
                parameter = parameter_of(network, Target("", kind, False, (level, *index)))
                key = printed_key(printer.doprint(sheet_parameter(network, kind, level, index)), commas=True)
                names.setdefault(key, []).append(parameter)
        _SHEET_NAMES[cache_key] = names
    return _SHEET_NAMES[cache_key]


def parameter_of(network: ConvNetwork, target: Target) -> sp.Symbol:
    level, *rest = target.concrete
    if target.kind == "grad_b":
        return layer_bias(level, rest[0])
    return weight_symbols(level, network.stack[level])[tuple(rest)]


def prepare(network: ConvNetwork, target: Target, notation: str | Notation, values: Values | None,
            learning_rate: float, reveal: bool, sheet: bool) -> Prepared:
    """The worked example's value of ``target`` and its known mistakes' values."""
    prepared = prepare_many(network, [target], notation, [values], learning_rate, reveal, sheet)[0]
    if isinstance(prepared, SpecError):
        raise prepared
    return prepared


def prepare_many(network: ConvNetwork, targets: list[Target], notation: str | Notation, values: list[Values | None],
                 learning_rate: float, reveal: bool, sheet: bool) -> list[Prepared | SpecError]:
    """:func:`prepare` of each (target, values) pair, e.g. one question for every student of a
    class: the mistaken formulas of a layer's kernel or bias gradient are made NumPy code once and
    evaluated over every pair's samples at once.  A pair that cannot be prepared gets its
    SpecError in its place."""
    notation = notation if isinstance(notation, Notation) else notations.load(notation)
    out: list[Prepared | SpecError | None] = [None] * len(targets)
    results, gradients, alike = {}, {}, {}
    for n, (target, numbers) in enumerate(zip(targets, values)):
        if numbers is None:
            out[n] = SpecError("example", f"{target.name} is a number of the worked example; the spec has no [example]")
            continue
        results[n] = family_of(network).compiled.evaluate(numbers, learning_rate)
        gradients[n] = float(results[n].gradients[parameter_of(network, target)])
        if not np.isfinite(gradients[n]):
            out[n] = SpecError("example", f"{target.name} of the worked example is not finite; use smaller inputs or "
                                          "weights")
            continue
        alike.setdefault((target.kind, target.concrete[0]), []).append(n)
    for members in alike.values():
        found = _mistakes(network, [targets[n] for n in members], [values[n] for n in members],
                          [results[n] for n in members], [gradients[n] for n in members])
        words = wording(notation, targets[members[0]], network.loss.name)  # the same for one kind at one layer
        for n, mistakes in zip(members, found):
            out[n] = _prepared(network, targets[n], notation, words, learning_rate, len(values[n].inputs), mistakes,
                               gradients[n], reveal, sheet)
    return out


def _prepared(network: ConvNetwork, target: Target, notation: Notation, words: dict, learning_rate: float,
              samples: int, mistakes: list[tuple[str, float]], value: float, reveal: bool, sheet: bool) -> Prepared:
    parameter = parameter_of(network, target)
    words = {**words, "target": f"dE/d{parameter}", "weight": str(parameter)}
    level, *rest = target.concrete
    printer = sheet_printer(network, notation, level, family_of(network).derivation)
    own = printed_key(printer.doprint(sheet_parameter(network, target.kind, level, rest)), commas=True)
    # a name two parameters print alike (b_{1} of a conv and of a dense layer) is the question's own
    printed = {**{key: named[0] for key, named in sheet_names(network, notation).items()}, own: parameter}
    cases = _one_case(learning_rate)
    cases.symbols[ASKED] = np.array([value])  # dE/dK_{0,0,1,2} as the key names the question
    prepared = Prepared(target, Vocabulary(notation, printed=printed, asked=parameter), cases, np.array([value]),
                        parameter, [], words, example=value, reveal=reveal, sheet=sheet, samples=samples,
                        numbers_only=True)
    prepared.example_mutants = [((name,), [MESSAGES[name]], number) for name, number in mistakes]
    return prepared


def _one_case(learning_rate: float) -> Cases:
    """The single evaluation case a number is evaluated at (answers here hold no symbols)."""
    roles = {role: np.zeros(1, dtype=int) for role in (P, U, S)}
    return Cases(roles, dict(roles), np.zeros((1, 1), dtype=int), {}, np.zeros((1, 1, 1, 1)),
                 np.zeros((1, 1), dtype=int), [], np.array([learning_rate]), np.zeros(1), S,
                 labels=[{"network": "the spec's"}])


def _mistakes(network: ConvNetwork, targets: list[Target], values: list[Values], results: list,
              gradients: list[float]) -> list[list]:
    """Per target (all of one kind at one layer): (mistake, its value at the worked example, the
    mean over samples); a mistake that gives the right value (a zero term, a linear activation) is
    left out.  Every target's samples are rows of the same arrays."""
    first = targets[0]
    level = first.concrete[0]
    layer = network.stack[level]
    found = [[("sign error", -value)] for value in gradients]
    if layer.kind == "conv":
        samples = [len(numbers.inputs) for numbers in values]
        ends = np.cumsum(samples)
        mean = lambda rows: [np.mean(rows[end - count:end], axis=0) for end, count in zip(ends, samples)]
        tables = _tables(network, level, values, results)
        at = np.repeat(np.array([target.concrete[1:] for target in targets]), samples, axis=0)
        generic = derive_conv(len(layer.kernel), bool(network.biases))
        outputs, offsets, _ = _positions(len(layer.kernel))
        formula = generic.gradient_kernel if first.kind == "grad_w" else generic.gradient_bias
        bound = (o, c, *offsets)[:at.shape[1]]
        summand = Summand(formula, _constants(layer, {}), bound)
        if first.kind == "grad_w":
            flipped = Summand(formula.xreplace({x: -x for x in offsets}), _constants(layer, {}), bound)
            for mine, number in zip(found, mean(flipped(tables, at))):
                mine.append(("flipped indices", number))
        slopes = _slopes(network, level, tables)
        if slopes is not None:
            nonzero = np.all(slopes.reshape(len(slopes), -1) != 0, axis=1)
            defined = [bool(np.all(nonzero[end - count:end])) for end, count in zip(ends, samples)]
            with np.errstate(all="ignore"):
                numbers = mean(summand({**tables, delta: tables[delta] / slopes}, at))
            for mine, number, has_slope in zip(found, numbers, defined):
                if has_slope:  # where a slope is 0, dE/da is not delta / g'(z)
                    mine.append(("missing activation derivative", number))
        terms = summand.terms(tables, at)  # one output position's term: the positions in C order
        order = [summand.names.index(x) for x in outputs]
        terms = terms.transpose(0, *(1 + k for k in order)).reshape(len(at), -1)
        for mine, numbers in zip(found, mean(terms)):
            mine += [("missing sum over positions", float(number)) for number in numbers]
    return [[(name, float(number)) for name, number in mine if not np.isclose(number, value, rtol=1e-9, atol=1e-12)]
            for mine, value in zip(found, gradients)]


def _tables(network: ConvNetwork, level: int, values: list[Values], results: list) -> dict:
    """The conv layer's K, b, input a, delta, and its own a and z (as the symbols A and Z), one
    row per sample of every worked example."""
    layer = network.stack[level]
    units = [network.unit_at(level, *index) for index in np.ndindex(*layer.shape_out)]
    below = [network.unit_at(level - 1, *index) for index in np.ndindex(*layer.shape_in)] if level else []
    kernel = [kernel_weight(level, *index) for index in np.ndindex(layer.shape_out[0], layer.shape_in[0],
                                                                   *layer.kernel)]
    columns = lambda table, chosen: np.stack([table[unit.name] for unit in chosen], axis=-1)
    rows = {base: [] for base in (a, delta, K, b, A, Z)}
    for numbers, result in zip(values, results):
        count = len(numbers.inputs)
        below_a = columns(result.a, below) if level else np.asarray(numbers.inputs, dtype=float)  # the input, flat
        rows[a].append(below_a.reshape(count, *layer.shape_in))
        rows[delta].append(columns(result.delta, units).reshape(count, *layer.shape_out))
        rows[A].append(columns(result.a, units).reshape(count, *layer.shape_out))
        rows[Z].append(columns(result.z, units).reshape(count, *layer.shape_out))
        weights = np.array([numbers.parameters.get(w, 0.0) for w in kernel], dtype=float)
        rows[K].append(np.broadcast_to(weights.reshape(1, layer.shape_out[0], layer.shape_in[0], *layer.kernel),
                                       (count, layer.shape_out[0], layer.shape_in[0], *layer.kernel)))
        if network.biases:
            rows[b].append(np.broadcast_to([numbers.parameters[layer_bias(level, x)] for x in range(layer.biases)],
                                           (count, layer.biases)))
    return {base: np.concatenate(arrays).astype(float) for base, arrays in rows.items() if arrays}


def _slopes(network: ConvNetwork, level: int, tables: dict) -> np.ndarray | None:
    """g'(z) of each unit of layer ``level`` per row of ``tables`` (from its a where the
    activation's derivative is written in it); None for a softmax layer (no slope per unit)."""
    activation = network.group_by_name[f"layer {level + 1}"].activation  # groups count from 1
    if activation.normalized:
        return None
    slope, variable = activation.derivative_in_activation, A
    if slope is None:
        slope, variable = activation.derivative, Z
    return np.broadcast_to(sp.lambdify([variable], slope, "numpy")(tables[variable]), tables[variable].shape)


#: the generic targets of a conv layer (one channel, stride 1, no padding): dE/dK_{u,v}, and the
#: delta of a unit (m, n) of the layer below, the full convolution of delta with the flipped kernel
GENERIC = ("grad_kernel", "delta_conv_input")
#: the output positions (i, j) a generic conv answer sums over: one left unsummed is a missing sum
POSITIONS = tuple(str(x.label) for x in _positions(2)[0])
#: what the target's free letters (u, v; m, n) are bound to
BOUND = (sp.Symbol("first."), sp.Symbol("second."))
_LETTERS = {"grad_kernel": ("u", "v"), "delta_conv_input": ("m", "n")}
#: test layers: (input height, width) and kernels (the layer below's first for delta_conv_input);
#: rectangular, so rows and columns differ
_SHAPES = (((5, 5), (2, 2), (2, 2)), ((6, 7), (2, 2), (3, 2)))
_POINTS = 4
_KERNEL = sp.IndexedBase("K")


def prepare_generic(network: ConvNetwork, name: str, notation: str | Notation, seed: int, reveal: bool) -> Prepared:
    """``name`` on one-channel stride-1 conv layers (the spec's first conv layer's activation, a
    dense layer of its output activation and loss above) at random points: the reference is each
    test network's own derivation (the gradient of K[u][v], the delta of unit (m, n) below), the
    tables an answer is evaluated on the layers' a, z, delta and kernel."""
    notation = notation if isinstance(notation, Notation) else notations.load(notation)
    conv = next((layer for layer in network.stack if layer.kind == "conv"), None)
    if conv is None:
        raise SpecError("--target", f"{name} needs a conv layer in the spec")
    below = name == "delta_conv_input"
    rng = np.random.default_rng(seed)
    cases, reference = [], []
    for shape, first, kernel in _SHAPES:
        layers = [{"kind": "conv", "channels": 1, "kernel": list(k), "activation": conv.activation}
                  for k in ([first, kernel] if below else [kernel])]
        test = convolutional([1, *shape], [*layers, {"kind": "dense", "units": 2,
                                                     "activation": network.stack[-1].activation}],
                             network.loss, bias=bool(network.biases))
        family = family_of(test)
        for _ in range(_POINTS):
            values = random_values(test, rng)
            result = family.compiled.evaluate(values)
            if below:
                bound = tuple(int(rng.integers(n)) for n in test.stack[0].shape_out[1:])
                value = result.delta[test.unit_at(0, 0, *bound).name][0] * notation.delta_sign
            else:
                bound = tuple(int(rng.integers(k)) for k in kernel)
                value = result.gradients[kernel_weight(0, 0, 0, *bound)]
            reference.append(float(value))
            cases.append(_case(test, values, result, int(below), bound))
    reference = np.array(reference)
    if not np.all(np.isfinite(reference)):
        raise SpecError("network.activation", f"{name} overflows float64 at the random points answers are checked "
                                              "at; use an activation and loss that stay finite there")
    first, second = _LETTERS[name]
    error = notation.plain["error"][0]
    asked = (f"{notation.plain['delta'][0]}_({first},{second}) of the layer below" if below
             else f"d{error}/dK_({first},{second})")
    words = {**wording(notation, Target(name, "grad_w", False), network.loss.name), "target": asked,
             "weight": f"K_({first},{second})"}
    vocabulary = Vocabulary(notation, dict(zip((first, second), BOUND)), offsets=dict.fromkeys(BOUND, 0), positions=2)
    prepared = Prepared(Target(name, name, False), vocabulary, _one_case(0.0), reference, BOUND[0], [], words,
                        reveal=reveal, positions=cases)
    messages = BELOW if below else MESSAGES
    prepared.mutants = [(names, [messages[names[0]]], values) for names, values in _generic_mutants(
        below, cases, reference, bool(network.biases), notation.delta_sign)
        if np.all(np.isfinite(values)) and not np.allclose(values, reference, rtol=1e-8, atol=1e-12)]
    return prepared


def _generic_mutants(below: bool, cases: list[dict], reference: np.ndarray, bias: bool, sign: int):
    """The known mistakes' values, from SymPy's generic formulas (:func:`derive_conv`) changed as
    students change them: the kernel index the wrong way round, the activation derivative left out."""
    generic = derive_conv(2, bias)
    _, offsets, inputs = _positions(2)
    yield ("sign error",), -reference
    if below:
        error = generic.error_below
        unflipped = error.replace(lambda e: isinstance(e, sp.Indexed) and str(e.base) == "K",
                                  lambda e: e.func(e.base, *e.indices[:2], *(-x for x in e.indices[2:])))
        if all("slope" in case for case in cases):  # g' per unit (not under a softmax layer)
            slopes = np.array([case["slope"] for case in cases])
            yield ("flipped indices",), sign * slopes * _derived(unflipped, cases, "delta", inputs)
        yield ("missing activation derivative",), sign * _derived(error, cases, "delta", inputs)
    else:
        flipped = generic.gradient_kernel.xreplace({x: -x for x in offsets})
        yield ("flipped indices",), _derived(flipped, cases, "delta", offsets)
        yield ("missing activation derivative",), _derived(generic.gradient_kernel, cases, "dEda", offsets)


def _case(test: ConvNetwork, values: Values, result, level: int, bound: tuple) -> dict:
    """The tables of one test point for conv layer ``level``: its input a (and z below it), its own z,
    delta and dE/da by position, its kernel, and the bound letters' values."""
    layer = test.stack[level]

    def table(values_of, at: int) -> np.ndarray:
        shape = test.stack[at].shape_out
        return np.array([values_of[test.unit_at(at, *index).name][0] for index in np.ndindex(*shape)]).reshape(shape[1:])

    kernel = weight_symbols(level, layer)[0, 0]
    case = {"delta": table(result.delta, level), "K": np.vectorize(values.parameters.get, otypes=[float])(kernel),
            "bound": bound, "label": f"1x{'x'.join(map(str, test.input_shape[1:]))} input, "
                                     + ", ".join("x".join(map(str, x.kernel)) + " kernel" for x in test.stack[:-1])}
    if level:  # the layer below's own a, z and activation: delta_conv_input's g'(z_{m,n})
        case.update(a=table(result.a, 0), z=table(result.z, 0))
        activation = test.stack[0].activation
    else:
        case.update(a=np.asarray(values.inputs[0], dtype=float).reshape(test.input_shape[1:]), z=table(result.z, 0))
        activation = layer.activation
    if not activation.normalized:
        case["functions"] = _activation_functions(activation)
        with np.errstate(all="ignore"):  # a slope of 0 (relu) leaves dE/da undefined: no such mutant
            slopes = case["functions"][1](case["z"])
            if level:
                case["slope"] = float(slopes[bound])
            else:
                case["dEda"] = case["delta"] / slopes
    return case


def _derived(formula: sp.Expr, cases: list[dict], local: str, letters) -> np.ndarray:
    """SymPy's generic formula (or a mistake made of it) on each case's tables, with ``local``
    (delta, or dE/da) as the local gradient and ``letters`` bound to the case's positions."""
    from ..conv_backprop import a as a_base, delta as delta_base, p, s

    out = []
    for case in cases:
        if local not in case:
            return np.full(len(cases), np.nan)
        tables = {a_base: case["a"][None], delta_base: case[local][None], _KERNEL: case["K"][None, None]}
        (i, j), (u, v), _ = _positions(2)
        constants = {s: 1, p: 0, o: 0, c: 0, **dict(zip(letters, case["bound"])), o.upper + 1: 1,
                     i.upper + 1: case[local].shape[0], j.upper + 1: case[local].shape[1],
                     u.upper + 1: case["K"].shape[0], v.upper + 1: case["K"].shape[1]}
        out.append(_evaluated(formula, tables, constants))
    return np.array(out)


def evaluate_positions(expression: sp.Expr, cases: list[dict]) -> np.ndarray:
    """An answer at every case: the target's letters (u, v; m, n) bound to the case's, each sum over
    a position letter running over the layer's output positions along the axis the letter indexes
    (or between its limits as written; a limit past them is undefined), a position outside a table
    reading 0 (the padding's zeros, a kernel entry outside the kernel)."""
    values = []
    for case in cases:
        env = dict(zip(BOUND, case["bound"]))
        with np.errstate(all="ignore"):
            values.append(_value(expression, case, env))
    return np.array(values, dtype=float)


def _value(e: sp.Expr, case: dict, env: dict) -> float:
    if e.is_Number:
        return float(e)
    if isinstance(e, sp.Symbol):
        if e not in env:
            raise Unbound(str(e))
        return env[e]
    if isinstance(e, sp.Add):
        return sum(_value(x, case, env) for x in e.args)
    if isinstance(e, sp.Mul):
        out = 1.0
        for x in e.args:
            out *= _value(x, case, env)
        return out
    if isinstance(e, sp.Pow):
        return float(np.power(_value(e.base, case, env), _value(e.exp, case, env)))
    if isinstance(e, sp.Sum):
        *inner, (letter, first, last) = e.limits  # the last limit is the outermost sum
        body = sp.Sum(e.function, *inner) if inner else e.function
        extent = case["delta"].shape[_axis(letter, body)]
        if last != SUM_END and int(last) >= extent:  # past the layer's positions: undefined there
            return float("nan")
        last = extent - 1 if last == SUM_END else int(last)
        return sum(_value(body, case, {**env, letter: n}) for n in range(int(first), last + 1))
    if isinstance(e, sp.Indexed):
        name = str(e.base)
        if name not in case:
            raise NotElementwise
        table = case[name]
        where = tuple(int(_value(index, case, env)) for index in e.indices)
        inside = all(0 <= n < size for n, size in zip(where, table.shape))
        return float(table[where]) if inside else 0.0
    if isinstance(e, sp.Function) and type(e).__name__ in ("g", "dg", "quoted"):
        inner = _value(e.args[0], case, env)
        if type(e).__name__ == "quoted":
            return inner
        if "functions" not in case:
            raise NotElementwise
        return float(case["functions"][type(e).__name__ == "dg"](np.array(inner)))
    if isinstance(e, sp.Function) and type(e).__name__ in _NUMPY and len(e.args) == 1:
        return float(_NUMPY[type(e).__name__](_value(e.args[0], case, env)))
    raise ExpressionError("this expression is not read for a convolutional layer; write sums of products of "
                          "delta_{i,j} and a_{i+u,j+v}")


def _axis(letter: sp.Symbol, body: sp.Expr) -> int:
    """The axis a summed position letter runs along: where it stands in a unit's indices."""
    for indexed in sorted(body.atoms(sp.Indexed), key=lambda x: str(x.base) == "a"):
        for axis, index in enumerate(indexed.indices):
            if index.has(letter):
                return axis
    return 0
