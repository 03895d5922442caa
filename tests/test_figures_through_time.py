"""The unrolled figure of an Elman network reads cleanly and shows what the chapter says: one
copy per time step, labelled t = 1..T, each step's inputs and outputs, recurrent edges only
from hidden(t-1) to hidden(t) of the same layer, and the zero state before the first step."""
import shutil
import subprocess
import sys
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_figures import ROOM_CM, SVG, assert_clean, assert_figure_clean, svg_geometry, tikz_geometry, typeset

import symbackprop as sb
from symbackprop.notes import figures
from symbackprop.notes.printing import NotationPrinter
from symbackprop.recurrent import recurrent_weight

#: "2-3-1 over 3" is the README's Elman network
NETWORKS = {"2-3-1 over 3": ([2, 3, 1], 3), "1-1-1 over 1": ([1, 1, 1], 1), "1-2-1 over 5": ([1, 2, 1], 5),
            "4-4-4 over 4": ([4, 4, 4], 4), "2-2-2-1 over 3": ([2, 2, 2, 1], 3), "10-20-5 over 10": ([10, 20, 5], 10)}


def elman(sizes, steps, hidden="tanh"):
    return sb.unrolled(sizes, [hidden] * (len(sizes) - 2) + ["identity"], "half_sse", steps=steps)


def drawn(network, notation="default"):
    return figures.unrolled(network, NotationPrinter(sb.notation.load(notation), network).doprint)


def layer_of(network, name):
    """(step, layer) of a unit of the unrolled network, read from the network, not the figure."""
    unit = network[name]
    return unit.step, 0 if unit.is_input else unit.position[0]


def assert_shows_the_unrolled_network(network, figure, notation="default"):
    steps = [int(text.split("=")[1]) for _, text in figure.captions]
    assert steps[0] == 1 and steps[-1] == network.steps and steps == sorted(steps)
    assert figure.skipped if len(steps) < network.steps else not figure.skipped
    assert steps == list(range(1, network.steps + 1)) or steps == list(range(1, len(steps))) + [network.steps]
    names = {node.name for node in figure.nodes}
    zero = {node.name for node in figure.nodes if node.kind == "zero"}
    assert zero and all(node.label == "0" for node in figure.nodes if node.kind == "zero")
    for step in steps:  # every copy has its inputs, hidden units and outputs (the first one of each layer)
        for layer in range(len(network.sizes)):
            assert network.unit_at(step - 1, layer, 0).name in names
    recurrent = 0
    for arrow in figure.arrows:
        if arrow.source in zero:  # the zero state feeds the first step's hidden units only, grey unless labelled
            assert layer_of(network, arrow.destination)[0] == 0 and arrow.faint != bool(arrow.box)
            continue
        (s_step, s_layer), (d_step, d_layer) = layer_of(network, arrow.source), layer_of(network, arrow.destination)
        if s_step == d_step:
            assert d_layer == s_layer + 1  # within a copy: the layer above
        else:  # a recurrent edge: hidden(t-1) to hidden(t), the same layer
            assert d_step == s_step + 1 and s_layer == d_layer and 0 < s_layer < len(network.sizes) - 1
            assert any(e.source == arrow.source for e in network[arrow.destination].inputs)
            recurrent += 1
    assert (recurrent > 0) == (network.steps > 1)
    assert_every_weight_named_once(network, figure, notation)


def assert_every_weight_named_once(network, figure, notation):
    """Each tied weight drawn is named exactly once: labelled on one copy of its edge (any
    step's) or, when no copy has a clear place, in :attr:`Figure.unplaced` with its edge, as
    the network says its units are joined ("w\\colon x_2 \\to a_1", the recurrent ones from t - 1 to t)."""
    latex = NotationPrinter(sb.notation.load(notation), network).doprint
    name = lambda unit: latex(unit.a).removesuffix(f"({unit.step + 1})")
    drawn = {node.name for node in figure.nodes}
    expected = {}  # weight LaTeX -> its entry, from the network's edges between drawn units
    for unit in network.units:
        for edge in unit.inputs:
            if unit.name in drawn and edge.source in drawn:
                source, destination = network[edge.source], unit
                names = [name(source), name(destination)]
                if source.step != destination.step:
                    names = [names[0] + "(t - 1)", names[1] + "(t)"]
                expected[latex(edge.weight)] = rf"{latex(edge.weight)}\colon {names[0]} \to {names[1]}"
    # the zero state's edge to a_j(1) from the dashed unit in a_i(1)'s row carries r_ij, as a_i(t - 1) would
    where = {node.name: node for node in figure.nodes}
    for arrow in (a for a in figure.arrows if where[a.source].kind == "zero"):
        destination = network[arrow.destination]
        source = next(network[n.name] for n in figure.nodes if n.kind != "zero" and n.y == where[arrow.source].y
                      and network[n.name].step == 0 and not network[n.name].is_input)
        weight = latex(recurrent_weight(destination.position[0] - 1, source.position[1], destination.position[1]))
        assert arrow.label in ("", weight)
        expected[weight] = rf"{weight}\colon {name(source)}(t - 1) \to {name(destination)}(t)"
    labelled = [a.label for a in figure.arrows if a.box]
    assert len(labelled) == len(set(labelled)), "a tied weight labelled on two copies"
    assert all(a.label == "" for a in figure.arrows if not a.box)
    assert not set(labelled) & {entry.split(r"\colon")[0] for entry in figure.unplaced}
    if figure.labelled == "all":
        assert {*labelled, *(entry.split(r"\colon")[0] for entry in figure.unplaced)} == set(expected)
    assert all(entry == expected[entry.split(r"\colon")[0]] for entry in figure.unplaced)
    recurrent = [r"(t - 1) \to" in entry for entry in figure.unplaced]
    assert recurrent == sorted(recurrent), "a step's own weights first, then the recurrent ones"


@pytest.mark.parametrize("notation", sb.notation.names())
@pytest.mark.parametrize("name", NETWORKS)
def test_svg_labels_do_not_overlap_and_edges_pass_no_unit(name, notation):
    network = elman(*NETWORKS[name])
    figure = drawn(network, notation)
    assert figure is not None and figures.clear(figure)
    labels, circles, paths = svg_geometry(figure.svg())
    assert len(circles) == len(figure.nodes) and len(paths) == len(figure.arrows)
    assert_clean(labels, circles, paths, room=ROOM_CM * figures.PIXELS)
    assert_shows_the_unrolled_network(network, figure, notation)
    root = ElementTree.fromstring(figure.svg())
    captions = ["".join(text.itertext()) for text in root.iter(SVG + "text") if text.get("class") == "caption"]
    assert captions == [text for _, text in figure.captions]
    dashed = [c for c in root.iter(SVG + "circle") if c.get("stroke-dasharray")]
    assert len(dashed) == sum(1 for node in figure.nodes if node.kind == "zero")


def test_every_step_and_every_recurrent_edge_of_a_short_sequence_is_drawn():
    network = elman([2, 3, 1], 3)
    figure = drawn(network)
    assert [text for _, text in figure.captions] == ["t = 1", "t = 2", "t = 3"]
    recurrent = {(a.source, a.destination) for a in figure.arrows
                 if not a.source.startswith("=") and network[a.source].step != network[a.destination].step}
    expected = {(network.unit_at(t - 1, 1, i).name, network.unit_at(t, 1, j).name)
                for t in (1, 2) for i in range(3) for j in range(3)}
    assert recurrent == expected  # 9 per pair of steps, nothing else across steps
    assert len([a for a in figure.arrows if a.source.startswith("=")]) == 9  # zero state -> step 1
    inputs, outputs = [network.unit_at(t, 0, i).name for t in range(3) for i in range(2)], \
        [network.unit_at(t, 2, 0).name for t in range(3)]
    where = {node.name: node for node in figure.nodes}
    for t in range(3):  # a step's inputs below and before its hidden units, its output above and after
        hidden = [where[network.unit_at(t, 1, j).name] for j in range(3)]
        assert all(where[name].y < min(h.y for h in hidden) and where[name].x < hidden[0].x
                   for name in inputs[2 * t:2 * t + 2])
        assert where[outputs[t]].y > max(h.y for h in hidden) and where[outputs[t]].x > hidden[0].x


def test_a_long_sequence_shows_the_first_steps_and_the_last_with_dots():
    network = elman([2, 3, 1], 10)
    figure = drawn(network)
    assert [text for _, text in figure.captions] == ["t = 1", "t = 2", "t = 10"]
    assert len(figure.skipped) == 1
    assert max(n.x for n in figure.nodes) - min(n.x for n in figure.nodes) <= figures.WIDEST


def test_a_wide_layer_shows_its_first_units_a_gap_and_its_last():
    network = elman([10, 20, 5], 10)
    figure = drawn(network)
    assert figure.elided and figures.clear(figure)
    names = {node.name for node in figure.nodes}
    assert network.unit_at(0, 1, 19).name in names and network.unit_at(0, 1, 10).name not in names


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 4), min_size=3, max_size=4), st.integers(2, 5),
       st.sampled_from(["tanh", "sigmoid", "relu", "identity"]), st.sampled_from(sb.notation.names()))
def test_random_recurrent_networks_draw_cleanly_or_say_they_cannot(sizes, steps, hidden, notation):
    network = elman(sizes, steps, hidden)
    figure = drawn(network, notation)
    if figure is None:  # only several hidden layers stacked in bands can be too steep to draw
        assert len(sizes) == 4
        return
    assert_figure_clean(figure)
    assert_shows_the_unrolled_network(network, figure, notation)
    captions = [((x, y), 0.6) for (x, y), _ in figure.captions]
    for box in (a.box for a in figure.arrows if a.box):
        assert all(not box.meets_circle(c, r) for c, r in captions)
    if len(sizes) == 3:
        assert figure is not None


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (.ci/run installs it)")
@pytest.mark.parametrize("notation", sb.notation.names())
def test_tikz_as_typeset_has_no_overlapping_label_and_no_edge_through_a_unit(tmp_path, notation):
    drawings = [drawn(elman(*NETWORKS[name]), notation) for name in NETWORKS]
    pictures = [figure.tikz() for figure in drawings]
    cm = 72.27 / 2.54
    for figure, picture, placed in zip(drawings, pictures, typeset(pictures, tmp_path), strict=True):
        labels, circles, paths = tikz_geometry(picture, placed)
        assert len(circles) == len(figure.nodes) and len(labels) == len([a for a in figure.arrows if a.box])
        captions = [(*placed[n]["SW"], *placed[n]["NE"]) for n in placed if n.startswith("s")]
        assert len(captions) == len(figure.captions)
        assert_clean(labels, circles, paths, room=ROOM_CM * cm, captions=captions)
        width = max(c[0][0] + c[1] for c in circles.values()) - min(c[0][0] - c[1] for c in circles.values())
        assert width <= figures.WIDEST * cm + 1  # the widest figure, give or take a circle's line


def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_derive_writes_the_unrolled_figure_beside_the_notes_and_no_figure_removes_it(tmp_path):
    args = ["derive", "2-3-1", "--activation", "tanh,identity", "--recurrent", "--steps", "3", "-o", str(tmp_path)]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    picture = tmp_path / "notes-through-time.svg"
    labels, circles, paths = svg_geometry(picture.read_text())
    assert len(circles) == 3 * 6 + 3 and paths  # three copies of 2-3-1 and the zero state
    md = (tmp_path / "notes.md").read_text()
    chapter = md[md.index("## The network"):md.index("## The equations")]  # the notes' first figure
    assert "](notes-through-time.svg)" in chapter and "the dashed units are the state before the first step" in chapter
    assert r"\node[zero]" in (tmp_path / "notes.tex").read_text()
    assert not (tmp_path / "notes.svg").exists() and not (tmp_path / "notes-backward.svg").exists()  # unused
    assert run(*args, "--no-figure").returncode == 0
    assert not picture.exists() and "notes-through-time.svg" not in (tmp_path / "notes.md").read_text()
    assert run(*args).returncode == 0 and picture.exists()
    assert run("derive", "2-3-1", "-o", str(tmp_path)).returncode == 0  # a feed-forward net has none
    assert not picture.exists() and (tmp_path / "notes.svg").exists()


def test_markdown_notes_without_a_figure_file_do_not_link_one():
    spec = sb.compact("2-3-1", activation="tanh,identity", steps=2)
    md = sb.render(sb.derive(spec.network), format="md")
    assert "through-time.svg" not in md and "## Backpropagation through time" in md
    tex = sb.render(sb.derive(spec.network), format="tex")
    assert r"\node[zero]" in tex


@pytest.mark.parametrize("notation", ["default", "haykin", "nielsen"])
def test_the_caption_names_each_weight_the_figure_could_not_label_with_its_edge(notation):
    """The README's Elman network over 3 steps: its recurrent weights find no clear place on
    any copy (the inputs' edges cross them), so the caption names them, each on its edge; it
    no longer says only the first copy is labelled (labels now sit on whichever copy has room)."""
    network = elman([2, 3, 1], 3)
    figure = drawn(network, notation)
    assert figure.unplaced and any(r"(t - 1) \to" in entry for entry in figure.unplaced)
    derivation = sb.derive(network)
    for format in ("tex", "md"):
        text = sb.render(derivation, format=format, notation=notation, figure="notes.svg")
        caption = text[text.index("The network unrolled:"):]
        caption = caption[:caption.index("\n")]
        assert all(f"${entry}$" in caption for entry in figure.unplaced), format
        assert "each is labelled once" in caption and "first copy" not in caption
