"""What a sheet asks: every question is a target that ``check`` already knows, so every
question can be graded.

A question is *generic* (derive a formula in the notation's letters: one of
:data:`grading.GENERIC_TARGETS`) or *numeric* (compute one number of the worked example):
``delta``, ``grad_w``, ``grad_b`` or ``update_w`` with the unit drawn per student, or a
concrete target such as ``delta[0][1]`` asked of everyone.  A recurrent (Elman) spec asks
its own questions, those ``check`` grades through time: :data:`RECURRENT`; a convolutional
spec those of a conv layer: :data:`CONVOLUTIONAL`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import grading
from ..convolution import ConvNetwork
from ..errors import SpecError
from ..grading import convolutional
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
#: A conv layer's numbers with the kernel entry (2-D, 1-D) or the channel drawn per student.
DRAWN_KERNEL = ("grad_w[l][o][c][u][v]", "grad_w[l][o][c][u]")
DRAWN_CONV_BIAS = "grad_b[l][o]"
#: A convolutional spec's questions: the kernel gradient and the delta below it derived (one channel,
#: stride 1), a kernel entry's and a bias's gradient as numbers (or fixed, such as grad_w[0][1][0][2][2]).
CONVOLUTIONAL = (*convolutional.GENERIC, *DRAWN_KERNEL, DRAWN_CONV_BIAS)
_FIXED = re.compile(r"(delta|grad_b|grad_w|update_w|grad_r)(\[\d+\])+")
_GENERIC = (*grading.GENERIC_TARGETS, *grading.RECURRENT_TARGETS, *convolutional.GENERIC)


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
        """delta, grad_w, grad_b, update_w or grad_r (a recurrent weight's gradient); the conv
        derivations grad_kernel and delta_conv_input as they are."""
        if self.numeric:
            return self.kind.split("[")[0]
        return ({"delta_hidden_bptt": "delta", "grad_r": "grad_r", **dict.fromkeys(convolutional.GENERIC, self.kind)}
                .get(self.kind) or self.kind.rpartition("_")[0])

    @property
    def through_time(self) -> bool:
        """Whether it asks a recurrent network's own quantity (BPTT's delta, a recurrent weight)."""
        return self.kind in RECURRENT or self.quantity == "grad_r"


def parse(kinds: str | Sequence[str] | None, network: Network) -> tuple[Question, ...]:
    """Questions from ``--questions`` (comma-separated) or a list; default :data:`DEFAULT`
    (a recurrent spec: :data:`RECURRENT`; a convolutional one: :func:`conv_kinds`)."""
    if isinstance(network, ConvNetwork):
        return _parse_conv(kinds, network)
    recurrent = isinstance(network, UnrolledNetwork)
    if kinds is None and recurrent:
        kinds = RECURRENT
    elif kinds is None:
        hidden = network.layers is None or len(network.layers) > 2
        kinds = DEFAULT if hidden else DEFAULT_SINGLE_LAYER
        if network.layers is None:  # a graph: numbers need layered units
            kinds = tuple(k for k in kinds if k in grading.GENERIC_TARGETS) + ("update_w_hidden",)
    questions = []
    for kind in _each_once(kinds):
        question = Question(f"q{len(questions) + 1}", check_kind(kind, "--questions"))
        if question.kind in CONVOLUTIONAL:
            raise SpecError("--questions", f"{kind}: asks about a conv layer; it needs a convolutional spec "
                                           "(input_shape and [[network.layer]] tables)")
        if recurrent != question.through_time:
            raise SpecError("--questions", f"{kind}: " + (
                f"a recurrent spec's questions are {', '.join(RECURRENT)} (or one fixed, such as grad_r[0][1][2])"
                if recurrent else "asks about a recurrent weight; it needs a recurrent spec (recurrent = true)"))
        if question.numeric and network.layers is None and not recurrent:
            raise SpecError("--questions", f"{kind}: numeric questions name layered units; this spec is a graph, "
                                           f"so ask generic ones ({', '.join(grading.GENERIC_TARGETS)})")
        questions.append(question)
    return _listed(questions)


def _each_once(kinds: str | Sequence[str]) -> list[str]:
    """The kinds of ``--questions`` (comma-separated) or of a list, none listed twice."""
    kinds = [k.strip() for k in kinds.split(",")] if isinstance(kinds, str) else list(kinds)
    twice = sorted({kind for kind in kinds if kinds.count(kind) > 1})
    if twice:
        raise SpecError("--questions", f"{', '.join(twice)} listed more than once; ask each question once")
    return kinds


def _listed(questions: list[Question]) -> tuple[Question, ...]:
    if not questions:
        raise SpecError("--questions", "lists no questions")
    return tuple(questions)


def conv_kinds(network: ConvNetwork) -> tuple[str, ...]:
    """What a convolutional spec can ask: both derivations (``check`` grades them on 2-D layers, so
    a 2-D spec), the drawn kernel entry of its dimensions and, with biases, the drawn channel's bias;
    nothing without a conv layer."""
    if not any(layer.kind == "conv" for layer in network.stack):
        return ()
    dimensions = len(network.input_shape) - 1
    return (*(convolutional.GENERIC if dimensions == 2 else ()), DRAWN_KERNEL[2 - dimensions],
            *([DRAWN_CONV_BIAS] if network.biases else []))


def dense_kinds(network: ConvNetwork) -> tuple[str, ...]:
    """A convolutional spec's layered numbers: a dense layer's weight (and bias), drawn per student."""
    if not any(layer.kind == "dense" for layer in network.stack):
        return ()
    return ("grad_w", *(["grad_b"] if network.biases else []))


def _parse_conv(kinds, network: ConvNetwork) -> tuple[Question, ...]:
    """A convolutional spec's questions: those of :func:`conv_kinds` (all by default), a dense
    layer's weight or bias drawn (:func:`dense_kinds`), or a parameter fixed for everyone
    (grad_w[0][1][0][2][2], grad_b[0][1], grad_w[2][3][1])."""
    default = conv_kinds(network)
    if not default:
        raise SpecError("network.layer", "has no conv layer: the exercise questions of a convolutional spec "
                                         "ask about a conv layer's kernel; add one")
    allowed = (*default, *dense_kinds(network))
    questions = []
    for kind in _each_once(default if kinds is None else kinds):
        fixed = _FIXED.fullmatch(kind) and kind.startswith(("grad_w", "grad_b")) and _has_parameters(kind, network)
        if kind not in allowed and not fixed:
            raise SpecError("--questions", f"{kind[:60]}: a convolutional spec's questions are {', '.join(allowed)} "
                                           "(the entry or unit drawn per student), or a conv or dense layer's "
                                           "parameter fixed for everyone, such as grad_w[0][0][0][1][1]")
        questions.append(Question(f"q{len(questions) + 1}", kind))
    return _listed(questions)


def _has_parameters(kind: str, network: ConvNetwork) -> bool:
    """Whether fixed target ``kind`` names a layer with parameters (not a pooling layer, whose
    gradients ``check`` has no target for); the rest of it is checked as ``check`` reads it."""
    level = int(re.findall(r"\d+", kind)[0])
    return level < len(network.stack) and network.stack[level].kind in ("conv", "dense")


def check_kind(kind: str, where: str) -> str:
    """``kind`` if it names a question, else a SpecError listing the kinds."""
    if (kind not in _GENERIC and kind not in DRAWN and kind not in (DRAWN_RECURRENT, *CONVOLUTIONAL)
            and not _FIXED.fullmatch(kind)):
        raise SpecError(where, f"{kind[:60]!r} is not a question; use {', '.join(grading.GENERIC_TARGETS)}, "
                               f"{', '.join(DRAWN)} (a number, the unit drawn per student) or a target "
                               f"such as delta[0][1]; on a recurrent spec {', '.join(RECURRENT)}; on a "
                               f"convolutional spec {', '.join(CONVOLUTIONAL)}")
    return kind


def target(question: Question, network: Network, rng) -> str:
    """The target ``question`` asks of one student: drawn kinds pick a unit of a hidden layer
    (an output layer without one; ``update_w`` any layer; a recurrent weight of any hidden
    layer; a kernel entry or a bias of any conv layer, a weight or a bias of any dense layer of a
    convolutional network) with ``rng``."""
    if question.kind == DRAWN_RECURRENT:
        sizes = network.sizes
        level = int(rng.integers(len(sizes) - 2))
        source, unit = (int(x) for x in rng.integers(sizes[level + 1], size=2))
        return f"grad_r[{level}][{source}][{unit}]"
    if question.kind in (*DRAWN_KERNEL, DRAWN_CONV_BIAS):
        level = int(rng.choice([n for n, layer in enumerate(network.stack) if layer.kind == "conv"]))
        layer = network.stack[level]
        sizes = (layer.shape_out[0], layer.shape_in[0], *layer.kernel) if question.kind != DRAWN_CONV_BIAS else (
            layer.shape_out[0],)
        return f"{question.kind.split('[')[0]}[{level}]" + "".join(f"[{int(rng.integers(n))}]" for n in sizes)
    if question.kind not in DRAWN:
        return question.kind
    if isinstance(network, ConvNetwork):  # grad_w or grad_b of a dense layer
        level = int(rng.choice([n for n, layer in enumerate(network.stack) if layer.kind == "dense"]))
        layer = network.stack[level]
        unit = int(rng.integers(layer.shape_out[0]))
        if question.kind == "grad_w":
            return f"grad_w[{level}][{int(rng.integers(math.prod(layer.shape_in)))}][{unit}]"
        return f"grad_b[{level}][{unit}]"
    sizes = network.layers
    levels = range(len(sizes) - 1) if question.kind == "update_w" else range(max(len(sizes) - 2, 1))
    level = int(rng.choice(levels))
    unit = int(rng.integers(sizes[level + 1]))
    if question.kind in ("grad_w", "update_w"):
        return f"{question.kind}[{level}][{int(rng.integers(sizes[level]))}][{unit}]"
    return f"{question.kind}[{level}][{unit}]"
