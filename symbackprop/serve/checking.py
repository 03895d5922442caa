"""The set's questions prepared once at start, and answers checked in killable worker slots.

Every (student, question) is prepared before the workers are forked, so a worker holds every
reference and the first answer of the day is as fast as the last.  Each slot is a pool of one
worker (:class:`grading.workers.Pool`): a request takes a free slot, so a hostile answer holds
one slot until its worker is killed at the time limit while the others go on answering.
"""
from __future__ import annotations

import os
import queue
from collections.abc import Callable

from .. import grading
from ..exercises import ExerciseSet
from ..grading import Verdict
from ..grading.workers import Pool


class Checking:
    """Answers to the set's questions, checked in ``workers`` processes (default: every core)."""

    def __init__(self, made: ExerciseSet, workers: int | None = None, seconds: float = grading.SECONDS_PER_ANSWER,
                 progress: Callable[[], None] = lambda: None):
        self.made = made
        self.questions = {q.id: q for q in made.questions}
        self.prepared = {}
        for variant in made.variants:
            spec = made.spec(variant)
            for question in made.questions:
                key = self.key(variant.student, question.id)
                if key not in self.prepared:
                    self.prepared[key] = grading.prepare(spec.network, variant.targets[question.id],
                                                         made.notation_object, spec.values, spec.learning_rate,
                                                         sheet=True)
                progress()
        self.size = max(1, workers or os.cpu_count() or 1)
        self.slots: queue.Queue[Pool] = queue.Queue()
        for _ in range(self.size):
            self.slots.put(Pool(self.prepared, 1, seconds))

    def key(self, student: str, question: str) -> str:
        """Generic questions do not depend on a student's numbers: one reference serves everyone."""
        return f"{student}\0{question}" if self.questions[question].numeric else question

    def target(self, student: str, question: str) -> str:
        return self.made.variant(student).targets[question]

    def check(self, student: str, question: str, answer: str) -> Verdict:
        """The verdict on ``answer`` to a question of the set by a student of it (blocks until a slot
        is free; call it from a thread)."""
        results = []
        slot = self.slots.get()
        try:
            slot.run([(0, self.key(student, question), answer)], lambda _, result: results.append(result))
        finally:
            self.slots.put(slot)
        return Verdict(**results[0])

    def close(self) -> None:
        while not self.slots.empty():
            self.slots.get().close()
