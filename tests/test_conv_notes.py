"""The notes' chapter "Convolutional layers": its formulas against the published ones transcribed
here (Goodfellow et al. 2016, ch. 9, eqs. 9.11-9.13, 0-based and with padding), its worked kernel
gradient against the hand-checked example, LaTeX without an overfull box and Markdown in KaTeX, in
every preset."""
import re
import shutil
import subprocess

import pytest
import sympy as sp

import symbackprop as sb
from symbackprop import conv_backprop as cb
from symbackprop.derivation import E, a, b, delta
from symbackprop.notes import convolutional
from symbackprop.notes.notation import load

import katex_node
from test_convolution import ISSUE_SPEC, conv_spec

HAND_CHECKED = conv_spec([1, 3, 3], [{"kind": "conv", "channels": 1, "kernel": [2, 2], "activation": "identity"}],
                         {"inputs": [[[1, 2, 0], [0, 1, -1], [2, 0, 1]]], "targets": [1, 0, 0, 1],
                          "weights": [[[[[1, 0], [-1, 2]]]]], "biases": [[0.5]]})


def full(term, *indices):
    for index in reversed(indices):
        term = sp.Sum(term, (index, 0, index.upper))
    return term


@pytest.mark.parametrize("name", sb.notation.names())
def test_the_chapters_formulas_are_the_published_ones_in_every_notation(name):
    """Goodfellow et al. (9.11): dE/dK[o,c,u,v] = sum_i sum_j G[o,i,j] V[c, s i + u - p, s j + v - p];
    the bias: sum_i sum_j G[o,i,j]; (9.13): dE/dV[c,m,n] = sum_o sum_i sum_j K[o,c,m+p-s i,n+p-s j] G[o,i,j]."""
    notation = load(name)
    spec = sb.from_dict(HAND_CHECKED)
    chapter = convolutional.chapter(spec.network, notation)
    printer = convolutional.ConvPrinter(notation, None)
    o, c, i, j, u, v, m, n, s, p, K = cb.o, cb.c, cb.i, cb.j, cb.u, cb.v, cb.m, cb.n, cb.s, cb.p, cb.K
    sign = notation.delta_sign  # Haykin's delta is -dE/dz
    kernel = sign * full(delta[o, i, j] * a[c, s * i + u - p, s * j + v - p], i, j)
    bias = sign * full(delta[o, i, j], i, j)
    below = sign * full(K[o, c, m + p - s * i, n + p - s * j] * delta[o, i, j], o, i, j)
    for shown, lhs, rhs in [(chapter["gradients"][0], sp.Derivative(E, K[o, c, u, v]), kernel),
                            (chapter["gradients"][1], sp.Derivative(E, b[o]), bias),
                            (chapter["below"][1], sp.Derivative(E, a[c, m, n]), below)]:
        assert (shown.lhs, shown.rhs) == (printer.doprint(lhs), printer.doprint(rhs))


def numbers_line(equation: str) -> str:
    return equation.split(" = ")[2]


def test_the_worked_kernel_gradient_is_the_hand_checked_sum():
    """By hand (test_convolution): dE/dK_00 = 2.5*1 - 0.5*2 - 1.5*0 + 2.5*1 = 4; the term with
    x = 0 is zero and left out."""
    spec = sb.from_dict(HAND_CHECKED)
    worked = convolutional.chapter(spec.network, load("default"), sb.example(spec.network, spec.values))["worked"]
    line = numbers_line(worked["kernel"]["shown"].equation)
    products = re.findall(r"([+-]?) ?([\d.]+) \\cdot \(?(-?[\d.]+)\)?", line)
    total = sum((-1 if sign == "-" else 1) * float(x) * float(y) for sign, x, y in products)
    assert sorted(float(x) * float(y) for _, x, y in products) == [-1.0, 2.5, 2.5] and total == pytest.approx(4.0)
    assert worked["kernel"]["shown"].equation.endswith("= 4.000") and worked["gradient"] == pytest.approx(4.0)
    assert worked["kernel"]["zeros"] == 1


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("conv-notes")
    spec = root / "conv.toml"
    spec.write_text(ISSUE_SPEC)
    loaded = sb.load(spec)
    return {name: sb.write_notes(loaded, root / name, formats=["md", "tex"], notation=name)
            for name in sb.notation.names()}


def test_derive_writes_the_chapter_and_the_worked_value_is_examples(written):
    md = next(p for p in written["default"] if p.suffix == ".md").read_text()
    assert "## Convolutional layers" in md and "flipped kernel" in md
    value = re.search(r"This is the gradient (\S+) that the example", md).group(1).replace("−", "-")
    assert md.count("\\cdots") == 0 or "left out" in md
    spec = sb.load(written["default"][0].parent.parent / "conv.toml")
    grad = sb.example(spec.network, spec.values).as_dict()["grad"]["weights"][0][0][0][0][0]
    assert float(value) == pytest.approx(grad, rel=1e-3)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (.ci/run installs it)")
@pytest.mark.parametrize("notation", sb.notation.names())
def test_the_chapter_compiles_without_an_overfull_box(written, notation):
    tex = next(p for p in written[notation] if p.suffix == ".tex")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
                            cwd=tex.parent, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-2000:]
    assert r"\section{Convolutional layers}" in tex.read_text()
    assert "Overfull" not in (tex.parent / "notes.log").read_text()


@katex_node.requires_katex
def test_the_chapters_markdown_math_renders_in_katex(written):
    files = [str(p) for paths in written.values() for p in paths if p.suffix == ".md"]
    result = katex_node.render_all(files, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " 0 failed" in result.stdout


def test_the_sliding_kernel_figure_is_one_geometry_in_tikz_and_svg(written):
    """1x5x5 padded by 1: 7x7 input cells and 5x5 output cells, the 3x3 receptive field and its
    output unit shaded, in the LaTeX notes' TikZ and in the SVG beside the Markdown."""
    tex = next(p for p in written["default"] if p.suffix == ".tex").read_text()
    svg = next(p for p in written["default"] if p.suffix == ".svg").read_text()
    assert tex.count(r"\draw[fill=") == svg.count("<rect x=") - 1 == 7 * 7 + 5 * 5  # less the dashed window
    assert tex.count("fill=black!25") == svg.count('fill="#bfbfbf"') == 9 + 1
    assert tex.count("fill=black!6") == svg.count('fill="#f0f0f0"') == 7 * 7 - 5 * 5
    assert "![The kernel sliding" in next(p for p in written["default"] if p.suffix == ".md").read_text()


def test_the_readme_quotes_the_chapter_as_derive_prints_it(tmp_path):
    """Every formula and sentence of the README's passage is a line of the notes of its own conv spec."""
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("**Convolutional networks**")[1]
    spec = tmp_path / "conv.toml"
    spec.write_text(section.split("```toml\n")[1].split("```")[0])
    notes = sb.write_notes(sb.load(spec), tmp_path / "notes", ["md"])[0].read_text()
    passage = section.split("(`derive conv.toml --format md`):\n\n")[1].split("\n\n")[0]
    quote = [line[2:] for line in passage.splitlines() if line.startswith("> ") and "[...]" not in line]
    assert sum(line.startswith("$$") for line in quote) == 3
    for line in quote:
        assert line in notes.splitlines(), line


def test_max_pooling_sends_the_local_gradient_to_the_unit_that_won(written):
    """The README's spec: the first 2x2 window of the pooling layer, its largest activation found
    here from the example's numbers, and the pooling unit's delta, as the notes print them."""
    spec = sb.load(written["default"][0].parent.parent / "conv.toml")
    data = sb.example(spec.network, spec.values).as_dict()
    window = {(r, q): data["a"][1][0][r][q] for r in range(2) for q in range(2)}
    r, q = max(window, key=window.get)
    md = next(p for p in written["default"] if p.suffix == ".md").read_text()
    from symbackprop.notes.worked import number
    assert (f"${{a_{{0,{r},{q}}}}}$ won" in md or f"$a_{{0,{r},{q}}}$ won" in md)
    assert f"\\delta_{{0,0,0}} = {number(data['delta'][1][0][0][0])}$" in md


def test_a_network_of_pooling_and_dense_layers_gets_the_chapter_without_a_kernel(tmp_path):
    """No conv layer (it raised StopIteration): the formulas and average pooling, no figure, no kernel sums."""
    spec = sb.from_dict(conv_spec([1, 4, 4], [{"kind": "avg_pool", "size": [2, 2]},
                                              {"kind": "dense", "units": 1, "activation": "identity"}],
                                  {"inputs": [[[1, 2, 0, 1], [0, 1, -1, 2], [2, 0, 1, 0], [1, -1, 0, 1]]],
                                   "targets": [0.5]}))
    paths = sb.write_notes(spec, tmp_path, formats=["md", "tex"])
    assert sorted(p.suffix for p in paths) == [".md", ".tex"]
    md = paths[0].read_text()
    assert "An average pooling unit" in md and "In the worked example" not in md
