"""Issue 24: the notes of the whole course as a lecturer hands them out: Mazur's own example
reproduced (one bias per layer, kept fixed), numbers to four significant digits, the
recurrent and mini-batch boxes stating the formulas the network really has, Nielsen's
eq. (2) true for every layer, and the cost/saturation section computed from the network."""
import json
import math
import shutil
import re
import subprocess
import sys

import numpy as np
import pytest

import symbackprop as sb
from symbackprop.notes.worked import number

import katex_node
from compiling import compile_tex, requires_pdflatex

#: Mazur (2015), "A Step by Step Backpropagation Example", transcribed: one bias per layer
#: (b1 = 0.35, b2 = 0.60), kept fixed by the update.
MAZUR = """
[network]
layers = [2, 2, 2]
activation = ["sigmoid", "sigmoid"]
loss = "half_sse"
bias = "shared"

[example]
inputs = [0.05, 0.10]
targets = [0.01, 0.99]
learning_rate = 0.5
weights = [[[0.15, 0.25], [0.20, 0.30]], [[0.40, 0.50], [0.45, 0.55]]]
biases = [0.35, 0.60]
fixed = ["biases"]
"""
#: His published numbers: E_total before the step, w5+ and w1+ after it, E_total after it.
#: His 0.291027924 carries his rounding: his own published updated weights give 0.2910277737.
MAZUR_E, MAZUR_W5, MAZUR_W1, MAZUR_E_AFTER = 0.298371109, 0.35891648, 0.149780716, 0.291027924


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False)


def mazur_numpy(weights, biases=(0.35, 0.60)):
    """Mazur's network in NumPy, written from his article: E_total at these weights."""
    w1, w2, w3, w4, w5, w6, w7, w8 = weights
    sigmoid = lambda z: 1 / (1 + np.exp(-z))
    h1, h2 = sigmoid(w1 * 0.05 + w2 * 0.10 + biases[0]), sigmoid(w3 * 0.05 + w4 * 0.10 + biases[0])
    o1, o2 = sigmoid(w5 * h1 + w6 * h2 + biases[1]), sigmoid(w7 * h1 + w8 * h2 + biases[1])
    return 0.5 * (0.01 - o1) ** 2 + 0.5 * (0.99 - o2) ** 2


def test_mazur_spec_reproduces_his_published_numbers(tmp_path):
    spec = tmp_path / "mazur.toml"
    spec.write_text(MAZUR)
    result = run("example", str(spec), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["loss"] == pytest.approx(MAZUR_E, abs=1e-9)
    updated = data["updated"]
    assert updated["weights"][1][0][0] == pytest.approx(MAZUR_W5, abs=1e-8)
    assert updated["weights"][0][0][0] == pytest.approx(MAZUR_W1, abs=1e-9)
    assert updated["biases"] == [0.35, 0.60]  # fixed, as he keeps them
    assert len(data["grad"]["biases"]) == 2 and all(isinstance(g, float) for g in data["grad"]["biases"])
    # his w1..w8: w1 = i1->h1, w2 = i2->h1, w3 = i1->h2, w4 = i2->h2, w5 = h1->o1, w6 = h2->o1, ...
    (w1, w3), (w2, w4) = updated["weights"][0]
    (w5, w7), (w6, w8) = updated["weights"][1]
    after = mazur_numpy([w1, w2, w3, w4, w5, w6, w7, w8])
    assert after == pytest.approx(MAZUR_E_AFTER, abs=2e-7)


def test_mazur_notes_show_his_numbers_and_one_bias_per_layer(tmp_path):
    spec = tmp_path / "mazur.toml"
    spec.write_text(MAZUR)
    result = run("derive", str(spec), "--format", "md", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out" / "notes.md").read_text()
    assert "$E = 0.2984$ before the step and is $E = 0.2910$ after it" in text
    assert "| 0.4000 | 0.08217 | 0.3589 |" in text  # w5: value, gradient, updated
    assert "= 0.0004386$$" in text  # his dE/dw1 = 0.000438568, not 0.0004
    assert "Every parameter but the biases (kept fixed" in text
    assert "| ${b^{(1)}}$ | 0.3500 |" in text and "b^{(1)}_{1}" not in text
    # the lecture formulas: one bias b in every net input, its gradient the sum of the layer's deltas
    assert "z_{j} = b + \\sum_{i}" in text
    assert "\\frac{\\partial E}{\\partial b} = \\sum_{j} \\delta_{j}" in text


@pytest.mark.parametrize("network, example, message", [
    ('layers = [2, 2, 1]\nbias = "one"', "", 'network.bias: must be true, false or "shared"'),
    ('layers = [2, 2, 1]\nbias = "shared"\nrecurrent = true\nsteps = 2', "", '"shared" applies to a feed-forward'),
    ('layers = [2, 2, 1]\nbias = "shared"', "biases = [[0.1, 0.2], [0.3]]", "example.biases[0]: must be a number"),
    ('layers = [2, 2, 1]', 'fixed = ["biasses"]', "did you mean 'biases'"),
    ('layers = [2, 2, 1]', 'fixed = "biases"', "example.fixed: must be a list"),
])
def test_bad_shared_bias_or_fixed_is_one_line_exit_two(tmp_path, network, example, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(f"[network]\n{network}\n[example]\n{example}\n")
    result = run("derive", str(spec), "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_fixed_parameter_names_keep_their_values():
    spec = sb.from_dict({"network": {"layers": [2, 2, 1]},
                         "example": {"fixed": ["w[0][0][0]", "b[1][0]"], "seed": 3}})
    worked = sb.example(spec.network, spec.values, spec.learning_rate, fixed=spec.fixed)
    free = sb.example(spec.network, spec.values, spec.learning_rate)
    for p in spec.network.parameters:
        kept = p.name in ("w[0][0][0]", "b[1][0]")
        assert (worked.evaluation.updated[p] == spec.values.parameters[p]) == kept
        if not kept:
            assert worked.evaluation.updated[p] == free.evaluation.updated[p]


@pytest.mark.parametrize("value", [0.298371109, 0.000438568, -0.0262, 0.5, 12.3456, -7.25e-5, 0.99999, 1e-6])
def test_numbers_have_four_significant_digits(value):
    text = number(value)
    assert float(text) == pytest.approx(float(f"{value:.4g}"), rel=1e-12)
    assert len(re.sub(r"^-?0\.0*", "", text).replace(".", "").replace("-", "")) == 4


@pytest.mark.parametrize("value", [-0.0, -1e-30 * 0, 0.0])
def test_zero_is_never_minus_zero(value):
    assert number(value) == "0"


def forward_equation(notation: str, spec) -> str:
    text = sb.render(sb.derive(spec.network), format="md", notation=notation, parts=())
    return next(line for line in text.splitlines() if line.endswith(r"\tag{2}$$"))


@pytest.mark.parametrize("activation, loss, letter", [
    ("sigmoid,identity", "half_sse", "g"),  # the default network: a linear output
    ("sigmoid,softmax", "cross_entropy", "g"),
    ("sigmoid,sigmoid", "half_sse", r"\sigma"),  # sigma in every layer: Nielsen's own eq. (23)
])
def test_nielsen_eq_2_is_true_for_every_layer(activation, loss, letter):
    line = forward_equation("nielsen", sb.compact("2-3-2", activation, loss))
    assert line == rf"$${{a^{{l}}_{{j}}}} = {letter}({{z^{{l}}_{{j}}}}) \tag{{2}}$$"


def test_nielsen_names_each_layers_function_as_g():
    text = sb.render(sb.derive(sb.compact("2-3-1").network), format="md", notation="nielsen", parts=())
    assert r"In layer 2 $g({z^{l}_{j}}) = \sigma({z^{l}_{j}}) = \frac{1}{1 + e^{- {z^{l}_{j}}}}$" in text
    assert r"in layer 3 (the output) $g({z^{L}_{j}}) = {z^{L}_{j}}$" in text


XOR = sb.from_dict({"network": {"layers": [2, 2, 1], "activation": ["sigmoid", "sigmoid"]},
                    "example": {"inputs": [[0, 0], [0, 1], [1, 0], [1, 1]], "targets": [[0], [1], [1], [0]]}})


def xor_notes() -> str:
    derivation = sb.derive(XOR.network)
    worked = sb.example(XOR.network, XOR.values, XOR.learning_rate, derivation)
    return sb.render(derivation, worked, format="md", parts=("example",))


def box(text: str) -> str:
    return text[text.index("**The equations"):text.index("**The algorithm")]


def test_mini_batch_box_states_the_samples_gradients_and_their_means():
    text = xor_notes()
    equations = box(text)
    assert r"$$\frac{\partial E_{n}}{\partial w_{ij}} = a_{i} \delta_{j}" in equations
    assert r"$$\frac{\partial E_{n}}{\partial b_{j}} = \delta_{j}" in equations
    assert (r"$$\frac{\partial E}{\partial w_{ij}} = \frac{1}{N} \sum_{n=1}^{N} \frac{\partial E_{n}}{\partial w_{ij}}"
            in equations)  # 1/N before the sum, not a sum of fractions over N in a fraction
    assert r"$$w_{ij} \leftarrow w_{ij} - \eta \frac{\partial E}{\partial w_{ij}}" in equations
    assert r"\delta_{j} = \frac{\partial E_{n}}{\partial z_{j}}" in text  # a sample's local gradient
    algorithm = text[text.index("**The algorithm"):]
    assert "The gradients of the mini-batch, the means of the samples' by" in algorithm


def test_mini_batch_worked_example_gives_one_symbol_one_value():
    text = xor_notes()
    worked = text[text.index("By hand"):]
    values = {}
    for line in worked.splitlines():
        if line.startswith("$$") and " = " in line:
            lhs, *_, value = line.strip("$").split(" = ")
            values.setdefault(lhs, set()).add(value)
    assert all(len(v) == 1 for v in values.values()), values
    mean = next(line for line in worked.splitlines() if line.startswith(r"$$\frac{\partial E}{\partial"))
    terms = re.search(r"\\frac\{1\}\{4\} \((.*)\) = (\S+)\$\$", mean)
    samples = [float(x.strip("()")) for x in terms.group(1).split(" + ")]
    assert len(samples) == 4 and float(terms.group(2)) == pytest.approx(np.mean(samples), abs=1e-5)
    # the first sample's gradient of that weight, by finite differences of a NumPy XOR net of our own
    weight = next(p for p in XOR.network.parameters if p.name == "w[0][0][0]")
    per_sample = [xor_gradient(XOR.values.parameters, weight, s) for s in range(4)]
    assert float(terms.group(2)) == pytest.approx(np.mean(per_sample), rel=1e-3)


def xor_gradient(parameters, weight, sample, h=1e-6):
    def loss(shift):
        p = {q.name: v + (shift if q == weight else 0) for q, v in parameters.items()}
        x, t = XOR.values.inputs[sample], XOR.values.targets[sample][0]
        s = lambda z: 1 / (1 + math.exp(-z))
        hidden = [s(p[f"b[0][{j}]"] + sum(p[f"w[0][{i}][{j}]"] * x[i] for i in range(2))) for j in range(2)]
        out = s(p["b[1][0]"] + sum(p[f"w[1][{j}][0]"] * hidden[j] for j in range(2)))
        return 0.5 * (out - t) ** 2
    return (loss(h) - loss(-h)) / (2 * h)


ELMAN = sb.from_dict({"network": {"layers": [2, 3, 1], "activation": ["tanh", "identity"], "recurrent": True,
                                  "steps": 3},
                      "example": {"inputs": [[0.5, -0.3], [0.1, 0.2], [-0.4, 0.7]], "targets": [[0.1], [0.2], [-0.1]],
                                  "learning_rate": 0.1}})


def elman_notes(format="md", **options) -> str:
    derivation = sb.derive(ELMAN.network)
    worked = sb.example(ELMAN.network, ELMAN.values, ELMAN.learning_rate, derivation)
    return sb.render(derivation, worked, format=format, **options)


def test_recurrent_box_has_the_future_term_and_the_sums_over_the_steps_numbered_and_cited():
    text = elman_notes()
    equations = box(text)
    assert "Haykin 2009, ch. 15; Goodfellow et al. 2016, sec. 10.2.2" in equations
    assert (r"$$\delta_{j}(t) = (\sum_{k} \delta_{k}(t) w_{jk} + \sum_{m} \delta_{m}(t + 1) r_{jm}) g'(z_{j}(t))"
            in equations)
    assert r"$$\delta_{k}(t) = (a_{k}(t) - t_{k}(t)) g'(z_{k}(t))" in equations
    for gradient in (r"\frac{\partial E}{\partial b_{j}} = \sum_{t=1}^{T} \delta_{j}(t)",
                     r"\frac{\partial E}{\partial w_{ij}} = \sum_{t=1}^{T} a_{i}(t) \delta_{j}(t)",
                     r"\frac{\partial E}{\partial r_{mj}} = \sum_{t=1}^{T} a_{m}(t - 1) \delta_{j}(t)"):
        assert re.search(re.escape(gradient) + r" \\tag\{\d+\}\$\$", equations), gradient
    assert r"z_{j}(t) = b_{j} + \sum_{i} a_{i}(t) w_{ij} + \sum_{m} a_{m}(t - 1) r_{mj} \tag{1}" in text
    assert r"E = \sum_{t=1}^{T} \sum_{k} \frac{(a_{k}(t) - t_{k}(t))^{2}}{2} \tag{3}" in text
    algorithm = text[text.index("**The algorithm"):text.index("## Backpropagation through time")]
    assert "Backward pass through time" in algorithm and "summed over the steps" in algorithm
    # the feed-forward sections, whose delta has no future term, are not there
    assert "\n## The output layer" not in text and "\n## The hidden layers" not in text


def test_the_through_time_chapter_is_numbered_and_cites_every_step():
    text = elman_notes()
    chapter = text[text.index("## Backpropagation through time"):text.index("## A worked example")]
    assert "By definition" not in chapter and "Differentiating the definitions above" not in chapter
    tags = [int(n) for n in re.findall(r"\\tag\{(\d+)\}", chapter)]
    assert tags == list(range(tags[0], tags[0] + len(tags))) and len(tags) >= 14  # every display numbered
    derived = re.findall(r"is \((\d+)\)", re.sub(r"\$\$.*?\$\$", "", chapter, flags=re.S))
    stated = re.findall(r"\\tag\{(\d+)\}", box(text))[:-1]  # every box equation but the update
    assert sorted(derived) == sorted(stated)  # the chapter ends each derivation with the box's number
    assert r"\sum_{t=T - K + 1}^{T}" in chapter  # as a text writes it, not -K + T + 1


def test_the_first_figure_of_a_recurrent_network_is_the_unrolled_one():
    tex = elman_notes("tex", parts=("figure",))
    first = tex.index(r"\begin{tikzpicture}")
    assert r"\node[zero]" in tex[first:tex.index(r"\end{tikzpicture}")]
    assert first < tex.index(r"\section{The equations of backpropagation}")
    assert tex.count(r"\begin{tikzpicture}") == 1  # the layered graph that mixed the steps is gone


def elman_numpy(parameters, inputs, targets):
    """The Elman network of ELMAN in NumPy, written from its definition: the error of the sequence."""
    p = {q.name: v for q, v in parameters.items()}
    state, error = np.zeros(3), 0.0
    for x, t in zip(inputs.reshape(3, 2), targets.reshape(3, 1)):
        state = np.tanh([p[f"b[0][{j}]"] + sum(p[f"w[0][{i}][{j}]"] * x[i] for i in range(2))
                         + sum(p[f"r[0][{m}][{j}]"] * state[m] for m in range(3)) for j in range(3)])
        out = p["b[1][0]"] + sum(p[f"w[1][{j}][0]"] * state[j] for j in range(3))
        error += 0.5 * (out - t[0]) ** 2
    return error


def test_the_box_bias_gradient_summed_over_the_steps_is_the_finite_difference():
    from symbackprop import bptt
    net, values = ELMAN.network, ELMAN.values
    derivation = sb.derive(net)
    evaluation = sb.example(net, values, derivation=derivation).evaluation
    point = {symbol: float(table[u.name][0]) for u in net.computing_units
             for symbol, table in ((u.a, evaluation.a), (u.z, evaluation.z), (u.delta, evaluation.delta))}
    point.update({u.a: float(x) for u, x in zip(net.inputs, values.inputs[0])})
    generic = bptt.derive_recurrent(net.group_by_name[net.unit_at(0, 1, 0).group].activation, True)
    for j in range(3):
        formula = float(bptt.instantiate(net, generic.gradient_bias, 0, j).xreplace(point))
        bias = next(p for p in net.parameters if p.name == f"b[0][{j}]")
        shifted = lambda h: elman_numpy({**values.parameters, bias: values.parameters[bias] + h},
                                        values.inputs[0], values.targets[0])
        assert formula == pytest.approx((shifted(1e-6) - shifted(-1e-6)) / 2e-6, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("notation", sb.notation.names())
def test_cost_and_saturation_section_from_the_network_in_every_preset(notation):
    spec = sb.from_dict(sb.spec.DEFAULT)  # 2-3-1, sigmoid hidden, linear output
    derivation = sb.derive(spec.network)
    worked = sb.example(spec.network, spec.values, spec.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md", notation=notation,
                     parts=[p for p in sb.rendering.PARTS if p not in sb.rendering.APPENDIX])
    section = text[text.index("## What backpropagation costs, and where it saturates"):]
    assert "All 13 gradients" in section  # 2 x 3 + 3 + 3 x 1 + 1, counted by hand
    forward = int(re.search(r"one forward pass \((\d+) operations", section).group(1))
    assert f"14 times {forward}: {14 * forward:,} operations" in section
    # the smallest g'(z) = s(z)(1 - s(z)) of the hidden layer, from a NumPy forward pass of our own
    p = {q.name: v for q, v in spec.values.parameters.items()}
    x = spec.values.inputs[0]
    z = np.array([p[f"b[0][{j}]"] + sum(p[f"w[0][{i}][{j}]"] * x[i] for i in range(2)) for j in range(3)])
    s = 1 / (1 + np.exp(-z))
    smallest = float(np.min(s * (1 - s)))
    shown = float(re.search(r"the smallest in layer \S+ is \$[^$]* = ([\d.]+)\$", section).group(1))
    assert shown == pytest.approx(smallest, rel=5e-4) and "against 0.2500 at a net input of 0" in section


def test_the_saturation_sentence_of_two_sigmoid_layers_gives_each_clause_its_subject():
    """The XOR mini-batch read "...; in layer 2 (logistic sigmoid) is g'(z) = 0.2283": no subject."""
    derivation = sb.derive(XOR.network)
    worked = sb.example(XOR.network, XOR.values, XOR.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md", parts=("example",))
    section = text[text.index("## What backpropagation costs, and where it saturates"):]
    assert "the smallest in layer 1 (logistic sigmoid) is $" in section
    assert "; in layer 2 (logistic sigmoid) it is $" in section


def test_haykin_worked_step_is_his_delta_rule():
    spec = sb.from_dict(sb.spec.DEFAULT)
    derivation = sb.derive(spec.network)
    worked = sb.example(spec.network, spec.values, spec.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md", notation="haykin", parts=("example",))
    line = next(l for l in text.splitlines() if l.startswith(r"$$\Delta {w^{(1)}_{11}} = \eta {\delta^{(1)}_{1}} x_{1}"))
    change = worked.evaluation.updated[sb.network.layer_weight(0, 0, 0)] - spec.values.parameters[
        sb.network.layer_weight(0, 0, 0)]
    # Haykin's delta_j = -dE/dv_j, so Delta w = eta delta_j y_i = -eta dE/dw
    assert line.endswith(f" = {change:#.4g}$$") and r"\leftarrow" not in text[text.index("By hand"):]


def test_a_deep_worked_example_shows_a_hidden_to_hidden_delta_with_its_numbers():
    spec = sb.compact("4-3-3-2")  # sigmoid, sigmoid, identity; half_sse
    derivation = sb.derive(spec.network)
    worked = sb.example(spec.network, spec.values, spec.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md", parts=("example",))
    line = next(l for l in text.splitlines() if l.startswith(r"$${\delta^{(1)}_{1}} = "))
    assert r"{\delta^{(2)}_{1}} {w^{(2)}_{11}} + {\delta^{(2)}_{2}} {w^{(2)}_{12}}" in line
    # the first hidden layer's delta by a NumPy backward pass of our own
    p = {q.name: v for q, v in spec.values.parameters.items()}
    sizes, activation = [4, 3, 3, 2], [lambda z: 1 / (1 + np.exp(-z))] * 2 + [lambda z: z]
    a, zs = [spec.values.inputs[0]], []
    for l in range(3):
        W = np.array([[p[f"w[{l}][{i}][{j}]"] for j in range(sizes[l + 1])] for i in range(sizes[l])])
        zs.append(a[-1] @ W + np.array([p[f"b[{l}][{j}]"] for j in range(sizes[l + 1])]))
        a.append(activation[l](zs[-1]))
    delta = a[3] - spec.values.targets[0]
    for l in (2, 1):
        W = np.array([[p[f"w[{l}][{i}][{j}]"] for j in range(sizes[l + 1])] for i in range(sizes[l])])
        delta = (W @ delta) * a[l] * (1 - a[l])
    assert float(line.strip("$").split(" = ")[-1]) == pytest.approx(delta[0], rel=5e-4)


def test_prose_names_functions_and_lists_layers_in_words():
    text = sb.render(sb.derive(sb.compact("2-3-3-1").network), format="md", notation="haykin")
    assert " one (" not in text and "sigmoid one" not in text and "linear one" not in text
    assert "the logistic sigmoid function" in text and "(layers 1 and 2)" in text and "In layers 1 and 2" in text
    assert "and, first, the bias weights" not in text and "the bias weights first" in text


def test_a_step_that_raises_the_error_says_so_and_gives_a_rate_that_teaches():
    spec = sb.compact("2-3-1", "tanh,identity", steps=3)  # learning rate 0.5: too long for this example
    derivation = sb.derive(spec.network)
    worked = sb.example(spec.network, spec.values, spec.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md", parts=("example",))
    found = re.search(r"is \$E = (\S+)\$ after it: this step was too long, past the minimum along the gradient; "
                      r"with \$\\eta = (\S+)\$ the error would fall to \$E = (\S+)\$\.", text)
    assert found, text[-600:]
    params, x, t = spec.values.parameters, spec.values.inputs[0], spec.values.targets[0]

    def step(rate):  # a gradient step by central differences of our own NumPy Elman net
        gradient = {p: (elman_numpy({**params, p: params[p] + 1e-6}, x, t)
                        - elman_numpy({**params, p: params[p] - 1e-6}, x, t)) / 2e-6 for p in params}
        return elman_numpy({p: v - rate * gradient[p] for p, v in params.items()}, x, t)

    rate = float(found.group(2))
    assert step(0.5) == pytest.approx(float(found.group(1)), rel=5e-4) and step(0.5) > elman_numpy(params, x, t)
    assert step(rate) == pytest.approx(float(found.group(3)), rel=5e-4) and step(rate) < elman_numpy(params, x, t)
    assert step(2 * rate) >= elman_numpy(params, x, t)  # the largest halving that helps


def key_text(tmp_path, notation, questions):
    made = sb.exercises(sb.from_dict(sb.spec.DEFAULT), notation=notation, questions=questions)
    sb.exercises.write(made, tmp_path, ["md"])
    return (tmp_path / "key.md").read_text()


def test_the_key_derives_as_the_notes_do(tmp_path):
    text = key_text(tmp_path, "default", "delta_output,delta_hidden,grad_w_hidden")
    first = text[text.index("## Question 1"):text.index("## Question 2")]
    assert r"\frac{\partial E}{\partial w_{jk}} = \frac{\partial E}{\partial z_{k}}" not in first  # unused there
    third = text[text.index("## Question 3"):]
    assert r"$$\frac{\partial E}{\partial w_{ij}} = \frac{\partial E}{\partial z_{j}} \frac{\partial z_{j}}" in third
    assert "By definition,\n\n\n$$\\delta_{k} = \\frac{\\partial E}{\\partial z_{k}}$$" in first


def test_the_haykin_key_states_his_local_gradient_before_using_it(tmp_path):
    text = key_text(tmp_path, "haykin", "delta_output")
    definition = text.index(r"$$\delta_{j} = - \frac{\partial \mathcal{E}}{\partial v_{j}}$$")
    assert definition < text.index(r"$$\delta_{j} = e_{j}$$")


def test_the_keys_hidden_delta_is_written_as_the_notes_write_it(tmp_path):
    made = sb.exercises(sb.from_dict(sb.spec.DEFAULT), questions="delta[0][0]")
    sb.exercises.write(made, tmp_path, ["md"])
    text = (tmp_path / "key.md").read_text()
    line = next(l for l in text.splitlines() if l.startswith(r"$${\delta^{(1)}_{1}} = "))
    assert line.startswith(r"$${\delta^{(1)}_{1}} = {a^{(1)}_{1}} (1 - {a^{(1)}_{1}}) {\delta^{(2)}_{1}} {w^{(2)}_{11}}")



@pytest.mark.parametrize("command", [["check", "--target", "grad_b[0][0]", "--answer", "0.1"],
                                     ["exercises", "--questions", "grad_b[0][1]", "-o", "set"],
                                     ["exercises", "--questions", "grad_b", "-o", "set"]])
def test_a_bias_per_unit_asked_of_shared_biases_is_one_line_exit_two(tmp_path, command):
    """grad_b[l][j] with bias = "shared" was a KeyError traceback (exercises) or "overflows float64"
    (check): the layer has one bias b[l], not one per unit."""
    (tmp_path / "mazur.toml").write_text(MAZUR)
    result = run(command[0], "mazur.toml", *command[1:], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "shared" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "set").exists()


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The documents issue 24 names that the other test files do not write: Mazur's spec, an Elman
    network unrolled over three steps (handout), the XOR mini-batch, a deep 4-3-3-2 network."""
    root = tmp_path_factory.mktemp("course")
    mazur = root / "mazur.toml"
    mazur.write_text(MAZUR)
    specs = {"mazur": sb.load(mazur), "elman": sb.compact("2-3-1", "tanh,identity", steps=3), "xor": XOR,
             "deep": sb.compact("4-3-3-2")}
    handout = [p for p in sb.rendering.PARTS if p not in sb.rendering.APPENDIX]
    return {name: sb.write_notes(spec, root / name, formats=["md", "tex"], parts=handout)
            for name, spec in specs.items()}


def compiled(course, name):
    """The document's .tex compiled (twice: the tables settle their widths)."""
    tex = next(p for p in course[name] if p.suffix == ".tex")
    if not tex.with_suffix(".pdf").exists():
        for _ in range(2):
            compile_tex(tex)
    return tex


@requires_pdflatex
@pytest.mark.parametrize("name", ["mazur", "elman", "xor", "deep"])
def test_the_course_documents_compile_without_overfull_lines(course, name):
    assert "Overfull" not in compiled(course, name).with_suffix(".log").read_text()


@pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                    reason="pdflatex and pdftotext not installed (.ci/run installs them)")
@pytest.mark.parametrize("name", ["mazur", "elman", "xor", "deep"])
def test_no_page_ends_with_a_heading_a_lead_in_or_a_paragraphs_first_line(course, name):
    """Mazur's page 3 ended with "... is updated from the same gradients, all at once:", its
    table overleaf; the XOR handout's page 4 with the first line of "By hand, ...", the rest
    and its display overleaf.  Read from the PDF as laid out: body text starts at the left
    margin, a paragraph's first line a little in (its indent), displays and tables far in."""
    pdf = compiled(course, name).with_suffix(".pdf")
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=60,
                           check=True).stdout.split("\f")[:-1]
    # lines of text: not the page number, nor the sub- and superscripts set on lines of their own
    lines = [[line.rstrip() for line in page.splitlines() if len(line.strip()) > 15] for page in pages]
    margin = min(len(line) - len(line.lstrip()) for page in lines for line in page)
    indent = lambda line: len(line) - len(line.lstrip()) - margin
    assert len(pages) > 2
    for page_number, (page, following) in enumerate(zip(lines, lines[1:]), 1):
        last, first = page[-1], following[0]
        where = f"page {page_number} of {name} ends with"
        assert not re.fullmatch(r"\d+(\.\d+)*\s+[A-Z].*", last.strip()), f"{where} a heading: {last!r}"
        assert not (last.endswith(":") and indent(first) > 10), f"{where} a lead-in, {first.strip()!r} overleaf"
        assert not (0 < indent(last) <= 6 and indent(first) == 0), f"{where} a paragraph's first line: {last!r}"


@katex_node.requires_katex
def test_the_course_documents_render_in_katex(course):
    files = [str(p) for paths in course.values() for p in paths if p.suffix == ".md"]
    result = katex_node.render_all(files, timeout=300)
    assert result.returncode == 0 and " 0 failed" in result.stdout, result.stdout[-3000:]


def test_tables_and_displays_are_not_split_across_pages():
    spec = sb.from_dict(sb.spec.DEFAULT)
    derivation = sb.derive(spec.network)
    worked = sb.example(spec.network, spec.values, spec.learning_rate, derivation)
    tex = sb.render(derivation, worked, format="tex", parts=("example",))
    assert r"\allowdisplaybreaks" not in tex  # a multi-line display stays on one page
    assert r"\begin{tabular}" in tex and r"\begin{longtable}" not in tex  # short tables: one page, header with rows
    wide = sb.compact("2-40-1")  # 41 rows of units: a table that breaks, its header repeated on each page
    derivation = sb.derive(wide.network)
    tex = sb.render(derivation, sb.example(wide.network, wide.values, derivation=derivation), format="tex",
                    parts=("example",))
    long = tex[tex.index(r"\begin{longtable}"):]
    assert long.index(r"\endhead") < long.index(r"\end{longtable}")


_CONV_LAYERS = [{"kind": "conv", "channels": 2, "kernel": [2, 2], "activation": "tanh"},
                {"kind": "avg_pool", "size": [2, 2]}, {"kind": "dense", "units": 2, "activation": "softmax"}]


@pytest.mark.parametrize("network", [sb.compact("3-4-4-3", "tanh,sigmoid,softmax", loss="cross_entropy").network,
                                     sb.compact("2-3-1", "tanh,identity", steps=3).network,
                                     sb.compact("30-20-10", "relu,sigmoid").network,
                                     sb.compact("12-9-2", "sigmoid,sigmoid").network,
                                     sb.convolutional([1, 5, 5], _CONV_LAYERS, "cross_entropy")])
def test_the_operation_counts_are_sympys_count_of_every_formula(network):
    """Counted once per shape of formula (a layer's gradients share one, a layer's net inputs too),
    the totals are still sympy.count_ops summed over every definition, delta and gradient."""
    import sympy as sp
    from symbackprop.notes import cost

    derivation = sb.derive(network)
    forward = sum(sp.count_ops(formula) for _, formula in network.definitions)
    backward = (sum(sp.count_ops(formula) for _, formula in derivation.backward_definitions())
                + sum(sp.count_ops(formula) for formula in derivation.gradients.values()))
    assert cost._operations(derivation) == (forward, backward)


def test_mini_batch_matrix_form_is_of_one_samples_error_not_of_the_mean():
    """dE/db = delta holds for one sample's error E_n; for E, the mean over the batch, it is
    false (the mean of the samples' deltas), so the matrix form of a mini-batch says E_n."""
    derivation = sb.derive(XOR.network)
    worked = sb.example(XOR.network, XOR.values, XOR.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md", parts=("example", "matrix"))
    matrix = text[text.index("## Matrix form"):text.index("## A worked example")]
    assert r"\frac{\partial E_{n}}{\partial \boldsymbol{b}^{(2)}} = \boldsymbol{\delta}^{(2)}" in matrix
    assert r"\nabla_{\boldsymbol{a}} E_{n}" in matrix and r"\partial E}" not in matrix
    assert "for one sample $n$ of the mini-batch (the means (10) and (11) then give the gradients of $E$)" in matrix
    one = sb.render(derivation, format="md", parts=("matrix",))  # one sample: E itself
    assert r"\frac{\partial E}{\partial \boldsymbol{b}^{(2)}} = \boldsymbol{\delta}^{(2)}" in one and "E_{n}" not in one


def test_haykins_recurrent_notes_define_the_error_signal_at_step_t_before_using_it():
    """The Haykin Elman notes wrote E with (y_j(t) - d_j(t))^2 and delta_k(t) = -(y - d) phi', then
    the worked example used e_1, never defined and without its step."""
    text = elman_notes(notation="haykin")
    assert r"$$e_{j}(t) = d_{j}(t) - y_{j}(t) \tag{4}$$" in text
    assert r"\sum_{t=1}^{T} \sum_{j} e_{j}(t)^{2} \tag{3}" in text
    assert r"$$\delta_{j}(t) = \varphi'(v_{j}(t)) e_{j}(t) \tag{6}$$" in text  # the box, as Haykin's for one step
    assert r"(1) = e_{1}(1) = 0.1000 - (-0.4243) = 0.5243" in text and "y_{j}(t) - d_{j}(t)" not in text
    assert "e_{j}" not in elman_notes(notation="default")


def test_a_mini_batchs_unit_tables_name_the_sample_not_a_bare_number():
    """In a mini-batch of sequences the columns read "z (1)", "z (2)" (samples) beside rows
    a_1(1), a_1(2) (time steps): the same parentheses for two different indices."""
    text = xor_notes()
    assert "| unit | $z$ ($n = 1$) | $a$ ($n = 1$) | $\\delta$ ($n = 1$) | $z$ ($n = 2$) |" in text
    assert "$z$ (1)" not in text


@pytest.mark.parametrize("notation", sb.notation.names())
def test_the_mini_batch_mean_keeps_each_samples_error_inside_its_sum_in_every_preset(notation):
    """Haykin's mini-batch notes printed E = E_n (sum_{n=1}^N 1) / N: his sign convention's
    factor_terms took E_n, which did not depend on n, out of the sum."""
    derivation = sb.derive(XOR.network)
    worked = sb.example(XOR.network, XOR.values, XOR.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md", notation=notation, parts=("example",))
    n, N = sb.notation.load(notation).letters.sample
    error = sb.notation.load(notation).symbol("error")
    assert not re.search(r"\\sum_\{\w=1\}\^\{\w+\} 1\b", text), "a sum of ones"
    assert f"{error} = \\frac{{1}}{{{N}}} \\sum_{{{n}=1}}^{{{N}}} {error}_{{{n}}}" in text
    assert f"\\frac{{1}}{{{N}}} \\sum_{{{n}=1}}^{{{N}}} \\frac{{\\partial {error}_{{{n}}}}}" in text  # the mean gradient


def test_haykins_mini_batch_step_is_minus_eta_times_the_mean_gradient():
    """It printed Delta w = eta delta_1 x_1 = 0.5 x (-0.007708) x 0 = 0.001062: the first sample's
    delta rule (0) with the mini-batch's step as its result."""
    derivation = sb.derive(XOR.network)
    worked = sb.example(XOR.network, XOR.values, XOR.learning_rate, derivation)
    text = sb.render(derivation, worked, format="md", notation="haykin", parts=("example",))
    step = next(line for line in text[text.index("By hand"):].splitlines() if line.startswith(r"$$\Delta"))
    match = re.fullmatch(r"\$\$\\Delta \{w\^\{\(1\)\}_\{11\}\} = - \\eta \\frac\{\\partial \\mathcal\{E\}\}"
                         r"\{\\partial \{w\^\{\(1\)\}_\{11\}\}\} = - 0\.5 \\times \((\S+)\) = (\S+)\$\$", step)
    assert match, step
    weight = next(p for p in XOR.network.parameters if p.name == "w[0][0][0]")
    mean = np.mean([xor_gradient(XOR.values.parameters, weight, s) for s in range(4)])  # NumPy, our own
    assert float(match.group(1)) == pytest.approx(mean, rel=1e-3)
    assert float(match.group(2)) == pytest.approx(-XOR.learning_rate * mean, rel=1e-3)
