"""Homework from the derivation: exercise sheets with answer keys, one variant per student,
and the grading of the answers that come back.

The flow, one module per stage::

    roster        read_roster / check_id      -> student ids safe as folder names, escaped where shown
    questions     parse                       -> Questions, each a target that ``check`` knows
    exercise_set  exercises / load            -> ExerciseSet: every student's numbers and targets
    arithmetic    WorkedNumbers               -> a worked example's substituted arithmetic
    sheets        write                       -> sheets, key (.md, .tex), key.csv, exercises.toml
    marking       grade / write_report        -> a verdict per submitted row, REPORT.md tables
"""
from .exercise_set import ExerciseSet, Variant, exercises, is_set_file, load
from .marking import grade, read_submissions, write_report
from .questions import Question
from .sheets import write

__all__ = ["ExerciseSet", "Question", "Variant", "exercises", "grade", "is_set_file", "load", "read_submissions",
           "write", "write_report"]
