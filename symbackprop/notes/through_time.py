"""The notes' chapter on backpropagation through time, for a recurrent network.

What the chapter shows (the templates word it): the network unrolled, its copies side by
side (:func:`figures.unrolled`); the BPTT formulas as SymPy derived them
(:mod:`symbackprop.bptt`), printed in the notation with a time index; the truncated sum
when ``derive --truncate K`` asks for it; and the worked example step by step, with a
recurrent weight's gradient written out as the sum of its per-step terms.
"""
from __future__ import annotations

from .. import bptt
from ..errors import SpecError
from ..network import Network
from ..recurrent import UnrolledNetwork, recurrent_weight
from . import figures
from .printing import NotationPrinter, Shown, shown
from .worked import factor, number

#: The step table shows the activations and local gradients of at most this many units (two
#: columns each: more run off a page), and the sum over the steps at most this many terms.
TABLE_UNITS, SUM_TERMS = 4, 5


def chapter(notes, truncate: int | None) -> dict | None:
    """The chapter's equations and tables for ``notes`` (a rendering ``_Notes``), or None
    for a feed-forward network or a softmax hidden layer (which has no elementwise slope)."""
    net = notes.network
    if not isinstance(net, UnrolledNetwork):
        if truncate is not None:
            raise SpecError("--truncate", "applies to a recurrent network (recurrent = true); remove it")
        return None
    if truncate is not None and not 1 <= truncate <= net.steps:
        raise SpecError("--truncate", f"must be a number of steps from 1 to T = {net.steps}, not {truncate}")
    if not has_chapter(net):
        return None
    first = net.unit_at(0, 1, 0)
    group = net.group_by_name[first.group]
    layer = notes.derivation.generic[first.group]
    printer = NotationPrinter(notes.notation, None, layer)
    generic = bptt.derive_recurrent(group.activation, first.bias is not None)
    printed = [shown(step.lhs, step.rhs.subs(bptt.K, truncate) if truncate is not None else step.rhs,
                     notes.notation, printer, step.rule, layer) for step in generic.steps]
    letters = [printer.doprint(index) for index in (layer.predecessor, layer.unit, layer.successor, bptt.m)]
    drawn = figure(net, notes.tex) if "figure" in notes.parts else None
    return {"figure": drawn, "tikz": drawn.tikz() if drawn else None, "drawable": drawn is not None,
            "left_out": (len(drawn.captions), net.steps - 1) if drawn and drawn.skipped else None,
            "steps": [s for s in printed if s.rule != "truncated_sum"],
            "truncated": next(s for s in printed if s.rule == "truncated_sum"), "truncate": truncate,
            "T": net.steps, "letters": letters, "time": printer.doprint(bptt.t),
            "recurrent": printer.doprint(bptt.r[bptt.source, bptt.j]),
            "worked": _worked(notes) if notes.worked else None}


def has_chapter(network: Network) -> bool:
    """Whether the notes have the chapter: a recurrent network whose first hidden layer is
    elementwise (a softmax layer has no slope g'(z_j) of its own)."""
    return (isinstance(network, UnrolledNetwork)
            and not network.group_by_name[network.unit_at(0, 1, 0).group].activation.normalized)


def figure(network: Network, latex) -> figures.Figure | None:
    """The chapter's picture of the unrolled network, if the notes have the chapter and it fits."""
    return figures.unrolled(network, latex) if has_chapter(network) else None


def _worked(notes) -> dict:
    """Per step: the activations and local gradients of the first hidden layer (its first
    :data:`TABLE_UNITS` units); and the gradient of its first recurrent weight as the sum of
    a_m(t-1) delta_j(t) over the steps (its first terms and its last when there are more
    than :data:`SUM_TERMS`)."""
    net, evaluation = notes.network, notes.example.evaluation
    units = range(min(net.sizes[1], TABLE_UNITS))
    sign = notes.notation.delta_sign
    rows = [{"t": step + 1,
             "a": [float(evaluation.a[net.unit_at(step, 1, j).name][0]) for j in units],
             "delta": [sign * float(evaluation.delta[net.unit_at(step, 1, j).name][0]) for j in units]}
            for step in range(net.steps)]
    at_t = lambda tex: tex.removesuffix("(1)") + "(t)"  # the first step's symbol, at any step t
    header_a = [at_t(notes.tex(net.unit_at(0, 1, j).a)) for j in units]
    header_delta = [at_t(notes.tex(net.unit_at(0, 1, j).delta)) for j in units]
    weight = recurrent_weight(0, 0, 0)
    terms = [float(evaluation.a[net.unit_at(step - 1, 1, 0).name][0] * evaluation.delta[net.unit_at(step, 1, 0).name][0])
             for step in range(1, net.steps)]
    written = [factor(x) for x in terms]
    if len(written) > SUM_TERMS:
        written = written[:SUM_TERMS - 2] + [r"\cdots"] + written[-1:]
    total = Shown(rf"\frac{{\partial {notes.E}}}{{\partial {notes.tex(weight)}}}",
                  f"{' + '.join(written)} = {number(evaluation.gradients[weight])}")
    return {"rows": rows, "a": header_a, "delta": header_delta, "weight": notes.tex(weight),
            "terms": terms, "sum": total, "units_left_out": net.sizes[1] - len(units),
            "terms_left_out": max(0, len(terms) - SUM_TERMS + 1) if len(terms) > SUM_TERMS else 0}
