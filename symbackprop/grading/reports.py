"""A class's submissions in (CSV), its reports out: one row per answer (CSV) and a summary (Markdown)."""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ..errors import SpecError
from ..files import read_bounded, separator_hint, write_set
from .judging import Verdict
from .reading import MAX_LENGTH

REQUIRED_COLUMNS = ("id", "target", "answer")


MAX_SUBMISSION_BYTES = 64 * 1024 * 1024
#: Answers in one CSV: 2.6 million short rows fit in 64 MB and were still grading after 300 s, at 1.7 GB.
MAX_SUBMISSION_ROWS = 100_000
#: byte order marks, longest first (UTF-32's little-endian mark starts like UTF-16's)
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_submissions(path: Path, required=REQUIRED_COLUMNS) -> tuple[list[str], list[dict]]:
    """Header and rows of a submissions CSV with the ``required`` columns (an exercise set's name
    id, student, question, answer); raises SpecError when it cannot be used.  The text is
    UTF-8 unless a byte order mark says UTF-16 or UTF-32; anything else is refused at its first
    undecodable byte rather than read with replacement characters.  A row with a cell longer than
    :data:`MAX_CELL` characters is kept with only a ``refused`` message, so it costs its row alone
    and no memory beyond its line."""
    data = read_bounded(path, MAX_SUBMISSION_BYTES, "submissions CSV", too_large="split the class into files")
    records = _records(_decode(data, path))
    del data
    try:
        first = next(records, [])
        header = [name.strip() for name in first] if isinstance(first, list) else []
        header = [name.lower() if name.lower() in required else name for name in header]
        twice = sorted({name for name in header if name and header.count(name) > 1})
        if twice:  # a row would keep only the last of the two cells
            raise SpecError(str(path), f"the header row names {', '.join(map(repr, twice))} more than once "
                                       f"(columns {', '.join(str(n + 1) for n, name in enumerate(header) if name in twice)}); "
                                       "rename or remove the extra column")
        missing = [c for c in required if c not in header]
        if missing:
            raise SpecError(str(path), f"the header row must name {', '.join(required)}; "
                                       f"missing {', '.join(missing)}{separator_hint(header, required)}")
        rows = []
        for record in records:
            if record:
                rows.append(_row(header, record))
                if len(rows) > MAX_SUBMISSION_ROWS:
                    raise SpecError(str(path), f"holds more than {MAX_SUBMISSION_ROWS:,} answers, the limit of one "
                                               "file; split the class into files")
    except csv.Error as error:
        raise SpecError(str(path), f"is not a readable CSV file: {error}") from None
    return header, rows


MAX_CELL = 1 << 20
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")  # lines as a file opened with newline="" gives them


def _records(text: str):
    """The CSV records of ``text``: a list of cells, or for a record with a cell longer than
    :data:`MAX_CELL` the (length, start) of its raw text."""
    pending = []  # the raw lines of the record being read

    def lines():
        for match in _LINE.finditer(text):
            if match.group():
                pending.append(match.group())
                yield match.group()

    source = lines()
    reader = csv.reader(source)
    csv.field_size_limit(MAX_CELL)
    while True:
        pending.clear()
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "field larger than field limit" not in str(error):
                raise
            quotes = sum(line.count('"') for line in pending)
            while quotes % 2 and (line := next(source, None)) is not None:  # the rest of a quoted cell
                quotes += line.count('"')
            yield sum(map(len, pending)), pending[0][:200]


def _row(header: list[str], record) -> dict:
    """A record as {column: cell} (None for a cell the row lacks), or a refused one's first cells."""
    if isinstance(record, list):
        row = dict(zip(header, record))
        return {**{name: None for name in header[len(record):]}, **row}
    length, start = record
    cells = next(csv.reader([start]), [])[:len(header) - 1]
    return {**dict(zip(header, cells)), "answer": None,
            "refused": f"answer longer than {MAX_LENGTH} characters (its row has {length:,} characters)"}


def _decode(data: bytes, path: Path) -> str:
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SpecError(str(path), f"byte {error.start} (0x{data[error.start]:02X}, line {line}) is not "
                                   f"{encoding.removesuffix('-sig').upper()}; save the file as UTF-8 "
                                   "(a spreadsheet's \"CSV UTF-8\") and grade it again") from None
    if encoding == "utf-8" and 0 in data[:2]:  # "id" in UTF-16 is i, NUL, d, NUL
        raise SpecError(str(path), f"byte {data.index(0)} is a NUL byte: the file looks like UTF-16 without a "
                                   "byte order mark; save it as UTF-8")
    return text


def _short(text: str, limit: int) -> str:
    """``text``, or its start and length when longer than was ever read (hostile rows)."""
    return text if len(text) <= limit else f"{text[:min(limit, 200)]}... [{len(text)} characters]"


#: a cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV Injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(text: str) -> str:
    """``text`` made inert for a spreadsheet: a leading ' before a formula character (and before a
    leading ', so that dropping the first ' of any cell that starts with one gives the text back),
    and a NUL byte, which cuts a cell short in C programs, shown as U+2400 (the symbol for NUL)."""
    text = text.replace("\0", "\u2400")
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def report_csv(header: list[str], rows: list[dict], verdicts: list[Verdict]) -> str:
    """One row per answer: the submission's columns, then the verdict, its message, diagnosis and
    counterexample, and the first wrong line of a derivation; every cell made inert for spreadsheets."""
    out = io.StringIO()
    extra = [c for c in header if c not in REQUIRED_COLUMNS]
    writer = csv.writer(out)
    writer.writerow(map(spreadsheet_cell, [*REQUIRED_COLUMNS, *extra, "verdict", "message", "diagnosis",
                                           "counterexample", "first_wrong_line"]))
    for row, verdict in zip(rows, verdicts):
        cells = [row.get("id") or "", _short(row.get("target") or "", 100), _short(row.get("answer") or "", MAX_LENGTH),
                 *(row.get(c) or "" for c in extra)]
        line = verdict.first_wrong_line
        writer.writerow(map(spreadsheet_cell, [
            *cells, verdict.verdict, verdict.message, " | ".join(verdict.diagnosis),
            json.dumps(verdict.counterexample) if verdict.counterexample else "", "" if line is None else str(line)]))
    return out.getvalue()


def _code(text: str, table: bool = False) -> str:
    """``text`` as a Markdown code span (shown as typed, HTML and links inert), on one line; in a
    table cell ``|`` is escaped, as GitHub's tables require even inside code."""
    text = " ".join(text.split()) or " "
    if table:
        text = text.replace("|", "\\|")
    fence = "`" * (max(map(len, re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if text.startswith("`") or text.endswith("`") else f"{fence}{text}{fence}"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def _prose(text: str) -> str:
    """A message as Markdown text on one line: HTML and Markdown markup in it (it quotes student
    input) are escaped, so they show as written and do nothing."""
    text = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, marked when cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return f"{cut} ..."


def _without_line(message: str) -> str:
    """A derivation's message without its "Line n: ", to count the mistake with one-line answers."""
    rest = re.sub(r"^Line \d+: ", "", message)
    return rest[0].upper() + rest[1:] if rest != message else message


def report_markdown(rows: list[dict], verdicts: list[Verdict], title: str = "Homework report") -> str:
    """A summary a TA reads first: per target how many were right, the commonest mistakes, where
    derivations first go wrong.  Everything taken from the submissions is escaped or in code spans."""
    by_target: dict[str, Counter] = {}
    mistakes: dict[str, Counter] = {}
    unreadable: Counter = Counter()
    first_wrong: Counter = Counter()
    examples: dict[tuple, list] = {}  # (target, mistake) -> ids of the first answers that made it
    for row, verdict in zip(rows, verdicts):
        target = _short((row.get("target") or "").strip(), 100) or "(no target)"
        by_target.setdefault(target, Counter())[verdict.verdict] += 1
        if len(verdict.lines) > 1:
            first_wrong[verdict.first_wrong_line] += 1
        if verdict.verdict == "incorrect":
            mistake = _without_line(verdict.message).rstrip(".")
            mistakes.setdefault(target, Counter())[mistake] += 1
            examples.setdefault((target, mistake), []).append(_short(row.get("id") or "?", 40))
        elif verdict.verdict == "cannot read":
            unreadable[_clip(re.sub(r"column \d+", "column ...", _without_line(verdict.message)), 100)] += 1
    total = Counter(v.verdict for v in verdicts)
    counts_line = (f"{len(verdicts)} answers: {total['correct']} correct, {total['incorrect']} incorrect, "
                   f"{total['cannot read']} cannot read.")
    lines = [f"# {_prose(title)}", "", counts_line, "", "| target | answers | correct | incorrect | cannot read |",
             "|---|---:|---:|---:|---:|"]
    for target, counts in sorted(by_target.items()):
        lines.append(f"| {_code(target, table=True)} | {sum(counts.values())} | {counts['correct']} | "
                     f"{counts['incorrect']} | {counts['cannot read']} |")
    lines += ["", "## Commonest mistakes", ""]
    for target, counts in sorted(mistakes.items()):
        lines.append(f"### {_code(target)}")
        lines += [f"- {count} x {_prose(name)} (e.g. id {', '.join(_code(x) for x in examples[target, name][:3])})"
                  for name, count in counts.most_common(8)]
        lines.append("")
    if first_wrong:
        right = first_wrong.pop(None, 0)
        lines += ["## Where derivations first go wrong", "",
                  f"{sum(first_wrong.values()) + right} answers of several lines, {right} right on every line.", ""]
        if first_wrong:
            lines += ["| first wrong line | answers |", "|---:|---:|"]
            lines += [f"| {line} | {count} |" for line, count in sorted(first_wrong.items())]
        lines.append("")
    if unreadable:
        lines += ["## Answers that could not be read", ""]
        lines += [f"- {count} x {_prose(message)}" for message, count in unreadable.most_common(8)]
    return "\n".join(lines) + "\n"


def write_report(path: Path, header, rows, verdicts, inputs: Iterable[Path] = ()) -> list[Path]:
    """``path`` (CSV, one row per answer) and ``path`` with .md (the summary), written as one
    set by :func:`files.write_set`: both, or neither and the old pair untouched; never over
    one of ``inputs``."""
    path = Path(path)
    return write_set({path: report_csv(header, rows, verdicts),
                      path.with_suffix(".md"): report_markdown(rows, verdicts)}, inputs=inputs)
