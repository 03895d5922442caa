"""The numbers of the notes: the worked example a student redoes by hand (Mazur's way: each
formula with its numbers put in, then the result) and the appendix of concrete formulas.

Concrete formulas are printed in textbook order (g'(z_j), then the sum over the units j
feeds; a bias, then the weights in the order of the units), rebuilt from the network's
own pieces; :func:`textbook_delta` is checked against the derivation in the tests.
"""
from __future__ import annotations

import math

import sympy as sp

from .. import derivation as generic
from ..convolution import ConvNetwork
from ..functions import A, Z
from ..matrix import evaluator
from ..network import Network, Unit
from ..numerics import Values
from .printing import SAMPLE, SAMPLE_E, SAMPLE_ERROR, NotationPrinter, Shown, error_signal, in_notation

#: Samples per table of the units: a larger mini-batch gets more tables, never a wider one.
SAMPLES_PER_TABLE = 2
#: Significant digits of every number the notes print: fixed decimals printed Mazur's
#: dE/dw1 = 0.000438568 as 0.0004 and a small gradient as -0.0000.
SIGNIFICANT = 4


def number(value: float) -> str:
    """A number as the notes print it: :data:`SIGNIFICANT` significant digits, written out
    without an exponent (0.5000, 0.0004386, 12346) down to 10^-6, and zero as 0, never -0.0000."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    exponent = int(f"{value:.{SIGNIFICANT - 1}e}".split("e")[1])
    if exponent < -6 and value != 0:
        return f"{value:.{SIGNIFICANT - 1}e}"
    text = f"{value:.{max(0, SIGNIFICANT - 1 - exponent)}f}"
    return "0" if float(text) == 0 else text


def given(value: float) -> str:
    """A number the user gave (an input, a target): as :func:`number`, without trailing zeros (0.05)."""
    text = number(value)
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def factor(value: float) -> str:
    """A number as a factor of a product: in parentheses when it prints with a minus sign."""
    text = number(value)
    return f"({text})" if text.startswith("-") else text


def by_layer(network: Network, backwards: bool = False) -> list[list[Unit]]:
    """Computing units per layer (per unit for a graph), each layer's units in order."""
    layers: dict = {}
    conv = isinstance(network, ConvNetwork)  # its units have no position; a group is a layer
    for unit in network.computing_units:
        layers.setdefault(unit.group if conv else unit.position[0] if unit.position else unit.name, []).append(unit)
    ordered = list(layers.values())
    return ordered[::-1] if backwards else ordered


def textbook_delta(network: Network, unit: Unit, formula: sp.Expr) -> sp.Expr:
    """delta of a hidden unit as g'(z_j) times the sum over the units it feeds of delta w
    (unevaluated, so it prints in that order); other deltas as derived.  The same for
    either sign of delta: both sides of the recursion change sign together."""
    group = network.group_by_name[unit.group]
    if unit.name in network.outputs or group.activation.normalized:
        return formula
    activation = group.activation
    in_a = activation.derivative_in_activation
    slope = in_a.subs(A, unit.a) if in_a is not None else activation.derivative.subs(Z, unit.z)
    paths = sp.Add(*(sp.Mul(network[s].delta, weight, evaluate=False) for s, weight in network.successors[unit.name]),
                   evaluate=False)
    return slope if slope == 0 else sp.Mul(slope, paths, evaluate=False)


def forward_definition(network: Network, unit: Unit) -> sp.Expr:
    """z = b + w a + ... with the bias first and the weights in the order of the units (a max
    pooling unit's maximum as it is)."""
    if unit.pool == "max":
        return network.pre_activation(unit)
    terms = ([unit.bias] if unit.bias is not None else []) + [
        sp.Mul(edge.weight, network[edge.source].a, evaluate=False) for edge in unit.inputs]
    return sp.Add(*terms, evaluate=False)


class _Substituted(NotationPrinter):
    """The printer with every symbol replaced by its number, products written with x."""

    def __init__(self, notation, network, numbers: dict):
        super().__init__(notation, network, settings={"mul_symbol": "times", "order": "none"})
        self.table.update({s: self.factor(v) for s, v in numbers.items()})

    factor = staticmethod(factor)


def worked(notes) -> dict:
    """The tables of the worked example and the arithmetic of a few of its gradients."""
    ex, n = notes.example, notes.notation
    net, values, evaluation = ex.network, ex.values, ex.evaluation
    sign, tex = n.delta_sign, notes.tex
    samples = len(values.inputs)
    chunks = _chunks(samples, SAMPLES_PER_TABLE)
    forward_units = [u for layer in by_layer(net) for u in layer]
    compiled = evaluator(notes.derivation)
    per_sample = [compiled.evaluate(Values(values.inputs[s:s + 1], values.targets[s:s + 1], values.parameters))
                  for s in range(samples)]
    data = [[given(x) for x in values.inputs[s]] + [given(t) for t in values.targets[s]] + [number(e.loss)]
            for s, e in enumerate(per_sample)]
    units = [{"samples": chunk, "rows": [(tex(u.a), [(number(evaluation.z[u.name][s]), number(evaluation.a[u.name][s]),
                                                     number(sign * evaluation.delta[u.name][s])) for s in chunk])
                                         for u in forward_units]} for chunk in chunks]
    parameters = in_unit_order(net) if notes.per_weight else []
    if not notes.per_weight:
        data, units = [], []
    gradients = [(tex(p), [number(e.gradients[p]) for e in per_sample]) for p in parameters]
    after = compiled.evaluate(Values(values.inputs, values.targets, evaluation.updated)).loss
    return {"samples": samples, "data": data, "units": units,
            "data_header": [tex(u.a) for u in net.inputs] + [tex(net.targets[u]) for u in net.outputs]
            + [notes.E if samples == 1 else tex(SAMPLE_ERROR(generic.E, SAMPLE))],
            "symbols": [n.symbol(role) for role in ("pre_activation", "activation", "delta")],
            "gradients": [{"samples": chunk, "rows": [(symbol, [v[s] for s in chunk]) for symbol, v in gradients]}
                          for chunk in _chunks(samples, 2 * SAMPLES_PER_TABLE)] if samples > 1 else [],
            "fixed": _fixed(net, ex.fixed, tex),
            "parameters": [(tex(p), number(values.parameters[p]), number(evaluation.gradients[p]),
                            number(evaluation.updated[p])) for p in parameters],
            "loss": number(evaluation.loss), "loss_after": number(after), "improved": after < evaluation.loss,
            "shorter": None if after < evaluation.loss else _shorter_step(compiled, ex),
            "learning_rate": f"{ex.learning_rate:g}", "eta": tex(generic.ETA),
            "arithmetic": _arithmetic(notes, per_sample)}


#: How many times a step that raised the error is halved in search of one that lowers it.
HALVINGS = 12


def _shorter_step(compiled, ex) -> dict | None:
    """The largest learning rate eta / 2^k that lowers the error, and the error after that step,
    for notes whose step was too long; None if no halving helps."""
    values, evaluation = ex.values, ex.evaluation
    for k in range(1, HALVINGS + 1):
        rate = ex.learning_rate / 2 ** k
        stepped = {p: v if p in ex.fixed else v - rate * evaluation.gradients[p] for p, v in values.parameters.items()}
        after = compiled.evaluate(Values(values.inputs, values.targets, stepped)).loss
        if after < evaluation.loss:
            return {"learning_rate": f"{rate:g}", "loss_after": number(after)}
    return None


def _fixed(net: Network, fixed, tex) -> dict | None:
    """The parameters the step leaves as they are: "biases" or "weights" when that is all of
    them, else their symbols."""
    if not fixed:
        return None
    named = next((kind for kind, group in (("biases", net.biases), ("weights", net.weights))
                  if set(fixed) == set(group)), None)
    return {"all": named, "symbols": [tex(p) for p in in_unit_order(net) if p in fixed]}


def _chunks(count: int, size: int) -> list[list[int]]:
    return [list(range(start, min(start + size, count))) for start in range(0, count, size)]


def in_unit_order(net: Network) -> list[sp.Symbol]:
    """Parameters unit by unit (from the output back), each unit's bias, then its weights (a
    pooling unit's edges carry dz/da, no parameter)."""
    parameters, seen = set(net.parameters), {}
    for layer in by_layer(net, backwards=True):
        for unit in layer:
            for p in ([unit.bias] if unit.bias is not None else []) + [e.weight for e in unit.inputs]:
                if p in parameters:
                    seen.setdefault(p, None)
    return list(seen)


def _arithmetic(notes, per_sample) -> list[Shown]:
    """Mazur's substituted arithmetic for the first sample: an output delta and gradient,
    a hidden delta (and one of the first hidden layer, from the layer above it) and a
    gradient, in a mini-batch that gradient's mean over the samples, and that weight's update."""
    first = per_sample[0]
    ex, n, derivation = notes.example, notes.notation, notes.derivation
    net, values = ex.network, ex.values
    sign = n.delta_sign
    numbers = {u.a: values.inputs[0][k] for k, u in enumerate(net.inputs)}
    for u in net.computing_units:
        numbers.update({u.z: first.z[u.name][0], u.a: first.a[u.name][0], u.delta: sign * first.delta[u.name][0]})
    for k, u in enumerate(net.outputs):
        numbers[net.targets[u]] = values.targets[0][k]
    numbers.update(values.parameters)
    symbolic = NotationPrinter(n, net, settings={"order": "none"})
    substituted = _Substituted(n, net, numbers)
    lines = []

    signals = {error_signal(u): sp.Add(net.targets[u], -net[u].a, evaluate=False) for u in net.outputs}

    def line(lhs, rhs, value, evaluated=True):
        lhs, rhs = in_notation(lhs, rhs, n, net) if evaluated else (lhs, rhs)
        lines.append(Shown(symbolic.doprint(lhs), " = ".join([symbolic.doprint(rhs),
                                                                substituted.doprint(rhs.xreplace(signals)),
                                                                number(value)])))

    samples = len(values.inputs)
    error = generic.E if samples == 1 else SAMPLE_E  # the first sample's own error E_1 in a mini-batch
    symbolic.table[SAMPLE] = "1"
    output = net[net.outputs[0]]
    line(output.delta, derivation.deltas[output.name], numbers[output.delta])
    line(sp.Derivative(error, output.inputs[0].weight), derivation.gradients[output.inputs[0].weight],
         first.gradients[output.inputs[0].weight])
    # a hidden delta from the output's, and in a deeper network one of the first hidden layer from
    # the hidden layer above it; the gradient and the step are of a weight into the last unit shown
    hidden_layers = [layer for layer in by_layer(net, backwards=True) if layer[0].name not in net.outputs]
    conv = isinstance(net, ConvNetwork)  # a unit that passes a local gradient on (max pooling stops most)
    shown_units = [next((u for u in layer if numbers[u.delta] != 0), layer[0]) if conv else layer[0]
                   for layer in hidden_layers[:1] + hidden_layers[1:][-1:]]
    for hidden in shown_units:
        line(hidden.delta, textbook_delta(net, hidden, derivation.deltas[hidden.name]), numbers[hidden.delta],
             evaluated=False)
    unit = shown_units[-1] if shown_units and not conv else output  # a kernel weight's sum: the chapter's
    weight = unit.inputs[0].weight
    if not conv:
        line(sp.Derivative(error, weight), derivation.gradients[weight], first.gradients[weight])
    if samples > 1:
        lines.append(_mean(symbolic, weight, [e.gradients[weight] for e in per_sample],
                           ex.evaluation.gradients[weight]))
    gradient = sp.Dummy("gradient")  # dE/dw by its name and its number (a mini-batch's: the mean)
    substituted.table[gradient] = substituted.factor(ex.evaluation.gradients[weight])
    symbolic.table[gradient] = symbolic.doprint(sp.Derivative(generic.E, weight))
    substituted.table[generic.ETA] = f"{ex.learning_rate:g}"
    if n.update == "change":  # Haykin's delta rule, Delta w_ji = eta delta_j y_i, as he writes the step
        change = ex.evaluation.updated[weight] - values.parameters[weight]
        if samples > 1:  # his rule is one sample's; a mini-batch steps by the mean gradient (Haykin 2009, sec. 4.3)
            step = sp.Mul(-1, generic.ETA, gradient, evaluate=False)
            lines.append(Shown(symbolic.doprint(sp.Symbol("Delta") * weight), " = ".join(
                [symbolic.doprint(step), substituted.doprint(step), number(change)])))
            return lines
        lhs, rhs = in_notation(sp.Symbol("Delta") * weight, -generic.ETA * derivation.gradients[weight], n, net)
        deltas = {u.delta for u in net.computing_units}
        if isinstance(rhs, sp.Mul):  # in his order: eta, then delta_j, then y_i
            rhs = sp.Mul(*sorted(rhs.args, key=lambda x: (x != generic.ETA, not x.free_symbols & deltas)),
                         evaluate=False)
        line(lhs, rhs, change, evaluated=False)
        return lines
    update = sp.Add(weight, sp.Mul(-1, generic.ETA, gradient, evaluate=False), evaluate=False)
    lines.append(Shown(symbolic.doprint(weight), " = ".join(
        [symbolic.doprint(update), substituted.doprint(update), number(ex.evaluation.updated[weight])]),
        relation=r"\leftarrow"))
    return lines


#: Terms of a mean written out in full; more are shown as the first ones, dots and the last.
MEAN_TERMS = 4


def _mean(symbolic: NotationPrinter, weight: sp.Symbol, gradients: list[float], mean: float) -> Shown:
    """dE/dw = 1/N sum_n dE_n/dw = 1/N (g_1 + ... + g_N) = the mean, the averaging written out."""
    count = len(gradients)
    terms = [factor(g) for g in gradients]
    if count > MEAN_TERMS:
        terms = terms[:MEAN_TERMS - 2] + [r"\cdots"] + terms[-1:]
    symbolic.table[SAMPLE] = symbolic.notation.letters.sample[0]
    average = sp.Mul(sp.Rational(1, count), sp.Sum(sp.Derivative(SAMPLE_E, weight), (SAMPLE, 1, count)),
                     evaluate=False)
    written = symbolic.doprint(average)
    one_over = symbolic.doprint(sp.Rational(1, count))
    return Shown(symbolic.doprint(sp.Derivative(generic.E, weight)),
                 f"{written} = {one_over} ({' + '.join(terms)}) = {number(mean)}")


def concrete(notes) -> dict:
    """The appendix: every unit's forward pass and delta, every parameter's gradient, in order."""
    n, net, derivation = notes.notation, notes.network, notes.derivation
    printer = NotationPrinter(n, net, settings={"order": "none"})
    show = lambda lhs, rhs, evaluated=True: Shown(*(printer.doprint(e) for e in (
        in_notation(lhs, rhs, n, net) if evaluated else (lhs, rhs))))
    definitions = dict(net.definitions)
    forward = [[show(u.z, forward_definition(net, u), False), show(u.a, definitions[u.a], False)]
               for layer in by_layer(net) for u in layer]
    deltas = [show(u.delta, textbook_delta(net, u, derivation.deltas[u.name]), u.name in net.outputs)
              for layer in by_layer(net, backwards=True) for u in layer]
    gradients = [show(sp.Derivative(generic.E, p), derivation.gradients[p]) for p in in_unit_order(net)]
    tied = any(s.rule == "tied_weight_sum" for s in derivation.steps)
    return {"forward": [s for pair in forward for s in pair], "deltas": deltas, "gradients": gradients, "tied": tied}
