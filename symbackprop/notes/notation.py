"""Notation presets: which symbol a course writes for each role, as data files.

The mathematics never depends on notation.  A preset (``notations/<name>.toml``) maps
the roles of the derivation (input, pre-activation, activation, weight, ...) to LaTeX
symbols and fixes the conventions a text makes: the order of a weight's indices, where
the bias lives, the sign of the local gradient, how layers are numbered and which index
letters a lecture uses.  The printer (:mod:`symbackprop.rendering`) and the answer
checker read a :class:`Notation`; neither branches on a preset's name.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import files
from ..errors import SpecError
from ..limits import MAX_SPEC_BYTES

_PACKAGED = Path(__file__).parent.parent / "notations"
_SOURCE = Path(__file__).parent.parent.parent / "notations"
PRESETS = _PACKAGED if _PACKAGED.is_dir() else _SOURCE

#: Every role a preset names.  ``output`` is the activation of an output unit (Bishop's
#: y_k beside the hidden z_j), ``hidden`` that of a hidden unit where a text gives it its
#: own letter (h_j), ``weight_matrix`` the matrix of a layer's weights (W, or Nielsen's w),
#: ``error_signal`` Haykin's e_j = d_j - y_j, ``sigmoid`` the letter a text keeps for the logistic
#: sigmoid (Nielsen's sigma) where other activations get the general ``function``, ``recurrent_weight``
#: the weight r_ij of an Elman layer from its unit i at step t-1 to its unit j at t.
ROLES = ("input", "pre_activation", "activation", "hidden", "output", "function", "sigmoid", "weight",
         "weight_matrix", "recurrent_weight", "bias", "target", "error", "error_signal", "delta", "learning_rate")
_OPTIONAL_ROLES = ("hidden", "output", "weight_matrix", "recurrent_weight", "error_signal", "sigmoid")
#: The longest symbol a notation may give (a role's LaTeX goes into every formula).
SYMBOL_LIMIT = 64
#: LaTeX commands a symbol may use: Greek letters, accents, math alphabets and a few signs.
_COMMANDS = frozenset("""
    alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi varpi rho
    varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi
    Psi Omega ell nabla partial prime hat bar tilde vec dot ddot check breve acute grave widehat widetilde
    overline underline mathcal mathbf mathrm mathit mathsf mathtt mathbb mathfrak boldsymbol bm rightarrow
    leftarrow to cdot
""".split())
_TOKEN = re.compile(r"\\([A-Za-z]+)|([A-Za-z0-9^_{}'(),.+\-=*/| ])")
_CONVENTIONS = ("weight_order", "weight_separator", "bias", "delta_sign", "update", "layer_style", "first_layer",
                "loss")
_WEIGHT_ORDERS = ("from_to", "to_from")
_BIASES = ("symbol", "weight")
_LAYER_STYLES = ("parenthesized", "superscript")
_UPDATES = ("assignment", "change")


@dataclass(frozen=True)
class Letters:
    """Index letters of the lecture formulas: the unit the formula is about, the unit
    feeding it and (hidden layers) the unit it feeds."""

    output: tuple[str, str]  # (predecessor, unit) of an output layer
    hidden: tuple[str, str, str]  # (predecessor, unit, successor) of a hidden layer
    sample: tuple[str, str] = ("n", "N")  # (index, count) of the samples of a mini-batch


@dataclass(frozen=True)
class Notation:
    """One course's way of writing backpropagation (see ``notations/*.toml``)."""

    name: str
    title: str
    sources: tuple[str, ...]
    symbols: Mapping[str, str]  # role -> LaTeX
    plain: Mapping[str, tuple[str, ...]]  # role -> plain-text spellings a student may type
    letters: Letters
    weight_order: str = "from_to"  # w_ij: i -> j ("from_to") or w_ji: to j from i ("to_from")
    weight_separator: str = ""  # between a weight's two indices: w_{12}, or w_{1\to 2} (a comma past 9)
    bias: str = "symbol"  # "symbol": b_j;  "weight": w_j0, the weight from a unit fixed at +1
    delta_sign: int = 1  # +1: delta_j = dE/dz_j;  -1: delta_j = -dE/dz_j (Haykin)
    update: str = "assignment"  # gradient descent as w <- w - eta dE/dw, or as the change Delta w
    layer_style: str = "parenthesized"  # z^{(l)}_j or z^l_j
    first_layer: int = 1  # the number of the first layer after the inputs (Nielsen counts inputs as 1)
    loss: str = "half_sse"  # the text's error function (with or without the 1/2): the default network's loss
    equation_names: Mapping[str, str] = field(default_factory=dict)  # e.g. Nielsen's BP1-BP4

    def symbol(self, role: str) -> str:
        """The LaTeX of ``role``; roles a text leaves unnamed fall back on their parent."""
        if role == "weight_matrix" and role not in self.symbols:
            return self.symbols["weight"].upper()
        fallback = {"hidden": "activation", "output": "activation"}
        while role not in self.symbols and role in fallback:
            role = fallback[role]
        return self.symbols[role]

    def function_for(self, activation: str) -> str:
        """The letter of ``activation`` (the sigmoid's own letter where the text has one)."""
        return self.symbols["sigmoid"] if activation == "sigmoid" and "sigmoid" in self.symbols \
            else self.symbol("function")

    def weight_indices(self, source: str, destination: str) -> tuple[str, str]:
        """The index pair of the weight from ``source`` to ``destination``, in this order."""
        return (source, destination) if self.weight_order == "from_to" else (destination, source)


def names() -> list[str]:
    """The presets that ship with symbackprop."""
    return sorted(path.stem for path in PRESETS.glob("*.toml"))


def load(name_or_path: str | Path = "default") -> Notation:
    """A preset by name, or a user's TOML file that starts from one (``base = "haykin"``)
    and overrides any role's symbol or convention."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        data = _read(path)
    elif str(name_or_path) in names():
        data = _read(PRESETS / f"{name_or_path}.toml")
    elif path.exists():
        raise SpecError("notation", f"{str(name_or_path)!r} exists but is not a notation file (a .toml file such "
                        f"as base = \"haykin\" with the symbols it changes); choose one of {', '.join(names())} "
                        "or give a .toml file")
    else:
        raise SpecError("notation", f"no preset or file {str(name_or_path)!r}; choose one of "
                        f"{', '.join(names())} or give a .toml file")
    return from_dict(data)


def from_dict(data: Mapping) -> Notation:
    """A :class:`Notation` from a preset's table, on top of its ``base`` preset if named."""
    base = data.get("base")
    if base is not None:
        if base not in names():
            raise SpecError("notation.base", f"no preset {base!r}; choose one of {', '.join(names())}")
        data = _merge(_read(PRESETS / f"{base}.toml"), {k: v for k, v in data.items() if k != "base"})
    _check_keys(data, ("name", "title", "sources", "symbols", "plain", "letters", "conventions",
                       "equation_names"), "notation")
    symbols = _table(data, "symbols")
    _check_keys(symbols, ROLES, "notation.symbols")
    missing = [r for r in ROLES if r not in symbols and r not in _OPTIONAL_ROLES]
    if missing:
        raise SpecError("notation.symbols", f"give a symbol for {', '.join(missing)}")
    for role, symbol in symbols.items():
        check_symbol(symbol, f"notation.symbols.{role}")
    plain = {}
    for role, spelling in _table(data, "plain").items():
        plain[role] = ((spelling,) if isinstance(spelling, str)
                       else tuple(spelling) if isinstance(spelling, list) else ())
        if not plain[role] or not all(isinstance(p, str) and len(p) <= SYMBOL_LIMIT for p in plain[role]):
            raise SpecError(f"notation.plain.{role}", "give a short string or a list of short strings")
    _check_keys(plain, ROLES, "notation.plain")
    letters = _table(data, "letters")
    _check_keys(letters, ("output", "hidden", "sample"), "notation.letters")
    counts = {"output": 2, "hidden": 3, "sample": 2}
    for key, value in letters.items():
        if not isinstance(value, list) or len(value) != counts[key]:
            raise SpecError(f"notation.letters.{key}", f"give a list of {counts[key]} index letters")
        for letter in value:
            check_symbol(letter, f"notation.letters.{key}")
    conventions = _table(data, "conventions")
    _check_keys(conventions, _CONVENTIONS, "notation.conventions")
    for key, value in conventions.items():
        expected = int if key in ("delta_sign", "first_layer") else str
        if type(value) is not expected:
            raise SpecError(f"notation.conventions.{key}", f"give {'an integer' if expected is int else 'a string'}")
    if "weight_separator" in conventions:
        check_symbol(conventions["weight_separator"], "notation.conventions.weight_separator", empty=True)
    if not -9 <= conventions.get("first_layer", 1) <= 9:
        raise SpecError("notation.conventions.first_layer", "give a layer number from -9 to 9")
    equation_names = _table(data, "equation_names")
    _check_keys(equation_names, ("delta_output", "delta_hidden", "gradient_bias", "gradient_weight"),
                "notation.equation_names")
    for key, value in equation_names.items():
        check_symbol(value, f"notation.equation_names.{key}")
    texts = {key: data.get(key, default) for key, default in (("name", "custom"), ("title", ""))}
    for key, value in texts.items():
        if not isinstance(value, str) or len(value) > 200:
            raise SpecError(f"notation.{key}", "give a string of at most 200 characters")
    sources = data.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(x, str) for x in sources):
        raise SpecError("notation.sources", "give a list of strings")
    defaults = Letters(("j", "k"), ("i", "j", "k"))
    notation = Notation(
        name=texts["name"], title=texts["title"], sources=tuple(sources), symbols=symbols, plain=plain,
        letters=Letters(*(tuple(letters.get(key, getattr(defaults, key))) for key in ("output", "hidden", "sample"))),
        equation_names=equation_names)
    notation = replace(notation, **conventions)
    _check_choice(notation.weight_order, _WEIGHT_ORDERS, "weight_order")
    _check_choice(notation.bias, _BIASES, "bias")
    _check_choice(notation.layer_style, _LAYER_STYLES, "layer_style")
    _check_choice(notation.update, _UPDATES, "update")
    _check_choice(notation.delta_sign, (1, -1), "delta_sign")
    from ..functions import LOSSES  # SymPy, only once a notation file is read

    _check_choice(notation.loss, tuple(LOSSES), "loss")
    return notation


def check_symbol(symbol, where: str, empty: bool = False) -> None:
    """Refuse what is not a short math symbol: a notation file's LaTeX goes into every formula,
    and pdflatex would run ``\\input`` or ``\\write18`` as readily as ``\\delta``."""
    hint = (f"give a short LaTeX symbol (at most {SYMBOL_LIMIT} characters of letters, digits, ^ _ {{ }} "
            r"and commands such as \delta, \hat, \mathcal)")
    if not isinstance(symbol, str):
        raise SpecError(where, f"{type(symbol).__name__} is not a symbol; {hint}")
    if len(symbol) > SYMBOL_LIMIT or (not symbol.strip() and not empty):
        raise SpecError(where, f"{len(symbol)} characters; {hint}")
    if "^^" in symbol:  # TeX reads ^^5c as a backslash: \input again, past the token check
        raise SpecError(where, f"'^^' is not allowed in a symbol; {hint}")
    depth, position = 0, 0
    while position < len(symbol):
        token = _TOKEN.match(symbol, position)
        if token is None or (token.group(1) and token.group(1) not in _COMMANDS):
            bad = token.group(0) if token else symbol[position]
            raise SpecError(where, f"{_quoted(bad)} is not allowed in a symbol; {hint}")
        depth += {"{": 1, "}": -1}.get(token.group(0), 0)
        if depth < 0:
            break
        position = token.end()
    if depth:
        raise SpecError(where, f"unbalanced braces in {_quoted(symbol)}; {hint}")


def _quoted(text: str) -> str:
    """``text`` quoted on one line, its LaTeX backslashes single as typed (repr doubles them)."""
    return repr(text).replace("\\\\", "\\")


def _table(data: Mapping, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise SpecError(f"notation.{key}", f"give a table ([{key}]), not {type(value).__name__}")
    return dict(value)


def _read(path: Path) -> dict:
    return files.read_toml(path, MAX_SPEC_BYTES, "notation file")


def _merge(base: Mapping, override: Mapping) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, Mapping) and key in base else value
    return merged


def _check_keys(table: Mapping, allowed, where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(allowed)}"
            raise SpecError(f"{where}.{key}", f"unknown key; {hint}")


def _check_choice(value, choices, key: str) -> None:
    if value not in choices:
        raise SpecError(f"notation.conventions.{key}", f"{value!r} is not one of {', '.join(map(str, choices))}")
