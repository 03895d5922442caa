"""An exercise set: the questions, and for each student the numbers of their variant.

:func:`exercises` draws every student's numbers (inputs, targets, weights, biases and which
unit a numeric question asks about) from ``seed`` and the student id, so the same roster and
seed give the same set on any machine.  ``exercises.toml`` holds exactly what grading needs:
the questions, the shared network, and per student the worked example and the target of
every question (:func:`write_text`, :func:`load`).
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .. import grading
from ..convolution import ConvNetwork
from ..derivation import derive
from ..matrix import MatrixCompiled, evaluator
from ..network import Network, layer_bias, layer_weight
from ..numerics import Values
from ..recurrent import UnrolledNetwork
from ..notes import notation as notations
from ..errors import SpecError
from ..files import read_toml
from ..limits import MAX_SPEC_BYTES
from ..notes.notation import Notation
from ..grading import convolutional
from ..spec import Spec, from_dict, with_example
from ..spec import load as load_spec
from . import questions as asked
from . import access, roster, toml_writer
from .questions import Question

KIND = "symbackprop exercise set"
VERSION = 1
#: The files of a set in its folder; no student id may take one of these names.
FILES = ("exercises.toml", "key.md", "key.tex", "key.svg", "key.csv", "codes.csv", "sheet.md", "sheet.tex",
         "sheet.svg")
MAX_SET_BYTES = 20_000_000


def is_own_file(path: Path, folder: Path) -> bool:
    """Whether ``path`` is one of the set's files in ``folder`` (its key, codes, exercises.toml) or in
    a student's folder there (a sheet): a report written over one would lose it."""
    real, home = Path(path).resolve(), Path(folder).resolve()
    return real.name in FILES and real.exists() and home in (real.parent, real.parent.parent)


@dataclass(frozen=True)
class Variant:
    """One student's sheet (``student`` None: the one sheet of a set without a roster)."""

    student: str | None
    example: Mapping  # the [example] table of this student's spec
    targets: Mapping[str, str]  # question id -> target
    code_hash: str | None = None  # the student's access code, hashed (:mod:`.access`)


@dataclass
class ExerciseSet:
    """Questions and variants over one network (the ``[network]`` table of the spec)."""

    network: Mapping
    notation: str | Mapping  # a preset's name, or a notation table (a user's file)
    questions: tuple[Question, ...]
    variants: tuple[Variant, ...]
    codes: Mapping[str, str] = field(default_factory=dict, repr=False)  # student -> code, only as made
    #: the codes of an earlier codes.csv whose students are off the roster: kept in the new codes.csv,
    #: so that a student added again gets the code on the sheet they hold
    retired_codes: Mapping[str, str] = field(default_factory=dict, repr=False)
    _specs: dict = field(default_factory=dict, repr=False)

    @cached_property
    def notation_object(self) -> Notation:
        if isinstance(self.notation, str):
            return notations.load(self.notation)
        return notations.from_dict(self.notation)

    @property
    def per_student(self) -> bool:
        return self.variants[0].student is not None

    def variant(self, student: str) -> Variant | None:
        """The variant ``student`` answers: their own, or the shared one; None if not in the set."""
        if not self.per_student:
            return self.variants[0]
        return self._by_student.get(student)

    @cached_property
    def _by_student(self) -> dict:
        return {v.student: v for v in self.variants}

    def question_id(self, text: str) -> str | None:
        """The id of the question ``text`` names: its id in any case (``Q1``) or its number (``1``),
        as students and spreadsheets write it; None if it names none."""
        named = text.strip().lower()
        ids = {q.id: q.id for q in self.questions} | {str(n): q.id for n, q in enumerate(self.questions, 1)}
        return ids.get(named)

    def spec(self, variant: Variant) -> Spec:
        """The variant's network with its numbers (built once)."""
        key = variant.student
        if key not in self._specs:
            where = f"students.{key}" if key is not None else "everyone"
            try:
                first = next(iter(self._specs.values()), None)  # the network is the same for every variant
                self._specs[key] = (from_dict({"network": self.network, "example": variant.example}) if first is None
                                    else with_example(first, variant.example))
            except SpecError as error:
                raise SpecError(f"exercise set, {where}", str(error)) from None
        return self._specs[key]


def exercises(spec: Spec | str | Path, students: Sequence[str] | str | Path | None = None,
              questions: str | Sequence[str] | None = None, seed: int = 0,
              notation: str | Path = "default", codes: Mapping[str, str] | None = None) -> ExerciseSet:
    """An exercise set on ``spec``'s network.

    ``students``: a roster CSV (a ``student`` column) or a list of ids; each student gets
    their own numbers, drawn from ``seed`` and their id.  Without students, one sheet with
    the spec's own worked example.  ``questions``: kinds as in :mod:`.questions` (default six).
    ``notation``: a preset name or a notation TOML file.  With students, each gets an access code
    for the answer page: the one in ``codes`` (student -> code) or a new one.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    if "network" not in spec.data:
        raise SpecError("spec", "an exercise set records its spec's tables: give a Spec from sb.load, "
                                "sb.compact or sb.from_dict")
    network = spec.network
    notation_data = _notation_data(notation)
    chosen = asked.parse(questions, network)
    if isinstance(network, ConvNetwork):
        _check_printable(network)
    retired = {}
    if students is None:
        rng = _rng(seed, "")
        handed_out = {}
        variants = (Variant(None, dict(spec.data.get("example", {})),
                            {q.id: asked.target(q, network, rng) for q in chosen}),)
    else:
        ids = (roster.read_roster(Path(students), FILES) if isinstance(students, (str, Path))
               else roster.check_ids(list(students), "students", FILES))
        handed_out = access.codes_for(ids, codes or {})
        retired = {student: code for student, code in (codes or {}).items() if student not in handed_out}
        layered = network.layers is not None and not isinstance(network, UnrolledNetwork)
        checked = layered or isinstance(network, ConvNetwork)
        numbers = evaluator(derive(network)) if checked and any(q.numeric for q in chosen) else None
        variants = tuple(_draw(spec, student, seed, chosen, access.hash_code(handed_out[student], student, seed),
                               numbers) for student in ids)
    network_data = dict(spec.data.get("network", {}))
    made = ExerciseSet(network_data, notation_data, chosen, variants, handed_out, retired)
    _check_gradable(made)
    return made


#: The widest image or conv layer whose numbers a sheet and its key print as matrices on a page.
MAX_COLUMNS = 8


def _check_printable(network: ConvNetwork) -> None:
    """Refuse a convolutional network the sheets cannot print: one without a dense output layer (its
    units and error function are printed as a layer's), or an image (a conv layer's output) too wide
    for a page."""
    if network.stack[-1].kind != "dense":
        raise SpecError("network.layer", f"ends in a {network.stack[-1].kind} layer; the exercise sheets of a "
                                         "convolutional network need a dense output layer (kind = \"dense\") last")
    widths = [network.input_shape[-1], *(layer.shape_out[-1] for layer in network.stack if layer.kind == "conv")]
    if max(widths) > MAX_COLUMNS:
        raise SpecError("network.input_shape", f"the sheets print the image and each conv layer's local gradients "
                                               f"as matrices of at most {MAX_COLUMNS} columns, and this network's "
                                               f"are {max(widths)} wide; use a smaller input for exercises")


def _notation_data(notation: str | Path) -> str | dict:
    """A preset's name as it is; a user's notation file as its table (the set stands alone)."""
    if str(notation) in notations.names():
        return str(notation)
    notations.load(notation)  # refuses what is neither a preset nor a readable notation file
    return read_toml(notation, MAX_SPEC_BYTES, "notation file")


def _rng(seed: int, student: str) -> np.random.Generator:
    """A generator that depends only on the seed and the id (not on Python's hash or the order)."""
    digest = hashlib.sha256(f"{seed}\0{student}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


#: Draws of one student's numbers before giving up on numbers that teach something.
MAX_DRAWS = 50
#: An answer below this rounds to 0 at the six decimals a sheet asks students to carry.
ZERO = 5e-7


def _draw(spec: Spec, student: str, seed: int, chosen: tuple[Question, ...], code_hash: str,
          numbers: MatrixCompiled | None) -> Variant:
    """Numbers a student can work with by hand: two decimals, weights away from zero.  Numbers that
    teach nothing are drawn again: an input that rounds to 0 (printed 0 or -0), or a numeric
    question whose answer is 0 (a ReLU unit that is off, a weight from an input 0), checked with
    ``numbers`` (the layered or convolutional network's evaluator; None: no numeric question to check).
    A convolutional spec's numbers are nested as it writes them: the image [channel][row][column],
    the kernels K[out][in][kh][kw] and the dense weights W[i][j] in weights[l], biases[l]."""
    network, rng = spec.network, _rng(seed, student)
    for _ in range(MAX_DRAWS):
        inputs = [round(float(x), 2) for x in rng.uniform(-1, 1, len(network.inputs))]
        if network.loss.targets_sum_to_one:  # one-hot per step of a recurrent network
            size = network.loss_outputs
            targets = [float(x) for x in np.eye(size)[rng.integers(size, size=len(network.outputs) // size)].ravel()]
        else:
            targets = [round(float(x), 2) for x in rng.uniform(0.05, 0.95, len(network.outputs))]
        magnitudes = rng.uniform(0.1, 1, len(network.parameters)) * rng.choice([-1, 1], len(network.parameters))
        parameters = {str(p): round(float(v), 2) for p, v in zip(network.parameters, magnitudes)}
        if isinstance(network, UnrolledNetwork):  # one row per time step, as a recurrent spec writes them
            inputs, targets = (_per_step(values, network.steps) for values in (inputs, targets))
        example = {"inputs": inputs, "targets": targets, "learning_rate": spec.learning_rate, "parameters": parameters}
        if isinstance(network, ConvNetwork):
            example = {"inputs": np.reshape(inputs, network.input_shape).tolist(), "targets": targets,
                       "learning_rate": spec.learning_rate, **network.nested_parameters(
                           {p: parameters[str(p)] for p in network.parameters})}
        asked_targets = {q.id: asked.target(q, network, rng) for q in chosen}
        if 0 not in np.ravel(inputs) and not (numbers and _zero_answers(network, numbers, spec, example,
                                                                        asked_targets.values())):
            return Variant(student, example, asked_targets, code_hash)
    raise SpecError("--questions", f"in {MAX_DRAWS} draws of {student[:40]!r}'s numbers some numeric question "
                                   "always had the answer 0; ask about other units or quantities")


def _per_step(values: list, steps: int) -> list[list]:
    """A sequence's numbers, unit by unit of each step in turn, as one row per step."""
    width = len(values) // steps
    return [values[n * width:(n + 1) * width] for n in range(steps)]


def _zero_answers(network: Network, numbers: MatrixCompiled, spec: Spec, example: dict, targets) -> bool:
    """Whether a numeric question's answer (for an update, the gradient it steps by) is 0."""
    conv = isinstance(network, ConvNetwork)
    values = with_example(spec, example).values if conv else Values(
        np.array([example["inputs"]], dtype=float), np.array([example["targets"]], dtype=float),
        {p: example["parameters"][str(p)] for p in network.parameters})
    evaluation = numbers.evaluate(values, example["learning_rate"])
    for name in targets:
        target = grading.parse_target(name, network)
        if target.concrete is None or target.kind not in asked.DRAWN:
            continue
        if conv:  # a kernel entry's or a bias's gradient
            value = evaluation.gradients[convolutional.parameter_of(network, target)]
        elif target.kind == "delta":
            level, _, unit = target.concrete
            value = evaluation.delta[network[f"[{level}][{unit}]"].name][0]
        else:
            level, source, unit = target.concrete
            parameter = layer_bias(level, unit) if target.kind == "grad_b" else layer_weight(level, source, unit)
            value = evaluation.gradients[parameter]
        if abs(value) < ZERO:
            return True
    return False


def _check_gradable(made: ExerciseSet) -> None:
    """Every question of the first variant prepared as ``check`` would: a question that cannot
    be graded is refused here, not when the answers come in."""
    variant = made.variants[0]
    spec = made.spec(variant)
    for question in made.questions:
        try:
            grading.prepare(spec.network, variant.targets[question.id], made.notation_object, spec.values,
                            spec.learning_rate)
        except SpecError as error:
            raise SpecError("--questions", f"{question.kind}: {error}") from None


# ---------------------------------------------------------------------------------------
# exercises.toml

def as_table(made: ExerciseSet) -> dict:
    table = {"kind": KIND, "version": VERSION, "notation": made.notation,
             "questions": {q.id: q.kind for q in made.questions}, "network": made.network}
    students = {v.student: {"targets": dict(v.targets), "example": v.example,
                            **({"code_hash": v.code_hash} if v.code_hash else {})} for v in made.variants}
    if made.per_student:
        table["students"] = students
    else:
        table["everyone"] = students[None]
    return table


def write_text(made: ExerciseSet) -> str:
    header = ("# An exercise set written by `python -m symbackprop exercises`: what `grade` needs to grade\n"
              "# each student's answers (their numbers and the target of every question).\n")
    return header + toml_writer.dumps(as_table(made))


def is_set_file(path) -> bool:
    """Whether ``path`` is an exercise set (rather than a network spec)."""
    path = Path(str(path))
    if path.suffix != ".toml" or not path.is_file():
        return False
    try:
        return _read(path).get("kind") == KIND
    except SpecError:
        return False


def _read(path: Path) -> dict:
    return read_toml(path, MAX_SET_BYTES, "exercise set")


def check_replaceable(made: ExerciseSet, directory: Path, force: bool, flag: str = "--force") -> None:
    """Refuse to write ``made`` over a set in ``directory`` made with other options (unless
    ``force``): sheets already handed out would no longer match their key.  The same options
    (students added or not) write the same files again.  Files of a set's names in a folder that
    holds no set are someone's own (a key.csv of other data) and are not replaced either; a
    codes.csv alone is the codes handed out, which the new set keeps."""
    path = Path(directory) / "exercises.toml"
    if force:
        return
    if not is_set_file(path):
        found = [name for name in FILES if name != "codes.csv" and os.path.lexists(Path(directory) / name)]
        if found:
            raise SpecError(str(directory), f"holds {', '.join(found)} but no exercise set, and the set's files "
                                            f"would replace them; write into another folder, or replace them with {flag}")
        return
    old, new = _read(path), as_table(made)
    changed = []
    if old.get("notation") != new["notation"]:
        named = lambda notation: notation if isinstance(notation, str) else "of a notation file"
        changed.append(f"notation {named(old.get('notation'))}, now {named(new['notation'])}")
    if old.get("questions") != new["questions"]:
        changed.append(f"questions {', '.join(map(str, dict(old.get('questions') or {}).values()))}, "
                       f"now {', '.join(new['questions'].values())}")
    if old.get("network") != new["network"]:
        changed.append("another network")
    if ("students" in old) != ("students" in new):
        changed.append("one sheet per student, now one for everyone" if "students" in old
                       else "one sheet for everyone, now one per student")
    before, after = old.get("students", {None: old.get("everyone")}), new.get("students", {None: new.get("everyone")})
    renumbered = [s for s in after if s in before and isinstance(before[s], Mapping)
                  and (before[s].get("example"), before[s].get("targets")) != (after[s]["example"], after[s]["targets"])]
    if renumbered and not changed:
        changed.append(f"the numbers of {len(renumbered)} students differ (another --seed or spec example)")
    if changed:
        raise SpecError(str(directory), f"holds an exercise set made with other options ({'; '.join(changed)}); "
                                        f"write into another folder, or replace it with {flag}")


def load(path: str | Path) -> ExerciseSet:
    """An ``exercises.toml`` as written by :func:`write_text`, checked field by field."""
    path = Path(path)
    data = _read(path)
    where = lambda field: f"{path.name}: {field}"
    if data.get("kind") != KIND or data.get("version") != VERSION:
        raise SpecError(str(path), f"is not an exercise set of this version (kind = {KIND!r}, version = "
                                   f"{VERSION}); write it again with `exercises`")
    kinds = data.get("questions")
    if not isinstance(kinds, Mapping) or not kinds or not all(isinstance(k, str) for k in kinds.values()):
        raise SpecError(where("questions"), "must be a table of question ids and kinds")
    chosen = tuple(Question(qid, asked.check_kind(kind, where(f"questions.{qid}"))) for qid, kind in kinds.items())
    if not isinstance(data.get("network"), Mapping):
        raise SpecError(where("network"), "missing; the set needs the [network] table of its spec")
    if "students" in data:
        raw = data["students"]
        if not isinstance(raw, Mapping) or not raw:
            raise SpecError(where("students"), "must be a table with one table per student")
        roster.check_ids(list(raw), where("students"), FILES)
    elif isinstance(data.get("everyone"), Mapping):
        raw = {None: data["everyone"]}
    else:
        raise SpecError(str(path), "has neither [students] nor [everyone]; write it again with `exercises`")
    variants = []
    for student, table in raw.items():
        field_name = where(f"students.{student}" if student is not None else "everyone")
        targets = table.get("targets") if isinstance(table, Mapping) else None
        if not isinstance(targets, Mapping) or set(targets) != set(kinds) or not all(
                isinstance(t, str) for t in targets.values()):
            raise SpecError(f"{field_name}.targets", f"must give a target for each question ({', '.join(kinds)})")
        example = table.get("example", {})
        if not isinstance(example, Mapping):
            raise SpecError(f"{field_name}.example", "must be a table")
        code_hash = table.get("code_hash")
        if code_hash is not None and not isinstance(code_hash, str):
            raise SpecError(f"{field_name}.code_hash", "must be the text `exercises` wrote")
        variants.append(Variant(student, example, dict(targets), code_hash))
    notation = data.get("notation", "default")
    if not isinstance(notation, (str, Mapping)):
        raise SpecError(where("notation"), "must be a preset name or a notation table")
    if isinstance(notation, str):
        notations.load(notation)  # a bad notation is refused when the set is read
    else:
        notations.from_dict(notation)
    return ExerciseSet(data["network"], notation, chosen, tuple(variants))
