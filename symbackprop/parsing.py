"""Safe reader for plain-text math (spec files, student answers) into SymPy.

The text handled here is untrusted, so it must never reach ``eval``, ``exec``,
``sympify`` or ``parse_expr``: those run Python code and accept far more than
arithmetic.  This module therefore owns its grammar.  A small LALR grammar
(lark) accepts only numbers, whitelisted names, ``+ - * / ^ **``, implicit
multiplication, parentheses and whitelisted function calls; a non-recursive
tree walk then builds SymPy objects through explicit constructors only.

Every resource an input could exhaust is bounded, and checked before the work
it guards: text length (before lexing), parenthesis nesting (linear scan before
parsing), tree size and nesting (before building), and exponents and the size
of exact numbers (estimated before a sum, product or power is computed).
Anything that fails raises ExpressionError with a one-line message saying what
is wrong and where.

Limitation: SymPy's own automatic evaluation (assumption queries such as
"is this real?") is not bounded by these checks.  Nested transcendental
expressions of a few hundred characters can take seconds to build, so code
that grades untrusted answers under a time budget should call
parse_expression in a worker it can stop.
"""

import math
from collections.abc import Mapping
from types import MappingProxyType

import lark
import sympy

from . import cache

__all__ = ["FUNCTIONS", "ExpressionError", "parse_expression"]


class ExpressionError(ValueError):
    """Raised for any text that cannot be read.

    ``str(err)`` is a one-line message naming what is wrong and, where
    possible, the column (1-based character position) and how to fix it.
    """


def _sigmoid(x):
    """Logistic function 1/(1 + exp(-x)), built from plain SymPy operations."""
    return sympy.Pow(sympy.Add(1, sympy.exp(sympy.Mul(-1, x))), -1)


FUNCTIONS: Mapping = MappingProxyType({
    "exp": sympy.exp, "log": sympy.log, "ln": sympy.log, "sqrt": sympy.sqrt,
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "atan": sympy.atan,
    "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh,
    "abs": sympy.Abs, "sign": sympy.sign, "heaviside": sympy.Heaviside,
    "max": sympy.Max, "min": sympy.Min, "sigmoid": _sigmoid,
})
"""Whitelisted functions, name -> SymPy callable.  ``max``/``min`` take two or
more arguments, all others exactly one.  ``log``/``ln`` are the natural log."""

_VARIADIC = frozenset({"max", "min"})
_MAX_NUMBER_DIGITS = 30
# Exact numbers stay below Python's 4300-digit int->str limit, so every result
# can still be printed.
_MAX_RESULT_DIGITS = 4000
_LOG10_2 = math.log10(2)
_ALLOWED_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "_.+-*/^(), \t\r\n")
_WHITESPACE = " \t\r\n"

_GRAMMAR = r"""
start: sum
?sum: term ((PLUS | MINUS) term)*
?term: factor ((STAR | SLASH) factor | implicit)*
?factor: (PLUS | MINUS) factor -> signed
       | power
?power: atom
      | atom POW factor -> pow
// implicit multiplication: the right factor may not start with a sign or a
// number, so "2z" and "a(1-a)" are products while "2 3" and "z 2" are errors
?implicit: operand
         | operand POW factor -> pow
?atom: NUMBER
     | operand
?operand: NAME -> name
        | CALLNAME "(" (sum ("," sum)*)? ")" -> call
        | "(" sum ")" -> group

// a name directly followed by "(" is an application: a function call, or a
// product when the name is a symbol
CALLNAME.2: /[A-Za-z][A-Za-z0-9_]*(?=[ \t\r\n]*\()/
NAME: /[A-Za-z][A-Za-z0-9_]*/
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
POW: "^" | "**"
%ignore /[ \t\r\n]+/
"""

_PARSER = lark.Lark(_GRAMMAR, parser="lalr", propagate_positions=True, cache=cache.library_file("lark-expressions"))

_DESCRIBE = {
    "NUMBER": "a number", "NAME": "a name", "CALLNAME": "a name",
    "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "PLUS": "'+'",
    "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "POW": "'^'",
    "$END": "end of text",
}


def parse_expression(text: str, symbols: Mapping[str, sympy.Expr], *,
                     max_length: int = 2000, max_depth: int = 60,
                     max_exponent: int = 1000,
                     max_nodes: int = 5000, max_tower: int = 3) -> sympy.Expr:
    """Parse untrusted plain-text math into a SymPy expression.

    Names must be keys of ``symbols`` (their values are used as given), the
    constant ``pi``, or, when followed by ``(``, keys of FUNCTIONS (a function
    name wins over a symbol of the same name there).  Decimals become exact
    rationals; ``max``/``min`` of non-numeric arguments are left unevaluated.
    Raises ExpressionError for anything else or any exceeded bound, among them
    exponentials nested more than ``max_tower`` deep (``exp(exp(exp(exp(z))))``, ``z^z^z^z``).
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be text, got {type(text).__name__}")
    if len(text) > max_length:
        raise ExpressionError(
            f"expression too long: {len(text)} characters (max_length={max_length})")
    _scan(text, max_depth)
    try:
        tree = _PARSER.parse(text)
    except lark.exceptions.UnexpectedInput as err:
        raise ExpressionError(_syntax_message(err, text)) from None
    _check_tree(tree, max_depth, max_nodes)
    try:
        result = _Builder(symbols, max_exponent).transform(tree)
    except lark.exceptions.VisitError as err:
        cause = err.orig_exc
        if isinstance(cause, ExpressionError):
            raise cause from None
        if isinstance(cause, (ValueError, TypeError, ArithmeticError)):
            # SymPy refuses some values, e.g. heaviside() of a complex number
            reason = (str(cause).splitlines() or ["invalid value"])[0]
            raise ExpressionError(f"cannot evaluate the expression at column "
                                  f"{err.obj.meta.start_pos + 1}: {reason}") from None
        raise cause
    _check_result(result, max_exponent, max_tower)
    return result


def _scan(text, max_depth):
    """Reject bad characters, unbalanced or too deeply nested parentheses."""
    if not text.strip(_WHITESPACE):
        raise ExpressionError("empty expression")
    opened = []
    for column, char in enumerate(text, 1):
        if char not in _ALLOWED_CHARS:
            hint = ("use plain ASCII (e.g. z^2, not z²)" if not char.isascii()
                    else "allowed: letters, digits, spaces, _ . + - * / ^ ( ) ,")
            raise ExpressionError(f"character {char!r} (U+{ord(char):04X}) at "
                                  f"column {column} is not allowed; {hint}")
        if char == "(":
            opened.append(column)
            if len(opened) > max_depth:
                raise ExpressionError(f"parentheses nested too deeply at column "
                                      f"{column} (max_depth={max_depth})")
        elif char == ")":
            if not opened:
                raise ExpressionError(f"unmatched ')' at column {column}; "
                                      "remove it or add a '(' before it")
            opened.pop()
    if opened:
        raise ExpressionError(f"unbalanced parentheses: '(' at column "
                              f"{opened[-1]} is never closed; add a ')'")


def _syntax_message(err, text):
    """One-line description of a lark lexing or parsing error."""
    if isinstance(err, lark.exceptions.UnexpectedCharacters):
        return (f"unexpected character {text[err.pos_in_stream]!r} at column "
                f"{err.pos_in_stream + 1}")
    expected = ", ".join(sorted({_DESCRIBE.get(name, name) for name in err.expected}))
    token = getattr(err, "token", None)
    if token is None or token.type == "$END":
        return f"expression ends too early; expected {expected}"
    return f"unexpected {token.value!r} at column {token.start_pos + 1}; expected {expected}"


def _check_tree(tree, max_depth, max_nodes):
    """Bound the node count and the nesting of groups, calls and powers."""
    depth, nodes = {}, 1
    for sub in tree.iter_subtrees():  # children come before their parents
        nodes += len(sub.children)
        inner = max((depth[id(c)] for c in sub.children if isinstance(c, lark.Tree)),
                    default=0)
        depth[id(sub)] = inner + (sub.data in ("group", "call", "pow"))
        if depth[id(sub)] > max_depth:
            raise ExpressionError(f"expression nested too deeply (parentheses, calls "
                                  f"and powers; max_depth={max_depth})")
    if nodes > max_nodes:
        raise ExpressionError(f"expression too large: {nodes} nodes (max_nodes={max_nodes})")


def _digits(number):
    """Approximate decimal digits of a SymPy Rational's numerator/denominator."""
    return max(abs(number.p), number.q).bit_length() * _LOG10_2


def _number_digits(expr):
    """Approximate digits of the largest exact number inside ``expr`` (0 if none)."""
    return max(map(_digits, expr.atoms(sympy.Rational)), default=0)


def _bounded(parts, what):
    """Return ``parts`` unless adding or multiplying them could create a number
    with too many digits (the digits of all parts, summed, bound the result's)."""
    if sum(map(_number_digits, parts)) > _MAX_RESULT_DIGITS:
        raise ExpressionError(f"{what} would produce a number with more than "
                              f"{_MAX_RESULT_DIGITS} digits")
    return parts


def _tower(expr, memo):
    """How deep exponentials nest in ``expr``: exp(exp(z)) and z^z^z are 2 and 3."""
    if expr not in memo:
        inner = max((_tower(arg, memo) for arg in expr.args), default=0)
        grows = isinstance(expr, sympy.exp) or isinstance(expr, sympy.Pow) and expr.exp.free_symbols
        memo[expr] = inner + bool(grows)
    return memo[expr]


def _check_result(result, max_exponent, max_tower):
    """Reject undefined values, exponents that SymPy combined past the bound, and towers
    of exponentials, whose values no arithmetic holds: exp(exp(exp(exp(2)))) has about
    10^702 digits, and z^z^z^z^z hung the fit of a textbook derivative form."""
    height = _tower(result, {})
    if height > max_tower:
        raise ExpressionError(f"expression nests exponentials {height} deep (exp(exp(...)), z^z^...; at most "
                              f"{max_tower}): its values outgrow any arithmetic, exp(exp(exp(exp(2)))) has "
                              f"about 10^702 digits")
    if result.has(sympy.zoo, sympy.nan):
        raise ExpressionError("expression is undefined (division by zero or similar)")
    for power in result.atoms(sympy.Pow):
        if power.exp.is_Rational and max(abs(power.exp.p), power.exp.q) > max_exponent:
            raise ExpressionError(f"expression simplifies to a power with exponent "
                                  f"{power.exp} (max_exponent={max_exponent})")


class _Builder(lark.visitors.Transformer_NonRecursive):
    """Turn the parse tree into SymPy objects, checking each step's bounds."""

    def __init__(self, symbols, max_exponent):
        super().__init__()
        self.symbols = symbols
        self.max_exponent = max_exponent

    def _allowed_names(self):
        return ", ".join([*sorted(self.symbols), "pi", *FUNCTIONS])

    def _lookup(self, token):
        if token in self.symbols:
            return self.symbols[token]
        if token == "pi":
            return sympy.pi
        raise ExpressionError(f"unknown name {str(token)!r} at column {token.start_pos + 1}; "
                              f"allowed names: {self._allowed_names()}")

    def NUMBER(self, token):
        mantissa, _, exponent = token.lower().partition("e")
        whole, _, fraction = mantissa.partition(".")
        column = token.start_pos + 1
        if sum(c.isdigit() for c in token) > _MAX_NUMBER_DIGITS:
            raise ExpressionError(f"number at column {column} has more than "
                                  f"{_MAX_NUMBER_DIGITS} digits")
        scale = int(exponent or 0) - len(fraction)
        limit = min(self.max_exponent, _MAX_RESULT_DIGITS - _MAX_NUMBER_DIGITS)
        if abs(scale) > limit:
            raise ExpressionError(f"number {str(token)!r} at column {column}: decimal "
                                  f"exponent too large (at most {limit})")
        if scale < 0:
            return sympy.Rational(int(whole + fraction), 10 ** -scale)
        return sympy.Integer(int(whole + fraction) * 10 ** scale)

    def start(self, children):
        return children[0]

    def group(self, children):
        return children[0]

    def name(self, children):
        token, = children
        if token in FUNCTIONS and token not in self.symbols:
            raise ExpressionError(f"function {str(token)!r} at column {token.start_pos + 1} "
                                  f"needs parentheses, e.g. {token}(z)")
        return self._lookup(token)

    def call(self, children):
        token, *args = children
        name, column = str(token), token.start_pos + 1
        if name not in FUNCTIONS:
            value = self._lookup(token)
            if len(args) != 1:
                raise ExpressionError(f"{name!r} at column {column} is not a function; "
                                      f"write {name}*(...) with one expression inside")
            return sympy.Mul(*_bounded([value, *args], f"product at column {column}"))
        if name in _VARIADIC and len(args) < 2:
            raise ExpressionError(f"{name}() at column {column} needs at least 2 "
                                  f"arguments, got {len(args)}")
        if name not in _VARIADIC and len(args) != 1:
            raise ExpressionError(f"{name}() at column {column} takes exactly 1 "
                                  f"argument, got {len(args)}")
        # Max/Min of symbolic arguments stay unevaluated: SymPy's pruning compares
        # all pairs symbolically, taking minutes for a few dozen arguments.
        options = ({"evaluate": all(arg.is_Rational for arg in args)}
                   if name in _VARIADIC else {})
        return FUNCTIONS[name](*args, **options)

    def signed(self, children):
        sign, value = children
        return value if sign == "+" else sympy.Mul(-1, value)

    def sum(self, children):
        terms, sign = [children[0]], None
        for child in children[1:]:
            if isinstance(child, lark.Token):
                sign = child
            else:
                terms.append(child if sign == "+" else sympy.Mul(-1, child))
        return sympy.Add(*_bounded(terms, "a sum"))

    def term(self, children):
        factors, operator = [children[0]], None
        for child in children[1:]:
            if isinstance(child, lark.Token):
                operator = child
            else:
                factors.append(sympy.Pow(child, -1) if operator == "/" else child)
                operator = None
        return sympy.Mul(*_bounded(factors, "a product"))

    def pow(self, children):
        base, token, exponent = children
        column = token.start_pos + 1
        if exponent.is_Rational:
            if max(abs(exponent.p), exponent.q) > self.max_exponent:
                raise ExpressionError(f"exponent at column {column} is too large "
                                      f"(max_exponent={self.max_exponent})")
            estimate = abs(exponent) * _number_digits(base)
            if estimate > _MAX_RESULT_DIGITS:
                raise ExpressionError(f"power at column {column} would produce a number with "
                                      f"about {int(estimate)} digits (exponent too large; "
                                      f"limit {_MAX_RESULT_DIGITS} digits)")
        return sympy.Pow(base, exponent)
