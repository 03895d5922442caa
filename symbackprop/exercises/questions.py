"""What a sheet asks: every question is a target that ``check`` already knows, so every
question can be graded.

A question is *generic* (derive a formula in the notation's letters: one of
:data:`grading.GENERIC_TARGETS`) or *numeric* (compute one number of the worked example):
``delta``, ``grad_w``, ``grad_b`` or ``update_w`` with the unit drawn per student, or a
concrete target such as ``delta[0][1]`` asked of everyone.  A recurrent (Elman) spec asks
its own questions, those ``check`` grades through time: :data:`RECURRENT`.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import grading
from ..errors import SpecError
from ..network import Network
from ..recurrent import UnrolledNetwork

#: Numeric kinds whose unit (or weight) each student draws.
DRAWN = ("delta", "grad_w", "grad_b", "update_w")
#: Three derivations and three numbers: the local gradients of both kinds of layer, the gradient
#: of a hidden weight; a delta, a weight's gradient and a weight after one step.
DEFAULT = ("delta_output", "delta_hidden", "grad_w_hidden", "delta", "grad_w", "update_w")
#: The same without a hidden layer (a single-layer network).
DEFAULT_SINGLE_LAYER = ("delta_output", "grad_w_output", "update_w_output", "delta", "grad_w", "update_w")
#: A recurrent weight's gradient through time with the weight drawn per student (h, i, j as in
#: recurrent_weights[h][i][j]).
DRAWN_RECURRENT = "grad_r[h][i][j]"
#: A recurrent spec's questions: BPTT's delta and a recurrent weight's gradient, derived, and
#: one such gradient as a number (or grad_r[0][1][2], fixed); the default on such a spec.
RECURRENT = (*grading.RECURRENT_TARGETS, DRAWN_RECURRENT)
_FIXED = re.compile(r"(delta|grad_b|grad_w|update_w|grad_r)(\[\d+\])+")
_GENERIC = (*grading.GENERIC_TARGETS, *grading.RECURRENT_TARGETS)


@dataclass(frozen=True)
class Question:
    """Question ``id`` (q1, q2, ...) of the sheet, of ``kind``: a generic target, a drawn
    numeric kind, or a fixed concrete target."""

    id: str
    kind: str

    @property
    def numeric(self) -> bool:
        return self.kind not in _GENERIC

    @property
    def quantity(self) -> str:
        """delta, grad_w, grad_b, update_w or grad_r (a recurrent weight's gradient)."""
        if self.numeric:
            return self.kind.split("[")[0]
        return {"delta_hidden_bptt": "delta", "grad_r": "grad_r"}.get(self.kind) or self.kind.rpartition("_")[0]

    @property
    def through_time(self) -> bool:
        """Whether it asks a recurrent network's own quantity (BPTT's delta, a recurrent weight)."""
        return self.kind in RECURRENT or self.quantity == "grad_r"


def parse(kinds: str | Sequence[str] | None, network: Network) -> tuple[Question, ...]:
    """Questions from ``--questions`` (comma-separated) or a list; default :data:`DEFAULT`
    (a recurrent spec: :data:`RECURRENT`)."""
    recurrent = isinstance(network, UnrolledNetwork)
    if kinds is None and recurrent:
        kinds = RECURRENT
    elif kinds is None:
        hidden = network.layers is None or len(network.layers) > 2
        kinds = DEFAULT if hidden else DEFAULT_SINGLE_LAYER
        if network.layers is None:  # a graph: numbers need layered units
            kinds = tuple(k for k in kinds if k in grading.GENERIC_TARGETS) + ("update_w_hidden",)
    elif isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",")]
    twice = sorted({kind for kind in kinds if list(kinds).count(kind) > 1})
    if twice:
        raise SpecError("--questions", f"{', '.join(twice)} listed more than once; ask each question once")
    questions = []
    for kind in kinds:
        question = Question(f"q{len(questions) + 1}", check_kind(kind, "--questions"))
        if recurrent != question.through_time:
            raise SpecError("--questions", f"{kind}: " + (
                f"a recurrent spec's questions are {', '.join(RECURRENT)} (or one fixed, such as grad_r[0][1][2])"
                if recurrent else "asks about a recurrent weight; it needs a recurrent spec (recurrent = true)"))
        if question.numeric and network.layers is None and not recurrent:
            raise SpecError("--questions", f"{kind}: numeric questions name layered units; this spec is a graph, "
                                           f"so ask generic ones ({', '.join(grading.GENERIC_TARGETS)})")
        questions.append(question)
    if not questions:
        raise SpecError("--questions", "lists no questions")
    return tuple(questions)


def check_kind(kind: str, where: str) -> str:
    """``kind`` if it names a question, else a SpecError listing the kinds."""
    if kind not in _GENERIC and kind not in DRAWN and kind != DRAWN_RECURRENT and not _FIXED.fullmatch(kind):
        raise SpecError(where, f"{kind[:60]!r} is not a question; use {', '.join(grading.GENERIC_TARGETS)}, "
                               f"{', '.join(DRAWN)} (a number, the unit drawn per student) or a target "
                               f"such as delta[0][1]; on a recurrent spec {', '.join(RECURRENT)}")
    return kind


def target(question: Question, network: Network, rng) -> str:
    """The target ``question`` asks of one student: drawn kinds pick a unit of a hidden layer
    (an output layer without one; ``update_w`` any layer; a recurrent weight of any hidden
    layer) with ``rng``."""
    if question.kind == DRAWN_RECURRENT:
        sizes = network.sizes
        level = int(rng.integers(len(sizes) - 2))
        source, unit = (int(x) for x in rng.integers(sizes[level + 1], size=2))
        return f"grad_r[{level}][{source}][{unit}]"
    if question.kind not in DRAWN:
        return question.kind
    sizes = network.layers
    levels = range(len(sizes) - 1) if question.kind == "update_w" else range(max(len(sizes) - 2, 1))
    level = int(rng.choice(levels))
    unit = int(rng.integers(sizes[level + 1]))
    if question.kind in ("grad_w", "update_w"):
        return f"{question.kind}[{level}][{int(rng.integers(sizes[level]))}][{unit}]"
    return f"{question.kind}[{level}][{unit}]"
