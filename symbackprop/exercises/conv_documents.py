"""What the sheets and the key of a convolutional spec print, through ``conv_sheet.j2`` and
``conv_key.j2``.

The lecture side is the notes' chapter "Convolutional layers" (:func:`notes.convolutional.chapter`:
its forward formula, its figure of the kernel sliding over the input, its derivation steps) and the
dense output layer's own definitions and error function from the network's derivation.  A generic
question is answered by the chapter's steps, then the same formula for one channel, stride 1 and no
padding (the layer ``check`` grades ``grad_kernel`` and ``delta_conv_input`` on), made by SymPy from
the chapter's expression.  A numeric question is worked as the chapter's worked example works its
kernel gradient: the formula's terms with the sheet's numbers in place, the zero terms left out.
The sheet shows only the student's own numbers (image, targets, kernels, weights); every value
computed from them is in the key alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from .. import conv_backprop as cb
from .. import derivation as generic
from .. import grading
from ..convolution import ConvNetwork
from ..derivation import E, derive
from ..examples import example
from ..grading.convolutional import numbered, sheet_parameter, sheet_printer
from ..notes import convolutional as chapter_of
from ..notes.notation import Notation
from ..notes.printing import ERROR_SIGNAL, NotationPrinter, Shown, shown
from ..notes.rendering import _squared_signals
from .arithmetic import number
from .exercise_set import ExerciseSet, Variant
from .questions import Question

#: The most numbers a key prints as one row.
ROW = 8
#: Significant digits of the key's tables, as its worked sums print them (the sheets' numbers have two decimals).
KEY_DIGITS = 4
#: Significant digits of a sheet's numbers: all a spec's own example gives (drawn ones have two decimals).
SHEET_DIGITS = 10
KINDS = {"conv": "convolution", "max_pool": "max pooling", "avg_pool": "average pooling", "dense": "dense"}


@dataclass(frozen=True)
class ConvAsked:
    """One question of a convolutional sheet as the sheet and the key print it."""

    id: str
    kind: str  # grad_kernel, delta_conv_input, or the drawn or fixed kind of a number
    quantity: str  # grad_kernel, delta_conv_input, grad_w or grad_b
    target: str  # what check grades it against
    symbol: str  # LaTeX of what is asked
    numeric: bool
    answer: str  # a right answer, as key.csv holds it
    shown: str  # the same in LaTeX
    layer: int = 0  # a number's layer, counted from 1
    steps: tuple[Shown, ...] = ()  # a derivation's steps, then its answer
    worked: dict | None = None  # a number's substituted sum (notes.convolutional._worked_sum)
    grids: tuple[Shown, ...] = ()  # a number's local gradients and activations, as matrices
    dense: bool = False  # a number of a dense layer (not of a conv layer)
    entry: tuple[int, ...] = ()  # the parameter's indices in its layer's weights[l] (biases[l])


@dataclass(frozen=True)
class ConvLecture:
    """The printed lecture material every sheet of the set shares."""

    notation: Notation
    conv: dict  # notes.convolutional.chapter's dict
    dense: tuple[Shown, ...]  # the dense output layer's z and a
    loss: Shown
    signal: Shown | None  # the notation's error signal e = t - y, where it names one
    letters: dict  # the dense output layer's index letters and symbols
    generic: dict  # the one-channel letters: kernel entry, positions, units
    layers: list[dict]  # the network's description: :func:`layer_rows`


def _one_channel(expression: sp.Expr) -> sp.Expr:
    """A conv formula for one input and one output channel: the channel indices o and c dropped
    from every tensor and their sums removed."""
    term, indices = chapter_of._summand(expression)
    channel = lambda index: str(getattr(index, "label", "")) in ("o", "c")
    term = term.replace(lambda e: isinstance(e, sp.Indexed),
                        lambda e: e.base[tuple(x for x in e.indices if not channel(x))])
    return cb._total(term, *(x for x in indices if not channel(x)))


def _matrix(values, digits: int = KEY_DIGITS) -> sp.Matrix:
    """A tensor's values (a row, or a 2-D table) as a SymPy matrix of numbers to ``digits``
    significant digits, whole ones (a target 1, a local gradient 0) as integers."""
    table = np.atleast_2d(np.asarray(values, dtype=float))
    return sp.Matrix([[sp.Integer(int(x)) if x.is_integer() else sp.Float(f"{x:.{digits}g}") for x in row]
                      for row in table])


class ConvDocuments:
    """Everything the documents of a convolutional set print, computed once."""

    sheet, key = "conv_sheet.j2", "conv_key.j2"
    unrolled = None

    def __init__(self, made: ExerciseSet):
        self.made = made
        self.notation = made.notation_object
        self.network: ConvNetwork = made.spec(made.variants[0]).network
        self.derivation = derive(self.network)
        self.printer = chapter_of.ConvPrinter(self.notation, None)
        conv = chapter_of.chapter(self.network, self.notation, figure=True)
        self.notes = ConvLecture(self.notation, conv, *self._output_layer(), self._generic_letters(),
                                 layer_rows(self.network))
        self.picture = conv["figure"]["figure"].svg()
        self._generic: dict[str, ConvAsked] = {}
        self._places: dict[tuple, list] = {}

    def _output_layer(self) -> tuple:
        """The dense output layer's net input and activation, the error function and its letters,
        from the network's own derivation."""
        group = self.network.groups[-1]
        layer = self.derivation.generic[group.name]
        printer = NotationPrinter(self.notation, None, layer)
        steps = [s for s in self.derivation.steps if s.level == "generic" and s.subject == group.name]
        defined = {getattr(s.lhs, "base", s.lhs): s for s in steps if s.rule == "definition"}
        show = lambda step, rhs=None: shown(step.lhs, step.rhs if rhs is None else rhs, self.notation, printer,
                                            layer=layer)
        loss = show(defined[E], _squared_signals(defined[E].rhs, self.notation))
        signal = None
        if "error_signal" in self.notation.symbols:
            unit = layer.unit
            plain = NotationPrinter(self.notation, None, layer, {"order": "none"})
            signal = Shown(plain.doprint(ERROR_SIGNAL[unit]),
                           plain.doprint(sp.Add(generic.t[unit], -generic.a[unit], evaluate=False)))
        z_def = defined[generic.z]
        letters = {"unit": printer.doprint(layer.unit), "below": printer.doprint(layer.predecessor),
                   "bias": printer.doprint(generic.b[layer.unit]),
                   "target": printer.doprint(generic.t[layer.unit]), "a": printer.doprint(generic.a[layer.unit]),
                   "delta": printer.doprint(generic.delta[layer.unit]),
                   "layer": len(self.network.stack)}
        return (show(z_def), show(defined[generic.a])), loss, signal, letters

    def _generic_letters(self) -> dict:
        doprint = self.printer.doprint
        return {"kernel": doprint(cb.K[(cb.u, cb.v)]), "delta": doprint(generic.delta[(cb.i, cb.j)]),
                "a": doprint(generic.a[(cb.i + cb.u, cb.j + cb.v)]), "unit": doprint(generic.a[(cb.m, cb.n)]),
                "below": doprint(generic.delta[(cb.m, cb.n)]), "K": doprint(cb.K[(cb.m - cb.i, cb.n - cb.j)]),
                "i": doprint(cb.i), "j": doprint(cb.j)}

    # -- the questions ---------------------------------------------------------------------

    def generic(self, question: Question) -> ConvAsked:
        """A derivation: the chapter's steps for any conv layer, then the formula for one channel,
        stride 1 and no padding, which is the answer."""
        if question.kind not in self._generic:
            formulas = cb.derive_conv(len(self.network.input_shape) - 1, bool(self.network.biases))
            simple = {cb.s: 1, cb.p: 0}
            conv, show = self.notes.conv, lambda lhs, rhs: shown(lhs, rhs, self.notation, self.printer)
            dimensions = formulas.dimensions
            _, offsets, inputs = cb._positions(dimensions)
            if question.kind == "grad_kernel":
                general = [conv["tied"], conv["gradients"][0]]
                answer = show(sp.Derivative(E, cb.K[tuple(offsets)]),
                              _one_channel(formulas.gradient_kernel.xreplace(simple)))
            else:
                unit = (cb.c, *inputs)
                slope = sp.Derivative(generic.g(generic.z[unit]), generic.z[unit])
                local = show(generic.delta[unit], slope * sp.Derivative(E, generic.a[unit]))
                general = [*conv["below"], local]
                below = _one_channel(formulas.error_below.xreplace(simple))
                one = tuple(inputs)
                answer = show(generic.delta[one], sp.Derivative(generic.g(generic.z[one]), generic.z[one]) * below)
            self._generic[question.kind] = ConvAsked(question.id, question.kind, question.kind, question.kind,
                                                     answer.lhs, False, answer.rhs, answer.equation,
                                                     steps=(*general, answer))
        return self._generic[question.kind]

    def numeric(self, question: Question, target: str, worked) -> ConvAsked:
        """A parameter's gradient: the local gradients (and the input) it is computed from, the
        formula's terms with the numbers, the value."""
        parsed = grading.parse_target(target, self.network)
        (level, *rest), parameter = parsed.concrete, grading.convolutional.parameter_of(self.network, parsed)
        conv = self.network.stack[level].kind == "conv"
        summed, grids, symbol = (self._kernel_number if conv else self._dense_number)(question.quantity, level,
                                                                                       rest, worked)
        value = float(worked.evaluation.gradients[parameter])
        return ConvAsked(question.id, question.kind, question.quantity, target, symbol, True, f"{value:.10g}",
                         f"{symbol} = {number(value, 10)}", level + 1, worked=summed, grids=tuple(grids),
                         dense=not conv, entry=tuple(rest))

    def _kernel_number(self, quantity: str, level: int, rest: list, worked) -> tuple:
        """A conv layer's kernel entry or bias: the chapter's formula summed over the positions of
        the drawn channel's local gradients (and its input channel), as its worked example does."""
        layer, sign = self.network.stack[level], self.notation.delta_sign
        formulas = cb.derive_conv(len(layer.kernel), bool(self.network.biases))
        tables = chapter_of._tables(worked, self.network, level, sign)
        outputs, offsets, inputs = cb._positions(len(layer.kernel))
        if quantity == "grad_w":
            formula, bound = formulas.gradient_kernel, dict(zip([cb.o, cb.c, *offsets], rest))
        else:
            formula, bound = formulas.gradient_bias, {cb.o: rest[0]}
        asked = sheet_parameter(self.network, quantity, level, rest)
        printer = sheet_printer(self.network, self.notation, level, self.derivation)
        terms = self._terms(formula, bound, level, tables)
        summed = chapter_of._worked_sum(sign * sp.Derivative(E, asked), terms, printer)
        doprint, channel = printer.doprint, rest[0]
        grids = [Shown(doprint(generic.delta[(channel, *outputs)]), doprint(_matrix(tables[generic.delta][channel])))]
        if quantity == "grad_w":
            grids.append(Shown(doprint(generic.a[(rest[1], *inputs)]), doprint(_matrix(tables[generic.a][rest[1]]))))
        return summed, grids, doprint(sp.Derivative(E, asked))

    def _terms(self, formula: sp.Expr, bound: dict, level: int, tables: dict) -> list[tuple[tuple, list[float]]]:
        """:func:`notes.convolutional._terms` of a kernel entry's or bias's formula at ``tables``: which
        terms lie inside the arrays and where each factor reads depend on the entry alone, so SymPy
        works them out once per entry for the class (on tables of each element's own place), and a
        student's terms read their numbers from those places."""
        key = (level, formula, tuple(bound.items()))
        if key not in self._places:
            layer = self.network.stack[level]
            places = {base: np.arange(table.size, dtype=float).reshape(table.shape) for base, table in tables.items()}
            self._places[key] = chapter_of._terms(formula.xreplace(bound), {cb.s: layer.stride, cb.p: layer.padding},
                                                  [chapter_of._grid(x, layer) for x in chapter_of._summand(formula)[1]],
                                                  places)
        return [(factors, [float(tables[factor.base].flat[int(place)]) if isinstance(factor, sp.Indexed) else place
                           for factor, place in zip(factors, places)]) for factors, places in self._places[key]]

    def _dense_number(self, quantity: str, level: int, rest: list, worked) -> tuple:
        """A dense layer's weight w_ij (from unit i of the layer below, flattened) or bias: the
        layer's gradient a_i delta_j (delta_j) with the numbers, beside the layer's input and local
        gradients as rows (of the first sample)."""
        group = self.derivation.generic[f"layer {level + 1}"]  # the derivation counts groups from 1
        printer, sign = sheet_printer(self.network, self.notation, level, self.derivation), self.notation.delta_sign
        data = worked.as_dict()
        first = (lambda x: x) if len(worked.values.inputs) == 1 else (lambda x: x[0])
        below = np.ravel(first(data["a"])[level])  # the layer's input, flattened in C order
        deltas = sign * np.ravel(first(data["delta"])[level])
        asked = sheet_parameter(self.network, quantity, level, rest)
        factors = [(generic.delta[numbered(rest[-1])], deltas[rest[-1]])]
        if quantity == "grad_w":
            factors.insert(0, (generic.a[numbered(rest[0])], below[rest[0]]))
        terms = [(tuple(f for f, _ in factors), [v for _, v in factors])]
        summed = chapter_of._worked_sum(sign * sp.Derivative(E, asked), terms, printer)
        grids = [*_wrapped(generic.a, group.predecessor, below, printer),
                 *_wrapped(generic.delta, group.unit, deltas, printer)]
        return summed, grids, printer.doprint(sp.Derivative(E, asked))

    # -- the variants ----------------------------------------------------------------------

    def variant(self, variant: Variant) -> dict:
        """A variant's numbers, its questions and their solutions."""
        spec = self.made.spec(variant)
        worked = example(self.network, spec.values, spec.learning_rate, self.derivation)
        asked = [self.numeric(q, variant.targets[q.id], worked) if q.numeric else self.generic(q)
                 for q in self.made.questions]
        return {"student": variant.student, "code": self.made.codes.get(variant.student), "asked": asked,
                "numbers": self._numbers(spec), "samples": len(spec.values.inputs),
                "outputs": self._outputs(worked), "has_numeric": any(a.numeric for a in asked)}

    def _numbers(self, spec) -> list[dict]:
        """The sheet's numbers by layer, each tensor a matrix: the input image per channel (of each
        sample of a mini-batch), each conv layer's kernels per output and input channel and its
        biases, each dense layer's weights and biases, the targets (a row per sample)."""
        net, doprint = self.network, self.printer.doprint
        matrix = lambda values: doprint(_matrix(values, SHEET_DIGITS))
        nested = net.nested_parameters(spec.values.parameters)
        dimensions = len(net.input_shape) - 1
        _, offsets, inputs = cb._positions(dimensions)
        samples = len(spec.values.inputs)
        out = [{"layer": 0, "sample": n + 1 if samples > 1 else None,
                "tensors": [Shown(doprint(generic.a[(c, *inputs)]), matrix(channel))
                            for c, channel in enumerate(np.reshape(image, net.input_shape))]}
               for n, image in enumerate(spec.values.inputs)]
        for l, layer in enumerate(net.stack):
            tensors = []
            if layer.kind == "conv":
                kernels = np.asarray(nested["weights"][l], dtype=float)
                tensors = [Shown(doprint(cb.K[(o, c, *offsets)]), matrix(kernels[o, c]))
                           for o, c in np.ndindex(*kernels.shape[:2])]
                if net.biases:
                    tensors += _wrapped(generic.b, cb.o, nested["biases"][l], self.printer, SHEET_DIGITS)
            elif layer.kind == "dense":  # tables (they may be longer than a page), the biases a matrix
                weights = np.asarray(nested["weights"][l], dtype=float)
                out.append({"layer": l + 1, "kind": layer.kind, "tensors": [],
                            "tables": [{"first": start, "rows": [[str(i), *(number(x, SHEET_DIGITS)
                                                                            for x in row[start:start + ROW])]
                                                                 for i, row in enumerate(weights)]}
                                       for start in range(0, weights.shape[1], ROW)]})
                if net.biases:
                    group = self.derivation.generic[f"layer {l + 1}"]
                    tensors += _wrapped(generic.b, group.unit, nested["biases"][l],
                                        sheet_printer(net, self.notation, l, self.derivation), SHEET_DIGITS)
            if tensors:
                out.append({"layer": l + 1, "kind": layer.kind + (" biases" if layer.kind == "dense" else ""),
                            "tensors": tensors})
        targets = spec.values.targets
        output = self.derivation.generic[self.network.groups[-1].name]
        out.append({"layer": None, "tensors": _wrapped(generic.t, output.unit, targets[0], self._output_printer(),
                                                       SHEET_DIGITS) if len(targets) == 1
                    else [Shown(self.notes.letters["target"], matrix(targets))]})
        return out

    def _output_printer(self) -> NotationPrinter:
        return sheet_printer(self.network, self.notation, len(self.network.stack) - 1, self.derivation)

    def _outputs(self, worked) -> list[Shown]:
        """The key's forward and backward numbers of the output layer: its activations and local gradients."""
        ev, net = worked.evaluation, self.network
        first = lambda table: [float(np.ravel(table[u])[0]) for u in net.outputs]
        unit, printer = self.derivation.generic[net.groups[-1].name].unit, self._output_printer()
        return [*_wrapped(generic.a, unit, first(ev.a), printer),
                *_wrapped(generic.delta, unit, [self.notation.delta_sign * x for x in first(ev.delta)], printer)]


def _wrapped(base: sp.IndexedBase, letter, values, printer: NotationPrinter, digits: int = KEY_DIGITS) -> list[Shown]:
    """A vector as a row named by its letter (b_{o} = [...]), or, longer than :data:`ROW`, as rows
    of at most ROW entries named by their first and last entries (b_{0}, ..., b_{7} = [...]), so that
    it fits the page's width."""
    values = list(np.ravel(np.asarray(values, dtype=float)))
    doprint = printer.doprint
    if len(values) <= ROW:
        return [Shown(doprint(base[letter]), doprint(_matrix(values, digits)))]
    rows = []
    for start in range(0, len(values), ROW):
        row = values[start:start + ROW]
        names = [doprint(base[numbered(n)]) for n in (start, start + len(row) - 1)[:len(row)]]
        rows.append(Shown(", \\ldots, ".join(names) if len(row) > 2 else ", ".join(names),
                          doprint(_matrix(row, digits))))
    return rows


def layer_rows(network: ConvNetwork) -> list[dict]:
    """The network's description, layer by layer: kind, shapes, kernel or window, stride, padding, activation."""
    rows = []
    for n, layer in enumerate(network.stack):
        details = {"conv": f"{'x'.join(map(str, layer.kernel))} kernel, stride {layer.stride}, padding {layer.padding}",
                   "dense": "", "max_pool": f"{'x'.join(map(str, layer.kernel))} window",
                   "avg_pool": f"{'x'.join(map(str, layer.kernel))} window"}[layer.kind]
        activation = layer.activation.name if layer.kind in ("conv", "dense") else ""
        rows.append({"number": n + 1, "kind": KINDS[layer.kind], "details": details, "activation": activation,
                     "input": layer.shape_in, "output": layer.shape_out})
    return rows
