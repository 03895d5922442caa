"""The verdict on one answer against a prepared target: read, evaluate, compare, diagnose.

Equal means |answer - reference| <= 1e-8 max(|answer|, |reference|) + 1e-12 at every test point:
float64 evaluation of formulas this size is accurate to about 1e-14, while every real mistake is
off by O(1) relatively at a random point.  A number-only answer to a concrete target is compared
with the worked example (or the student's sheet) at the :data:`DIGITS` significant digits asked.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import sympy as sp

from .evaluation import Cases, NotElementwise, Unbound, bindings, close, evaluate, value_at
from .building import NotAsked
from .convolutional import BELOW, BOUND, MESSAGES, POSITIONS, evaluate_positions
from .mistakes import MISTAKE_NAMES
from .prepared import Prepared
from .reading import MAX_LENGTH, Answer, ExpressionError, read_answer
from .spelling import lines_of
from .vocabulary import ASKED, DELTA, ETA, TIME, P, S, U, a, dEda, dEdK, dEdr, dEdw, delta, quoted, t, updated, w, z

NUMBER_RTOL = 1e-3  # an expression with the worked example's numbers in it, against its value
#: the significant digits a number-only answer is asked for (the sheets say so)
DIGITS = 4


@dataclass
class Verdict:
    """The decision on one answer: ``verdict`` is "correct", "incorrect" or "cannot read"."""

    verdict: str
    message: str
    diagnosis: list[str] = field(default_factory=list)
    counterexample: dict | None = None
    lines: list[dict] = field(default_factory=list)  # a derivation's lines: {"line", "text", "verdict", "message"}

    @property
    def exit_status(self) -> int:
        return {"correct": 0, "incorrect": 1}.get(self.verdict, 2)

    @property
    def first_wrong_line(self) -> int | None:
        """The number of the first line that is not right (1 for a wrong one-line answer)."""
        return next((line["line"] for line in self.lines if line["verdict"] != "correct"), None)

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "message": self.message, "diagnosis": self.diagnosis,
                "counterexample": self.counterexample or {}, "lines": self.lines}


def check_prepared(prepared: Prepared, text: str) -> Verdict:
    """Grade one answer against a prepared target.  A derivation of several lines (``\\\\``,
    ``\\begin{aligned}``, newlines; a line ``= ...`` continues the one before) is checked line by
    line, as STACK's equivalence reasoning is: every line must equal the target, and the verdict
    is the first line's that does not."""
    if not isinstance(text, str):
        return Verdict("cannot read", f"the answer must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        return Verdict("cannot read", f"the answer is {len(text)} characters long; at most {MAX_LENGTH} are read")
    try:
        lines = lines_of(text)
    except ExpressionError as error:
        return Verdict("cannot read", str(error))
    verdicts = [_check_formula(prepared, re.sub(r"^\s*=", "", line), n + 1 == len(lines))
                for n, line in enumerate(lines)]
    table = [{"line": n + 1, "text": line.strip(), "verdict": v.verdict, "message": v.message}
             for n, (line, v) in enumerate(zip(lines, verdicts))]
    wrong = next((n for n, v in enumerate(verdicts) if v.verdict != "correct"), None)
    if len(lines) == 1:
        return replace(verdicts[0], lines=table)
    if wrong is None:
        return Verdict("correct", f"Correct: each of the {len(lines)} lines equals the target.", lines=table)
    first = verdicts[wrong]
    message = first.message[0].lower() + first.message[1:]
    return replace(first, message=f"Line {wrong + 1}: {message}", lines=table)


def _check_formula(prepared: Prepared, text: str, final: bool) -> Verdict:
    """One formula.  An output-layer answer that is wrong in the notation's letters but right,
    or wrong in a known way, with the hidden-layer letters (neuron j fed by i, as most texts
    call the unit of a formula) is read that way: renaming the free indices consistently
    changes nothing."""
    verdict = _check_read(prepared, text, final)
    if verdict.verdict != "incorrect" or prepared.renamed is None:
        return verdict
    other = prepared.renamed
    renamed = _check_read(other, text, final)
    reading = (f"read with {other.words['u']} as the output unit and {other.words['p']} feeding it (this "
               f"notation writes {prepared.words['u']} and {prepared.words['p']})")
    if renamed.verdict == "correct":
        return Verdict("correct", f"Correct, {reading}.")
    if renamed.verdict == "incorrect" and _named(renamed) and not _named(verdict):
        return Verdict("incorrect", renamed.message, [f"Answer {reading}.", *renamed.diagnosis],
                       renamed.counterexample)
    return verdict


def _check_read(prepared: Prepared, text: str, final: bool = True) -> Verdict:
    """One formula in one reading; ``final`` (the last line of a derivation) must not merely
    restate its target."""
    try:
        answer = read_answer(text, prepared.vocabulary)
    except ExpressionError as error:
        refused = prepared.numbers_only and not isinstance(error, NotAsked)
        return Verdict("cannot read", f"{error}; {_NUMBER_ONLY}" if refused else str(error))
    if prepared.numbers_only and any(side.free_symbols - {ASKED} for side in answer.sides):
        return Verdict("cannot read", f"{prepared.target.name}: {_NUMBER_ONLY}")
    if prepared.sheet and prepared.target.concrete is not None and answer.sides[-1].free_symbols & {P, U, S}:
        return Verdict("cannot read", f"{prepared.target.name}: {_GENERAL_FORMULA}")
    if answer.remarks:
        headline = "Swapped unit indices." if answer.swapped else "An index names the wrong unit or layer."
        return Verdict("incorrect", headline, list(answer.remarks))
    free = _free_step_limit(prepared, answer.sides)
    if free is not None:
        return free
    if prepared.example is not None and any(side.free_symbols & prepared.worked_out for side in answer.sides):
        prepared = _at_random_points(prepared)
    try:
        sides = _answer_sides(prepared, answer)
    except Unbound as error:
        if prepared.positions is not None and str(error) in POSITIONS:  # an output position, not summed
            messages = BELOW if prepared.target.kind == "delta_conv_input" else MESSAGES
            return Verdict("incorrect", "Missing sum over positions.", [messages["missing sum over positions"]
                                                                         .format(**prepared.words)])
        if prepared.positions is not None:
            letters = " and ".join(prepared.vocabulary.letters)
            return Verdict("incorrect", f"The index {error} is free: no sum binds it, and {prepared.words['target']} "
                                        f"depends on {letters} only, through sums over the layer's output positions "
                                        f"{', '.join(POSITIONS)}.")
        return Verdict("incorrect", f"The index {error} is neither bound to the unit of the target nor summed "
                                    f"over; the formula for {prepared.words['u']} cannot depend on it.",
                       [_letters_hint(prepared)])
    except NotElementwise:
        if prepared.target.kind == "delta_conv_input" and any(side.has(dEda) for side in answer.sides):
            return Verdict("incorrect", "The answer restates what it should derive.", [_CONV_UNWORKED])
        return Verdict("incorrect", f"{prepared.words['g_u']} is not defined for a softmax layer: each output "
                                    "depends on every z of its layer (the Jacobian is a matrix); write what "
                                    "the delta equals, e.g. in terms of a and t.")
    except _Wrong as error:
        return Verdict("incorrect", str(error))
    except ExpressionError as error:
        return Verdict("cannot read", str(error))
    at_example = (answer.decimals and prepared.target.concrete is not None and prepared.example is not None
                  and not prepared.random_only
                  and any(side.free_symbols - {ASKED} for side, _ in sides))  # a number alone mixes nothing
    for number, (side, values) in enumerate(sides):
        verdict = _judge(prepared, side, values, number, len(sides), at_example and bool(side.free_symbols),
                         answer.digits)
        if verdict is not None and prepared.random_only and answer.decimals and side.free_symbols:
            return replace(verdict, diagnosis=[*verdict.diagnosis, _MIXED_WORKED_OUT])
        if verdict is not None:
            return verdict
    restated = final and _restates(prepared, sides[-1][0])
    if restated:
        return Verdict("incorrect", "The answer restates what it should derive.", [restated])
    correct = "Correct." if len(sides) == 1 else "Correct: every side equals the target."
    return Verdict("correct", correct, [_AT_EXAMPLE_ONLY] if at_example and any(s.free_symbols for s, _ in sides) else [])


#: delta_conv_input with dE/da_{m,n} of the unit below left in it (its test layers have no values for it)
_CONV_UNWORKED = ("dE/da_{m,n} is left unworked: unit (m, n) of the layer below feeds every output position whose "
                  "window covers it, so dE/da_{m,n} sums delta_{i,j} K_{m-i,n-j} over them.")


_MIXED_WORKED_OUT = ("A formula with a unit's z, a or delta in it is checked as a formula, at random points, "
                     "where numbers read off your worked example do not hold: give the value, or the formula "
                     "in the network's symbols only.")


def _at_random_points(prepared: Prepared) -> Prepared:
    """``prepared`` without its first test point, the worked example: an answer in the symbols the
    student works out is a formula, and only there could its value give the key away."""
    rest = slice(1, None)
    return replace(prepared, cases=prepared.cases.rows(rest), reference=prepared.reference[rest],
                   mutants=[(names, messages, values[rest]) for names, messages, values in prepared.mutants],
                   random_only=True)


_NUMBER_ONLY = (f"a convolutional network's concrete target is graded as the worked example's number: give its value "
                f"({DIGITS} significant digits), not a formula")


#: a sheet's number answered with the general formula (its q2 answer for q3), which computes nothing
_GENERAL_FORMULA = (f"the question asks for the number of your sheet; a formula in index letters is the "
                    f"general one, not this quantity's value: give the value ({DIGITS} significant digits)")


def _letters_hint(prepared: Prepared) -> str:
    """The index letters of the student's notation, for an answer written in other letters."""
    words, notation = prepared.words, prepared.vocabulary.notation
    roles = f"the unit {words['u']} and the unit {words['p']} feeding it"
    if not prepared.target.output:
        roles += f", with {words['s']} for the units it feeds"
    return (f"The {notation.name} notation names {roles} ({words['target']}); "
            "write the answer with these letters.")


class _Wrong(Exception):
    """An answer wrong in its form (the left-hand side names another quantity)."""


def _restates(prepared: Prepared, side) -> str | None:
    """Why a right-hand side that equals the target is no derivation: it names the target
    itself (delta_j for delta_j, dE/dw_ij for dE/dw_ij), or, for a hidden unit, leaves dE/da_j
    unworked (BP1's dE/da_k is the answer for an output unit, not for a hidden one)."""
    target, words = prepared.target, prepared.words
    if target.concrete is not None:
        if side.has(ASKED):  # the question's own derivative as the sheet prints it, dE/dw^{(1)}_{21}
            return f"{words['target']} is what the answer should work out"
        if target.kind != "delta":
            return None
        level, _, unit = target.concrete
        own = sp.Symbol(f"delta[{level}][{unit}]", real=True)
        return (f"{words['target']} is what the answer should work out" if target.kind == "delta" and side.has(own)
                else None)
    if target.timed:  # through time: delta_j(t), and the tied weights' whole gradients
        itself = {"delta": delta[U, TIME], "grad_w": quoted(dEdw[P, U]), "grad_r": quoted(dEdr[P, U])}[target.kind]
    else:
        itself = {"delta": delta[U], "grad_w": quoted(sp.Mul(delta[U], a[P], evaluate=False)),
                  "grad_b": quoted(delta[U])}.get(target.kind)
    if itself is not None and side.has(itself):
        return f"{words['target']} is what the answer should work out, in terms of the network's quantities."
    if not target.output and target.kind != "update_w" and side.has(dEda[U, TIME] if target.timed else dEda[U]):
        return (f"d{prepared.vocabulary.notation.plain['error'][0]}/d{words['a_u']} is left unworked: for a hidden "
                f"unit it is {words['sum_us']}, summed over {words['s']}.")
    return None


def _free_step_limit(prepared: Prepared, sides) -> Verdict | None:
    """A total gradient through time (dE/dr_ij, dE/dw_ij) has no step of its own, so a sum over the
    steps that ends (or starts) at t, the step a delta_j(t) has free, is no reading of it (t would
    be taken for the last step T and the sum to t for the whole)."""
    if not prepared.target.timed or prepared.target.kind == "delta":
        return None
    limit = next(filter(None, map(_step_limit_at_t, sides)), None)
    if limit is None:
        return None
    words = prepared.words
    return Verdict("incorrect", f"The sum over the steps {limit} t, but {words['target']} has no step t of its own: "
                                "the total gradient sums over every step, to T (\\sum_{t=1}^{T}).",
                   [(f"t is the step of a delta such as {words['delta_u']}(t); {words['target']} adds the weight's "
                     "uses at every step t = 1, ..., T of the sequence.")])


def _step_limit_at_t(e, bound: bool = False) -> str | None:
    """"ends at" or "starts at" for a sum over the steps whose limit is the free step t (one inside
    another sum over the steps names that sum's step, and is read so)."""
    if isinstance(e, sp.Sum):
        steps = [limit for limit in e.limits if limit[0] == TIME]
        if steps and not bound:
            _, first, last = steps[-1]  # the outermost
            if last.has(TIME) or first.has(TIME):
                return "ends at" if last.has(TIME) else "starts at"
        return _step_limit_at_t(e.function, bound or bool(steps))
    return next(filter(None, (_step_limit_at_t(x, bound) for x in e.args)), None)


def _answer_sides(prepared: Prepared, answer: Answer) -> list:
    """(expression, values) of each side to compare with the reference; an update's left
    side says whether the answer is the change (Delta w) or the new weight (w <-, w^+)."""
    sides, relations = list(answer.sides), list(answer.relations)
    cases = prepared.cases
    if prepared.positions is not None and len(sides) > 1 and _names_position_target(prepared, sides[0]):
        sides.pop(0)  # dE/dK_{u,v} = ..., delta_{m,n} = ...: the key's own left-hand side
    elif prepared.positions is not None and len(sides) > 1 and sides[0].has(dEdK):
        raise _Wrong(f"The left-hand side is not {prepared.words['target']}.")
    if prepared.positions is not None and any(side.has(dEdK) for side in sides):
        raise _Wrong("The answer uses a kernel gradient dE/dK itself, the quantity to derive: write what it equals.")
    update = prepared.target.kind == "update_w"
    weight = prepared.weight
    new_value = False
    if relations[:1] == ["->"]:  # Nielsen's w -> w' = ...: what the arrow starts from is the old weight
        old = sides.pop(0)
        relations.pop(0)
        if not update:
            raise _Wrong(f"The left-hand side is a weight update; the target is {prepared.words['target']}.")
        if not close(evaluate(old, cases), evaluate(weight, cases)):
            raise _Wrong(f"What the arrow starts from is not the weight the update changes ({prepared.words['target']} "
                         "changes it).")
    if "->" in relations:
        raise ExpressionError("an arrow goes once, from the old weight to the new one: w -> w' = ...")
    if any(s.has(DELTA) for s in sides[1:]) or (sides[0].has(DELTA) and len(sides) == 1):
        raise ExpressionError("Delta (the change of a weight) belongs on the left-hand side only")
    if not update and (sides[0].has(DELTA) or sides[0].has(updated) or relations[:1] == ["<-"]):
        raise _Wrong(f"The left-hand side is a weight update; the target is {prepared.words['target']}.")
    if len(sides) > 1 and update:
        left = sides.pop(0)
        if left.has(DELTA):
            named = left.xreplace({DELTA: 1})
        else:
            new_value = True
            named = left.replace(lambda x: isinstance(x, sp.Function) and type(x).__name__ == "updated",
                                 lambda x: x.args[0])
        if not close(evaluate(named, cases), evaluate(weight, cases)):
            raise _Wrong(f"The left-hand side is not {prepared.words['target']}.")
    elif update:
        new_value = sides[0].has(weight)
    if any(s.has(updated) for s in sides):
        raise ExpressionError("a new weight value (w^+, w(n+1)) belongs on the left-hand side only")
    out = []
    for side in sides:
        values = evaluate(side, cases) if prepared.positions is None else evaluate_positions(side, prepared.positions)
        if new_value:
            values = values - evaluate(weight, cases)
        out.append((side, values))
    return out


def _names_position_target(prepared: Prepared, side) -> bool:
    """Whether a conv target's left-hand side is its own name, which its tables cannot evaluate:
    dE/dK_{u,v} of grad_kernel, and delta_{m,n} (or dE/dz_{m,n}) of delta_conv_input, where a
    delta by position is otherwise the conv layer's own delta_{i,j}."""
    if prepared.target.kind == "grad_kernel":
        return side == quoted(dEdK[BOUND])
    sign = prepared.vocabulary.notation.delta_sign
    own = delta[BOUND]
    return side in ((own, quoted(own)) if sign == 1 else (sp.Mul(-1, own, evaluate=False),))


def _judge(prepared: Prepared, side, values, number: int, count: int, at_example: bool,
           digits: int | None = None) -> Verdict | None:
    """None when ``side`` equals the target, else the verdict on it; ``at_example``: compared at
    the worked example only (numbers from it mixed with symbols hold nowhere else)."""
    reference = prepared.reference
    where = _where(number, count)
    if not side.free_symbols and prepared.example is not None:  # a number: the worked example's value
        return _judge_number(prepared, float(values[0]), where, digits)
    if number == 0 and count > 1 and not close(values, reference):
        return Verdict("incorrect", f"The left-hand side is not {prepared.words['target']}.",
                       [f"The target is {prepared.words['target']}; the left-hand side names another quantity."],
                       _counterexample(prepared, values, side=side))
    if at_example:
        return _judge_at_example(prepared, values, where)
    if not np.all(np.isfinite(values)):
        bad = [case for case in np.flatnonzero(~np.isfinite(values)) if _may_show(prepared, case)]
        return Verdict("incorrect", where("The answer is undefined (division by zero, log of a negative "
                                          "number, overflow, a sum past the last unit or step) at a point "
                                          "where the target is defined."), [],
                       _counterexample(prepared, values, int(bad[0]), side) if bad else None)
    if close(values, reference):
        return None
    for names, messages, mutant in prepared.mutants:
        if close(values, mutant):
            return Verdict("incorrect", where(_headline(names)), [m.format(**prepared.words) for m in messages],
                           _counterexample(prepared, values, side=side))
    diagnosis = []
    with np.errstate(all="ignore"):
        ratio = values / reference
    if np.all(np.isfinite(ratio)) and np.ptp(ratio) <= 1e-8 * np.max(np.abs(ratio)):
        diagnosis.append(f"Your answer is {ratio[0]:.6g} times the correct one at every test point: a constant "
                         "factor is wrong.")
    elif count == 1 and close(np.abs(values), np.abs(reference)):
        diagnosis.append("Right size, wrong sign at some points.")
    return Verdict("incorrect", where("The answer differs from the target."), diagnosis,
                   _counterexample(prepared, values, side=side))


def _where(number: int, count: int) -> Callable[[str], str]:
    """A message about one side of ``a = b = c``, saying which in words a student who wrote no
    left-hand side understands too."""
    if count == 1:
        return lambda message: message
    ordinal = {1: "first", 2: "second", 3: "third"}.get(number, f"{number}th")
    side = "The right-hand side" if number == count - 1 else f"The expression after the {ordinal} '='"
    return lambda message: f"{side}: {message[0].lower()}{message[1:]}"


def _judge_at_example(prepared: Prepared, values, where: Callable[[str], str]) -> Verdict | None:
    """An expression with the worked example's numbers in it, against the worked example only; its value
    there is shown only when the grader reveals it."""
    value, expected = float(values[0]), float(prepared.reference[0])
    if _near(value, expected):
        return None
    named = next((names for names, _, mutant in prepared.mutants if _near(value, float(mutant[0]))), None)
    headline = _headline(named) if named else "The answer differs from the target at the worked example."
    shown = {"answer": value, "at": "the spec's worked example", "expected": expected} if prepared.reveal else None
    return Verdict("incorrect", where(headline), [_AT_EXAMPLE_ONLY], shown)


_AT_EXAMPLE_ONLY = ("The answer mixes numbers with symbols, so it holds at most at the worked example: "
                    "it was checked there only.")


def _near(x: float, y: float, rtol: float = NUMBER_RTOL) -> bool:
    return close(np.array(x), np.array(y), rtol, 1e-9)


def _headline(names) -> str:
    """"Sign error and missing sum." for the mistakes an answer made."""
    label = " and ".join(names)
    return f"{label[0].upper()}{label[1:]}."


def _named(verdict: Verdict) -> bool:
    """Whether a verdict names known mistakes (rather than "differs")."""
    return all(part in MISTAKE_NAMES for part in verdict.message.rstrip(".").lower().split(" and "))


def _judge_number(prepared: Prepared, value: float, where: Callable[[str], str], written: int | None) -> Verdict | None:
    """A number against the value of the worked example (or of the student's sheet), given to the
    :data:`DIGITS` significant digits asked: within one unit of the last of them, and written with
    at least that many unless it is exact.  The value is shown only when the grader reveals it, and so
    is how near a wrong number comes: "too few digits" for a short number near the value only, or
    "agrees to 3 digits", would let a student find the value a digit at a time."""
    expected = prepared.example
    values = [expected]
    if prepared.target.kind == "update_w":  # the new weight, or the step
        values.append(float(prepared.cases.symbols.get(prepared.weight, [np.nan])[0]) + expected)
    the_value = "the value of your sheet" if prepared.sheet else "the worked example's value"
    asked = f"your sheet asks for {DIGITS}" if prepared.sheet else f"{DIGITS} are asked"
    shown = {"answer": value, "at": "your sheet's numbers" if prepared.sheet else "the spec's worked example",
             **({"expected": expected} if prepared.reveal else {})}
    if any(_near(value, x, 1e-9) for x in values):  # exact (0.5 needs no four digits)
        return None
    agreed = max(_digits_agreeing(value, x) for x in values)
    rounded = any(abs(value - x) <= 0.5 * 10 ** (np.floor(np.log10(abs(x))) - DIGITS + 1) * (1 + 1e-9)
                  for x in values if x != 0)  # 0.0203 for 0.02030004: the digits left out are zeros
    if written is not None and written < DIGITS and not rounded and (agreed >= written or not prepared.reveal):
        return Verdict("incorrect", where(f"Too few digits: your number has {written} significant digit"
                                          f"{'s' * (written != 1)}; {asked}."),
                       [f"Give the value to {DIGITS} significant digits (carry six through the intermediate "
                        "steps): a number rounded to fewer cannot be told from a nearby wrong one."], shown)
    if agreed >= DIGITS:
        return None
    if prepared.samples > 1 and _digits_agreeing(value, expected * prepared.samples) >= DIGITS:
        return Verdict("incorrect", where("Missing 1/N over the batch."),
                       [f"The error of a mini-batch is the mean over its {prepared.samples} samples, so each gradient "
                        f"is the mean of the samples' gradients; your number is their sum (N = {prepared.samples} "
                        "times the mean)."], shown)
    for names, messages, mutant in prepared.example_mutants:
        if _digits_agreeing(value, mutant) >= DIGITS:
            return Verdict("incorrect", where(_headline(names)), [m.format(**prepared.words) for m in messages],
                           shown)
    if agreed >= 2 and prepared.reveal:
        return Verdict("incorrect", where(f"Rounded too early: your number agrees with the value only to {agreed} "
                                          f"significant digits; {asked}."),
                       [f"Carry six significant digits through the intermediate steps and round only the result to "
                        f"{DIGITS}."], shown)
    value_shown = f" {expected:.6g}" if prepared.reveal else ""
    return Verdict("incorrect", where(f"The number differs from {the_value}{value_shown} (to "
                                      f"{DIGITS} significant digits)."), [], shown)


def _digits_agreeing(value: float, expected: float) -> int:
    """How many significant digits of ``expected`` ``value`` gets right: n when they differ by at
    most one unit in the n-th (0.2297 and 0.2301: 3; 0.2 and 0.2301: 1)."""
    if not np.isfinite(value) or not np.isfinite(expected) or expected == 0:
        return 0
    gap = abs(value - expected)
    if gap == 0:
        return 17
    leading = np.floor(np.log10(abs(expected)))
    return int(max(0, min(17, np.floor(leading - np.log10(gap) + 1e-9) + 1)))


def _may_show(prepared: Prepared, case: int) -> bool:
    """Whether a reply may show values at test point ``case``: not at a concrete target's worked
    example (point 0) unless the grader reveals it, for every value there is the exercise's answer
    or a step towards it (an answer's value there, divided by its factor, gives the key away)."""
    return case != 0 or prepared.target.concrete is None or prepared.reveal or prepared.random_only


def _counterexample(prepared: Prepared, values: np.ndarray, case: int | None = None, side=None) -> dict:
    """The test point where the answer is furthest from the target, in the student's words
    (for a concrete target, the network's symbols the answer uses)."""
    reference = prepared.reference
    if case is None:
        with np.errstate(all="ignore"):
            gap = np.abs(values - reference) / np.maximum(np.abs(reference), 1e-12)
        if not _may_show(prepared, 0):
            gap[0] = np.nan  # a random point instead
        case = int(np.nanargmax(gap)) if np.any(np.isfinite(gap)) else 1 % len(gap)
    if prepared.positions is not None:  # a conv layer's: the test layer and the kernel offsets
        at = prepared.positions[case]
        return {"network": at["label"], "at": dict(zip(prepared.vocabulary.letters, at["bound"])),
                "expected": float(reference[case]), "answer": float(values[case])}
    cases, words = prepared.cases, prepared.words
    label = cases.labels[case]
    found = {"network": label["network"]}
    if prepared.target.concrete is None:
        shown = {words["z_u"]: z[U], words["a_u"]: a[U], words["a_p"]: a[P]}
        if prepared.target.timed:  # at the case's step t; r_ij carries a_i of the step before
            before = prepared.target.kind == "grad_r"
            shown = {f"{words['z_u']}(t)": z[U, TIME], f"{words['a_u']}(t)": a[U, TIME],
                     f"{words['a_p']}(t-1)" if before else f"{words['a_p']}(t)": a[P, TIME - 1 if before else TIME],
                     f"{words['delta_u']}(t)": delta[U, TIME]}
        if prepared.target.output:
            shown[f"{prepared.vocabulary.notation.plain['target'][0]}_{words['u']}"] = t[U]
        positions = label["positions"]
        found.update({"layer": label["layer"], "units": {words["u"]: positions[str(U)], words["p"]: positions[str(P)]}})
        if "step" in label:  # through time: the step t the formula is at (the last one, T, for a gradient)
            found["step"] = label["step"]
    else:
        used = side.free_symbols if side is not None else ()
        shown = {str(symbol): symbol for symbol in sorted(used, key=str) if symbol in cases.symbols}
        found["at"] = ("the spec's worked example (first sample)" if case == 0 and not prepared.random_only
                       else f"random point {case + prepared.random_only}")
    if prepared.target.kind == "update_w":
        shown[words["eta"]] = ETA
    sign = prepared.vocabulary.notation.delta_sign  # a Haykin student's delta is -dE/dz
    found["values"] = {name: round(float(evaluate(e, cases)[case]) * (sign if name.startswith("delta") else 1), 12)
                       for name, e in shown.items()}
    if prepared.target.concrete is None and not prepared.target.output:  # enough to redo BP2 by hand
        for name, quantity, factor in ((words["w_us"], w[U, S], 1), (f"{words['delta_s']}", delta[S], sign)):
            found["values"][f"{name} for {words['s']} = 0, 1, ..."] = _over_successors(quantity, cases, case, factor)
    found.update({"expected": float(reference[case]), "answer": float(values[case])})
    return found


def _over_successors(quantity, cases: Cases, case: int, factor: int) -> list[float]:
    """``quantity`` at one case for every unit the bound unit feeds."""
    level = int(cases.layer[S][case])
    env = bindings(cases, (P, U))
    return [round(float(value_at(quantity, cases, {**env, S: (cases.layer[S], np.full(cases.count, r))})[case])
                  * factor, 12) for r in range(int(cases.width[case, level]))]
