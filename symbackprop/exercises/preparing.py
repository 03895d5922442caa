"""Every question of an exercise set prepared for every student at once, and kept on disk.

The network is the same for every student; only the numbers differ.  So a numeric question is
prepared once for the class (:func:`grading.targets.prepare_many`: SymPy builds its reference and
mistake mutants once, NumPy evaluates them over all students' test points in one pass), and a
generic question once for everyone.  The result is remembered in the disk cache
(:mod:`symbackprop.cache`), so ``grade`` and a restarted ``serve`` read what an earlier run of
either prepared for the same set.  The numbers are each student's sheet's (messages say so).
"""
from __future__ import annotations

from collections.abc import Callable

from .. import cache
from ..errors import SpecError
from ..grading.prepared import Prepared
from ..grading.targets import prepare, prepare_many
from .exercise_set import ExerciseSet
from .questions import Question


def key(made: ExerciseSet, student: str | None, question: str) -> str:
    """The name of a student's question among the prepared ones: a generic question does not
    depend on a student's numbers, so one reference serves everyone."""
    numeric = next(q for q in made.questions if q.id == question).numeric
    return f"{student}\0{question}" if numeric else question


def prepared(made: ExerciseSet, reveal: bool = False,
             progress: Callable[[int], None] = lambda done: None) -> dict[str, Prepared | SpecError]:
    """Every (student, question) of ``made`` under :func:`key`, a SpecError where one cannot be
    graded; each question read from the disk cache when an earlier run prepared it for the same
    set.  ``progress`` gets the number of (student, question) pairs done after each question."""
    out: dict[str, Prepared | SpecError] = {}
    network = made.spec(made.variants[0]).network
    for question in made.questions:
        if question.numeric:
            out.update(cache.remembered(_prepare_question, made, question, reveal, kind=dict))
        else:  # the same file as check's and grade's of that target on that network (no numbers of its own)
            try:
                out[question.id] = cache.remembered(prepare, network, question.kind, made.notation_object, None, 0.5,
                                                    0, reveal, True, kind=Prepared)
            except SpecError as error:
                out[question.id] = error
        progress(len(made.variants))
    return out


def _prepare_question(made: ExerciseSet, question: Question, reveal: bool) -> dict[str, Prepared | SpecError]:
    first = made.spec(made.variants[0])
    by_rate: dict[float, list] = {}  # one learning rate for the class, unless the set was edited by hand
    for variant in made.variants:
        spec = made.spec(variant)
        by_rate.setdefault(spec.learning_rate, []).append((variant, spec))
    out = {}
    for rate, members in by_rate.items():
        done = prepare_many(first.network, [v.targets[question.id] for v, _ in members], made.notation_object,
                            [spec.values for _, spec in members], rate, reveal=reveal, sheet=True)
        out.update({key(made, v.student, question.id): one for (v, _), one in zip(members, done)})
    return out
