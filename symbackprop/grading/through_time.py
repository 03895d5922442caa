"""A recurrent network's targets, graded through time: BPTT's delta and the tied weights' gradients.

Imported only when such a target is asked, so a feed-forward ``check`` never derives BPTT.
The reference numbers are the concrete derivation's of unrolled networks (two test shapes
over the :data:`TEST_STEPS` for a generic target; the spec's own network for grad_r[h][i][j], whose
number is also compared with slips made through time: the deltas recomputed backwards with a
mistake at every step, a step's term left out);
the formula the mistakes mutate is :func:`symbackprop.bptt.derive_recurrent`'s, in the
reader's symbols, and it must agree with those numbers before any answer is graded.  Every
case binds the unit j, the unit i feeding it (for dE/dr_ij, a unit of j's own layer at t-1),
a unit k it feeds, and the step t: a random step for a delta, the last step T for a gradient,
so that an answer with a free t is its last step's term (a gradient's sum over the steps that ends at
t is judged wrong before: the gradient has no step of its own).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import sympy as sp

from .. import bptt
from ..errors import SpecError
from ..network import layer_weight
from ..notes.notation import Notation
from ..numerics import Values
from ..recurrent import UnrolledNetwork, recurrent_weight, unit_name, unrolled
from .evaluation import PAD, Cases, activation_row, close, evaluate, value_at
from .mistakes import MISTAKES, mutants_of, wording
from .prepared import POINTS, Prepared, Target, bound_letters, family_of, letters_of, spec_parts, worked_out
from .vocabulary import ASKED, LAST, TIME, P, S, U, Vocabulary, a, b, delta, dg, printed_names, r, w, z

#: The lengths of the two test networks' sequences: a delta has a past and a future, and a sum over
#: part of the steps (t from T - 3, or from 3, where the first term of dE/dr vanishes as a_i(0) = 0)
#: cannot equal the whole sum on both lengths.
TEST_STEPS = (5, 6)
#: The unit m of a hidden unit's own layer at t+1, summed over in BPTT's delta.
PEER = sp.Symbol("m")


def prepare(network: UnrolledNetwork, target: Target, notation: Notation, values: Values | None,
            learning_rate: float, seed: int, reveal: bool, sheet: bool = False) -> Prepared:
    """The reference, the BPTT formula and its mutants of one recurrent target."""
    hidden, out, bias = spec_parts(network)
    if any(g.normalized for g in hidden):
        raise SpecError("--target", f"{target.name}: a softmax hidden layer has no slope of its own per unit; "
                                    "BPTT targets need elementwise hidden activations")
    rng = np.random.default_rng(seed)
    if target.concrete is None:
        first, last = hidden[0], hidden[-1]
        shallow = family_of(unrolled([2, 3, 2], [first, out], network.loss, bias, TEST_STEPS[0]))
        deep = family_of(unrolled([2, 3, 3, 2], [first, last, out], network.loss, bias, TEST_STEPS[1]))
        points = [_point(family, _sequence(family.network, rng), level, target, rng)
                  for family, level in ((shallow, 1), (deep, 1), (deep, 2)) for _ in range(POINTS)]
    else:
        h, source, unit = target.concrete
        family = family_of(network)
        first = Values(values.inputs[:1], values.targets[:1], values.parameters) if values is not None else None
        points = [_point(family, first if n == 0 and first is not None else _sequence(network, rng), h + 1, target,
                         rng, (source, unit)) for n in range(POINTS + 1)]
    cases, reference = _cases(points, target, notation.delta_sign)
    template = _formula(target.kind, hidden[0], bias)
    template = notation.delta_sign * template if target.kind == "delta" else template  # Haykin's -dE/dv
    if not close(evaluate(template, cases), reference, 1e-6):  # BPTT's formula must be the derivation's
        raise RuntimeError(f"internal: the {target.name} formula of bptt disagrees with the unrolled derivation")
    names = {}
    weight = (recurrent_weight(*target.concrete) if target.concrete is not None
              else r[P, U] if target.kind == "grad_r" else w[P, U])
    printed = {}
    if target.concrete is not None:
        cases.symbols, cases.symbol_layer = _symbols(points)
        names = {str(symbol): symbol for symbol in cases.symbols}  # a[0][1](0), x[0](2), r[0][1][2], ...
        cases.symbols[ASKED] = reference  # dE/dr^{(1)}_{21} as the sheet names the question
        from ..notes.printing import symbol_table  # the sheet's names of the recurrent weights, only
        printed = {key: symbol for key, symbol in printed_names(symbol_table(network, notation)).items()
                   if symbol in network.recurrent_weights}
    offsets = {P: 0 if target.kind == "grad_r" else -1, U: 0, S: 1}
    vocabulary = Vocabulary(notation, letters_of(notation, target), False, ("l",), names, timed=True, offsets=offsets,
                            bound=bound_letters(notation, target), printed=printed,
                            asked=weight if printed else None)
    mutants = mutants_of(template, reference, cases, network.loss)
    if target.concrete is not None:
        mutants += _numbers_through_time(template, _formula("delta", hidden[0], bias), reference, cases,
                                         network.loss, mutants)
    prepared = Prepared(target, vocabulary, cases, reference, weight, mutants,
                        wording(notation, target, network.loss.name), reveal=reveal, sheet=sheet,
                        worked_out=worked_out(cases.symbols, network))
    if target.concrete is not None and values is not None:
        prepared.example = family.compiled.evaluate(values, learning_rate).gradients[weight]
        if len(values.inputs) == 1:
            prepared.example_mutants = [(n, messages, v[0]) for n, messages, v in prepared.mutants]
    return prepared


def _formula(kind: str, activation, bias: bool) -> sp.Expr:
    """BPTT's delta_j(t) (with g'(z_j(t)) as the layer's slope, whatever the activation), dE/dr_ij
    or dE/dw_ij, as :func:`bptt.derive_recurrent` derived it, in the reader's symbols."""
    generic = bptt.derive_recurrent(activation, bias)
    symbols = {bptt.a: a, bptt.z: z, bptt.delta: delta, bptt.w: w, bptt.r: r, bptt.b: b, bptt.j: U, bptt.k: S,
               bptt.i: P, bptt.t: TIME, bptt.T: LAST}
    if kind == "delta":
        slope = next(step.rhs for step in generic.steps if step.rule == "activation_derivative")
        return dg(z[U, TIME]) * (generic.delta / slope).xreplace({**symbols, bptt.m: PEER})
    gradient = generic.gradient_recurrent if kind == "grad_r" else generic.gradient_weight
    return gradient.xreplace({**symbols, bptt.source: P})


#: The mistakes in BPTT's delta_j(t) that a computation by hand makes at every step on its way
#: backwards in time.  (A time-index shift, delta_m(t) or delta_m(t-1) for delta_m(t+1), asks for
#: deltas not computed yet on that way: no one gets a number so.)
RECURSION_MISTAKES = ("missing the future term", "transposed recurrent weight index", "missing activation derivative")
_RECOMPUTED = ("Your number is {target} = sum over t of {step_term} with every {delta_u}(t) computed that way, "
               "backwards from the last step.")
_ONE_STEP = ("One step's term is missing from the sum over t: {r_pu_or_w} is the same weight at every step, so "
             "{target} = sum over t = 1, ..., T of {step_term}, each step's term once.")


def _numbers_through_time(template, delta_formula, reference, cases: Cases, loss, mutants: list) -> list:
    """A concrete gradient's slips through time as mutants (names, messages, values): the deltas
    computed backwards in time with one of :data:`RECURSION_MISTAKES` made at every step, then
    summed as ``template`` sums them; and the sum over t without one step's term (kept where that
    term is not zero: the t = 1 term of dE/dr_ij is, as a_i(0) = 0)."""
    found = []
    for mistake in MISTAKES:
        changed = mistake.transform(delta_formula, loss) if mistake.name in RECURSION_MISTAKES else None
        if changed is not None:
            values = evaluate(template, _backwards(changed, cases))
            found.append(((mistake.name,), (mistake.message, _RECOMPUTED), values))
    whole = evaluate(template, cases)
    for step in range(1, int(cases.steps.max()) + 1):
        values = whole - evaluate(_step_term(template, step), cases)
        found.append((("one step missing from the sum",), (_ONE_STEP,), values))
    kept = []
    for names, messages, values in found:
        earlier = [reference, *(v for *_, v in mutants), *(v for *_, v in kept)]
        if np.all(np.isfinite(values)) and not any(close(values, v) for v in earlier):
            kept.append((names, messages, values))
    return kept


def _backwards(formula, cases: Cases) -> Cases:
    """``cases`` (a concrete target's: each the spec's network) with every hidden delta computed
    by ``formula`` (delta_j(t) from the deltas of step t above and of step t+1 in its layer), step
    by step backwards from T, layer by layer downwards, from the derivation's output deltas.  Each
    case is repeated once per unit of the widest hidden layer, so that a layer's units at a step
    are one evaluation."""
    count, layers = cases.count, int(np.count_nonzero(cases.width[0]))
    widest = int(cases.width[0, 1:layers - 1].max())
    repeated = cases.rows(np.repeat(np.arange(count), widest))  # its tables are copies
    deltas = repeated.tables["delta"]
    units = np.tile(np.arange(widest), count)
    for step in range(int(cases.steps.max()), 0, -1):
        for level in range(layers - 2, 0, -1):
            env = {U: (np.full(len(units), level), units), S: (np.full(len(units), level + 1), np.zeros_like(units)),
                   TIME: (None, np.full(len(units), step))}
            found = np.broadcast_to(value_at(formula, repeated, env), units.shape).reshape(count, widest)
            width = int(cases.width[0, level])
            deltas[:, step, level, :width] = np.repeat(found[:, :width], widest, axis=0)
    return replace(cases, tables={**cases.tables, "delta": deltas[::widest]})


def _step_term(template, step: int):
    """The term of ``step`` in ``template``'s sum over the steps (the sum left without it is the
    whole less this)."""
    return template.replace(lambda x: isinstance(x, sp.Sum) and TIME in x.variables,
                            lambda s: s.function.xreplace({TIME: step}))


def _sequence(network: UnrolledNetwork, rng) -> Values:
    """One random sequence: inputs, targets (one-hot per step for a loss whose targets sum to
    one) and parameters."""
    steps, outputs = network.steps, network.sizes[-1]
    inputs = rng.uniform(-1, 1, (1, steps * network.sizes[0]))
    if network.loss.targets_sum_to_one:
        targets = np.eye(outputs)[rng.integers(outputs, size=steps)].reshape(1, -1)
    else:
        targets = rng.uniform(0.05, 0.95, (1, steps * outputs))
    return Values(inputs, targets, {p: float(rng.uniform(-1, 1)) for p in network.parameters})


def _point(family, values: Values, level: int, target: Target, rng, units: tuple[int, int] | None = None):
    """(family, values, layer of the unit, {role: position}, step): the unit fed by a random unit
    of the layer below (of its own layer for dE/dr), feeding a random unit of the layer above."""
    sizes = family.network.sizes
    own = target.kind == "grad_r"
    source, unit = units if units is not None else (rng.integers(sizes[level if own else level - 1]),
                                                    rng.integers(sizes[level]))
    step = int(rng.integers(1, family.network.steps + 1)) if target.kind == "delta" else family.network.steps
    return family, values, level, {P: source, U: unit, S: rng.integers(sizes[level + 1])}, step


def _cases(points: list, target: Target, sign: int) -> tuple[Cases, np.ndarray]:
    """The cases of :mod:`.evaluation` with a time axis, from each point's derivation, and the
    target's reference per case."""
    count = len(points)
    depth = max(len(f.network.sizes) for f, *_ in points)
    longest = max(f.network.steps for f, *_ in points)
    rng = np.random.default_rng(12345)
    shape = (count, longest + 2, depth, PAD)  # step 0: the zero state; T + 1: no error from the future
    tables = {base: rng.uniform(-1, 1, shape) for base in ("z", "a", "b", "delta", "dEda")}
    tables["t"] = rng.uniform(0.05, 0.95, shape)
    tables["a"][:, 0] = 0.0
    weights = rng.uniform(-1, 1, (count, depth, PAD, PAD))
    pairs = {name: rng.uniform(-1, 1, (count, depth, PAD, PAD)) for name in ("r", "dEdw", "dEdr")}
    width, activation = np.zeros((count, depth), dtype=int), np.zeros((count, depth), dtype=int)
    functions, function_of = [], {}
    layer = {role: np.zeros(count, dtype=int) for role in (P, U, S)}
    position = {role: np.zeros(count, dtype=int) for role in (P, U, S)}
    steps, time, reference, labels = (np.zeros(count, dtype=int), np.zeros(count, dtype=int), np.zeros(count), [])
    own = target.kind == "grad_r"
    for c, (family, values, level, positions, step) in enumerate(points):
        net, sizes = family.network, family.network.sizes
        result = family.compiled.evaluate(values)
        steps[c], time[c] = net.steps, step
        width[c, :len(sizes)] = sizes
        activation[c] = activation_row(net, depth, functions, function_of)
        tables["delta"][c, net.steps + 1:] = 0.0
        _fill(tables, weights, pairs, c, family, values, result)
        for role, offset in ((P, 0 if own else -1), (U, 0), (S, 1)):
            layer[role][c], position[role][c] = level + offset, positions[role]
        source, unit = positions[P], positions[U]
        if target.kind == "delta":
            reference[c] = sign * result.delta[unit_name(step - 1, level, unit)][0]
        else:
            weight = recurrent_weight if own else layer_weight
            reference[c] = result.gradients[weight(level - 1, source, unit)]
        labels.append({"network": f"{'-'.join(map(str, sizes))} over T = {net.steps}", "layer": level,
                       "positions": {str(role): int(positions[role]) for role in (P, U, S)}, "step": step})
    cases = Cases(layer, position, width, tables, weights, activation, functions, np.zeros(count),
                  np.array([f.network.sizes[-1] for f, *_ in points], dtype=float), S, labels=labels, steps=steps,
                  time=time, pairs=pairs)
    return cases, reference


def _fill(tables: dict, weights, pairs: dict, c: int, family, values: Values, result) -> None:
    """Case ``c``'s tables from one sequence: every unit at every step, the weights, the recurrent
    weights and the gradients, and dE/da (BP2's sum, plus the next step's through r)."""
    net, sizes = family.network, family.network.sizes
    parameters, gradients = values.parameters, result.gradients
    for unit in net.units:
        level, j = unit.position
        s = unit.step + 1
        if unit.is_input:
            tables["a"][c, s, 0, j] = values.inputs[0, unit.step * sizes[0] + j]
            continue
        for base, found in (("z", result.z), ("a", result.a), ("delta", result.delta)):
            tables[base][c, s, level, j] = found[unit.name][0]
        if unit.bias is not None:
            tables["b"][c, :, level, j] = parameters[unit.bias]
    for level in range(1, len(sizes)):
        for i in range(sizes[level - 1]):
            for j in range(sizes[level]):
                weights[c, level, i, j] = parameters[layer_weight(level - 1, i, j)]
                pairs["dEdw"][c, level, i, j] = gradients[layer_weight(level - 1, i, j)]
        if level < len(sizes) - 1:
            for i in range(sizes[level]):
                for j in range(sizes[level]):
                    pairs["r"][c, level, i, j] = parameters[recurrent_weight(level - 1, i, j)]
                    pairs["dEdr"][c, level, i, j] = gradients[recurrent_weight(level - 1, i, j)]
    last = len(sizes) - 1
    for s in range(1, net.steps + 1):
        for k in range(sizes[-1]):
            name = unit_name(s - 1, last, k)
            tables["t"][c, s, last, k] = values.targets[0, (s - 1) * sizes[-1] + k]
            point = {net[name].a: result.a[name][0], net.targets[name]: tables["t"][c, s, last, k]}
            tables["dEda"][c, s, last, k] = float(family.derivation.output_errors[name].xreplace(point))
    for s in range(net.steps, 0, -1):
        for level in range(last - 1, 0, -1):
            above = weights[c, level + 1, :sizes[level], :sizes[level + 1]] @ tables["delta"][c, s, level + 1,
                                                                                             :sizes[level + 1]]
            ahead = pairs["r"][c, level, :sizes[level], :sizes[level]] @ tables["delta"][c, s + 1, level,
                                                                                        :sizes[level]]
            tables["dEda"][c, s, level, :sizes[level]] = above + ahead


def _symbols(points: list) -> tuple[dict, dict]:
    """A concrete target's network symbols -> their values per case, and each z symbol's layer."""
    family = points[0][0]
    net = family.network
    results = [family.compiled.evaluate(values) for _, values, *_ in points]
    symbols, layers = {}, {}
    for unit in net.units:
        if unit.is_input:
            column = unit.step * net.sizes[0] + unit.position[1]
            symbols[unit.a] = np.array([values.inputs[0, column] for _, values, *_ in points])
            continue
        for symbol, found in ((unit.z, "z"), (unit.a, "a"), (unit.delta, "delta")):
            symbols[symbol] = np.array([getattr(result, found)[unit.name][0] for result in results])
        layers[unit.z] = unit.position[0]
    for parameter in net.parameters:
        symbols[parameter] = np.array([values.parameters[parameter] for _, values, *_ in points])
    for n, symbol in enumerate(net.targets.values()):
        symbols[symbol] = np.array([values.targets[0, n] for _, values, *_ in points])
    return symbols, layers
