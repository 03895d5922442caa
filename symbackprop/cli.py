"""``python -m symbackprop`` and ``symbackprop``: a thin layer over the Python API, one
subcommand per use, options and operands in any order.

Bad input ends with one line on stderr naming the field and the fix, exit status 2, no
traceback, and no file written or lost (outputs are written as one set: :mod:`files`).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np

import symbackprop as api

from . import files, limits
from .errors import SpecError
from .parts import PARTS
from .progress import progress

SPEC_HELP = ("a TOML spec file, or a compact form such as 2-3-1 (with --activation, --loss); "
             "default: 2 inputs, 3 sigmoid hidden units, 1 linear output, half sum of squares")
DESCRIPTIONS = {
    "derive": "Write the step-by-step derivation of backpropagation for a network as lecture notes "
              "(Markdown with SVG figures, and LaTeX).",
    "verify": "Check every derived gradient with three witnesses: the lecture formulas instantiated, brute-force "
              "sympy.diff of the expanded loss, and finite differences. Exit status 0 when all agree, 1 otherwise.",
    "example": "Print the worked example: forward pass, loss, deltas, gradients and one gradient-descent step. "
               "Exit status 2 when its numbers overflow.",
}


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line, as every other error is (the usage is in --help)."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def _add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", help=SPEC_HELP)
    compact = parser.add_argument_group("compact form (with a shape such as 2-3-1; a spec file sets these itself)")
    compact.add_argument("--activation", help="one name for all non-input layers or one per layer, comma-separated "
                                              "(default: sigmoid hidden layers, identity output)")
    compact.add_argument("--loss", help="the loss name (half_sse, cross_entropy, ...; default half_sse, or the "
                                        "notation's error function)")
    compact.add_argument("--no-bias", action="store_true", help="no biases")
    compact.add_argument("--seed", type=int, help="seed of the example values (default 0)")
    compact.add_argument("--recurrent", action="store_true",
                         help="an Elman network (each hidden layer feeds itself at the next step); needs --steps")
    compact.add_argument("--steps", type=int, help="with --recurrent: the number of time steps T")
    parser.add_argument("--max-parameters", type=int, default=limits.MAX_PARAMETERS, metavar="N",
                        help="refuse networks with more weights and biases than N (default %(default)s)")


def _commands(prog: str) -> dict[str, argparse.ArgumentParser]:
    """One parser per subcommand, each with its own usage, description and exit status."""
    commands = {}
    for name in ("derive", "verify", "example"):
        commands[name] = _Parser(prog=f"{prog} {name}", description=DESCRIPTIONS[name])
        _add_spec(commands[name])
    derive = commands["derive"]
    derive.add_argument("--format", choices=["md", "tex", "all"], default="all",
                        help="Markdown, LaTeX, or both (default)")
    derive.add_argument("-o", "--output", default="output", help="folder for the notes (default: output)")
    derive.add_argument("--templates", help="a folder of jinja2 templates overriding the built-in ones "
                                            "(notes.j2: the text; md.j2, tex.j2: how each format writes it)")
    derive.add_argument("--notation", default="default",
                        help=f"a preset ({', '.join(api.notation.names())}) or a TOML file starting from one "
                             "(base = \"haykin\") that overrides any role's symbol")
    derive.add_argument("--truncate", type=int, metavar="K",
                        help="recurrent networks: show truncated backpropagation through time over the last K steps")
    derive.add_argument("--handout", action="store_true",
                        help="the notes for students: without the appendix (every formula, the verification)")
    for part in PARTS:
        derive.add_argument(f"--no-{part}", dest="parts", action="append_const", const=part,
                            help=f"leave out the {part} section")
    for name in ("verify", "example"):
        commands[name].add_argument("--json", action="store_true", help="print one JSON object (RFC 8259: a "
                                                                        "number that is not finite is null)")
    commands.update(_homework(prog))
    commands["exercises"] = _exercises_parser(prog)
    commands["serve"] = _serve_parser(prog)
    return commands


def _parser(prog: str, commands: dict[str, argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The top level: the list of subcommands, --help and --version."""
    parser = _Parser(prog=prog, description="Backpropagation derived by SymPy, shown step by step.",
                                     epilog=f"'{prog} COMMAND --help' describes each command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {api.__version__}")
    listing = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands.items():
        listing.add_parser(name, help=command.description.split(". ")[0].rstrip("."), add_help=False)
    return parser


ANSWER_HELP = """\
targets:
  generic, about neuron j of a layer in the notation's own index letters:
    delta_output delta_hidden grad_w_output grad_w_hidden grad_b_output grad_b_hidden
    update_w_output update_w_hidden
  concrete, one quantity of the spec's network (0-based, like weights[l][i][j], biases[l][j]):
    delta[l][j] grad_b[l][j] grad_w[l][i][j] update_w[l][i][j]
  through time, on a recurrent network (recurrent = true or --recurrent; r_ij from unit i at t-1 to j at t):
    delta_hidden_bptt grad_r grad_r[h][i][j] (like recurrent_weights[h][i][j]); there delta_output is
    per step, grad_w_hidden sums over the steps, the other targets above are refused

answers: LaTeX or plain text, with or without a left-hand side, e.g. (shell-quoted)
  "\\delta_j = g'(z_j) \\sum_k w_{jk} \\delta_k"     "g'(z_j)*sum(w_jk*delta_k, k)"     "g'(z_j) sum_k w_jk delta_k"
  "\\frac{\\partial E}{\\partial a_k} \\sigma'(z_k)"    "\\Delta w_{ij} = -\\eta \\delta_j a_i"    "w_ij - eta*delta_j*a_i"
  concrete: "delta[1][0]*a[0][2]", "g'(z[0][1])*w[1][1][0]*delta[1][0]", or a number
  through time: "\\delta_j(t) = g'(z_j(t)) [\\sum_k w_{jk} \\delta_k(t) + \\sum_m r_{jm} \\delta_m(t+1)]"
    "\\sum_t a_i(t-1) \\delta_j(t)" (also a_{i,t-1}, h_i^{<t-1>}); grad_r[0][1][2]: "a[0][1](0)*delta[0][2](1)"
    (steps 0-based there, as the units of example --json), or a number
symbols follow --notation (haykin: v_j, y_i, phi, w_{kj}, d_j, e_j; nielsen: z^l_j, sigma, w^{l+1}_{kj}).
An update answer with Delta on the left, or without the weight itself, is the change; with
w <- / w^+ / w(n+1) on the left, or containing the weight, it is the new weight.
A derivation of several lines (newlines, \\\\, \\begin{aligned}; "= ..." continues a line) is checked
line by line: every line must equal the target; the verdict names the first line that does not.
"""
EXIT_STATUS = {
    "check": "exit status: 0 correct, 1 incorrect, 2 cannot read (or bad input).",
    "grade": "exit status: 0 when the report is written, whatever the verdicts (the last line printed and\n"
             "REPORT.md count them); 2 for bad input, and then no report is written.",
}
REVEAL_HELP = ("let messages show the worked example's value of a concrete target (the exercise's answer); "
               "without it a wrong number is only said to differ")


def _homework(prog: str) -> dict[str, argparse.ArgumentParser]:
    notations = ", ".join(api.notation.names())
    descriptions = {"check": "Check one homework answer against the derivation: correct, incorrect (with the "
                             "mistake named and a point where it differs) or cannot read.",
                    "grade": "Grade a CSV of answers: every row of SUBMISSIONS (header id,target,answer; other "
                             "columns are carried over), in worker processes, into REPORT.csv (one row per answer) "
                             "and REPORT.md (the summary). SPEC and SUBMISSIONS may come in either order."}
    commands = {name: _Parser(prog=f"{prog} {name}", description=text,
                                              epilog=ANSWER_HELP + EXIT_STATUS[name],
                                              formatter_class=argparse.RawDescriptionHelpFormatter)
                for name, text in descriptions.items()}
    check, grade = commands["check"], commands["grade"]
    _add_spec(check)
    check.add_argument("--target", required=True, help="what the answer is for (see below)")
    check.add_argument("--answer", required=True, help="the answer, LaTeX or plain text")
    check.add_argument("--json", action="store_true",
                       help="print {verdict, message, diagnosis, counterexample, lines}")
    _add_spec(grade)
    grade.add_argument("submissions", help="CSV file with a header row id,target,answer")
    grade.add_argument("-o", "--output", required=True, help="report path; writes REPORT.csv and REPORT.md "
                       "(and REPORT-grades.csv, the gradebook, for an exercise set with a roster)")
    grade.add_argument("--workers", type=int, help="worker processes (default: every core)")
    grade.add_argument("--timeout", type=float, default=limits.SECONDS_PER_ANSWER,
                       help="seconds per answer before its worker is stopped (default %(default)s)")
    for command in commands.values():
        command.add_argument("--notation", default="default", help=f"notation preset ({notations}) or a .toml file")
        command.add_argument("--reveal", action="store_true", help=REVEAL_HELP)
    return commands


def _exercises_parser(prog: str) -> argparse.ArgumentParser:
    exercise = _Parser(
        prog=f"{prog} exercises",
        description="Write exercise sheets, their answer key and the set to grade them by: sheet.md/sheet.tex "
                    "(with --students: one per student under DIR/<student>/, each with "
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
                                              "delta,grad_w,update_w; a recurrent spec: delta_hidden_bptt,grad_r,"
                                              "grad_r[h][i][j]; a convolutional spec: grad_kernel,delta_conv_input,"
                                              "grad_w[l][o][c][u][v],grad_b[l][o] (also grad_w, grad_b of a dense "
                                              "layer)")
    exercise.add_argument("--format", choices=["md", "tex", "all"], default="all", help="Markdown, LaTeX or both")
    exercise.add_argument("--templates", help="a directory of jinja2 templates overriding the built-in ones")
    exercise.add_argument("-o", "--output", required=True, help="directory for the sheets, the key and the set")
    exercise.add_argument("--force", action="store_true", help="replace a set in the directory made with other "
                                                               "options (notation, questions, network, numbers)")
    return exercise


def _serve_parser(prog: str) -> argparse.ArgumentParser:
    serve = _Parser(
        prog=f"{prog} serve",
        description="Serve a web page where students check their answers (needs the [serve] extra): EXERCISES.toml, "
                    "written by `exercises --students`; each student logs in with their id and the access code on "
                    "their sheet; every attempt is kept in --db. The instructor's counts are at /admin, every "
                    "attempt as CSV at /admin/export.csv, the gradebook at /admin/grades.csv.")
    serve.add_argument("exercises", metavar="EXERCISES.toml", help="the set, DIR/exercises.toml")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this "
                                                           "machine only; 0.0.0.0 for the network, behind HTTPS)")
    serve.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    serve.add_argument("--db", default="submissions.sqlite",
                       help="SQLite file of the attempts (default %(default)s), or a PostgreSQL database "
                            "postgresql://USER@HOST:PORT/DB that several processes or hosts share (needs the "
                            "postgres extra)")
    serve.add_argument("--processes", type=int, default=1,
                       help="server processes on the one port, each with its checking workers (default 1)")
    serve.add_argument("--admin-token", help="the instructor's token, at least 16 characters (default: a new one, "
                                             "printed at start)")
    serve.add_argument("--workers", type=int, help="checking processes (default: every core)")
    serve.add_argument("--timeout", type=float, default=limits.SECONDS_PER_ANSWER,
                       help="seconds per answer before its worker is stopped (default %(default)s)")
    serve.add_argument("--rate-limit", type=int, help="requests per student per minute, wrong codes included "
                                                      "(default 30)")
    return serve


def _serve(args, spec) -> int:
    from . import serve  # Starlette and uvicorn only for this command

    _check_pool(args)
    rate = {"rate": args.rate_limit} if args.rate_limit is not None else {}
    serve.serve_until_stopped(args.exercises, args.host, args.port, args.db, args.admin_token, args.workers,
                              args.timeout, say=lambda line: print(line, flush=True), processes=args.processes,
                              **rate)
    return 0


def _exercises(args, spec) -> int:
    from .exercises import access, exercise_set, sheets

    files.check_folder(Path(args.output))  # -o roster.csv: a file, not the folder of a set
    kept = access.read_codes(Path(args.output) / "codes.csv") if args.students else {}  # sheets handed out stay valid
    made = exercise_set.exercises(spec, args.students, args.questions, args.seed or 0, args.notation, kept)
    formats = ["md", "tex"] if args.format == "all" else [args.format]
    paths = sheets.write(made, Path(args.output), formats, Path(args.templates) if args.templates else None,
                         inputs=_inputs(args), force=args.force)
    written = sum(path.name.startswith("sheet.") for path in paths)
    codes = ", codes.csv (each student's access code to serve; keep it private)" if made.codes else ""
    print(f"{args.output}: {written} sheet files of {len(made.questions)} questions for "
          f"{len(made.variants) if made.per_student else 'everyone'}, key, key.csv, exercises.toml{codes}")
    if Path(args.output).resolve() in (Path.cwd(), *Path.cwd().parents):
        print("note: the set replaced the folder you are in as a whole; `cd .` to see the new files",
              file=sys.stderr)
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
    print(f"{len(verdicts)} answer{'' if len(verdicts) == 1 else 's'}: " + ", ".join(shown))
    return 0


def _check(args, spec) -> int:
    from . import grading  # the answer reader (lark) only for the commands that read answers

    verdict = grading.check(spec, args.target, args.answer, args.notation, reveal=args.reveal)
    if args.json:
        _print_json(verdict.as_dict())
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


def _check_pool(args) -> None:
    """Before any work: each worker is a process of its own (``--workers 100000`` once ran out of
    memory), and a time limit must be one a worker can be held to."""
    if args.workers is not None and not 1 <= args.workers <= limits.MAX_WORKERS:
        raise SpecError("--workers", f"must be from 1 to {limits.MAX_WORKERS}, not {args.workers}")
    if not 0 < args.timeout <= limits.MAX_SECONDS_PER_ANSWER:  # also refuses nan
        raise SpecError("--timeout", f"must be more than 0 and at most {limits.MAX_SECONDS_PER_ANSWER} "
                                     f"seconds, not {args.timeout}")


def _grade(args, spec) -> int:
    from . import grading

    _check_pool(args)
    report = Path(args.output)
    if os.path.basename(args.output) in ("", ".", ".."):  # out/ and out/. too, which pathlib reads as out
        raise SpecError("-o", f"{args.output!r} names no file; give a report path such as results/report "
                              "(writes results/report.csv and results/report.md)")
    paths = [report.with_suffix(".csv"), report.with_suffix(".md")]
    if not isinstance(spec, api.spec.Spec):  # an exercise set
        from .exercises import exercise_set, marking

        targets = [*paths, marking.gradebook_path(paths[0])] if spec.per_student else paths
        for path in targets:
            if exercise_set.is_own_file(path, Path(args.spec).parent):
                raise SpecError(str(path), "is a file of the exercise set being graded; write the report "
                                           "elsewhere, e.g. -o report")
        files.check_targets(targets, _inputs(args))
        return _grade_set(args, spec)
    files.check_targets(paths, _inputs(args))  # before the grading, which can take minutes
    header, rows = grading.read_submissions(Path(args.submissions))
    with progress("grading", len(rows)) as bar:
        verdicts = grading.grade(spec, rows, args.notation, args.workers, args.timeout,
                                 lambda done, total: bar.advance(done - bar.done), reveal=args.reveal)
    for path in grading.write_report(paths[0], header, rows, verdicts, inputs=_inputs(args)):
        print(path)
    counts = {kind: sum(v.verdict == kind for v in verdicts) for kind in ("correct", "incorrect", "cannot read")}
    print(f"{len(verdicts)} answer{'' if len(verdicts) == 1 else 's'}: "
          + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


def _inputs(args) -> list[Path]:
    """The files this run reads, which no output may replace or remove (a templates folder: every
    file in it, at any depth, for a template may include another from a subfolder)."""
    named = [args.spec, *(getattr(args, option, None) for option in ("submissions", "notation", "students"))]
    templates = getattr(args, "templates", None)
    read = [Path(templates)] if templates and Path(templates).is_dir() else []
    return [*(Path(name) for name in named if name and Path(name).is_file()), *read]


def _spec(args):
    """The network the arguments name (for ``grade``, an exercise set, ``exercises.toml``, instead);
    an option that cannot apply is an error, never ignored."""
    if args.command == "grade" and args.spec and args.spec.endswith(".toml"):
        from .exercises import exercise_set

        if exercise_set.is_set_file(args.spec):
            return exercise_set.load(args.spec)
    if args.max_parameters < 1:
        raise SpecError("--max-parameters", "must be at least 1")
    if args.seed is not None and args.seed < 0:
        raise SpecError("--seed", f"must be a non-negative integer, not {args.seed}")
    seeds_students = args.command == "exercises"  # there --seed draws the students' numbers too
    given = [flag for flag, value in (("--activation", args.activation), ("--loss", args.loss),
                                      ("--no-bias", args.no_bias), ("--recurrent", args.recurrent),
                                      ("--steps", args.steps is not None),
                                      ("--seed", args.seed is not None and not seeds_students)) if value]
    if args.spec is not None and (Path(args.spec).exists() or not _looks_compact(args.spec)):
        if given:
            raise SpecError(given[0], f"applies to a compact form such as 2-3-1, not to the spec file {args.spec}; "
                                      "set it in the file")
        return api.load(args.spec, max_parameters=args.max_parameters)
    if args.spec is None and "--seed" in given:
        raise SpecError("--seed", "applies to a compact form: give the shape too, e.g. 2-3-1 --seed 5")
    if args.steps is not None and not args.recurrent:
        raise SpecError("--steps", "applies with --recurrent; add --recurrent or remove --steps")
    if args.recurrent and args.steps is None:
        raise SpecError("--recurrent", "needs --steps T, the number of time steps")
    loss = args.loss
    if args.spec is None and loss is None:  # the built-in network, with the error function of the notation's text
        loss = api.notation.load(getattr(args, "notation", "default")).loss
    return api.compact(args.spec or "2-3-1", args.activation, loss, not args.no_bias, args.seed or 0,
                       args.steps, max_parameters=args.max_parameters)


def _looks_compact(text: str) -> bool:
    return all(part.isdigit() for part in text.split("-"))


def _print_json(data: dict) -> None:
    """``data`` as strict JSON; the names of numbers that are not finite (now null) under "non_finite"."""
    data, bad = api.examples.nulled(data)
    print(json.dumps({**data, "non_finite": bad} if bad else data, allow_nan=False))


def _verify(args, spec) -> int:
    report = api.verify(spec.network, values=spec.values)
    if args.json:
        analytic = {p: check.analytic for p, check in zip(spec.network.parameters, report.parameters)}
        _print_json({**report.as_dict(), "grad": api.examples.nested_parameters(spec.network, analytic)})
        return 0 if report.ok else 1
    _table(["parameter", "analytic", "finite diff.", "rel. error"],
           [[p.name, f"{p.analytic:.8g}", f"{p.numeric:.8g}", f"{p.rel_error:.1e}",
             *(["  kink: not a witness"] if p.kink else [])] for p in report.parameters])
    print(f"generic formulas instantiated == concrete: "
          f"{'yes' if not report.generic_mismatches else 'NO: ' + ', '.join(report.generic_mismatches)}")
    print(f"brute-force sympy.diff of the expanded loss: {report.brute_force}")
    print(f"largest relative error against finite differences: {report.max_rel_error:.1e}")
    print("verdict: " + ("all witnesses agree" if report.ok else "MISMATCH"))
    return 0 if report.ok else 1


def _example(args, spec) -> int:
    result = api.example(spec.network, spec.values, spec.learning_rate, fixed=spec.fixed)
    if args.json:
        _print_json(result.as_dict())
    else:
        _print_example(result, spec)
    api.examples.check_finite(result)
    return 0


def _print_example(result, spec) -> None:
    net, ev = spec.network, result.evaluation
    print(f"loss: {ev.loss:.8g}   learning rate: {spec.learning_rate:g}")
    _table(["unit", "z", "a", "delta"], [[unit.name, *(f"{table[unit.name].mean():.6g}" for table in (ev.z, ev.a, ev.delta))]
                                         for unit in net.computing_units])
    _table(["parameter", "value", "gradient", "updated"],
           [[str(p), *(f"{table[p]:.6g}" for table in (spec.values.parameters, ev.gradients, ev.updated))]
            for p in net.parameters])


def _table(header: list[str], rows: list[list[str]]) -> None:
    """The first column left-aligned, the others right-aligned, each as wide as its widest cell and
    two spaces apart, so that the header lines up with any names; cells past the header trail."""
    widths = [max(len(row[n]) for row in [header, *rows]) for n in range(len(header))]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:]))]
        print("  ".join(cells) + "".join(row[len(header):]))


def _derive(args, spec) -> int:
    formats = ["md", "tex"] if args.format == "all" else [args.format]
    templates = Path(args.templates) if args.templates else None
    if templates is not None and not templates.is_dir():
        raise SpecError("--templates", f"{templates} is not a directory of jinja2 templates")
    notation = api.notation.load(args.notation)
    left_out = (args.parts or []) + (list(api.rendering.APPENDIX) if args.handout else [])
    parts = [p for p in PARTS if p not in left_out]
    files.check_folder(Path(args.output))  # before the derivation, which can take seconds
    count, limit = len(spec.network.parameters), api.rendering.PER_WEIGHT_LIMIT
    units = len(spec.network.computing_units)
    if count > limit:
        print(f"note: {count:,} parameters; above {limit:,} the notes leave out what lists every weight "
              "(the forward pass unit by unit, every delta and gradient, the parameter tables)", file=sys.stderr)
    elif not api.rendering.lists_every_unit(spec.network):
        print(f"note: {units:,} units; above {api.rendering.MAX_UNITS:,} the notes leave out what lists every "
              "unit (the tables of the worked example, every formula of the appendix, the parameter tables)",
              file=sys.stderr)
    paths = api.write_notes(spec, Path(args.output), formats, templates, notation, parts, inputs=_inputs(args),
                            truncate=args.truncate)
    for path in paths:
        print(path)
    return 0


RUN = {"derive": _derive, "verify": _verify, "example": _example, "check": _check, "grade": _grade,
       "exercises": _exercises, "serve": _serve}


def _arguments(argv: list[str], prog: str) -> argparse.Namespace:
    """Options and operands in any order, each subcommand with its own usage in errors."""
    commands = _commands(prog)
    place = _command_place(argv, commands)
    if place is None:
        _parser(prog, commands).parse_args(argv)  # --help, --version, or a usage error: exits
    command = argv[place]
    args = commands[command].parse_intermixed_args(argv[:place] + argv[place + 1:])
    args.command = command
    if args.command == "grade" and args.spec is not None and _is_submissions(args.spec, args.submissions):
        args.spec, args.submissions = args.submissions, args.spec
    return args


def _command_place(argv: list[str], commands: dict[str, argparse.ArgumentParser]) -> int | None:
    """Where the subcommand is: the first command name that is not the value of an option
    before it (``-o derive derive`` writes into the folder derive); None when there is none,
    or when --help or --version comes first."""
    for place, token in enumerate(argv):
        if token in ("-h", "--help", "--version"):
            return None
        if token in commands:
            before = commands[token]._option_string_actions.get(argv[place - 1]) if place else None
            if before is None or before.nargs == 0:  # argparse's table of its options: nargs 0 takes no value
                return place
    return None


def _is_submissions(first: str, second: str) -> bool:
    """Whether ``grade``'s first operand is the CSV (SUBMISSIONS SPEC rather than SPEC SUBMISSIONS)."""
    is_spec = lambda text: _looks_compact(text) or text.lower().endswith(".toml")
    return (first.lower().endswith(".csv") and not second.lower().endswith(".csv")
            or is_spec(second) and not is_spec(first))


def main(argv: list[str] | None = None, prog: str = "symbackprop") -> int:
    """Run one subcommand; bad input is one line on stderr and exit status 2, an interrupt
    (Ctrl-C, or SIGTERM, handled alike) one line and 128 + the signal's number."""
    received, main_process = [], os.getpid()

    def stop(signum, frame):
        if os.getpid() != main_process:  # a forked worker: end silently, as without a handler
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        received.append(signum)
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        args = _arguments(sys.argv[1:] if argv is None else list(argv), prog)
        with np.errstate(all="ignore"):  # overflow is reported once, as a result that is not finite
            return RUN[args.command](args, None if args.command == "serve" else _spec(args))
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] == "symbackprop":
            raise
        print(f"error: this command needs the package {error.name!r}, which this Python ({sys.executable}) "
              "does not have; install symbackprop with its dependencies: pip install -e .", file=sys.stderr)
        return 2
    except OverflowError as error:
        print(f"error: the numbers overflow floating point ({error}); use smaller inputs or weights, or an "
              "activation and loss that stay finite", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        signum = received[0] if received else signal.SIGINT
        end_of_progress = "\n" if sys.stderr.isatty() else ""
        print(f"{end_of_progress}{prog}: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # output piped into head & co.: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
