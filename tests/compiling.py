"""pdflatex for the tests: a document compiled as its reader would compile it."""
import shutil
import subprocess
from pathlib import Path

import pytest

requires_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None,
                                       reason="pdflatex not installed (.ci/run installs it)")


def compile_tex(tex: Path) -> str:
    """pdflatex's output on ``tex``, compiled in its folder; an error fails the test there."""
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
                            cwd=tex.parent, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, (tex.name, result.stdout[-2000:])
    return result.stdout
