"""What a sheet asks: every question is a target that ``check`` already knows, so every
question can be graded.

A question is *generic* (derive a formula in the notation's letters: one of
:data:`grading.GENERIC_TARGETS`) or *numeric* (compute one number of the worked example):
``delta``, ``grad_w``, ``grad_b`` or ``update_w`` with the unit drawn per student, or a
concrete target such as ``delta[0][1]`` asked of everyone.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import grading
from ..errors import SpecError
from ..network import Network

#: Numeric kinds whose unit (or weight) each student draws.
DRAWN = ("delta", "grad_w", "grad_b", "update_w")
#: Three derivations and three numbers: the local gradients of both kinds of layer, the gradient
#: of a hidden weight; a delta, a weight's gradient and a weight after one step.
DEFAULT = ("delta_output", "delta_hidden", "grad_w_hidden", "delta", "grad_w", "update_w")
#: The same without a hidden layer (a single-layer network).
DEFAULT_SINGLE_LAYER = ("delta_output", "grad_w_output", "update_w_output", "delta", "grad_w", "update_w")
_FIXED = re.compile(r"(delta|grad_b|grad_w|update_w)(\[\d+\])+")


@dataclass(frozen=True)
class Question:
    """Question ``id`` (q1, q2, ...) of the sheet, of ``kind``: a generic target, a drawn
    numeric kind, or a fixed concrete target."""

    id: str
    kind: str

    @property
    def numeric(self) -> bool:
        return self.kind not in grading.GENERIC_TARGETS

    @property
    def quantity(self) -> str:
        """delta, grad_w, grad_b or update_w."""
        return self.kind.split("[")[0] if self.numeric else self.kind.rpartition("_")[0]


def parse(kinds: str | Sequence[str] | None, network: Network) -> tuple[Question, ...]:
    """Questions from ``--questions`` (comma-separated) or a list; default :data:`DEFAULT`."""
    if kinds is None:
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
        if question.numeric and network.layers is None:
            raise SpecError("--questions", f"{kind}: numeric questions name layered units; this spec is a graph, "
                                           f"so ask generic ones ({', '.join(grading.GENERIC_TARGETS)})")
        questions.append(question)
    if not questions:
        raise SpecError("--questions", "lists no questions")
    return tuple(questions)


def check_kind(kind: str, where: str) -> str:
    """``kind`` if it names a question, else a SpecError listing the kinds."""
    if kind not in grading.GENERIC_TARGETS and kind not in DRAWN and not _FIXED.fullmatch(kind):
        raise SpecError(where, f"{kind[:60]!r} is not a question; use {', '.join(grading.GENERIC_TARGETS)}, "
                               f"{', '.join(DRAWN)} (a number, the unit drawn per student) or a target "
                               "such as delta[0][1]")
    return kind


def target(question: Question, network: Network, rng) -> str:
    """The target ``question`` asks of one student: drawn kinds pick a unit of a hidden layer
    (an output layer without one; ``update_w`` any layer) with ``rng``."""
    if question.kind not in DRAWN:
        return question.kind
    sizes = network.layers
    levels = range(len(sizes) - 1) if question.kind == "update_w" else range(max(len(sizes) - 2, 1))
    level = int(rng.choice(levels))
    unit = int(rng.integers(sizes[level + 1]))
    if question.kind in ("grad_w", "update_w"):
        return f"{question.kind}[{level}][{int(rng.integers(sizes[level]))}][{unit}]"
    return f"{question.kind}[{level}][{unit}]"
