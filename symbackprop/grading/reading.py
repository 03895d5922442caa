"""Student answers (LaTeX or plain text) read into SymPy, through a notation preset.

Answers are untrusted, so, as in :mod:`symbackprop.parsing`, nothing here calls ``eval``,
``exec``, ``sympify`` or ``parse_expr``.  Reading is three steps, one module each:
:mod:`.spelling` (textbook spellings into the grammar's), :mod:`.lexing` (the text checked and
parsed by the grammar, its size bounded) and :mod:`.building` (the grammar's actions: the tree
into SymPy through the :mod:`.vocabulary` of the target).
"""
from __future__ import annotations

from dataclasses import dataclass

import lark
import sympy as sp

from ..parsing import ExpressionError
from .building import Builder
from .lexing import PARSER, MAX_LENGTH, MAX_SUMS, check_tree, scan, syntax_message
from .spelling import normalize
from .vocabulary import Vocabulary

__all__ = ["Answer", "ExpressionError", "Vocabulary", "read_answer"]


@dataclass(frozen=True)
class Answer:
    """An answer read: its sides (``a = b = c`` gives three), how they are related
    (``=`` or ``<-``) and remarks that already make it wrong (a layer superscript that
    contradicts the index letter)."""

    sides: tuple[sp.Expr, ...]
    relations: tuple[str, ...]
    remarks: tuple[str, ...] = ()
    decimals: bool = False  # a number of 4 or more significant digits (a value read off the worked example)
    swapped: bool = False  # the remark is that two unit letters are exchanged
    digits: int | None = None  # the fewest significant digits of the decimal numbers written (None: none)



def read_answer(text: str, vocabulary: Vocabulary) -> Answer:
    """Read one answer; raises ExpressionError with a one-line message naming what is
    wrong and where (1-based column)."""
    if not isinstance(text, str):
        raise ExpressionError(f"the answer must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the answer is {len(text)} characters long; at most {MAX_LENGTH} are read")
    text = normalize(text, vocabulary.reads_time)
    scan(text)
    try:
        tree = PARSER.parse(text)
    except lark.exceptions.UnexpectedInput as error:
        raise ExpressionError(syntax_message(error, text)) from None
    check_tree(tree)
    builder = Builder(vocabulary)
    builder.bind(tree)
    try:
        sides, relations = builder.transform(tree)
    except lark.exceptions.VisitError as error:
        if isinstance(error.orig_exc, ExpressionError):
            raise error.orig_exc from None
        raise
    if max(map(_sum_depth, sides)) > MAX_SUMS:  # each level multiplies the work by a layer's width
        raise ExpressionError(f"sums nested more than {MAX_SUMS} deep are not read")
    swapped = builder.swapped_letters()
    remarks = (swapped,) if swapped else tuple(builder.remarks)
    return Answer(tuple(sides), tuple(relations), remarks, builder.decimals, bool(swapped), builder.digits)



def _sum_depth(expression) -> int:
    """How many summation indices are open at the deepest point of ``expression``."""
    inner = max((_sum_depth(arg) for arg in expression.args), default=0)
    return inner + (len(expression.limits) if isinstance(expression, sp.Sum) else 0)

