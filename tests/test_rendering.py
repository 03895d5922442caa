"""The notes as a reader gets them: LaTeX that compiles, Markdown math that KaTeX renders,
deterministic files, the textbooks' own formulas in their own notation, Jupyter display."""
import os
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

import symbackprop as sb

SPECS = {
    "default": sb.from_dict(sb.spec.DEFAULT),
    "softmax": sb.compact("2-3-3", "tanh,softmax", "cross_entropy"),
    "deep": sb.compact("2-3-3-2", "tanh,relu,sigmoid", "binary_cross_entropy"),
    "custom": sb.from_dict({"network": {"layers": [2, 2, 1], "activation": ["z/(1+exp(-z))", "identity"],
                                        "loss": "log(cosh(a - t))"}}),
    "graph": sb.from_dict({"network": {"inputs": ["x1"], "outputs": ["y"], "units": [
        {"name": "h", "inputs": ["x1"], "activation": "relu"},
        {"name": "y", "inputs": ["h", "x1"], "activation": "identity"}]}}),
    "batch": sb.from_dict({"network": {"layers": [2, 2, 1], "activation": ["tanh", "identity"]},
                           "example": {"inputs": [[0.1, 0.2], [0.3, -0.4]], "targets": [[0.5], [0.1]]}}),
}
#: (spec, notation) pairs whose notes the tests write: every spec in the default notation,
#: every notation on the default network, and a few crossings.
CASES = ([(name, "default") for name in SPECS] + [("default", n) for n in sb.notation.names() if n != "default"]
         + [("softmax", "bishop"), ("deep", "nielsen"), ("deep", "haykin"), ("graph", "xhy")])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Notes of every case, written once for all the tests of this module."""
    root = tmp_path_factory.mktemp("notes")
    return {(spec, notation): sb.write_notes(SPECS[spec], root / f"{spec}-{notation}", formats=["md", "tex"],
                                             notation=notation) for spec, notation in CASES}


def flat(text: str) -> str:
    """LaTeX without braces and spaces: compare formulas, not the printer's grouping."""
    return re.sub(r"[{}\s]", "", text)


def notes(spec: str, notation: str, format: str = "md", **options) -> str:
    derivation = sb.derive(SPECS[spec].network)
    return sb.render(derivation, format=format, notation=notation, **options)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (.ci/run installs it)")
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c))
def test_latex_notes_compile_with_pdflatex(written, case):
    tex = next(p for p in written[case] if p.suffix == ".tex")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
                            cwd=tex.parent, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-2000:]
    assert tex.with_suffix(".pdf").stat().st_size > 1000


KATEX = Path(__file__).parent.parent / ".ci" / "node" / "node_modules" / "katex"


@pytest.mark.skipif(shutil.which("node") is None or not KATEX.is_dir(),
                    reason="node and katex not installed (.ci/run installs them into .ci/node)")
def test_markdown_math_renders_in_katex(written):
    files = [str(p) for paths in written.values() for p in paths if p.suffix == ".md"]
    result = subprocess.run(["node", str(Path(__file__).parent / "katex_check.js"), *files], capture_output=True,
                            check=False, text=True, timeout=300,
                            env={"NODE_PATH": str(KATEX.parent), "PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stdout[-3000:]
    assert " 0 failed" in result.stdout


def test_markdown_links_a_well_formed_svg_figure_with_the_notation_labels(written):
    md, _, svg, backward = written[("default", "haykin")]
    assert f"]({svg.name})" in md.read_text() and f"]({backward.name})" in md.read_text()
    root = ElementTree.fromstring(svg.read_text())
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "x1" in texts and "y(1)1" in texts  # y^{(1)}_1: Haykin's activation of hidden unit 1
    assert "+1" in texts and "w(1)10" in texts and "w(2)11" in texts  # Haykin's bias: the weight from +1


def test_notes_are_deterministic(tmp_path):
    first = sb.write_notes(SPECS["softmax"], tmp_path / "one", formats=["md", "tex"], notation="nielsen")
    second = sb.write_notes(SPECS["softmax"], tmp_path / "two", formats=["md", "tex"], notation="nielsen")
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()


def test_formulas_come_from_sympy_for_a_custom_activation():
    text = flat(notes("custom", "default"))
    # swish' = sigma(z) + z e^{-z} / (1 + e^{-z})^2 and d/da log cosh(a - t) = tanh(a - t): in no table
    assert flat(r"\frac{e^{- z_{j}} z_{j}}{(1 + e^{- z_{j}})^{2}}") in text
    assert flat(r"\delta_{k} = \tanh(a_{k} - t_{k})") in text


# The lecture formulas as each text prints them, transcribed by hand from the sources named
# in notations/*.toml (sigmoid hidden layer, linear output, E = 1/2 sum of squares).
PUBLISHED = {
    "default": [r"\delta_j = (1 - a_j) a_j \sum_k \delta_k w_{jk}", r"\frac{\partial E}{\partial w_{ij}} = a_i \delta_j",
                r"\delta_k = a_k - t_k", r"w_{ij} \leftarrow w_{ij} - \eta a_i \delta_j"],
    # Haykin 4.14, 4.24, 4.12: delta_j = e_j phi'(v_j) (phi' = 1 here), phi'_j(v_j) sum_k delta_k w_kj, eta delta_j y_i
    "haykin": [r"\delta_j = e_j", r"\delta_j = (1 - y_j) y_j \sum_k \delta_k w_{kj}", r"\Delta w_{ji} = \eta y_i \delta_j",
               r"e_1 = d_1 - y^{(2)}_1", r"v_j = w_{j0} + \sum_i y_i w_{ji}"],
    # Nielsen BP1-BP4 in components
    "nielsen": [r"\delta^L_j = a^L_j - y_j", r"(BP1)", r"\delta^l_j = (1 - a^l_j) a^l_j \sum_k \delta^{l+1}_k w^{l+1}_{kj}",
                r"\frac{\partial C}{\partial w^l_{jk}} = a^{l-1}_k \delta^l_j", r"(BP4)",
                r"\frac{\partial C}{\partial b^l_j} = \delta^l_j", r"(BP3)",
                # BP1a and BP2 in matrix form, the input layer being layer 1
                r"\boldsymbol{\delta}^{3} = \nabla_{\boldsymbol{a}} C \odot \sigma'(\boldsymbol{z}^{3})",
                r"\boldsymbol{\delta}^{2} = ((w^{3})^{T} \boldsymbol{\delta}^{3}) \odot \sigma'(\boldsymbol{z}^{2})"],
    # Wikipedia: dE/dw_ij = o_i delta_j, sum over successors l in L of w_jl delta_l, Delta w_ij = -eta o_i delta_j
    "wikipedia": [r"\frac{\partial E}{\partial w_{ij}} = o_i \delta_j", r"\sum_\ell \delta_\ell w_{j\ell}",
                  r"\Delta w_{ij} = - \eta o_i \delta_j", r"\mathrm{net}_j"],
    # Bishop 5.54, 5.56, 5.53: delta_k = y_k - t_k, h'(a_j) sum_k w_kj delta_k, dE/dw_ji = delta_j z_i
    "bishop": [r"\delta_k = y_k - t_k", r"\frac{\partial E}{\partial a_j} = h'(a_j) \sum_k \delta_k w_{kj}",
               r"\frac{\partial E}{\partial w_{ji}} = z_i \delta_j", r"a_j = w_{j0} + \sum_i z_i w_{ji}"],
    "arrows": [r"\frac{\partial E}{\partial w_{i\rightarrow j}} = z_i \delta_j", r"\delta_j = \hat{y}_j - y_j",
               r"s_j = b_j + \sum_i z_i w_{i\rightarrow j}"],
    # the seed's update: Delta w_ij = alpha (d - y) dy/dw_ij, with a linear output y = sum_j w_j h_j
    "xhy": [r"\Delta w_{jk} = - \alpha h_j \delta_k", r"\delta_k = y_k - d_k", r"h_j = f(z_j)"],
}


@pytest.mark.parametrize("notation", PUBLISHED)
def test_each_notation_prints_its_texts_formulas(notation):
    text = flat(notes("default", notation))
    for formula in PUBLISHED[notation]:
        assert flat(formula) in text, formula


def test_haykin_signs_follow_from_the_same_derivation_numerically():
    """Haykin's delta is minus ours: the worked example prints the same numbers negated."""
    spec = SPECS["default"]
    derivation = sb.derive(spec.network)
    worked = sb.example(spec.network, spec.values, spec.learning_rate, derivation)
    ours, haykin = (sb.render(derivation, worked, format="md", notation=n) for n in ("default", "haykin"))
    row = lambda text, symbol: re.search(re.escape(symbol) + r"\$ \| (\S+) \|", text).group(1)
    assert float(row(haykin, r"\delta^{(2)}_{1}}")) == -float(row(ours, r"\delta^{(2)}_{1}}"))


def test_parts_can_be_left_out():
    full = notes("default", "default")
    cut = notes("default", "default", parts=("figure", "concrete"))
    assert "## Matrix form" in full and "## Matrix form" not in cut
    assert "## Every delta and gradient" in cut


def test_user_notation_file_overrides_a_role(tmp_path):
    own = tmp_path / "mine.toml"
    own.write_text('base = "haykin"\nname = "mine"\n[symbols]\npre_activation = "u"\n')
    text = flat(notes("default", sb.notation.load(own)))
    assert flat(r"\Delta w_{ji} = \eta y_i \delta_j") in text and flat(r"u_j = w_{j0}") in text
    own.write_text('base = "haykin"\n[symbols]\npre_activaton = "u"\n')
    with pytest.raises(sb.SpecError, match="did you mean 'pre_activation'"):
        sb.notation.load(own)


def test_mini_batch_shows_each_sample_and_the_mean():
    spec = SPECS["batch"]
    derivation = sb.derive(spec.network)
    worked = sb.example(spec.network, spec.values, spec.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md")
    assert "| parameter | value | gradient, sample 1 | gradient, sample 2 | mean gradient | after one step |" in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith(("| $w", "| ${w"))]
    for cells in rows:
        first, second, mean = (float(c) for c in cells[2:5])
        assert mean == pytest.approx((first + second) / 2, abs=2e-6)


def test_jupyter_display():
    derivation = sb.derive(SPECS["default"].network)
    assert derivation._repr_markdown_().startswith("# Backpropagation")
    assert derivation.steps[0]._repr_latex_().startswith("$")
