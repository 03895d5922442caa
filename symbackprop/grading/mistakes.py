"""The mistakes a grader knows, as data: how each changes the reference, and what to tell the student.

A wrong answer equal to a mutant of the reference (a known mistake applied to it, alone or in a
pair) at every test point made that mistake; the messages speak the student's notation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..functions import A, K, T, activation
from ..notes.notation import Notation
from .evaluation import PAD, Cases, NotElementwise, Unbound, close_rows, evaluate
from .prepared import Target
from .vocabulary import ETA, LAST, OUTPUTS, TIME, P, S, U, a, dEda, delta, dg, r, t, w, z


def _replace_sum(e, function):
    """Each sum over units replaced (a sum over the steps t is another mistake's)."""
    return e.replace(lambda x: isinstance(x, sp.Sum) and TIME not in x.variables, function)


def _swap_weights(e):
    return e.replace(lambda x: isinstance(x, sp.Indexed) and x.base == w, lambda x: w[x.indices[1], x.indices[0]])


def _own_slope(e):
    """The unit's own g'(z_u) in ``e`` (g'(z_u(t)) through time), or None."""
    return next((x for x in sp.preorder_traversal(e) if isinstance(x, sp.Function) and x.func == dg
                 and isinstance(x.args[0], sp.Indexed) and x.args[0].base == z and x.args[0].indices[0] == U), None)


def _with_slope(function):
    """A mistake made to the unit's own g'(z_u): ``function(e, slope, z_u)``, None without one."""
    def transform(e, loss):
        slope = _own_slope(e)
        return None if slope is None else function(e, slope, slope.args[0])
    return transform


def _derivative_inside(e):
    if not e.has(dg(z[U])) or not e.has(sp.Sum):
        return None
    return _replace_sum(e.xreplace({dg(z[U]): 1}), lambda s: sp.Sum(s.function * dg(z[S]), *s.limits))


def _output_formula(e, loss):
    if not e.has(sp.Sum):
        return None
    return _replace_sum(e, lambda s: _output_error(loss, U))


def _output_error(loss, unit):
    """dE/da of an output unit, at ``unit``."""
    return loss.derivative.xreplace({A: a[unit], T: t[unit], K: OUTPUTS})


def _slope(name: str, unit) -> sp.Expr:
    """Activation ``name``'s derivative written in its output (sigmoid: a(1 - a), tanh: 1 - a^2)."""
    return activation(name).derivative_in_activation.xreplace({A: a[unit]})


#: activations whose derivative students write out in the activation (a(1 - a), 1 - a^2)
SPELLED_SLOPES = ("sigmoid", "tanh")


def _other_slope(name: str):
    """g' of the unit replaced by another activation's derivative (sigmoid's for a tanh layer)."""
    return _if_has(dg(z[U]), lambda e: e.xreplace({dg(z[U]): _slope(name, U)}))


def _slope_inside(name: str):
    """The unit's derivative, spelled as an activation's in its output, moved inside the sum."""
    def transform(e, loss):
        if not e.has(dg(z[U])) or not e.has(sp.Sum):
            return None
        return _replace_sum(e.xreplace({dg(z[U]): 1}), lambda s: sp.Sum(s.function * _slope(name, S), *s.limits))
    return transform


def _inlined_output_delta(e, loss):
    """The next layer's delta replaced by the output formula: right only above the output layer."""
    if not e.has(delta[S]) or not e.has(sp.Sum):
        return None
    return _replace_sum(e, lambda s: sp.Sum(s.function.xreplace({delta[S]: _output_error(loss, S) * dg(z[S])}),
                                                         *s.limits))


def _swapped_units(e, loss):
    """delta_i a_j for delta_j a_i: the gradient (or step) of a weight with its two units exchanged
    (through time, sum_t a_j(t-1) delta_i(t) for dE/dr_ij)."""
    if e.has(a[P]):
        return (-ETA if e.has(ETA) else 1) * delta[P] * a[U]
    timed = any(isinstance(x, sp.Indexed) and x.base == a and x.indices[0] == P and len(x.indices) == 2
                for x in sp.preorder_traversal(e))
    return e.xreplace({P: U, U: P}) if timed else None


def _without_future(e, loss):
    """BPTT's delta without the error that comes back from the next step through r."""
    if not e.has(r):
        return None
    return _replace_sum(e, lambda s: sp.Integer(0) if s.function.has(r) else s)


def _last_step_only(e, loss):
    """A tied weight's gradient taken from its use at the last step T only, not summed over t."""
    timed = lambda x: isinstance(x, sp.Sum) and TIME in x.variables
    if not any(timed(x) for x in sp.preorder_traversal(e)):
        return None
    return e.replace(timed, lambda s: s.function.xreplace({TIME: LAST}))


def _same_step(e, loss):
    """Every quantity of another step (a_i(t-1), delta_m(t+1)) read at step t instead."""
    shifted = {x: x.base[x.indices[0], TIME] for x in sp.preorder_traversal(e)
               if isinstance(x, sp.Indexed) and x.base in (a, z, delta) and len(x.indices) == 2
               and x.indices[1] != TIME and x.indices[1].has(TIME)}
    return e.xreplace(shifted) if shifted else None


def _source_activation(e, replacement):
    """Every activation of the unit feeding the weight, a_p (a_p(t-1) through time), replaced by
    ``replacement(indices)``; None without one."""
    found = [x for x in sp.preorder_traversal(e) if isinstance(x, sp.Indexed) and x.base == a and x.indices[0] == P]
    return e.xreplace({x: replacement(x.indices) for x in found}) if found else None


def _untimed(function):
    """A mistake of one step's formula (a layered network's, not through time)."""
    return lambda e, loss: None if e.has(TIME) else function(e, loss)


def _timed(function):
    """A mistake of a formula through time."""
    return lambda e, loss: function(e, loss) if e.has(TIME) else None


def _transposed_recurrent(e, loss):
    """r_mj for r_jm in BPTT's future term."""
    if not e.has(r):
        return None
    return e.replace(lambda x: isinstance(x, sp.Indexed) and x.base == r, lambda x: r[x.indices[1], x.indices[0]])


def _past_for_future(e, loss):
    """delta_m(t-1) for delta_m(t+1): the error taken from the step before instead of the next."""
    if not e.has(r):
        return None
    ahead = {x: delta[x.indices[0], TIME - 1] for x in sp.preorder_traversal(e)
             if isinstance(x, sp.Indexed) and x.base == delta and len(x.indices) == 2 and x.indices[1] == TIME + 1}
    return e.xreplace(ahead) if ahead else None


def _previous_input(e, loss):
    """An input weight's gradient with the activation of the step before, h_i(t-1) for x_i(t)."""
    return None if e.has(r) or not e.has(a[P, TIME]) else e.xreplace({a[P, TIME]: a[P, TIME - 1]})


def _cross_entropy_slope(e, loss):
    """With cross-entropy, an output delta multiplied by the activation's slope a(1 - a) once more."""
    if loss.name not in ("cross_entropy", "binary_cross_entropy") or e.has(sp.Sum) or e.has(a[P]) or e.has(ETA):
        return None
    return e * _slope("sigmoid", U)


def _slope_at_activation(e, slope, zu):
    """g'(a_u) for g'(z_u): the derivative taken at the unit's output."""
    return e.xreplace({slope: dg(a[zu.indices])})


def _tanh_square(e, slope, zu):
    """(1 - tanh z)^2 for 1 - tanh^2 z."""
    return e.xreplace({slope: (1 - sp.Function("g")(zu)) ** 2})


def _above_slope_skipped(e, loss):
    """The next layer's dE/da_k for its delta_k: the derivative of the layer above left out."""
    return e.xreplace({delta[S]: dEda[S]}) if e.has(delta[S]) and not e.has(TIME) else None


def _without_successor(position: int):
    """The sum over the units fed without the one at ``position`` (a number added up by hand)."""
    def transform(e, loss):
        def drop(s):
            variable, first, last = s.limits[0]
            if variable != S or len(s.limits) > 1:
                return s
            return sp.Sum(s.function, (S, first, position - 1)) + sp.Sum(s.function, (S, position + 1, last))
        return _replace_sum(e, drop) if e.has(sp.Sum) and not e.has(TIME) else None
    return transform


def _other_input(position: int):
    """A weight's gradient with the activation of another unit of the layer feeding it (x_2 for x_1)."""
    def transform(e, loss):
        return sp.Sum(e, (P, position, position)) if e.has(a[P]) and not e.has(TIME) else None
    return transform


@dataclass(frozen=True)
class Mistake:
    """A known mistake: how it changes the reference, and what a grader says about it.
    ``transform`` returns None where the mistake cannot occur (no sum to drop)."""

    name: str
    transform: Callable
    message: str
    numbers: bool = False  # a slip with numbers (a term left out of a sum): tried on a concrete target only


def _if_has(atom, function):
    return lambda e, loss: function(e) if e.has(atom) else None


#: The mistakes the diagnosis names.  Messages are formatted with the notation's
#: spellings of the target's quantities (see :func:`_words`).  The order is the priority: a mutant
#: equal at every test point to one before it is told as that one, and a number is named after the
#: first mutant it agrees with.  What changes the whole answer comes first: its sign, then a constant
#: factor, the learning rate left out (1/eta, constant for a concrete target) before a factor 2 or
#: 1/2: a number twice the key is twice the key, whatever part of a formula could also make it so
#: (a hidden delta summed over its two inputs instead of the units it feeds is twice the right one).
MISTAKES = (
    Mistake("sign error", lambda e, loss: -e, "{sign}"),
    Mistake("missing learning rate", _if_has(ETA, lambda e: e.xreplace({ETA: 1})),
            "The learning rate {eta} is missing: the step is {eta} times the gradient."),
    Mistake("factor 2", lambda e, loss: 2 * e,
            "Off by a factor 2: your answer is twice the correct one{half}."),
    Mistake("factor 1/2", lambda e, loss: e / 2,
            "Off by a factor 1/2: your answer is half the correct one{half}."),
    Mistake("missing activation derivative", _with_slope(lambda e, slope, zu: e.xreplace({slope: 1})),
            "The factor {g_u} (= d{a_u}/d{z_u}, the slope of unit {u}'s activation) is missing; the chain rule "
            "passes through it between the error and {z_u}: correct if multiplied by {g_u}."),
    Mistake("derivative of the wrong unit", lambda e, loss: _derivative_inside(e),
            "The activation derivative belongs to unit {u}, not to the units it feeds: correct if {g_s} "
            "inside the sum were {g_u} in front of it."),
    Mistake("derivative of the wrong unit", _with_slope(
        lambda e, slope, zu: e.xreplace({slope: dg(z[(P, *zu.indices[1:])])})),
            "The activation derivative is taken at the wrong unit: correct if {g_p} were {g_u} "
            "(the derivative of the unit whose delta this is)."),
    Mistake("transposed weight index", _if_has(w[U, S], _swap_weights),
            "Transposed weight index: correct if {w_su} were {w_us} (in this notation the weight from {u} to {s} "
            "is {w_us})."),
    Mistake("missing sum", _if_has(sp.Sum, lambda e: _replace_sum(e, lambda s: s.function)),
            "The sum over the units {u} feeds is missing: unit {u} sends its output to every unit {s} of the "
            "next layer, so its error is {sum_us}, summed over {s}."),
    Mistake("sum over the wrong index", _if_has(sp.Sum, lambda e: _replace_sum(e, lambda s: sp.Sum(
        s.function, (U, 0, sp.Symbol("N"))))),
            "The sum runs over the wrong index: it must run over {s} (the units {u} feeds), not over {u}."),
    Mistake("sum over the wrong index", _if_has(sp.Sum, lambda e: _replace_sum(e, lambda s: sp.Sum(
        s.function, (P, 0, sp.Symbol("N"))))),
            "The sum runs over the wrong index: it must run over {s} (the units {u} feeds), not over {p}."),
    Mistake("output formula for a hidden unit", _output_formula,
            "This is the output-layer formula: a hidden unit has no target, its error comes back from the units "
            "it feeds: correct if {error_u} were {sum_us}, summed over {s}."),
    Mistake("input of the wrong layer", _untimed(lambda e, loss: _source_activation(e, lambda i: a[U])),
            "The input comes from the wrong layer: correct if {a_u} were {a_p} (d{z_u}/d{w_pu} is the activation "
            "of unit {p}, where the weight starts)."),
    *(Mistake("another activation's derivative", _other_slope(name),
              f"{{{name}_slope_u}} is the derivative of {name}; this layer's activation has another one: correct "
              "if it were {g_u}.") for name in SPELLED_SLOPES),
    *(Mistake("derivative of the wrong unit", _slope_inside(name),
              "The activation derivative belongs to unit {u}, not to the units it feeds: correct if "
              f"{{{name}_slope_s}} inside the sum were {{g_u}} in front of it.") for name in SPELLED_SLOPES),
    Mistake("swapped unit indices", _swapped_units,
            "The unit indices are swapped: correct if {delta_p} {a_u} were {delta_u} {a_p} (the weight from {p} to "
            "{u} gets the delta of {u}, where it ends, times the activation of {p}, where it starts)."),
    Mistake("pre-activation for the activation", lambda e, loss: _source_activation(e, lambda i: z[i]),
            "{z_p} is the weighted input of unit {p}; the weight multiplies its output: correct if {z_p} were "
            "{a_p}."),
    Mistake("output delta in a hidden formula", _inlined_output_delta,
            "The output layer's delta is written in for {delta_s}: that is right only when the units {u} feeds are "
            "outputs (the last hidden layer); in general {delta_s} is the delta of the next layer, whatever it is."),
    Mistake("missing 2/K", _if_has(OUTPUTS, lambda e: e.xreplace({OUTPUTS: 2})),
            "The 2/K of the mean squared error is missing: E = 1/K sum_k (a_k - t_k)^2 over K outputs gives "
            "dE/da_k = 2 (a_k - t_k)/K, which is (a_k - t_k) only when K = 2."),
    Mistake("missing 1/K", _if_has(OUTPUTS, lambda e: e.xreplace({OUTPUTS: 1})),
            "The 1/K of the mean squared error is missing: E = 1/K sum_k (a_k - t_k)^2 over K outputs gives "
            "dE/da_k = 2 (a_k - t_k)/K."),
    Mistake("missing the future term", _without_future,
            "The term from the next step is missing: unit {u} at step t also feeds every unit {m} of its own layer "
            "at step t+1 through {r_um}, so its error has {r_um} {delta_m}(t+1), summed over {m}, besides "
            "{sum_us}."),
    Mistake("gradient from the last step only", _last_step_only,
            "{r_pu_or_w} is the same weight at every step, so its gradient sums its uses over the steps: {target} = "
            "sum over t of {step_term}; your answer is the last step's term only."),
    Mistake("time-index shift", _same_step, "{shift}"),
    Mistake("the unit's own activation", _timed(lambda e, loss: _source_activation(e, lambda i: a[(U, *i[1:])])),
            "{a_u} is the activation of unit {u} itself; {r_pu_or_w} carries the activation of unit {p}, where it "
            "starts: correct if {a_u} were {a_p} (at the same step)."),
    Mistake("transposed recurrent weight index", _transposed_recurrent,
            "Transposed recurrent weight index: correct if {r_mu} were {r_um} (unit {u} at step t reaches unit {m} at "
            "t+1 through {r_um})."),
    Mistake("time-index shift", _past_for_future, "{shift_back}"),
    Mistake("input of the step before", _previous_input,
            "{w_pu} carries the input {a_p}(t) of its own step into unit {u}; {a_p}(t-1), the state of the step "
            "before, is what a recurrent weight carries: correct if {a_p}(t-1) were {a_p}(t)."),
    Mistake("extra activation derivative", _cross_entropy_slope,
            "With cross-entropy the output activation's derivative cancels against the loss's: {delta_u} = "
            "{a_u} - {t_u}, without the factor {sigmoid_slope_u} (or {g_u}) again."),
    Mistake("derivative at the activation", _with_slope(_slope_at_activation),
            "The derivative is taken at {a_u}, the unit's output; it belongs at its weighted input: correct if "
            "{g_a} were {g_u}."),
    Mistake("(1 - tanh)^2 for 1 - tanh^2", _with_slope(_tanh_square),
            "The derivative of tanh is 1 - tanh^2({z_u}) = 1 - {a_u}^2, not (1 - tanh {z_u})^2 = (1 - {a_u})^2."),
    Mistake("derivative of the layer above skipped", _above_slope_skipped,
            "{delta_s} is the error at {z_s}, the weighted input of unit {s}: it includes that unit's derivative "
            "{g_s}; your answer uses the error at its output, d{error}/d{a_s}, without it."),
    *(Mistake("one unit missing from the sum", _without_successor(k),
              "One term of the sum over {s} is missing: unit {u} feeds every unit {s} of the next layer, and each "
              "adds {sum_us}.", numbers=True) for k in range(PAD)),
    *(Mistake("the wrong input", _other_input(k),
              "The input is another unit's: d{z_u}/d{w_pu} is {a_p}, the activation of unit {p}, where the weight "
              "starts.", numbers=True) for k in range(PAD)),
    Mistake("old weight missing", _if_has(ETA, lambda e: e - w[P, U]),
            "The old weight is missing: the new weight is {w_pu} plus the step, {w_pu} - {eta} d{error}/d{w_pu}; "
            "your answer is the step alone."),
)


def _label(target: Target, notation: Notation, p: str, u: str) -> str:
    """The target as the student's notation names it: delta_j, dE/dw_ij, Delta w_ji."""
    plain = notation.plain
    weight = plain["weight"][0] + "_" + "".join(notation.weight_indices(p, u))
    bias = (plain["weight"][0] + "_" + "".join(notation.weight_indices("0", u)) if notation.bias == "weight"
            else f"{plain['bias'][0]}_{u}")
    recurrent = _recurrent_letter(notation) + "_" + "".join(notation.weight_indices(p, u))
    return {"delta": f"{plain['delta'][0]}_{u}", "grad_w": f"d{plain['error'][0]}/d{weight}",
            "grad_b": f"d{plain['error'][0]}/d{bias}", "update_w": f"Delta {weight}",
            "grad_r": f"d{plain['error'][0]}/d{recurrent}"}[target.kind]


def _recurrent_letter(notation: Notation) -> str:
    return notation.plain.get("recurrent_weight", ("r",))[0]


MISTAKE_NAMES = frozenset(m.name for m in MISTAKES)


def wording(notation: Notation, target: Target, loss_name: str) -> dict:
    """The spellings a message uses, in the student's notation and index letters."""
    plain = notation.plain
    letters = notation.letters.output if target.output else notation.letters.hidden[:2]
    p, u = (x.lstrip("\\").replace("ell", "l") for x in letters)
    s = notation.letters.hidden[2].lstrip("\\").replace("ell", "l") if not target.output else "m"
    if s == p and not target.output:
        s = s if target.kind == "delta" else "m"
    f, zz, aa = plain["function"][0], plain["pre_activation"][0], plain["activation"][0]
    dd, tt = plain["delta"][0], plain["target"][0]

    separator = "->" if "arrow" in notation.weight_separator or "\\to" in notation.weight_separator else ""

    def weight(x, y):
        i, j = notation.weight_indices(x, y)
        return f"{plain['weight'][0]}_{i}{separator}{j}"

    error, eta = plain["error"][0], plain["learning_rate"][0]
    negative = f"Sign error: your answer is the negative of {_label(target, notation, p, u)}. "
    if target.kind == "update_w":
        sign = (f"Wrong sign in the update: gradient descent moves against the gradient, "
                f"Delta {weight(p, u)} = -{eta} d{error}/d{weight(p, u)}.")
    elif target.kind == "delta" and not target.output:
        sign = negative + (f"The sign comes from the output error and passes unchanged through "
                           f"{weight(u, s)} {dd}_{s} and {f}'({zz}_{u}).")
    elif notation.delta_sign < 0:
        sign = negative + (f"In this notation {dd}_{u} = -d{error}/d{zz}_{u}: the output's is e_{u} {f}'({zz}_{u}) "
                           f"with e = {tt} - {aa}, and d{error}/d{weight(p, u)} = -{dd}_{u} {aa}_{p}.")
    else:
        sign = negative + (f"{dd}_{u} = d{error}/d{zz}_{u}, and the output's error term is ({aa} - {tt}), "
                           f"not ({tt} - {aa}).")
    slopes = {f"{name}_slope_{x}": _printed(_slope(name, U), {a[U]: f"{aa}_{letter}"})
              for name in SPELLED_SLOPES for x, letter in (("u", u), ("s", s))}
    through_time = _through_time_words(notation, target, p, u, s, separator)
    return {"p": p, "u": u, "s": s, "g_u": f"{f}'({zz}_{u})", "g_s": f"{f}'({zz}_{s})", "g_p": f"{f}'({zz}_{p})",
            "a_u": f"{aa}_{u}", "a_p": f"{aa}_{p}", "a_s": f"{aa}_{s}", "z_s": f"{zz}_{s}", "t_u": f"{tt}_{u}",
            "g_a": f"{f}'({aa}_{u})", "z_u": f"{zz}_{u}", "z_p": f"{zz}_{p}", "w_us": weight(u, s),
            "w_su": weight(s, u), "w_pu": weight(p, u), "sum_us": f"{weight(u, s)} {dd}_{s}", "delta_s": f"{dd}_{s}",
            "delta_u": f"{dd}_{u}", "delta_p": f"{dd}_{p}", "error_u": f"({aa}_{u} - {tt}_{u})", "error": error,
            "eta": eta, "sign": sign, "target": _label(target, notation, p, u), **slopes, **through_time,
            "half": " (the 1/2 of E = 1/2 sum (a - t)^2 cancels the 2 of the square)"
            if loss_name == "half_sse" else ""}


def _through_time_words(notation: Notation, target: Target, p: str, u: str, s: str, separator: str) -> dict:
    """The spellings of a recurrent network's messages: the peer m of unit u in its own layer,
    the recurrent weights, and the time shift the target's formula has."""
    plain = notation.plain
    m = next(x for x in ("m", "q", "l") if x not in (p, u, s))
    aa, dd = plain["activation"][0], plain["delta"][0]

    def weight(letter, x, y):
        i, j = notation.weight_indices(x, y)
        return f"{letter}_{i}{separator}{j}"

    r_um, r_pu = weight(_recurrent_letter(notation), u, m), weight(_recurrent_letter(notation), p, u)
    recurrent = target.kind == "grad_r"
    shift = (f"The time index is shifted: {r_pu} carries {aa}_{p} of the step before into step t: correct if "
             f"{aa}_{p}(t) were {aa}_{p}(t-1)." if recurrent else
             f"The time index is shifted: {aa}_{u}(t) reaches its own layer at step t+1 (through {r_um}), so that "
             f"error comes back from {dd}_{m}(t+1): correct if {dd}_{m}(t) were {dd}_{m}(t+1).")
    shift_back = (f"The time index runs the wrong way: {aa}_{u}(t) reaches its own layer at step t+1 (through {r_um}), "
                  f"so that error comes back from the next step: correct if {dd}_{m}(t-1) were {dd}_{m}(t+1).")
    return {"m": m, "r_um": r_um, "r_mu": weight(_recurrent_letter(notation), m, u), "delta_m": f"{dd}_{m}",
            "shift": shift, "shift_back": shift_back,
            "r_pu_or_w": r_pu if recurrent else weight(plain["weight"][0], p, u),
            "step_term": f"{aa}_{p}({'t-1' if recurrent else 't'}) {dd}_{u}(t)"}


def _printed(expression, names: dict) -> str:
    """A SymPy expression in the student's spelling of its symbols (a(1 - a) as y_j*(1 - y_j))."""
    return sp.sstr(expression.xreplace({k: sp.Symbol(v) for k, v in names.items()}))


def mutants_of(template, reference, cases, loss) -> list:
    """Known mistakes applied to the reference, alone and in pairs, kept when they differ
    from the reference and from each other at the test points: (names, messages, values)."""
    return mutants_per_group(template, reference, cases, loss, cases.count)[0]


def mutants_per_group(template, reference, cases, loss, size: int) -> list[list]:
    """:func:`mutants_of` for cases that are groups of ``size`` consecutive points (one student's
    variant each, all of one question): each mutant is transformed once and evaluated once for
    every group, then kept or not per group."""
    seen = _Seen(np.asarray(reference, dtype=float).reshape(-1, size))
    everywhere = np.ones(seen.groups, dtype=bool)
    concrete = bool(cases.symbols)
    singles = []
    for index, mistake in enumerate(MISTAKES):
        if mistake.numbers and not concrete:
            continue
        changed = _mutate(mistake, template, loss, cases, seen, everywhere)
        if changed is not None:
            singles.append((index, (mistake.name,), (mistake.message,), *changed))
    pairs = []
    for first, names, messages, expression, _, kept in singles:
        for mistake in MISTAKES[first + 1:]:
            if mistake.numbers or MISTAKES[first].numbers:  # one slip with numbers is told, not pairs of them
                continue
            changed = _mutate(mistake, expression, loss, cases, seen, kept)
            if changed is not None and mistake.name not in names:
                pairs.append((first, (*names, mistake.name), (*messages, mistake.message), *changed))
    found = singles + pairs
    return [[(names, messages, values[group]) for _, names, messages, _, values, kept in found if kept[group]]
            for group in range(seen.groups)]


def _mutate(mistake: Mistake, expression, loss, cases: Cases, seen: _Seen, allowed: np.ndarray):
    """(mutant, its values per group, the groups that keep it) when the mistake applies and is
    told apart at the test points of some group of ``allowed``."""
    changed = mistake.transform(expression, loss)
    if changed is None:
        return None
    try:
        values = evaluate(changed, cases).reshape(seen.groups, -1)
    except (Unbound, NotElementwise):
        return None
    kept = allowed & np.all(np.isfinite(values), axis=1)
    if mistake.numbers:  # a term left out that is zero anyway is no slip
        kept &= np.any(values, axis=1)
    kept[kept] = ~seen.holds(values[kept], kept)
    if not kept.any():
        return None
    seen.add(values, kept)
    return changed, values, kept


class _Seen:
    """The values kept so far (the reference, then each mutant) in each group of test points."""

    def __init__(self, reference: np.ndarray):
        self.groups = len(reference)
        self.values = np.empty((16, *reference.shape))
        self.kept = np.zeros((16, self.groups), dtype=bool)
        self.count = 0
        self.add(reference, np.ones(self.groups, dtype=bool))

    def add(self, values: np.ndarray, kept: np.ndarray) -> None:
        if self.count == len(self.values):
            self.values = np.concatenate([self.values, np.empty_like(self.values)])
            self.kept = np.concatenate([self.kept, np.zeros_like(self.kept)])
        self.values[self.count], self.kept[self.count] = values, kept
        self.count += 1

    def holds(self, values: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Per group of ``groups`` (a mask; ``values`` are those groups' rows): whether a value
        kept before in that group is close to it at every point."""
        earlier = self.values[:self.count, groups]
        return np.any(close_rows(values, earlier) & self.kept[:self.count, groups], axis=0)
