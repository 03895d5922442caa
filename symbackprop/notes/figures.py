"""A picture of the network: TikZ for the LaTeX notes, an SVG file for the Markdown ones.

Units are placed by depth (the longest path from an input), edges carry their weight's
symbol while the figure stays readable.  Labels are the printer's own LaTeX: TikZ
typesets it, and for SVG a handful of rules turn it into text with sub- and
superscripts (GitHub and Jupyter show an SVG image; neither runs a TeX engine on it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ..network import Network

#: Beyond this many edges the weights are not labelled: the labels would overlap.
LABELLED_EDGES = 24
#: Layers wider than this are drawn with their first and last units and a gap.
SHOWN_UNITS = 6


@dataclass(frozen=True)
class Layout:
    columns: list[list[str | None]]  # unit names per depth; None marks an elided gap
    edges: list[tuple[str, str, str]]  # (source, destination, weight LaTeX or "")
    labels: dict[str, str]  # unit -> LaTeX of its activation


def layout(network: Network, latex) -> Layout:
    """Columns of units by depth and the edges between the units shown."""
    depth: dict[str, int] = {}
    for unit in network.units:
        depth[unit.name] = max((depth[e.source] + 1 for e in unit.inputs), default=0)
    columns: list[list[str | None]] = [[] for _ in range(max(depth.values()) + 1)]
    for unit in network.units:
        columns[depth[unit.name]].append(unit.name)
    columns = [c if len(c) <= SHOWN_UNITS else c[:SHOWN_UNITS - 2] + [None] + c[-1:] for c in columns]
    shown = {name for column in columns for name in column if name}
    edges = [(e.source, unit.name, e.weight) for unit in network.units for e in unit.inputs
             if unit.name in shown and e.source in shown]
    label = len(edges) <= LABELLED_EDGES
    return Layout(columns, [(s, t, latex(w) if label else "") for s, t, w in edges],
                  {u.name: latex(u.a) for u in network.units if u.name in shown})


def _positions(columns, dx: float, dy: float) -> dict[str, tuple[float, float]]:
    """Column x at x * dx, each column centred vertically (y grows upwards)."""
    return {name: (x * dx, ((len(column) - 1) / 2 - y) * dy)
            for x, column in enumerate(columns) for y, name in enumerate(column) if name}


def tikz(network: Network, latex) -> str:
    """A ``tikzpicture`` of the network."""
    shape = layout(network, latex)
    where = _positions(shape.columns, 3.2, 1.6)
    ids = {name: f"u{n}" for n, name in enumerate(where)}
    lines = [(r"\begin{tikzpicture}[unit/.style={circle,draw,minimum size=9mm,inner sep=0pt},"
             r"weight/.style={fill=white,inner sep=1pt,font=\scriptsize}]")]
    lines += [rf"\node[unit] ({ids[n]}) at ({x:.2f},{y:.2f}) {{${shape.labels[n]}$}};" for n, (x, y) in where.items()]
    for x, column in enumerate(shape.columns):
        if None in column:
            lines.append(rf"\node at ({x * 3.2:.2f},{_gap(shape.columns, x, 1.6):.2f}) {{$\vdots$}};")
    for source, destination, weight in shape.edges:
        label = rf" node[weight,sloped,pos={_label_position(shape, destination):.2f}] {{${weight}$}}" if weight else ""
        lines.append(rf"\draw[->] ({ids[source]}) --{label} ({ids[destination]});")
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)


def _gap(columns, x: int, dy: float) -> float:
    column = columns[x]
    return ((len(column) - 1) / 2 - column.index(None)) * dy


def _label_position(shape: Layout, destination: str) -> float:
    """Where along its edge a weight is labelled: edges into different units of a column
    are labelled at different distances, so labels fanning out of one unit do not collide."""
    column = next(c for c in shape.columns if destination in c)
    return 0.25 + 0.5 * column.index(destination) / max(1, len(column) - 1)


_UNICODE = {r"\varphi": "φ", r"\phi": "ϕ", r"\delta": "δ", r"\eta": "η", r"\alpha": "α", r"\sigma": "σ",
            r"\ell": "ℓ", r"\rightarrow": "→", r"\to": "→", r"\mathcal{E}": "ℰ", r"\hat{y}": "ŷ", r"\theta": "θ"}
_SCRIPT = re.compile(r"([_^])\{([^{}]*)\}")


def _svg_text(latex: str) -> str:
    """The printer's LaTeX for a symbol as SVG text: base, then raised and lowered tspans."""
    for command, char in _UNICODE.items():
        latex = latex.replace(command, char)
    latex = re.sub(r"\\math(?:rm|it)\{([^{}]*)\}", r"\1", latex).replace("\\", "")
    parts, position = [], 0
    plain = lambda text: escape(text.replace("{", "").replace("}", ""))  # grouping braces
    for match in _SCRIPT.finditer(latex):
        parts.append(plain(latex[position:match.start()]))
        shift = "super" if match.group(1) == "^" else "sub"
        parts.append(f'<tspan baseline-shift="{shift}" font-size="70%">{escape(match.group(2))}</tspan>')
        position = match.end()
    parts.append(plain(latex[position:]))
    return "".join(parts)


def svg(network: Network, latex) -> str:
    """A standalone SVG picture of the network."""
    shape = layout(network, latex)
    dx, dy, margin, radius = 170.0, 70.0, 40.0, 22.0
    where = {n: (x + margin, -y) for n, (x, y) in _positions(shape.columns, dx, dy).items()}
    top = min(y for _, y in where.values())
    where = {n: (x, y - top + margin) for n, (x, y) in where.items()}
    width = max(x for x, _ in where.values()) + margin
    height = max(y for _, y in where.values()) + margin
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="serif" font-size="15">'),
           ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>'), '<rect width="100%" height="100%" fill="white"/>']
    for source, destination, weight in shape.edges:
        (x1, y1), (x2, y2) = where[source], where[destination]
        length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        out.append(f'<line x1="{x1 + ux * radius:.1f}" y1="{y1 + uy * radius:.1f}" x2="{x2 - ux * radius:.1f}" '
                   f'y2="{y2 - uy * radius:.1f}" stroke="black" marker-end="url(#arrow)"/>')
        if weight:
            t = _label_position(shape, destination)
            out.append(f'<text x="{x1 + (x2 - x1) * t:.1f}" y="{y1 + (y2 - y1) * t - 4:.1f}" font-size="12" '
                       f'text-anchor="middle" stroke="white" stroke-width="3" paint-order="stroke">'
                       f'{_svg_text(weight)}</text>')
    for name, (x, y) in where.items():
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.0f}" fill="white" stroke="black"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 5:.1f}" text-anchor="middle">{_svg_text(shape.labels[name])}</text>')
    for x, column in enumerate(shape.columns):
        if None in column:
            out.append(f'<text x="{x * dx + margin:.1f}" y="{-_gap(shape.columns, x, dy) - top + margin:.1f}" '
                       'text-anchor="middle">⋮</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
