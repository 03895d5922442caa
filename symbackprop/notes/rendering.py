"""Derivation steps and numbers -> Markdown or LaTeX notes, through jinja2 templates.

Code decides which equations exist, in which order and with which numbers, and prints every
formula with the notation's printer (:mod:`.printing`); the templates in ``templates/``
decide how to word them: ``notes.j2`` is the text of the notes, ``md.j2`` and ``tex.j2``
say how a section, a numbered display or a table is written in each format.  Templates run
in jinja2's sandbox: ``--templates`` may come from a colleague.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import jinja2
import sympy as sp

from .. import bptt
from .. import derivation as generic
from ..convolution import ConvNetwork
from ..derivation import Derivation, GenericLayer, Step, derive
from .. import files
from ..parts import PARTS
from ..examples import Example, check_finite, example
from ..limits import MAX_UNITS, SIMPLIFY_SECONDS
from ..network import is_shared_bias
from ..spec import Spec
from ..verification import Report, verify
from . import convolutional, cost, figures, through_time
from .matrix_form import MatrixPrinter, matrix_form
from .notation import Notation
from .notation import load as load_notation
from .sandbox import BoundedSandbox, ConfinedLoader, guarded, rendered
from .printing import (BATCH, ERROR_SIGNAL, LAYER_BIAS, SAMPLE, SAMPLE_E, SAMPLE_ERROR, NotationPrinter, Shown,
                       error_signal, shown)
from .worked import concrete, in_unit_order, number, worked

_PACKAGED = Path(__file__).parent.parent / "templates"
_SOURCE = Path(__file__).parent.parent.parent / "templates"
TEMPLATES = _PACKAGED if _PACKAGED.is_dir() else _SOURCE

#: Networks with more parameters get the notes without what lists every weight (the forward
#: pass unit by unit, every concrete delta and gradient, the parameter rows of the worked
#: example and of the verification): 784-30-10's 23,860 parameters made 5 MB of notes in
#: 45 s, most of it printing 785-term sums.  The matrix form states the same for whole layers.
PER_WEIGHT_LIMIT = 10_000
#: The parts that make the appendix, which a handout (``--handout``) leaves out.
APPENDIX = ("concrete", "verification")


def lists_every_unit(network) -> bool:
    """Whether the notes list every unit and weight: up to :data:`PER_WEIGHT_LIMIT` parameters and
    MAX_UNITS computing units (a conv network may have 20,000 units on a few weights; its per-unit
    parts stay within the layered networks' bound)."""
    return len(network.parameters) <= PER_WEIGHT_LIMIT and len(network.computing_units) <= MAX_UNITS


@functools.lru_cache(maxsize=8)
def _environment(templates: Path | None) -> jinja2.Environment:
    """One sandboxed environment per template folder, so each template is compiled once (a set of
    exercise sheets renders the same templates for every student); jinja2 reloads a changed file."""
    search = [str(templates)] if templates else []
    env = BoundedSandbox(
        loader=ConfinedLoader(search + [str(TEMPLATES)]), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["texescape"] = _texescape
    env.filters["number"] = number
    env.filters["aligned"] = aligned
    env.filters["rows"] = rows
    return env


#: About how many characters of a formula fit one line of a LaTeX display in the notes.
LINE_CHARACTERS = 75


def _visible(tex: str) -> int:
    """About how many characters ``tex`` prints: a command is one, braces and spaces none."""
    return len(re.sub(r"[{}\s]", "", re.sub(r"\\[a-zA-Z]+", "x", tex)))


def aligned(rhs: str) -> str:
    """The right-hand side of an ``align*`` row that fits the page: a long chain a = b = c
    one part per line, and a part still too long broken before a + or - that no brace or
    \\left...\\right encloses (the overfull substituted sums of a recurrent delta)."""
    if _visible(rhs) <= LINE_CHARACTERS:
        return rhs
    lines = []
    for n, part in enumerate(rhs.split(" = ")):
        pieces = _broken(part)
        lines.append(("" if n == 0 else "&= ") + pieces[0])
        lines += [r"&\quad " + piece for piece in pieces[1:]]
    return " \\\\\n ".join(lines)


#: About how many characters of a formula fit a row of a table of formulas, its left side included.
TABLE_CHARACTERS = 108


def _wide(tex: str) -> int:
    """:func:`_visible`, an arrow (the arrows notation's w_{i\\rightarrow j}) counted as wide as it prints."""
    return _visible(tex) + 2 * tex.count(r"\rightarrow")


def rows(shown: list[Shown]) -> list[tuple[Shown, list[str]]]:
    """Each formula of a table of formulas (the appendix) with its right-hand side in lines that fit
    the page beside the widest left-hand side: a long sum (a kernel weight's gradient sums over every
    position, a net input over every unit below) broken before a + or -."""
    width = TABLE_CHARACTERS - max((_wide(s.lhs) for s in shown), default=0)
    return [(s, [s.rhs] if _wide(s.rhs) <= width else _broken(s.rhs, width, _wide)) for s in shown]


def _broken(part: str, width: int = LINE_CHARACTERS, measure=_visible) -> list[str]:
    """``part`` in pieces of at most ``width`` characters (as ``measure`` counts them), each
    after the first starting with the + , - or \\times it was broken before; never inside braces or
    \\left...\\right, and inside parentheses only when the parenthesized group is itself too long
    (a long substituted sum), not in a short one such as (1 - 0.146^2)."""
    parts, depth, start, last = [], 0, 0, None
    short = _short_groups(part, width, measure)
    for match in re.finditer(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|[{}]| [+-] | \\times ", part):
        token = match.group()  # \rightarrow is no \right
        if token in ("{", r"\left"):
            depth += 1
        elif token in ("}", r"\right"):
            depth -= 1
        elif depth == 0 and not any(opened < match.start() < closed for opened, closed in short):
            if measure(part[start:match.start()]) > width and last is not None:
                parts.append(part[start:last])
                start = last + 1
            last = match.start()
    if measure(part[start:]) > width and last is not None and last > start:
        parts.append(part[start:last])
        start = last + 1
    return parts + [part[start:]]


def _short_groups(part: str, width: int, measure) -> list[tuple[int, int]]:
    """The (opening, closing) places of the parenthesized groups of ``part`` that fit ``width``."""
    groups, opened = [], []
    for n, character in enumerate(part):
        if character == "(":
            opened.append(n)
        elif character == ")" and opened:
            begin = opened.pop()
            if measure(part[begin:n + 1]) <= width:
                groups.append((begin, n))
    return groups


def _texescape(text: str) -> str:
    """Plain text (a unit or loss name) safe inside LaTeX."""
    special = {c: "\\" + c for c in "&%$#_{}"}
    special.update({"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"})
    return "".join(special.get(c, c) for c in str(text))


class _Numbers:
    """Equation numbers in the order of the notes; the notation's own names where it has them."""

    def __init__(self, names):
        self.names, self.count = names, 0

    def __call__(self, s: Shown, name: str = "", uses=()) -> Shown:
        if name in self.names:
            tag = self.names[name]
        else:
            self.count += 1
            tag = str(self.count)
        return Shown(s.lhs, s.rhs, s.rule, tag, tuple(u.tag if isinstance(u, Shown) else u for u in uses),
                     s.relation, name)


class _Notes:
    """Everything the templates print, already in the notation and numbered: the only place
    where the Derivation, the numbers and the Notation meet."""

    simplify_seconds = SIMPLIFY_SECONDS

    def __init__(self, derivation: Derivation, example: Example | None, report: Report | None,
                 notation: Notation, parts, truncate: int | None = None):
        net = derivation.network
        self.derivation, self.network, self.notation, self.example, self.report = (
            derivation, net, notation, example, report)
        self.parts = set(parts)
        self.truncate = truncate
        self.per_weight = lists_every_unit(net)
        self.per_weight_limit, self.per_unit_limit = PER_WEIGHT_LIMIT, MAX_UNITS
        self.convolutional = isinstance(net, ConvNetwork)
        self.printer = NotationPrinter(notation, net)
        self.tex = self.printer.doprint
        self.E = self.tex(generic.E)
        self.sample, self.batch_size = self.tex(SAMPLE), self.tex(BATCH)
        self.number = _Numbers(notation.equation_names)
        self.batch = example is not None and len(example.values.inputs) > 1
        #: one bias per layer (bias = "shared"): the lecture formulas write it without a unit index
        self.shared_bias = any(is_shared_bias(b) for b in net.biases)
        self.outputs = [self._group(g) for g in net.groups if g.units[0] in net.outputs]
        self.hidden = [self._group(g) for g in net.groups if g.units[0] not in net.outputs][::-1]
        self.groups = self.outputs + self.hidden
        self.output = self.outputs[0]
        #: a recurrent network's BPTT formulas: its notes state them, and derive them in their chapter
        self.recurrent = through_time.formulas(net)
        self.definitions = self._definitions()
        self.equations = self._equations()
        self.output_steps = self._output_steps() if self.recurrent is None else None
        self.hidden_steps = self._hidden_steps() if self.hidden and self.recurrent is None else []
        self.conv = self._conv_chapter(example) if self.convolutional else None

    def _conv_chapter(self, example: Example | None) -> dict:
        """A convolutional network's chapter, numbered after the hidden layers' equations (whose
        g' per activation are numbered first, as the notes print them), printing the box's index-form
        equations with the box's numbers where it derives them."""
        _ = self.hidden_layers  # numbered before the chapter
        boxed = {e.name: e for e in self.equations if e.name in convolutional.box(self.network)}
        return convolutional.chapter(self.network, self.notation, example if "example" in self.parts else None,
                                     "figure" in self.parts, self.number, boxed)

    # -- the layers ------------------------------------------------------------------------

    def layer_number(self, group) -> str:
        """The notation's number of a layer ("2"; Nielsen counts the inputs as layer 1)."""
        if isinstance(self.network, ConvNetwork):  # the stack's layers, in order
            return str(self.network.groups.index(group) + self.notation.first_layer)
        units = [self.network[n] for n in group.units]
        if not units[0].position:
            return ""
        return str(units[0].position[0] - 1 + self.notation.first_layer)

    def _group(self, group) -> dict:
        layer = self.derivation.generic[group.name]
        function = self.notation.function_for(group.activation.name)
        printer = NotationPrinter(self.notation, None, layer, function=function)
        steps = [s for s in self.derivation.steps if s.level == "generic" and s.subject == group.name]
        kind = self.network.stack[self.network.groups.index(group)].kind if isinstance(self.network, ConvNetwork) else None
        return {"name": group.name, "number": self.layer_number(group), "layer": layer, "printer": printer, "kind": kind,
                "steps": steps, "activation": group.activation, "function": function,
                "units": [self.tex(self.network[n].a) for n in group.units],
                "member": printer.doprint(generic.m if group.activation.normalized else layer.unit),
                "letters": [printer.doprint(i) for i in (layer.predecessor, layer.unit, layer.successor)
                            if i is not None]}

    @staticmethod
    def _step(group: dict, rule: str, lhs=None) -> Step | None:
        """The generic step of ``group`` made by ``rule`` (with that left-hand side's kind)."""
        for s in group["steps"]:
            if s.rule == rule and (lhs is None or lhs(s.lhs)):
                return s
        return None

    def _show(self, group: dict, lhs, rhs, rule: str = "", name: str = "", uses=(), per_sample: bool = True) -> Shown:
        """``lhs = rhs`` numbered; in mini-batch notes a formula of one sample is of its error E_n,
        so that E names one value, the mean."""
        if self.batch and per_sample:
            lhs, rhs = (_of_sample(e) for e in (lhs, rhs))
        return self.number(shown(lhs, rhs, self.notation, group["printer"], rule, group["layer"]), name, uses)

    # -- definitions, then the equations ---------------------------------------------------

    def _definitions(self) -> dict:
        first = self.hidden[-1] if self.hidden else self.output
        if self.recurrent is not None:  # at step t, the recurrent term and the error of every step
            return {**through_time.definitions(self, first, lambda: self._batch_error(first)),
                    "functions": self._functions(first, self.notation.symbol("function")), "first": first}
        z_def = self._step(first, "definition", lambda e: getattr(e, "base", None) == generic.z)
        a_def = self._step(first, "definition", lambda e: getattr(e, "base", None) == generic.a)
        out = self.output
        e_def = self._step(out, "definition", lambda e: e == generic.E)
        # a = sigma(z) only when every layer has the sigmoid's letter; else a = g(z), g named per layer
        letters = {None if g["activation"].normalized else g["function"] for g in self.groups}  # softmax: no letter
        a_printer = first["printer"] if letters == {first["function"]} else NotationPrinter(
            self.notation, None, first["layer"], function=self.notation.symbol("function"))
        forward = [self._show(first, z_def.lhs, self._layer_bias(z_def.rhs)),
                   self.number(shown(a_def.lhs, a_def.rhs, self.notation, a_printer, layer=first["layer"]))]
        loss = self._show(out, e_def.lhs, self.squared_signals(e_def.rhs))
        signal = self.signal()
        batch = self._batch_error(first)
        unit = first["layer"].unit
        delta = self._show(first, generic.delta[unit], sp.Derivative(generic.E, generic.z[unit]))
        return {"forward": forward, "functions": self._functions(first, a_printer.function), "loss": loss,
                "signal": signal, "batch": batch, "delta": delta, "first": first}

    def squared_signals(self, expression: sp.Expr) -> sp.Expr:
        """E written with the error signals where the notation names them (Haykin: sum_j e_j^2)."""
        return _squared_signals(expression, self.notation)

    def signal(self, at=lambda e: e) -> Shown | None:
        """e_j = d_j - y_j numbered, where the notation names the error signal (Haykin); ``at``
        writes each symbol at step t (through_time.at_step) in recurrent notes."""
        if "error_signal" not in self.notation.symbols:
            return None
        out = self.output
        u, printer = out["layer"].unit, NotationPrinter(self.notation, None, out["layer"], {"order": "none"})
        return self.number(Shown(printer.doprint(at(ERROR_SIGNAL[u])), printer.doprint(
            sp.Add(at(generic.t[u]), -at(generic.a[u]), evaluate=False))))

    def _functions(self, first: dict, letter: str) -> list[dict]:
        """Each layer's activation function; where (2) writes the generic letter g and the layer
        has a letter of its own (Nielsen's sigma), g(z) = sigma(z) = ..."""
        generic_letter = self.notation.symbol("function")
        functions = []
        for group in self.groups[::-1]:
            act = self._step(group, "activation")
            definition = act or self._step(group, "definition", lambda e: getattr(e, "base", None) == generic.a)
            equation = shown(definition.lhs, definition.rhs, self.notation, group["printer"], layer=group["layer"])
            if act is not None and group["function"] != generic_letter and letter == generic_letter:
                named = NotationPrinter(self.notation, None, group["layer"], function=generic_letter)
                equation = replace(equation, lhs=named.doprint(definition.lhs),
                                   rhs=f"{equation.lhs} = {equation.rhs}")  # g(z) = sigma(z) = ...
            functions.append({"number": group["number"], "is_output": group is self.output, "kind": group["kind"],
                              "function": group["function"], "activation": group["activation"].name,
                              "normalized": act is None, "shown": equation})
        return functions

    def _batch_error(self, first: dict) -> list[Shown]:
        """E = 1/N sum_n E_n for a mini-batch, else nothing."""
        if not self.batch:
            return []
        return [self._show(first, generic.E, sp.Sum(SAMPLE_ERROR(generic.E, SAMPLE), (SAMPLE, 1, BATCH)) / BATCH,
                           per_sample=False)]

    def _layer_bias(self, expression: sp.Expr) -> sp.Expr:
        """``expression`` with a unit's bias b_j written as its layer's one bias, when biases are shared."""
        if not self.shared_bias:
            return expression
        return expression.replace(lambda e: isinstance(e, sp.Indexed) and e.base == generic.b, lambda e: LAYER_BIAS)

    def _equations(self) -> list[Shown]:
        """The four equations of backpropagation (through time, for a recurrent network), the
        means over a mini-batch, and the update, in the notation's form."""
        equations = (through_time.equations(self, self.definitions["first"]) if self.recurrent is not None
                     else self._layer_equations())
        first = self.definitions["first"]
        layer = first["layer"]
        weight = generic.w[layer.predecessor, layer.unit]
        parameters = {"gradient_bias": LAYER_BIAS if self.shared_bias else generic.b[layer.unit],
                      "gradient_weight": weight, "gradient_recurrent": bptt.r[bptt.source, layer.unit]}
        if self.batch:  # the mean of the samples' gradients
            for gradient in [e for e in equations if e.name in parameters]:
                parameter = parameters[gradient.name]
                mean = sp.Sum(SAMPLE_ERROR(parameter, SAMPLE), (SAMPLE, 1, BATCH)) / BATCH
                equations.append(self._show(first, sp.Derivative(generic.E, parameter), sp.diff(mean, parameter),
                                            name=gradient.name.replace("gradient_", "mean_"), per_sample=False))
        parameter = weight
        if self.batch or self.recurrent is not None:
            update = parameter - generic.ETA * sp.Derivative(generic.E, parameter)
        else:
            update = self._step(first, "gradient_descent").rhs
        equations.append(self._show(first, parameter, update, "gradient_descent", name="update", per_sample=False))
        return equations

    def _layer_equations(self) -> list[Shown]:
        """The local gradients and gradients of a feed-forward network."""
        out, defs = self.output, self.definitions
        equations = []
        if out["activation"].normalized:
            final = self._step(out, "local_gradient", lambda e: getattr(e, "base", None) == generic.delta)
            equations.append(self._show(out, final.lhs, final.rhs, name="delta_output"))
        else:
            local = self._step(out, "local_gradient", lambda e: isinstance(e, sp.Derivative))
            equations.append(self._show(out, generic.delta[out["layer"].unit], local.rhs, name="delta_output"))
        if self.hidden:
            group = self.hidden[0]
            local = self._step(group, "local_gradient", lambda e: isinstance(e, sp.Derivative))
            equations.append(self._show(group, generic.delta[group["layer"].unit], local.rhs, name="delta_hidden"))
        first = defs["first"]
        of = lambda base: lambda e: isinstance(e, sp.Derivative) and e.variables[0].base == base
        bias = self._step(first, "gradient", of(generic.b))
        if bias is not None and self.shared_bias:  # the layer's one bias is in every unit's net input
            unit = first["layer"].unit
            equations.append(self._show(first, sp.Derivative(generic.E, LAYER_BIAS),
                                        sp.Sum(bias.rhs, (unit, 0, generic._N - 1)), name="gradient_bias"))
        elif bias is not None:
            equations.append(self._show(first, bias.lhs, bias.rhs, name="gradient_bias"))
        weight = self._step(first, "gradient", of(generic.w))
        equations.append(self._show(first, weight.lhs, weight.rhs, name="gradient_weight"))
        if self.convolutional:  # a kernel weight sums (gradient_weight) over its edges: in index form
            printer = convolutional.ConvPrinter(self.notation, None)
            for name, (lhs, rhs) in convolutional.box(self.network).items():
                if self.batch:
                    lhs, rhs = _of_sample(lhs), _of_sample(rhs)
                equations.append(self.number(shown(lhs, rhs, self.notation, printer), name))
        return equations

    @cached_property
    def loss(self) -> Shown:
        """The error function of this network, in its own symbols."""
        return shown(generic.E, self.network.loss_expression, self.notation, self.printer)

    def equation(self, name: str) -> Shown | None:
        return next((e for e in self.equations + self.definitions["batch"] if e.name == name), None)

    # -- the derivations -------------------------------------------------------------------

    def _weight_factor(self, group: dict) -> list[Shown]:
        """dE/dw = dE/dz dz/dw and dz/dw = a: the chain rule through the net input."""
        chain = self._step(group, "chain_rule", lambda e: e.variables[0].base == generic.w)
        factor = self._step(group, "differentiate", lambda e: isinstance(e, sp.Derivative)
                            and e.variables[0].base == generic.w)
        return [self._show(group, chain.lhs, chain.rhs, "chain_rule"),
                self._show(group, factor.lhs, factor.rhs, "weight_factor", uses=[self.definitions["forward"][0]])]

    def _output_steps(self) -> dict:
        group = self.output
        layer = group["layer"]
        steps = self._weight_factor(group)
        error = self._step(group, "differentiate", lambda e: isinstance(e, sp.Derivative) and e.expr == generic.E
                           and e.variables[0].base == generic.a)
        steps.append(self._show(group, error.lhs, error.rhs, "loss_derivative", uses=[self.definitions["loss"]]))
        if group["activation"].normalized:
            steps += self._softmax_steps(group, steps[-1])
        else:
            chain = self._step(group, "chain_rule", lambda e: e.variables[0].base == generic.z)
            local = self._step(group, "local_gradient", lambda e: isinstance(e, sp.Derivative))
            steps.append(self._show(group, generic.delta[layer.unit], [chain.rhs, local.rhs], "local_chain",
                                    uses=[self.definitions["delta"], self.definitions["forward"][1], steps[-1]]))
        return {"group": group, "steps": steps, "derivatives": self._by_activation(self.outputs)}

    def _softmax_steps(self, group: dict, error: Shown) -> list[Shown]:
        """The Jacobian of a normalized output and the cancellation through sum_m t_m = 1,
        each line a SymPy operation on the one before."""
        layer, m = group["layer"], generic.m
        u = layer.unit
        definition = self._step(group, "definition", lambda e: getattr(e, "base", None) == generic.a)
        jacobian = self._step(group, "differentiate", lambda e: isinstance(e, sp.Derivative)
                              and getattr(e.expr, "base", None) == generic.a)
        chain = self._step(group, "chain_rule", lambda e: e.variables[0].base == generic.z)
        error_step = self._step(group, "differentiate", lambda e: isinstance(e, sp.Derivative) and e.expr == generic.E)
        product = sp.Sum(sp.Mul(error_step.rhs, jacobian.rhs, evaluate=False), (m, 0, generic._N - 1))
        cancelled = sp.Sum(sp.expand(error_step.rhs * jacobian.rhs), (m, 0, generic._N - 1))
        split = sp.Add(*(generic._in_range(sp.Sum(term, (m, 0, generic._N - 1)).doit()) if term.has(sp.KroneckerDelta)
                         else sp.factor_terms(sp.Sum(term, (m, 0, generic._N - 1)))
                         for term in sp.Add.make_args(cancelled.function)))
        total = sp.Sum(generic.t[m], (m, 0, generic._N - 1))
        final = sp.factor_terms(split.subs(total, 1))
        shown_definition = self._show(group, definition.lhs, definition.rhs)
        shown_jacobian = self._show(group, jacobian.lhs, jacobian.rhs, "jacobian", uses=[shown_definition])
        return [shown_definition, shown_jacobian,
                self._show(group, generic.delta[u], [chain.rhs, product, cancelled, split, final], "softmax_chain",
                           uses=[self.definitions["delta"], error, shown_jacobian])]

    def _hidden_steps(self) -> list[Shown]:
        group = self.hidden[0]
        layer = group["layer"]
        first = self._step(group, "sum_over_successors")
        factor = self._step(group, "differentiate", lambda e: isinstance(e, sp.Derivative)
                            and e.variables[0].base == generic.a)
        successor = self._step(group, "definition", lambda e: getattr(e, "base", None) == generic.z
                               and e.indices[0] == layer.successor)
        substituted = self._step(group, "substitute")
        chain = self._step(group, "chain_rule", lambda e: e.variables[0].base == generic.z)
        local = self._step(group, "local_gradient", lambda e: isinstance(e, sp.Derivative))
        paths = self._show(group, first.lhs, first.rhs, "sum_over_successors")
        net_input = self._show(group, successor.lhs, self._layer_bias(successor.rhs))
        dz = self._show(group, factor.lhs, factor.rhs, "successor_factor", uses=[net_input])
        total = self._show(group, substituted.lhs, substituted.rhs, "substitute",
                           uses=[paths, dz, self.definitions["delta"]])
        delta = self._show(group, generic.delta[layer.unit], [chain.rhs, local.rhs], "local_chain",
                           uses=[self.definitions["delta"], self.definitions["forward"][1], total])
        return [paths, net_input, dz, total, delta]

    def _derivative(self, group: dict) -> dict | None:
        """g' of a layer, in terms of the activation where SymPy finds that form, and the
        layer's delta with it put in."""
        derivative = self._step(group, "activation_derivative")
        if derivative is None:
            return None
        rewritten = self._step(group, "rewrite_in_activation")
        chain = [derivative.rhs] + ([rewritten.rhs] if rewritten else [])
        final = self._step(group, "local_gradient", lambda e: getattr(e, "base", None) == generic.delta)
        return {"shown": self._show(group, derivative.lhs, chain, "activation_derivative"),
                "in_activation": rewritten is not None or not derivative.rhs.atoms(sp.Indexed),
                "delta": self._show(group, final.lhs, final.rhs, "local_gradient")}

    def _by_activation(self, groups: list[dict]) -> list[dict]:
        """g' and delta once per activation, with the layers (or units) that have it."""
        seen: dict[str, dict] = {}
        for g in groups:
            name = g["activation"].name
            if name not in seen:
                derivative = self._derivative(g)
                if derivative is None:
                    continue
                seen[name] = {"activation": name, "derivative": derivative, "numbers": [], "units": []}
            seen[name]["numbers"] += [g["number"]] if g["number"] else []
            seen[name]["units"] += g["units"]
        return list(seen.values())

    @cached_property
    def through_time(self) -> dict | None:
        """A recurrent network's chapter: BPTT, its truncation, the example step by step."""
        return through_time.chapter(self, self.truncate)

    @cached_property
    def hidden_layers(self) -> list[dict]:
        """Per activation of the hidden layers (from the output back): its g' and delta."""
        return self._by_activation(self.hidden)

    # -- the lecture formulas step by step, for other documents (exercise keys) ----------

    @property
    def forward(self) -> list[Shown]:
        """The forward pass of this network, unit by unit."""
        if not self.per_weight:
            return []
        return [shown(symbol, definition, self.notation, self.printer)
                for symbol, definition in self.network.definitions]

    @property
    def error_signals(self) -> list[Shown]:
        """Haykin's e_k = d_k - y_k of this network, for notations that name it."""
        if "error_signal" not in self.notation.symbols:
            return []
        net = self.network
        in_order = NotationPrinter(self.notation, net, settings={"order": "none"}).doprint
        return [Shown(self.tex(error_signal(u)), in_order(sp.Add(net.targets[u], -net[u].a, evaluate=False)),
                      "definition") for u in net.outputs]

    @cached_property
    def layers(self) -> list[dict]:
        """Every generic step per group, output layer first, each citing the equations it uses."""
        sections = []
        for group in self.groups:
            layer, printer = group["layer"], group["printer"]
            shown_at: dict[int, Shown] = {}
            for n, step in enumerate(self.derivation.steps):
                if step.level != "generic" or step.subject != layer.group:
                    continue
                chain = None
                if step.rule == "chain_rule":
                    through = next(e for e in sp.preorder_traversal(step.rhs) if isinstance(e, sp.Derivative))
                    chain = tuple(printer.doprint(e) for e in (step.lhs.expr, step.lhs.variables[0],
                                                               through.variables[0]))
                name = _lecture_name(step, layer)
                if name.startswith("delta_"):  # the definition it follows from, in the notation's sign
                    shown_at[-n - 1] = shown(generic.delta[layer.unit], sp.Derivative(generic.E, generic.z[layer.unit]),
                                             self.notation, printer, "definition", layer)
                if step.rule == "chain_rule" and step.lhs.variables[0].base == generic.w:
                    name = "weight_chain"  # dE/dw = dE/dz dz/dw, which only a weight's gradient uses
                shown_at[n] = replace(shown(step.lhs, step.rhs, self.notation, printer, step.rule, layer),
                                      uses=tuple(shown_at[u].equation for u in step.uses if u in shown_at),
                                      name=name, chain=chain, tag=self.notation.equation_names.get(name, ""))
            sections.append({"name": layer.group, "is_output": layer.is_output, "steps": list(shown_at.values()),
                             "activation": group["activation"].name, "letters": group["letters"], "layer": layer})
        return sections

    # -- the other parts -------------------------------------------------------------------

    @cached_property
    def matrix(self) -> dict | None:
        net = self.network
        if "matrix" not in self.parts or net.layers is None or self.shared_bias:
            return None
        n = self.notation
        printer = MatrixPrinter(n, net, {g["number"]: (g["function"], g["activation"].name) for g in self.groups
                                         if not g["activation"].normalized}, sample=self.batch)
        steps = matrix_form(net, n.weight_order == "from_to", n.delta_sign, n.bias == "weight" and bool(net.biases))
        equations = [self.number(Shown(printer.doprint(s.lhs), printer.doprint(s.rhs), s.rule)) for s in steps]
        shapes = [{"symbol": printer.doprint(w), "rows": w.shape[0], "columns": w.shape[1]}
                  for w in printer.weight_matrices(steps)]
        return {"equations": equations, "shapes": shapes, "augmented": n.bias == "weight" and bool(net.biases),
                "functions": printer.functions_named(), "rows_are_sources": n.weight_order == "from_to"}

    @cached_property
    def figure(self) -> dict | None:
        if "figure" not in self.parts or self.convolutional:  # its units are drawn as grids in its chapter
            return None
        drawn = figures.draw(self.network, self.tex, self.notation)
        return {"tikz": drawn["forward"].tikz(), "backward_tikz": drawn["backward"].tikz(), **drawn}

    @cached_property
    def worked(self) -> dict | None:
        if "example" not in self.parts or self.example is None:
            return None
        return worked(self)

    @cached_property
    def cost(self) -> dict:
        """What backpropagation costs here against finite differences, and the example's saturation."""
        unit = self.definitions["first"]["layer"].unit
        return {**cost.cost(self), "saturation": cost.saturation(self) if self.worked else [],
                "slope": self.definitions["first"]["printer"].doprint(sp.Derivative(generic.g(generic.z[unit]),
                                                                                     generic.z[unit]))}

    @cached_property
    def appendix(self) -> dict | None:
        if "concrete" not in self.parts or not self.per_weight:
            return None
        return concrete(self)

    @cached_property
    def verification(self) -> dict | None:
        if "verification" not in self.parts or self.report is None:
            return None
        by_name = {p.name: p for p in self.network.parameters}
        order = {p: n for n, p in enumerate(in_unit_order(self.network))}
        checks = sorted(self.report.parameters, key=lambda c: order[by_name[c.name]])
        rows = [{"parameter": self.tex(by_name[c.name]), "analytic": c.analytic, "numeric": c.numeric,
                 "rel_error": f"{c.rel_error:.1e}", "kink": c.kink} for c in (checks if self.per_weight else [])]
        return {"report": self.report, "rows": rows, "max_rel_error": f"{self.report.max_rel_error:.1e}"}


def _lecture_name(step: Step, layer: GenericLayer) -> str:
    """Which of the four backpropagation equations ``step`` states, if any (Nielsen's BP1-BP4)."""
    base = getattr(step.lhs, "base", None)
    if step.rule == "local_gradient" and base == generic.delta:
        return "delta_output" if layer.is_output else "delta_hidden"
    if step.rule == "gradient" and isinstance(step.lhs, sp.Derivative):
        return "gradient_weight" if step.lhs.variables[0].base == generic.w else "gradient_bias"
    return ""


def _of_sample(expression):
    """A formula of one sample in mini-batch notes: its error E_n where the formula says E."""
    if isinstance(expression, (list, tuple)):
        return [_of_sample(e) for e in expression]
    return expression.xreplace({generic.E: SAMPLE_E}) if isinstance(expression, sp.Basic) else expression


def _squared_signals(expression: sp.Expr, notation: Notation) -> sp.Expr:
    """E written with Haykin's error signals e_j = d_j - y_j where the notation names them."""
    if "error_signal" not in notation.symbols:
        return expression

    def signal(e):
        if not (isinstance(e, sp.Pow) and e.exp == 2):
            return None
        index = next((x.indices[0] for x in e.base.atoms(sp.Indexed)), None)
        pair = (generic.a[index] - generic.t[index], generic.t[index] - generic.a[index])
        return ERROR_SIGNAL[index] if index is not None and e.base in pair else None

    return expression.replace(lambda e: signal(e) is not None, lambda e: signal(e) ** 2)


def render(derivation: Derivation, example: Example | None = None, report: Report | None = None,
           format: str = "md", templates: Path | None = None, notation: Notation | str = "default",
           parts=PARTS, figure: str | None = None, backward: str | None = None, truncate: int | None = None) -> str:
    """The notes for ``derivation`` as Markdown (``md``) or LaTeX (``tex``) text.

    ``parts`` selects what is shown beyond the lecture formulas (see :data:`PARTS`);
    ``figure`` and ``backward`` are where the Markdown notes find the SVG pictures of the
    network and of its local gradients (file names or data URIs; ``backward`` defaults to
    the file beside ``figure``); ``truncate`` = K shows truncated backpropagation through
    time over the last K steps (recurrent networks).
    """
    if isinstance(notation, str):
        notation = load_notation(notation)
    env = _environment(templates)
    notes = _Notes(derivation, example, report, notation, parts, truncate)
    shown = figure if "figure" in notes.parts else None
    with guarded(templates):
        formatting = env.get_template(f"{format}.j2").module
        return rendered(env.get_template("notes.j2"), dict(notes=notes, n=notation, f=formatting, format=format,
                        svg=shown, backward_svg=shown and (backward or backward_figure(shown)),
                        through_time_svg=shown and through_time_figure(shown)))


def lecture(derivation: Derivation, notation: Notation, example: Example | None = None, parts=()) -> _Notes:
    """What the notes print, for other documents built from the same derivation (exercise sheets)."""
    return _Notes(derivation, example, None, notation, parts)


def render_document(template: str, notes: _Notes, format: str = "md", templates: Path | None = None,
                    **context) -> str:
    """Any document template with the notes' printed content as ``notes`` and the format's macros as ``f``."""
    env = _environment(templates)
    with guarded(templates):
        formatting = env.get_template(f"{format}.j2").module
        return rendered(env.get_template(template), dict(notes=notes, n=notes.notation, f=formatting, format=format,
                                                         **context))


def backward_figure(figure: str) -> str:
    """The file name of the picture of the local gradients, beside the network's ``figure``."""
    path = Path(figure)
    return str(path.with_name(f"{path.stem}-backward{path.suffix}"))


def through_time_figure(figure: str) -> str:
    """The file name of the picture of a recurrent network unrolled, beside the network's ``figure``."""
    path = Path(figure)
    return str(path.with_name(f"{path.stem}-through-time{path.suffix}"))


def write_notes(spec: Spec, directory: Path, formats=("md",), templates: Path | None = None,
                notation: Notation | str = "default", parts=PARTS, stem: str = "notes",
                inputs: Iterable[Path] = (), truncate: int | None = None) -> list[Path]:
    """Derive, verify and render ``spec`` into ``directory``/notes.<format>; the paths written.

    The Markdown notes link to pictures of the network and of its local gradients (and of a
    recurrent network unrolled), written beside them as SVG files (older pictures are
    removed when the new notes have none).  The files are written as one set by
    :func:`files.write_set`, never over one of ``inputs``.
    """
    if isinstance(notation, str):
        notation = load_notation(notation)
    derivation = derive(spec.network)
    worked = example(spec.network, spec.values, spec.learning_rate, derivation, spec.fixed) if "example" in parts else None
    if worked is not None:
        check_finite(worked)  # notes that teach "inf" teach nothing
    report = verify(spec.network, derivation, spec.values) if "verification" in parts else None
    texts = {}
    figure = Path(directory) / f"{stem}.svg"
    pictures = {"forward": figure, "backward": figure.with_name(backward_figure(figure.name)),
                "through_time": figure.with_name(through_time_figure(figure.name))}
    for format in formats:
        texts[Path(directory) / f"{stem}.{format}"] = render(derivation, worked, report, format, templates,
                                                             notation, parts, figure.name, truncate=truncate)
    if "md" in formats and "figure" in parts and isinstance(spec.network, ConvNetwork):
        if convolutional.first_conv(spec.network) is not None:  # a network of pooling and dense layers has no figure
            texts[figure] = convolutional.sliding(spec.network, convolutional.ConvPrinter(notation, None))["figure"].svg()
    elif "md" in formats and "figure" in parts:
        latex = NotationPrinter(notation, spec.network).doprint
        unrolled = through_time.figure(spec.network, latex)
        drawn = ({"forward": None, "backward": None} if through_time.has_chapter(spec.network)  # its first figure
                 else figures.draw(spec.network, latex, notation)) | {"through_time": unrolled}
        texts.update({path: drawn[kind].svg() for kind, path in pictures.items() if drawn[kind] is not None})
    return files.write_set(texts, replaces=pictures.values() if "md" in formats else (), inputs=inputs)
