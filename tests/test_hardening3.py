"""The third red-team pass: each finding reproduced where a user meets it (the real command, the
real server), most severe first."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_hardening2 import refused, run


def _tree(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes (what a run must leave alone)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1. exercises never writes over one of its own inputs ---------------------------------------

def _set_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "roster.csv").write_text("student\nann\nbob\n")
    assert run("exercises", "2-2-1", "--students", folder / "roster.csv", "--questions", "delta_output,delta",
               "-o", folder).returncode == 0
    return folder


INPUTS_AS_OUTPUTS = [  # (where the input goes, the arguments naming it): each is a file the set writes
    ("codes.csv", "student,code\nann,X\nbob,Y\n", ["--students", "{path}"]),
    ("key.csv", "student\nann\nbob\n", ["--students", "{path}"]),
    ("ann/sheet.md", "student\nann\n", ["--students", "{path}"]),
    ("exercises.toml", '[network]\nlayers = [2, 1]\nactivation = ["sigmoid"]\nloss = "half_sse"\n',
     ["{path}", "--students", "{roster}"]),
]


@pytest.mark.parametrize("name, content, arguments", INPUTS_AS_OUTPUTS, ids=[c[0] for c in INPUTS_AS_OUTPUTS])
def test_exercises_refuses_an_output_that_is_one_of_its_inputs_and_changes_nothing(tmp_path, name, content,
                                                                                 arguments):
    folder = _set_folder(tmp_path)
    (folder / name).write_text(content)
    before = _tree(folder)
    filled = [a.format(path=folder / name, roster=folder / "roster.csv") for a in arguments]
    result = run("exercises", *filled, "--questions", "delta_output", "-o", folder)
    refused(result, f"{folder / name}: is also an input of this run")
    assert _tree(folder) == before
