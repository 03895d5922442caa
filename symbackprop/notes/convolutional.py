"""The notes' chapter "Convolutional layers", for a convolutional network, and the formulas of a
conv layer that the notes' box of equations states (:func:`box`), derived and numbered in the chapter.

Every formula is one of :mod:`symbackprop.conv_backprop`'s index-form expressions printed in the
notation (its letters for delta, a, z; K for the kernel): the forward formula with its index
arithmetic, the chain rule through a tied kernel weight, the kernel and bias gradients, the local
gradient of the layer below as a convolution with the flipped kernel, average pooling's
1/|window|.  The numbers are the worked example's: one kernel gradient and one unit's flipped-kernel
sum, each written as the formula's summand at every index where it is not zero (a kernel entry
inside the kernel, an input inside the padding), so that the printed terms add up to the value.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .. import conv_backprop as cb
from .. import derivation as generic
from ..convolution import ConvNetwork
from .figures import PIXELS, UNIT_EM, _svg_label
from .notation import Notation
from .printing import NotationPrinter, Shown, _script, shown
from .worked import number

#: A worked sum shows at most this many terms: the first ones, a \cdots, and the last one.
SUM_TERMS = 9


class ConvPrinter(NotationPrinter):
    """The notation's letters with a conv layer's several indices: z_{o,i,j}, K_{o,c,u,v}."""

    def _print_Indexed(self, expr):
        if len(expr.indices) == 1 and expr.base != cb.K:
            return super()._print_Indexed(expr)
        roles = {generic.z: "pre_activation", generic.delta: "delta", generic.a: "activation", generic.b: "bias"}
        symbol = self.notation.symbols.get("kernel", "K") if expr.base == cb.K else self.notation.symbol(
            roles[expr.base])
        return _script(symbol, ",".join(self._limit(index) for index in expr.indices))


def _summand(expression: sp.Expr) -> tuple[sp.Expr, list[sp.Idx]]:
    """The term of a (nested) sum and its summation indices, outermost first."""
    indices = []
    while isinstance(expression, sp.Sum):
        indices += [limit[0] for limit in expression.limits[::-1]]  # SymPy lists the innermost first
        expression = expression.function
    return expression, indices


def _terms(expression: sp.Expr, constants: dict, grids: list[range], tables: dict) -> list[tuple[tuple, list[float]]]:
    """The summand of ``expression`` at every point of ``grids`` (one range per summation index)
    where each indexed factor lies inside its array: (the term's factors with their indices as
    numbers, the factors' values in the same order)."""
    term, indices = _summand(expression.xreplace(constants))
    found = []
    for point in itertools.product(*grids):
        concrete = term.xreplace(dict(zip(indices, map(sp.Integer, point))))
        values, factors = [], sp.Mul.make_args(concrete)
        for factor in factors:
            if isinstance(factor, sp.Indexed):
                where = tuple(int(n) for n in factor.indices)
                table = tables[factor.base]
                if not all(0 <= n < size for n, size in zip(where, table.shape)):
                    break
                values.append(float(table[where]))
            else:
                values.append(float(factor))
        else:
            found.append((factors, values))
    return found


def _worked_sum(lhs: sp.Expr, terms: list[tuple[tuple, list[float]]], printer: NotationPrinter) -> dict:
    """lhs = the terms symbolically = as numbers = the value, the terms that are zero left out
    (max pooling passes most local gradients on as 0); at most SUM_TERMS terms shown."""
    zeros = sum(1 for _, values in terms if math.prod(values) == 0)
    terms = [term for term in terms if math.prod(term[1]) != 0] or terms[:1]
    kept = terms if len(terms) <= SUM_TERMS else [*terms[:SUM_TERMS - 1], None, terms[-1]]

    def joined(parts: list[str | None]) -> str:
        text = ""
        for n, part in enumerate(parts):
            if part is None:
                text += r" + \cdots"
            elif n and part.startswith("-"):
                text += " - " + part[1:].lstrip()
            else:
                text += (" + " if n else "") + part
        return text

    def product(values: list[float]) -> str:
        return r" \cdot ".join(f"({number(v)})" if v < 0 and n else number(v) for n, v in enumerate(values))

    value = sum(math.prod(values) for _, values in terms)
    rhs = [joined([None if t is None else " ".join(printer.doprint(f) for f in t[0]) for t in kept]),
           joined([None if t is None else product(t[1]) for t in kept]), number(value)]
    return {"shown": Shown(printer.doprint(lhs), " = ".join(rhs)), "count": len(terms), "zeros": zeros,
            "value": value, "elided": len(terms) > SUM_TERMS,
            "products": [math.prod(values) for _, values in terms]}


def _grid(index: sp.Idx, layer) -> range:
    """The values a summation index of the formulas runs over in ``layer``: o over the output
    channels, i and j over the output positions."""
    label = str(index.label).rstrip("'")
    if label == "o":
        return range(layer.shape_out[0])
    return range(layer.shape_out[1 + ["i", "j"].index(label)])


def _tables(example, network: ConvNetwork, l: int, sign: int) -> dict:
    """The input a, the local gradients delta (in the notation's sign) and the kernel K of
    conv layer ``l`` in the worked example (its first sample)."""
    data = example.as_dict()
    first = (lambda x: x) if len(example.values.inputs) == 1 else (lambda x: x[0])
    weights = network.nested_parameters(example.values.parameters)["weights"][l]
    return {generic.a: np.asarray(first(data["a"])[l], dtype=float),
            generic.delta: sign * np.asarray(first(data["delta"])[l], dtype=float),
            cb.K: np.asarray(weights, dtype=float)}


def first_conv(network: ConvNetwork) -> int | None:
    """The first conv layer's place in the stack (None: pooling and dense layers only)."""
    return next((n for n, layer in enumerate(network.stack) if layer.kind == "conv"), None)


def _worked(example, network: ConvNetwork, notation: Notation, printer: NotationPrinter) -> dict | None:
    """In the first conv layer: the gradient of its first kernel entry and the flipped-kernel
    sum of its input's middle unit, each as substituted arithmetic."""
    l = first_conv(network)
    if l is None:
        return None
    layer = network.stack[l]
    dimensions = len(layer.kernel)
    formulas = cb.derive_conv(dimensions, bool(network.biases))
    _, offsets, inputs = cb._positions(dimensions)
    sign = notation.delta_sign
    tables = _tables(example, network, l, sign)
    constants = {cb.s: layer.stride, cb.p: layer.padding}
    at = dict(zip([cb.o, cb.c, *offsets], [0] * (2 + dimensions)))
    kernel_sum, indices = formulas.gradient_kernel.xreplace(at), _summand(formulas.gradient_kernel)[1]
    weight = cb.K[(0, 0, *[0] * dimensions)]
    kernel = _worked_sum(sign * sp.Derivative(generic.E, weight),
                         _terms(kernel_sum, constants, [_grid(x, layer) for x in indices], tables), printer)
    middle = tuple(size // 2 for size in layer.shape_in[1:])
    below_sum = formulas.error_below.xreplace(dict(zip([cb.c, *inputs], [0, *middle])))
    indices = _summand(formulas.error_below)[1]
    unit = generic.a[(0, *middle)]
    flipped = _worked_sum(sign * sp.Derivative(generic.E, unit),
                          _terms(below_sum, constants, [_grid(x, layer) for x in indices], tables), printer)
    gradient = np.asarray(example.as_dict()["grad"]["weights"][l], dtype=float)[(0, 0, *[0] * dimensions)]
    return {"layer": l + 1, "kernel": kernel, "gradient": float(gradient), "flipped": flipped, "sign": sign,
            "unit": printer.doprint(unit), "input": l == 0, "batch": len(example.values.inputs) > 1,
            "weight": printer.doprint(weight)}


def _winner(example, network: ConvNetwork, printer: NotationPrinter, sign: int) -> dict | None:
    """The first window of the first max pooling layer above a layer in the worked example: its
    units with their activations, the one that won, and the pooling unit's local gradient."""
    l = next((n for n, layer in enumerate(network.stack) if layer.kind == "max_pool" and n), None)
    if l is None:
        return None
    layer, data = network.stack[l], example.as_dict()
    first = (lambda x: x) if len(example.values.inputs) == 1 else (lambda x: x[0])
    below = np.asarray(first(data["a"])[l], dtype=float)  # the input of layer l
    window = [(0, *offsets) for offsets in itertools.product(*map(range, layer.kernel))]
    values = [float(below[index]) for index in window]
    won = window[int(np.argmax(values))]  # the first maximum, as the network's Max
    pooled = (0,) * len(layer.shape_out)
    return {"layer": l + 1, "below": l, "pooled": printer.doprint(generic.delta[pooled]),
            "delta": number(sign * np.asarray(first(data["delta"])[l], dtype=float)[pooled]),
            "units": [Shown(printer.doprint(generic.a[index]), number(value)) for index, value in zip(window, values)],
            "winner": printer.doprint(generic.a[won]), "others": len(window) - 1}


def _primed(expression: sp.Expr, free: set) -> sp.Expr:
    """``expression`` with each summation index that prints as the letter of a free index of
    the equation renamed with a prime (o' in dE/dK_o = sum_o' ...): the same sum, readable."""
    letters = {index.label for index in free}
    return expression.xreplace({x: generic.Index(sp.Symbol(f"{x.label}'", integer=True), (x.lower, x.upper))
                                for x in expression.atoms(sp.Idx) if x.label in letters and x not in free})


def box(network: ConvNetwork) -> dict[str, tuple[sp.Expr, sp.Expr]]:
    """The formulas of a conv layer that the notes' box of equations states, by name, as (lhs, rhs):
    the kernel gradient, the bias gradient (with biases) and the flipped-kernel sum below; none
    without a conv layer."""
    if first_conv(network) is None:
        return {}
    formulas = cb.derive_conv(len(network.input_shape) - 1, bool(network.biases))
    gradients = {s.lhs.variables[0].base: s for s in formulas.steps if s.rule == "gradient"}
    flipped = next(s for s in formulas.steps if s.rule == "flipped_kernel")
    named = {"gradient_kernel": gradients[cb.K], "gradient_kernel_bias": gradients.get(generic.b),
             "error_below": flipped}
    return {name: (step.lhs, step.rhs) for name, step in named.items() if step is not None}


def chapter(network: ConvNetwork, notation: Notation, example=None, figure: bool = False,
            number=None, boxed: dict | None = None) -> dict:
    """Everything the chapter prints, in the notation: the formulas of a conv layer (of the
    network's dimensions), pooling, the shapes of every tensor, the worked numbers (with an
    ``example``) and the figure of the kernel sliding over the input (with ``figure``).
    Inside the whole notes, ``number`` numbers its equations and ``boxed`` holds the box's
    numbered equations by name (:func:`box`), which the chapter derives and prints with their numbers."""
    dimensions = len(network.input_shape) - 1
    formulas = cb.derive_conv(dimensions, bool(network.biases))
    printer = ConvPrinter(notation, None)
    number = number or (lambda equation, name="": equation)
    boxed = boxed or {}
    show = lambda lhs, rhs, name="": boxed.get(name) or number(shown(lhs, rhs, notation, printer), name)
    steps = {step.rule: step for step in formulas.steps}
    z_def = formulas.steps[0]
    bias = next((s for s in formulas.steps if s.rule == "gradient" and s.lhs.variables[0].base == generic.b), None)
    kernel = next(s for s in formulas.steps if s.rule == "gradient" and s.lhs.variables[0].base == cb.K)
    kinds = {layer.kind for layer in network.stack}
    outputs, offsets, inputs = cb._positions(dimensions)
    layers = []
    for n, layer in enumerate(network.stack):
        weights = {"conv": (layer.shape_out[0], layer.shape_in[0], *layer.kernel),
                   "dense": (math.prod(layer.shape_in), layer.shape_out[0])}.get(layer.kind)
        layers.append({"number": n + 1, "kind": layer.kind, "input": layer.shape_in, "output": layer.shape_out,
                       "weights": weights, "window": layer.kernel})
    return {
        "dimensions": dimensions, "kernel": printer.doprint(cb.K[(cb.o, cb.c, *offsets)]),
        "letters": {name: printer.doprint(x) for name, x in
                    [("o", cb.o), ("c", cb.c), ("s", cb.s), ("p", cb.p), *((x.label.name, x) for x in outputs + offsets)]},
        "input_index": [printer._limit(index) for index in cb._input_index(outputs, offsets)],
        "window": [printer.doprint(size) for size in [cb.S_h, cb.S_w][-dimensions:]],
        "z": printer.doprint(generic.z[(cb.o, *outputs)]), "a_unit": printer.doprint(generic.a[(cb.c, *inputs)]),
        "forward": [show(z_def.lhs, z_def.rhs),
                    show(generic.a[(cb.o, *outputs)], generic.g(generic.z[(cb.o, *outputs)]))],
        "tied": show(steps["tied_weight_sum"].lhs, _primed(steps["tied_weight_sum"].rhs, {cb.o})),
        "gradients": [show(kernel.lhs, kernel.rhs, "gradient_kernel")]
        + ([show(bias.lhs, bias.rhs, "gradient_kernel_bias")] if bias is not None else []),
        "below": [show(steps["sum_over_successors"].lhs, steps["sum_over_successors"].rhs),
                  show(steps["flipped_kernel"].lhs, steps["flipped_kernel"].rhs, "error_below")],
        "boxed": bool(boxed),
        "average": (show(sp.Derivative(generic.E, generic.a[(cb.c, *inputs)]),
                         cb.derive_average_pool(dimensions)) if "avg_pool" in kinds else None),
        "max_pool": "max_pool" in kinds, "layers": layers,
        "worked": _worked(example, network, notation, printer) if example is not None else None,
        "figure": sliding(network, printer) if figure and first_conv(network) is not None else None,
        "winner": _winner(example, network, printer, notation.delta_sign) if example is not None else None,
    }


#: The widest a grid of the figure may be (cm), and its largest cell; a 1-D layer's two rows, one
#: above the other, may be wider and their cells larger.
GRID_WIDTH, CELL = 6.5, 0.5
ROW_WIDTH, ROW_CELL = 12.0, 0.8
#: How far (cm) the dashed window stands out of the cells it frames: in 1-D it shares cells with the
#: receptive field, and a frame on the same lines would hide it.
OUTSET = 0.08


@dataclass(frozen=True)
class Sliding:
    """The figure's one geometry, in cm (y up), written as TikZ and as SVG: cells of the padded
    input and of the output (``shade`` 0 white, 1 the receptive field or its output unit, 2 the
    padding), outlines (the window at the next position, dashed), arrows (straight, or bent by
    ``bend`` degrees) and the labels."""

    cells: tuple[tuple[float, float, float, int], ...]  # x, y of the lower left corner, side, shade
    outlines: tuple[tuple[float, float, float, float], ...]  # left, bottom, right, top
    arrows: tuple[tuple[tuple[float, float], tuple[float, float], int], ...]  # from, to, bend
    labels: tuple[tuple[float, float, str], ...]  # centre x, y, LaTeX

    def tikz(self) -> str:
        fills = {0: "white", 1: "black!25", 2: "black!6"}
        lines = [r"\begin{tikzpicture}[>=stealth]"]
        lines += [rf"\draw[fill={fills[shade]}] ({x:.2f},{y:.2f}) rectangle ({x + side:.2f},{y + side:.2f});"
                  for x, y, side, shade in self.cells]
        lines += [rf"\draw[dashed,very thick] ({l:.2f},{b:.2f}) rectangle ({r:.2f},{t:.2f});"
                  for l, b, r, t in self.outlines]
        for (x0, y0), (x1, y1), bend in self.arrows:
            path = rf"to[bend left={bend}]" if bend else "--"
            lines.append(rf"\draw[->,thick] ({x0:.2f},{y0:.2f}) {path} ({x1:.2f},{y1:.2f});")
        lines += [rf"\node at ({x:.2f},{y:.2f}) {{${text}$}};" for x, y, text in self.labels]
        return "\n".join(lines + [r"\end{tikzpicture}"])

    def svg(self) -> str:
        points = [(x, y) for x, y, side, _ in self.cells] + [(x + side, y + side) for x, y, side, _ in self.cells]
        points += [(x, y) for x, y, _ in self.labels]
        left, right = min(x for x, _ in points) - 0.5, max(x for x, _ in points) + 0.5
        bottom, top = min(y for _, y in points) - 0.5, max(y for _, y in points) + 0.5
        px = lambda x, y: ((x - left) * PIXELS, (top - y) * PIXELS)
        width, height = (right - left) * PIXELS, (top - bottom) * PIXELS
        fills = {0: "white", 1: "#bfbfbf", 2: "#f0f0f0"}
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
               f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Latin Modern Math, STIX Two Math, serif">',
               '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
               'orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>',
               '<rect width="100%" height="100%" fill="white"/>']
        for x, y, side, shade in self.cells:
            sx, sy = px(x, y + side)
            out.append(f'<rect x="{sx:.1f}" y="{sy:.1f}" width="{side * PIXELS:.1f}" height="{side * PIXELS:.1f}" '
                       f'fill="{fills[shade]}" stroke="black"/>')
        for l, b, r, t in self.outlines:
            sx, sy = px(l, t)
            out.append(f'<rect x="{sx:.1f}" y="{sy:.1f}" width="{(r - l) * PIXELS:.1f}" height="{(t - b) * PIXELS:.1f}" '
                       'fill="none" stroke="black" stroke-width="2.5" stroke-dasharray="6 4"/>')
        for start, end, bend in self.arrows:
            (x0, y0), (x1, y1) = px(*start), px(*end)
            middle = f"Q{(x0 + x1) / 2:.1f},{min(y0, y1) - 0.6 * PIXELS:.1f}" if bend else "L"
            out.append(f'<path d="M{x0:.1f},{y0:.1f} {middle} {x1:.1f},{y1:.1f}" '
                       'fill="none" stroke="black" stroke-width="1.5" marker-end="url(#arrow)"/>')
        out += [_svg_label(*px(x, y), text, UNIT_EM) for x, y, text in self.labels]
        return "\n".join(out + ["</svg>"]) + "\n"


def sliding(network: ConvNetwork, printer: NotationPrinter) -> dict:
    """The first conv layer's padded input and its output, the receptive field of the output's
    middle unit (channel 0) shaded in the input and that unit shaded in the output, the window at
    the next position dashed: in 2-D the two grids side by side with an arrow from the field to its
    unit; in 1-D the output row under the input row, each output unit under the middle of its
    window (a stride shows as the gaps between them), an arrow from each cell of the field to the
    unit.  Call it on a network with a conv layer."""
    l = first_conv(network)
    layer = network.stack[l]
    dimensions = len(layer.kernel)
    outputs, offsets, inputs = cb._positions(dimensions)
    grid = _row(layer) if dimensions == 1 else _grids(layer)
    labels = ((grid["kernel"][0], grid["kernel"][1], printer.doprint(cb.K[(0, 0, *offsets)])),
              (*grid["input"], printer.doprint(generic.a[(cb.c, *inputs)])),
              (*grid["output"], printer.doprint(generic.z[(cb.o, *outputs)])))
    return {"figure": Sliding(grid["cells"], grid["outlines"], grid["arrows"], labels), "layer": l + 1,
            "unit": printer.doprint(generic.z[(0, *grid["unit"][-dimensions:])]), "following": grid["following"],
            "padding": layer.padding, "stride": layer.stride, "below": dimensions == 1}


def _row(layer) -> dict:
    """A 1-D layer: the padded input row above, the output row below it."""
    (length,), (outputs,), (k,) = layer.shape_in[1:], layer.shape_out[1:], layer.kernel
    p, s = layer.padding, layer.stride
    side = min(ROW_CELL, ROW_WIDTH / (length + 2 * p))
    unit = outputs // 2
    following = unit + 1 < outputs  # the window at the next position, if there is one
    field = range(unit * s, unit * s + k)  # in padded coordinates
    top, gap = 1.6, 1.6  # the input row's bottom edge, and the room for the arrows
    cells = [(q * side, top, side, 1 if q in field else 2 if not p <= q < length + p else 0)
             for q in range(length + 2 * p)]
    under = lambda i: (i * s + k / 2 - 0.5) * side  # the left edge of output unit i, under its window's middle
    bottom = top - gap - side
    cells += [(under(i), bottom, side, 1 if i == unit else 0) for i in range(outputs)]
    shift = s if following else -s
    outlines = (((unit * s + shift) * side - OUTSET, top - OUTSET, (unit * s + shift + k) * side + OUTSET,
                 top + side + OUTSET),)
    arrows = tuple((((q + 0.5) * side, top), (under(unit) + side / 2, bottom + side), 0) for q in field)
    return {"cells": tuple(cells), "outlines": outlines, "arrows": arrows, "unit": (0, unit), "following": following,
            "kernel": ((unit * s + k / 2) * side, top + side + 0.5), "input": (-0.8, top + side / 2),
            "output": (-0.8, bottom + side / 2)}


def _grids(layer) -> dict:
    """A 2-D layer: the padded input grid and the output grid side by side."""
    rows_in, columns_in = layer.shape_in[1:]
    rows_out, columns_out = layer.shape_out[1:]
    kh, kw = layer.kernel
    p, s = layer.padding, layer.stride
    side = min(CELL, GRID_WIDTH / (columns_in + 2 * p), GRID_WIDTH / (rows_in + 2 * p))
    unit = (rows_out // 2, columns_out // 2)
    window = [(unit[0] * s + u, unit[1] * s + v) for u in range(kh) for v in range(kw)]  # in padded coordinates
    cells = []
    height_in = (rows_in + 2 * p) * side
    for r, q in itertools.product(range(rows_in + 2 * p), range(columns_in + 2 * p)):
        padding = not (p <= r < rows_in + p and p <= q < columns_in + p)
        cells.append((q * side, height_in - (r + 1) * side, side, 1 if (r, q) in window else 2 if padding else 0))
    gap = 2.0
    x_out = (columns_in + 2 * p) * side + gap
    height_out = rows_out * side
    top_out = height_in - (height_in - height_out) / 2
    for r, q in itertools.product(range(rows_out), range(columns_out)):
        cells.append((x_out + q * side, top_out - (r + 1) * side, side, 1 if (r, q) == unit else 0))
    following = unit[1] + 1 < columns_out  # the window at the next position along the row, if there is one
    shift = s if following else -s
    left = (unit[1] * s + shift) * side
    outlines = ((left, height_in - (unit[0] * s + kh) * side, left + kw * side, height_in - unit[0] * s * side),)
    centre = ((unit[1] * s + kw / 2) * side, height_in - (unit[0] * s + kh / 2) * side)
    target = (x_out + (unit[1] + 0.5) * side, top_out - (unit[0] + 0.5) * side)
    below = -0.45
    return {"cells": tuple(cells), "outlines": outlines, "arrows": ((centre, target, 20),), "unit": unit,
            "following": following, "kernel": (centre[0], height_in + 0.35),
            "input": ((columns_in + 2 * p) * side / 2, below),
            "output": (x_out + columns_out * side / 2, top_out - height_out + below)}
