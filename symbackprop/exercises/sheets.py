"""An exercise set -> sheets, keys and ``key.csv``, through the templates ``sheet.j2`` and ``key.j2``.

Code decides what each document holds (which lecture steps solve a question, which numbers
a variant has, what the right answer is) and prints every formula with the notation's
printer; the templates word it, with the macros of ``md.j2`` and ``tex.j2``.  The
derivation is done once: every variant has the same network, only the numbers differ.
"""
from __future__ import annotations

import copy
import csv
import io
import re
from dataclasses import dataclass, replace
from pathlib import Path

import markupsafe
import numpy as np
import sympy as sp

from .. import bptt
from ..notes import rendering
from ..derivation import E, derive
from ..examples import Example, example
from ..convolution import ConvNetwork
from ..files import check_targets, replace_folder
from ..network import layer_bias, layer_weight
from ..recurrent import recurrent_weight
from ..notes.printing import NotationPrinter, in_notation, shown
from . import access, roster
from .arithmetic import Line, WorkedNumbers, number
from .conv_documents import ConvDocuments
from .exercise_set import ExerciseSet, Variant, check_replaceable, write_text

FORMATS = ("md", "tex")
#: Which step of a layer's lecture formulas answers each kind of generic question.
ANSWERING_STEP = {"delta": "delta_{where}", "grad_w": "gradient_weight", "grad_b": "gradient_bias",
                  "update_w": "gradient_descent"}
_INDICES = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Asked:
    """One question as a sheet and a key print it."""

    id: str
    kind: str  # the question's kind (delta_output, grad_w, ...)
    quantity: str  # delta, grad_w, grad_b or update_w
    target: str  # what check grades it against
    symbol: str  # LaTeX of what is asked: \delta_k, \frac{\partial E}{\partial w^{(1)}_{12}}, ...
    numeric: bool
    output: bool  # generic questions: about an output unit
    answer: str  # a right answer, as key.csv holds it
    shown: str  # the same in LaTeX
    layer: dict | None = None  # generic: the lecture section that answers it
    steps: tuple = ()  # generic: the lecture steps that derive it
    continues: str = ""  # generic: the earlier question whose derivation it goes on from
    lines: tuple[Line, ...] = ()  # numeric: the substituted arithmetic


class _Documents:
    """Everything the documents of one set print, computed once."""

    sheet, key = "sheet.j2", "key.j2"

    def __init__(self, made: ExerciseSet):
        self.made = made
        self.notation = made.notation_object
        first = made.spec(made.variants[0])
        self.network = first.network
        self.derivation = derive(self.network)
        self.notes = rendering.lecture(self.derivation, self.notation, parts=("figure",))
        self.printer = NotationPrinter(self.notation, self.network)
        chapter = self.notes.through_time
        #: a recurrent network drawn unrolled, one copy per step side by side, as its notes draw it
        self.unrolled = chapter["figure"] if chapter else None
        self.picture = (self.unrolled or self.notes.figure["forward"]).svg()

    def generic(self, question, derived: dict) -> Asked:
        """A derivation question, solved by the lecture steps of its layer up to the formula asked;
        steps an earlier question of the sheet derived (``derived``: layer -> (question, steps shown))
        are not repeated."""
        if question.through_time:
            return self._through_time(question)
        output = question.kind.endswith("_output")
        layer = next(section for section in self.notes.layers if section["is_output"] == output)
        wanted = ANSWERING_STEP[question.quantity].format(where="output" if output else "hidden")
        steps = list(layer["steps"])
        if wanted == "gradient_descent":
            end = len(steps) - 1
        else:
            end = next(n for n, s in enumerate(steps) if s.name == wanted)
        answer = steps[end]
        earlier, shown = derived.get(layer["name"], ("", frozenset()))
        # a local gradient needs no chain rule through a weight: that step waits for a gradient question
        used = [n for n in range(end + 1) if n not in shown and (steps[n].name != "weight_chain"
                                                                 or wanted.startswith("gradient"))]
        derived[layer["name"]] = (question.id, shown | set(used)) if used else (earlier, shown)
        return Asked(question.id, question.kind, question.quantity, question.kind, answer.lhs, False, output,
                     self._readable(answer, layer["name"]), answer.equation, layer,
                     tuple(steps[n] for n in used) or (answer,), earlier if shown else "")

    def _through_time(self, question) -> Asked:
        """BPTT's delta or a recurrent weight's gradient, solved by the steps of the notes' chapter
        *Backpropagation through time*: the recursion backwards in time, or the sum over the steps
        (the weight named r_ij, unit i at t-1 to unit j at t, as ``check`` and recurrent_weights[h][i][j]
        name it)."""
        chapter, group = self.notes.through_time, self.notes.hidden[-1]
        section = {"name": group["name"], "letters": chapter["letters"], "layer": group["layer"], "time": chapter["time"]}
        if question.kind == "delta_hidden_bptt":
            above, ahead, (first, second) = chapter["above"], chapter["ahead"], chapter["factors"]
            steps = [replace(above, rule="definition"), replace(ahead, rule="definition"),
                     replace(chapter["paths"], rule="sum_through_time"),
                     first, replace(second, rule="differentiate", uses=()), chapter["substituted"], chapter["slope"],
                     chapter["local"]]
        else:
            by_rule: dict = {}
            for step in self.notes.recurrent.steps:
                by_rule.setdefault(step.rule, []).append(step)
            # the chapter's r_mj is the target's r_ij: its source printed with the letter of the unit
            # feeding j (i), in j's own layer
            printer = copy.copy(group["printer"])
            printer.letters = {**printer.letters, str(bptt.source.label): printer.letters[str(group["layer"].predecessor.label)]}
            show = lambda step, rule, uses=(): replace(shown(step.lhs, step.rhs, self.notation, printer, rule,
                                                             group["layer"]), uses=uses)
            # the recurrent weight is the first tied weight of the chapter (its sums and factors in that order)
            steps = [show(by_rule["tied_weight_sum"][0], "tied_weight_sum"),
                     show(by_rule["differentiate"][2], "weight_factor"),
                     show(by_rule["gradient"][0], "gradient", (self.notes.definitions["delta"].equation,))]
        steps = [replace(step, tag="") for step in steps]
        answer = steps[-1]
        return Asked(question.id, question.kind, question.quantity, question.kind, answer.lhs, False, False,
                     answer.rhs, answer.equation, section, tuple(steps))

    def _readable(self, answer, group: str) -> str:
        """The answer as ``check`` reads it: the right-hand side of the lecture formula (the left one
        is the question), or, where the activation's derivative is a function of z (ReLU's cases,
        softplus's exponentials), the same with that derivative left as g'(z_j), as lectures write it."""
        steps = [s for s in self.derivation.steps if s.level == "generic" and s.subject == group
                 and s.rule == "local_gradient"]
        named = next((s for s in steps if not isinstance(s.lhs, sp.Derivative)), None)
        if named is None or answer.rule != "local_gradient" or not named.rhs.atoms(sp.Function):
            return answer.rhs
        unworked = next(s for s in steps if isinstance(s.lhs, sp.Derivative))
        layer = self.derivation.generic[group]
        _, rhs = in_notation(named.lhs, unworked.rhs, self.notation, None, layer)
        return NotationPrinter(self.notation, None, layer).doprint(rhs)

    def numeric(self, question, target: str, worked: Example, numbers: WorkedNumbers | None) -> Asked:
        level, *rest = (int(x) for x in _INDICES.findall(target))
        quantity = question.quantity
        if quantity == "grad_r":
            return self._recurrent_number(question, target, worked, numbers, level, *rest)
        ev, sign = worked.evaluation, self.notation.delta_sign
        unit = self.network[f"[{level}][{rest[-1]}]"]
        if quantity == "delta":
            symbol, value = unit.delta, sign * float(np.mean(ev.delta[unit.name]))
        else:
            parameter = layer_bias(level, rest[0]) if quantity == "grad_b" else layer_weight(level, *rest)
            symbol = parameter if quantity == "update_w" else sp.Derivative(E, parameter)
            value = ev.updated[parameter] if quantity == "update_w" else ev.gradients[parameter]
        lines = ()
        if numbers is not None:
            lines = numbers.backward([unit.name])
            if quantity != "delta":
                lines.append(numbers.gradient(parameter))
            if quantity == "update_w":
                lines += numbers.update(parameter)
        symbol = self.printer.doprint(symbol)
        return Asked(question.id, question.kind, quantity, target, symbol, True, unit.name in self.network.outputs,
                     f"{value:.10g}", f"{symbol} = {number(value, 10)}", lines=tuple(lines))

    def _recurrent_number(self, question, target: str, worked: Example, numbers: WorkedNumbers | None,
                          level: int, source: int, unit: int) -> Asked:
        """dE/dr_ij through time: the local gradients of unit j at every step (backwards in time),
        the derivation's sum of the per-step terms a_i(t-1) delta_j(t), and those terms' values."""
        weight = recurrent_weight(level, source, unit)
        value = worked.evaluation.gradients[weight]
        lines = ()
        if numbers is not None:
            units = [self.network.unit_at(step, level + 1, unit).name for step in range(self.network.steps)]
            lines = (*numbers.backward(units), *numbers.through_time(weight))
        symbol = self.printer.doprint(sp.Derivative(E, weight))
        return Asked(question.id, question.kind, "grad_r", target, symbol, True, False, f"{value:.10g}",
                     f"{symbol} = {number(value, 10)}", lines=lines)

    def variant(self, variant: Variant) -> dict:
        """A variant's numbers, its questions and their solutions."""
        spec = self.made.spec(variant)
        worked = example(self.network, spec.values, spec.learning_rate, self.derivation)
        single = len(spec.values.inputs) == 1
        numbers = WorkedNumbers(self.derivation, worked, self.notation) if single else None
        derived: dict = {}
        asked = [self.numeric(q, variant.targets[q.id], worked, numbers) if q.numeric else self.generic(q, derived)
                 for q in self.made.questions]
        return {"student": variant.student, "code": self.made.codes.get(variant.student), "asked": asked, "numbers": self._numbers(spec),
                "learning_rate": number(spec.learning_rate), "samples": len(spec.values.inputs),
                "forward": numbers.forward() if numbers else [],
                "has_numeric": any(a.numeric for a in asked)}

    def _numbers(self, spec) -> list[tuple[str, str]]:
        """(symbol, value) of every input, target and parameter (a mini-batch: per sample)."""
        net, values = self.network, spec.values
        shown = lambda column: ", ".join(number(x) for x in column)
        rows = [(self.printer.doprint(u.a), shown(values.inputs[:, n])) for n, u in enumerate(net.inputs)]
        rows += [(self.printer.doprint(net.targets[u]), shown(values.targets[:, n])) for n, u in enumerate(net.outputs)]
        rows += [(self.printer.doprint(p), number(values.parameters[p])) for p in net.parameters]
        return rows


#: How a student id is shown literally in each format (html: the answer page's copy of a sheet).
ESCAPES = {"md": roster.markdown_text, "tex": roster.latex_text, "html": markupsafe.escape}


def _documents(made: ExerciseSet) -> _Documents | ConvDocuments:
    """The documents of a layered, recurrent or graph set, or of a convolutional one."""
    if isinstance(made.spec(made.variants[0]).network, ConvNetwork):
        return ConvDocuments(made)
    return _Documents(made)


def _context(documents: _Documents | ConvDocuments, format: str) -> dict:
    return {"escape": ESCAPES[format], "net": documents.network, "per_student": documents.made.per_student,
            "unrolled": documents.unrolled is not None}


class SheetRenderer:
    """One student's sheet at a time, in one format: the answer page renders a sheet when its
    student first opens it (rendering every sheet of a class of 300 at start took 4 s)."""

    def __init__(self, made: ExerciseSet, format: str = "html", templates: Path | None = None):
        self.documents, self.format, self.templates = _documents(made), format, templates
        self.context = _context(self.documents, format)
        self.figure = self.documents.picture

    def __call__(self, variant: Variant) -> str:
        return rendering.render_document(self.documents.sheet, self.documents.notes, self.format, self.templates,
                                         v=self.documents.variant(variant), svg="sheet.svg", **self.context)


def render(made: ExerciseSet, formats=FORMATS, templates: Path | None = None) -> dict[str, str]:
    """Every file of the set: relative path -> text."""
    documents = _documents(made)
    variants = [documents.variant(v) for v in made.variants]
    picture = documents.picture
    files = {"exercises.toml": write_text(made), "key.csv": key_csv(variants)}
    if made.codes:
        files["codes.csv"] = access.codes_csv({**made.codes, **made.retired_codes})
    for format in formats:
        context = _context(documents, format)
        for variant in variants:
            folder = f"{variant['student']}/" if variant["student"] is not None else ""
            files[f"{folder}sheet.{format}"] = rendering.render_document(
                documents.sheet, documents.notes, format, templates, v=variant, svg="sheet.svg", **context)
            if format in ("md", "html"):
                files[f"{folder}sheet.svg"] = picture
        files[f"key.{format}"] = rendering.render_document(documents.key, documents.notes, format, templates,
                                                           variants=variants, svg="key.svg", **context)
        if format == "md":
            files["key.svg"] = picture
    return files


def key_csv(variants: list[dict]) -> str:
    """``id,student,question,answer``: a right answer to every question of every variant."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "student", "question", "answer"])
    for variant in variants:
        student = variant["student"] or ""
        for asked in variant["asked"]:
            writer.writerow([f"{student}/{asked.id}" if student else asked.id, student, asked.id, asked.answer])
    return out.getvalue()


def write(made: ExerciseSet, directory: str | Path, formats=FORMATS, templates: Path | None = None,
          inputs=(), force: bool = False, flag: str = "--force") -> list[Path]:
    """Render the whole set, then make it the content of ``directory`` in one step (all files, or none
    changed; other files there are kept), never over one of ``inputs`` (checked first: that is the
    data loss) nor over a set made with other options unless ``force``; ``codes.csv`` private."""
    texts = render(made, formats, templates)
    check_targets([Path(directory) / name for name in texts], inputs)
    check_replaceable(made, Path(directory), force, flag)
    return replace_folder(Path(directory), texts, inputs, {"codes.csv": 0o600})
