"""Grading an exercise set: each submitted row against that student's variant and that
question's target, with the checker of :mod:`symbackprop.grading`.

Every question is prepared once for the class (:mod:`.preparing`, kept in the disk cache), and
all rows are checked in one pool of worker processes.  A row whose student or question is not in
the set gets the verdict "not in the set" with the reason, and the batch goes on.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import grading
from ..grading import Verdict
from ..notes.notation import Notation
from . import preparing
from .exercise_set import ExerciseSet
from .gradebook import gradebook_csv
from ..files import write_set
from .roster import markdown_text

COLUMNS = ("id", "student", "question", "answer")
NOT_IN_SET = "not in the set"
VERDICTS = ("correct", "incorrect", "cannot read", NOT_IN_SET)


def grade(spec, rows: Sequence[dict], notation: str | Notation = "default", workers: int | None = None,
          seconds: float = grading.SECONDS_PER_ANSWER, progress: Callable | None = None,
          reveal: bool = False) -> list[Verdict]:
    """:func:`grading.grade`, which also takes an :class:`ExerciseSet` for ``spec`` (rows with
    ``student``, ``question`` and ``answer``; the set brings its own notation)."""
    if not isinstance(spec, ExerciseSet):
        return grading.grade(spec, rows, notation, workers, seconds, progress, reveal)
    made = spec
    verdicts: list[Verdict | None] = [None] * len(rows)
    questions = [q.id for q in made.questions]
    graded, keys = [], []
    for n, row in enumerate(rows):
        student, question = (row.get("student") or "").strip(), _question(made, row)
        variant = made.variant(student)
        if variant is None:
            verdicts[n] = Verdict(NOT_IN_SET, f"student {student[:80]!r} is not in the exercise set "
                                              f"({len(made.variants)} students); check the id")
        elif question is None:
            verdicts[n] = Verdict(NOT_IN_SET, f"question {(row.get('question') or '').strip()[:80]!r} is not in "
                                              f"the exercise set (questions {', '.join(questions)}, or their "
                                              f"numbers 1 to {len(questions)})")
        else:
            graded.append(n)
            keys.append(preparing.key(made, variant.student, question))
    if graded:
        ready = preparing.prepared(made, reveal)
        answers = [{"answer": rows[n].get("answer"), "refused": rows[n].get("refused")} for n in graded]
        for n, verdict in zip(graded, grading.grade_prepared(ready, answers, keys, workers, seconds, progress)):
            verdicts[n] = verdict
    return verdicts


def _question(made: ExerciseSet, row: dict) -> str | None:
    """The id of the question a row answers (``Q1`` and ``1`` name q1)."""
    return made.question_id(row.get("question") or "")


def read_submissions(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV with columns id, student, question, answer (others carried over)."""
    return grading.read_submissions(path, COLUMNS)


def report_csv(made: ExerciseSet, header: list[str], rows: list[dict], verdicts: list[Verdict]) -> str:
    """The grade report's CSV, with the target each row was graded against."""
    with_targets = []
    for row in rows:
        variant, question = made.variant((row.get("student") or "").strip()), _question(made, row)
        with_targets.append({**row, "target": variant.targets[question] if variant and question else ""})
    extra = [c for c in header if c not in ("id", "answer")]
    return grading.report_csv(["id", "target", "answer", *extra], with_targets, verdicts)


def report_markdown(made: ExerciseSet, rows: list[dict], verdicts: list[Verdict]) -> str:
    """Per question and per student: answers, right, wrong, unreadable; then what was not in the set."""
    by_question: dict[str, Counter] = {q.id: Counter() for q in made.questions}
    by_student: dict[str, Counter] = {v.student: Counter() for v in made.variants if v.student is not None}
    solved: dict[str, set] = {}  # student -> questions answered right at least once
    mistakes: dict[str, Counter] = {}
    outside = []
    for row, verdict in zip(rows, verdicts):
        student, question = (row.get("student") or "").strip(), _question(made, row)
        if verdict.verdict == NOT_IN_SET:
            outside.append(f"- id {markdown_text((row.get('id') or '?')[:80])}: {markdown_text(verdict.message)}")
            continue
        by_question[question][verdict.verdict] += 1
        by_student.setdefault(student, Counter())[verdict.verdict] += 1
        if verdict.verdict == "correct":
            solved.setdefault(student, set()).add(question)
        if verdict.verdict == "incorrect":
            mistakes.setdefault(question, Counter())[verdict.message.rstrip(".")] += 1
    total = Counter(v.verdict for v in verdicts)
    kinds = {q.id: q.kind for q in made.questions}
    lines = ["# Exercise set report", "",
             f"{len(verdicts)} answers: " + ", ".join(f"{total[v]} {v}" for v in VERDICTS) + ".", "",
             "## Per question", "", "| question | asks | answers | correct | incorrect | cannot read |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {q} | `{kinds[q]}` | {sum(c.values())} | {c['correct']} | {c['incorrect']} | "
              f"{c['cannot read']} |" for q, c in by_question.items()]
    if by_student:
        lines += ["", "## Per student", "", f"| student | answered | correct | incorrect | cannot read | "
                  f"score (of {len(made.questions)}) |", "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {markdown_text(s)} | {sum(c.values())} | {c['correct']} | {c['incorrect']} | {c['cannot read']} "
                  f"| {len(solved.get(s, ()))} |" for s, c in by_student.items()]
    if mistakes:
        lines += ["", "## Commonest mistakes", ""]
        for question, counts in mistakes.items():
            lines += [f"- {question}: {count} x {markdown_text(name)}" for name, count in counts.most_common(5)]
    if outside:
        lines += ["", "## Rows not in the set", "", *outside]
    return "\n".join(lines) + "\n"


def gradebook_path(path: Path) -> Path:
    """REPORT-grades.csv next to REPORT.csv."""
    path = Path(path)
    return path.with_name(f"{path.stem}-grades.csv")


def write_report(path: Path, made: ExerciseSet, header, rows, verdicts) -> list[Path]:
    """``path`` (CSV, one row per answer), ``path`` with .md (the tables) and, for a set with a
    roster, the gradebook (:func:`gradebook_path`): all, or none."""
    path = Path(path)
    texts = {path: report_csv(made, header, rows, verdicts), path.with_suffix(".md"): report_markdown(made, rows, verdicts)}
    if made.per_student:
        attempts = (((row.get("student") or "").strip(), _question(made, row), verdict)
                    for row, verdict in zip(rows, verdicts))
        texts[gradebook_path(path)] = gradebook_csv(made, attempts)
    return write_set(texts)
