"""Derivation steps and numbers -> Markdown or LaTeX notes, through jinja2 templates.

Code decides which steps exist and prints every formula with the notation's printer
(:mod:`symbackprop.printing`); the templates in ``templates/`` decide how to word them:
``notes.j2`` is the text of the notes, ``md.j2`` and ``tex.j2`` say how a section,
a displayed equation or a table is written in each format.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import jinja2
import sympy as sp

from . import derivation as generic
from . import figures, files
from .derivation import Derivation, GenericLayer, Step, derive
from .examples import Example, example
from .limits import SIMPLIFY_SECONDS
from .matrix import evaluator
from .matrix_form import matrix_form
from .notation import Notation
from .notation import load as load_notation
from .numerics import Values
from .parts import PARTS
from .printing import NotationPrinter, error_signal, in_notation
from .spec import Spec
from .verification import Report, verify

_PACKAGED = Path(__file__).parent / "templates"
_SOURCE = Path(__file__).parent.parent / "templates"
TEMPLATES = _PACKAGED if _PACKAGED.is_dir() else _SOURCE

#: Samples of a mini-batch shown one per column in the worked example.
SHOWN_SAMPLES = 4
#: Networks with more parameters get the notes without what lists every weight (the forward
#: pass unit by unit, every concrete delta and gradient, the parameter rows of the worked
#: example and of the verification): 784-30-10's 23,860 parameters made 5 MB of notes in
#: 45 s, most of it printing 785-term sums.  The matrix form states the same for whole layers.
PER_WEIGHT_LIMIT = 10_000


@dataclass(frozen=True)
class Shown:
    """One equation as the notes print it, with the equations it follows from."""

    lhs: str
    rhs: str
    rule: str
    uses: tuple[str, ...] = ()
    relation: str = "="
    name: str = ""  # which lecture formula it is (delta_output, gradient_weight, ...), for named equations
    chain: tuple[str, str, str] | None = None  # chain rule steps: (what, with respect to, through)
    tag: str = ""  # the notation's name for the equation (Nielsen's BP1-BP4)

    @property
    def equation(self) -> str:
        return f"{self.lhs} {self.relation} {self.rhs}"


@functools.lru_cache(maxsize=8)
def _environment(templates: Path | None) -> jinja2.Environment:
    """One environment per template folder, so each template is compiled once (a set of exercise
    sheets renders the same templates for every student); jinja2 reloads a file that changed."""
    search = [str(templates)] if templates else []
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(search + [str(TEMPLATES)]),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["texescape"] = _texescape
    env.filters["number"] = lambda x: f"{float(x):.6g}"
    return env


def _texescape(text: str) -> str:
    """Plain text (a unit or loss name) safe inside LaTeX."""
    special = {c: "\\" + c for c in "&%$#_{}"}
    special.update({"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"})
    return "".join(special.get(c, c) for c in str(text))


class _Notes:
    """Everything the templates print, already in the notation: the only place where
    the Derivation, the numbers and the Notation meet."""

    simplify_seconds = SIMPLIFY_SECONDS

    def __init__(self, derivation: Derivation, example: Example | None, report: Report | None,
                 notation: Notation, parts):
        net = derivation.network
        self.derivation, self.network, self.notation, self.example, self.report = (
            derivation, net, notation, example, report)
        self.parts = set(parts)
        self.per_weight = len(net.parameters) <= PER_WEIGHT_LIMIT
        self.per_weight_limit = PER_WEIGHT_LIMIT
        self.printer = NotationPrinter(notation, net)
        self.tex = self.printer.doprint
        self.E = self.tex(sp.Symbol("E"))

    def _shown(self, lhs, rhs, rule, printer, uses=(), name="", layer=None) -> Shown:
        relation = "="
        if rule == "gradient_descent":
            if self.notation.update == "change":
                lhs, rhs = sp.Symbol("Delta") * lhs, rhs - lhs
            else:  # w <- w - eta dE/dw, in that order
                relation = r"\leftarrow"
                printer = NotationPrinter(self.notation, printer.network, printer.layer, {"order": "none"})
        chain = None
        if rule == "chain_rule":
            through = next(e for e in sp.preorder_traversal(rhs) if isinstance(e, sp.Derivative)).variables[0]
            chain = tuple(printer.doprint(e) for e in (lhs.expr, lhs.variables[0], through))
        lhs, rhs = in_notation(lhs, rhs, self.notation, self.network, layer)
        if relation != "=":
            rhs = sp.Add(lhs, rhs - lhs, evaluate=False)
        return Shown(printer.doprint(lhs), printer.doprint(rhs), rule, tuple(uses), relation, name, chain,
                     self.notation.equation_names.get(name, ""))

    @property
    def forward(self) -> list[Shown]:
        if not self.per_weight:
            return []
        return [self._shown(symbol, definition, "definition", self.printer)
                for symbol, definition in self.network.definitions]

    @property
    def loss(self) -> Shown:
        return self._shown(sp.Symbol("E"), self.network.loss_expression, "definition", self.printer)

    @property
    def error_signals(self) -> list[Shown]:
        """Haykin's e_k = d_k - y_k, for notations that name it."""
        if "error_signal" not in self.notation.symbols:
            return []
        net = self.network
        in_order = NotationPrinter(self.notation, net, settings={"order": "none"}).doprint
        return [Shown(self.tex(error_signal(u)), in_order(sp.Add(net.targets[u], -net[u].a, evaluate=False)),
                      "definition") for u in net.outputs]

    @cached_property
    def layers(self) -> list[dict]:
        """The lecture formulas per group, output layer first, then backwards."""
        derivation = self.derivation
        layers = list(derivation.generic.values())
        order = [layer for layer in layers if layer.is_output] + [layer for layer in layers if not layer.is_output][::-1]
        sections = []
        for layer in order:
            printer = NotationPrinter(self.notation, None, layer)
            steps = [(n, s) for n, s in enumerate(derivation.steps) if s.level == "generic" and s.subject == layer.group]
            shown_at = {}
            shown = []
            for n, step in steps:
                uses = tuple(shown_at[u].equation for u in step.uses if u in shown_at)
                shown_at[n] = self._shown(step.lhs, step.rhs, step.rule, printer, uses, _lecture_name(step, layer),
                                          layer)
                shown.append(shown_at[n])
            group = self.network.group_by_name[layer.group]
            sections.append({"name": layer.group, "is_output": layer.is_output, "steps": shown,
                             "activation": group.activation.name,
                             "letters": [printer.doprint(i) for i in (layer.predecessor, layer.unit,
                                                                      layer.successor) if i is not None]})
        return sections

    @cached_property
    def activations(self) -> list[dict]:
        """Each distinct activation with its derivative, in terms of a where SymPy found it."""
        seen, out = set(), []
        for layer in self.layers:
            if layer["activation"] in seen:
                continue
            seen.add(layer["activation"])
            rules = ("activation", "activation_derivative", "rewrite_in_activation")
            out.append({"name": layer["activation"], "steps": [s for s in layer["steps"] if s.rule in rules]})
        return [a for a in out if a["steps"]]

    @cached_property
    def matrix(self) -> list[Shown]:
        if "matrix" not in self.parts or self.network.layers is None:
            return []
        rows_are_sources = self.notation.weight_order == "from_to"
        printer = _MatrixPrinter(self.notation, self.network)
        return [Shown(printer.doprint(s.lhs), printer.doprint(s.rhs), s.rule, name=s.name,
                      tag=self.notation.equation_names.get(s.name, ""))
                for s in matrix_form(self.network, rows_are_sources)]

    @cached_property
    def concrete(self) -> dict[str, list[Shown]]:
        """The network's own formulas by kind: dE/da per unit, deltas, then gradients."""
        if "concrete" not in self.parts or not self.per_weight:
            return {}
        kinds = {"differentiate": "errors", "sum_over_successors": "errors", "local_gradient": "deltas",
                 "gradient": "gradients", "tied_weight_sum": "gradients"}
        grouped: dict[str, list[Shown]] = {"errors": [], "deltas": [], "gradients": []}
        for s in self.derivation.steps:
            if s.level == "concrete":
                grouped[kinds[s.rule]].append(self._shown(s.lhs, s.rhs, s.rule, self.printer))
        return grouped

    @cached_property
    def figure(self) -> dict | None:
        if "figure" not in self.parts:
            return None
        drawn = figures.draw(self.network, self.tex, self.notation)
        return {"tikz": drawn["forward"].tikz(), "backward_tikz": drawn["backward"].tikz(), **drawn}

    @cached_property
    def worked(self) -> dict | None:
        if "example" not in self.parts or self.example is None:
            return None
        return _worked(self.example, self.derivation, self)

    @cached_property
    def verification(self) -> dict | None:
        if "verification" not in self.parts or self.report is None:
            return None
        by_name = {p.name: p for p in self.network.parameters}
        rows = [{"parameter": self.tex(by_name[c.name]), "analytic": c.analytic, "numeric": c.numeric,
                 "rel_error": f"{c.rel_error:.1e}", "kink": c.kink}
                for c in (self.report.parameters if self.per_weight else [])]
        return {"report": self.report, "rows": rows, "max_rel_error": f"{self.report.max_rel_error:.1e}"}


def _lecture_name(step: Step, layer: GenericLayer) -> str:
    """Which of the four backpropagation equations ``step`` states, if any (Nielsen's BP1-BP4)."""
    base = getattr(step.lhs, "base", None)
    if step.rule == "local_gradient" and base == generic.delta:
        return "delta_output" if layer.is_output else "delta_hidden"
    if step.rule == "gradient" and isinstance(step.lhs, sp.Derivative):
        return "gradient_weight" if step.lhs.variables[0].base == generic.w else "gradient_bias"
    return ""


class _MatrixPrinter(NotationPrinter):
    """Matrix symbols W[l], delta[l], ... as the notation writes them: W^{(l)}, delta^{(l)}."""

    def _print_MatrixSymbol(self, expr):
        n = self.notation
        name, layer = expr.name[:-1].split("[")
        layer = int(layer)
        number = layer - 1 + n.first_layer
        mark = f"({number})" if n.layer_style == "parenthesized" else str(number)
        if name == "a" and layer == 0:
            return rf"\boldsymbol{{{n.symbol('input')}}}"
        bold = lambda role: rf"\boldsymbol{{{n.symbol(role)}}}^{{{mark}}}"
        last = layer == len(self.network.layers) - 1
        return {"W": rf"{n.symbol('weight_matrix')}^{{{mark}}}",
                "z": bold("pre_activation"), "b": bold("bias"), "delta": bold("delta"),
                "a": bold("output" if last else "hidden"),
                "slope": rf"{n.symbol('function')}'(\boldsymbol{{{n.symbol('pre_activation')}}}^{{{mark}}})",
                "error": rf"\nabla_{{\boldsymbol{{{n.symbol('output')}}}}} {n.symbol('error')}",
                "jacobian": rf"\left(\frac{{\partial \boldsymbol{{{n.symbol('output')}}}}}"
                            rf"{{\partial \boldsymbol{{{n.symbol('pre_activation')}}}^{{{mark}}}}}\right)",
                "db": rf"\frac{{\partial {n.symbol('error')}}}{{\partial \boldsymbol{{{n.symbol('bias')}}}^{{{mark}}}}}",
                "dW": rf"\frac{{\partial {n.symbol('error')}}}{{\partial "
                      rf"{n.symbol('weight_matrix')}^{{{mark}}}}}"}[name]

    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(arg, 50) for arg in expr.args)


def _worked(example: Example, derivation: Derivation, notes: _Notes) -> dict:
    """The tables of the worked example: forward pass, deltas, gradients and the step."""
    net, values, evaluation = example.network, example.values, example.evaluation
    samples = len(values.inputs)
    columns = range(min(samples, SHOWN_SAMPLES))
    tex = notes.tex
    inputs = [{"symbol": tex(u.a), "values": [values.inputs[s][n] for s in columns]} for n, u in enumerate(net.inputs)]
    units = [{"z": tex(u.z), "a": tex(u.a), "delta": tex(u.delta),
              "z_values": [evaluation.z[u.name][s] for s in columns],
              "a_values": [evaluation.a[u.name][s] for s in columns],
              "delta_values": [notes.notation.delta_sign * evaluation.delta[u.name][s] for s in columns]}
             for u in net.computing_units]
    targets = [{"symbol": tex(net.targets[u]), "values": [values.targets[s][k] for s in columns]}
               for k, u in enumerate(net.outputs)]
    numbers = evaluator(derivation)
    per_sample = [numbers.evaluate(Values(values.inputs[s:s + 1], values.targets[s:s + 1], values.parameters))
                  for s in columns] if samples > 1 else []
    parameters = [{"symbol": tex(p), "value": values.parameters[p], "gradient": evaluation.gradients[p],
                   "per_sample": [e.gradients[p] for e in per_sample], "updated": evaluation.updated[p]}
                  for p in (net.parameters if notes.per_weight else [])]
    losses = [e.loss for e in per_sample]
    return {"samples": samples, "columns": list(columns), "inputs": inputs, "targets": targets, "units": units,
            "loss": evaluation.loss, "losses": losses, "parameters": parameters,
            "learning_rate": example.learning_rate, "eta": tex(sp.Symbol("eta")),
            "elided": samples > SHOWN_SAMPLES}


def render(derivation: Derivation, example: Example | None = None, report: Report | None = None,
           format: str = "md", templates: Path | None = None, notation: Notation | str = "default",
           parts=PARTS, figure: str | None = None) -> str:
    """The notes for ``derivation`` as Markdown (``md``) or LaTeX (``tex``) text.

    ``parts`` selects what is shown beyond the lecture formulas (see :data:`PARTS`);
    ``figure`` is the file name of the SVG picture the Markdown notes link to.
    """
    if isinstance(notation, str):
        notation = load_notation(notation)
    notes = _Notes(derivation, example, report, notation, parts)
    shown = figure if "figure" in notes.parts else None
    return render_document("notes.j2", notes, format, templates, svg=shown,
                           backward_svg=shown and backward_figure(shown))


def lecture(derivation: Derivation, notation: Notation, example: Example | None = None, parts=()) -> _Notes:
    """What the notes print (forward pass, error function, the lecture formulas per layer, the
    worked numbers), for other documents built from the same derivation (exercise sheets)."""
    return _Notes(derivation, example, None, notation, parts)


def render_document(template: str, notes: _Notes, format: str = "md", templates: Path | None = None,
                    **context) -> str:
    """Any document template with the notes' printed content as ``notes`` and the format's macros as ``f``."""
    env = _environment(templates)
    formatting = env.get_template(f"{format}.j2").module
    return env.get_template(template).render(notes=notes, n=notes.notation, f=formatting, format=format, **context)


def backward_figure(figure: str) -> str:
    """The file name of the picture of the local gradients, beside the network's ``figure``."""
    path = Path(figure)
    return str(path.with_name(f"{path.stem}-backward{path.suffix}"))


def write_notes(spec: Spec, directory: Path, formats=("md",), templates: Path | None = None,
                notation: Notation | str = "default", parts=PARTS, stem: str = "notes",
                inputs: Iterable[Path] = ()) -> list[Path]:
    """Derive, verify and render ``spec`` into ``directory``/notes.<format>; the paths written.

    The Markdown notes link to pictures of the network and of its local gradients, written
    beside them as SVG files (older pictures are removed when the new notes have none).  The
    files are written as one set by :func:`files.write_set`, never over one of ``inputs``.
    """
    if isinstance(notation, str):
        notation = load_notation(notation)
    derivation = derive(spec.network)
    worked = example(spec.network, spec.values, spec.learning_rate, derivation) if "example" in parts else None
    report = verify(spec.network, derivation, spec.values) if "verification" in parts else None
    texts = {}
    figure = Path(directory) / f"{stem}.svg"
    pictures = {"forward": figure, "backward": figure.with_name(backward_figure(figure.name))}
    for format in formats:
        texts[Path(directory) / f"{stem}.{format}"] = render(derivation, worked, report, format, templates,
                                                             notation, parts, figure.name)
    if "md" in formats and "figure" in parts:
        drawn = figures.draw(spec.network, NotationPrinter(notation, spec.network).doprint, notation)
        texts.update({path: drawn[kind].svg() for kind, path in pictures.items()})
    return files.write_set(texts, replaces=pictures.values() if "md" in formats else (), inputs=inputs)
