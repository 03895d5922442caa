"""Derivation steps and numbers -> Markdown or LaTeX text, through jinja2 templates.

Code decides which steps exist and prints every formula with SymPy's LaTeX printer;
templates in ``templates/`` decide how to word them.  Notation is a printer concern:
:class:`NotationPrinter` maps the network's internal symbol names (``w[0][1][2]``,
``delta[1][0]``) to the symbols a course writes, here 1-based with the layer as a
superscript in parentheses.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import jinja2
import sympy as sp
from sympy.printing.latex import LatexPrinter

from .derivation import Derivation, derive
from .examples import Example, example
from .spec import Spec
from .verification import Report, verify

_PACKAGED = Path(__file__).parent / "templates"
_SOURCE = Path(__file__).parent.parent / "templates"
TEMPLATES = _PACKAGED if _PACKAGED.is_dir() else _SOURCE

_NAME = re.compile(r"^(x|t|z|a|delta|b|w)((?:\[[^\]]*\])+)$")
_GREEK = {"delta": r"\delta", "eta": r"\eta"}


class NotationPrinter(LatexPrinter):
    """LaTeX with the network's symbols written as a course writes them."""

    def _print_Symbol(self, expr, style="plain"):
        match = _NAME.match(expr.name)
        if not match:
            return _GREEK.get(expr.name, super()._print_Symbol(expr))
        role, indices = match.group(1), re.findall(r"\[([^\]]*)\]", match.group(2))
        letter = _GREEK.get(role, role)
        if not all(i.isdigit() for i in indices):  # a graph unit or named parameter
            return f"{letter}_{{\\mathrm{{{indices[0]}}}}}"
        numbers = [int(i) + 1 for i in indices]
        if role in ("x", "t"):
            return f"{letter}_{{{numbers[0]}}}"
        layer, rest = numbers[0], numbers[1:]
        return f"{letter}^{{({layer})}}_{{{''.join(map(str, rest))}}}"

    def _print_Idx(self, expr):
        return self._print(expr.label)

    def _print_Indexed(self, expr):
        base = _GREEK.get(expr.base.name, expr.base.name)
        return f"{base}_{{{''.join(self._print(i) for i in expr.indices)}}}"

    def _print_Sum(self, expr):
        # the sum over a layer's units, as lectures write it: \sum_k
        indices = "".join(self._print(limit[0]) for limit in expr.limits)
        return f"\\sum_{{{indices}}} {self.parenthesize(expr.function, 40)}"

    def _print_Derivative(self, expr):
        function = expr.expr
        if isinstance(function, sp.core.function.AppliedUndef) and len(expr.variables) == 1:
            # g'(z_j) for an activation, as every textbook writes it
            return f"{function.func.__name__}'({self._print(function.args[0])})"
        if len(expr.variable_count) > 1:
            return super()._print_Derivative(expr)
        (variable, count), = expr.variable_count
        order = f"^{{{count}}}" if count != 1 else ""
        return (f"\\frac{{\\partial{order} {self._print(function)}}}"
                f"{{\\partial {self._print(variable)}{order}}}")


def latex(expression, **settings) -> str:
    """An expression in the notation of the notes."""
    return NotationPrinter(settings).doprint(expression)


def _environment(templates: Path | None) -> jinja2.Environment:
    search = [str(templates)] if templates else []
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(search + [str(TEMPLATES)]),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["tex"] = latex
    env.filters["texescape"] = _texescape
    return env


def _texescape(text: str) -> str:
    """Plain text (a unit or loss name) safe inside LaTeX."""
    special = {c: "\\" + c for c in "&%$#_{}"}
    special.update({"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"})
    return "".join(special.get(c, c) for c in str(text))


def render(derivation: Derivation, example: Example | None = None, report: Report | None = None,
           format: str = "md", templates: Path | None = None) -> str:
    """The notes for ``derivation`` as Markdown (``md``) or LaTeX (``tex``) text."""
    net = derivation.network
    generic = {name: [s for s in derivation.steps if s.level == "generic" and s.subject == name]
               for name in derivation.generic}
    concrete = [s for s in derivation.steps if s.level == "concrete"]
    context = {"network": net, "derivation": derivation, "generic": generic, "concrete": concrete,
               "definitions": net.definitions, "loss": net.loss_expression,
               "example": example, "report": report, "E": sp.Symbol("E")}
    return _environment(templates).get_template(f"notes.{format}.j2").render(context)


def write_notes(spec: Spec, directory: Path, formats=("md",), templates: Path | None = None) -> list[Path]:
    """Derive, verify and render ``spec`` into ``directory``/notes.<format>; the paths written."""
    derivation = derive(spec.network)
    worked = example(spec.network, spec.values, spec.learning_rate, derivation)
    report = verify(spec.network, derivation, spec.values)
    paths = []
    for format in formats:
        path = Path(directory) / f"notes.{format}"
        write_atomically(path, render(derivation, worked, report, format, templates))
        paths.append(path)
    return paths


def write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file in the same folder, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
