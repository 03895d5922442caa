"""The grammar's actions: a parse tree of an answer into SymPy, every symbol resolved through
the target's :class:`~.vocabulary.Vocabulary`.

The tree is built with ``evaluate=False`` throughout: SymPy never simplifies, queries
assumptions or expands, so building is linear in the size of the answer.  For a recurrent
network's target the time index is read too (``\\delta_j(t+1)``, ``a_{i,t-1}``, ``h^{<t>}``,
``\\sum_t``).
"""
from __future__ import annotations

import fractions
import re
from dataclasses import dataclass, field

import lark
import sympy as sp

from ..parsing import FUNCTIONS, ExpressionError, parse_expression
from .lexing import PARSER, TIME_INDEX, TIME_LETTERS, MAX_EXPONENT, step_at, step_of
from .vocabulary import (ASKED, DELTA, ETA, LAST, OUTPUTS, SUM_END, TIME, U, Vocabulary, a, b, dEda, dEdK, dEdr, dEdw, delta, dg, g, quoted,
                         r, t, updated, w, written_key, z)

#: literal functions a prime may follow: name -> name of the derivative's function
_DERIVATIVES = {"sigmoid": "dsigmoid", "tanh": "dtanh", "exp": "exp", "log": "dlog", "ln": "dlog",
                "relu": "heaviside"}
#: spellings of functions beyond the expression grammar's: sigma as the sigmoid (where it is not the
#: notation's function), ReLU, the step H, sech = 1/cosh
_FUNCTION_ALIASES = {"sigma": "sigmoid", "ReLU": "relu", "RELU": "relu", "Relu": "relu", "H": "heaviside",
                     "Heaviside": "heaviside"}
KNOWN_FUNCTIONS = frozenset({*FUNCTIONS, "relu", "sech"})
#: the roles a conv layer's generic target indexes by position, and one index as written (i+u, j-v+1)
_POSITIONED = ("input", "activation", "hidden", "output", "pre_activation", "delta")
_POSITION = re.compile(r"[+-]?(?:[A-Za-z]|\d{1,2})(?:[+-](?:[A-Za-z]|\d{1,2})){0,3}")
_KERNEL = sp.IndexedBase("K")  # a conv layer's kernel entry by its offsets, K_{m-i,n-j}
_LATEX_WORDS = ("frac", "partial", "displaystyle", "cdot", "mathrm", "text", "left", "right", "ext")


@dataclass
class _Sym:
    """A symbol as written, before it is resolved: head, sub- and superscripts, primes."""

    head: str
    column: int
    subs: list = field(default_factory=list)
    sups: list = field(default_factory=list)
    primes: int = 0
    brackets: list = field(default_factory=list)
    times: list = field(default_factory=list)  # (letter, offset) of a time index; ("", n) for step n

    @property
    def written(self) -> str:
        text = self.head + "'" * self.primes
        text += "".join(f"^{{{''.join(s)}}}" for s in self.sups)
        text += "".join(f"_{{{''.join(s)}}}" for s in self.subs)
        return text + "".join(f"[{n}]" for n in self.brackets)


@dataclass
class _Juxtaposed:
    """A quantity written against a bracket, ``e_j (1 - y_j)``: a product, whose bracket alone takes a
    power written after it (not the product, as the grammar groups ``x (y)^2``)."""

    left: sp.Expr
    right: sp.Expr


@dataclass
class _Partial:
    """``\\partial x`` of a derivative written with a slash (``-\\partial E/\\partial w``)."""

    symbol: _Sym
    sign: int = 1


class Builder(lark.visitors.Transformer_NonRecursive):
    """Parse tree -> SymPy, resolving every symbol through the vocabulary."""

    def __init__(self, vocabulary: Vocabulary):
        super().__init__()
        self.vocabulary = vocabulary
        self.notation = vocabulary.notation
        self.remarks: list[str] = []
        self.clashes: list[tuple] = []  # (symbol as written, its unit's role, the layer its superscript names)
        self.decimals = False
        self.scopes: list[tuple[int, int, str]] = []  # (start, end, letter) of each sum, from :meth:`bind`
        self.digits: int | None = None  # the fewest significant digits of a decimal number written

    # --- structure ---------------------------------------------------------------------
    def start(self, children):
        sides, relations = [self.value(children[0])], []
        for relation, side in zip(children[1::2], children[2::2]):
            relations.append("->" if relation.type == "ARROWREL" else "<-" if relation != "=" else "=")
            sides.append(self.value(side))
        if relations == ["->"]:  # w -> w - eta dC/dw: an assignment
            relations = ["<-"]
        return sides, relations  # Nielsen's w -> w' = w - eta dC/dw keeps its arrow: w must be the old weight

    def sum(self, children):
        terms, sign = [self.value(children[0])], "+"
        for child in children[1:]:
            if isinstance(child, lark.Token):
                sign = child
            else:
                value = self.value(child)
                terms.append(value if sign == "+" else sp.Mul(-1, value, evaluate=False))
        return sp.Add(*terms, evaluate=False)

    def term(self, children):
        parts, divide = [], False  # (divide?, node)
        for child in children:
            if isinstance(child, lark.Token):
                divide = child == "/"
            else:
                parts.append((divide, child))
                divide = False
        return self.product(parts)

    def product(self, parts):
        """A product; a plain ``sum_k`` factor sums the rest of the product, as ``\\sum_k`` does."""
        factors, n = [], 0
        while n < len(parts):
            divide, node = parts[n]
            if isinstance(node, _Sym) and node.head == "sum" and node.subs and len(node.sups) <= 1:
                if n + 1 == len(parts):
                    raise ExpressionError(f"sum_{''.join(node.subs[0])} at column {node.column} has nothing to sum")
                limits = self.summation(node.subs[0], node.sups[0] if node.sups else None, node.column)
                factors.append(sp.Sum(self.product(parts[n + 1:]), limits))
                break
            following = parts[n + 1] if n + 1 < len(parts) else None
            if isinstance(node, _Partial) and following and following[0] and isinstance(following[1], _Partial):
                value = self.derivative(node.symbol, following[1].symbol)  # \partial E / \partial w
                value, n = (value if node.sign > 0 else sp.Mul(-1, value, evaluate=False)), n + 2
            elif following and not following[0] and self.bare_function(node):
                value, n = self.call(node, [following[1]]), n + 2  # \tanh z_j, \cosh^2 z_j
            else:
                value, n = self.value(node), n + 1
            factors.append(sp.Pow(value, -1, evaluate=False) if divide else value)
        return sp.Mul(*factors, evaluate=False)

    def bare_function(self, node) -> bool:
        """A literal function written without parentheses (\\tanh z_j): it takes the next factor."""
        return (isinstance(node, _Sym) and not node.subs and not node.brackets
                and self.vocabulary.role_of(node.head) is None
                and _FUNCTION_ALIASES.get(node.head, node.head) in KNOWN_FUNCTIONS - {"max", "min"})

    def signed(self, children):
        sign, value = children
        if isinstance(value, _Partial):
            return _Partial(value.symbol, -value.sign if sign == "-" else value.sign)
        value = self.value(value)
        return value if sign == "+" else sp.Mul(-1, value, evaluate=False)

    def group(self, children):
        inner = children[1]
        return self.value(inner) if isinstance(inner, _Juxtaposed) else inner

    def number(self, children):
        token, = children
        significant = len(re.sub(r"[eE].*|\D", "", token).lstrip("0"))
        self.decimals |= significant >= 4  # a value read off the example
        if "." in token or "e" in token.lower():  # 2 is exact; 0.50 is given to 2 digits
            self.digits = significant if self.digits is None else min(significant, self.digits)
        if sum(c.isdigit() for c in token) > 20:
            raise ExpressionError(f"the number at column {token.start_pos + 1} has more than 20 digits")
        _, _, power = token.lower().partition("e")
        if power and abs(int(power)) > MAX_EXPONENT:
            raise ExpressionError(f"the number {token!s} at column {token.start_pos + 1} is out of range "
                                  f"(decimal exponent at most {MAX_EXPONENT})")
        return sp.Rational(fractions.Fraction(str(token)))  # exact, as the token is digits only (grammar)

    def pow(self, children):
        base, token, exponent = children
        if isinstance(base, _Juxtaposed):  # e_j (1 - y_j)^2: the power is the bracket's, as written
            power = sp.Pow(base.right, self.exponent(exponent, token.start_pos + 1), evaluate=False)
            return sp.Mul(base.left, power, evaluate=False)
        return sp.Pow(self.value(base), self.exponent(exponent, token.start_pos + 1), evaluate=False)

    def exponent(self, items, column):
        text = "".join(items)
        if re.fullmatch(r"-?\d{1,3}", text):  # the usual case, without a parser
            value = sp.Integer(int(text))
        else:
            try:
                value = parse_expression(text, {}, max_exponent=MAX_EXPONENT)
            except ExpressionError:
                value = None
        if value is None or not value.is_Rational or abs(value) > MAX_EXPONENT:
            raise ExpressionError(f"exponent {text!r} at column {column}: exponents must be numbers "
                                  f"of at most {MAX_EXPONENT} (write exp(...) for e^x)")
        return value

    def frac(self, children):
        if len(children) == 3:
            return sp.Mul(int(children[1]), sp.Pow(int(children[2]), -1, evaluate=False), evaluate=False)
        numerator, denominator = children[2], children[5]
        if isinstance(numerator, _Partial) and isinstance(denominator, _Partial):
            return self.derivative(numerator.symbol, denominator.symbol)
        return sp.Mul(self.value(numerator), sp.Pow(self.value(denominator), -1, evaluate=False), evaluate=False)

    def partial(self, children):
        if len(children) > 2:  # \\partial z_j(t): the time index of a recurrent network's quantity
            timed = self.timed(children[1:])
            if not isinstance(timed, _Sym):
                raise ExpressionError(f"\\partial {children[1].written}({children[3]}) at column {children[1].column}: "
                                      "a time index is read for a recurrent network's targets only")
            return _Partial(timed)
        return _Partial(children[1])

    def bigsum(self, children):
        _, limits, body = children
        if not limits or limits[0] is None:
            raise ExpressionError(f"\\sum at column {children[0].start_pos + 1} needs its index: \\sum_k")
        return sp.Sum(self.value(body), self.summation(limits[0], limits[1], children[0].start_pos + 1))

    def limits(self, children):
        lower = children[1] if children and children[0] == "_" else None
        upper = children[-1] if len(children) > 1 and children[-2] in ("^", "**") else None
        return [lower, upper]

    def summation(self, items, upper, column) -> tuple:
        """(index, first, last) of a sum as written (\\sum_k, \\sum_{k=1}^{K}, \\sum_{t=2}^{T}): over a
        layer, positions first..last from 0 (last :data:`SUM_END` for the whole layer; the limits are
        read 1-based, k = 0 or 1 both being the first unit); over the steps, first..last from 1 in
        terms of T (:data:`LAST`) or numbers.  A sum over part of a range is another expression."""
        cut = items.index("=") if "=" in items else len(items)
        index = self.summation_index(items[:cut], column)
        lower = "".join(items[cut + 1:]).replace(" ", "")
        upper = "".join(upper).replace(" ", "") if upper is not None else ""
        if index == TIME:
            if upper == items[0]:  # \sum_{t=1}^{t}: t would be read as the target's step, not as the sum's
                raise ExpressionError(f"the sum at column {column} ends at its own letter {upper!r}; end it at T, "
                                      "as in \\sum_{t=1}^{T}")
            return TIME, self.step_limit(lower, 1, column), self.step_limit(upper, LAST, column)
        if lower and not lower.isdigit():
            raise ExpressionError(f"the sum at column {column} starts at {lower!r}; start it at a unit number, "
                                  "as in \\sum_{k=1}^{K}")
        if upper and not upper.isdigit() and not self.layer_size(upper, items[0]):
            raise ExpressionError(f"the sum at column {column} ends at {upper!r}; end it at the layer's size (a "
                                  "letter such as K) or a unit number, as in \\sum_{k=1}^{K}")
        based = 0 if lower == "0" else 1  # k = 0 counts from 0; k = 1, or no limit, from 1
        first = max(0, min(int(lower or 1), 999) - based)
        last = SUM_END if not upper.isdigit() else sp.Integer(min(int(upper), 999) - based)  # a letter: the layer
        return index, sp.Integer(first), last

    def layer_size(self, text: str, summed: str) -> bool:
        """Whether a sum's end names a layer's size (K, n, n_{l+1}): one letter that is no index
        letter, quantity or the sum's own letter; K-1, j or z_j sum over part of the layer."""
        match = re.fullmatch(r"([A-Za-z])(?:_[()lL0-9+-]*)?", text)
        if match is None:
            return False
        letter, letters = match.group(1), self.vocabulary.notation.letters
        units = {x.lstrip("\\").replace("ell", "l") for x in (*letters.hidden, *letters.output)}
        return (letter not in {summed, "l", *units, *self.vocabulary.letters}
                and self.vocabulary.role_of(letter) is None)

    def step_limit(self, text: str, default, column) -> sp.Expr:
        """A time sum's limit: a step number, or t, T plus or minus a number; ``default`` when absent."""
        if not text:
            return sp.sympify(default)
        if not TIME_INDEX.fullmatch(text) and not text.isdigit():
            raise ExpressionError(f"the limit {text!r} of the sum at column {column} is not read; write a step "
                                  "number or T - 1, as in \\sum_{t=1}^{T}")
        return step_at(*step_of(text))

    def summation_index(self, items, column):
        if self.vocabulary.timed and items and items[0] in TIME_LETTERS:  # \\sum_t, \\sum_{t=1}^{T}, \\sum_\\tau
            return TIME
        if "," in "".join(map(str, items)):  # \sum_{i,j}^{n}: one sum per letter (without limits, two sums)
            raise ExpressionError(f"the sum at column {column} runs over several letters; write one sum per letter, "
                                  "as in \\sum_{i=1}^{n} \\sum_{j=1}^{n}")
        letters = [x for x in self.indices(items, column) if x != "="]
        if not letters or not letters[0].isalpha() or len(letters[0]) > 1:
            raise ExpressionError(f"the sum at column {column} needs one index letter, e.g. \\sum_k")
        return self.letter(letters[0], column)

    def bind(self, tree) -> None:
        """Where each summation letter is bound: from its sum to the end of what it sums (the body of
        \\sum_k, the argument of sum_k(...) or sum(..., k), the rest of the product after sum_k)."""
        for sub in tree.iter_subtrees():
            if sub.data == "bigsum" and isinstance(sub.children[1], lark.Tree) and sub.children[1].children:
                self.scopes.append((sub.meta.start_pos, sub.meta.end_pos, _first_letter(sub.children[1].children[1])))
            elif sub.data in ("term", "apply") and not sub.meta.empty:
                for child in sub.children:
                    head = _sum_head(child)
                    if head is not None:
                        self.scopes.append((child.meta.start_pos, sub.meta.end_pos, head))
                last = sub.children[-2] if sub.data == "apply" and len(sub.children) > 4 else None
                if _sum_head(sub.children[0], "") == "" and isinstance(last, lark.Tree) and last.data == "symbol":
                    self.scopes.append((sub.meta.start_pos, sub.meta.end_pos, _first_letter(last)))  # sum(x, k)

    def letter(self, letter: str, column: int) -> sp.Symbol:
        """The role (or free symbol) an index letter at ``column`` names: inside a sum over it, a bound
        letter is local to the sum (:attr:`Vocabulary.bound`)."""
        if letter in self.vocabulary.bound and any(start < column <= end and bound == letter
                                                   for start, end, bound in self.scopes):
            return self.vocabulary.bound[letter]
        return self.vocabulary.letters.get(letter, sp.Symbol(letter))

    # --- scripts and symbols -----------------------------------------------------------
    def script(self, children):
        items = [str(x) for c in children for x in (c if isinstance(c, list) else [c])]
        return items[1:-1] if items[0] in ("{", "(") else items

    def nested(self, children):
        inner = [str(x) for c in children[1:-1] for x in (c if isinstance(c, list) else [c])]
        return ["(", *inner, ")"]

    def angled(self, children):  # h^{<t>}, as in the sequence-model notation
        inner = [str(x) for c in children[1:-1] for x in (c if isinstance(c, list) else [c])]
        return ["<", *inner, ">"]

    def head(self, children):
        name = str(children[-2] if children[-1] == "}" else children[-1]).lstrip("\\")
        if children[0].type == "FONT" and str(children[0]) == "\\hat":
            name += "hat"
        return _Sym(name, children[0].start_pos + 1)

    def symbol(self, children):
        sym = children[0]
        for kind, payload in children[1:]:
            if kind == "prime" or kind == "sup" and payload in (["\\prime"], ["'"]):
                sym.primes += 1
            else:
                getattr(sym, {"sub": "subs", "sup": "sups", "bracket": "brackets"}[kind]).append(payload)
        return sym

    def sub(self, children):
        return "sub", children[1]

    def sup(self, children):
        return "sup", children[1]

    def prime(self, children):
        return "prime", None

    def bracket(self, children):
        return "bracket", int(children[1])

    def apply(self, children):
        sym, args = children[0], [c for c in children[2:-1] if not (isinstance(c, lark.Token) and c == ",")]
        if isinstance(sym, _Sym):
            if sym.head == "sum" and not sym.subs and len(args) == 2 and isinstance(args[1], _Sym):
                return sp.Sum(self.value(args[0]), self.summation([args[1].head], None, args[1].column))
            if sym.head == "sum" and sym.subs and len(args) == 1:  # sum_k(w_jk delta_k)
                return sp.Sum(self.value(args[0]), self.summation(sym.subs[0], sym.sups[0] if sym.sups else None,
                                                                 sym.column))
            if self.function(sym, len(args)) is not None:
                return self.call(sym, args)
        if len(args) != 1:
            raise ExpressionError(f"{sym.written if isinstance(sym, _Sym) else 'this'} is not a function; "
                                  "write a product with *")
        return _Juxtaposed(self.value(sym), self.value(args[0]))

    def timed(self, children):
        """``X(t)``, ``X(t+1)``, ``a[0][1](2)``: a time index on a quantity of a recurrent network's
        target; otherwise what the parentheses always meant (a call, or a product)."""
        sym, _, token, _ = children
        letter, offset = step_of(str(token))
        if isinstance(sym, _Sym) and self.vocabulary.reads_time and self.function(sym, 1) is None:
            sym.times.append((letter, offset))
            return sym
        if not letter:
            return self.apply([sym, None, self.number([token]), None])
        argument = _Sym(letter.lstrip("\\"), token.start_pos + 1)
        return self.apply([sym, None, sp.Add(self.value(argument), offset, evaluate=False) if offset else argument,
                           None])

    def call(self, sym: _Sym, args) -> sp.Expr:
        """``sym`` applied to ``args``; a power on the name is a power of the value, as in
        \\sigma^2(z_j) and \\tanh^2(z_j) (the square of the function, not the function)."""
        function = self.function(sym, len(args))
        values = [self.value(x) for x in args]
        if function in (g, dg) and sym.subs:
            self.check_function_index(sym, values[0])
        result = function(*values)
        if len(sym.sups) > 1:
            raise ExpressionError(f"{sym.written} at column {sym.column}: one power of a function is read")
        for items in sym.sups:
            result = sp.Pow(result, self.exponent(items, sym.column), evaluate=False)
        return result

    def subexpression(self, items, column) -> sp.Expr:
        """A superscript read as an expression (the exponent of e^{-z_k}, e^{-\\mathrm{net}_j})."""
        text = re.sub(r"\\(mathrm|text|operatorname|mathit) \( (\w+) \)", r"\\\1{\2}", " ".join(items))
        try:
            tree = PARSER.parse(text)
            builder = Builder(self.vocabulary)
            sides, _ = builder.transform(tree)
        except lark.exceptions.UnexpectedInput:
            raise ExpressionError(f"the exponent {text!r} at column {column} is not read; write exp(...)") from None
        except lark.exceptions.VisitError as error:
            raise error.orig_exc from None
        if len(sides) != 1:
            raise ExpressionError(f"the exponent {text!r} at column {column} is not an expression")
        self.remarks += builder.remarks
        return sides[0]

    def check_function_index(self, sym: _Sym, argument) -> None:
        """f_j'(s_j): a unit's own function carries the unit's index; f_i'(s_j) is the
        derivative of the wrong unit's activation."""
        letters = [x for items in sym.subs for x in self.indices(items, sym.column)]
        units = [x.indices[0] for x in sp.preorder_traversal(argument) if isinstance(x, sp.Indexed) and x.base == z]
        if len(letters) == 1 and units and self.letter(letters[0], sym.column) != units[0]:
            self.remarks.append(f"{sym.written}: the function's index {letters[0]} names another unit than its "
                                f"argument; the activation derivative of a unit carries that unit's index")

    def function(self, sym: _Sym, count: int):
        """The SymPy function ``sym(...)`` stands for, or None when sym is a quantity."""
        role = self.vocabulary.role_of(sym.head)
        name = _FUNCTION_ALIASES.get(sym.head, sym.head)
        if role != "function" and name not in KNOWN_FUNCTIONS:
            if sym.primes:
                raise ExpressionError(f"{sym.written} at column {sym.column}: a prime needs a function "
                                      f"({self.notation.plain['function'][0]}'(...))")
            return None
        if count != 1 and name not in ("max", "min"):
            raise ExpressionError(f"{sym.head}() at column {sym.column} takes exactly one argument")
        if sym.primes > 1:
            raise ExpressionError(f"{sym.written} at column {sym.column}: only first derivatives are read")
        if role == "function":
            return dg if sym.primes else g
        if sym.primes:
            if name not in _DERIVATIVES:
                raise ExpressionError(f"{sym.written} at column {sym.column}: write the derivative of {name} out")
            return sp.Function(_DERIVATIVES[name])
        return sp.Function(name)

    def value(self, node) -> sp.Expr:
        """A finished SymPy expression for a child node."""
        if isinstance(node, _Sym):
            return self.resolve(node)
        if isinstance(node, _Juxtaposed):
            return sp.Mul(node.left, node.right, evaluate=False)
        if isinstance(node, _Partial):
            raise ExpressionError(f"\\partial before {node.symbol.written} at column {node.symbol.column} must be "
                                  "inside \\frac{\\partial ...}{\\partial ...}")
        return node

    def indices(self, items, column) -> list[str]:
        """Subscript tokens -> index letters (``jk`` -> j, k; ``\\ell`` -> l; ``j0`` -> j, 0)."""
        out = []
        for item in items:
            if item in ("\\ell", "l"):
                out.append("l")
            elif item in (",", "\\to", "\\rightarrow", "->", "\\in", "(", ")"):
                continue
            elif item == "=":
                out.append("=")
            elif re.fullmatch(r"[A-Za-z0-9]+", item):
                out.extend(re.findall(r"[A-Za-z]|[0-9]+", item))
            else:
                raise ExpressionError(f"subscript {''.join(items)!r} at column {column} is not an index")
        return out

    def resolve(self, sym: _Sym) -> sp.Expr:
        concrete = self.concrete(sym)
        if concrete is not None:
            return concrete
        role = self.vocabulary.role_of(sym.head)
        if sym.head == "e" and role in (None, "error_signal") and not sym.subs and len(sym.sups) == 1 \
                and not sym.primes:  # e^{-z_k} is exp(-z_k)
            return sp.exp(self.subexpression(sym.sups[0], sym.column), evaluate=False)
        if role is None and not sym.subs and not sym.brackets:
            split = self.split(sym)
            if split is not None:
                return self.resolve(split)
        if role is None and self.vocabulary.positions and sym.head == "K" and sym.subs and not sym.sups:
            return self.positioned("kernel", sym, None)
        if role is None:
            if sym.head == "Delta" and not sym.subs and not sym.sups:
                return DELTA
            if sym.head == "K" and not sym.subs and not sym.sups:
                return OUTPUTS
            if sym.head == "sum":
                raise ExpressionError(f"sum at column {sym.column} needs its index and what it sums: "
                                      "sum_k w_jk*delta_k, or sum(w_jk*delta_k, k)")
            if sym.head in _LATEX_WORDS:  # pasted from a page that dropped the backslashes
                raise ExpressionError(f"{sym.head} at column {sym.column} looks like LaTeX that lost its "
                                      f"backslash: write \\{sym.head}")
            if sym.head in KNOWN_FUNCTIONS or sym.head in _FUNCTION_ALIASES:
                raise ExpressionError(f"{sym.head} at column {sym.column} needs its argument: {sym.head}(z)")
            raise ExpressionError(f"unknown symbol {sym.written} at column {sym.column}: the {self.notation.name} "
                                  f"notation has {self.vocabulary.describe()}")
        if role == "function":
            raise ExpressionError(f"{sym.written} at column {sym.column} needs its argument, e.g. "
                                  f"{sym.head}{chr(39) * sym.primes}(z_j)")
        if sym.primes and not (role == "weight" and sym.primes == 1):  # w' is the new weight (Nielsen)
            raise ExpressionError(f"{sym.written} at column {sym.column}: a prime needs a function")
        if sym.brackets:
            raise ExpressionError(f"{sym.written} at column {sym.column}: [..] indices name a concrete network's "
                                  "units; this target is generic, write letters: "
                                  f"{sym.head}_j")
        power, new, layer = None, bool(sym.primes), None
        for items in sym.sups:
            kind, payload = self.superscript(items, sym)
            if kind == "power":
                power = payload
            elif kind == "new":
                new = True
            elif kind == "layer":
                layer = payload
            elif kind == "time":
                sym.times.append(payload)
        if self.vocabulary.positions and role in _POSITIONED:
            return self.positioned(role, sym, power)
        letters = [x for items in map(self.time_subscript(sym), sym.subs) for x in self.indices(items, sym.column)]
        if len(sym.times) > 1:
            raise ExpressionError(f"{sym.written} at column {sym.column} has {len(sym.times)} time indices; "
                                  "write one, as in a_j(t)")
        if self.vocabulary.per_step and sym.times and step_at(*sym.times[0]) != TIME:
            raise ExpressionError(f"{sym.written} at column {sym.column}: this target is the same at every step; "
                                  "write each quantity at step t, as in a_k(t)")
        quantity = self.quantity(role, letters, sym, layer, step_at(*sym.times[0]) if sym.times else TIME)
        if new:
            if role != "weight":
                raise ExpressionError(f"{sym.written} at column {sym.column}: only a weight has a new value")
            quantity = updated(quantity)
        return sp.Pow(quantity, power, evaluate=False) if power is not None else quantity

    def positioned(self, role: str, sym: _Sym, power) -> sp.Expr:
        """A conv layer's unit by its position: one index per axis, each a letter with letters or
        numbers added or subtracted (a_{i+u,j+v}, delta_{i,j}, z_{i-1,j})."""
        count = self.vocabulary.positions
        parts = "".join(x for items in sym.subs for x in items).replace(" ", "").split(",") if sym.subs else []
        if len(sym.subs) > 1 or len(parts) != count or not all(_POSITION.fullmatch(x) for x in parts):
            raise ExpressionError(f"{sym.written} at column {sym.column} needs {count} position indices, like "
                                  f"{sym.head}_{{{','.join('ij'[:count])}}} or {sym.head}_{{{','.join(['i+u', 'j+v'][:count])}}}")
        indices = []
        for part in parts:
            index = sp.Integer(0)
            for sign, term in re.findall(r"([+-]?)([A-Za-z]|\d+)", part):
                value = sp.Integer(int(term)) if term.isdigit() else self.letter(term, sym.column)
                index += -value if sign == "-" else value
            indices.append(index)
        base = {"pre_activation": z, "delta": delta, "kernel": _KERNEL}.get(role, a)
        value = base[tuple(indices)]
        if role == "delta" and self.notation.delta_sign == -1:
            value = sp.Mul(-1, value, evaluate=False)
        return sp.Pow(value, power, evaluate=False) if power is not None else value

    def split(self, sym: _Sym) -> _Sym | None:
        """``zj``, ``wjk``, ``deltak``: a symbol and index letters run together, read as ``z_j``
        when the tail is made of the target's index letters only."""
        for cut in range(len(sym.head) - 1, 0, -1):
            head, tail = sym.head[:cut], sym.head[cut:]
            role = self.vocabulary.role_of(head)
            if role not in (None, "function") and all(c in self.vocabulary.letters for c in tail):
                return _Sym(head, sym.column, [[tail]], sym.sups, sym.primes)
        return None

    def time_subscript(self, sym: _Sym):
        """A subscript's items without a time index after its comma (delta_{j,t+1}), which
        goes to ``sym.times``."""
        def split(items):
            if not self.vocabulary.reads_time or "," not in items:
                return items
            cut = len(items) - 1 - items[::-1].index(",")
            tail = "".join(items[cut + 1:]).replace(" ", "")
            if not TIME_INDEX.fullmatch(tail) or not tail[:1].isalpha() and not tail.startswith("\\"):
                return items
            sym.times.append(step_of(tail))
            return items[:cut]
        return split

    def superscript(self, items, sym: _Sym):
        text = "".join(items).replace(" ", "")
        time = TIME_INDEX.fullmatch(text) if self.vocabulary.reads_time else None
        if time and (text[0] in "(<" or time.group(1) not in "nT"):  # ^{(t)}, ^{<t+1>}, ^t; ^T is a transpose
            return "time", step_of(text)
        if re.fullmatch(r"\(?(\+|new|\*|[nt]\+1|\\tau\+1)\)?", text):
            return "new", None
        if re.fullmatch(r"\(?(old|[nt]|\\tau)\)?", text):
            return "old", None
        if text == "T":
            raise ExpressionError(f"{sym.written} at column {sym.column}: matrix form is not read; write the "
                                  "formula for one neuron j with a sum over k")
        layer = re.fullmatch(r"\(?([lL])([+-]\d)?\)?", text)
        if layer:
            return "layer", (layer.group(1), int(layer.group(2) or 0))
        return "power", self.exponent(items, sym.column)

    def quantity(self, role: str, letters: list[str], sym: _Sym, layer, time: sp.Expr) -> sp.Expr:
        """``role`` with its index letters; a unit's quantity of a recurrent network's target
        also carries its ``time`` (weights are the same at every step)."""
        notation = self.notation
        arity = {"weight": 2, "recurrent_weight": 2, "error": 0, "learning_rate": 0}.get(role, 1)
        if not letters and role in ("target", "output", "error_signal") and self.vocabulary.output:
            letters = [next(k for k, v in self.vocabulary.letters.items() if v == U)]  # one output: y - t
        if len(letters) != arity:
            example = {0: sym.head, 1: f"{sym.head}_j", 2: f"{sym.head}_{{jk}}"}[arity]
            hint = " (one neuron at a time: the vector form is not read)" if not letters else ""
            raise ExpressionError(f"{sym.written} at column {sym.column} needs {arity} index letter(s), "
                                  f"like {example}{hint}")
        if role == "error":
            raise ExpressionError(f"{sym.written} at column {sym.column}: the error appears only in derivatives, "
                                  f"\\frac{{\\partial {sym.head}}}{{\\partial ...}}")
        if role == "learning_rate":
            return ETA
        if role in ("weight", "recurrent_weight") and notation.weight_order == "to_from":
            letters = letters[::-1]
        if role == "weight" and letters[0] == "0" and notation.bias == "weight":
            return self.indexed(b, [letters[1]], sym, layer, time)
        if letters[0] == "0" and role in ("input", "activation", "hidden") and notation.bias == "weight":
            return sp.Integer(1)  # y_0 = +1, the unit the bias weight comes from
        base = {"input": a, "activation": a, "hidden": a, "output": a, "pre_activation": z, "weight": w,
                "recurrent_weight": r, "bias": b, "target": t, "delta": delta, "error_signal": None}[role]
        if role == "error_signal":
            return sp.Add(self.indexed(t, letters, sym, layer, time),
                          sp.Mul(-1, self.indexed(a, letters, sym, layer, time), evaluate=False), evaluate=False)
        value = self.indexed(base, letters, sym, layer, time)
        if role == "delta" and notation.delta_sign == -1:
            return sp.Mul(-1, value, evaluate=False)
        return value

    def indexed(self, base, letters, sym: _Sym, layer, time: sp.Expr) -> sp.Expr:
        indices = []
        for letter in letters:
            if not letter.isalpha():
                raise ExpressionError(f"{sym.written} at column {sym.column}: index {letter} is a number; "
                                      "generic answers use index letters")
            indices.append(self.letter(letter, sym.column))
        if layer is not None:
            self.check_layer(base, indices, sym, layer)
        if self.vocabulary.timed and base in (a, z, t, delta):
            indices.append(time)
        return base[tuple(indices)]

    def check_layer(self, base, indices, sym: _Sym, layer) -> None:
        """w^{l+1}_{kj}: the superscript must be the layer of the unit the letter names (for a
        weight, of the later of its two units); a contradiction makes the answer wrong, not unreadable."""
        letter, offset = layer
        roles = [self.vocabulary.offsets.get(index) for index in indices]
        if None in roles:
            return
        expected = max(roles)  # a weight carries the layer of the later unit, even with swapped indices
        if letter not in self.vocabulary.layer_bases or offset != expected:
            name = {0: "l"}.get(expected, f"l{expected:+d}")
            self.remarks.append(f"{sym.written}: the layer superscript should be {name} here "
                                f"(the index letter names a unit of layer {name})")
            if len(indices) == 1 and letter in self.vocabulary.layer_bases:
                self.clashes.append((sym.written, str(indices[0]), offset))

    def swapped_letters(self) -> str | None:
        """Why superscripts that contradict their letters are right and the subscripts swapped
        (Nielsen's a^{l-1}_j delta^l_k for a^{l-1}_k delta^l_j): advice to change the layers
        would still be wrong."""
        letter_of = {self.vocabulary.offsets[role]: letter for letter, role in self.vocabulary.letters.items()}
        role_letter = {str(role): letter for letter, role in self.vocabulary.letters.items()}
        pairs = {(role_letter.get(used), letter_of.get(offset)) for _, used, offset in self.clashes}
        if not self.clashes or len(self.clashes) != len(self.remarks) or any(None in p for p in pairs) \
                or any((b, a) not in pairs for a, b in pairs):
            return None
        first, second = min(pairs)
        written = ", ".join(w for w, _, _ in self.clashes)
        return (f"The subscripts are swapped, not the layers: exchange {first} and {second} in {written} "
                "(the layer superscripts are right; each letter must name the unit of its layer)")

    def concrete(self, sym: _Sym) -> sp.Expr | None:
        """A concrete network's own symbol, w[0][1][2], z[1][0], or the notation's letter with
        brackets (Haykin's v[1][0] is z[1][0])."""
        names = self.vocabulary.names
        if not names and not self.vocabulary.printed:
            return None
        if sym.brackets and names:
            role = self.vocabulary.role_of(sym.head)
            base = {"input": "x", "activation": "a", "hidden": "a", "output": "a", "pre_activation": "z",
                    "weight": "w", "recurrent_weight": "r", "bias": "b", "target": "t", "delta": "delta"}.get(
                role, sym.head)
            key = base + "".join(f"[{n}]" for n in sym.brackets) + "".join(f"({n})" for _, n in sym.times)
            if key not in names or any(letter for letter, _ in sym.times):
                steps = (", r[h][i][j]; a unit at step s (0-based) as a[l][j](s), t[s][k]" if self.vocabulary.timed
                         else "")
                raise ExpressionError(f"{sym.written} at column {sym.column} is not a symbol of this network "
                                      f"(indices are 0-based: w[l][i][j], z[l][j], a[l][j], x[i], t[k]{steps})")
            return self.signed_delta(names[key], role)
        printed = self.vocabulary.printed
        if printed and sym.subs and not sym.primes and len(sym.sups) <= 1 and not sym.times:
            written = (sym.head, "".join(sym.sups[0]) if sym.sups else "", "".join(x for items in sym.subs for x in items))
            key = next((k for k in (written_key(*written, commas=True), written_key(*written)) if k in printed), None)
            if key is not None:  # a conv sheet's K_{1,0,2,2} with its commas, w_{21} however written
                return self.signed_delta(printed[key], self.vocabulary.role_of(sym.head))
            if any(x.isdigit() for items in sym.subs for x in items):
                raise ExpressionError(f"{sym.written} at column {sym.column} is not a symbol of your sheet: write the "
                                      "symbols as the sheet prints them (\\delta^{(1)}_{1}, w^{(1)}_{21}, x_{2}; "
                                      "units counted from 1) or the network's names (delta[0][0], w[0][1][0])")
        return None

    def signed_delta(self, value: sp.Expr, role: str | None) -> sp.Expr:
        """A concrete delta as the notation means it (Haykin's delta is -dE/dv)."""
        return sp.Mul(-1, value, evaluate=False) if role == "delta" and self.notation.delta_sign == -1 else value

    def is_error(self, sym: _Sym) -> bool:
        """E, C, or a spelling with an index the notation lists (Bishop's E_n)."""
        if self.vocabulary.role_of(sym.head) != "error":
            return False
        return not sym.subs or self.vocabulary.role_of(sym.head + "".join(x for items in sym.subs for x in items)) == "error"

    @staticmethod
    def unit_of(expression) -> sp.Expr:
        """The unit an activation or Haykin's e_j = d_j - y_j is about."""
        found = [x.indices[0] for x in sp.preorder_traversal(expression) if isinstance(x, sp.Indexed) and x.base == a]
        if not found:
            raise ExpressionError("a derivative by e_j or y_j needs the unit's index")
        return found[0]

    def derivative(self, numerator: _Sym, denominator: _Sym) -> sp.Expr:
        """The partial derivatives a chain-rule answer is made of, by what they equal."""
        lower = self.resolve(denominator)
        bottom = self.vocabulary.role_of(denominator.head)
        error = self.is_error(numerator)
        if error and bottom == "error_signal":  # Haykin: E = 1/2 sum e_j^2 with e_j = d_j - y_j
            return sp.Mul(-1, dEda[self.unit_of(lower)], evaluate=False)
        if self.vocabulary.role_of(numerator.head) == "error_signal" and bottom in ("activation", "output"):
            same = self.unit_of(self.resolve(numerator)) == self.unit_of(lower)
            return sp.Integer(-1) if same else sp.Integer(0)
        if error and isinstance(lower, sp.Symbol) and (self.vocabulary.names or self.vocabulary.printed):
            if lower != self.vocabulary.asked:  # a concrete question's own derivative, or none
                asked = next((k for k, v in self.vocabulary.printed.items() if v == self.vocabulary.asked), "")
                raise NotAsked(f"\\partial {numerator.written} / \\partial {denominator.written} at column "
                               f"{numerator.column} is not what this question asks"
                               + (f" (the derivative by {_braced(asked)})" if asked else ""))
            return ASKED
        if error and isinstance(lower, sp.Indexed) and lower.base == _KERNEL:  # a conv layer's dE/dK_{u,v}
            return quoted(dEdK[lower.indices])
        if error and isinstance(lower, sp.Indexed):
            if bottom in ("activation", "hidden", "output", "input"):
                return dEda[lower.indices]
            if lower.base in (z, b):  # dE/dz_j = delta_j (the internal one), dE/db_j = delta_j
                return quoted(delta[lower.indices])
            if lower.base in (w, r) and self.vocabulary.timed:  # a tied weight: its gradient sums over the steps
                return quoted((dEdw if lower.base == w else dEdr)[lower.indices])
            if lower.base == w:
                source, destination = lower.indices
                return quoted(sp.Mul(delta[destination], a[source], evaluate=False))
        upper = None if error else self.resolve(numerator)
        if isinstance(upper, sp.Indexed) and isinstance(lower, sp.Indexed):
            pair = (upper.base, lower.base)
            if pair == (a, z):
                return dg(lower) if upper.indices == lower.indices else sp.Integer(0)
            if pair == (z, a):  # through time: z_m(t+1) depends on a_j(t) through r_jm
                ahead = upper.indices[1] - lower.indices[1] if self.vocabulary.timed else 0
                if ahead not in (0, 1):
                    return sp.Integer(0)
                return (w if ahead == 0 else r)[lower.indices[0], upper.indices[0]]
            if pair == (z, w):
                return a[lower.indices[0]] if lower.indices[1] == upper.indices[0] else sp.Integer(0)
            if pair == (z, r):  # z_j(t) depends on r_ij through a_i(t-1)
                return (a[lower.indices[0], upper.indices[1] - 1] if lower.indices[1] == upper.indices[0]
                        else sp.Integer(0))
            if pair == (z, b):
                return sp.Integer(1) if lower.indices == upper.indices else sp.Integer(0)
            if pair == (z, z):  # Nielsen's dz^{l+1}_k/dz^l_j = w^{l+1}_kj sigma'(z^l_j)
                return sp.Mul(w[lower.indices[0], upper.indices[0]], dg(lower), evaluate=False)
            if pair == (a, a):
                return sp.Mul(w[lower.indices[0], upper.indices[0]], dg(z[upper.indices]), evaluate=False)
            if pair == (a, w):  # Wikipedia's do_j/dw_ij = phi'(net_j) o_i
                source, destination = lower.indices
                return (sp.Mul(dg(z[destination]), a[source], evaluate=False) if destination == upper.indices[0]
                        else sp.Integer(0))
        raise ExpressionError(f"\\partial {numerator.written} / \\partial {denominator.written} at column "
                              f"{numerator.column}: not a derivative this checker reads; write what it equals")


def _braced(key: str) -> str:
    """A written key as LaTeX again: K_1,0,2,2 as K_{1,0,2,2}, w^(1)_21 as w^{(1)}_{21}."""
    return re.sub(r"([_^])([^_^]+)", r"\1{\2}", key)


class NotAsked(ExpressionError):
    """A concrete question's derivative written by another quantity of the sheet than the one asked."""


def _first_letter(script) -> str:
    """The index letter a sum's subscript starts with (k of {k=1}, l of \\ell)."""
    tokens = [str(x) for x in (script.scan_values(lambda v: isinstance(v, lark.Token)) if isinstance(script, lark.Tree)
                               else [script])]
    letters = [x.lstrip("\\") for x in tokens if x not in "{}()"]
    first = letters[0] if letters else ""
    return "l" if first == "ell" else first[:1]


def _sum_head(node, unscripted: str | None = None) -> str | None:
    """The letter of a plain sum_k (sum_{k=1}^K) written as a symbol; ``unscripted`` for a bare
    ``sum``; None for anything else."""
    if not isinstance(node, lark.Tree) or node.data != "symbol":
        return None
    head = node.children[0]
    if not isinstance(head, lark.Tree) or str(head.children[-1]) != "sum":
        return None
    subscript = next((c for c in node.children[1:] if isinstance(c, lark.Tree) and c.data == "sub"), None)
    return _first_letter(subscript.children[1]) if subscript is not None else unscripted
