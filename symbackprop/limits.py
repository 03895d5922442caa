"""Every bound on the work a user's input can cause, in one place.

A spec, a CSV or an expression comes from someone else's hands; each cap here is checked
before the work it guards (sizes) or stops the work and falls back (time), so a bad input
costs seconds, not minutes or all memory.  The README's "Safety and limits" lists them.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time

#: Weights and biases a network may have unless the caller raises the cap (``--max-parameters``,
#: ``max_parameters=``): 784-300-100-10 has 266,610 and takes 35 s and 717 MB to verify.
MAX_PARAMETERS = 300_000
#: Computing units (layers of one unit each cost as much as wide ones: 0.8 s for 200).
MAX_UNITS = 5_000
#: ... of a convolutional network, whose units are one per output position of a few wide layers
#: (the 1x28x28 conv(8, 5x5)-pool(2x2)-dense(10) network has 5,770).
MAX_CONV_UNITS = 20_000
#: ... and connections (one per input a unit reads): a conv unit reads channels x kernel inputs, so
#: 64 channels of 3x3 on 64x8x8 are 8,202 units but 4.7 million connections (over 2 minutes and
#: gigabytes, where 1x28x28 conv(24, 5x5)'s 394,000 took 29 s and 2 GB): as many as a dense
#: network's weights may be.
MAX_CONV_CONNECTIONS = MAX_PARAMETERS
MAX_SPEC_BYTES = 1_000_000
#: Checking processes of ``grade`` and ``serve``: each is a forked interpreter of 80-200 MB, and
#: ``--workers 100000`` ran the machine out of memory.
MAX_WORKERS = 64
#: ``serve --processes``: server processes on one port (each with its own checking workers)
MAX_PROCESSES = 64
#: Seconds one answer may take to check (``--timeout``; its worker is killed past them) ...
SECONDS_PER_ANSWER = 5.0
#: ... and the longest ``--timeout``: a longer one lets one hostile answer hold a worker for good.
MAX_SECONDS_PER_ANSWER = 600
#: CPU seconds SymPy may spend building one expression of a spec ...
EXPRESSION_SECONDS = 5.0
#: ... simplifying one formula of a derivation before the formula as derived is kept ...
SIMPLIFY_SECONDS = 5.0
#: ... evaluating the brute-force witness in 30 digits (0.5 s for 4-5-2; a tower such as
#: exp(exp(exp(z))) through two layers needs numbers of millions of digits) ...
BRUTE_FORCE_SECONDS = 10.0
#: ... and proving a small network's gradients exact (the random-point agreement then stands).
PROOF_SECONDS = 10.0
#: CPU seconds a user's templates (``--templates``) may take to render one document: the
#: built-in ones take 3 s for 784-12-10's Markdown notes.
TEMPLATE_SECONDS = 30.0
#: Characters one rendered document may have (784-12-10's Markdown notes have 1.6 million).
MAX_DOCUMENT_CHARACTERS = 50_000_000
#: Memory a user's templates may take beyond what the process holds (``"x" * 10**10`` asked for 10 GB).
TEMPLATE_MEMORY_BYTES = 2 * 1024 ** 3
#: Bits of an integer a template may compute (``10**10**10`` would take minutes in one step).
MAX_TEMPLATE_INTEGER_BITS = 100_000
#: How often the watcher of :func:`time_limit` looks at the clock ...
_POLL_SECONDS = 0.02
#: ... and the CPU seconds after which it raises an expiry again that the block has not ended on.
_REFIRE_SECONDS = 0.25


class _Expired(BaseException):
    """Raised into a thread whose time is up: a BaseException, so that none of SymPy's own
    ``except Exception`` clauses swallows it; :func:`time_limit` turns it into TimeoutError."""


def _cpu_clock(thread_id: int):
    """The CPU-time clock of one thread, where the platform has one (Linux, macOS): other threads'
    work (a test runner's, a server's) must not use up this block's time.  Elsewhere the process's."""
    try:
        clock = time.pthread_getcpuclockid(thread_id)
    except (AttributeError, OSError):
        return time.process_time
    return lambda: time.clock_gettime(clock)


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise TimeoutError inside the block once it has used ``seconds`` of CPU time.

    CPU time of the calling thread, not wall time, so that whether a formula gets simplified does
    not depend on how busy the machine is (the notes stay the same on a loaded one).  A watcher
    thread raises the exception asynchronously in the calling thread, so this works in the main
    thread, in other threads and in worker processes alike (a SIGALRM timer works only in a main
    thread, and not on Windows).  Like a signal, it lands between two Python bytecodes: SymPy's
    simplification is Python throughout.  It can land in code that swallows every exception (a
    garbage-collector callback prints "Exception ignored in" and goes on), so the watcher raises
    it again every ``_REFIRE_SECONDS`` of CPU time until the block has ended.
    """
    thread_id = threading.get_ident()
    target, clock = ctypes.c_ulong(thread_id), _cpu_clock(thread_id)
    lock, stop = threading.Lock(), threading.Event()
    state = {"done": False, "fired": False}
    deadline = clock() + seconds

    def watch():
        nonlocal deadline
        while not stop.wait(_POLL_SECONDS):
            with lock:  # the thread is inside the block while it is not done, so its clock is valid
                if state["done"]:
                    return
                if clock() >= deadline:
                    state["fired"] = True
                    deadline = clock() + _REFIRE_SECONDS
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(_Expired))

    threading.Thread(target=watch, daemon=True, name="symbackprop time limit").start()
    try:
        try:
            yield
        finally:
            state["done"] = True  # first: from here on the watcher raises nothing new
            stop.set()
            with lock:  # a firing under way has ended; withdraw it, if it has not landed yet
                if state["fired"]:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)
    except _Expired:
        raise TimeoutError(f"took more than {seconds:g} s of CPU time") from None
    if state["fired"]:  # it landed in a time_limit nested inside, which took it for its own and was handled
        raise TimeoutError(f"took more than {seconds:g} s of CPU time")


@contextlib.contextmanager
def memory_limit(extra_bytes: int):
    """Raise MemoryError in the block once the process maps ``extra_bytes`` more than it did.

    A soft address-space limit (Linux), restored on leaving: one allocation of a hostile
    template (a string of 10 GB) fails at once instead of exhausting the machine.  Where the
    platform has no such limit (Windows, macOS), the block runs unbounded.
    """
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        yield
        return
    bound = mapped + extra_bytes if soft == resource.RLIM_INFINITY else min(soft, mapped + extra_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (bound, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
