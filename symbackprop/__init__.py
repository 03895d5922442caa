"""symbackprop: backpropagation derived by SymPy, shown step by step, checked three ways.

One function per stage of the flow, each a module::

    spec          load / compact / from_dict   -> Spec (Network + example values)
    network       layered / graph               -> Network, a DAG of SymPy definitions
    recurrent     unrolled                      -> an Elman network unrolled through time (tied weights)
    convolution   convolutional                 -> conv, pooling and dense layers as units with tied kernels
    bptt          derive_recurrent              -> the generic BPTT formulas, derived by SymPy
    derivation    derive                        -> Derivation: generic and concrete Steps
    verification  verify                        -> Report of the three witnesses
    matrix        MatrixCompiled                -> batched gradients of a layered network
                  SequenceCompiled              -> ... and of an Elman network's sequences (BPTT)
    backends      backend                       -> the printer and array library the matrix form runs on
                                                   (numpy in place, torch, jax)
    examples      example                       -> numbers and one gradient-descent step
    notes/        render / write_notes          -> Markdown and LaTeX notes: notation (a course's symbols,
                                                   as data), printing, figures, the printed matrix form,
                                                   jinja2 templates, the Jupyter display of every object
    grading/      check / grade                 -> Verdict per answer (reading, targets, evaluation,
                                                   mistakes, judging, workers), a class report
    exercises/    exercises / grade             -> sheets, answer keys, one variant per student
                                                   (sb.exercises.write, .load); grade takes the set
"""
import importlib
import sys

__version__ = "0.2.0"

#: public name -> the module that defines it, imported on first use (PEP 562), so that
#: ``python -m symbackprop check`` loads neither the renderer nor jinja2 (import what a
#: command uses)
_HOME = {"Derivation": "derivation", "Step": "derivation", "derive": "derivation", "instantiate": "derivation",
         "SpecError": "errors", "Example": "examples", "example": "examples", "Activation": "functions",
         "Loss": "functions", "activation": "functions", "custom_activation": "functions",
         "custom_loss": "functions", "loss": "functions", "Verdict": "grading", "check": "grading",
         "grade": "exercises", "ExerciseSet": "exercises", "MatrixCompiled": "matrix", "Network": "network",
         "SequenceCompiled": "matrix",
         "graph": "network", "layered": "network", "Notation": "notes.notation", "Compiled": "numerics",
         "Values": "numerics", "random_values": "numerics", "latex": "notes.printing", "render": "notes.rendering",
         "write_notes": "notes.rendering",
         "Spec": "spec", "compact": "spec", "from_dict": "spec", "load": "spec", "Report": "verification",
         "verify": "verification", "unrolled": "recurrent",
         "convolutional": "convolution"}

__all__ = sorted([*_HOME, "exercises", "notation", "rendering"])


#: submodules that live in a subpackage: ``sb.notation`` is ``symbackprop.notes.notation``
_MODULES = {"notation": "notes.notation", "rendering": "notes.rendering"}
if "IPython" in sys.modules:  # a notebook: every object displays as the notes print it (notes.display)
    importlib.import_module(".notes.display", __name__)


def __getattr__(name: str):
    """A public name or a submodule (``sb.numerics``), imported when first asked for."""
    module = _HOME.get(name, _MODULES.get(name, name))
    try:
        home = importlib.import_module(f".{module}", __name__)
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{module}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(home, name) if name in _HOME else home
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
