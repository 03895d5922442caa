"""Answers checked in forked worker processes, each killed when it runs past its time limit.

Forked, so the prepared targets are shared without pickling; one worker per core by default.
"""
from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import wait

from .. import cache
from ..notes import notation as notations
from ..errors import SpecError
from ..limits import MAX_WORKERS, SECONDS_PER_ANSWER
from ..network import Network
from ..notes.notation import Notation
from . import judging
from .judging import Verdict
from .reading import MAX_LENGTH
from .targets import Prepared, prepare



PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def die_with(parent: int, inherited: list) -> None:
    """A forked worker ends with its parent, however the parent ends (even SIGKILL): Linux sends it
    SIGKILL then (prctl PR_SET_PDEATHSIG); and it holds no other process's pipe ends, so a read
    from its own pipe ends too once the parent is gone.  Ctrl-C, which a terminal sends to the whole
    process group, is the parent's to handle: it closes the pool (a traceback per worker otherwise).
    The worker was forked with SIGINT blocked (:func:`_fork`), so one sent before it ignores them waits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    for connection in inherited:
        connection.close()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl: the closed pipe ends still end the worker
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _serve(connection, prepared: dict, parent: int, inherited: list) -> None:
    """Worker loop: (row, target, text) in, (row, verdict dict) out; None (or the parent's end) ends it."""
    die_with(parent, inherited)
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        row, target, text = task
        try:
            verdict = judging.check_prepared(prepared[target], text)
        except RecursionError:
            verdict = Verdict("cannot read", "the answer is nested too deeply")
        except Exception as error:  # noqa: BLE001 - a bug must cost one row, not the batch
            verdict = Verdict("cannot read", f"the checker failed on this answer ({type(error).__name__}); "
                                             "please report it")
        connection.send((row, verdict.as_dict()))


def _fork(process) -> None:
    """Start ``process`` with SIGINT blocked in the forking thread, which the child inherits: a Ctrl-C
    that lands between the fork and the worker's own SIG_IGN gave a traceback from the worker (the
    server listens before its workers are forked)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@functools.cache
def _forker() -> ThreadPoolExecutor:
    """The one thread every worker is forked from.  Linux sends PR_SET_PDEATHSIG when the *thread*
    that forked a process ends, and a server's request threads end after some idle seconds: a
    worker replaced from one of them was killed ten seconds later, in the middle of a later answer."""
    return ThreadPoolExecutor(1, thread_name_prefix="symbackprop-forker")


class Pool:
    """Worker processes (forked, so the prepared targets are shared) with a time limit per
    answer: a worker past its limit is killed and replaced, and its row is marked."""

    def __init__(self, prepared: dict, workers: int, seconds: float):
        if not 1 <= workers <= MAX_WORKERS:
            raise SpecError("--workers", f"must be from 1 to {MAX_WORKERS} (each worker is a process of "
                                         f"80-200 MB), not {workers}")
        self.prepared, self.seconds = prepared, seconds
        self.context = multiprocessing.get_context("fork")
        self.workers = []
        for _ in range(workers):
            self.workers.append(self._start())

    def _start(self):
        mine, theirs = self.context.Pipe()
        inherited = [mine, *(worker["connection"] for worker in self.workers)]
        process = self.context.Process(target=_serve, args=(theirs, self.prepared, os.getpid(), inherited),
                                       daemon=True)
        _forker().submit(_fork, process).result()
        theirs.close()
        return {"process": process, "connection": mine, "task": None, "since": 0.0}

    def run(self, tasks: Iterable, on_result: Callable) -> None:
        pending = iter(tasks)
        exhausted = False
        while True:
            for n, worker in enumerate(self.workers):
                if worker["task"] is None and not exhausted:
                    task = next(pending, None)
                    if task is None:
                        exhausted = True
                        break
                    try:
                        worker["connection"].send(task)
                    except OSError:  # the worker died while idle (the OOM killer, a kill): a new one takes it
                        self._replace(n)
                        worker = self.workers[n]
                        worker["connection"].send(task)
                    worker["task"], worker["since"] = task, time.monotonic()
            busy = [x for x in self.workers if x["task"] is not None]
            if not busy:
                return
            # wake at the nearest deadline, so that no answer outlives its time limit by a poll
            nearest = min(x["since"] for x in busy) + self.seconds - time.monotonic()
            ready = wait([x["connection"] for x in busy], timeout=min(max(nearest, 0), 0.05))
            now = time.monotonic()
            for n, worker in enumerate(self.workers):
                if worker["task"] is None:
                    continue
                if worker["connection"] in ready:
                    try:
                        row, result = worker["connection"].recv()
                    except (EOFError, OSError):
                        on_result(worker["task"][0], Verdict("cannot read", "the checker crashed on this answer")
                                  .as_dict())
                        self._replace(n)
                        continue
                    worker["task"] = None
                    on_result(row, result)
                elif now - worker["since"] > self.seconds:
                    on_result(worker["task"][0], Verdict(
                        "cannot read", f"the answer took longer than {self.seconds:g} s to check; "
                                       "write it more simply").as_dict())
                    self._replace(n)

    def _replace(self, n: int) -> None:
        old = self.workers[n]
        old["process"].kill()
        old["process"].join()
        old["connection"].close()
        self.workers[n] = self._start()

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker["connection"].send(None)
            except OSError:
                pass
        for worker in self.workers:
            worker["process"].join(timeout=1)
            if worker["process"].is_alive():
                worker["process"].kill()
                worker["process"].join()


def check(spec, target: str, answer: str, notation: str | Notation = "default",
          seconds: float = SECONDS_PER_ANSWER, reveal: bool = False) -> Verdict:
    """Grade one answer; ``spec`` is a :class:`Spec` or a :class:`Network`.  The answer is
    checked in a child process stopped after ``seconds``."""
    network, values, rate = _unpack(spec)
    notation = notation if isinstance(notation, Notation) else notations.load(notation)  # keyed by its content
    prepared = {target: cache.remembered(prepare, network, target, notation, values, rate, 0, reveal, kind=Prepared)}
    results = {}
    pool = Pool(prepared, 1, seconds)
    try:
        pool.run([(0, target, answer)], lambda row, result: results.__setitem__(row, result))
    finally:
        pool.close()
    return Verdict(**results[0])


def _unpack(spec):
    if isinstance(spec, Network):
        return spec, None, 0.5
    return spec.network, spec.values, spec.learning_rate


def grade(spec, rows: Sequence[dict], notation: str | Notation = "default", workers: int | None = None,
          seconds: float = SECONDS_PER_ANSWER, progress: Callable | None = None, reveal: bool = False,
          sheet: bool = False) -> list[Verdict]:
    """A verdict for every row (``target`` and ``answer`` keys); a bad row is marked, never
    stops the batch.  Each target's reference is prepared once (or read from the disk cache, as
    ``check`` does), answers are checked in ``workers`` processes (default: every core);
    ``reveal`` lets messages show the worked example's values; ``sheet`` says they are a student's
    sheet's."""
    network, values, rate = _unpack(spec)
    notation = notation if isinstance(notation, Notation) else notations.load(notation)
    targets = [(row.get("target") or "").strip() for row in rows]
    prepared = {}
    for target in dict.fromkeys(t for t, row in zip(targets, rows) if _refused(row) is None):
        try:
            prepared[target] = cache.remembered(prepare, network, target, notation, values, rate, 0, reveal, sheet,
                                                kind=Prepared)
        except SpecError as error:
            prepared[target] = error
    return grade_prepared(prepared, rows, targets, workers, seconds, progress)


def _refused(row: dict) -> str | None:
    """Why a row is not sent to a worker, if it is not."""
    answer = row.get("answer")
    if row.get("refused"):  # read_submissions left a row's huge cell out
        return row["refused"]
    if answer is None:
        return "the row has no answer column"
    if len(answer) > MAX_LENGTH:  # refused here: a 50 MB cell is not sent to a worker
        return f"answer longer than {MAX_LENGTH} characters ({len(answer):,} characters)"
    return None


def grade_prepared(prepared: Mapping[str, Prepared | SpecError], rows: Sequence[dict], keys: Sequence[str],
                   workers: int | None = None, seconds: float = SECONDS_PER_ANSWER,
                   progress: Callable | None = None) -> list[Verdict]:
    """A verdict for every row, its answer checked against ``prepared[keys[n]]`` (a SpecError
    there: why its target cannot be graded) in one pool of ``workers`` processes."""
    verdicts: list[Verdict | None] = [None] * len(rows)
    tasks = []
    for n, (row, key) in enumerate(zip(rows, keys)):
        refused = _refused(row)
        if refused is not None:
            verdicts[n] = Verdict("cannot read", refused)
        elif isinstance(prepared[key], SpecError):  # a row's target comes from its column, not --target
            error = prepared[key]
            verdicts[n] = Verdict("cannot read", f"the target column: {error.message}" if error.field == "--target"
                                  else str(error))
        else:
            tasks.append((n, key, row["answer"]))
    usable = {k: v for k, v in prepared.items() if not isinstance(v, SpecError)}
    done = [0]

    def record(row, result):
        verdicts[row] = Verdict(**result)
        done[0] += 1
        if progress is not None:
            progress(done[0], len(tasks))

    if tasks:
        pool = Pool(usable, workers or os.cpu_count() or 1, seconds)
        try:
            pool.run(tasks, record)
        finally:
            pool.close()
    return verdicts
