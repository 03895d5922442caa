"""Templates from someone else's hands (``--templates``), run in a sandbox that is also bounded.

jinja2's sandbox keeps a template from reaching Python, not from asking for all memory
(``{{ "x" * 10**10 }}``) or all time (nested loops over ``range``): here repetition and
powers are refused past a size, a document past :data:`limits.MAX_DOCUMENT_CHARACTERS`,
and a user's templates render under a CPU-time and a memory limit.  Whatever goes wrong
in a template is one :class:`SpecError` naming the file and the line.  Templates are read
from their folder only, never through a link out of it.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import jinja2
import jinja2.sandbox

from .. import limits
from ..errors import SpecError


class _TooLarge(Exception):
    """A template asked for more than the limits allow."""


class BoundedSandbox(jinja2.sandbox.SandboxedEnvironment):
    """The sandbox, refusing a string, list or integer too large to be part of notes."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator: str, left, right):
        integers = all(isinstance(x, int) for x in (left, right))
        if operator == "**" and integers and abs(left) > 1 and right > 0:
            bits = right * abs(left).bit_length()
            if bits > limits.MAX_TEMPLATE_INTEGER_BITS:
                raise _TooLarge(f"computes {left}**{right}, an integer of about {bits:,} bits, more than "
                                f"{limits.MAX_TEMPLATE_INTEGER_BITS:,}")
        if operator == "*" and integers:
            bits = abs(left).bit_length() + abs(right).bit_length()
            if bits > limits.MAX_TEMPLATE_INTEGER_BITS:
                raise _TooLarge(f"multiplies integers into one of about {bits:,} bits, more than "
                                f"{limits.MAX_TEMPLATE_INTEGER_BITS:,}")
        if operator == "*" and not integers:
            sequence, count = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
                if len(sequence) * count > limits.MAX_DOCUMENT_CHARACTERS:
                    raise _TooLarge(f"repeats a {type(sequence).__name__} into {len(sequence) * count:,} items, "
                                    f"more than the {limits.MAX_DOCUMENT_CHARACTERS:,} characters a document may have")
        return super().call_binop(context, operator, left, right)


class ConfinedLoader(jinja2.FileSystemLoader):
    """Templates from the search folders only: a file that resolves outside them (``secret.j2 ->
    /etc/shadow``, then ``{% include 'secret.j2' %}``) would copy any readable file into the notes."""

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        resolved = Path(filename).resolve()
        if not any(resolved.is_relative_to(Path(folder).resolve()) for folder in self.searchpath):
            raise jinja2.sandbox.SecurityError(f"{template} resolves to {resolved}, outside the templates "
                                               "folder; templates are read from their folder only")
        return source, filename, uptodate


def rendered(template: jinja2.Template, context: dict) -> str:
    """``template`` rendered with ``context``, refused once longer than a document may be."""
    pieces, length, stream = [], 0, template.generate(**context)
    for piece in stream:
        length += len(piece)
        if length > limits.MAX_DOCUMENT_CHARACTERS:  # raised where the template is, to name its line
            stream.throw(_TooLarge(f"writes more than {limits.MAX_DOCUMENT_CHARACTERS:,} characters"))
        pieces.append(piece)
    return "".join(pieces)


@contextlib.contextmanager
def guarded(templates: Path | None):
    """Run the block that renders; any failure of a template becomes one SpecError on ``--templates``.

    A user's folder of templates (``templates`` not None) also renders under the CPU-time and
    memory limits; the built-in templates, which are ours, under none.
    """
    bounds = contextlib.ExitStack()
    if templates is not None:
        bounds.enter_context(limits.time_limit(limits.TEMPLATE_SECONDS))
        bounds.enter_context(limits.memory_limit(limits.TEMPLATE_MEMORY_BYTES))
    try:
        with bounds:
            yield
    except SpecError:
        raise
    except jinja2.sandbox.SecurityError as error:
        raise _failed(error, f"did something templates may not ({error})",
                      "templates word the notes and cannot reach Python") from None
    except jinja2.TemplateError as error:
        raise _failed(error, f"failed: {error.message}", "correct the template") from None
    except _TooLarge as error:
        raise _failed(error, str(error), "a template words the notes; it does not compute them") from None
    except TimeoutError as error:
        raise _failed(error.__context__ or error, f"ran for more than {limits.TEMPLATE_SECONDS:g} s of CPU time",
                      "look for a loop that does not end, or loops nested too deeply") from None
    except MemoryError as error:
        raise _failed(error, f"needed more than {limits.TEMPLATE_MEMORY_BYTES // 1024 ** 3} GB of memory",
                      "a template words the notes; it does not compute them") from None
    except RecursionError as error:
        raise _failed(error, "extends, includes or calls itself without end",
                      "a template cannot extend the built-in one of its own name: copy that one into the "
                      "folder and edit it") from None
    except Exception as error:  # a user's template: division by zero, a range too big, ...
        if templates is None:
            raise
        raise _failed(error, f"failed: {type(error).__name__}: {error}", "correct the template") from None


def _failed(error: BaseException, problem: str, fix: str) -> SpecError:
    """The message: which template, what it did, on which line, and what to do."""
    filename, line = _where(error)
    at = f" (line {line})" if line else ""
    return SpecError("--templates", f"the template in {filename or 'a template'} {problem}{at}; {fix}")


def _where(error: BaseException) -> tuple[str | None, int | None]:
    """The template file and line the error happened in: the innermost template frame."""
    if isinstance(error, jinja2.TemplateSyntaxError):
        return error.filename or error.name, error.lineno
    found: tuple[str | None, int | None] = (getattr(error, "filename", None), None)
    trace = error.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        template = frame.f_globals.get("__jinja_template__")
        if template is not None:  # compiled template code: its Python line maps to the template's
            found = (template.filename, template.get_corresponding_lineno(trace.tb_lineno))
        elif frame.f_code.co_filename.endswith(".j2"):  # a frame jinja2 already rewrote to the template's line
            found = (frame.f_code.co_filename, trace.tb_lineno)
        trace = trace.tb_next
    return found
