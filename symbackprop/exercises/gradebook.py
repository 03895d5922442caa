"""The gradebook: one row per student of the roster, one column per question, for an LMS to import.

A cell is 1 when the student's latest attempt at the question was correct, 0 when it was not
(incorrect or unreadable), and empty when they never attempted it; ``total`` counts the ones.
The id column is headed ``SIS Login ID`` (what Canvas's gradebook import matches students by,
next to the ``Student`` and ``Section`` columns it requires); Moodle's CSV import maps any column
("Identify user by"), so it is mapped there to the user field that holds the roster's ids.
Cells are made inert for spreadsheets as in the other reports.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from ..grading import Verdict
from ..grading.reports import spreadsheet_cell
from .exercise_set import ExerciseSet

ID_COLUMNS = ("Student", "SIS Login ID", "Section")


def gradebook_csv(made: ExerciseSet, attempts: Iterable[tuple[str, str, Verdict]]) -> str:
    """The gradebook of ``attempts`` ((student, question, verdict), oldest first; rows of students
    or questions not in the set are left out)."""
    questions = [q.id for q in made.questions]
    latest: dict[tuple[str, str], bool] = {}
    for student, question, verdict in attempts:
        latest[(student, question)] = verdict.verdict == "correct"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*ID_COLUMNS, *questions, "total"])
    for variant in made.variants:
        marks = [latest.get((variant.student, question)) for question in questions]
        cells = ["" if mark is None else str(int(mark)) for mark in marks]
        student = spreadsheet_cell(variant.student)
        writer.writerow([student, student, "", *cells, str(sum(mark is True for mark in marks))])
    return out.getvalue()
