"""symbackprop: backpropagation derived by SymPy, shown step by step, checked three ways.

One function per stage of the flow, each a module::

    spec          load / compact / from_dict   -> Spec (Network + example values)
    network       layered / graph               -> Network, a DAG of SymPy definitions
    derivation    derive                        -> Derivation: generic and concrete Steps
    verification  verify                        -> Report of the three witnesses
    matrix        MatrixCompiled                -> batched gradients of a layered network
    examples      example                       -> numbers and one gradient-descent step
    notation      notation.load                 -> Notation: a course's symbols and conventions (data)
    rendering     render / write_notes          -> Markdown and LaTeX notes from jinja2 templates
    grading/      check / grade                 -> Verdict per answer (reading, targets, evaluation,
                                                   mistakes, judging, workers), a class report
"""
__version__ = "0.2.0"

from . import notation, rendering
from .derivation import Derivation, Step, derive, instantiate
from .errors import SpecError
from .examples import Example, example
from .functions import Activation, Loss, activation, custom_activation, custom_loss, loss
from .grading import Verdict, check, grade
from .matrix import MatrixCompiled
from .network import Network, graph, layered
from .notation import Notation
from .numerics import Compiled, Values, random_values
from .printing import latex
from .rendering import render, write_notes
from .spec import Spec, compact, from_dict, load
from .verification import Report, verify

__all__ = ["Activation", "Compiled", "Derivation", "Example", "Loss", "MatrixCompiled", "Network", "Notation", "Report",
           "Spec", "SpecError", "Step", "Values", "Verdict", "activation", "check", "compact", "custom_activation",
           "custom_loss", "derive", "example", "from_dict", "grade", "graph", "instantiate", "latex", "layered", "load",
           "loss", "notation", "random_values", "render", "rendering", "verify", "write_notes"]
