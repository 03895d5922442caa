"""Student ids: read from a roster, checked before they become folder names, escaped where printed.

An id reaches three places: a folder name (``DIR/<student>/``), LaTeX and Markdown.  Ids that
cannot safely be a folder on any common system are refused with a message; the rest are
printed through :func:`markdown_text` and :func:`latex_text`, so no id is ever markup.
"""
from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

from ..errors import SpecError
from ..files import read_bounded, separator_hint

MAX_ID_LENGTH = 64
MAX_STUDENTS = 5000
MAX_ROSTER_BYTES = 2_000_000
#: Characters Windows refuses in file names (and "/" everywhere).
_FORBIDDEN = set('/\\<>:"|?*')
#: Names Windows reserves for devices, with or without an extension.
_DEVICES = {"con", "prn", "aux", "nul", *(f"{port}{n}" for port in ("com", "lpt") for n in [*range(10), *"¹²³"])}
#: Bytes a folder name may have on common file systems (ext4, APFS, NTFS's 255 UTF-16 units).
MAX_ID_BYTES = 255
#: What starts markup inside a line of Markdown (GitHub's included: ~ strikes through).
_MARKDOWN = set("\\`*_[]<>|~^#")
#: Spreadsheets run a cell starting with these as a formula.
_FORMULA_START = "=+-@"


def check_id(student: str, where: str, reserved=()) -> str:
    """``student`` if it can be a folder name and a CSV cell, else a SpecError saying why."""
    problem = None
    if not student:
        problem = "is empty; every student needs an id"
    elif len(student) > MAX_ID_LENGTH:
        problem = f"is {len(student)} characters long; ids are at most {MAX_ID_LENGTH}"
    elif len(student.encode("utf-8", "replace")) > MAX_ID_BYTES:
        problem = f"is {len(student.encode('utf-8', 'replace'))} bytes in UTF-8; a folder name holds at most {MAX_ID_BYTES}"
    elif any(c in _FORBIDDEN for c in student):
        problem = "contains one of / \\ < > : \" | ? *, which a folder name cannot hold"
    elif any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in student):
        problem = "contains a control or invisible formatting character"
    elif student != student.strip():  # grading strips the submissions' student column
        problem = "starts or ends with a space (or a no-break space), which grading strips from submissions"
    elif any(unicodedata.category(c) == "Zs" and c != " " for c in student):
        problem = "contains a no-break or other special space, which looks like a space and is not one"
    elif student.startswith(".") or student.endswith((".", " ")):
        problem = "starts with a dot or ends with a dot or space, which makes a hidden or unusable folder"
    elif student.split(".")[0].strip().lower() in _DEVICES:
        problem = "is a device name on Windows (con, nul, com1, com¹, ...), not a folder name"
    elif student[0] in _FORMULA_START:
        problem = "starts with = + - or @, which spreadsheets run as a formula"
    elif student.lower() in reserved:
        problem = "is the name of a file of the exercise set itself"
    if problem:
        raise SpecError(where, f"student id {student[:80]!r} {problem}; use letters, digits, '-', '_' or '.'")
    return student


def read_roster(path: Path, reserved=()) -> list[str]:
    """The ``student`` column of a roster CSV (other columns ignored), every id checked, no two
    the same (ignoring case and Unicode normalisation, as file systems do)."""
    path = Path(path)
    raw = read_bounded(path, MAX_ROSTER_BYTES, "roster CSV", too_large=f"a roster lists at most {MAX_STUDENTS} students")
    try:
        reader = csv.DictReader(raw.decode("utf-8-sig").splitlines())
        names = [(name or "").strip().lower() for name in reader.fieldnames or []]
        header = dict(zip(names, reader.fieldnames or []))
        if names.count("student") > 1:
            raise SpecError("--students", f"{path} names the 'student' column more than once; keep one")
        if "student" not in header:
            raise SpecError("--students", f"{path} needs a header row with a 'student' column (other columns "
                                          f"are ignored){separator_hint(reader.fieldnames or [], ['student'])}")
        cells = [(row.get(header["student"]) or "").strip() for row in reader]
    except UnicodeDecodeError:
        raise SpecError("--students", f"{path} is not UTF-8 text; save the roster as UTF-8 CSV") from None
    except csv.Error as error:
        raise SpecError("--students", f"{path} is not a readable CSV file: {error}") from None
    if not cells:
        raise SpecError("--students", f"{path} lists no students")
    if len(cells) > MAX_STUDENTS:
        raise SpecError("--students", f"{path} lists {len(cells)} students; at most {MAX_STUDENTS}")
    return check_ids(cells, "--students", reserved, lambda n: f" (row {n + 2} of {path.name})")


def check_ids(students, where: str, reserved=(), row=lambda n: "") -> list[str]:
    """Every id checked, and none twice (folder names collide without regard to case)."""
    seen: dict[str, str] = {}
    for n, student in enumerate(students):
        check_id(student, where + row(n), reserved)
        key = unicodedata.normalize("NFC", student).casefold()
        if key in seen:
            raise SpecError(where + row(n), f"student id {student!r} is listed twice"
                            + (f" (as {seen[key]!r})" if seen[key] != student else "")
                            + "; ids name folders, so they must differ in more than case")
        seen[key] = student
    return list(students)


def markdown_text(text: str) -> str:
    """``text`` shown literally inside a line of Markdown (tables included): every character that
    could start emphasis, a link, HTML, a cell border or code backslash-escaped, ``$`` (math) and
    ``&`` (a character reference) written as references."""
    replaced = {"$": "&#36;", "&": "&amp;"}
    return "".join(replaced.get(c) or ("\\" + c if c in _MARKDOWN else c) for c in text)


def latex_text(text: str) -> str:
    r"""``text`` shown literally by pdflatex, in typewriter type (where < > | " print as themselves):
    specials escaped, characters other than ASCII and Latin-1 letters (which pdflatex may have no
    glyph for) as their code point."""
    special = {c: "\\" + c for c in "&%$#_{}"}
    special.update({"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"})
    shown = "".join(special.get(c, c if c.isascii() or (ord(c) < 256 and c.isalpha()) else f"[U+{ord(c):04X}]") for c in text)
    return rf"\texttt{{{shown}}}"
