"""A class's conv numbers prepared at once (grading.targets.prepare_many, as exercises and grade
do) against each student's alone and against a NumPy reference of the known mistakes."""
from __future__ import annotations

import numpy as np
import pytest

import symbackprop as sb
from symbackprop import grading
from symbackprop.convolution import kernel_weight
from symbackprop.grading.targets import prepare_many
from symbackprop.network import layer_bias
from symbackprop.numerics import compiled
from symbackprop.numerics import Values

STUDENTS = 12
#: two conv layers (the second reads the first's output), padding and stride, a non-square image,
#: mini-batches of one and of two samples
LAYERS = [{"kind": "conv", "channels": 2, "kernel": [3, 2], "padding": 1, "activation": "tanh"},
          {"kind": "conv", "channels": 2, "kernel": [2, 2], "stride": 2, "activation": "sigmoid"},
          {"kind": "dense", "units": 3, "activation": "softmax"}]
NETWORK = sb.convolutional([2, 4, 5], LAYERS, "cross_entropy")


def _student(rng) -> Values:
    samples = int(rng.integers(1, 3))
    targets = np.eye(3)[rng.integers(3, size=samples)]
    return Values(rng.uniform(-1, 1, (samples, 40)), targets,
                  {p: float(rng.uniform(-1, 1)) for p in NETWORK.parameters})


def _target(rng) -> str:
    level = int(rng.integers(2))
    layer = NETWORK.stack[level]
    if rng.integers(2):
        return f"grad_b[{level}][{rng.integers(layer.shape_out[0])}]"
    entry = [rng.integers(n) for n in (layer.shape_out[0], layer.shape_in[0], *layer.kernel)]
    return f"grad_w[{level}]" + "".join(f"[{n}]" for n in entry)


@pytest.fixture(scope="module")
def students():
    rng = np.random.default_rng(5)
    values = [_student(rng) for _ in range(STUDENTS)]
    names = [_target(rng) for _ in range(STUDENTS)] + ["grad_w[2][3][1]", "grad_b[2][0]"]
    values += values[:2]  # a dense layer's numbers, among the class's
    together = prepare_many(NETWORK, names, "default", values, 0.5, sheet=True)
    alone = [grading.prepare(NETWORK, name, "default", numbers, 0.5, sheet=True) for name, numbers in zip(names, values)]
    return names, values, together, alone


def test_a_class_prepared_at_once_gets_each_students_verdicts_and_messages(students):
    names, _, together, alone = students
    for name, mine, reference in zip(names, together, alone):
        key = reference.example
        answers = [f"{key:.4g}", f"{-key:.4g}", f"{key * 1.5:.4g}", "0", "1e300",
                   *(f"{number:.4g}" for _, _, number in reference.example_mutants)]
        for answer in answers:
            first, second = grading.check_prepared(mine, answer), grading.check_prepared(reference, answer)
            assert (first.verdict, first.message) == (second.verdict, second.message), (name, answer)


def _reference_mistakes(values: Values, target: str) -> dict[str, list[float]]:
    """The known mistakes of a conv layer's kernel or bias gradient by NumPy from the worked
    example's a, z and delta of the layer: one output position's term, the kernel offset flipped
    (the input at i*s - u - p), dE/da = delta / g'(z) for delta; means over the samples."""
    level, *entry = [int(x) for x in target.replace("]", "").split("[")[1:]]
    layer = NETWORK.stack[level]
    result = compiled(sb.derive(NETWORK)).evaluate(values)
    samples = len(values.inputs)
    table = lambda numbers, l, shape: np.array([numbers[NETWORK.unit_at(l, *at).name] for at in np.ndindex(*shape)]
                                               ).T.reshape(samples, *shape)
    below = (values.inputs.reshape(samples, *layer.shape_in) if level == 0
             else table(result.a, level - 1, layer.shape_in))
    delta = table(result.delta, level, layer.shape_out)
    a = table(result.a, level, layer.shape_out)
    slope = 1 - a ** 2 if level == 0 else a * (1 - a)
    (height, width), s, p = layer.shape_out[1:], layer.stride, layer.padding

    def read(sample, channel, row, column):
        inside = 0 <= row < layer.shape_in[1] and 0 <= column < layer.shape_in[2]
        return below[sample, channel, row, column] if inside else 0.0

    def terms(local, o, offset):
        return np.array([[local[n, o, i, j] * (offset(n, i, j) if len(entry) > 1 else 1.0)
                          for i in range(height) for j in range(width)] for n in range(samples)])

    o = entry[0]
    out = {"missing sum over positions": list(terms(delta, o, lambda n, i, j: read(
        n, entry[1], i * s + entry[2] - p, j * s + entry[3] - p)).mean(axis=0))}
    forward = lambda n, i, j: read(n, entry[1], i * s + entry[2] - p, j * s + entry[3] - p)
    out["missing activation derivative"] = [terms(delta / slope, o, forward).sum(axis=1).mean()]
    if len(entry) > 1:
        out["flipped indices"] = [terms(delta, o, lambda n, i, j: read(
            n, entry[1], i * s - entry[2] - p, j * s - entry[3] - p)).sum(axis=1).mean()]
    right = float(result.gradients[kernel_weight(level, *entry) if len(entry) > 1 else layer_bias(level, o)])
    out["sign error"] = [-right]
    return {name: [x for x in numbers if not np.isclose(x, right, rtol=1e-9, atol=1e-12)]
            for name, numbers in out.items()}


def test_each_mistake_is_the_numpy_reference_of_it(students):
    names, values, together, _ = students
    checked = 0
    for name, numbers, prepared in zip(names, values, together):
        if name.startswith(("grad_w[2]", "grad_b[2]")):
            continue
        expected = _reference_mistakes(numbers, name)
        found: dict[str, list[float]] = {}
        for (mistake,), _, number in prepared.example_mutants:
            found.setdefault(mistake, []).append(number)
        assert sorted(found) == sorted(k for k, v in expected.items() if v), name
        for mistake, numbers_found in found.items():
            np.testing.assert_allclose(numbers_found, expected[mistake], rtol=1e-9, atol=1e-12, err_msg=name)
        checked += 1
    assert checked >= STUDENTS // 2
