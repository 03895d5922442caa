"""How the objects a user meets in a notebook show themselves: as the notes print them.

Installed on the core's classes when the notes are imported, so the core never imports
the notes (a Derivation does not know how it is printed).
"""
from __future__ import annotations

import base64

import sympy as sp

from .. import derivation as d
from ..derivation import Derivation, GenericLayer, Step, derive
from ..examples import Example
from ..network import Network
from . import figures
from .notation import load
from .printing import NotationPrinter, shown
from .rendering import render


def _svg_uris(network: Network) -> dict[str, str]:
    notation = load("default")
    drawn = figures.draw(network, NotationPrinter(notation, network).doprint, notation)
    return {name: "data:image/svg+xml;base64," + base64.b64encode(drawn[name].svg().encode()).decode()
            for name in ("forward", "backward")}


def _derivation(self: Derivation) -> str:
    """The notes, the figures embedded (a notebook has no folder to link a file from)."""
    uris = _svg_uris(self.network)
    return render(self, figure=uris["forward"], backward=uris["backward"], parts=("figure", "matrix", "concrete"))


def _step(self: Step) -> str:
    notation = load("default")
    printer = NotationPrinter(notation, self.network if self.level == "concrete" else None)
    return f"$${shown(self.lhs, self.rhs, notation, printer, self.rule).equation}$$"


def _layer(self: GenericLayer) -> str:
    notation = load("default")
    printer = NotationPrinter(notation, None, self)
    u, p = self.unit, self.predecessor
    lines = [shown(d.delta[u], self.delta, notation, printer),
             shown(sp.Derivative(d.E, d.w[p, u]), self.gradient_weight, notation, printer)]
    if self.gradient_bias is not None:
        lines.append(shown(sp.Derivative(d.E, d.b[u]), self.gradient_bias, notation, printer))
    lines.append(shown(d.w[p, u], self.update_weight, notation, printer, "gradient_descent"))
    body = r" \\ ".join(f"{s.lhs} &{s.relation} {s.rhs}" for s in lines)
    return rf"$$\begin{{aligned}} {body} \end{{aligned}}$$"


def _example(self: Example) -> str:
    return render(derive(self.network), self, parts=("example",))


def _network(self: Network) -> str:
    return figures.svg(self, NotationPrinter(load("default"), self).doprint)


def install() -> None:
    Derivation._repr_markdown_ = _derivation
    Step._repr_latex_ = _step
    GenericLayer._repr_latex_ = _layer
    Example._repr_markdown_ = _example
    Network._repr_svg_ = _network


install()
