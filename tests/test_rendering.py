"""The notes as a reader gets them: LaTeX that compiles without overfull lines and a handout
of at most 4 pages, Markdown math that KaTeX renders with every display on its own, the
textbooks' own formulas in their own notation and signs, equations defined before use and
numbered, the softmax cancellation and the mini-batch mean derived, deterministic files."""
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import sympy as sp

import symbackprop as sb

import katex_node
from compiling import compile_tex

ELMAN = {"network": {"inputs": ["x1", "x2"], "outputs": ["y1", "y2"], "loss": "half_sse", "units": [
    {"name": "h1", "inputs": ["x1"], "weights": ["u"], "activation": "tanh", "bias": "c"},
    {"name": "h2", "inputs": ["x2", "h1"], "weights": ["u", "r"], "activation": "tanh", "bias": "c"},
    {"name": "y1", "inputs": ["h1"], "weights": ["v"], "activation": "identity"},
    {"name": "y2", "inputs": ["h2"], "weights": ["v"], "activation": "identity"}]},
    "example": {"inputs": [0.5, -0.3], "targets": [0.1, 0.2], "parameters": {"u": 0.4, "r": 0.7, "v": -0.6}}}
SPECS = {
    "default": sb.from_dict(sb.spec.DEFAULT),
    "softmax": sb.compact("2-3-3", "tanh,softmax", "cross_entropy"),
    "softmax343": sb.compact("3-4-3", "sigmoid,softmax", "cross_entropy"),
    "deep": sb.compact("2-3-3-2", "tanh,relu,sigmoid", "binary_cross_entropy"),
    "custom": sb.from_dict({"network": {"layers": [2, 2, 1], "activation": ["z/(1+exp(-z))", "identity"],
                                        "loss": "log(cosh(a - t))"}}),
    "graph": sb.from_dict({"network": {"inputs": ["x1"], "outputs": ["y"], "units": [
        {"name": "h", "inputs": ["x1"], "activation": "relu"},
        {"name": "y", "inputs": ["h", "x1"], "activation": "identity"}]}}),
    "elman": sb.from_dict(ELMAN),
    "batch": sb.from_dict({"network": {"layers": [2, 2, 1], "activation": ["tanh", "identity"]},
                           "example": {"inputs": [[0.1, 0.2], [0.3, -0.4]], "targets": [[0.5], [0.1]]}}),
    "batch5": sb.from_dict({"network": {"layers": [2, 3, 1], "activation": ["sigmoid", "identity"]},
                            "example": {"inputs": [[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6], [0.7, 0.8], [-0.9, -0.1]],
                                        "targets": [[0.5], [0.1], [-0.2], [0.3], [0.4]]}}),
}
PRESETS = sb.notation.names()
#: (spec, notation) pairs whose notes the tests write: every spec in the default notation,
#: every notation on the default network, and a few crossings.
CASES = ([(name, "default") for name in SPECS] + [("default", n) for n in PRESETS if n != "default"]
         + [("softmax", "bishop"), ("deep", "nielsen"), ("deep", "haykin"), ("graph", "xhy"), ("softmax", "haykin")])
HAS_LATEX = shutil.which("pdflatex") is not None and shutil.which("pdfinfo") is not None


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Notes of every case, written once for all the tests of this module."""
    root = tmp_path_factory.mktemp("notes")
    return {(spec, notation): sb.write_notes(SPECS[spec], root / f"{spec}-{notation}", formats=["md", "tex"],
                                             notation=notation) for spec, notation in CASES}


def flat(text: str) -> str:
    """LaTeX without braces and spaces: compare formulas, not the printer's grouping."""
    return re.sub(r"[{}\s]", "", text)


def notes(spec: str, notation: str, format: str = "md", worked: bool = False, **options) -> str:
    s = SPECS[spec]
    derivation = sb.derive(s.network)
    example = sb.example(s.network, s.values, s.learning_rate, derivation) if worked else None
    return sb.render(derivation, example, format=format, notation=notation, **options)


def pdflatex(tex: Path) -> str:
    """Compile ``tex`` (twice when it has numbered displays: longtable settles its widths) and return the log."""
    compile_tex(tex)
    return tex.with_suffix(".log").read_text(errors="replace")


def overfull(log: str) -> list[float]:
    """Widths (pt) of the overfull boxes pdflatex reports."""
    return [float(x) for x in re.findall(r"Overfull \\[hv]box \((\d+(?:\.\d+)?)pt too", log)]


@pytest.mark.skipif(not HAS_LATEX, reason="pdflatex not installed (.ci/run installs it)")
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c))
def test_latex_notes_compile_without_overfull_lines(written, case):
    tex = next(p for p in written[case] if p.suffix == ".tex")
    log = pdflatex(tex)
    assert tex.with_suffix(".pdf").stat().st_size > 1000
    assert [w for w in overfull(log) if w > 1.0] == [], "overfull boxes in " + "-".join(case)


def test_overfull_parser_reads_pdflatex_log_lines():
    log = "Overfull \\hbox (166.2pt too wide) in paragraph at lines 3--4\nOverfull \\vbox (0.5pt too high)"
    assert overfull(log) == [166.2, 0.5]


@pytest.mark.skipif(not HAS_LATEX, reason="pdflatex and pdfinfo not installed (.ci/run installs them)")
@pytest.mark.parametrize("notation", PRESETS)
def test_handout_of_a_two_three_one_network_fits_on_four_pages(tmp_path, notation):
    tex = next(p for p in sb.write_notes(SPECS["default"], tmp_path, formats=["tex"], notation=notation,
                                         parts=[p for p in sb.rendering.PARTS if p not in sb.rendering.APPENDIX])
               if p.suffix == ".tex")
    assert "Appendix" not in tex.read_text()
    pdflatex(tex)
    info = subprocess.run(["pdfinfo", str(tex.with_suffix(".pdf"))], capture_output=True, text=True, check=True)
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))
    assert pages <= 4, f"{notation}: {pages} pages"


@katex_node.requires_katex
def test_markdown_math_renders_in_katex(written):
    files = [str(p) for paths in written.values() for p in paths if p.suffix == ".md"]
    result = katex_node.render_all(files, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " 0 failed" in result.stdout


def test_the_katex_skip_reason_names_what_is_missing(tmp_path):
    with_node, without = tmp_path / "bin", tmp_path / "empty"
    with_node.mkdir(), without.mkdir()
    (with_node / "node").write_text("#!/bin/sh\n")
    (with_node / "node").chmod(0o755)
    package, absent = tmp_path / "node_modules" / "katex", tmp_path / "nowhere" / "katex"
    package.mkdir(parents=True)
    only_package = katex_node.missing(str(without), package)
    only_node = katex_node.missing(str(with_node), absent)
    assert "Node.js" in only_package and "katex package is in" in only_package
    assert "katex package" in only_node and "Node.js" not in only_node and "node is installed" in only_node
    assert "Node.js" in katex_node.missing(str(without), absent) and "katex package" in katex_node.missing(
        str(without), absent)
    assert katex_node.missing(str(with_node), package) == ""


def displays_stand_alone(markdown: str) -> list[str]:
    """The lines where a $$ display shares its line or touches text above or below."""
    lines = markdown.split("\n")
    bad = []
    for n, line in enumerate(lines):
        if "$$" in line:
            alone = line.startswith("$$") and line.endswith("$$") and line.count("$$") == 2
            if not alone or (n and lines[n - 1].strip()) or (n + 1 < len(lines) and lines[n + 1].strip()):
                bad.append(line)
    return bad


def test_every_markdown_display_has_a_blank_line_before_and_after(written):
    for case, paths in written.items():
        md = next(p for p in paths if p.suffix == ".md").read_text()
        assert md.count("$$") > 20
        assert displays_stand_alone(md) == [], case


def test_display_check_finds_a_display_inside_a_paragraph():
    assert displays_stand_alone("Since\n$$a = b$$\n\nthen") == ["$$a = b$$"]
    assert displays_stand_alone("Since\n\n$$a = b$$\n\nthen") == []


def test_markdown_links_a_well_formed_svg_figure_with_the_notation_labels(written):
    md, _, svg, backward = written[("default", "haykin")]
    assert f"]({svg.name})" in md.read_text() and f"]({backward.name})" in md.read_text()
    assert "](None)" not in md.read_text()
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
    assert flat(r"\left(\frac{1}{1 + e^{- z_{j}}} +") in text  # sized brackets around tall fractions only
    assert flat(r"\delta_{k} = \tanh(a_{k} - t_{k})") in text
    assert "SymPy finds no form of its derivative in terms of the activation" in notes("custom", "default")


# The lecture formulas as each text prints them, transcribed by hand from the sources named
# in notations/*.toml (sigmoid hidden layer, linear output, E = 1/2 sum of squares).
PUBLISHED = {
    "default": [r"\delta_j = (1 - a_j) a_j \sum_k \delta_k w_{jk}",
                r"\frac{\partial E}{\partial w_{ij}} = a_i \delta_j",
                r"\delta_k = a_k - t_k", r"w_{ij} \leftarrow w_{ij} - \eta a_i \delta_j",
                r"\frac{\partial z_{k}}{\partial w_{jk}} = a_{j}", r"\frac{\partial z_{k}}{\partial a_{j}} = w_{jk}"],
    # Haykin 4.14, 4.24, 4.12: delta_j = e_j phi'(v_j) (phi' = 1 here), phi'_j(v_j) sum_k delta_k w_kj, eta delta_j y_i
    "haykin": [r"\delta_j = \varphi'(v_j) e_j", r"\delta_j = e_j", r"\delta_j = (1 - y_j) y_j \sum_k \delta_k w_{kj}",
               r"\Delta w_{ji} = \eta y_i \delta_j", r"e_j = d_j - y_j", r"v_j = w_{j0} + \sum_i y_i w_{ji}",
               r"\delta_{j} = - \frac{\partial \mathcal{E}}{\partial v_{j}}",
               # the matrix form with Haykin's sign, the bias as the weight matrix's first column
               r"\boldsymbol{\delta}^{(2)} = - \nabla_{\boldsymbol{y}} \mathcal{E} \odot",
               r"\frac{\partial \mathcal{E}}{\partial W^{(2)}} = "
               r"- \boldsymbol{\delta}^{(2)} (\hat{\boldsymbol{y}}^{(1)})^{T}",
               r"\boldsymbol{v}^{(1)} = W^{(1)} \hat{\boldsymbol{x}}", r"W^{(2)} \in \mathbb{R}^{1 \times 4}"],
    # Nielsen BP1-BP4 in components; the identity output is g, sigma only for the sigmoid
    "nielsen": [r"\delta^L_j = a^L_j - y_j", r"\tag{BP1}",
                r"\delta^l_j = \sigma'(z^l_j) \sum_k \delta^{l+1}_k w^{l+1}_{kj}",
                r"\frac{\partial C}{\partial w^l_{jk}} = a^{l-1}_k \delta^l_j", r"\tag{BP4}",
                r"\frac{\partial C}{\partial b^l_j} = \delta^l_j", r"\tag{BP3}",
                # BP1a and BP2 in matrix form, the input layer being layer 1
                r"\boldsymbol{\delta}^{3} = \nabla_{\boldsymbol{a}} C \odot g'(\boldsymbol{z}^{3})",
                r"\boldsymbol{\delta}^{2} = ((w^{3})^{T} \boldsymbol{\delta}^{3}) \odot \sigma'(\boldsymbol{z}^{2})"],
    # Wikipedia: dE/dw_ij = o_i delta_j, sum over successors l in L of w_jl delta_l, Delta w_ij = -eta o_i delta_j
    "wikipedia": [r"\frac{\partial E}{\partial w_{ij}} = o_i \delta_j", r"\sum_\ell \delta_\ell w_{j\ell}",
                  r"\Delta w_{ij} = - \eta o_i \delta_j", r"\mathrm{net}_j"],
    # Bishop 5.54, 5.56, 5.53: delta_k = y_k - t_k, h'(a_j) sum_k w_kj delta_k, dE/dw_ji = delta_j z_i
    "bishop": [r"\delta_k = y_k - t_k", r"\delta_j = h'(a_j) \sum_k \delta_k w_{kj}",
               r"\frac{\partial E}{\partial w_{ji}} = z_i \delta_j", r"a_j = w_{j0} + \sum_i z_i w_{ji}"],
    "arrows": [r"\frac{\partial E}{\partial w_{i\rightarrow j}} = z_i \delta_j", r"\delta_j = \hat{y}_j - y_j",
               r"s_j = b_j + \sum_i z_i w_{i\rightarrow j}"],
    # the lectures' update: Delta w_ij = alpha (d - y) dy/dw_ij, with a linear output y = sum_j w_j h_j
    "xhy": [r"\Delta w_{ij} = - \alpha h_i \delta_j", r"\delta_k = y_k - d_k", r"h_j = f(z_j)"],
}


@pytest.mark.parametrize("notation", PUBLISHED)
def test_each_notation_prints_its_texts_formulas(notation):
    text = flat(notes("default", notation))
    for formula in PUBLISHED[notation]:
        assert flat(formula) in text, formula


@pytest.mark.parametrize("notation", PRESETS)
def test_delta_is_defined_before_it_is_used_and_equations_are_numbered_and_cited(notation):
    text = notes("default", notation)
    body = text[text.index("## The network"):]
    definition = re.search(r"\$\$\{?\\delta[^=$]* = -? ?\\frac\{\\partial", body)
    assert definition, "no definition of delta"
    assert "\\delta" not in body[:definition.start()]
    tags = re.findall(r"\\tag\{(\w+)\}", text)
    numbers = [int(t) for t in tags if t.isdigit()]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 15
    assert len(set(tags)) == len(tags)
    cited = set(re.findall(r"\((\w+)\)", re.sub(r"\$\$.*?\$\$|\$.*?\$", "", text)))
    assert {"1", "2"} <= cited and len(cited & set(tags)) >= 8


def test_one_hidden_layer_derivation_covers_every_hidden_layer():
    text = notes("deep", "default")
    assert text.count("## The hidden layers") == 1 and "## The hidden layers (layers 1 and 2)" in text
    assert text.count("reaches the error through the net inputs") == 1
    assert "rectified linear" in text and "hyperbolic tangent" in text  # g' named for each of them


def test_nielsen_headings_use_its_layer_numbers_and_sigma_only_for_the_sigmoid():
    text = notes("default", "nielsen")
    assert "## The output layer (layer 3)" in text and "## The hidden layers (layer 2)" in text
    assert flat(r"g({z^{L}_{j}}) = {z^{L}_{j}}") in flat(text) and flat(r"\sigma({z^{L}_{j}})") not in flat(text)
    assert flat(r"\sigma({z^{l}_{j}}) = \frac{1}{1 + e^{- {z^{l}_{j}}}}") in flat(text)


def test_softmax_shows_the_jacobian_and_the_cancellation_step_by_step():
    text = notes("softmax", "default")
    assert "Kronecker delta" in text
    assert flat(r"\frac{\partial a_{m}}{\partial z_{k}} = (I_{km} - a_{k}) a_{m}") in flat(text)
    chain = next(line for line in text.splitlines() if line.startswith(r"$$\delta_{k} = \sum_{m}"))
    steps = [flat(s) for s in chain.strip("$").split(" = ")]
    assert flat(r"\left(- \frac{t_{m}}{a_{m}}\right)") in steps[2]  # the factors, before cancelling
    assert flat(r"a_{k} \sum_{m} t_{m} - t_{k}") in steps  # the Kronecker delta summed
    assert steps[-1].startswith(flat(r"a_{k} - t_{k}"))  # sum_m t_m = 1
    assert "((" not in notes("softmax", "default") and r"\left(\left(" not in text  # no doubled brackets


def test_intro_cites_the_published_source_and_nothing_mentions_seeds():
    root = Path(__file__).parent.parent
    for notation in PRESETS:
        text = notes("default", notation)
        assert "seed" not in text.lower()
        assert re.search(r"Haykin|Nielsen|Bishop|Wikipedia|Mazur", text.split("\n## ")[0]), notation
    for path in [root / "README.md", *(root / "notations").glob("*.toml"), *(root / "templates").glob("*.j2")]:
        assert "seeds" not in path.read_text().lower(), path


def test_prose_uses_words_not_identifiers():
    for spec in ("default", "deep", "custom", "softmax"):
        text = notes(spec, "default")
        prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", "", text, flags=re.S)
        assert not re.search(r"half_sse|cross_entropy|binary_cross_entropy|z/\(1|\bexp\(", prose), spec


def test_haykin_signs_follow_from_the_same_derivation_numerically():
    """Haykin's delta is minus ours: the worked example prints the same numbers negated."""
    ours, haykin = (notes("default", n, worked=True) for n in ("default", "haykin"))
    row = lambda text: re.search(r"\| \$\{[ay]\^\{\(2\)\}_\{1\}\}\$ \| (\S+) \| (\S+) \| (\S+) \|", text).group(3)
    as_float = lambda x: float(x.replace("−", "-"))
    assert as_float(row(haykin)) == -as_float(row(ours)) != 0


def test_worked_example_substitutes_the_numbers_and_gives_the_error_after_the_step():
    text = notes("default", "default", worked=True)
    hidden = next(line for line in text.splitlines() if line.startswith(r"$${\delta^{(1)}_{1}} ="))
    symbolic, substituted, value = hidden.strip("$").split(" = ")[1:]
    significant = lambda x: len(re.sub(r"^0\.0*", "", x).replace(".", ""))  # four significant digits
    assert r"\times" in substituted and re.fullmatch(r"-?\d+\.\d+", value) and significant(value.lstrip("-")) == 4
    assert all(significant(x) == 4 for x in re.findall(r"\d+\.\d+", substituted) if x != "0.5")  # 0.5: eta as given
    after = re.search(r"before the step and is \$E = (\d+\.\d+)\$", text)
    before = re.search(r"The error was \$E = (\d+\.\d+)\$ before", text)
    assert after and before and float(after.group(1)) < float(before.group(1))
    table = text[text.index("## A worked example"):]
    assert "−" in table and not re.search(r"\| -\d", table)  # real minus signs in the tables


def test_worked_numbers_are_the_example_evaluation():
    spec = SPECS["default"]
    derivation = sb.derive(spec.network)
    worked = sb.example(spec.network, spec.values, spec.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md")
    for p, gradient in worked.evaluation.gradients.items():
        assert f"{gradient:#.4g}".replace("-", "−") in text
    loss_after = sb.example(spec.network, sb.Values(spec.values.inputs, spec.values.targets,
                                                    worked.evaluation.updated)).evaluation.loss
    assert f"is $E = {loss_after:#.4g}$ after it" in text


def test_parts_can_be_left_out():
    full = notes("default", "default")
    cut = notes("default", "default", parts=("figure", "concrete"))
    assert "## Matrix form" in full and "## Matrix form" not in cut
    assert "## Appendix: every formula" in cut


def test_user_notation_file_overrides_a_role(tmp_path):
    own = tmp_path / "mine.toml"
    own.write_text('base = "haykin"\nname = "mine"\n[symbols]\npre_activation = "u"\n')
    text = flat(notes("default", sb.notation.load(own)))
    assert flat(r"\Delta w_{ji} = \eta y_i \delta_j") in text and flat(r"u_j = w_{j0}") in text
    own.write_text('base = "haykin"\n[symbols]\npre_activaton = "u"\n')
    with pytest.raises(sb.SpecError, match="did you mean 'pre_activation'"):
        sb.notation.load(own)


@pytest.mark.parametrize("spec", ["batch", "batch5"])
def test_mini_batch_derives_the_mean_and_shows_every_sample(spec):
    text = notes(spec, "default", worked=True)
    assert flat(r"E = \frac{1}{N} \sum_{n=1}^{N} E_{n}") in flat(text)  # as Bishop (2006, eq. 1.2) writes a mean
    mean = r"\frac{\partial E}{\partial w_{ij}} = \frac{1}{N} \sum_{n=1}^{N} \frac{\partial E_{n}}{\partial w_{ij}}"
    assert flat(mean) in flat(text)
    samples = len(SPECS[spec].values.inputs)
    part = text[text.index("The gradient of every parameter for each sample"):text.index("Every parameter is updated")]
    per_sample: dict[str, list[float]] = {}
    for line in part.splitlines():
        if line.startswith("| $"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            per_sample.setdefault(cells[0], []).extend(float(c.replace("−", "-")) for c in cells[1:])
    table = text[text.index("Every parameter is updated"):text.index("before the step")]
    means = {cells[0]: float(cells[2].replace("−", "-")) for cells in
             ([c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| $"))}
    assert per_sample and set(per_sample) == set(means)
    for symbol, values in per_sample.items():
        assert len(values) == samples
        # each printed to four significant digits: the mean of the rounded values within their rounding
        assert means[symbol] == pytest.approx(sum(values) / samples, abs=1e-3 * max(1, *map(abs, values)))


def test_a_notebook_gets_the_display_on_import_and_a_script_does_not():
    probe = ("import sys, types; {fake}import symbackprop as sb; "
             "print(hasattr(sb.Derivation, '_repr_markdown_'), 'jinja2' in sys.modules)")
    for fake, expected in (("sys.modules['IPython'] = types.ModuleType('IPython'); ", "True True"),
                           ("", "False False")):
        shown = subprocess.run([sys.executable, "-c", probe.format(fake=fake)], capture_output=True, text=True)
        assert shown.stdout.split() == expected.split(), shown.stderr


def test_jupyter_displays_every_object_as_the_notes_print_it():
    import symbackprop.notes.display  # noqa: F401  (what importing symbackprop does in a notebook)
    spec = SPECS["default"]
    d = sb.derive(spec.network)
    notes_md = d._repr_markdown_()
    assert notes_md.startswith("# Backpropagation") and "](data:image/svg+xml;base64," in notes_md
    assert "](None)" not in notes_md
    concrete = next(s for s in d.steps if s.level == "concrete" and s.rule == "gradient" and "b[" in str(s.lhs))
    shown = concrete._repr_latex_()
    assert "[" not in shown and flat(r"\frac{\partial E}{\partial {b^{(1)}_{1}}} = {\delta^{(1)}_{1}}") in flat(shown)
    update = next(s for s in d.steps if s.rule == "gradient_descent")
    assert flat(r"w_{ij} \leftarrow w_{ij} - \eta a_{i} \delta_{j}") in flat(update._repr_latex_())
    layer = d.generic["layer 1"]._repr_latex_()
    assert r"\mathrel{..}" not in layer
    for raw in (d.generic["layer 1"].delta, d.generic["layer 1"].gradient_weight):
        shown_raw = raw._repr_latex_()  # a bare SymPy expression, printed by SymPy's own printer
        assert r"\mathrel{..}" not in shown_raw and r"{a}_{" in shown_raw, shown_raw
    assert r"{a}_{k} - {t}_{k}" in d.generic["layer 2"].delta._repr_latex_()
    assert flat(r"\delta_{j} = (1 - a_{j}) a_{j} \sum_{k} \delta_{k} w_{jk}") in flat(layer.replace("&", ""))
    worked = sb.example(spec.network, spec.values, spec.learning_rate, d)._repr_markdown_()
    assert worked.startswith("## A worked example") and "## The output layer" not in worked  # the example alone
    assert "The error was" in worked and "## Appendix" not in worked
    assert ElementTree.fromstring(spec.network._repr_svg_()).tag.endswith("svg")


def test_jupyter_shows_formulas_in_symbols_a_report_as_tables_a_spec_and_the_unrolled_figure():
    import symbackprop.notes.display  # noqa: F401  (what importing symbackprop does in a notebook)
    from symbackprop.notes import through_time
    from symbackprop.notes.printing import NotationPrinter
    spec = SPECS["default"]
    d = sb.derive(spec.network)
    pooled = sb.convolutional([1, 4, 4], [{"kind": "conv", "channels": 1, "kernel": [2, 2]},
                                          {"kind": "avg_pool", "size": [2, 2]}, {"kind": "dense", "units": 1}])
    kernel = pooled.parameters[0]  # alive, and built last: its pooling edges weigh 1/4
    shadow = sb.convolutional([1, 2, 2], [{"kind": "conv", "channels": 1, "kernel": [1, 1]},
                                          {"kind": "dense", "units": 2}])  # its delta[1][0] printed from 0
    assert "delta[1][0]" in {str(u.delta) for u in shadow.computing_units}
    assert str(kernel) == "K[0][0][0][0][0]" and kernel._repr_latex_() == r"$\displaystyle {K^{(1)}_{0,0,0,0}}$"
    shown = d.deltas["[0][1]"]._repr_latex_()  # a bare SymPy expression of the network's symbols
    assert not re.search(r"(a|delta|w|z|b|x|t)\[\d", shown), shown  # was a[0][1] delta[1][0] w[1][1][0]
    assert r"{\delta^{(2)}_{1}}" in shown and r"{w^{(2)}_{21}}" in shown and r"{a^{(1)}_{2}}" in shown
    assert sp.Symbol("q")._repr_latex_() == r"$\displaystyle q$"  # other symbols as SymPy prints them
    report = sb.verify(spec.network, d, spec.values)
    table = report._repr_markdown_()
    assert "Report(" not in table and "| witness | verdict |" in table and "central finite differences" in table
    rows = [line for line in table.splitlines() if line.startswith("| ${")]
    assert len(rows) == len(spec.network.parameters) and rows[0].startswith(r"| ${w^{(1)}_{11}}$ |")
    for line, checked in zip(rows, report.parameters):
        assert float(line.split("|")[4]) == pytest.approx(checked.rel_error, rel=0.06)
        assert float(line.split("|")[2].replace("−", "-")) == pytest.approx(checked.analytic, abs=6e-5)
    wide = sb.compact("8-8-4")
    wide_report = sb.verify(wide.network, sb.derive(wide.network), wide.values)
    shown_rows = [line for line in wide_report._repr_markdown_().splitlines() if line.startswith("| ${")]
    worst = sorted((p.rel_error for p in wide_report.parameters), reverse=True)[:60]
    assert [float(line.split("|")[4]) for line in shown_rows] == pytest.approx(worst, rel=0.06)  # the largest
    loaded = spec._repr_markdown_()
    assert "Spec(" not in loaded and loaded.startswith("![The network](data:image/svg+xml;base64,")
    assert "| $x_{1}$ |" in loaded and r"| ${b^{(2)}_{1}}$ |" in loaded and "learning rate" in loaded
    rnn = sb.unrolled([2, 3, 1], ["tanh", "identity"], "half_sse", steps=3)
    latex = NotationPrinter(sb.notation.load("default"), rnn).doprint
    assert rnn._repr_svg_() == through_time.figure(rnn, latex).svg()


def test_concrete_deltas_in_textbook_order_equal_the_derivation():
    from symbackprop.notes.worked import textbook_delta
    for name in ("default", "deep", "custom", "softmax"):
        net = SPECS[name].network
        d = sb.derive(net)
        for u in net.computing_units:
            shown = textbook_delta(net, u, d.deltas[u.name])
            assert sp.expand(shown - d.deltas[u.name]) == 0, (name, u.name)


BAD_SYMBOLS = [r"\input{/etc/passwd}", "^^5cinput{/etc/passwd}", "x^^", r"\write18{id}", "$x$", "x}", "{x", "x" * 65, "a\nb", r"\def\x{y}", "x % y", ""]


@pytest.mark.parametrize("symbol", BAD_SYMBOLS)
def test_a_notation_symbol_outside_the_whitelist_is_refused_naming_the_role(tmp_path, symbol):
    own = tmp_path / "bad.toml"
    own.write_text('base = "default"\n[symbols]\nweight = """' + symbol.replace("\\", "\\\\") + '"""\n')
    with pytest.raises(sb.SpecError, match="notation.symbols.weight"):
        sb.notation.load(own)


@pytest.mark.parametrize("symbol", [r"\hat{y}", r"\mathcal{E}", r"w_{i\rightarrow j}", r"\mathrm{net}", "x'",
                                    r"\varphi"])
def test_the_symbols_texts_use_pass(tmp_path, symbol):
    own = tmp_path / "good.toml"
    own.write_text('base = "default"\n[symbols]\nweight = """' + symbol.replace("\\", "\\\\") + '"""\n')
    assert sb.notation.load(own).symbols["weight"] == symbol


@pytest.mark.parametrize("table, field", [
    ('[symbols]\nweight = 5', "notation.symbols.weight"),
    ('[letters]\nhidden = "x"', "notation.letters.hidden"),
    ('symbols = "x"', "notation.symbols"),
    ('[conventions]\ndelta_sign = "minus"', "notation.conventions.delta_sign"),
    ('[conventions]\nfirst_layer = 1000', "notation.conventions.first_layer"),
    ('[equation_names]\ndelta_output = "\\\\input{x}"', "notation.equation_names.delta_output"),
    ('[plain]\nweight = 5', "notation.plain.weight"),
])
def test_notation_fields_of_the_wrong_type_are_refused(tmp_path, table, field):
    own = tmp_path / "bad.toml"
    own.write_text('base = "default"\n' + table + "\n")
    with pytest.raises(sb.SpecError, match=re.escape(field)):
        sb.notation.load(own)


def test_a_hostile_notation_exits_two_from_the_command_line(tmp_path):
    own = tmp_path / "evil.toml"
    own.write_text('base = "default"\n[symbols]\nweight = "\\\\input{/etc/passwd}"\n')
    result = subprocess.run([sys.executable, "-m", "symbackprop", "derive", "--notation", str(own), "-o",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2 and "notation.symbols.weight" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_nielsen_softmax_denominator_keeps_its_layer_and_avoids_the_layer_letter():
    text = flat(notes("softmax", "nielsen"))
    assert flat(r"\frac{e^{{z^{L}_{j}}}}{\sum_{i} e^{{z^{L}_{i}}}}") in text and flat(r"\sum_{l} e") not in text


def test_a_long_product_breaks_between_its_factors_not_inside_a_short_group():
    """The substituted delta of a unit under max pooling, (1 - a^2) x delta x three brackets: it broke
    inside (1 - 0.1460^2), leaving "= (1" alone on a line; a long sum inside parentheses (a recurrent
    delta's) still breaks inside them, where nothing else would fit."""
    from symbackprop.notes.rendering import aligned
    product = (r"(1 - 0.1460^{2}) \times (-0.7568) \times [0.1460 > (-0.2738)] \times [0.1460 > (-0.1312)] "
               r"\times [0.1460 \ge (-0.4526)]")
    lines = [line.replace(r"&\quad", "").strip() for line in aligned(product).split(" \\\\\n ")]
    assert len(lines) > 1 and all(line.count("(") == line.count(")") for line in lines), lines
    assert lines[1].startswith(r"\times")
    total = "(" + " + ".join(rf"{n}.1234 \times 0.5678" for n in range(9)) + ")"
    inside = aligned(rf"0.5 \times {total}").split(" \\\\\n ")
    assert len(inside) > 1 and inside[1].startswith(r"&\quad + ")
