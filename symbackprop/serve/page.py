"""The HTML: the students' page (their own sheet, an answer box with a live preview) and the
instructor's counts.  jinja2 escapes every value (ids, answers and messages are student text);
the sheet is the student's own, rendered by the exercise templates in HTML."""
from __future__ import annotations

import threading

import jinja2

from ..exercises import ExerciseSet, sheets
from ..notes.rendering import TEMPLATES

_ENVIRONMENT = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES / "serve")), autoescape=True,
                                  undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class Pages:
    """Each student's sheet rendered once, when first asked for; the pages around them per request."""

    def __init__(self, made: ExerciseSet):
        self.made = made
        self._render = sheets.SheetRenderer(made, "html")
        self._sheets: dict[str, str] = {}
        self._lock = threading.Lock()
        self.figure = self._render.figure
        self.questions = [{"id": q.id, "number": n + 1, "kind": q.kind} for n, q in enumerate(made.questions)]

    def sheet(self, student: str) -> str:
        """The student's sheet in HTML (call it from a thread: the first time renders it)."""
        with self._lock:
            if student not in self._sheets:
                self._sheets[student] = self._render(self.made.variant(student))
            return self._sheets[student]

    def student(self) -> str:
        return _ENVIRONMENT.get_template("page.html").render()

    def admin(self, per_question: dict, per_student: dict, latest: list) -> str:
        return _ENVIRONMENT.get_template("admin.html").render(
            questions=self.questions, per_question=per_question, per_student=per_student, latest=latest,
            students=[v.student for v in self.made.variants])

    def admin_login(self, problem: str = "") -> str:
        return _ENVIRONMENT.get_template("admin_login.html").render(problem=problem)
