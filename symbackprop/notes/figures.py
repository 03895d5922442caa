"""Pictures of the network: the forward pass with its weights, and the local gradients
flowing backwards along the same edges; TikZ for the LaTeX notes, SVG for the Markdown ones.

Both formats are drawn from one :class:`Figure` that says where every unit, edge and label
is (in centimetres), so the geometry that is tested is the geometry that is drawn.  Units
stand in columns by depth, an input just before the first unit it feeds; an edge spanning
several columns bends through a free slot of each, so no edge crosses a unit it does not
touch.  Each weight's label sits on its own edge where it overlaps no other label, no unit
and no other edge (a reader could not tell which of two edges it names); above
:data:`LABELLED_EDGES` edges, or where no such place exists, only the weights into the first
unit of each column are labelled, and :attr:`Figure.labelled` says so for the caption.  An
unrolled recurrent network labels each tied weight once, on whichever copy of its edge has
such a place, and :attr:`Figure.unplaced` names the others for the caption.  Labels are the printer's own LaTeX: TikZ typesets it, and for SVG a handful
of rules turn it into text with sub- and superscripts (GitHub and Jupyter show an SVG
image; neither runs a TeX engine on it).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import NamedTuple
from xml.sax.saxutils import escape

from .. import bptt
from ..derivation import E
from ..network import Network
from ..recurrent import UnrolledNetwork, recurrent_weight
from .notation import Notation

#: Above this many weights a figure labels only those into the first unit of each column.
LABELLED_EDGES = 20
#: Layers wider than this are drawn with their first and last units and a gap (fewer where a deep
#: figure has no room for the steep edges between them).
SHOWN_UNITS = 6
#: Size of a weight label (LaTeX \scriptsize in 11pt notes) and of a unit label, in cm.
LABEL_EM, UNIT_EM = 8 / 72.27 * 2.54, 11 / 72.27 * 2.54
#: Room kept between a label and anything else, between a label and a unit (for the arrowheads
#: there), and between an edge and a unit it passes, in cm.
LABEL_ROOM, TIP_ROOM, EDGE_ROOM = 0.05, 0.15, 0.12
#: Preferred spacing of columns and of units in a column, the smallest unit radius, the widest figure (cm).
COLUMN_SPACING, ROW_SPACING, RADIUS, WIDEST = 4.0, 1.6, 0.45, 15.5
#: SVG pixels per centimetre, the grey of the edges a crowded figure leaves unlabelled, and fonts
#: close to TeX's (the label boxes are measured for Computer Modern).
PIXELS, _FAINT, _FONTS = 48.0, "#b3b3b3", "Latin Modern Math, STIX Two Math, Times New Roman, serif"

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """An axis-parallel rectangle: a label's ink plus its white margin."""

    left: float
    bottom: float
    right: float
    top: float

    def overlaps(self, other: Box, room: float = 0.0) -> bool:
        return not (self.right + room <= other.left or other.right + room <= self.left
                    or self.top + room <= other.bottom or other.top + room <= self.bottom)

    def meets_circle(self, centre: Point, radius: float) -> bool:
        x, y = centre
        dx, dy = x - min(max(x, self.left), self.right), y - min(max(y, self.bottom), self.top)
        return dx * dx + dy * dy < radius * radius

    def meets_segment(self, p: Point, q: Point) -> bool:
        """Liang-Barsky clipping: does the segment pq enter the box?"""
        t0, t1 = 0.0, 1.0
        dx, dy = q[0] - p[0], q[1] - p[1]
        for step, room in ((-dx, p[0] - self.left), (dx, self.right - p[0]),
                           (-dy, p[1] - self.bottom), (dy, self.top - p[1])):
            if step == 0:
                if room < 0:
                    return False
                continue
            t = room / step
            if step < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
            if t0 > t1:
                return False
        return True


@dataclass(frozen=True)
class Node:
    """A unit of the picture: a network unit, the constant +1 of the bias, or the error."""

    name: str
    x: float
    y: float
    radius: float
    label: str  # LaTeX
    kind: str = "unit"  # "unit", "bias", "error" or "zero" (a recurrent net's state before the first step)


@dataclass(frozen=True)
class Arrow:
    """An edge drawn from ``points[0]`` (centre of ``source``) through its bends to the centre of ``destination``."""

    source: str
    destination: str
    points: tuple[Point, ...]
    label: str = ""  # LaTeX of the weight, "" when the edge is not labelled
    box: Box | None = None
    faint: bool = False  # drawn grey: an unlabelled edge of a figure that labels only a few


@dataclass(frozen=True)
class Figure:
    """A picture placed and labelled, ready to be written as TikZ or SVG."""

    nodes: tuple[Node, ...]
    arrows: tuple[Arrow, ...]
    gaps: tuple[Point, ...]  # where a column's elided units are (a vertical ellipsis)
    labelled: str  # which weights carry their label: "all", "first" (into the first unit of each column), "none"
    backward: bool = False
    captions: tuple[tuple[Point, str], ...] = ()  # LaTeX set at a point: the time step under each copy
    skipped: tuple[Point, ...] = ()  # where left-out time steps are (a horizontal ellipsis)
    unplaced: tuple[str, ...] = ()  # the tied weights an unrolled figure has no clear place for, on their edges (LaTeX)

    @property
    def elided(self) -> bool:
        return bool(self.gaps)

    @property
    def bias_unit(self) -> bool:
        return any(node.kind == "bias" for node in self.nodes)

    def tikz(self) -> str:
        """A ``tikzpicture``: units, then edges, then the labels on white over them."""
        ids = {node.name: f"u{n}" for n, node in enumerate(self.nodes)}
        unrolled = r"zero/.style={unit,dashed},time/.style={inner sep=1pt}," if self.captions else ""
        lines = [(r"\begin{tikzpicture}[>=stealth,"
                  rf"unit/.style={{circle,draw,inner sep=0pt,minimum size={2 * self.nodes[0].radius:.2f}cm}},"
                  rf"bias/.style={{unit,fill=black!8}},error/.style={{unit,double}},{unrolled}"
                  r"weight/.style={fill=white,inner sep=0.5pt,font=\scriptsize}]")]
        lines += [rf"\node[{node.kind}] ({ids[node.name]}) at ({node.x:.2f},{node.y:.2f}) {{${node.label}$}};"
                  for node in self.nodes]
        lines += [rf"\node at ({x:.2f},{y:.2f}) {{$\vdots$}};" for x, y in self.gaps]
        lines += [rf"\node at ({x:.2f},{y:.2f}) {{$\cdots$}};" for x, y in self.skipped]
        lines += [rf"\node[time] (s{n}) at ({x:.2f},{y:.2f}) {{${text}$}};"
                  for n, ((x, y), text) in enumerate(self.captions)]
        for arrow in self.arrows:
            bends = "".join(f" -- ({x:.2f},{y:.2f})" for x, y in arrow.points[1:-1])
            style = ",rounded corners=8pt" * bool(bends) + ",black!30" * arrow.faint
            lines.append(rf"\draw[->{style}] ({ids[arrow.source]}){bends} -- ({ids[arrow.destination]});")
        for n, arrow in enumerate(a for a in self.arrows if a.box):
            x, y = _centre(arrow.box)
            lines.append(rf"\node[weight] (w{n}) at ({x:.2f},{y:.2f}) {{${arrow.label}$}};")
        lines.append(r"\end{tikzpicture}")
        return "\n".join(lines)

    def svg(self) -> str:
        """A standalone SVG picture; y grows downwards, so the figure is turned over."""
        reach = ([(n.x, n.y, n.radius) for n in self.nodes] + [(x, y, 0.4) for (x, y), _ in self.captions]
                 + [(x, y, 0.0) for a in self.arrows for x, y in a.points]
                 + [(x, y, 0.0) for a in self.arrows if a.box for x, y in _corners(a.box)])
        left = min(x - r for x, _, r in reach) - 0.3
        top = max(y + r for _, y, r in reach) + 0.3
        width = (max(x + r for x, _, r in reach) + 0.3 - left) * PIXELS
        height = (top - min(y - r for _, y, r in reach) + 0.3) * PIXELS
        px = lambda x, y: ((x - left) * PIXELS, (top - y) * PIXELS)
        out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
                f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{_FONTS}" font-size="{UNIT_EM * PIXELS:.1f}">'),
               "<defs>" + "".join(f'<marker id="{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
                                  f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/>'
                                  "</marker>" for name, colour in (("arrow", "black"), ("faint", _FAINT))) + "</defs>",
               '<rect width="100%" height="100%" fill="white"/>']
        radius = {n.name: n.radius for n in self.nodes}
        for arrow in self.arrows:
            points = _trimmed(arrow.points, radius[arrow.source], radius[arrow.destination])
            path = " L".join("{:.1f},{:.1f}".format(*px(x, y)) for x, y in points)
            colour, marker = (_FAINT, "faint") if arrow.faint else ("black", "arrow")
            out.append(f'<path d="M{path}" fill="none" stroke="{colour}" marker-end="url(#{marker})"/>')
        for arrow in self.arrows:
            if arrow.box:
                b = arrow.box
                x0, y0 = px(b.left, b.top)
                out.append(f'<rect class="label" x="{x0:.1f}" y="{y0:.1f}" width="{(b.right - b.left) * PIXELS:.1f}" '
                           f'height="{(b.top - b.bottom) * PIXELS:.1f}" fill="white"/>')
                out.append(_svg_label(*px(*_centre(b)), arrow.label, LABEL_EM))
        looks = {"unit": 'fill="white"', "bias": 'fill="#ebebeb"', "error": 'fill="white" stroke-width="2.5"',
                 "zero": 'fill="white" stroke-dasharray="4 3"'}
        for node in self.nodes:
            x, y = px(node.x, node.y)
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{node.radius * PIXELS:.1f}" {looks[node.kind]} '
                       'stroke="black"/>')
            out.append(_svg_label(x, y, node.label, UNIT_EM))
        out += [_svg_label(*px(*gap), "⋮", UNIT_EM) for gap in self.gaps]
        out += [_svg_label(*px(*gap), "⋯", UNIT_EM) for gap in self.skipped]
        out += [_svg_label(*px(*point), text, UNIT_EM).replace("<text ", '<text class="caption" ', 1)
                for point, text in self.captions]
        out.append("</svg>")
        return "\n".join(out) + "\n"


def forward(network: Network, latex, notation: Notation | None = None) -> Figure:
    """The network with its weights on the edges; the bias as a unit "+1" where the notation
    makes it the weight on a constant input (Haykin, Bishop)."""
    return _figure(network, latex, _bias_unit(notation), backward=False)


def backward(network: Network, latex, notation: Notation | None = None) -> Figure:
    """The local gradients: the error feeds the output units, each delta flows back along the
    weights to the units that feed it; inputs and biases receive none and are left out.
    It labels all its weights only where the forward figure would (the two read as a pair)."""
    return _figure(network, latex, _bias_unit(notation), backward=True)


def _bias_unit(notation: Notation | None) -> bool:
    """Whether the notation writes the bias as the weight on a constant input +1 (Haykin, Bishop)."""
    return notation is not None and notation.bias == "weight"


def draw(network: Network, latex, notation: Notation | None = None) -> dict[str, Figure]:
    """Both pictures of the notes: ``forward`` and ``backward``."""
    return {"forward": forward(network, latex, notation), "backward": backward(network, latex, notation)}


def tikz(network: Network, latex, notation: Notation | None = None) -> str:
    """A ``tikzpicture`` of the network (the forward figure)."""
    return forward(network, latex, notation).tikz()


def svg(network: Network, latex, notation: Notation | None = None) -> str:
    """A standalone SVG picture of the network (the forward figure)."""
    return forward(network, latex, notation).svg()


# --- layout -------------------------------------------------------------------------------

#: Keys of the error node (no unit name has an "="), a bias unit, a bend slot of column c and
#: unit j of hidden layer ``layer`` in the zero state before a recurrent network's first step.
_ERROR, _BIAS, _BEND, _ZERO = "=E", "+1@{c}", "bend{n}@{c}", "=0[{layer}][{j}]"


@dataclass(frozen=True)
class _Graph:
    """What is drawn, before it is placed: nodes by key with their column, edges by key."""

    column: dict[str, int]
    labels: dict[str, str]
    kinds: dict[str, str]
    edges: list[tuple[str, str, str]]  # (source, destination, weight LaTeX or "" for no weight)
    gaps: dict[int, int]  # column -> the slot of its ellipsis
    crowded: bool  # the forward figure has more than LABELLED_EDGES weights to label


def _graph(network: Network, latex, bias_unit: bool, backward: bool, shown_units: int) -> _Graph:
    depth: dict[str, int] = {}
    for unit in network.units:
        depth[unit.name] = max((depth[e.source] + 1 for e in unit.inputs), default=0)
    for unit in network.inputs:  # an input stands just before the first unit it feeds
        depth[unit.name] = min((depth[s] for s, _ in network.successors[unit.name]), default=1) - 1
    column_units: dict[int, list[str]] = {}
    for unit in network.units:
        column_units.setdefault(depth[unit.name], []).append(unit.name)
    gaps = {}
    if network.layers is not None:
        for c, names in column_units.items():
            if len(names) > shown_units:
                column_units[c] = names[:shown_units - 2] + names[-1:]
                gaps[c] = shown_units - 2
    shown = {name for names in column_units.values() for name in names}
    biased = [u for u in network.computing_units if u.name in shown and u.bias is not None] if bias_unit else []
    weights = sum(1 for u in network.units if u.name in shown for e in u.inputs if e.source in shown) + len(biased)
    if backward:
        shown -= {u.name for u in network.inputs}
        biased = []
    column = {name: depth[name] for name in network.unit_by_name if name in shown}
    labels = {name: latex(network[name].delta if backward else network[name].a) for name in column}
    kinds = dict.fromkeys(column, "unit")
    edges = [(e.source, unit.name, latex(e.weight)) for unit in network.units for e in unit.inputs
             if unit.name in shown and e.source in shown]
    for unit in biased:
        key = _BIAS.format(c=column[unit.name] - 1)
        column[key], labels[key], kinds[key] = column[unit.name] - 1, "+1", "bias"
        edges.append((key, unit.name, latex(unit.bias)))
    if backward:
        column[_ERROR], labels[_ERROR], kinds[_ERROR] = max(column.values()) + 1, latex(E), "error"
        edges += [(name, _ERROR, "") for name in network.outputs if name in shown]
    return _Graph(column, labels, kinds, edges, gaps, weights > LABELLED_EDGES)


def _slots(graph: _Graph, ordered: bool, middle: bool) -> tuple[list[list[str]], dict[int, list[str]]]:
    """Slot keys per column, top first: bias units, then units, with a bend slot for each
    column an edge passes; ``ordered`` sorts a general graph's columns to untangle edges;
    ``middle`` moves a bias unit to the middle of its column (its edges then fan out both ways,
    crossing the others' nearer their ends, and the labels find room between the crossings)."""
    columns: list[list[str]] = [[] for _ in range(max(graph.column.values()) + 1)]
    for key in sorted(graph.column, key=lambda k: graph.kinds[k] != "bias"):
        columns[graph.column[key]].append(key)
    for c, slot in graph.gaps.items():
        columns[c].insert(slot, "")
    for column in columns if middle else []:
        for key in [k for k in column if graph.kinds.get(k) == "bias"]:
            column.remove(key)
            column.insert(len(column) // 2, key)
    chains: dict[int, list[str]] = {}
    for n, (source, destination, _) in enumerate(graph.edges):
        chain = [source]
        for c in range(graph.column[source] + 1, graph.column[destination]):
            columns[c].append(_BEND.format(n=n, c=c))
            chain.append(_BEND.format(n=n, c=c))
        chains[n] = chain + [destination]
    if ordered:
        neighbours: dict[str, list[str]] = {}
        for chain in chains.values():
            for a, b in pairwise(chain):
                neighbours.setdefault(a, []).append(b)
                neighbours.setdefault(b, []).append(a)
        for sweep in range(4):
            order = range(1, len(columns)) if sweep % 2 == 0 else range(len(columns) - 2, -1, -1)
            for c in order:
                near = columns[c - 1] if sweep % 2 == 0 else columns[c + 1]
                index = {k: i for i, k in enumerate(near)}

                def barycentre(pair, index=index):
                    own, key = pair
                    seen = [index[k] for k in neighbours.get(key, []) if k in index]
                    return sum(seen) / len(seen) if seen else own
                columns[c] = [k for _, k in sorted(enumerate(columns[c]), key=barycentre)]
    return columns, chains


def _figure(network: Network, latex, bias_unit: bool, backward: bool) -> Figure:
    """Placed, then labelled.  The layouts tried are those where no edge grazes a unit it does
    not touch: columns wider and wider, with the bias units at the top of their columns, then
    in the middle, then rows further apart (edges that fan in less steeply leave room for a
    label between their crossings), and for a layered net with no such layout, fewer units
    of each wide layer.  A general graph whose bias units cannot be placed so (a bias edge
    falling steeply past the units under its +1) is drawn with the biases on the units, as the
    notations without a bias unit draw them; the caption follows :attr:`Figure.bias_unit`."""
    widest = max(network.layers) if network.layers else 0
    for with_bias_unit in dict.fromkeys([bias_unit, bias_unit and network.layers is not None]):
        for shown in [SHOWN_UNITS] + [n for n in range(SHOWN_UNITS - 1, 2, -1) if n < widest]:
            graph = _graph(network, latex, with_bias_unit, backward, shown)
            tried = [_placed(graph, network.layers is None, stretch, backward, tall, middle)
                     for tall in _TALLER for middle in (False, True) for stretch in _WIDER]
            layouts = [layout for layout in tried if _clear(layout.nodes, layout.arrows)]
            if layouts:
                return _labelled(layouts, backward, graph.crowded)
    return _labelled(tried[-1:], backward, graph.crowded)


#: The stretches of the columns' and of the rows' spacing a figure tries, the flattest first.
_WIDER, _TALLER = (1.0, 1.2, 1.45, 1.75, 2.1), (1.0, 1.15, 1.3, 1.6)


class _Layout(NamedTuple):
    nodes: tuple[Node, ...]
    arrows: list[Arrow]  # reversed for the backward figure
    gaps: tuple[Point, ...]
    first_units: set[str]  # the first unit of each column
    marks: tuple[tuple[Point, float], ...] = ()  # other ink labels keep clear of: (centre, radius)


def _placed(graph: _Graph, ordered: bool, stretch: float, backward: bool, tall: float, middle: bool) -> _Layout:
    """Where everything goes with the columns ``stretch`` times their preferred spacing, the
    rows ``tall`` times theirs, and the bias units at the top of their columns or in the ``middle``."""
    columns, chains = _slots(graph, ordered, middle)
    radius = max([RADIUS] + [_extent(graph.labels[k], UNIT_EM, stacked=True)[0] / 2 + 0.1 for k in graph.labels])
    rows = max(ROW_SPACING, 2 * radius + 0.7) * tall
    first = min(graph.column.values())
    widest = (WIDEST - 2 * radius) / max(1, len(columns) - 1 - first)
    spacing = min((COLUMN_SPACING + 2 * (radius - RADIUS)) * stretch, max(2 * radius + 0.5, widest))
    where = {key: ((c - first) * spacing, ((len(column) - 1) / 2 - i) * rows)
             for c, column in enumerate(columns) for i, key in enumerate(column)}
    nodes = tuple(Node(k, *where[k], radius, graph.labels[k], graph.kinds[k])
                  for column in columns for k in column if k in graph.labels)
    arrows = [Arrow(s, t, tuple(where[k] for k in chains[n]), label) for n, (s, t, label) in enumerate(graph.edges)]
    if backward:
        arrows = [Arrow(a.destination, a.source, a.points[::-1], a.label) for a in arrows]
    gaps = tuple(where[k] for column in columns for k in column if k == "")
    return _Layout(nodes, arrows, gaps, _first_units(columns, graph))


def _first_units(columns: list[list[str]], graph: _Graph) -> set[str]:
    """The first (topmost) network unit of each column, whose incoming weights a crowded figure labels."""
    return {next(k for k in column if graph.kinds.get(k) == "unit")
            for column in columns if any(graph.kinds.get(k) == "unit" for k in column)}


def clear(figure: Figure) -> bool:
    """No edge passes within :data:`EDGE_ROOM` of a unit it does not touch."""
    return _clear(figure.nodes, figure.arrows)


def _clear(nodes, arrows) -> bool:
    for arrow in arrows:
        for node in nodes:
            if node.name in (arrow.source, arrow.destination):
                continue
            for p, q in pairwise(arrow.points):
                if _distance((node.x, node.y), p, q) < node.radius + EDGE_ROOM:
                    return False
    return True


def _distance(c: Point, p: Point, q: Point) -> float:
    """From point c to the segment pq."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    t = max(0.0, min(1.0, ((c[0] - p[0]) * dx + (c[1] - p[1]) * dy) / (dx * dx + dy * dy or 1.0)))
    return math.hypot(c[0] - p[0] - t * dx, c[1] - p[1] - t * dy)


# --- the network unrolled through time ----------------------------------------------------

#: The narrowest column spacing an unrolled figure keeps before it leaves time steps out (cm).
STEP_SPACING = 1.9
#: Room between the bands of two layers, beyond a unit's radius and an edge's room (cm).
BAND_ROOM = 0.3
#: How far, in columns, a step's inputs stand before its first hidden layer and its outputs
#: after its last: further when the edges into a hidden layer would graze its units.
_REACHES = (1.5, 2.0)


def unrolled(network: UnrolledNetwork, latex) -> Figure | None:
    """An Elman network's copies side by side, one per time step: each layer in a band of
    its own, inputs lowest and outputs highest, a step's inputs before its hidden units and
    its outputs after them, so a recurrent edge from hidden(t-1) to hidden(t) stays in its
    layer's band, clear of the units of the columns it crosses; the dashed units before the
    first step are the state before it, zero.  A unit is labelled without its time index,
    which the caption under each copy gives (the labels stay small, the edges less steep).
    Weights are tied across the steps, so each is labelled once, on a copy of its edge where
    the label is clear of every other edge, whichever step's that is (the zero state's edges
    carry the recurrent weights too); the grey edges carry the same weights, and the weights
    with no clear place on any copy are :attr:`Figure.unplaced` (the recurrent edges and the
    inputs' cross each other in every copy).  Wide layers show their first units and their
    last, and a long sequence steps 1, 2, ..., T with the dots for the rest.  None when no such picture fits the page with every edge
    clear of the units it passes (several wide hidden layers: their bands make the edges
    between them too steep)."""
    widest = max(network.sizes)
    drawn = []
    for reach in _REACHES:  # of each reach's first clear layout, the one naming fewest weights in the caption
        for shown in [SHOWN_UNITS] + [n for n in range(SHOWN_UNITS - 1, 2, -1) if n < widest]:
            placed = _unrolled_layout(network, latex, shown, reach)
            if _clear(placed.layout.nodes, placed.layout.arrows):
                drawn.append(_unrolled_labelled(placed))
                break
    return min(drawn, key=lambda figure: len(figure.unplaced), default=None)


def _unrolled_labelled(placed: _Unrolled) -> Figure:
    """Each tied weight labelled once, on the first copy of its edge with a place clear of
    every other edge (a crowded figure: those into the first unit of each layer); the weights
    with no such place on any copy are :attr:`Figure.unplaced`, named in the caption."""
    layout = placed.layout
    copies: dict[str, list[int]] = {}
    for n, arrow in enumerate(layout.arrows):
        if arrow.label:
            copies.setdefault(arrow.label, []).append(n)
    crowded = len(copies) > LABELLED_EDGES
    if crowded:
        copies = {label: group for label, group in copies.items()
                  if layout.arrows[group[0]].destination in layout.first_units}
    boxes = _place(layout, list(copies.values()))
    arrows = _marked(layout.arrows, boxes, True)
    labelled = {layout.arrows[n].label for n in boxes}
    unplaced = tuple(entry for label, entry in placed.edges.items() if label in copies and label not in labelled)
    return Figure(layout.nodes, arrows, layout.gaps, "first" if crowded else "all", captions=placed.captions,
                  skipped=placed.skipped, unplaced=unplaced)


class _Unrolled(NamedTuple):
    layout: _Layout
    captions: tuple[tuple[Point, str], ...]
    skipped: tuple[Point, ...]
    edges: dict[str, str]  # a weight's LaTeX -> it on its edge, "w_{21}\colon x_2 \to a_1", the recurrent ones last


def _span(network: UnrolledNetwork, steps: int, reach: float) -> float:
    """Columns from the zero state (3/4 of a column before the first inputs) to the last
    step's outputs: ``reach`` between a step's layers, two from a step's last hidden layer
    to the next step's first."""
    hidden = len(network.sizes) - 2
    return reach + 0.75 + (steps - 1) * ((hidden - 1) * reach + 2) + (hidden - 1) * reach + reach


def shown_steps(network: UnrolledNetwork, reach: float = _REACHES[0]) -> list[int]:
    """The time steps (0-based) an unrolled figure draws: all that fit at :data:`STEP_SPACING`,
    else the first ones and the last (at least steps 1, 2 and T)."""
    count = network.steps
    while count > 3 and _span(network, count, reach) * STEP_SPACING + 2 * RADIUS > WIDEST:
        count -= 1
    return list(range(count - 1)) + [network.steps - 1]


def _unrolled_layout(net: UnrolledNetwork, latex, shown_units: int, reach: float) -> _Unrolled:
    """Where everything goes when layers wider than ``shown_units`` show only some units and
    inputs and outputs stand ``reach`` columns from their step's hidden layers."""
    sizes, last = net.sizes, len(net.sizes) - 1
    units_of = [list(range(n)) if n <= shown_units else list(range(shown_units - 2)) + [n - 1] for n in sizes]
    gap_of = [None if n <= shown_units else shown_units - 2 for n in sizes]
    steps = shown_steps(net, reach)
    labels = {net.unit_at(step, layer, j).name: latex(net.unit_at(step, layer, j).a).removesuffix(f"({step + 1})")
              for step in steps for layer, shown in enumerate(units_of) for j in shown}
    radius = max([RADIUS] + [_extent(text, UNIT_EM, stacked=True)[0] / 2 + 0.1 for text in labels.values()])
    rows = max(ROW_SPACING, 2 * radius + 0.7)
    spacing = min(COLUMN_SPACING, (WIDEST - 2 * radius) / _span(net, len(steps), reach))
    top, bottom = [], 0.0  # each layer's band, inputs lowest: the y of its first slot
    for layer, shown in enumerate(units_of):
        top.append(bottom + (len(shown) - (gap_of[layer] is None)) * rows)
        bottom = top[-1] + 2 * radius + BAND_ROOM
    slot = lambda layer, j: units_of[layer].index(j) + (gap_of[layer] is not None and j == sizes[layer] - 1)
    y = lambda layer, j: top[layer] - slot(layer, j) * rows

    def x(position: int, layer: int) -> float:
        hidden = min(max(layer, 1), last - 1) - 1  # the hidden layer it stands by, in columns:
        column = reach + 0.75 + position * ((last - 2) * reach + 2) + hidden * reach
        return spacing * (column - reach * (layer == 0) + reach * (layer == last))

    where, step_of, nodes, gaps = {}, {}, [], []
    for position, step in enumerate(steps):
        for layer, shown in enumerate(units_of):
            for j in shown:
                name = net.unit_at(step, layer, j).name
                where[name], step_of[name] = (x(position, layer), y(layer, j)), step
                nodes.append(Node(name, *where[name], radius, labels[name]))
            if gap_of[layer] is not None:
                gaps.append((x(position, layer), top[layer] - gap_of[layer] * rows))
    for layer in range(1, last):
        for j in units_of[layer]:
            name = _ZERO.format(layer=layer, j=j)
            where[name] = (0.0, y(layer, j))
            nodes.append(Node(name, *where[name], radius, "0", "zero"))
    arrows, within, across = [], {}, {}  # each weight on its edge: a step's own, then the recurrent ones
    now, before = latex(bptt.t), latex(bptt.t - 1)
    for position, step in enumerate(steps):
        for layer in range(1, last + 1):
            for j in units_of[layer]:
                unit = net.unit_at(step, layer, j)
                for edge in unit.inputs:
                    if edge.source in where:  # a recurrent edge's source is shown with the step before
                        weight = latex(edge.weight)
                        arrows.append(Arrow(edge.source, unit.name, (where[edge.source], where[unit.name]), weight))
                        source, destination = labels[edge.source], labels[unit.name]
                        if step_of[edge.source] == step:
                            within[weight] = rf"{weight}\colon {source} \to {destination}"
                        else:
                            across[weight] = rf"{weight}\colon {source}({before}) \to {destination}({now})"
                if step == 0 and layer < last:  # the zero state's edges carry the recurrent weights too
                    for i in units_of[layer]:
                        weight, zero_unit = latex(recurrent_weight(layer - 1, i, j)), _ZERO.format(layer=layer, j=i)
                        arrows.append(Arrow(zero_unit, unit.name, (where[zero_unit], where[unit.name]), weight))
                        source = labels[net.unit_at(step, layer, i).name]
                        across[weight] = rf"{weight}\colon {source}({before}) \to {labels[unit.name]}({now})"
    low = min(node.y for node in nodes) - radius - 0.45
    captions = tuple(((x(position, 1), low), f"{latex(bptt.t)} = {step + 1}") for position, step in enumerate(steps))
    between = (x(len(steps) - 2, last - 1) + x(len(steps) - 1, 1)) / 2  # the last two steps drawn
    skipped = tuple((between, (top[layer] + y(layer, sizes[layer] - 1)) / 2)
                    for layer in range(1, last)) if steps[-1] != len(steps) - 1 else ()
    marks = tuple((point, 0.6) for point, _ in captions) + tuple((point, 0.4) for point in skipped)
    first_units = {net.unit_at(step, layer, 0).name for step in steps for layer in range(1, last + 1)}
    layout = _Layout(tuple(nodes), arrows, tuple(gaps), first_units, marks)
    return _Unrolled(layout, captions, skipped, within | across)


# --- labels -------------------------------------------------------------------------------

def _labelled(layouts: list[_Layout], backward: bool, crowded: bool) -> Figure:
    """The first layout, in order of preference, where every label chosen sits on its own edge
    alone: all the weights labelled, those into the first unit of each column, or none."""
    first_layout = layouts[0]
    arrows = first_layout.arrows
    weighted = [n for n, a in enumerate(arrows) if a.label]
    into = (lambda a: a.source) if backward else (lambda a: a.destination)
    first = [n for n in weighted if into(arrows[n]) in first_layout.first_units]
    choices = [("first", first), ("none", [])]
    if not crowded:
        choices.insert(0, ("all", weighted))
    for labelled, chosen in choices:
        for layout in layouts:
            boxes = _place(layout, [[n] for n in chosen], every=True)
            if len(boxes) == len(chosen):
                return Figure(layout.nodes, _marked(layout.arrows, boxes, labelled == "first"), layout.gaps,
                              labelled, backward)
    raise AssertionError("labelling no weight always succeeds")


def _marked(arrows: list[Arrow], boxes: dict[int, Box], faint: bool) -> tuple[Arrow, ...]:
    """The arrows with their labels' boxes; the weighted ones left unlabelled grey when ``faint``."""
    return tuple(replace(a, label=a.label if n in boxes else "", box=boxes.get(n),
                         faint=faint and bool(a.label) and n not in boxes) for n, a in enumerate(arrows))


#: Where along its edge a label may sit, as a fraction of the edge, the middle first.
_PLACES = sorted((k / 40 for k in range(6, 35)), key=lambda s: abs(s - 0.5))


def _place(layout: _Layout, groups: list[list[int]], every: bool = False) -> dict[int, Box]:
    """A box for as many groups of edges as it can, on one edge of each (the copies of a tied
    weight; else one edge alone), clear of units, of the other labels and of every other edge:
    greedily, the groups with fewest places first, each at its first edge's place nearest the
    middle; none at all as soon as a group has no place when ``every`` group needs one.  The
    places run from 15% to 85% of the edge in steps of 2.5% (near an end, where edges fan out
    or in, a label often finds the gap between two others)."""
    arrows = layout.arrows
    obstacles = ([((n.x, n.y), n.radius + TIP_ROOM) for n in layout.nodes]
                 + [(g, 0.3) for g in layout.gaps] + list(layout.marks))
    spans = [Box(min(x for x, _ in a.points), min(y for _, y in a.points), max(x for x, _ in a.points),
                 max(y for _, y in a.points)) for a in arrows]  # an edge whose span misses a box misses it
    places = {}
    for g, group in enumerate(groups):
        places[g] = []
        for n in group:
            width, height = _extent(arrows[n].label, LABEL_EM)
            for s in _PLACES:
                x, y = _along(arrows[n].points, s)
                box = Box(x - width / 2, y - height / 2, x + width / 2, y + height / 2)
                near = Box(box.left - LABEL_ROOM, box.bottom - LABEL_ROOM, box.right + LABEL_ROOM, box.top + LABEL_ROOM)
                if not any(near.meets_segment(p, q) for m, a in enumerate(arrows)
                           if m != n and near.overlaps(spans[m], -1e-9) for p, q in pairwise(a.points)) \
                        and not any(box.meets_circle(c, r) for c, r in obstacles):
                    places[g].append((n, box))
        if every and not places[g]:  # this label has no place: the layout fails, whatever the others find
            return {}
    boxes: dict[int, Box] = {}
    for g in sorted(places, key=lambda g: len(places[g])):
        n, box = next(((n, b) for n, b in places[g] if not any(b.overlaps(o, LABEL_ROOM) for o in boxes.values())),
                      (None, None))
        if box is not None:
            boxes[n] = box
        elif every:
            return {}
    return boxes


def _along(points: tuple[Point, ...], s: float) -> Point:
    """The point a fraction ``s`` of the way along a polyline."""
    lengths = [math.dist(p, q) for p, q in pairwise(points)]
    left = s * sum(lengths)
    for (p, q), length in zip(pairwise(points), lengths):
        if left <= length:
            t = left / length if length else 0.0
            return p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])
        left -= length
    return points[-1]


def _trimmed(points: tuple[Point, ...], start: float, end: float) -> tuple[Point, ...]:
    """The polyline cut back by the radius of the unit at each end, so arrows meet the circles."""
    def towards(p, q, r):
        length = math.dist(p, q) or 1.0
        return p[0] + (q[0] - p[0]) * r / length, p[1] + (q[1] - p[1]) * r / length
    return (towards(points[0], points[1], start),) + points[1:-1] + (towards(points[-1], points[-2], end),)


def _svg_label(x: float, y: float, latex: str, em: float) -> str:
    """SVG text whose ink is centred on the pixel (x, y)."""
    _, top, bottom = _ink(latex)
    return (f'<text x="{x:.1f}" y="{y + (top - bottom) / 2 * em * PIXELS:.1f}" font-size="{em * PIXELS:.1f}" '
            f'text-anchor="middle">{_svg_text(latex)}</text>')


def _centre(box: Box) -> Point:
    return (box.left + box.right) / 2, (box.top + box.bottom) / 2


def _corners(box: Box) -> tuple[Point, Point]:
    return (box.left, box.bottom), (box.right, box.top)


# --- measuring and writing labels ---------------------------------------------------------

#: Advance widths in em of Computer Modern math glyphs (wider ones; the rest count as _GLYPH).
_WIDTHS = {**dict.fromkeys("0123456789", 0.5), "(": 0.39, ")": 0.39, ",": 0.45, ".": 0.28, "+": 0.78,
           "-": 0.78, "=": 0.78, "w": 0.8, "m": 0.9, "W": 1.05, "M": 0.97, "i": 0.35, "j": 0.41, "l": 0.3}
_GLYPH = 0.65
_GROUPS = ("mathrm", "mathit", "boldsymbol", "mathcal", "hat", "bar", "tilde")
_COMMANDS = {"to": 1.0, "rightarrow": 1.0, "prime": 0.3, ",": 0.17, ";": 0.28, "quad": 1.0}
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}^_]|.")


def _extent(latex: str, em: float, stacked: bool = False) -> tuple[float, float]:
    """Width and height in cm, with a margin, of ``latex`` typeset at ``em`` (its ink is centred)."""
    width, top, bottom = _ink(latex, stacked)
    return width * em + 0.1, (top + bottom) * em + 0.06


def _ink(latex: str, stacked: bool = False) -> tuple[float, float, float]:
    """Width, height above and depth below the baseline in em: scripts one after the other
    as the SVG sets them, or ``stacked`` (TeX's subscript below the superscript, in a unit)."""
    tokens = _TOKEN.findall(latex.replace(" ", ""))
    width, scripts = _measure(tokens, 0, stacked)
    top = 0.95 if "^" in scripts else 0.75
    bottom = (0.5 if "^" in scripts else 0.4) if "_" in scripts else 0.25
    return width, top, bottom


def _measure(tokens: list[str], level: int, stacked: bool) -> tuple[float, set[str]]:
    """Width in em of the tokens up to the closing brace (consumed), and which scripts occur."""
    scale = (1.0, 0.88, 0.75)[min(level, 2)]  # small optical sizes are wider than scaled ones
    width, scripts, previous = 0.0, set(), None  # previous: (kind, width) of a script just set
    while tokens:
        token = tokens.pop(0)
        if token == "}":
            break
        if token in ("^", "_"):
            scripts.add(token)
            if tokens[:1] == ["{"]:
                tokens.pop(0)
                w, _ = _measure(tokens, level + 1, stacked)
            else:
                w, _ = _measure(tokens[:1], level + 1, stacked)
                del tokens[:1]
            if stacked and previous and previous[0] != token:  # below or above the other script
                width, previous = width + max(0.0, w - previous[1]), None
            else:
                width, previous = width + w, (token, w)
            continue
        previous = None
        if token == "{" or (token[1:] in _GROUPS and tokens[:1] == ["{"] and tokens.pop(0)):
            w, inner = _measure(tokens, level, stacked)
            width, scripts = width + w, scripts | inner
        elif token.startswith("\\"):
            width += _COMMANDS.get(token[1:], _GLYPH) * scale
        else:
            width += _WIDTHS.get(token, _GLYPH) * scale
    return width, scripts


_UNICODE = {r"\varphi": "φ", r"\phi": "ϕ", r"\delta": "δ", r"\eta": "η", r"\alpha": "α", r"\sigma": "σ",
            r"\ell": "ℓ", r"\rightarrow": "→", r"\to": "→", r"\mathcal{E}": "ℰ", r"\hat{y}": "ŷ",
            r"\theta": "θ"}
_SCRIPT = re.compile(r"([_^])\{([^{}]*)\}")
#: Marks around upright text (\mathrm) while the rest becomes italic: characters no label holds.
_UPRIGHT = ("\ue000", "\ue001")


def _svg_text(latex: str) -> str:
    """The printer's LaTeX for a symbol as SVG text: base, then raised and lowered tspans;
    letters italic as in TeX's math, except inside \\mathrm."""
    for command, char in _UNICODE.items():
        latex = latex.replace(command, char)
    latex = re.sub(r"\\mathrm\{([^{}]*)\}", _UPRIGHT[0] + r"\1" + _UPRIGHT[1], latex)
    latex = re.sub(r"\\math(?:it|cal)\{([^{}]*)\}", r"\1", latex).replace("\\", "")
    parts, position, previous = [], 0, None  # previous: (kind, text) of a script just set
    for match in _SCRIPT.finditer(latex):
        kind, text = match.groups()
        parts.append(_svg_run(latex[position:match.start()]))
        stacked = previous and previous[0] != kind and match.start() == position  # under/over it, as in TeX
        back = ""
        if stacked:
            width = _ink(previous[1].replace(_UPRIGHT[0], "").replace(_UPRIGHT[1], ""))[0]
            back = f' dx="-{0.85 * width:.2f}em"'  # a little short: never under the base
        stacks = stacked or match.end() < len(latex) and latex[match.end()] in "^_"
        shift = "0.52em" if kind == "^" else "-0.5em" if stacks else "-0.3em"  # in the script's own em
        parts.append(f'<tspan baseline-shift="{shift}" font-size="70%"{back}>{_svg_run(text)}</tspan>')
        position, previous = match.end(), None if back else (kind, text)
    parts.append(_svg_run(latex[position:]))
    return "".join(parts)


def _svg_run(text: str) -> str:
    """Plain text without grouping braces, its letters in italic tspans (not those marked upright)."""
    out = []
    for upright, run in enumerate(re.split("|".join(_UPRIGHT), text.replace("{", "").replace("}", ""))):
        for piece in re.split(r"([A-Za-zα-ωϕ]+)", run):
            italic = piece and not upright % 2 and re.fullmatch(r"[A-Za-zα-ωϕ]+", piece)
            out.append(f'<tspan font-style="italic">{escape(piece)}</tspan>' if italic else escape(piece))
    return "".join(out)
