"""The notes as a reader gets them: LaTeX that compiles, deterministic files, Jupyter display."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import symbackprop as sb

SPECS = {
    "default": sb.from_dict(sb.spec.DEFAULT),
    "softmax": sb.compact("2-3-3", "tanh,softmax", "cross_entropy"),
    "custom": sb.from_dict({"network": {"layers": [2, 2, 1], "activation": ["z/(1+exp(-z))", "identity"],
                                        "loss": "log(cosh(a - t))"}}),
    "graph": sb.from_dict({"network": {"inputs": ["x1"], "outputs": ["y"], "units": [
        {"name": "h", "inputs": ["x1"], "activation": "relu"},
        {"name": "y", "inputs": ["h", "x1"], "activation": "identity"}]}}),
}


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (.ci/run installs it)")
@pytest.mark.parametrize("name", SPECS)
def test_latex_notes_compile_with_pdflatex(tmp_path, name):
    tex, = sb.write_notes(SPECS[name], tmp_path, formats=["tex"])
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "notes.pdf").stat().st_size > 1000


def test_notes_are_deterministic(tmp_path):
    first = sb.write_notes(SPECS["softmax"], tmp_path / "one", formats=["md", "tex"])
    second = sb.write_notes(SPECS["softmax"], tmp_path / "two", formats=["md", "tex"])
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()


def test_formulas_come_from_sympy_for_a_custom_activation():
    text = sb.render(sb.derive(SPECS["custom"].network), format="md")
    # swish' = sigma(z) + z e^{-z} / (1 + e^{-z})^2 and d/da log cosh(a - t) = tanh(a - t): in no table
    assert r"\frac{e^{- z_{j}} z_{j}}{\left(1 + e^{- z_{j}}\right)^{2}}" in text
    assert r"\delta_{k} = \tanh{\left(a_{k} - t_{k} \right)}" in text


def test_jupyter_display():
    derivation = sb.derive(SPECS["default"].network)
    assert derivation._repr_markdown_().startswith("# Backpropagation")
    assert derivation.steps[0]._repr_latex_().startswith("$")


KATEX = Path(__file__).parent.parent / ".ci" / "node" / "node_modules" / "katex"


@pytest.mark.skipif(shutil.which("node") is None or not KATEX.is_dir(),
                    reason="node and katex not installed (.ci/run installs them into .ci/node)")
def test_markdown_math_renders_in_katex(tmp_path):
    files = [str(sb.write_notes(spec, tmp_path / name, formats=["md"])[0]) for name, spec in SPECS.items()]
    result = subprocess.run(["node", str(Path(__file__).parent / "katex_check.js"), *files], capture_output=True, check=False,
                            text=True, timeout=120, env={"NODE_PATH": str(KATEX.parent), "PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stdout[-3000:]
    assert " 0 failed" in result.stdout
