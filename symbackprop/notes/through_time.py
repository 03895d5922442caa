"""The notes' chapter on backpropagation through time, for a recurrent network.

A recurrent network's notes state its own formulas from the start: the definitions at
step t (:func:`definitions`) and the box of BPTT equations (:func:`equations`), the future
term and the sums over the steps included.  The chapter (:func:`chapter`) derives them,
numbered like the rest of the notes: the output layer at step t, the recursion backwards
in time, each tied weight's sum over its uses (as SymPy derived them in
:mod:`symbackprop.bptt`); the truncated sum when ``derive --truncate K`` asks for it; and
the worked example step by step, a recurrent weight's gradient written out as the sum of
its per-step terms.  The network unrolled (:func:`figures.unrolled`) is the notes' first
figure.
"""
from __future__ import annotations

import sympy as sp

from .. import bptt, derivation
from ..errors import SpecError
from ..network import Network
from ..recurrent import UnrolledNetwork, recurrent_weight
from . import figures
from .printing import ERROR_SIGNAL, NotationPrinter, Shown
from .worked import factor, number

#: The step table shows the activations and local gradients of at most this many units (two
#: columns each: more run off a page), and the sum over the steps at most this many terms.
TABLE_UNITS, SUM_TERMS = 4, 5


def at_step(expression):
    """A formula of one step written at step t: each unit's a_k, z_k, t_k, delta_k becomes
    a_k(t), ... (a SymPy replacement on the feed-forward formula)."""
    if isinstance(expression, (list, tuple)):
        return [at_step(e) for e in expression]
    per_unit = (derivation.a, derivation.z, derivation.t, derivation.delta, ERROR_SIGNAL)
    return expression.replace(lambda e: isinstance(e, sp.Indexed) and e.base in per_unit and len(e.indices) == 1,
                              lambda e: e.base[e.indices[0], bptt.t])


def formulas(network: Network) -> bptt.GenericRecurrent | None:
    """The BPTT formulas of the notes' recurrent layer (its first hidden one), or None for a
    network without the chapter."""
    if not has_chapter(network):
        return None
    first = network.unit_at(0, 1, 0)
    return bptt.derive_recurrent(network.group_by_name[first.group].activation, first.bias is not None)


def definitions(notes, group: dict, batch) -> dict:
    """The network's definitions at step t, numbered in this order: the net input with its
    recurrent term, the activation, the error summed over the steps, the error signal where
    the notation names it, ``batch()`` (the mean over a mini-batch of sequences), the local gradient."""
    generic = notes.recurrent
    z_def = next(s for s in generic.steps if s.rule == "definition" and s.lhs == derivation.z[bptt.j, bptt.t])
    a_def = next(s for s in generic.steps if s.rule == "definition" and s.lhs == derivation.a[bptt.j, bptt.t])
    out = notes.output
    e_def = notes._step(out, "definition", lambda e: e == derivation.E)
    unit = group["layer"].unit
    forward = [notes._show(group, z_def.lhs, z_def.rhs), notes._show(group, a_def.lhs, a_def.rhs)]
    loss = notes._show(out, e_def.lhs, sp.Sum(at_step(notes.squared_signals(e_def.rhs)), (bptt.t, 1, bptt.T)))
    return {"forward": forward, "loss": loss, "signal": notes.signal(at_step), "batch": batch(),
            "delta": notes._show(group, derivation.delta[unit, bptt.t],
                                 sp.Derivative(derivation.E, derivation.z[unit, bptt.t]))}


def equations(notes, group: dict) -> list:
    """The box: the local gradients at step t (the hidden ones with the future term), the
    gradients summed over the steps, and the update."""
    generic, out = notes.recurrent, notes.output
    if out["activation"].normalized:
        final = notes._step(out, "local_gradient", lambda e: getattr(e, "base", None) == derivation.delta)
        output = final.rhs
    else:
        output = notes._step(out, "local_gradient", lambda e: isinstance(e, sp.Derivative)).rhs
    j, i = bptt.j, bptt.i
    shown = [notes._show(out, derivation.delta[out["layer"].unit, bptt.t], at_step(output), name="delta_output"),
             notes._show(group, derivation.delta[j, bptt.t], _with_slope(generic), name="delta_hidden")]
    if generic.gradient_bias is not None:
        shown.append(notes._show(group, sp.Derivative(derivation.E, derivation.b[j]), generic.gradient_bias,
                                 name="gradient_bias"))
    shown += [notes._show(group, sp.Derivative(derivation.E, derivation.w[i, j]), generic.gradient_weight,
                          name="gradient_weight"),
              notes._show(group, sp.Derivative(derivation.E, bptt.r[bptt.source, j]), generic.gradient_recurrent,
                          name="gradient_recurrent")]
    return shown


def _with_slope(generic: bptt.GenericRecurrent) -> sp.Expr:
    """delta_j(t) = g'(z_j(t)) [...]: the recursion with the activation's derivative unnamed,
    as the feed-forward box writes it (the chapter gives the layer's own g')."""
    slope = next(s for s in generic.steps if s.rule == "activation_derivative")
    error = next(s for s in generic.steps if s.rule == "substitute")
    return sp.Mul(slope.lhs, error.rhs, evaluate=False)


def chapter(notes, truncate: int | None) -> dict | None:
    """The chapter's numbered equations and tables for ``notes`` (a rendering ``_Notes``),
    or None for a feed-forward network or a softmax hidden layer (which has no elementwise
    slope)."""
    net = notes.network
    if not isinstance(net, UnrolledNetwork):
        if truncate is not None:
            raise SpecError("--truncate", "applies to a recurrent network (recurrent = true); remove it")
        return None
    if truncate is not None and not 1 <= truncate <= net.steps:
        raise SpecError("--truncate", f"must be a number of steps from 1 to T = {net.steps}, not {truncate}")
    if not has_chapter(net):
        return None
    group = notes.hidden[-1]
    layer = group["layer"]
    printer = NotationPrinter(notes.notation, None, layer)
    generic = notes.recurrent
    by_rule = {}
    for step in generic.steps:
        by_rule.setdefault(step.rule, []).append(step)
    show = lambda step, rule="", uses=(), rhs=None: notes._show(group, step.lhs, step.rhs if rhs is None else rhs,
                                                               rule, uses=uses)
    D = notes.definitions
    output = _output_steps(notes)
    forward = D["forward"][0]
    above, ahead = (show(s, uses=[forward]) for s in by_rule["definition"][2:4])
    paths = show(by_rule["sum_over_successors"][0], "sum_over_successors")
    factors = [show(s, "successor_factor", [n]) for s, n in zip(by_rule["differentiate"][:2], (above, ahead))]
    substituted = show(by_rule["substitute"][0], "substitute", [paths, *factors, D["delta"]])
    slope = show(by_rule["activation_derivative"][0], "activation_derivative", [D["forward"][1]])
    local = show(by_rule["local_gradient"][0], "local_gradient", [substituted, slope])
    tied = []
    for weight_factor, total, gradient in zip(by_rule["differentiate"][2:], by_rule["tied_weight_sum"], by_rule["gradient"]):
        tied.append({"parameter": printer.doprint(gradient.lhs.variables[0]),
                     "sum": show(total, "tied_weight_sum"), "factor": show(weight_factor, "weight_factor", [forward]),
                     "gradient": notes.equation({derivation.w: "gradient_weight", derivation.b: "gradient_bias"}
                                                .get(gradient.lhs.variables[0].base, "gradient_recurrent"))})
    truncated = by_rule["truncated_sum"][0]
    shown_truncated = show(truncated, "truncated_sum", rhs=truncated.rhs.subs(bptt.K, truncate)
                           if truncate is not None else truncated.rhs)
    letters = [printer.doprint(index) for index in (layer.predecessor, layer.unit, layer.successor, bptt.m)]
    drawn = figure(net, notes.tex) if "figure" in notes.parts else None
    return {"figure": drawn, "tikz": drawn.tikz() if drawn else None, "drawable": drawn is not None,
            "left_out": (len(drawn.captions), net.steps - 1) if drawn and drawn.skipped else None,
            "output": output, "above": above, "ahead": ahead, "paths": paths, "factors": factors,
            "substituted": substituted, "slope": slope, "local": local, "tied": tied,
            "truncated": shown_truncated, "truncate": truncate,
            "T": net.steps, "letters": letters, "time": printer.doprint(bptt.t),
            "K": printer.doprint(bptt.K), "recurrent": printer.doprint(bptt.r[bptt.source, bptt.j]),
            "output_unit": notes.output["letters"][1],
            "worked": _worked(notes) if notes.worked else None}


def _output_steps(notes) -> list | None:
    """dE/da_k(t) and delta_k(t) of an output unit at step t: the feed-forward steps at step t
    (a softmax output: its local gradient only, derived as for one step)."""
    out = notes.output
    if out["activation"].normalized:
        return None
    D = notes.definitions
    error = notes._step(out, "differentiate", lambda e: isinstance(e, sp.Derivative) and e.expr == derivation.E
                        and e.variables[0].base == derivation.a)
    chain = notes._step(out, "chain_rule", lambda e: e.variables[0].base == derivation.z)
    local = notes._step(out, "local_gradient", lambda e: isinstance(e, sp.Derivative))
    unit = out["layer"].unit
    derivative = notes._show(out, at_step(error.lhs), at_step(error.rhs), "loss_derivative", uses=[D["loss"]])
    delta = notes._show(out, derivation.delta[unit, bptt.t], at_step([chain.rhs, local.rhs]), "local_chain",
                        uses=[D["delta"], D["forward"][1], derivative])
    return [derivative, delta]


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
