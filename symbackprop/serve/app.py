"""The routes: the students' JSON API and page, the instructor's counts and export, and the limits.

Who may do what:

* a student sends their id and access code with every request (JSON body, no cookie), so no
  other site can act for them: a cross-site form cannot send ``application/json`` without a
  CORS preflight, which this server never grants, and it does not know the code;
* the instructor sends ``Authorization: Bearer TOKEN``, or logs in once with a form that sets
  an HttpOnly ``SameSite=Strict`` cookie valid under ``/admin`` only.  That cookie only reads
  (``GET /admin``, ``GET /admin/export.csv``, ``GET /admin/grades.csv``); the login form itself
  refuses a request whose ``Origin`` is another site.

Each student gets ``rate`` requests a minute (checks and logins, wrong codes included), counted in
the database for every process and host on it: more get 429 with ``Retry-After``; and one answer
checked at a time: another one waits up to :data:`IN_FLIGHT_SECONDS` for it, then gets 429, so no
student fills the checking slots.  Answers wait for a slot in the event loop, not in a thread, so
the pages and ``/health`` never queue behind them.  A body over :data:`MAX_BODY` bytes is refused
(413) before it is read whole or parsed, and one that takes more than :data:`BODY_SECONDS` to
arrive (408).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..exercises import ExerciseSet, access, marking
from ..exercises.gradebook import gradebook_csv
from ..grading.reading import MAX_LENGTH
from .checking import Checking
from .database import Submissions
from .page import Pages

STATIC = Path(__file__).parent / "static"
#: JSON escapes a character in at most 6 bytes (\uXXXX); the id, code and question add little
MAX_BODY = 6 * MAX_LENGTH + 2048
RATE_PER_MINUTE = 30
IN_FLIGHT_SECONDS = 2.0
BODY_SECONDS = 10.0
_SURROGATE = re.compile("[\ud800-\udfff]")
COOKIE = "symbackprop_admin"
HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; "
                                      "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff",
           # no-referrer would make browsers send "Origin: null" with the login form, which is refused
           "Referrer-Policy": "same-origin"}


class Refused(Exception):
    """A request answered with ``status`` and a one-line ``message`` saying what to change."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class RateLimit:
    """At most ``per_minute`` requests per student in any 60 seconds, counted in the database, so
    that every process and host serving it counts against one limit (blocking: call from a thread)."""

    def __init__(self, per_minute: int, submissions: Submissions, prefix: str = ""):
        self.per_minute, self.submissions, self.prefix = per_minute, submissions, prefix

    def take(self, key: str) -> None:
        """Count one request of ``key`` (after ``prefix``: a student's id has no ':', an address
        after "admin login from " cannot be one)."""
        wait = self.submissions.take(self.prefix + key, self.per_minute)
        if wait is not None:
            raise Refused(429, f"more than {self.per_minute} requests in a minute; try again in {wait} s",
                          {"Retry-After": str(wait)})


class Students:
    """Who is who: an id and its code, checked against the set's hash (slow on purpose) once per
    server; a code already verified is remembered as a keyed digest, not as itself."""

    def __init__(self, made: ExerciseSet, limit: RateLimit):
        self.made, self.limit = made, limit
        self.key = secrets.token_bytes(32)
        self.verified: dict[str, bytes] = {}
        self.locks = {v.student: asyncio.Lock() for v in made.variants}  # one slow hash at a time per student

    def _digest(self, code: str) -> bytes:
        return hmac.new(self.key, code.encode(), hashlib.sha256).digest()

    async def login(self, student: str, code: str) -> None:
        variant = self.made.variant(student)
        if variant is None:
            raise Refused(401, "no such student id and access code; type them as on your sheet")
        await run_in_threadpool(self.limit.take, student)
        async with self.locks[student]:  # 50 first requests at once: one hash, then 49 look-ups
            known = self.verified.get(student)
            if known is not None and hmac.compare_digest(known, self._digest(code)):
                return
            if not await run_in_threadpool(access.verify, code, variant.code_hash):
                raise Refused(401, "no such student id and access code; type them as on your sheet")
            self.verified[student] = self._digest(code)


async def _body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request's body, refused (413) as soon as it is known to be over ``limit`` bytes: from its
    declared length, or while it streams in, so a huge body is never held or parsed; and refused
    (408) when it trickles in for more than :data:`BODY_SECONDS`, so a slow sender holds nothing long."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the body is {declared} bytes; at most {limit} (answers are at most {MAX_LENGTH} "
                           "characters)")
    body = bytearray()

    async def receive() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise Refused(413, f"the body is over {limit} bytes (answers are at most {MAX_LENGTH} characters)")
    try:
        await asyncio.wait_for(receive(), BODY_SECONDS)
    except asyncio.TimeoutError:
        raise Refused(408, f"the body took more than {BODY_SECONDS:g} s to arrive; send it at once") from None
    return bytes(body)


async def _json(request: Request, fields: tuple[str, ...]) -> dict:
    """The body's JSON object with string ``fields``."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise Refused(415, "send the body as JSON with Content-Type: application/json")
    body = await _body(request)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise Refused(400, f"the body is not JSON ({error}); send an object with {', '.join(fields)}") from None
    except RecursionError:
        raise Refused(400, f"the body is nested too deeply; send a flat object with {', '.join(fields)}") from None
    if not isinstance(data, dict):
        raise Refused(400, f"the body must be a JSON object with {', '.join(fields)}")
    missing = [name for name in fields if not isinstance(data.get(name), str)]
    if missing:
        raise Refused(400, f"the body needs {', '.join(missing)} as text (an object with {', '.join(fields)})")
    for name in fields:  # JSON's \ud800 is a lone surrogate: no character, and no text SQLite can store
        if not data[name].isascii() and _SURROGATE.search(data[name]):
            raise Refused(400, f"the {name} holds a lone surrogate escape (\\ud800-\\udfff), which is no "
                               "character; send the text as typed")
    return data


class Server:
    """The routes over one exercise set, its checking workers and its submissions database."""

    def __init__(self, made: ExerciseSet, checking: Checking, submissions: Submissions, pages: Pages,
                 admin_token: str, rate: int = RATE_PER_MINUTE):
        self.made, self.checking, self.submissions, self.pages = made, checking, submissions, pages
        self.admin_token = admin_token
        self.students = Students(made, RateLimit(rate, submissions))
        self.admin_logins = RateLimit(rate, submissions, "admin login from ")  # per client address
        self.answering: set[str] = set()  # students with an answer being checked (event loop only: no lock)
        self.slots = asyncio.Semaphore(checking.size)  # answers wait for a slot here, not in a thread

    async def student(self, request: Request) -> dict:
        data = await _json(request, ("student", "code"))
        await self.students.login(data["student"], data["code"])
        attempts = await run_in_threadpool(self.submissions.attempts, data["student"])
        sheet = await run_in_threadpool(self.pages.sheet, data["student"])
        return {"sheet": sheet, "questions": self.pages.questions,
                "attempts": [{"time": a.time, "question": a.question, "answer": a.answer, "verdict": a.verdict.verdict}
                             for a in attempts]}

    async def check(self, request: Request) -> dict:
        data = await _json(request, ("student", "code", "question", "answer"))
        student, question, answer = data["student"], self.made.question_id(data["question"]), data["answer"]
        await self.students.login(student, data["code"])
        if question is None:
            raise Refused(404, f"no question {data['question'][:40]!r}; the questions are "
                               f"{', '.join(self.checking.questions)} (or their numbers)")
        if len(answer) > MAX_LENGTH:
            raise Refused(413, f"the answer is {len(answer)} characters; at most {MAX_LENGTH}")
        waited = time.monotonic()
        while student in self.answering:
            if time.monotonic() - waited > IN_FLIGHT_SECONDS:
                raise Refused(429, "your previous answer is still being checked; send one answer at a time",
                              {"Retry-After": "1"})
            await asyncio.sleep(0.05)
        self.answering.add(student)
        try:
            async with self.slots:
                verdict = await run_in_threadpool(self.checking.check, student, question, answer)
            await run_in_threadpool(self.submissions.record, student, question,
                                    self.checking.target(student, question), answer, verdict)
        finally:
            self.answering.discard(student)
        return verdict.as_dict()

    def _admin(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            token = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(token.encode(), self.admin_token.encode())

    async def admin(self, request: Request) -> Response:
        if not self._admin(request):
            return HTMLResponse(self.pages.admin_login(), 401, {"WWW-Authenticate": "Bearer"})
        counts = await run_in_threadpool(lambda: (self.submissions.counts("question"),
                                                  self.submissions.counts("student"),
                                                  self.submissions.attempts(latest=100)))
        return HTMLResponse(self.pages.admin(*counts))

    async def admin_login(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise Refused(403, "a login from another site is refused; open this server's /admin yourself")
        await run_in_threadpool(self.admin_logins.take, request.client.host if request.client else "")
        token = parse_qs((await _body(request, 4096)).decode("utf-8", "replace")).get("token", [""])[0]
        if not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return HTMLResponse(self.pages.admin_login("That is not the admin token."), 401)
        response = RedirectResponse("/admin", 303)
        response.set_cookie(COOKIE, token, path="/admin", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def export(self, request: Request) -> Response:
        if not self._admin(request):
            raise Refused(401, "send the admin token as Authorization: Bearer TOKEN")
        attempts = await run_in_threadpool(self.submissions.attempts)
        header = [*marking.COLUMNS, "time"]
        text = marking.report_csv(self.made, header, [a.as_row() for a in attempts], [a.verdict for a in attempts])
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="attempts.csv"'})

    async def grades(self, request: Request) -> Response:
        if not self._admin(request):
            raise Refused(401, "send the admin token as Authorization: Bearer TOKEN")
        attempts = await run_in_threadpool(self.submissions.attempts)
        text = gradebook_csv(self.made, ((a.student, a.question, a.verdict) for a in attempts))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="grades.csv"'})


def _strict(value):
    """``value`` as strict JSON, which browsers parse: a counterexample's infinite or undefined
    number, which ``check --json`` writes as Infinity or NaN, becomes the text "Infinity" or "NaN"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def _json_route(handler):
    async def endpoint(request: Request) -> Response:
        return JSONResponse(_strict(await handler(request)))
    return endpoint


def _with_headers(app):
    """ASGI wrapper: every response gets :data:`HEADERS` (a content security policy that runs only
    this server's scripts, no framing, no sniffing); all but the shipped files are never cached
    (students' answers, the admin's counts)."""
    extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]

    async def wrapped(scope, receive, send):
        fresh = [] if scope.get("path", "").startswith("/static/") else [(b"cache-control", b"no-store")]

        async def sending(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra, *fresh]
            await send(message)
        await app(scope, receive, sending if scope["type"] == "http" else send)
    return wrapped


async def _refused(request: Request, refused: Refused) -> Response:
    return JSONResponse({"error": refused.message}, refused.status, refused.headers)


def application(server: Server) -> Starlette:
    async def page(request: Request) -> Response:  # async: served by the event loop, never queued for a thread
        return HTMLResponse(server.pages.student())

    async def figure(request: Request) -> Response:
        return Response(server.pages.figure, media_type="image/svg+xml")

    async def health(request: Request) -> Response:
        return Response("ok")

    routes = [
        Route("/", page),
        Route("/sheet.svg", figure),
        Route("/health", health),
        Route("/api/student", _json_route(server.student), methods=["POST"]),
        Route("/api/check", _json_route(server.check), methods=["POST"]),
        Route("/admin", server.admin),
        Route("/admin/login", server.admin_login, methods=["POST"]),
        Route("/admin/export.csv", server.export),
        Route("/admin/grades.csv", server.grades),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    return _with_headers(Starlette(routes=routes, exception_handlers={Refused: _refused}))
