"""Homework from the derivation: exercise sheets with answer keys, one variant per student,
and the grading of the answers that come back.

The flow, one module per stage::

    roster        read_roster / check_id      -> student ids safe as folder names, escaped where shown
    questions     parse                       -> Questions, each a target that ``check`` knows
    exercise_set  exercises / load            -> ExerciseSet: every student's numbers and targets
    arithmetic    WorkedNumbers               -> a worked example's substituted arithmetic
    sheets        write                       -> sheets, key (.md, .tex), key.csv, exercises.toml
    marking       grade / write_report        -> a verdict per submitted row, REPORT.md tables

The package is callable: ``sb.exercises(spec, students=...)`` is :func:`exercises`, the one
obvious function of the stage, and ``sb.exercises.write`` / ``.load`` / ``.grade`` the others.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

from .exercise_set import ExerciseSet, Variant, exercises, is_set_file, load
from .marking import grade, read_submissions, write_report
from .questions import Question

__all__ = ["ExerciseSet", "Question", "Variant", "exercises", "grade", "is_set_file", "load", "read_submissions",
           "write", "write_report"]


def write(made: ExerciseSet, directory: str | Path, formats=("md", "tex"), templates: Path | None = None,
          force: bool = False) -> list[Path]:
    """The sheets, the key, ``key.csv`` and ``exercises.toml`` of ``made`` in ``directory``; a set
    there made with other options is replaced only with ``force``."""
    from .sheets import write as write_set  # the renderer (jinja2) is loaded only to write documents

    return write_set(made, directory, formats, templates, force=force, flag="force=True")


class _Package(types.ModuleType):
    """This package, callable as its main function (the package and the function share a name)."""

    def __call__(self, *args, **kwargs) -> ExerciseSet:
        return exercises(*args, **kwargs)


sys.modules[__name__].__class__ = _Package
