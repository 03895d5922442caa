"""The network figures read cleanly: no two labels overlap, no edge crosses a unit it does not
touch, in the SVG as written and in the TikZ as pdflatex typesets it; the bias unit where
the notation has one; the local gradients drawn backwards along the same edges."""
import math
import re
from itertools import pairwise
from pathlib import Path
from xml.etree import ElementTree

import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbackprop as sb
from symbackprop.notes import figures
from symbackprop.notes.printing import NotationPrinter

from compiling import compile_tex, requires_pdflatex

SVG = "{http://www.w3.org/2000/svg}"
README = Path(__file__).parent.parent / "README.md"
ELMAN = README.read_text().split("An Elman network unrolled over two steps:\n\n```toml\n")[1].split("```")[0]
#: Room an edge keeps from a unit it passes, in the picture's own length unit per centimetre.
ROOM_CM = 0.1


NETWORKS = {"2-3-1": sb.layered([2, 3, 1]), "3-4-3": sb.layered([3, 4, 3]), "4-8-4": sb.layered([4, 8, 4]),
            "elman": sb.from_dict(tomllib.loads(ELMAN)).network}
NOTATIONS = ["default", "haykin", "nielsen"]


def drawn(network, notation="default"):
    notation = sb.notation.load(notation)
    return figures.draw(network, NotationPrinter(notation, network).doprint, notation)


# --- geometry, written here independently of the module's own ---------------------------

def boxes_overlap(a, b) -> bool:
    """(left, bottom, right, top) rectangles sharing some area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def distance_to_segment(c, p, q) -> float:
    px, py = q[0] - p[0], q[1] - p[1]
    t = ((c[0] - p[0]) * px + (c[1] - p[1]) * py) / (px * px + py * py)
    t = min(1.0, max(0.0, t))
    return math.hypot(p[0] + t * px - c[0], p[1] + t * py - c[1])


def box_meets_circle(box, centre, radius) -> bool:
    nearest = (min(max(centre[0], box[0]), box[2]), min(max(centre[1], box[1]), box[3]))
    return math.dist(nearest, centre) < radius


def segments_cross(p, q, r, s) -> bool:
    """Do the segments pq and rs share a point? (orientations, with collinear overlaps)"""
    def turn(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def within(a, b, c):
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])
    d1, d2, d3, d4 = turn(r, s, p), turn(r, s, q), turn(p, q, r), turn(p, q, s)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True
    return any(d == 0 and within(a, b, c) for d, a, b, c in ((d1, r, s, p), (d2, r, s, q), (d3, p, q, r), (d4, p, q, s)))


def segment_meets_box(p, q, box) -> bool:
    """Does the segment pq touch the (left, bottom, right, top) box (either y direction)?"""
    left, right = min(box[0], box[2]), max(box[0], box[2])
    bottom, top = min(box[1], box[3]), max(box[1], box[3])
    inside = lambda c: left <= c[0] <= right and bottom <= c[1] <= top
    corners = [(left, bottom), (right, bottom), (right, top), (left, top)]
    return inside(p) or inside(q) or any(segments_cross(p, q, a, b) for a, b in pairwise(corners + corners[:1]))


def assert_clean(labels, circles, paths, room, captions=()):
    """labels: boxes of the weights; circles: {name: (centre, radius)}; paths: [(points, touched
    names)]; captions: boxes of other text.  A weight's label, grown by a little less than half
    of ``room``, meets its own edge and no other (on a crossing, a reader cannot tell which it names)."""
    for i, a in enumerate(labels + list(captions)):
        for b in (labels + list(captions))[i + 1:]:
            assert not boxes_overlap(a, b), f"labels {a} and {b} overlap"
        for name, (centre, radius) in circles.items():
            assert not box_meets_circle(a, centre, radius), f"label {a} covers unit {name}"
    for a in labels:
        near = (min(a[0], a[2]) - 0.4 * room, min(a[1], a[3]) - 0.4 * room,
                max(a[0], a[2]) + 0.4 * room, max(a[1], a[3]) + 0.4 * room)
        met = [touched for points, touched in paths if any(segment_meets_box(p, q, near) for p, q in pairwise(points))]
        assert len(met) == 1, f"label {a} meets the edges between {met}, not its own edge alone"
    for points, touched in paths:
        for name, (centre, radius) in circles.items():
            if name in touched:
                continue
            for p, q in pairwise(points):
                assert distance_to_segment(centre, p, q) > radius + room, f"an edge of {touched} crosses {name}"


# --- the SVG as written --------------------------------------------------------------------

def svg_geometry(text: str):
    """Label rectangles, unit circles and edge polylines (with the units at their two ends)."""
    root = ElementTree.fromstring(text)
    circles = {n: ((float(c.get("cx")), float(c.get("cy"))), float(c.get("r")))
               for n, c in enumerate(root.iter(SVG + "circle"))}
    rects = [r for r in root.iter(SVG + "rect") if r.get("class") == "label"]
    labels = [(float(r.get("x")), float(r.get("y")), float(r.get("x")) + float(r.get("width")),
               float(r.get("y")) + float(r.get("height"))) for r in rects]
    paths = []
    for path in root.iter(SVG + "path"):
        if "marker-end" not in path.attrib:
            continue
        points = [tuple(map(float, p.split(","))) for p in re.findall(r"-?[\d.]+,-?[\d.]+", path.get("d"))]
        ends = [n for n, (centre, r) in circles.items()
                if min(math.dist(centre, points[0]), math.dist(centre, points[-1])) < r + 0.5]
        assert len(ends) == 2, f"an edge does not run between two units: {points}"
        paths.append((points, set(ends)))
    return labels, circles, paths


@pytest.mark.parametrize("notation", sb.notation.names())
@pytest.mark.parametrize("name", NETWORKS)
def test_svg_labels_do_not_overlap_and_edges_pass_no_unit(name, notation):
    for figure in drawn(NETWORKS[name], notation).values():
        labels, circles, paths = svg_geometry(figure.svg())
        assert paths and (labels or figure.labelled == "none" or not any(a.label for a in figure.arrows))
        assert_clean(labels, circles, paths, room=ROOM_CM * figures.PIXELS)


@pytest.mark.parametrize("notation", sb.notation.names())
def test_the_2_3_1_and_the_elman_graph_label_every_weight_each_on_its_own_edge(notation):
    """The bias-as-unit figures once put w_11 and w_30 where another edge crossed them."""
    for name in ("2-3-1", "elman"):
        forward = drawn(NETWORKS[name], notation)["forward"]
        assert forward.labelled == "all"
        labels, circles, paths = svg_geometry(forward.svg())
        assert len(labels) == len([a for a in forward.arrows if a.label])
        assert_clean(labels, circles, paths, room=ROOM_CM * figures.PIXELS)


# --- the TikZ as pdflatex typesets it ------------------------------------------------------

REPORT = r"""\makeatletter
\newcommand\report[1]{\pgfpointanchor{#1}{south west}\typeout{AT #1 SW \the\pgf@x\space\the\pgf@y}%
\pgfpointanchor{#1}{north east}\typeout{AT #1 NE \the\pgf@x\space\the\pgf@y}%
\pgfpointanchor{#1}{center}\typeout{AT #1 C \the\pgf@x\space\the\pgf@y}%
\pgfpointanchor{#1}{east}\typeout{AT #1 E \the\pgf@x\space\the\pgf@y}}
\makeatother
"""


def typeset(pictures: list[str], directory: Path) -> dict[int, dict]:
    """Compile the pictures as the notes do and read back where TikZ put every node (pt)."""
    body = []
    for picture in pictures:
        names = re.findall(r"\\node\[[^]]*\] \((\w+)\)", picture)
        body.append(picture.replace(r"\end{tikzpicture}", "".join(rf"\report{{{n}}}" for n in names)
                                    + r"\typeout{PICTURE}\end{tikzpicture}"))
    document = (r"\documentclass[11pt]{article}\usepackage[margin=2.2cm]{geometry}\usepackage{amsmath,amssymb,bm}"
                r"\usepackage{tikz}" + REPORT + r"\begin{document}" + "\n\n".join(body) + r"\end{document}")
    (directory / "figure.tex").write_text(document)
    compile_tex(directory / "figure.tex")
    log = (directory / "figure.log").read_text()
    pictures, current = [], {}
    for line in log.splitlines():
        if line.startswith("AT "):
            _, node, corner, x, y = line.split()
            current.setdefault(node, {})[corner] = (float(x[:-2]), float(y[:-2]))
        elif line.startswith("PICTURE"):
            pictures.append(current)
            current = {}
    assert "Overfull" not in log
    return pictures


def tikz_geometry(picture: str, placed: dict):
    """Boxes of the labels and circles of the units as typeset; edges from the source's coordinates."""
    cm = 72.27 / 2.54
    labels = [(*placed[n]["SW"], *placed[n]["NE"]) for n in placed if n.startswith("w")]
    circles = {n: (placed[n]["C"], placed[n]["E"][0] - placed[n]["C"][0]) for n in placed if n.startswith("u")}
    paths = []
    for draw in re.findall(r"\\draw\[[^]]*\] (.*);", picture):
        stops = re.findall(r"\((\w+|-?[\d.]+,-?[\d.]+)\)", draw)
        points = [circles[s][0] if s in circles else tuple(float(v) * cm for v in s.split(",")) for s in stops]
        paths.append((points, {stops[0], stops[-1]}))
    return labels, circles, paths


@requires_pdflatex
@pytest.mark.parametrize("notation", sb.notation.names())
def test_tikz_as_typeset_has_no_overlapping_label_and_no_edge_through_a_unit(tmp_path, notation):
    drawings = [figure for network in NETWORKS.values() for figure in drawn(network, notation).values()]
    pictures = [figure.tikz() for figure in drawings]
    for figure, picture, placed in zip(drawings, pictures, typeset(pictures, tmp_path), strict=True):
        labels, circles, paths = tikz_geometry(picture, placed)
        assert len(circles) == len(figure.nodes) and len(labels) == len([a for a in figure.arrows if a.box])
        assert_clean(labels, circles, paths, room=ROOM_CM * 72.27 / 2.54)
        # the layout reserved at least the room TeX took, so the SVG drawn from it is clean too
        cm = 72.27 / 2.54
        for real, arrow in zip(labels, [a for a in figure.arrows if a.box]):
            assert real[2] - real[0] <= (arrow.box.right - arrow.box.left) * cm, arrow.label
            assert real[3] - real[1] <= (arrow.box.top - arrow.box.bottom) * cm, arrow.label


# --- the figure's own layout, over random networks -----------------------------------------

def assert_figure_clean(figure: figures.Figure):
    labels = [(a.box.left, a.box.bottom, a.box.right, a.box.top) for a in figure.arrows if a.box]
    circles = {n.name: ((n.x, n.y), n.radius) for n in figure.nodes}
    paths = [(a.points, {a.source, a.destination}) for a in figure.arrows]
    assert_clean(labels, circles, paths, room=ROOM_CM)
    assert_inside_canvas(figure.svg())


def assert_inside_canvas(text: str):
    """Every unit, edge and label of the SVG lies on its canvas (a bend below the lowest unit was cut off)."""
    root = ElementTree.fromstring(text)
    width, height = float(root.get("width")), float(root.get("height"))
    inside = lambda x, y: -0.5 <= x <= width + 0.5 and -0.5 <= y <= height + 0.5
    for path in root.iter(SVG + "path"):
        if "marker-end" in path.attrib:
            for point in re.findall(r"-?[\d.]+,-?[\d.]+", path.get("d")):
                assert inside(*map(float, point.split(","))), f"edge point {point} outside {width} x {height}"
    for circle in root.iter(SVG + "circle"):
        x, y, r = (float(circle.get(k)) for k in ("cx", "cy", "r"))
        assert inside(x - r, y - r) and inside(x + r, y + r), f"unit at {x},{y} outside {width} x {height}"
    for rect in root.iter(SVG + "rect"):
        if rect.get("class") == "label":
            x, y, w, h = (float(rect.get(k)) for k in ("x", "y", "width", "height"))
            assert inside(x, y) and inside(x + w, y + h), f"label at {x},{y} outside {width} x {height}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 7), min_size=2, max_size=7), st.sampled_from(sb.notation.names()), st.booleans())
def test_random_layered_networks_draw_cleanly(sizes, notation, bias):
    network = sb.layered(sizes, bias=bias)
    for figure in drawn(network, notation).values():
        assert_figure_clean(figure)
        labelled = [a for a in figure.arrows if a.box]
        weighted = [a for a in figure.arrows if a.label or a.faint]
        if figure.labelled == "all":
            assert len(labelled) == len(weighted) <= figures.LABELLED_EDGES
        assert figure.labelled != "none" or not labelled


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_graph_networks_draw_cleanly(data):
    """DAGs with skip connections: a long edge bends round the units between its ends."""
    inputs = [f"x{i}" for i in range(data.draw(st.integers(1, 3)))]
    units, names = [], list(inputs)
    for n in range(data.draw(st.integers(1, 5))):
        sources = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
        units.append({"name": f"h{n}", "inputs": sources, "activation": "tanh"})
        names.append(f"h{n}")
    network = sb.graph(inputs, units, [names[-1]])
    for figure in drawn(network, data.draw(st.sampled_from(["default", "haykin"]))).values():
        assert_figure_clean(figure)


@pytest.mark.parametrize("units", [
    # the +1 of h2 stood at the top of its column and its edge fell steeply past x0 (or h0) below it
    [("h0", ["x1", "x2"]), ("h1", ["x1", "x0", "h0"]), ("h2", ["h0", "x2"]), ("h3", ["x0", "h1", "x1"]),
     ("h4", ["x1", "h3", "x0"])],
    [("h0", ["x1", "x0"]), ("h1", ["x1", "h0", "x0"]), ("h2", ["x1", "h0"]), ("h3", ["h0", "h2", "x1"]),
     ("h4", ["x1", "h0", "h3"])],
    # bends below the lowest unit ran off the SVG canvas
    [("h0", ["x0"]), ("h1", ["h0", "x0"])],
])
@pytest.mark.parametrize("notation", ["default", "haykin", "bishop"])
def test_graphs_that_once_drew_an_edge_through_a_unit_or_off_the_canvas(units, notation):
    inputs = sorted({s for _, sources in units for s in sources if s.startswith("x")})
    network = sb.graph(inputs, [{"name": n, "inputs": s, "activation": "tanh"} for n, s in units], [units[-1][0]])
    for figure in drawn(network, notation).values():
        assert_figure_clean(figure)


# --- what the figures show -----------------------------------------------------------------

def test_elman_graph_draws_x2_to_h2_clear_of_h1_with_every_weight_labelled():
    for notation in NOTATIONS:
        forward = drawn(NETWORKS["elman"], notation)["forward"]
        assert forward.labelled == "all"
        assert_figure_clean(forward)
        where = {n.name: n for n in forward.nodes}
        x2_h2 = next(a for a in forward.arrows if (a.source, a.destination) == ("x2", "h2"))
        h1 = where["h1"]
        assert min(distance_to_segment((h1.x, h1.y), p, q) for p, q in pairwise(x2_h2.points)) \
            > h1.radius + ROOM_CM


def forward_2_3_1(notation: str):
    """The notation, its printer and the forward figure of the 2-3-1 network."""
    network = NETWORKS["2-3-1"]
    n = sb.notation.load(notation)
    return network, n, NotationPrinter(n, network).doprint, drawn(network, notation)["forward"]


@pytest.mark.parametrize("notation", sb.notation.names())
def test_bias_is_a_unit_plus_one_exactly_where_the_notation_makes_it_a_weight(notation):
    network, n, latex, forward = forward_2_3_1(notation)
    ones = [node for node in forward.nodes if node.label == "+1"]
    from_ones = {(a.destination, a.label) for a in forward.arrows if a.source in {o.name for o in ones}}
    if n.bias == "weight":  # Haykin's fixed input y_0 = +1, Bishop's z_0 = 1, xhy's constant input
        assert len(ones) == 2  # one feeding each layer
        assert from_ones == {(u.name, latex(u.bias)) for u in network.computing_units}
        assert forward.bias_unit
    else:
        assert not ones and not forward.bias_unit
    assert not [node for node in drawn(sb.layered([2, 3, 1], bias=False), notation)["forward"].nodes
                if node.label == "+1"]


@pytest.mark.parametrize("notation", sb.notation.names())
def test_labels_are_the_notations_symbols_for_the_weights(notation):
    network, n, latex, forward = forward_2_3_1(notation)
    assert forward.labelled == "all"
    biases = {latex(b) for b in network.biases} if n.bias == "weight" else set()
    expected = {latex(w) for w in network.weights} | biases
    assert {a.label for a in forward.arrows if a.box} == expected
    assert {node.label for node in forward.nodes if node.kind == "unit"} == {latex(u.a) for u in network.units}


@pytest.mark.parametrize("name", NETWORKS)
def test_backward_figure_reverses_every_edge_between_computing_units(name):
    network = NETWORKS[name]
    latex = NotationPrinter(sb.notation.load("default"), network).doprint
    figure = drawn(network)["backward"]
    shown = {node.name for node in figure.nodes if node.kind == "unit"}
    inputs = {u.name for u in network.inputs}
    assert shown and not shown & inputs  # inputs receive no local gradient
    assert {node.label for node in figure.nodes if node.kind == "unit"} == {latex(network[u].delta) for u in shown}
    arrows = {(a.source, a.destination) for a in figure.arrows}
    error, = [node.name for node in figure.nodes if node.kind == "error"]
    assert {(error, o) for o in network.outputs if o in shown} <= arrows
    forward_edges = {(e.source, u.name) for u in network.computing_units for e in u.inputs
                     if u.name in shown and e.source in shown}
    assert {(t, s) for s, t in forward_edges} == arrows - {(error, o) for o in network.outputs}
    for arrow in figure.arrows:  # each arrow heads the way the gradient flows: away from the error
        source, destination = (next(n for n in figure.nodes if n.name == k) for k in (arrow.source, arrow.destination))
        assert source.x > destination.x


def test_a_crowded_figure_labels_the_weights_into_the_first_unit_of_each_layer():
    network = NETWORKS["3-4-3"]  # 24 weights
    latex = NotationPrinter(sb.notation.load("default"), network).doprint
    forward = drawn(network)["forward"]
    assert forward.labelled == "first"
    first = ["[0][0]", "[1][0]"]  # the first hidden unit and the first output
    assert {a.label for a in forward.arrows if a.box} == {latex(e.weight) for u in first for e in network[u].inputs}
    assert all(a.faint == (not a.box) for a in forward.arrows)
    text = sb.render(sb.derive(network), format="md", figure="notes.svg")
    assert text.count("Only the weights into the first unit of each layer are labelled") == 2  # both figures


def test_a_wide_layer_is_drawn_with_its_first_units_a_gap_and_its_last():
    forward = drawn(NETWORKS["4-8-4"])["forward"]
    hidden = [n.name for n in forward.nodes if n.name.startswith("[0]")]
    assert forward.elided and hidden[-1] == "[0][7]" and len(hidden) < 8
    assert "the dots stand for the rest" in sb.render(sb.derive(NETWORKS["4-8-4"]), format="tex")


def test_markdown_links_both_pictures_and_write_notes_writes_them(tmp_path):
    paths = sb.write_notes(sb.from_dict(sb.spec.DEFAULT), tmp_path, notation="haykin")
    assert [p.name for p in paths] == ["notes.md", "notes.svg", "notes-backward.svg"]
    text = paths[0].read_text()
    assert "](notes.svg)" in text and "](notes-backward.svg)" in text
    for svg in paths[1:]:
        ElementTree.fromstring(svg.read_text())
    alone = sb.render(sb.derive(NETWORKS["3-4-3"]), format="md")  # no file beside it: no figure, no caption
    assert "![" not in alone and "Only the weights" not in alone


def test_svg_text_sets_scripts_and_italic_letters():
    text = figures._svg_text(r"{w^{(1)}_{12}}")
    assert re.sub("<[^>]+>", "", text) == "w(1)12"
    assert '<tspan font-style="italic">w</tspan>' in text
    sup, sub = re.findall(r'baseline-shift="(-?[\d.]+)em"[^>]*?(?: dx="(-[\d.]+)em")?>', text)
    assert float(sup[0]) > 0 > float(sub[0]) and float(sub[1]) < 0  # raised, lowered and set back under it
    assert "italic" not in figures._svg_text(r"x_{\mathrm{x1}}").split("x1")[1]


def test_label_extent_grows_with_the_label():
    width = lambda s: figures._extent(s, figures.LABEL_EM)[0]
    assert width("w") < width("w_{1}") < width("w^{(1)}_{12}") < width(r"w_{\mathrm{x1},\mathrm{h1}}")
    assert figures._extent("w^{(1)}_{1}", 1)[1] > figures._extent("w", 1)[1]


def test_the_module_functions_rendering_called_before_still_draw_the_forward_figure():
    network = NETWORKS["2-3-1"]
    latex = NotationPrinter(sb.notation.load("haykin"), network).doprint
    haykin = sb.notation.load("haykin")
    assert figures.tikz(network, latex, haykin) == figures.forward(network, latex, haykin).tikz()
    assert figures.svg(network, latex) == figures.forward(network, latex).svg()
    assert "+1" not in figures.svg(network, latex)  # without a notation: no bias unit


def test_a_unit_named_like_the_error_is_a_unit_of_its_own():
    network = sb.graph(["x"], [{"name": "E", "inputs": ["x"]}, {"name": "y", "inputs": ["E"]}], ["y"])
    figure = drawn(network)["backward"]
    assert sorted(node.kind for node in figure.nodes) == ["error", "unit", "unit"]
    assert_figure_clean(figure)
