"""Access codes: a short secret per student for the answer page, kept in the set only as a slow hash.

A code is 10 characters from an alphabet without look-alikes (no 0/O, 1/I/L, U), about 49 bits,
drawn by :mod:`secrets` (not from the seed: the seed is no secret).  The set stores
``scrypt$N$r$p$salt$hash`` (RFC 7914), so a copy of ``exercises.toml`` does not give the codes
away; the salt is drawn from the seed and the id, so a set written again with the same codes
(``codes.csv`` kept in its folder) is byte-identical.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import SpecError

ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
LENGTH = 10
#: scrypt's cost: 2**12 x 8 blocks, 4 MB and some 50 ms a code on a shared core
SCRYPT = {"n": 2**12, "r": 8, "p": 1}
MAX_CODE_LENGTH = 40  # what a login form may send before it is refused unhashed


def new_code() -> str:
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{code[:5]}-{code[5:]}"


def codes_for(students: Sequence[str], kept: Mapping[str, str]) -> dict[str, str]:
    """A code per student: the one in ``kept`` (a ``codes.csv`` already handed out), else a new one."""
    return {student: kept.get(student) or new_code() for student in students}


def _normal(code: str) -> bytes:
    """As typed: case, spaces and hyphens do not matter."""
    return "".join(code.split()).replace("-", "").upper().encode()


def hash_code(code: str, student: str, seed: int) -> str:
    salt = hashlib.sha256(f"symbackprop access code\0{seed}\0{student}".encode()).digest()[:16]
    digest = hashlib.scrypt(_normal(code), salt=salt, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify(code: str, stored: str) -> bool:
    """Whether ``code`` is the one ``stored`` (as :func:`hash_code` wrote it) was made from."""
    if len(code) > MAX_CODE_LENGTH:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        typed = hashlib.scrypt(_normal(code), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(typed.hex(), digest)


def codes_csv(codes: Mapping[str, str]) -> str:
    """``student,code``: the instructor's list."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "code"])
    writer.writerows(codes.items())
    return out.getvalue()


def read_codes(path: Path) -> dict[str, str]:
    """The codes of an earlier ``codes.csv`` (none if there is no such file), to keep them."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(str(path), f"cannot read the access codes ({error}); move the file away to draw new ones")
    rows = list(csv.DictReader(text.splitlines()))
    if rows and not {"student", "code"} <= set(rows[0]):
        raise SpecError(str(path), "needs the columns student,code; move the file away to draw new codes")
    return {row["student"]: row["code"] for row in rows if row.get("student") and row.get("code")}
