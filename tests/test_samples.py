"""output/ holds regenerated sample notes; this test fails when they are out of date.

Regenerate them with ``python tests/test_samples.py``.  The relative errors of the finite
differences are rounding noise (about 1e-10) whose last digits may differ between CPUs,
so they are masked before comparing; every other byte must match.
"""
import re
import sys
from pathlib import Path

import pytest

import symbackprop as sb

OUTPUT = Path(__file__).parent.parent / "output"
DEEP = sb.compact("2-3-3-2", "tanh,relu,sigmoid", "binary_cross_entropy")
SOFTMAX = sb.compact("2-3-3", "tanh,softmax", "cross_entropy")
CUSTOM = sb.from_dict({"network": {"layers": [2, 2, 1], "activation": ["z/(1+exp(-z))", "identity"],
                                   "loss": "log(cosh(a - t))"}})
BATCH = sb.from_dict({"network": {"layers": [2, 3, 1], "activation": ["sigmoid", "identity"]},
                      "example": {"inputs": [[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6], [0.7, 0.8], [-0.9, -0.1]],
                                  "targets": [[0.5], [0.1], [-0.2], [0.3], [0.4]]}})
#: the README's Elman network unrolled over two steps (a graph spec with tied weights)
ELMAN = sb.from_dict({"network": {"inputs": ["x1", "x2"], "outputs": ["y1", "y2"], "loss": "half_sse", "units": [
    {"name": "h1", "inputs": ["x1"], "weights": ["u"], "activation": "tanh", "bias": "c"},
    {"name": "h2", "inputs": ["x2", "h1"], "weights": ["u", "r"], "activation": "tanh", "bias": "c"},
    {"name": "y1", "inputs": ["h1"], "weights": ["v"], "activation": "identity"},
    {"name": "y2", "inputs": ["h2"], "weights": ["v"], "activation": "identity"}]},
    "example": {"inputs": [0.5, -0.3], "targets": [0.1, 0.2], "parameters": {"u": 0.4, "r": 0.7, "v": -0.6}}})
#: directory under output/ -> (spec, notation); "" is what `python -m symbackprop derive` writes
SAMPLES = {"": (sb.from_dict(sb.spec.DEFAULT), "default"),
           **{n: (sb.from_dict(sb.spec.DEFAULT), n) for n in sb.notation.names() if n != "default"},
           "deep-nielsen": (DEEP, "nielsen"), "softmax-bishop": (SOFTMAX, "bishop"),
           "custom-activation": (CUSTOM, "default"), "mini-batch": (BATCH, "default"), "elman-graph": (ELMAN, "haykin")}


def write(directory: Path) -> list[Path]:
    paths = []
    for name, (spec, notation) in SAMPLES.items():
        paths += sb.write_notes(spec, directory / name, formats=["md", "tex"], notation=notation)
    return paths


def masked(text: str) -> str:
    return re.sub(r"\d\.\de-\d\d", "#.#e-##", text)


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_in_output_are_up_to_date(tmp_path, name):
    spec, notation = SAMPLES[name]
    for fresh in sb.write_notes(spec, tmp_path, formats=["md", "tex"], notation=notation):
        kept = OUTPUT / name / fresh.name
        assert kept.is_file(), f"{kept} is missing: run python tests/test_samples.py"
        assert masked(kept.read_text()) == masked(fresh.read_text()), \
            f"{kept} is out of date: run python tests/test_samples.py"


if __name__ == "__main__":
    for path in write(OUTPUT):
        print(path)
    sys.exit(0)
