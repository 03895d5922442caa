"""symbackprop: backpropagation derived by SymPy, shown step by step, checked three ways.

One function per stage of the flow, each a module::

    spec          load / compact / from_dict   -> Spec (Network + example values)
    network       layered / graph               -> Network, a DAG of SymPy definitions
    derivation    derive                        -> Derivation: generic and concrete Steps
    verification  verify                        -> Report of the three witnesses
    matrix        MatrixCompiled                -> batched gradients of a layered network
    examples      example                       -> numbers and one gradient-descent step
    notes/        render / write_notes          -> Markdown and LaTeX notes: notation (a course's symbols,
                                                   as data), printing, figures, the printed matrix form,
                                                   jinja2 templates, the Jupyter display of every object
    grading/      check / grade                 -> Verdict per answer (reading, targets, evaluation,
                                                   mistakes, judging, workers), a class report
"""
from .derivation import Derivation, Step, derive, instantiate
from .errors import SpecError
from .examples import Example, example
from .functions import Activation, Loss, activation, custom_activation, custom_loss, loss
from .grading import Verdict, check, grade
from .matrix import MatrixCompiled
from .network import Network, graph, layered
from .notes import notation, rendering
from .notes.notation import Notation
from .notes.printing import latex
from .notes.rendering import render, write_notes
from .numerics import Compiled, Values, random_values
from .spec import Spec, compact, from_dict, load
from .verification import Report, verify

__all__ = ["Activation", "Compiled", "Derivation", "Example", "Loss", "MatrixCompiled", "Network", "Notation", "Report",
           "Spec", "SpecError", "Step", "Values", "Verdict", "activation", "check", "compact", "custom_activation",
           "custom_loss", "derive", "example", "from_dict", "grade", "graph", "instantiate", "latex", "layered", "load",
           "loss", "notation", "random_values", "render", "rendering", "verify", "write_notes"]
