"""The notes' chapter on backpropagation through time: in every notation, compiling, with
the future term, the truncated range and the worked example's numbers."""
import re
import subprocess
import sys

import pytest

import symbackprop as sb
from symbackprop.recurrent import recurrent_weight

from compiling import compile_tex, requires_pdflatex

SPEC = sb.from_dict({"network": {"layers": [2, 3, 1], "activation": ["tanh", "identity"], "loss": "half_sse",
                                 "recurrent": True, "steps": 3},
                     "example": {"inputs": [[0.5, -0.3], [0.1, 0.2], [-0.4, 0.7]],
                                 "targets": [[0.1], [0.2], [-0.1]],
                                 "recurrent_weights": [[[0.1, 0.2, 0.0], [0.0, -0.3, 0.4], [0.5, 0.0, 0.1]]]}})


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("through-time")
    return {name: sb.write_notes(SPEC, root / name, formats=["md", "tex"], notation=name, truncate=2)
            for name in sb.notation.names()}


@requires_pdflatex
@pytest.mark.parametrize("notation", sb.notation.names())
def test_the_chapter_compiles_in_every_notation(written, notation):
    tex = next(p for p in written[notation] if p.suffix == ".tex")
    compile_tex(tex)
    assert r"\section{Backpropagation through time}" in tex.read_text()
    assert r"\node[zero]" in tex.read_text()  # the unrolled figure
    assert "Overfull" not in (tex.parent / "notes.log").read_text()


def test_the_chapter_shows_the_future_term_the_truncation_and_the_sum_over_steps(written):
    md = next(p for p in written["default"] if p.suffix == ".md").read_text()
    chapter = md[md.index("## Backpropagation through time"):]
    chapter = chapter[:chapter.index("\n## ", 3)]
    assert r"\sum_{m} \delta_{m}(t + 1) r_{jm}" in chapter  # the future term of the recursion
    box = md[md.index("**The equations"):md.index("**The algorithm")]
    assert r"\frac{\partial E}{\partial r_{mj}} = \sum_{t=1}^{T} a_{m}(t - 1) \delta_{j}(t)" in box
    assert r"\sum_{t=T - 1}^{T} a_{m}(t - 1) \delta_{j}(t)" in chapter  # --truncate 2: the last two steps
    steps = md[md.index("Step by step"):md.index("So the gradient of")]
    gradient = sb.example(SPEC.network, SPEC.values).evaluation.gradients[recurrent_weight(0, 0, 0)]
    assert f"= {gradient:#.4g}$$" in md[md.index("So the gradient of"):]
    assert steps.count("\n| ") == 1 + 3  # the step table: the header and one row per step


def test_haykin_prints_his_sign_and_index_order(written):
    md = next(p for p in written["haykin"] if p.suffix == ".md").read_text()
    chapter = md[md.index("## Backpropagation through time"):]
    assert "r_{mj}" in chapter and "y_{j}(t)" in chapter


def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("args, needle", [
    (["2-3-1", "--recurrent", "--steps", "3", "--truncate", "4"], "from 1 to T = 3"),
    (["2-3-1", "--truncate", "2"], "recurrent = true"),
])
def test_a_bad_truncation_exits_2_with_one_line_and_writes_nothing(tmp_path, args, needle):
    result = run("derive", *args, "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and needle in result.stderr and "--truncate" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@requires_pdflatex
def test_a_wide_layer_over_many_steps_keeps_the_chapter_on_the_page(tmp_path):
    spec = sb.compact("2-6-1", activation="tanh,identity", steps=8)
    tex = next(p for p in sb.write_notes(spec, tmp_path, formats=["tex"]) if p.suffix == ".tex")
    text = tex.read_text()
    start = text.index(r"\section{Backpropagation through time}")
    chapter = text[start:text.index(r"\appendix", start)]  # the chapter and the worked example
    row = next(line for line in chapter.splitlines() if line.startswith("1 & "))
    assert "its first 4 units of 6" in chapter and row.count("&") == 8  # t, then 4 activations and 4 deltas
    assert r"\cdots" in chapter and "the dots stand for 3 of them" in chapter  # 7 terms, 4 shown
    gradient = sb.example(spec.network, spec.values).evaluation.gradients[recurrent_weight(0, 0, 0)]
    assert f"= {gradient:#.4g}" in chapter
    subprocess.run(["pdflatex", "-interaction=nonstopmode", tex.name], cwd=tmp_path, capture_output=True,
                   timeout=120, check=False)
    first = text[:start].count("\n") + 1
    last = first + chapter.count("\n")
    log = (tmp_path / "notes.log").read_text()
    lines = [int(n) for n in re.findall(r"Overfull \\hbox .*? (?:lines (\d+)--\d+|line (\d+))", log) for n in n if n]
    assert not [n for n in lines if first <= n <= last], (first, last, lines)


def test_the_readme_quotes_the_through_time_chapter_as_derive_prints_it(tmp_path):
    """The README quoted -0.114138 where the notes print four decimals: every formula it quotes must
    be a line of the notes of its own recurrent spec, derived with --truncate 2 as it says."""
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("**Recurrent (Elman) networks**")[1]
    spec = tmp_path / "net.toml"
    spec.write_text(section.split("```toml\n")[1].split("```")[0])
    notes = sb.write_notes(sb.load(spec), tmp_path / "notes", ["md"], truncate=2)[0].read_text()
    quote = section.split("here from the spec above with `derive --truncate 2`:\n\n")[1].split("\n\n")[0]
    formulas = re.findall(r"\$\$(.+?)\$\$", quote)
    assert len(formulas) >= 5
    for formula in formulas:
        assert f"$${formula}$$" in notes, formula
