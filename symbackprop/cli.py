"""``python -m symbackprop``: a thin layer over the Python API, one subcommand per use.

Bad input ends with one line on stderr naming the field and the fix, exit status 2,
no traceback, and no half-written file (files are written whole, then renamed).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import symbackprop as api

from . import grading
from .errors import SpecError
from .parts import PARTS
from .progress import progress

SPEC_HELP = ("a TOML spec file, or a compact form such as 2-3-1 (with --activation, --loss); "
             "default: 2 inputs, 3 sigmoid hidden units, 1 linear output, half sum of squares")


def _add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", help=SPEC_HELP)
    parser.add_argument("--activation", help="compact form: one name for all layers or one per "
                                             "non-input layer, comma-separated (sigmoid,identity)")
    parser.add_argument("--loss", help="compact form: the loss name (half_sse, cross_entropy, ...)")
    parser.add_argument("--no-bias", action="store_true", help="compact form: no biases")
    parser.add_argument("--seed", type=int, default=0, help="compact form: seed of the example values")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m symbackprop",
                                     description="Backpropagation derived by SymPy, shown step by step.")
    commands = parser.add_subparsers(dest="command", required=True)
    derive = commands.add_parser("derive", help="write the step-by-step derivation (notes)")
    _add_spec(derive)
    derive.add_argument("--format", choices=["md", "tex", "all"], default="all",
                        help="Markdown, LaTeX, or both (default)")
    derive.add_argument("-o", "--output", default="output", help="directory for the notes (default: output)")
    derive.add_argument("--templates", help="a directory of jinja2 templates overriding the built-in ones "
                                            "(notes.j2: the text; md.j2, tex.j2: how each format writes it)")
    derive.add_argument("--notation", default="default",
                        help=f"a preset ({', '.join(api.notation.names())}) or a TOML file starting from one "
                             "(base = \"haykin\") that overrides any role's symbol")
    for part in PARTS:
        derive.add_argument(f"--no-{part}", dest="parts", action="append_const", const=part,
                            help=f"leave out the {part} section")
    derive.add_argument("--handout", action="store_true",
                        help="the notes for students: without the appendix (every formula, the verification)")
    for name, text in (("verify", "check every gradient with three witnesses"),
                       ("example", "print the worked numbers: forward pass, deltas, gradients, one step")):
        command = commands.add_parser(name, help=text)
        _add_spec(command)
        command.add_argument("--json", action="store_true", help="print one JSON object")
    _add_homework(commands)
    _add_exercises(commands)
    _add_serve(commands)
    return parser


def _add_serve(commands) -> None:
    serve = commands.add_parser(
        "serve", help="a web page where students check their answers (needs the [serve] extra)",
        description="Serve EXERCISES.toml (written by `exercises --students`): each student logs in with their "
                    "id and the access code on their sheet and checks answers; every attempt is kept in --db. "
                    "The instructor's counts are at /admin, every attempt as CSV at /admin/export.csv.")
    serve.add_argument("exercises", metavar="EXERCISES.toml", help="the set, DIR/exercises.toml")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this "
                                                           "machine only; 0.0.0.0 for the network, behind HTTPS)")
    serve.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    serve.add_argument("--db", default="submissions.sqlite", help="SQLite file of the attempts (default %(default)s)")
    serve.add_argument("--admin-token", help="the instructor's token (default: a new one, printed at start)")
    serve.add_argument("--workers", type=int, help="checking processes (default: every core)")
    serve.add_argument("--timeout", type=float, default=grading.SECONDS_PER_ANSWER,
                       help="seconds per answer before its worker is stopped (default %(default)s)")
    serve.add_argument("--rate-limit", type=int, help="requests per student per minute, wrong codes included "
                                                      "(default 30)")


def _serve(args) -> int:
    from . import serve  # Starlette and uvicorn only for this command

    limits = {"rate": args.rate_limit} if args.rate_limit is not None else {}
    serve.run(args.exercises, args.host, args.port, args.db, args.admin_token, args.workers, args.timeout,
              say=lambda line: print(line, flush=True), **limits)
    return 0


ANSWER_HELP = """\
targets:
  generic, about neuron j of a layer in the notation's own index letters:
    delta_output delta_hidden grad_w_output grad_w_hidden grad_b_output grad_b_hidden
    update_w_output update_w_hidden
  concrete, one quantity of the spec's network (0-based, like weights[l][i][j], biases[l][j]):
    delta[l][j] grad_b[l][j] grad_w[l][i][j] update_w[l][i][j]

answers: LaTeX or plain text, with or without a left-hand side, e.g. (shell-quoted)
  "\\delta_j = g'(z_j) \\sum_k w_{jk} \\delta_k"     "g'(z_j)*sum(w_jk*delta_k, k)"     "g'(z_j) sum_k w_jk delta_k"
  "\\frac{\\partial E}{\\partial a_k} \\sigma'(z_k)"    "\\Delta w_{ij} = -\\eta \\delta_j a_i"    "w_ij - eta*delta_j*a_i"
  concrete: "delta[1][0]*a[0][2]", "g'(z[0][1])*w[1][1][0]*delta[1][0]", or a number
symbols follow --notation (haykin: v_j, y_i, phi, w_{kj}, d_j, e_j; nielsen: z^l_j, sigma, w^{l+1}_{kj}).
An update answer with Delta on the left, or without the weight itself, is the change; with
w <- / w^+ / w(n+1) on the left, or containing the weight, it is the new weight.
A derivation of several lines (newlines, \\, \begin{aligned}; "= ..." continues a line) is checked
line by line: every line must equal the target; the verdict names the first line that does not.
exit status: 0 correct, 1 incorrect, 2 cannot read (or bad input)."""


REVEAL_HELP = ("let messages show the worked example's value of a concrete target (the exercise's answer); "
               "without it a wrong number is only said to differ")


def _add_homework(commands) -> None:
    notations = ", ".join(api.notation.names())
    check = commands.add_parser("check", help="check one homework answer against the derivation",
                                description="Check one answer: correct, incorrect (with the mistake named and a "
                                            "point where it differs) or cannot read.",
                                epilog=ANSWER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_spec(check)
    check.add_argument("--target", required=True, help="what the answer is for (see below)")
    check.add_argument("--answer", required=True, help="the answer, LaTeX or plain text")
    check.add_argument("--notation", default="default", help=f"notation preset ({notations}) or a .toml file")
    check.add_argument("--json", action="store_true",
                       help="print {verdict, message, diagnosis, counterexample, lines}")
    check.add_argument("--reveal", action="store_true", help=REVEAL_HELP)
    grade = commands.add_parser("grade", help="grade a CSV of answers (id,target,answer) into a report",
                                description="Grade every row of SUBMISSIONS (header id,target,answer; other "
                                            "columns are carried over) in worker processes; write REPORT (.csv, "
                                            "one row per answer) and REPORT with .md (the summary).",
                                epilog=ANSWER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_spec(grade)
    grade.add_argument("submissions", help="CSV file with a header row id,target,answer")
    grade.add_argument("-o", "--output", required=True, help="report path; writes REPORT.csv and REPORT.md")
    grade.add_argument("--notation", default="default", help=f"notation preset ({notations}) or a .toml file")
    grade.add_argument("--workers", type=int, help="worker processes (default: every core)")
    grade.add_argument("--timeout", type=float, default=grading.SECONDS_PER_ANSWER,
                       help="seconds per answer before its worker is stopped (default %(default)s)")
    grade.add_argument("--reveal", action="store_true", help=REVEAL_HELP)


def _add_exercises(commands) -> None:
    exercise = commands.add_parser(
        "exercises", help="write exercise sheets, their answer key and the set to grade them by",
        description="Write sheet.md/sheet.tex (with --students: one per student under DIR/<student>/, each with "
                    "its own numbers drawn from --seed and the id), key.md/key.tex (worked solutions), key.csv "
                    "(id,student,question,answer) and exercises.toml, which `grade DIR/exercises.toml "
                    "SUBMISSIONS.csv -o REPORT` grades by.  --seed seeds the students' numbers (and a "
                    "compact form's example).")
    _add_spec(exercise)
    exercise.add_argument("--notation", default="default",
                          help=f"notation preset ({', '.join(api.notation.names())}) or a .toml file")
    exercise.add_argument("--students", help="roster CSV with a 'student' column (other columns are ignored)")
    exercise.add_argument("--questions", help="comma-separated: generic targets (delta_output, delta_hidden, "
                                              "grad_w_hidden, update_w_hidden, ...), numbers with the unit drawn "
                                              "per student (delta, grad_w, grad_b, update_w), or a fixed one "
                                              "(delta[0][1]); default: delta_output,delta_hidden,grad_w_hidden,"
                                              "delta,grad_w,update_w")
    exercise.add_argument("--format", choices=["md", "tex", "all"], default="all", help="Markdown, LaTeX or both")
    exercise.add_argument("--templates", help="a directory of jinja2 templates overriding the built-in ones")
    exercise.add_argument("-o", "--output", required=True, help="directory for the sheets, the key and the set")


def _exercises(args, spec) -> int:
    import jinja2  # the templates' errors; only writing documents loads the renderer

    from .exercises import access, exercise_set, sheets

    kept = access.read_codes(Path(args.output) / "codes.csv") if args.students else {}  # sheets handed out stay valid
    made = exercise_set.exercises(spec, args.students, args.questions, args.seed, args.notation, kept)
    formats = ["md", "tex"] if args.format == "all" else [args.format]
    try:
        paths = sheets.write(made, Path(args.output), formats, Path(args.templates) if args.templates else None)
    except jinja2.TemplateError as error:
        raise SpecError("--templates", f"a template failed: {error.message}") from None
    written = sum(path.name.startswith("sheet.") for path in paths)
    print(f"{args.output}: {written} sheet files of {len(made.questions)} questions for "
          f"{len(made.variants) if made.per_student else 'everyone'}, key, key.csv, exercises.toml")
    return 0


def _grade_set(args, made) -> int:
    """``grade DIR/exercises.toml SUBMISSIONS.csv``: each row against its student's variant."""
    from .exercises import marking

    if args.notation != "default":
        raise SpecError("--notation", "an exercise set brings its own notation; leave --notation out")
    header, rows = marking.read_submissions(Path(args.submissions))
    with progress("grading", len(rows)) as bar:
        verdicts = marking.grade(made, rows, workers=args.workers, seconds=args.timeout,
                                 progress=lambda done, total: bar.advance(done - bar.done), reveal=args.reveal)
    for path in marking.write_report(Path(args.output).with_suffix(".csv"), made, header, rows, verdicts):
        print(path)
    counts = {kind: sum(v.verdict == kind for v in verdicts) for kind in marking.VERDICTS}
    shown = [f"{n} {kind}" for kind, n in counts.items() if n or kind != marking.NOT_IN_SET]
    print(f"{len(verdicts)} answers: " + ", ".join(shown))
    return 0


def _check(args, spec) -> int:
    verdict = grading.check(spec, args.target, args.answer, args.notation, reveal=args.reveal)
    if args.json:
        print(json.dumps(verdict.as_dict()))
        return verdict.exit_status
    print(f"{verdict.verdict}: {verdict.message}")
    if len(verdict.lines) > 1:
        for line in verdict.lines:
            print(f"  line {line['line']}: {line['verdict']}: {line['text']}")
    for line in verdict.diagnosis:
        print(f"  {line}")
    if verdict.counterexample:
        print(f"  differs at: {json.dumps(verdict.counterexample)}")
    return verdict.exit_status


def _grade(args, spec) -> int:
    if args.workers is not None and args.workers < 1:
        raise SpecError("--workers", "must be at least 1")
    if not isinstance(spec, api.spec.Spec):  # an exercise set
        return _grade_set(args, spec)
    header, rows = grading.read_submissions(Path(args.submissions))
    with progress("grading", len(rows)) as bar:
        verdicts = grading.grade(spec, rows, args.notation, args.workers, args.timeout,
                                 lambda done, total: bar.advance(done - bar.done), reveal=args.reveal)
    report = Path(args.output)
    try:
        paths = grading.write_report(report.with_suffix(".csv"), header, rows, verdicts)
    except OSError as error:
        raise SpecError("-o", f"cannot write the report {report} ({error.strerror})") from None
    for path in paths:
        print(path)
    counts = {kind: sum(v.verdict == kind for v in verdicts) for kind in ("correct", "incorrect", "cannot read")}
    print(f"{len(verdicts)} answers: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


def _spec(args):
    """The Spec of the command; for ``grade``, an exercise set (``exercises.toml``) instead."""
    if args.command == "grade" and args.spec and args.spec.endswith(".toml"):
        from .exercises import exercise_set

        if exercise_set.is_set_file(args.spec):
            return exercise_set.load(args.spec)
    if args.spec is None or not Path(args.spec).exists() and _looks_compact(args.spec):
        if args.spec is None and not (args.activation or args.loss or args.no_bias):
            # the built-in network, with the error function of the notation's text
            notation = api.notation.load(getattr(args, "notation", "default"))
            return api.from_dict({"network": {**api.spec.DEFAULT["network"], "loss": notation.loss}})
        return api.compact(args.spec or "2-3-1", args.activation, args.loss, not args.no_bias, args.seed)
    if args.activation or args.loss or args.no_bias:
        raise SpecError("--activation/--loss/--no-bias", "apply to a compact form such as 2-3-1, "
                                                         "not to a spec file; set them in the file")
    return api.load(args.spec)


def _looks_compact(text: str) -> bool:
    return all(part.isdigit() for part in text.split("-"))


def _verify(args, spec) -> int:
    report = api.verify(spec.network, values=spec.values)
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0 if report.ok else 1
    print(f"{'parameter':<16} {'analytic':>14} {'finite diff.':>14} {'rel. error':>10}")
    for p in report.parameters:
        note = "  kink: not a witness" if p.kink else ""
        print(f"{p.name:<16} {p.analytic:>14.8g} {p.numeric:>14.8g} {p.rel_error:>10.1e}{note}")
    print(f"generic formulas instantiated == concrete: "
          f"{'yes' if not report.generic_mismatches else 'NO: ' + ', '.join(report.generic_mismatches)}")
    print(f"brute-force sympy.diff of the expanded loss: {report.brute_force}")
    print(f"largest relative error against finite differences: {report.max_rel_error:.1e}")
    print("verdict: " + ("all witnesses agree" if report.ok else "MISMATCH"))
    return 0 if report.ok else 1


def _example(args, spec) -> int:
    result = api.example(spec.network, spec.values, spec.learning_rate)
    data = result.as_dict()
    if args.json:
        print(json.dumps(data))
        return 0
    net = spec.network
    print(f"loss: {data['loss']:.8g}   learning rate: {spec.learning_rate:g}")
    ev = result.evaluation
    print(f"{'unit':<10} {'z':>12} {'a':>12} {'delta':>12}")
    for unit in net.computing_units:
        print(f"{unit.name:<10} {ev.z[unit.name].mean():>12.6g} {ev.a[unit.name].mean():>12.6g} "
              f"{ev.delta[unit.name].mean():>12.6g}")
    print(f"{'parameter':<16} {'value':>12} {'gradient':>12} {'updated':>12}")
    for p in net.parameters:
        print(f"{p!s:<16} {spec.values.parameters[p]:>12.6g} {ev.gradients[p]:>12.6g} {ev.updated[p]:>12.6g}")
    return 0


def _derive(args, spec) -> int:
    import jinja2  # the templates' errors; only derive loads the renderer

    formats = ["md", "tex"] if args.format == "all" else [args.format]
    templates = Path(args.templates) if args.templates else None
    if templates is not None and not templates.is_dir():
        raise SpecError("--templates", f"{templates} is not a directory of jinja2 templates")
    notation = api.notation.load(args.notation)
    left_out = (args.parts or []) + (list(api.rendering.APPENDIX) if args.handout else [])
    parts = [p for p in PARTS if p not in left_out]
    count, limit = len(spec.network.parameters), api.rendering.PER_WEIGHT_LIMIT
    if count > limit:
        print(f"note: {count:,} parameters; above {limit:,} the notes leave out what lists every weight "
              "(the forward pass unit by unit, every delta and gradient, the parameter tables)", file=sys.stderr)
    try:
        paths = api.write_notes(spec, Path(args.output), formats, templates, notation, parts)
    except jinja2.TemplateError as error:
        where = f" ({error.filename}, line {error.lineno})" if getattr(error, "lineno", None) else ""
        raise SpecError("--templates", f"a template failed{where}: {error.message}") from None
    for path in paths:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        spec = _spec(args)
        commands = {"derive": _derive, "verify": _verify, "example": _example, "check": _check, "grade": _grade,
                    "exercises": _exercises}
        return commands[args.command](args, spec)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
