"""What feed-forward and through-time preparation share: the target asked, the prepared
answer key, and the test networks the references are computed on.

:mod:`.targets` prepares a layered network's targets and hands a recurrent one's to
:mod:`.through_time`; both build on this module, and :mod:`.mistakes` words its messages for a
:class:`Target`, so the imports run one way: targets -> through_time -> prepared.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from ..derivation import derive
from ..network import Network
from ..notes.notation import Notation
from ..numerics import Values
from .evaluation import Cases
from .vocabulary import P, S, U, Vocabulary

#: random points per test network (a concrete target adds its worked example)
POINTS = 4


@dataclass(frozen=True)
class Target:
    """What an answer is for: kind (delta, grad_w, grad_b, update_w), output or hidden, and for
    a concrete target the spec's 0-based indices (layer, source, unit)."""

    name: str
    kind: str
    output: bool
    concrete: tuple[int, ...] | None = None  # a conv network's: (layer, *indices of weights[l] or biases[l])
    timed: bool = False  # graded through time, on a recurrent network



@dataclass
class Prepared:
    """Everything needed to grade answers to one target, computed once."""

    target: Target
    vocabulary: Vocabulary
    cases: Cases
    reference: np.ndarray
    weight: sp.Expr  # the weight an update changes, as answers name it
    mutants: list  # (names, message(s), values)
    words: dict
    example: float | None = None  # concrete targets: the worked example's value (mean over samples)
    example_mutants: list = field(default_factory=list)
    reveal: bool = False  # messages may show the worked example's value (the exercise's answer)
    sheet: bool = False  # the numbers are a student's sheet's (messages say "your sheet")
    samples: int = 1  # the worked example's mini-batch: its value is the mean over them
    renamed: Prepared | None = None  # an output target read with the hidden-layer letters (j fed by i)
    numbers_only: bool = False  # a convolutional network's concrete target: the answer is a number
    positions: list | None = None  # a conv layer's generic target: per case, its tables (:mod:`.convolutional`)
    #: a concrete target's symbols whose values the student works out (see :func:`worked_out`)
    worked_out: frozenset = frozenset()
    random_only: bool = False  # the worked example's test point left out, for an answer in those symbols


def worked_out(symbols, network: Network) -> frozenset:
    """The symbols among ``symbols`` that a sheet does not print: every z, a and delta of a computing
    unit and the question's own derivative.  At the worked example their values are the exercise's
    answer or steps to it, so an answer written in them is compared at the random points only: at
    the example, a step function of them (H(delta - c)) would tell whether the key is below c."""
    given = {*network.parameters, *(u.a for u in network.inputs), *network.targets.values()}
    return frozenset(set(symbols) - given)


def spec_parts(network: Network):
    groups = network.groups
    hidden = [g_.activation for g_ in groups if g_.units[0] not in network.outputs]
    output = next(g_.activation for g_ in groups if g_.units[0] in network.outputs)
    bias = any(u.bias is not None for u in network.computing_units)
    return hidden, output, bias



def letters_of(notation: Notation, target: Target) -> dict:
    """student letter -> role; where a notation uses one letter for two roles (Nielsen's k),
    the role the target's formula needs wins."""
    clean = lambda x: x.lstrip("\\").replace("ell", "l")
    if target.output:
        p, u = map(clean, notation.letters.output)
        return {p: P, u: U}
    p, u, s = map(clean, notation.letters.hidden)
    letters = {p: P, s: S} if target.kind == "delta" else {s: S, p: P}
    letters[u] = U
    return letters


def bound_letters(notation: Notation, target: Target) -> dict:
    """What the notation's successor letter means inside a sum over it: the unit fed (Nielsen's
    sum_k w^{l+1}_kj delta^{l+1}_k in dC/db^l_j, where k is otherwise the unit feeding j)."""
    return {} if target.output else {notation.letters.hidden[2].lstrip("\\").replace("ell", "l"): S}


class Family:
    """One test network with its derivation and numeric code."""

    def __init__(self, network: Network):
        self.network = network
        from ..matrix import evaluator  # only when preparing: a check whose references are cached skips it

        self.derivation = derive(network)
        self.compiled = evaluator(self.derivation)  # the matrix form: no code per weight of a spec's big network
        self.sizes = network.layers


@functools.lru_cache(maxsize=16)
def family_of(network: Network) -> Family:
    """Derived once per network: every target of a batch shares the test networks."""
    return Family(network)


def random_values(network: Network, rng) -> Values:
    inputs = rng.uniform(-1, 1, (1, len(network.inputs)))
    if network.loss.targets_sum_to_one:
        targets = np.eye(len(network.outputs))[[rng.integers(len(network.outputs))]]
    else:
        targets = rng.uniform(0.05, 0.95, (1, len(network.outputs)))
    return Values(inputs, targets, {p: float(rng.uniform(-1, 1)) for p in network.parameters})

