"""How the objects a user meets in a notebook show themselves: as the notes print them.

Installed on the core's classes when the notes are imported, so the core never imports
the notes (a Derivation does not know how it is printed).
"""
from __future__ import annotations

import base64

import sympy as sp

from .. import derivation as d
from .. import network as networks
from ..convolution import ConvNetwork
from ..derivation import Derivation, GenericLayer, Step, derive
from ..examples import Example, example
from ..network import Network
from ..recurrent import UnrolledNetwork
from ..spec import Spec
from ..verification import Report
from . import figures, through_time
from .notation import load
from .printing import NotationPrinter, shown, symbol_table
from .worked import number
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
    """The notes' worked example section alone (the notes put the lecture before it)."""
    notes = render(derive(self.network), self, parts=("example",))
    start = notes.index("\n## A worked example") + 1
    end = notes.find("\n## ", start)
    return notes[start:end if end >= 0 else None].rstrip() + "\n"


def _network(self: Network) -> str:
    """The figure of the notes: a recurrent network unrolled as the through-time chapter draws it."""
    latex = NotationPrinter(load("default"), self).doprint
    unrolled = through_time.figure(self, latex) if isinstance(self, UnrolledNetwork) else None
    return unrolled.svg() if unrolled is not None else figures.svg(self, latex)


def _in_notation(symbol: sp.Symbol) -> str | None:
    """LaTeX of a symbol of a network alive in this process, in the default notation (the newest
    network that has it, a convolutional one last: its units are named as a layered net's,
    delta[1][0], but printed counted from 0); None for any other symbol."""
    alive = [network for network in map(lambda ref: ref(), reversed(networks.BUILT)) if network is not None]
    for network in sorted(alive, key=lambda network: isinstance(network, ConvNetwork)):
        table = symbol_table(network, load("default"))
        if symbol in table:
            return table[symbol]
    return None


def _symbol(self: sp.Symbol, printer) -> str:
    """A network's symbol inside a bare SymPy formula (``d.deltas["[0][1]"]``) as the notes write
    it; any other symbol as SymPy prints it."""
    shown = _in_notation(self)
    return shown if shown is not None else getattr(printer, f"_print_{type(self).__name__}",
                                                   printer._print_Symbol)(self)


#: Rows of a table a notebook shows (784-100-10 has 79,510 parameters).
SHOWN_ROWS = 60


def _parameter(name: str) -> str:
    """A parameter named in a report, as the notes write it where its network is alive."""
    shown = _in_notation(sp.Symbol(name, real=True))
    return f"${shown}$" if shown is not None else f"`{name}`"


def _report(self: Report) -> str:
    """The three witnesses' verdicts, then every parameter's gradient against its finite difference."""
    listed = self.parameters
    if len(listed) > SHOWN_ROWS:
        listed = sorted(listed, key=lambda p: 0.0 if p.kink else p.rel_error, reverse=True)[:SHOWN_ROWS]
    rows = [f"| {_parameter(p.name)} | {number(p.analytic)} | {number(p.numeric)} | "
            f"{'kink' if p.kink else f'{p.rel_error:.1e}'} |" for p in listed]
    generic = ("agree" if not self.generic_mismatches else "disagree: " + ", ".join(self.generic_mismatches))
    return "\n".join([
        f"**{'All witnesses agree' if self.ok else 'MISMATCH'}**", "",
        "| witness | verdict |", "|---|---|",
        f"| generic formulas == concrete formulas | {generic} |",
        f"| concrete formulas == sympy.diff of the expanded error | {self.brute_force} |",
        f"| gradients == central finite differences | largest relative error {self.max_rel_error:.1e} |", "",
        *([f"The {SHOWN_ROWS} largest relative errors of {len(self.parameters):,} parameters:", ""]
          if len(listed) < len(self.parameters) else []),
        "| parameter | gradient | finite difference | relative error |", "|---|---:|---:|---:|", *rows])




def _spec(self: Spec) -> str:
    """The network's figure and the numbers of its worked example."""
    network, values = self.network, self.values
    printer = NotationPrinter(load("default"), network)
    cell = lambda column: ", ".join(number(x) for x in column)
    rows = [(u.a, cell(values.inputs[:, n])) for n, u in enumerate(network.inputs)]
    rows += [(network.targets[u], cell(values.targets[:, n])) for n, u in enumerate(network.outputs)]
    rows += [(p, number(values.parameters[p])) for p in network.parameters]
    uri = "data:image/svg+xml;base64," + base64.b64encode(_network(network).encode()).decode()
    worked = example(network, values, self.learning_rate)
    listed = len(rows) <= SHOWN_ROWS
    return "\n".join([f"![The network]({uri})", "",
                       f"Worked example ({len(values.inputs)} sample{'s' if len(values.inputs) > 1 else ''}), "
                       f"learning rate ${printer.doprint(d.ETA)} = {self.learning_rate:g}$, "
                       f"error ${printer.doprint(d.E)} = {number(worked.evaluation.loss)}$"
                       + (":" if listed else f"; its {len(rows):,} inputs, targets and parameters are too many "
                                             "to list."), "",
                       *(["| quantity | value |", "|---|---:|"] if listed else []),
                       *(f"| ${printer.doprint(symbol)}$ | {value} |" for symbol, value in rows if listed)])


def install() -> None:
    Derivation._repr_markdown_ = _derivation
    Step._repr_latex_ = _step
    GenericLayer._repr_latex_ = _layer
    Example._repr_markdown_ = _example
    Network._repr_svg_ = _network
    Report._repr_markdown_ = _report
    Spec._repr_markdown_ = _spec
    sp.Symbol._latex = _symbol  # SymPy's own printer (a notebook's display of any formula) asks it first


install()
