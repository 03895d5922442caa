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

import jinja2

import symbackprop as api

from .errors import SpecError

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
    for part in api.rendering.PARTS:
        derive.add_argument(f"--no-{part}", dest="parts", action="append_const", const=part,
                            help=f"leave out the {part} section")
    for name, text in (("verify", "check every gradient with three witnesses"),
                       ("example", "print the worked numbers: forward pass, deltas, gradients, one step")):
        command = commands.add_parser(name, help=text)
        _add_spec(command)
        command.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _spec(args) -> api.spec.Spec:
    if args.spec is None or not Path(args.spec).exists() and _looks_compact(args.spec):
        if args.spec is None and not (args.activation or args.loss or args.no_bias):
            return api.from_dict(api.spec.DEFAULT)
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
    formats = ["md", "tex"] if args.format == "all" else [args.format]
    templates = Path(args.templates) if args.templates else None
    if templates is not None and not templates.is_dir():
        raise SpecError("--templates", f"{templates} is not a directory of jinja2 templates")
    notation = api.notation.load(args.notation)
    parts = [p for p in api.rendering.PARTS if p not in (args.parts or [])]
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
        spec = _spec(args)
        return {"derive": _derive, "verify": _verify, "example": _example}[args.command](args, spec)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
