"""What an answer is for: the target, its test points and its reference numbers, prepared once.

The reference comes from the derivation itself (:func:`derive` and its NumPy code,
:func:`~symbackprop.matrix.evaluator`), never from a typed-in formula: for a generic target on two layered networks of
different widths and depths built from the spec's activations and loss, for a concrete one on the
spec's network at its worked example and at random points.  A recurrent network's own
targets (BPTT) are prepared by :mod:`.through_time`, imported only when one is asked.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import sympy as sp

from ..convolution import ConvNetwork
from ..errors import SpecError
from ..functions import A, Activation, K, T
from ..network import Network, is_shared_bias, layer_bias, layer_weight, layered
from ..notes import notation as notations
from ..notes.notation import Letters, Notation
from ..numerics import Values
from ..recurrent import UnrolledNetwork
from . import convolutional
from .evaluation import Cases, build_cases, close, evaluate
from .mistakes import mutants_per_group, wording
from .prepared import (POINTS, Prepared, Target, bound_letters, family_of, letters_of, random_values, spec_parts,
                       worked_out)
from .vocabulary import ASKED, ETA, OUTPUTS, P, S, U, Vocabulary, a, delta, dg, printed_names, t, w, z

GENERIC_TARGETS = ("delta_output", "delta_hidden", "grad_w_output", "grad_w_hidden", "grad_b_output",
                   "grad_b_hidden", "update_w_output", "update_w_hidden")
#: a recurrent network's own: BPTT's delta of a hidden unit at step t, and the gradient of a recurrent weight
RECURRENT_TARGETS = ("delta_hidden_bptt", "grad_r")
_CONCRETE = re.compile(r"(delta|grad_b)\[(\d+)\]\[(\d+)\]|(grad_w|update_w)\[(\d+)\]\[(\d+)\]\[(\d+)\]")
_CONCRETE_RECURRENT = re.compile(r"grad_r\[(\d+)\]\[(\d+)\]\[(\d+)\]")
#: generic targets of one step that a recurrent network changes, and why they are refused there
_CHANGED_THROUGH_TIME = {
    "delta_hidden": "a hidden unit's delta there also has the error from the next step (delta_hidden_bptt)",
    **{name: "a tied weight's gradient there sums over the steps (graded: grad_w_hidden, grad_r)"
       for name in ("grad_w_output", "grad_b_output", "grad_b_hidden", "update_w_output", "update_w_hidden")},
}
RECURRENT_USE = "delta_output, delta_hidden_bptt, grad_w_hidden, grad_r, grad_r[h][i][j]"



def parse_target(name: str, network: Network) -> Target:
    if isinstance(network, ConvNetwork) and name not in GENERIC_TARGETS:
        return convolutional.parse_target(name, network)
    if name in convolutional.GENERIC:
        raise SpecError("--target", f"{name} is a target of a conv layer; it needs a convolutional spec")
    recurrent = isinstance(network, UnrolledNetwork)
    squeezed = name.replace(" ", "")
    if squeezed in RECURRENT_TARGETS or _CONCRETE_RECURRENT.fullmatch(squeezed):
        if not recurrent:
            raise SpecError("--target", f"{squeezed[:60]} needs a recurrent network (recurrent = true or --recurrent)")
        return _recurrent_target(squeezed, network)
    if recurrent and name in _CHANGED_THROUGH_TIME:
        raise SpecError("--target", f"{name} is not graded on a recurrent network: {_CHANGED_THROUGH_TIME[name]}; "
                                    f"use one of {RECURRENT_USE}")
    if recurrent and name == "grad_w_hidden":
        return Target(name, "grad_w", False, timed=True)
    if name in GENERIC_TARGETS:
        kind, _, where = name.rpartition("_")
        if kind == "grad_b" and not any(u.bias is not None for u in network.computing_units):
            raise SpecError("--target", f"{name}: the network has no biases")
        return Target(name, kind, where == "output")
    if recurrent:
        raise SpecError("--target", f"{name[:60]!r} is not a target of a recurrent network; use one of "
                                    f"{RECURRENT_USE} (0-based, like recurrent_weights[h][i][j])")
    match = _CONCRETE.fullmatch(name.replace(" ", ""))
    if not match:
        raise SpecError("--target", f"unknown target {name[:60]!r}; use one of {', '.join(GENERIC_TARGETS)}, or "
                                    "delta[l][j], grad_b[l][j], grad_w[l][i][j], update_w[l][i][j] (0-based); "
                                    f"on a recurrent network {', '.join(RECURRENT_TARGETS)}, grad_r[h][i][j]")
    if network.layers is None:
        raise SpecError("--target", "concrete targets name layered units (delta[l][j]); this spec is a graph")
    kind = match.group(1) or match.group(4)
    numbers = [int(x) for x in match.groups()[1:] if x is not None and x.isdigit()]
    level, source, unit = (numbers[0], 0, numbers[1]) if len(numbers) == 2 else numbers
    sizes = network.layers
    if level >= len(sizes) - 1 or unit >= sizes[level + 1] or source >= sizes[level]:
        raise SpecError("--target", f"{name} is outside the network {'-'.join(map(str, sizes))} "
                                    "(indices are 0-based, like weights[l][i][j] and biases[l][j])")
    if kind == "grad_b" and network[f"[{level}][{unit}]"].bias is None:
        raise SpecError("--target", f"{name}: the network has no biases")
    if kind == "grad_b" and is_shared_bias(network[f"[{level}][{unit}]"].bias):
        raise SpecError("--target", f"{name}: the biases are shared (bias = \"shared\"): layer {level + 1} has one "
                                    f"bias b[{level}], not one per unit; ask for delta[{level}][{unit}] instead")
    return Target(name.replace(" ", ""), kind, level == len(sizes) - 2, (level, source, unit))


def _recurrent_target(name: str, network: UnrolledNetwork) -> Target:
    """delta_hidden_bptt, grad_r, or grad_r[h][i][j] with h a hidden layer and i, j its units."""
    if name == "delta_hidden_bptt":
        return Target(name, "delta", False, timed=True)
    match = _CONCRETE_RECURRENT.fullmatch(name)
    if match is None:
        return Target(name, "grad_r", False, timed=True)
    h, i, j = map(int, match.groups())
    sizes = network.sizes
    if h >= len(sizes) - 2 or i >= sizes[h + 1] or j >= sizes[h + 1]:
        raise SpecError("--target", f"{name} is outside the recurrent weights of {'-'.join(map(str, sizes))} "
                                    "(0-based, like recurrent_weights[h][i][j]: hidden layer h, unit i at t-1 to "
                                    "unit j at t)")
    return Target(name, "grad_r", False, (h, i, j), timed=True)


def _local_gradient(network_loss, output_activation: Activation, output: bool) -> sp.Expr:
    """delta (dE/dz, internal) of unit U as the chain rule writes it, with g' explicit."""
    if not output:
        return sp.Mul(dg(z[U]), sp.Sum(sp.Mul(w[U, S], delta[S]), (S, 0, sp.Symbol("N"))))
    if output_activation.normalized:
        return delta[U]
    error = network_loss.derivative.xreplace({A: a[U], T: t[U], K: OUTPUTS})
    return sp.Mul(error, dg(z[U]))


def _reference_expression(kind: str, local: sp.Expr, sign: int) -> sp.Expr:
    return {"delta": sign * local, "grad_w": local * a[P], "grad_b": local,
            "update_w": -ETA * local * a[P]}[kind]



def _generic_points(network: Network, output: bool, rng) -> list:
    hidden, out, bias = spec_parts(network)
    if not hidden and not output:
        raise SpecError("--target", "hidden-layer targets need a spec with a hidden layer")
    first, last = (hidden[0], hidden[-1]) if hidden else (out, out)
    shallow = family_of(layered([2, 3, 2], [first, out], network.loss, bias))
    deep = family_of(layered([3, 4, 4, 3], [first, last, out], network.loss, bias))
    homes = [(shallow, 2), (deep, 3)] if output else [(shallow, 1), (deep, 1), (deep, 2)]
    points = []
    for family, level in homes:
        for _ in range(POINTS):
            sizes = family.sizes
            positions = {P: rng.integers(sizes[level - 1]), U: rng.integers(sizes[level]),
                         S: rng.integers(sizes[level + 1]) if level + 1 < len(sizes) else 0}
            points.append((family, random_values(family.network, rng), level, positions, rng.uniform(0.1, 0.9)))
    return points


def _not_finite(target: Target, values: Values | None, first_finite: bool) -> SpecError:
    """Why ``target`` cannot be checked: its value overflows float64 at the worked example
    (the first point of a concrete target) or at the random points of the checking families."""
    if values is not None and not first_finite:
        inputs = [float(x) for x in values.inputs[0]]
        return SpecError("example", f"{target.name} of the worked example is not finite (it overflows float64 at "
                                    f"inputs {inputs}); use smaller inputs or weights, or an activation and loss "
                                    "that stay finite")
    return SpecError("network.activation", f"{target.name} overflows float64 at the random points answers are "
                                           "checked at (inputs and weights between -1 and 1); use an activation "
                                           "and loss that stay finite there")



def prepare(network: Network, target_name: str, notation: str | Notation = "default",
            values: Values | None = None, learning_rate: float = 0.5, seed: int = 0, reveal: bool = False,
            sheet: bool = False) -> Prepared:
    """The reference and the known-mistake mutants of one target, computed once per batch;
    ``sheet``: the values are a student's exercise sheet's."""
    notation = notation if isinstance(notation, Notation) else notations.load(notation)
    target = parse_target(target_name, network)
    if target.timed:
        from . import through_time  # BPTT's derivation, only for a recurrent target
        return through_time.prepare(network, target, notation, values, learning_rate, seed, reveal, sheet)
    if target.kind in convolutional.GENERIC:
        return convolutional.prepare_generic(network, target.name, notation, seed, reveal)
    if isinstance(network, ConvNetwork) and target.concrete is not None:
        return convolutional.prepare(network, target, notation, values, learning_rate, reveal, sheet)
    prepared = _prepare_alike(network, [target], notation, [values], learning_rate, seed, reveal, sheet)[0]
    if isinstance(prepared, SpecError):
        raise prepared
    return prepared


def prepare_many(network: Network, target_names: Sequence[str], notation: str | Notation,
                 values: Sequence[Values | None], learning_rate: float = 0.5, seed: int = 0,
                 reveal: bool = False, sheet: bool = False) -> list[Prepared | SpecError]:
    """:func:`prepare` of each (target, values) pair, e.g. one question for every student of a
    class: targets of one kind at one layer share their template and mutants, which SymPy builds
    once and NumPy evaluates once over every pair's test points.  A pair that cannot be prepared
    gets its SpecError in its place."""
    notation = notation if isinstance(notation, Notation) else notations.load(notation)
    out: list[Prepared | SpecError | None] = [None] * len(target_names)
    alike: dict[tuple, list[int]] = {}
    generic: dict[str, Prepared | SpecError] = {}  # the same for every pair
    for n, name in enumerate(target_names):
        try:
            target = parse_target(name, network)
        except SpecError as error:
            out[n] = error
            continue
        if isinstance(network, ConvNetwork) and target.concrete is not None:  # a conv network's numbers
            alike.setdefault(("conv",), []).append(n)
            continue
        if target.timed or target.concrete is None:  # through time, or generic (no numbers of their own)
            if target.concrete is None and name in generic:
                out[n] = generic[name]
                continue
            try:
                out[n] = prepare(network, name, notation, values[n], learning_rate, seed, reveal, sheet)
            except SpecError as error:
                out[n] = error
            if target.concrete is None:
                generic[name] = out[n]
            continue
        alike.setdefault((target.kind, target.output, target.concrete[0]), []).append(n)
    for group, members in alike.items():
        targets = [parse_target(target_names[n], network) for n in members]
        if group == ("conv",):
            done = convolutional.prepare_many(network, targets, notation, [values[n] for n in members],
                                              learning_rate, reveal, sheet)
        else:
            done = _prepare_alike(network, targets, notation, [values[n] for n in members], learning_rate, seed,
                                  reveal, sheet)
        for n, prepared in zip(members, done):
            out[n] = prepared
    return out


def _prepare_alike(network: Network, targets: list[Target], notation: Notation, values: list,
                   learning_rate: float, seed: int, reveal: bool, sheet: bool) -> list[Prepared | SpecError]:
    """Targets of one kind and place (generic, or concrete at one layer), each with its values:
    the test points of all in one set of cases, each target's its own consecutive rows."""
    first = targets[0]
    points, names, draws = [], {}, {}
    for target, numbers in zip(targets, values):
        if target.concrete is None:
            points += _generic_points(network, target.output, np.random.default_rng(seed))
            continue
        random_first = numbers is None
        if random_first not in draws:  # the random points are the same for every target of the group
            draws[random_first] = _concrete_draws(network, target.concrete[0], random_first, seed)
        points += _concrete_points(network, target, numbers, learning_rate, draws[random_first])
        names = _network_symbols(network)
    size = len(points) // len(targets)
    cases, numbers = build_cases(points, U if first.output else S, size)
    _, output_activation, _ = spec_parts(network)
    local = _local_gradient(network.loss, output_activation, first.output)
    column = {"delta": 0, "grad_w": 1, "grad_b": 2, "update_w": 1}[first.kind]
    reference = numbers[:, column] * {"delta": notation.delta_sign, "update_w": -cases.eta}.get(first.kind, 1)
    finite = np.all(np.isfinite(reference.reshape(len(targets), size)), axis=1)
    template = _reference_expression(first.kind, local, notation.delta_sign)
    rows = np.repeat(finite, size)
    if not close(evaluate(template, cases)[rows], reference[rows], 1e-6):  # the template must be the derivation's
        raise RuntimeError(f"internal: the {first.name} template disagrees with the derivation")
    table, worked = None, frozenset()
    if first.concrete is not None:
        cases.symbols = {**_symbol_values(cases, names), ASKED: numbers[:, column]}  # dE/dz, dE/dw, dE/db
        worked = worked_out(cases.symbols, network)
        cases.symbol_layer = {symbol: spot[1] for symbol, spot in names.items() if spot[0] == "z"}
        from ..notes.printing import symbol_table  # a sheet's names, only for a concrete target

        table = symbol_table(network, notation)
    mutants = mutants_per_group(template, reference, cases, network.loss, size)
    out = []
    for n, (target, numbers) in enumerate(zip(targets, values)):
        mine = slice(n * size, (n + 1) * size)
        if not finite[n]:
            out.append(_not_finite(target, numbers if target.concrete is not None else None,
                                   np.isfinite(reference[mine][0])))
            continue
        out.append(_prepared(network, target, notation, cases.rows(mine), reference[mine], mutants[n], names, table,
                             worked, reveal, sheet))
        if target.concrete is not None:
            _attach_example(out[-1], network, numbers, learning_rate)
    return out


def _prepared(network, target, notation, cases, reference, mutants, names, table, worked, reveal, sheet) -> Prepared:
    """One target's :class:`Prepared` from its cases, reference and mutants (``table``: the sheet's
    symbols, for a concrete target; ``worked``: those the student works out)."""
    weight = w[P, U] if target.concrete is None else layer_weight(*target.concrete)
    printed, asked = {}, None
    words = wording(notation, target, network.loss.name)
    if target.concrete is not None:
        printed = printed_names(table)
        level, _, unit = target.concrete
        asked = {"delta": network[f"[{level}][{unit}]"].z, "grad_b": layer_bias(level, unit)}.get(target.kind, weight)
        words["target"] = _question_name(target, network, notation, table, asked)
    vocabulary = Vocabulary(notation, letters_of(notation, target), target.output,
                            ("l", "L") if target.output else ("l",), {str(s): s for s in names},
                            per_step=isinstance(network, UnrolledNetwork),  # delta_output at any step t
                            printed=printed, asked=asked, bound=bound_letters(notation, target))
    prepared = Prepared(target, vocabulary, cases, reference, weight, mutants, words, reveal=reveal, sheet=sheet,
                        worked_out=worked)
    hidden_letters = Letters(notation.letters.hidden[:2], notation.letters.hidden)
    if target.concrete is None and target.output and notation.letters.output != hidden_letters.output:
        renamed = replace(notation, letters=hidden_letters)
        prepared.renamed = replace(prepared, vocabulary=replace(vocabulary, letters=letters_of(renamed, target)),
                                   words=wording(renamed, target, network.loss.name))
    return prepared


def _question_name(target: Target, network: Network, notation: Notation, table: dict, asked) -> str:
    """A concrete question's quantity as the sheet prints it: delta^{(2)}_{1}, dE/dw^{(1)}_{21}."""
    level, _, unit = target.concrete
    bare = lambda latex: latex[1:-1] if latex.startswith("{") and latex.endswith("}") else latex
    if target.kind == "delta":
        return bare(table[network[f"[{level}][{unit}]"].delta])
    name = f"d{notation.plain['error'][0]}/d{bare(table[asked])}"
    return f"Delta {bare(table[asked])}" if target.kind == "update_w" else name


def _concrete_draws(network: Network, level: int, random_first: bool, seed: int) -> list:
    """The random part of a concrete target's points at ``level``: (values or None for the worked
    example's, the successor unit) per point."""
    rng = np.random.default_rng(seed)
    sizes = network.layers
    draws = []
    for n in range(POINTS + 1):
        point = random_values(network, rng) if n > 0 or random_first else None
        draws.append((point, rng.integers(sizes[level + 2]) if level + 2 < len(sizes) else 0))
    return draws


def _concrete_points(network, target, values, learning_rate, draws) -> list:
    """The points of a concrete target: the worked example's first sample, then random ones;
    the learning rate is the spec's (an update answer may write it as a number)."""
    level, source, unit = target.concrete
    family = family_of(network)
    first = Values(values.inputs[:1], values.targets[:1], values.parameters) if values is not None else None
    return [(family, first if point is None else point, level + 1, {P: source, U: unit, S: successor}, learning_rate)
            for point, successor in draws]


def _network_symbols(network: Network) -> dict:
    """Each symbol of a layered network -> (table, layer, position...) it is read from."""
    names = {u.a: ("a", 0, i) for i, u in enumerate(network.inputs)}
    for u in network.computing_units:
        level, j = u.position
        names.update({u.z: ("z", level, j), u.a: ("a", level, j), u.delta: ("delta", level, j)})
        if u.bias is not None:
            names[u.bias] = ("b", level, j)
        for i, edge in enumerate(u.inputs):
            names[edge.weight] = ("w", level, i, j)
    last = len(network.layers) - 1
    names.update({symbol: ("t", last, k) for k, symbol in enumerate(network.targets.values())})
    return names


def _symbol_values(cases: Cases, names: dict) -> dict:
    out = {}
    for symbol, (table, level, *spot) in names.items():
        out[symbol] = cases.weights[:, level, spot[0], spot[1]] if table == "w" else cases.tables[table][:, level, spot[0]]
    return out


def _attach_example(prepared: Prepared, network: Network, values: Values | None, learning_rate: float) -> None:
    """The worked example's number (as ``example`` prints it: mean over samples)."""
    if values is None:
        return
    level, source, unit = prepared.target.concrete
    result = family_of(network).compiled.evaluate(values, learning_rate)
    kind = prepared.target.kind
    if kind == "delta":
        value = float(np.mean(result.delta[f"[{level}][{unit}]"])) * prepared.vocabulary.notation.delta_sign
    elif kind == "grad_b":
        value = result.gradients[layer_bias(level, unit)]
    else:
        value = result.gradients[layer_weight(level, source, unit)] * (-learning_rate if kind == "update_w" else 1)
    prepared.example, prepared.samples = value, len(values.inputs)
    if len(values.inputs) == 1:
        prepared.example_mutants = [(names, messages, v[0]) for names, messages, v in prepared.mutants]
