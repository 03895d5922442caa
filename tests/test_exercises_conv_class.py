"""A conv set's key for a class whose students share kernel entries: which terms a worked sum has
is worked out once per entry, each student's numbers are their own (the key's sum of products is
their gradient by central differences of a NumPy network of our own)."""
import re

import numpy as np

import symbackprop as sb
from symbackprop.exercises.conv_documents import ConvDocuments

#: one channel and a 2x2 kernel: eight students share four kernel entries and one bias
SPEC = {"network": {"input_shape": [1, 3, 4], "loss": "half_sse",
                    "layer": [{"kind": "conv", "channels": 1, "kernel": [2, 2], "padding": 1, "activation": "tanh"},
                              {"kind": "dense", "units": 1, "activation": "identity"}]},
        "example": {"inputs": [[[0.1, 0.2, -0.3, 0.4], [0.0, -0.1, 0.2, 0.3], [0.5, 0.1, 0.1, -0.2]]],
                    "targets": [0.5]}}
STUDENTS = [f"s{n}" for n in range(8)]


def _error(example: dict) -> float:
    x = np.pad(np.array(example["inputs"], dtype=float)[0], 1)
    kernel, weights = np.array(example["weights"][0])[0, 0], np.array(example["weights"][1])
    z = np.array([[np.sum(kernel * x[i:i + 2, j:j + 2]) for j in range(5)] for i in range(4)])
    z = z + example["biases"][0][0]
    y = np.tanh(z).ravel() @ weights[:, 0] + example["biases"][1][0]
    return float(0.5 * (y - example["targets"][0]) ** 2)


def _gradient(example: dict, target: str) -> float:
    numbers = [int(n) for n in re.findall(r"\d+", target)]
    key = "weights" if target.startswith("grad_w") else "biases"

    def nudged(h):
        copy = {**example, key: [np.array(t, dtype=float).copy() for t in example[key]]}
        copy[key][numbers[0]][tuple(numbers[1:])] += h
        return _error(copy)

    return (nudged(1e-6) - nudged(-1e-6)) / 2e-6


def test_students_sharing_an_entry_each_get_their_own_worked_sum():
    made = sb.exercises(sb.from_dict(SPEC), students=STUDENTS, seed=4, questions=["grad_w[l][o][c][u][v]", "grad_b[l][o]"])
    documents = ConvDocuments(made)
    entries = {}
    for variant in made.variants:
        for asked in documents.variant(variant)["asked"]:
            if asked.dense:
                continue
            entries.setdefault(asked.target, set()).add(variant.student)
            witness = _gradient(variant.example, asked.target)
            assert np.isclose(sum(asked.worked["products"]), witness, rtol=1e-5, atol=1e-8), (variant.student, asked)
            assert np.isclose(asked.worked["value"], float(asked.answer), rtol=1e-8)
    assert max(len(students) for students in entries.values()) > 1  # an entry shared
