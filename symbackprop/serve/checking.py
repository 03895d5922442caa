"""The set's questions prepared once at start, and answers checked in killable worker slots.

Every (student, question) is prepared before the workers are forked (each question once for the
class, or read from the disk cache: :mod:`symbackprop.exercises.preparing`), so a worker holds every
reference and the first answer of the day is as fast as the last.  Each slot is a pool of one
worker (:class:`grading.workers.Pool`): a request takes a free slot, so a hostile answer holds
one slot until its worker is killed at the time limit while the others go on answering.
"""
from __future__ import annotations

import os
import queue
from collections.abc import Callable

from .. import grading
from ..errors import SpecError
from ..exercises import ExerciseSet, preparing
from ..grading import Verdict
from ..grading.workers import Pool


class Checking:
    """Answers to the set's questions, checked in ``workers`` processes (default: every core)."""

    def __init__(self, made: ExerciseSet, workers: int | None = None, seconds: float = grading.SECONDS_PER_ANSWER,
                 progress: Callable[[int], None] = lambda done: None):
        self.made = made
        self.questions = {q.id: q for q in made.questions}
        self.prepared = preparing.prepared(made, progress=progress)
        self.size, self.seconds = max(1, workers or os.cpu_count() or 1), seconds
        self.slots: queue.Queue[Pool] = queue.Queue()

    def start(self) -> None:
        """Fork the checking workers (in each serving process, before it opens any connection)."""
        usable = {key: one for key, one in self.prepared.items() if not isinstance(one, SpecError)}
        for _ in range(self.size):
            self.slots.put(Pool(usable, 1, self.seconds))

    def key(self, student: str, question: str) -> str:
        return preparing.key(self.made, student, question)

    def target(self, student: str, question: str) -> str:
        return self.made.variant(student).targets[question]

    def check(self, student: str, question: str, answer: str) -> Verdict:
        """The verdict on ``answer`` to a question of the set by a student of it (blocks until a slot
        is free; call it from a thread)."""
        prepared = self.prepared[self.key(student, question)]
        if isinstance(prepared, SpecError):  # e.g. the student's numbers overflow
            return Verdict("cannot read", str(prepared))
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
