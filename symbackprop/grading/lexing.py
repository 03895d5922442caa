"""The answer grammar and the checks on the text before and after it is parsed.

Answers are untrusted: every character and command outside a whitelist is refused before
parsing, and length, bracket nesting, tree size and the number of symbols are bounded, so that
a hostile answer costs linear time.  One LALR grammar (lark) covers the LaTeX subset students
write (``\\frac``, ``\\sum_k``, ``\\partial``, ``\\varphi'(v_j)``, ``w^{l+1}_{kj}``) and plain text
(``g'(z_j)*sum(w_jk*delta_k, k)``), since the two differ only in spelling.
"""
from __future__ import annotations

import re

import lark
import sympy as sp

from .. import cache
from ..parsing import ExpressionError
from .vocabulary import LAST, TIME

TIME_LETTERS = ("t", "n", "tau", "\\tau")
TIME_INDEX = re.compile(r"[(<]?\s*([tnT]|\\?tau)\s*(?:([+-])\s*(\d+))?\s*[)>]?")

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_NODES = 4000
MAX_EXPONENT = 64
MAX_SUMS = 3
MAX_SYMBOLS = 300

_COMMANDS = frozenset({
    "frac", "dfrac", "tfrac", "sum", "partial", "cdot", "times", "ast", "leftarrow", "gets", "coloneqq",
    "mathcal", "mathrm", "text", "operatorname", "mathit", "hat", "left", "right", "big", "Big", "bigl", "bigr",
    "Bigl", "Bigr", "limits", "nolimits", "displaystyle", "quad", "qquad", "prime", "ell", "in", "to",
    "rightarrow", "exp", "log", "ln", "tanh", "sinh", "cosh", "sin", "cos", "tan", "sqrt",
    "odot", "max", "min", "alpha", "delta", "Delta", "eta", "sigma", "varphi", "phi", "theta", "epsilon", "varepsilon", "mu", "lambda",
    "tau", "sech", "mapsto", "bigg", "Bigg", "biggl", "biggr", "Biggl", "Biggr", "textstyle", "nonumber", "notag",
})

_GRAMMAR = r"""
start: sum ((REL | ARROWREL) sum)*
?sum: term ((PLUS | MINUS) term)*
?term: factor ((STAR | SLASH) factor | implicit)*
?factor: (PLUS | MINUS) factor -> signed
       | power
?power: atom
      | atom POW script -> pow
?implicit: operand
         | operand POW script -> pow
?atom: NUMBER -> number
     | operand
?operand: symbol
        | symbol LPAR sum (COMMA sum)* RPAR -> apply
        | symbol LPAR STEP RPAR -> timed
        | LPAR sum RPAR -> group
        | LBRACE sum RBRACE -> group
        | FRAC LBRACE sum RBRACE LBRACE sum RBRACE -> frac
        | FRAC DIGIT DIGIT -> frac
        | BIGSUM limits term -> bigsum
        | PARTIAL symbol -> partial
        | PARTIAL symbol LPAR STEP RPAR -> partial
symbol: head decoration*
head: NAME | CMD | FONT LBRACE (NAME | CMD) RBRACE | FONT NAME
?decoration: SUB script -> sub
           | POW script -> sup
           | PRIME -> prime
           | LSQB DIGITS RSQB -> bracket
limits: (SUB script)? (POW script)?
script: INDEX | CMD | LBRACE item* RBRACE | LPAR item* RPAR | LT item* GT | MINUS INDEX | PLUS | STAR
?item: INDEX | CMD | COMMA | PLUS | MINUS | EQ | ARROW | STAR | SLASH | DOT | PRIME | POW | SUB
     | LPAR item* RPAR -> nested
     | LBRACE item* RBRACE -> nested
     | LT item* GT -> angled

REL.3: "=" | ":=" | "<-" | /\\(leftarrow|gets|coloneqq)(?![A-Za-z])/
ARROWREL.3: "->" | /\\(rightarrow|to|mapsto)(?![A-Za-z])/
FRAC.3: /\\[dt]?frac(?![A-Za-z])/
STEP.3: /([tnT]|\\tau)(\s*[+-]\s*\d+)?(?=\s*\))|\d+(?=\s*\))/
BIGSUM.3: /\\sum(?![A-Za-z])/
PARTIAL.3: /\\partial(?![A-Za-z])/
FONT.3: /\\(mathcal|mathrm|text|operatorname|mathit|hat)(?![A-Za-z])/
STAR.3: /\*(?!\*)/ | /\\(cdot|times|ast|odot)(?![A-Za-z])/
CMD: /\\[A-Za-z]+/
NAME: /[A-Za-z]+/
INDEX: /[A-Za-z0-9]+/
DIGITS: /[0-9]+/
DIGIT: /[0-9]/
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
ARROW: "->"
PLUS: "+"
MINUS: "-"
SLASH: "/"
POW.3: "^" | "**"
SUB: "_"
PRIME: "'"
EQ: "="
DOT: "."
COMMA: ","
LPAR: "("
RPAR: ")"
LBRACE: "{"
RBRACE: "}"
LSQB: "["
RSQB: "]"
LT: "<"
GT: ">"
SPACE.4: /[ \t\r\n~]+/ | /\\[,;:! ]/
    | /\\(left|right|[bB]igg?[lr]?|limits|nolimits|displaystyle|textstyle|quad|qquad|nonumber|notag)(?![A-Za-z])/
%ignore SPACE
"""

PARSER = lark.Lark(_GRAMMAR, parser="lalr", propagate_positions=True, cache=cache.library_file("lark-answers"))
_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                     "_.+-*/^()[]{},'=:;!<>\\ ~\t\r\n")



def step_of(text: str) -> tuple[str, int]:
    """A time index as written, (t+1) or <t-1> or 2: its letter ("" for a number of a
    concrete step) and offset."""
    text = text.replace(" ", "")
    if text.isdigit():
        return "", _bounded(text)
    letter, sign, amount = TIME_INDEX.fullmatch(text).groups()
    offset = _bounded(amount) if amount else 0
    return letter.lstrip("\\"), -offset if sign == "-" else offset


def _bounded(digits: str) -> int:
    """A step number as written, or 10000 for a longer one: past the end of every sequence
    (recurrent.MAX_STEPS), and small enough for NumPy's integers."""
    return int(digits) if len(digits) <= 4 else 10_000


def step_at(letter: str, offset: int) -> sp.Expr:
    """The SymPy step of a time index: t (or n, tau) + offset, T + offset, or a number."""
    return sp.Integer(offset) if not letter else (LAST if letter == "T" else TIME) + offset



def scan(text: str) -> None:
    """Characters, commands, bracket balance and nesting, before the parser sees the text."""
    if not text.strip():
        raise ExpressionError("the answer is empty")
    opened = []
    pairs = {")": "(", "}": "{", "]": "["}
    for column, char in enumerate(text, 1):
        if char not in _ALLOWED:
            hint = ("write Greek letters as \\delta or delta, and use plain ASCII" if not char.isascii()
                    else "allowed: letters, digits, spaces and _ ^ ' + - * / = ( ) { } [ ] , \\")
            raise ExpressionError(f"character {char!r} (U+{ord(char):04X}) at column {column} is not allowed; {hint}")
        if char in "({[":
            opened.append((char, column))
            if len(opened) > MAX_DEPTH:
                raise ExpressionError(f"brackets nested too deeply at column {column} (at most {MAX_DEPTH})")
        elif char in pairs:
            if not opened or opened[-1][0] != pairs[char]:
                raise ExpressionError(f"unmatched {char!r} at column {column}")
            opened.pop()
    if opened:
        char, column = opened[-1]
        raise ExpressionError(f"{char!r} at column {column} is never closed")
    for match in re.finditer(r"\\([A-Za-z]+)", text):
        if match.group(1) not in _COMMANDS:
            raise ExpressionError(f"the command \\{match.group(1)} at column {match.start() + 1} is not allowed; "
                                  "answers may use \\frac, \\sum, \\partial, \\cdot and Greek letters")
    backslash = re.search(r"\\(?![A-Za-z,;:! ])", text)
    if backslash:
        raise ExpressionError(f"'\\' at column {backslash.start() + 1} does not start a command")


def syntax_message(error, text: str) -> str:
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        return f"unexpected {text[error.pos_in_stream]!r} at column {error.pos_in_stream + 1}"
    token = getattr(error, "token", None)
    if token is None or token.type == "$END":
        return "the answer ends too early (an operator or a bracket without what follows)"
    return f"unexpected {token.value!r} at column {token.start_pos + 1}"


def check_tree(tree) -> None:
    depth, nodes, symbols = {}, 1, 0
    for sub in tree.iter_subtrees():
        nodes += len(sub.children)
        symbols += sub.data == "symbol"
        depth[id(sub)] = 1 + max((depth[id(c)] for c in sub.children if isinstance(c, lark.Tree)), default=0)
        if depth[id(sub)] > 3 * MAX_DEPTH:
            raise ExpressionError(f"the answer is nested too deeply (at most {MAX_DEPTH} levels)")
    if nodes > MAX_NODES:
        raise ExpressionError(f"the answer is too large ({nodes} parts; at most {MAX_NODES})")
    if symbols > MAX_SYMBOLS:
        raise ExpressionError(f"the answer names {symbols} symbols; at most {MAX_SYMBOLS} are read")

