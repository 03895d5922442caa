"""The notes of a convolutional network: the whole notes with the chapter "Convolutional layers"
inside, its formulas against the published ones transcribed here (Goodfellow et al. 2016, ch. 9,
eqs. 9.11-9.13, 0-based and with padding), its worked kernel gradient against the hand-checked
example and against central differences of a NumPy network of our own, LaTeX without an overfull
box and Markdown in KaTeX, in every preset and as a handout."""
import copy
import re

import numpy as np
import pytest
import sympy as sp

import symbackprop as sb
from symbackprop import conv_backprop as cb
from symbackprop.derivation import E, a, b, delta
from symbackprop.notes import convolutional
from symbackprop.notes.notation import load
from symbackprop.notes.rendering import APPENDIX
from symbackprop.parts import PARTS

import katex_node
from compiling import compile_tex, requires_pdflatex
from test_convolution import ISSUE_SPEC, _numpy_loss, conv_spec

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


#: The presets whose handouts (the notes without the appendix) the tests write too.
HANDOUTS = ("default", "haykin", "nielsen")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The notes of the issue's spec in every preset, and handouts (keys "handout-<preset>")."""
    root = tmp_path_factory.mktemp("conv-notes")
    spec = root / "conv.toml"
    spec.write_text(ISSUE_SPEC)
    loaded = sb.load(spec)
    notes = {name: sb.write_notes(loaded, root / name, formats=["md", "tex"], notation=name)
             for name in sb.notation.names()}
    handout = [part for part in PARTS if part not in APPENDIX]
    notes.update({f"handout-{name}": sb.write_notes(loaded, root / f"handout-{name}", formats=["md", "tex"],
                                                    notation=name, parts=handout) for name in HANDOUTS})
    return notes


def test_derive_writes_the_chapter_and_the_worked_value_is_examples(written):
    md = next(p for p in written["default"] if p.suffix == ".md").read_text()
    assert "## Convolutional layers" in md and "flipped kernel" in md
    value = re.search(r"This is the gradient (\S+) that the example", md).group(1).replace("−", "-")
    assert md.count("\\cdots") == 0 or "left out" in md
    spec = sb.load(written["default"][0].parent.parent / "conv.toml")
    grad = sb.example(spec.network, spec.values).as_dict()["grad"]["weights"][0][0][0][0][0]
    assert float(value) == pytest.approx(grad, rel=1e-3)


@requires_pdflatex
@pytest.mark.parametrize("notation", [*sb.notation.names(), *(f"handout-{name}" for name in HANDOUTS)])
def test_the_notes_compile_without_an_overfull_box(written, notation):
    tex = next(p for p in written[notation] if p.suffix == ".tex")
    compile_tex(tex)
    text = tex.read_text()
    assert r"\section{Convolutional layers}" in text and r"\section{A worked example}" in text
    assert (r"\appendix" in text) == (not notation.startswith("handout"))
    assert "Overfull" not in (tex.parent / "notes.log").read_text()


SECTIONS = ["## The network, its error and the local gradient", "## The equations of backpropagation",
            "## The output layer (layer 3)", "## The hidden layers (layers 1 and 2)", "## Convolutional layers",
            "## A worked example", "## What backpropagation costs, and where it saturates",
            "## Appendix: every formula of this network", "## Appendix: verification"]


def test_the_whole_notes_hold_the_chapter_between_the_hidden_layers_and_the_worked_example(written):
    """The layered notes' parts in their order, the chapter among them; no matrix form (dense layers
    only) and no network figure (the chapter draws the kernel sliding)."""
    md = next(p for p in written["default"] if p.suffix == ".md").read_text()
    places = [md.find(heading + "\n") for heading in SECTIONS]
    assert -1 not in places and places == sorted(places), dict(zip(SECTIONS, places))
    assert "## Matrix form" not in md and "notes-backward.svg" not in md
    handout = next(p for p in written["handout-default"] if p.suffix == ".md").read_text()
    assert "## Convolutional layers" in handout and "Appendix" not in handout


def test_the_box_states_the_kernel_gradient_that_the_chapter_derives_with_its_number(written):
    """(BP4) for every edge, and the kernel gradient, bias gradient and flipped-kernel sum in index
    form: each numbered once in the box and printed with that number where the chapter derives it."""
    md = next(p for p in written["nielsen"] if p.suffix == ".md").read_text()
    box = md.split("## The equations of backpropagation")[1].split("**The algorithm**")[0]
    chapter = md.split("## Convolutional layers")[1].split("## A worked example")[0]
    kernel = next(line for line in box.splitlines() if line.startswith(r"$$\frac{\partial C}{\partial K_{o,c,u,v}}"))
    below = next(line for line in box.splitlines() if line.startswith(r"$$\frac{\partial C}{\partial a_{c,m,n}}"))
    assert kernel in chapter.splitlines() and below in chapter.splitlines()
    tag = re.search(r"\\tag\{(\w+)\}", kernel).group(1)
    assert f"that sum is ({tag})" in md
    assert "\\tag{BP4}" in box and r"\sum_{o'}" in chapter  # the tied sum's channel index is bound, not o


def test_the_symbol_table_of_a_conv_network_names_kernel_weights_and_skips_pooling_slopes():
    """Its edges weigh kernel entries, dense weights, 1/4 (average pooling) or Heaviside steps (max
    pooling); the table failed on the products ('Mul' object has no attribute 'name')."""
    from symbackprop.notes.printing import NotationPrinter
    for kind in ("max_pool", "avg_pool"):
        spec = sb.from_dict(conv_spec([1, 4, 4], [
            {"kind": "conv", "channels": 1, "kernel": [2, 2], "activation": "tanh"}, {"kind": kind, "size": [2, 2]},
            {"kind": "dense", "units": 1, "activation": "identity"}], {"inputs": [[[0.1] * 4] * 4], "targets": [0.5]}))
        net = spec.network
        printer = NotationPrinter(load("haykin"), net)
        assert printer.doprint(net.weights[0]) == "{K^{(1)}_{0,0,0,0}}"
        assert printer.doprint(net.unit_at(0, 0, 1, 2).z) == "{v^{(1)}_{0,1,2}}"
        assert printer.doprint(net.unit_at(-1, 0, 3, 1).a) == "x_{0,3,1}"
        assert printer.doprint(net.unit_at(2, 0).a) == "{y^{(3)}_{0}}"


def test_the_worked_kernel_gradient_is_the_central_difference_of_a_numpy_network(written):
    """The number the notes print for dE/dK_{0,0,0,0} against central differences of the README
    spec's loss computed by a forward pass of our own (plain loops), not by the package."""
    md = next(p for p in written["default"] if p.suffix == ".md").read_text()
    printed = float(re.search(r"This is the gradient (\S+) that the example", md).group(1).replace("−", "-"))
    spec = sb.load(written["default"][0].parent.parent / "conv.toml")
    nested = spec.network.nested_parameters(spec.values.parameters)
    x, t, h = np.asarray(spec.values.inputs[0]), np.asarray(spec.values.targets[0]), 1e-6

    def loss(step: float) -> float:
        moved = copy.deepcopy(nested)
        moved["weights"][0][0][0][0][0] += step
        return _numpy_loss(spec.network, moved, x, t)

    assert printed == pytest.approx((loss(h) - loss(-h)) / (2 * h), rel=1e-3)


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


def test_the_one_dimensional_figure_puts_each_output_unit_under_its_window():
    """1x12 input, kernel 3, stride 2, padding 1: the output row under the padded input row, every
    output cell centred under the three cells it reads (the stride shows as gaps), an arrow from each
    cell of the shaded field to its unit, cells as large as the 2-D grid's at least; TikZ and SVG
    draw the same cells and arrows."""
    spec = sb.from_dict(conv_spec([1, 12], [{"kind": "conv", "channels": 1, "kernel": [3], "stride": 2, "padding": 1,
                                             "activation": "tanh"}, {"kind": "dense", "units": 1}],
                                  {"inputs": [[0.1 * n for n in range(12)]], "targets": [0.5]}))
    drawn = convolutional.sliding(spec.network, convolutional.ConvPrinter(load("default"), None))
    figure = drawn["figure"]
    rows = sorted({y for _, y, _, _ in figure.cells}, reverse=True)
    above = sorted((x, side, shade) for x, y, side, shade in figure.cells if y == rows[0])
    below = sorted((x, side, shade) for x, y, side, shade in figure.cells if y == rows[1])
    assert len(rows) == 2 and len(above) == 12 + 2 and len(below) == 6 and drawn["below"]
    side = above[0][1]
    assert side >= convolutional.CELL
    for i, (x, _, _) in enumerate(below):  # unit i reads padded cells 2i, 2i+1, 2i+2: under the middle one
        assert x + side / 2 == pytest.approx(above[2 * i + 1][0] + side / 2)
    field = [x for x, _, shade in above if shade == 1]
    assert len(figure.arrows) == 3 and sorted(start[0] for start, _, _ in figure.arrows) == pytest.approx(
        [x + side / 2 for x in field])
    assert [shade for _, _, shade in below].count(1) == 1 and drawn["unit"] == "z_{0,3}"
    svg = figure.svg()
    assert figure.tikz().count(r"\draw[fill=") == svg.count("<rect x=") - 1 == 14 + 6
    assert figure.tikz().count(r"\draw[->") == svg.count("marker-end") == 3


def test_the_per_unit_parts_stay_within_the_layered_networks_bound_of_units():
    """A conv network may have 20,000 units on a few weights: its unit tables and appendix are listed
    up to 5,000 units (70x70 padded conv and a dense unit: 4,901), not beyond (75x75: 5,626), whatever
    its parameters (4,911 and 5,636, both under 10,000)."""
    from symbackprop.notes.rendering import lists_every_unit
    layers = [{"kind": "conv", "channels": 1, "kernel": [3, 3], "padding": 1, "activation": "tanh"},
              {"kind": "dense", "units": 1}]
    assert lists_every_unit(sb.convolutional([1, 70, 70], layers))
    assert not lists_every_unit(sb.convolutional([1, 75, 75], layers))


SHAPES = {
    "mini-batch": ([1, 4, 4], [{"kind": "conv", "channels": 1, "kernel": [2, 2], "activation": "sigmoid"},
                               {"kind": "avg_pool", "size": [3, 3]}, {"kind": "dense", "units": 2, "activation": "identity"}],
                   {"inputs": [[[[0.1, 0.2, 0.3, 0.4]] * 4], [[[0.5, -0.2, 0.3, 0.1]] * 4]],
                    "targets": [[0.1, 0.2], [0.3, 0.4]]}),
    "conv-output": ([1, 4, 4], [{"kind": "conv", "channels": 1, "kernel": [2, 2], "activation": "identity"}],
                    {"inputs": [[[0.1, 0.2, 0.3, 0.4]] * 4], "targets": [0.1] * 9}),
    "conv-below-conv": ([2, 5, 5], [{"kind": "conv", "channels": 2, "kernel": [2, 2], "activation": "relu"},
                                    {"kind": "conv", "channels": 1, "kernel": [2, 2], "stride": 2, "activation": "tanh"},
                                    {"kind": "dense", "units": 1}],
                        {"inputs": [[[0.1, 0.2, 0.3, 0.4, 0.5]] * 5] * 2, "targets": [0.3]}),
}


@requires_pdflatex
@pytest.mark.parametrize("name", SHAPES)
def test_other_conv_networks_get_notes_that_compile_without_an_overfull_box(tmp_path, name):
    """A mini-batch of images (its inputs, 16 a sample, overflowed a table by 190 pt), a conv layer
    as the output (no hidden layer: the box keeps its index-form formulas, no hidden derivation),
    and a conv layer below a conv layer."""
    shape, layers, example = SHAPES[name]
    tex = sb.write_notes(sb.from_dict(conv_spec(shape, layers, example)), tmp_path, formats=["tex"])[0]
    compile_tex(tex)
    assert r"\section{Convolutional layers}" in tex.read_text()
    assert "Overfull" not in (tex.parent / "notes.log").read_text()
