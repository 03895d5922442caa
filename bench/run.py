"""Performance of symbackprop against the baselines a user has, as ratios measured in one run.

Run: python bench/run.py [--quick] [--threads N] [--baseline DIR] [--commands-only | --conv-only |
--course-only]   (--quick: no naive baseline above 100 parameters, no scalar finite differences for
784-30-10, shorter timings; PyTorch and JAX columns when they are installed)

NumPy's BLAS and PyTorch get the same number of threads, 1 by default: on a 2-core
machine shared with other work, two spinning thread pools per library thrash (a 4-8-4
batch took PyTorch 80 ms instead of 0.7 ms, 64-64-10 NumPy 120 ms instead of 5 ms).
``--threads 2`` compares on an idle machine.  On one thread a call is timed in CPU seconds of
this process (``time.process_time``): what the call costs, not what other jobs on a shared
machine took from it (at a load of 7 on 2 cores, wall-clock times of the same call varied 3x,
CPU times by a few percent); with more threads, in wall-clock seconds.

Every network is sigmoid throughout with half the sum of squared errors, the case the
hand-written baselines below are typed for.  Tables, one row per network shape:

1. derivation and code generation against the parameter count, with the naive baseline
   (``sympy.diff`` of the fully expanded loss for every parameter, stopped after 30 s);
2. arithmetic operations of the generated code (``sympy.count_ops`` of each assignment's
   right-hand side: + - * / ** exp ... each count one; a bare symbol counts zero): the
   gradient code (forward definitions, deltas, gradients) over the forward pass
   (definitions and loss);
3. one gradient per call on a single sample, and the gradient of a batch of 4096 samples,
   against a hand-written NumPy backprop, PyTorch autograd on the CPU and the GEMM floor (the
   matrix products any backpropagation computes, alone); the matrix form printed for PyTorch
   and JAX (``MatrixCompiled(d, backend=...)``) against PyTorch autograd and ``jax.grad``;
4. verification: finite differences of every parameter, and ``verify`` as a whole;
5. ``check`` throughput (answers graded per second), this version and ``--baseline``'s, each in a
   fresh interpreter;
6. commands in a fresh interpreter with their peak memory (``verify`` of MNIST-sized nets,
   ``derive 784-100-10``, a cold ``check`` with an empty and with a warm cache), next to the
   same commands of an earlier version (``--baseline DIR``) and ``import sympy, numpy``;
7. a convolutional network on 1x28x28 images (:data:`CONV_SPEC`): the gradient of a batch of 256
   against PyTorch's ``conv2d`` autograd (float64), and ``verify`` in a fresh interpreter;
8. a course (bench/course.py): an exercise set of 300 and of 1,000 students written, graded and
   served, next to ``--baseline``'s (``--course-only``: this table alone).

Networks above :data:`SCALAR_LIMIT` parameters get no per-weight scalar code: their
*codegen* is the matrix form alone and the scalar columns read "not run".
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import sympy as sp

import symbackprop as sb
from symbackprop import numerics

import course  # bench/course.py, next to this file

try:
    import torch
except ImportError:  # PyTorch is optional
    torch = None
try:
    import jax
except ImportError:  # JAX is optional
    jax = None

SHAPES = [(2, 3, 1), (4, 8, 4), (8, 16, 8), (4, 8, 8, 4), (16, 32, 16), (64, 64, 10), (4, 16, 16, 16, 16, 4),
          (784, 30, 10), (784, 100, 10), (784, 300, 100, 10)]
BATCH = 4096
NAIVE_TIMEOUT = 30.0
#: Above this many parameters the per-weight scalar code is not generated (its columns read
#: "not run"): nothing but the single-sample benchmark would use it, and for 784-100-10 it
#: took 20 s and 500 MB.
SCALAR_LIMIT = 30_000
#: Commands timed in a fresh interpreter, with their peak memory (the issue's bounds).
ANSWER = "g'(z_j) \\sum_k w_{jk} \\delta_k"
#: The recurrent rows: an Elman network, tanh hidden and identity output, unrolled over its steps.
_ELMAN = ["--activation", "tanh,identity", "--recurrent"]
COMMANDS = [("verify 784-30-10 --json", ["verify", "784-30-10", "--json"]),
            ("verify 784-100-10 --json", ["verify", "784-100-10", "--json"]),
            ("verify 784-300-100-10 --json", ["verify", "784-300-100-10", "--json"]),
            ("derive 784-100-10", ["derive", "784-100-10", "-o", "{scratch}"]),
            ("derive 2-3-1, the handout", ["derive", "--handout", "-o", "{scratch}"]),
            ("verify Elman 4-8-2, 5 steps", ["verify", "4-8-2", *_ELMAN, "--steps", "5", "--json"]),
            ("derive Elman 2-3-1, 3 steps", ["derive", "2-3-1", *_ELMAN, "--steps", "3", "-o", "{scratch}"]),
            ("check, empty cache", ["check", "--target", "delta_hidden", "--answer", ANSWER]),
            ("check, references cached by the run before", ["check", "--target", "delta_hidden", "--answer", ANSWER])]
COMMAND_TIMEOUT = 150.0
#: Each version's commands run this many times, the versions taking turns, and the fastest run counts:
#: on this shared machine the same command's CPU seconds moved by 40% between two runs minutes apart.
COMMAND_REPEATS = 3
#: Runs ``python -m symbackprop`` from the directory in argv[1], ahead of an editable install.
_FROM_DIRECTORY = course.FROM_DIRECTORY


def name(shape) -> str:
    return "-".join(map(str, shape))


def seconds(function, *arguments):
    start = time.perf_counter()
    result = function(*arguments)
    return time.perf_counter() - start, result


#: What a call is timed with: CPU seconds of this process on one thread (see the docstring).
clock = time.perf_counter


def per_call(functions: dict, budget: float) -> dict:
    """Seconds per call of each function: the best of five rounds, the functions taking
    turns within a round, so that a change of load on a shared machine hits all alike."""
    def run(function, calls: int) -> float:
        start = clock()
        for _ in range(calls):
            function()
        return clock() - start

    calls = {}
    for key, function in functions.items():
        calls[key] = 1
        while run(function, calls[key]) < budget / 10:
            calls[key] *= 4
    best = dict.fromkeys(functions, np.inf)
    for _ in range(5):
        for key, function in functions.items():
            best[key] = min(best[key], run(function, calls[key]) / calls[key])
    return best


# ---------------------------------------------------------------------------------------
# baselines, typed by hand on purpose: what a user writes without symbackprop

def naive(net) -> list:
    """Expand the loss down to the inputs, differentiate it by every parameter."""
    loss = net.expanded(net.loss_expression)
    return [sp.diff(loss, p) for p in net.parameters]


def _naive_child(shape, queue):
    queue.put(seconds(naive, sb.layered(shape, "sigmoid", "half_sse"))[0])


def naive_seconds(shape) -> float | None:
    """The naive baseline in a fresh interpreter (no SymPy cache from our own derivation,
    whose brute-force witness differentiates the same expanded loss), None after the timeout."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_naive_child, args=(shape, queue))
    child.start()
    child.join(NAIVE_TIMEOUT + 10)  # + the child's imports
    if child.is_alive():
        child.terminate()
        child.join()
        return None
    elapsed = queue.get()
    return elapsed if elapsed < NAIVE_TIMEOUT else None


def numpy_backprop(x, t, layers):
    """Hand-written NumPy backprop of a sigmoid network with half-SSE: (loss, gradients)."""
    activations = [x]
    for weight, bias in layers:
        activations.append(1 / (1 + np.exp(-(activations[-1] @ weight + bias))))
    a = activations[-1]
    loss = 0.5 * ((a - t) ** 2).sum(axis=1).mean()
    delta = (a - t) * a * (1 - a)
    gradients = []
    for n in reversed(range(len(layers))):
        gradients.append((activations[n].T @ delta / len(x), delta.mean(axis=0)))
        if n:
            delta = (delta @ layers[n][0].T) * activations[n] * (1 - activations[n])
    return loss, gradients[::-1]


def torch_backprop(x, t, parameters):
    """PyTorch autograd of the same network and loss: (loss, gradients)."""
    a = x
    for weight, bias in zip(parameters[::2], parameters[1::2]):
        a = torch.sigmoid(a @ weight + bias)
    loss = 0.5 * ((a - t) ** 2).sum(dim=1).mean()
    return loss, torch.autograd.grad(loss, parameters)


def jax_loss(parameters, x, t):
    """The same network and loss in JAX, for ``jax.value_and_grad``."""
    a = x
    for weight, bias in parameters:
        a = jax.nn.sigmoid(a @ weight + bias)
    return 0.5 * ((a - t) ** 2).sum(axis=1).mean()


def gemm_floor(x, layers):
    """The matrix products of one backpropagation and nothing else: each layer's forward product,
    its weight gradient and (above the first layer) the error it passes down, each in the layout
    OpenBLAS runs fastest here (one unit per row: 4096 x 784 @ 784 x 30 took 9.3 ms as written,
    6.4 ms transposed), on the forward products' own outputs in place of activations and deltas."""
    below = [x.T]
    for weight, _ in layers:
        below.append(weight.T @ below[-1])
    for n in reversed(range(len(layers))):
        below[n + 1] @ below[n].T
        if n:
            layers[n][0] @ below[n + 1]


def torch_conv_backprop(x, t, parameters):
    """PyTorch autograd of the conv benchmark network (conv2d, relu, max_pool2d, linear, softmax,
    cross-entropy, as :data:`CONV_SPEC`): (loss, gradients)."""
    kernel, kernel_bias, weight, bias = parameters
    a = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(x, kernel, kernel_bias)), 2)
    z = a.reshape(len(x), -1) @ weight + bias
    loss = -(t * torch.log_softmax(z, dim=1)).sum(dim=1).mean()
    return loss, torch.autograd.grad(loss, parameters)


# ---------------------------------------------------------------------------------------
# measurements

def operations(net, derivation) -> tuple[int, int]:
    """(operations of the forward pass with the loss, operations of the gradient code)."""
    count = lambda pairs: sum(sp.count_ops(rhs) for _, rhs in pairs)
    forward = count(net.definitions) + sp.count_ops(net.loss_expression)
    gradients = [(p, derivation.gradients[p]) for p in net.parameters]
    return forward, count(net.definitions) + count(derivation.backward_definitions()) + count(gradients)


def speed(net, derivation, compiled, matrix, budget: float) -> dict:
    """Seconds per gradient call on one sample and on a batch, ours and the baselines."""
    values = sb.random_values(net, samples=BATCH, seed=1)
    x, t = values.inputs, values.targets
    arrays = matrix.arrays(values.parameters)
    arguments = [*x[0], *t[0], *(values.parameters[p] for p in net.parameters)]
    one = x[:1], t[:1]
    single = {"matrix 1": lambda: matrix.gradients(*one, arrays),
              "numpy 1": lambda: numpy_backprop(*one, arrays)}
    if compiled is not None:
        single["scalar 1"] = lambda: compiled.sample_gradient(*arguments)
    batch = {"matrix B": lambda: matrix.gradients(x, t, arrays),
             "numpy B": lambda: numpy_backprop(x, t, arrays),
             "floor B": lambda: gemm_floor(x, arrays)}
    if len(net.parameters) < 2000:  # 784-30-10: 70,000 NumPy calls for one batch
        batch["scalar B"] = lambda: compiled.evaluate(values)
    if torch is not None:
        parameters = [torch.tensor(a, requires_grad=True) for pair in arrays for a in pair]
        tx, tt = torch.tensor(x), torch.tensor(t)
        single["torch 1"] = lambda: torch_backprop(tx[:1], tt[:1], parameters)
        batch["torch B"] = lambda: torch_backprop(tx, tt, parameters)
        on_torch = sb.MatrixCompiled(derivation, backend="torch")
        torch_arrays = on_torch.arrays(values.parameters)
        batch["ours on torch B"] = lambda: on_torch.gradients(tx, tt, torch_arrays)
    if jax is not None:
        on_jax = sb.MatrixCompiled(derivation, backend="jax")
        jax_arrays, jx, jt = on_jax.arrays(values.parameters), on_jax.backend.array(x), on_jax.backend.array(t)
        gradient = jax.jit(jax.value_and_grad(jax_loss))
        wait = lambda result: jax.block_until_ready(result)  # JAX returns before it has computed
        wait(on_jax.gradients(jx, jt, jax_arrays)), wait(gradient(jax_arrays, jx, jt))  # compile before timing
        batch["ours on jax B"] = lambda: wait(on_jax.gradients(jx, jt, jax_arrays))
        batch["jax B"] = lambda: wait(gradient(jax_arrays, jx, jt))
    times = per_call(single, budget)
    times.update(per_call(batch, budget))
    return times


#: Grades 400 answers of bench/grade.py to the generic targets of the shape in argv[3] with the
#: package in argv[1] (ahead of an editable install, as _FROM_DIRECTORY) and prints answers per
#: second: both versions in a fresh interpreter, so neither finds SymPy's cache warm from the table.
_THROUGHPUT = ("import sys, time; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
               "sys.path[:0] = sys.argv[1:3]; from grade import rows_of; import symbackprop as sb; "
               "from symbackprop import grading; rows = [r for r in rows_of(600) if '[' not in r['target']][:400]; "
               "spec = sb.compact(sys.argv[3], 'sigmoid', 'half_sse'); start = time.perf_counter(); "
               "grading.grade(spec, rows); print(len(rows) / (time.perf_counter() - start))")


def check_throughput(shape, baseline: str | None) -> dict:
    """Answers graded per second by ``grading.grade`` (worker processes on every core): 400
    mixed answers of bench/grade.py to the generic targets of this shape's spec, preparation of
    the references included, by this version and by ``baseline``.  Generic references use fixed
    2-3-2 and 3-4-4-3 test networks built from the spec's activations and loss, so the figure
    does not grow with the shape."""
    here = os.path.dirname(os.path.abspath(__file__))
    trees = {"ours": os.path.dirname(here), **({"baseline": os.path.abspath(baseline)} if baseline else {})}
    rates = {}
    for tree, root in trees.items():
        done = subprocess.run([sys.executable, "-c", _THROUGHPUT, root, here, name(shape)], capture_output=True,
                              text=True, env={**os.environ, "SYMBACKPROP_CACHE": "0"}, timeout=COMMAND_TIMEOUT)
        rates[tree] = float(done.stdout.split()[-1]) if done.returncode == 0 and done.stdout.split() else None
    return rates


def cold_start() -> float:
    """Seconds of ``python -m symbackprop derive`` (default network) in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "symbackprop", "derive", "-o", scratch], check=True,
                       capture_output=True)
        return time.perf_counter() - start


def run_command(arguments: list[str], environment: dict, timeout: float) -> tuple[float | None, float, float]:
    """(seconds or None after ``timeout``, peak resident MB, CPU seconds) of ``python ARGUMENTS`` in
    a fresh interpreter, measured by /usr/bin/time: a child forked from this process would report
    this process's size as its own peak.  The CPU seconds (user and system) are what compares on a
    machine shared with other work; the wall seconds grow with its load."""
    with tempfile.NamedTemporaryFile("r") as measured:
        start = time.perf_counter()
        try:
            subprocess.run(["/usr/bin/time", "-o", measured.name, "-f", "%M %U %S", sys.executable, *arguments],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment, timeout=timeout,
                           check=True)
        except subprocess.TimeoutExpired:
            return None, float("nan"), float("nan")
        peak, user, system = measured.read().split()[-3:]
        return time.perf_counter() - start, int(peak) / 1024, float(user) + float(system)


def _faster(measured: tuple, best: tuple) -> bool:
    """Whether ``measured`` took fewer CPU seconds than ``best`` (a run out of time never is)."""
    return measured[0] is not None and (best[0] is None or measured[2] < best[2])


def commands(baseline: str | None) -> list[dict]:
    """The fastest of :data:`COMMAND_REPEATS` runs of each command of :data:`COMMANDS` in a fresh
    interpreter, and the same with the code in ``baseline`` (an earlier version, e.g. ``git archive
    COMMIT | tar -x -C DIR``), and ``import sympy, numpy`` (what any check costs before it starts).  Bytecode caches are
    allowed, as on a user's machine: written for every module first, and SymPy's by an untimed run."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    trees = {"ours": ["-m", "symbackprop"]}
    packages = [os.path.dirname(sb.__file__)]
    if baseline:
        trees["baseline"] = ["-c", _FROM_DIRECTORY, os.path.abspath(baseline)]
        packages.append(os.path.join(os.path.abspath(baseline), "symbackprop"))
    # every module's bytecode, not only derive's: a check timed first compiled the grading modules
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True, env=environment)
    rows = {label: {"command": label} for label, _ in COMMANDS}
    with tempfile.TemporaryDirectory() as scratch:
        for tree, launch in trees.items():  # SymPy's bytecode too
            warm = {**environment, "XDG_CACHE_HOME": os.path.join(scratch, "warm-up")}
            run_command([*launch, "derive", "-o", scratch], warm, COMMAND_TIMEOUT)
        for repeat in range(COMMAND_REPEATS):
            for tree, launch in trees.items():
                cache = {**environment, "XDG_CACHE_HOME": os.path.join(scratch, f"{tree}-{repeat}")}
                for label, arguments in COMMANDS:
                    print(f"  {tree}, run {repeat + 1}: {label} ...", file=sys.stderr, flush=True)
                    line = [*launch, *(a.replace("{scratch}", scratch) for a in arguments)]
                    measured = run_command(line, cache, COMMAND_TIMEOUT)
                    if tree not in rows[label] or _faster(measured, rows[label][tree]):
                        rows[label][tree] = measured
        floor = run_command(["-c", "import sympy, numpy"], environment, COMMAND_TIMEOUT)
    for label in ("check, empty cache", "check, references cached by the run before"):
        rows[label]["import sympy, numpy"] = floor
    return list(rows.values())


#: The convolutional benchmark: 1x28x28 images, conv(8 channels, 5x5, relu), 2x2 max pooling,
#: dense(10, softmax), cross-entropy: 11,738 parameters, gradients of a batch of CONV_BATCH.
CONV_SPEC = """[network]
input_shape = [1, 28, 28]
loss = "cross_entropy"
[[network.layer]]
kind = "conv"
channels = 8
kernel = [5, 5]
activation = "relu"
[[network.layer]]
kind = "max_pool"
size = [2, 2]
[[network.layer]]
kind = "dense"
units = 10
activation = "softmax"
"""
CONV_BATCH = 256


def convolution(budget: float) -> dict:
    """The conv benchmark: one batch's gradients (the array form against PyTorch's conv2d autograd)
    and ``verify`` in a fresh interpreter (seconds, peak memory)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "conv.toml")
        with open(path, "w") as file:
            file.write(CONV_SPEC)
        spec = sb.load(path)
        row = {"verify": run_command(["-m", "symbackprop", "verify", path, "--json"], dict(os.environ),
                                     COMMAND_TIMEOUT)}
    from symbackprop.matrix import evaluator

    values = sb.random_values(spec.network, samples=CONV_BATCH, seed=1)
    arrays = evaluator(sb.derive(spec.network))
    weights = arrays.arrays(values.parameters)
    functions = {"ours": lambda: arrays.gradients(values.inputs, values.targets, weights)}
    if torch is not None:
        (kernel, kernel_bias), _, (weight, bias) = weights
        parameters = [torch.tensor(a, requires_grad=True) for a in (kernel, kernel_bias, weight, bias)]
        tx, tt = torch.tensor(values.inputs.reshape(-1, 1, 28, 28)), torch.tensor(values.targets)
        functions["torch"] = lambda: torch_conv_backprop(tx, tt, parameters)
    row.update(per_call(functions, budget))
    return row


def report_convolution(row: dict) -> None:
    ms = {"unit": "ms", "scale": 1e3}
    table(f"Convolutional network 1x28x28 conv(8, 5x5, relu) - max pool 2x2 - dense(10, softmax), "
          f"cross-entropy, 11,738 parameters (batch of {CONV_BATCH})",
          ["gradient, batch", "PyTorch conv2d autograd", "ours / PyTorch", "verify, fresh interpreter"],
          [[fmt(row["ours"], **ms), fmt(row.get("torch", "n/a"), **ms), ratio(row["ours"], row.get("torch")),
            f"{fmt(row['verify'][0])}, {row['verify'][1]:,.0f} MB" if row["verify"][0] is not None
            else f"> {COMMAND_TIMEOUT:.0f} s"]])


def measure(shape, quick: bool, naive_limit: float, baseline: str | None) -> dict:
    net = sb.layered(shape, "sigmoid", "half_sse")
    row = {"shape": name(shape), "parameters": len(net.parameters)}
    row["naive"] = naive_seconds(shape) if len(net.parameters) < naive_limit else "not run"
    row["derive"], derivation = seconds(sb.derive, net)
    scalar = len(net.parameters) <= SCALAR_LIMIT
    row["codegen"], (compiled, matrix) = seconds(lambda: (numerics.compiled(derivation) if scalar else None,
                                                          sb.MatrixCompiled(derivation)))
    values = sb.random_values(net, seed=0)
    row["verify"], report = seconds(sb.verify, net, derivation, values)
    assert report.ok, name(shape)
    row["forward ops"], row["gradient ops"] = operations(net, derivation)
    row["fd matrix"], _ = seconds(matrix.finite_differences, values)
    if scalar and not (quick and len(net.parameters) > 2000):
        compiled.forward(values)  # generate the scalar forward code before timing its differences
        row["fd scalar"], _ = seconds(compiled.finite_differences, values)
    row.update(speed(net, derivation, compiled, matrix, 0.1 if quick else 0.3))
    row["check"] = check_throughput(shape, baseline)
    return row


# ---------------------------------------------------------------------------------------
# tables (Markdown, to paste into the README)

def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


def fmt(value, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
    if value is None:
        return f"> {NAIVE_TIMEOUT:.0f} s"
    if isinstance(value, str):
        return value
    return f"{value * scale:,.{digits}f} {unit}".strip()


def ratio(a, b) -> str:
    return f"{a / b:.2f}" if isinstance(a, float) and isinstance(b, float) else ""


def report(rows: list[dict]) -> None:
    table("Derivation + code generation (verify: all three witnesses, brute force where it runs by default)",
          ["shape", "parameters", "derive", "codegen", "verify", "total", "derive + codegen per 1000 parameters", "naive diff",
           "naive / derive"],
          [[r["shape"], f"{r['parameters']:,}", fmt(r["derive"]), fmt(r["codegen"]), fmt(r["verify"]),
            fmt(r["derive"] + r["codegen"] + r["verify"]),
            fmt((r["derive"] + r["codegen"]) / r["parameters"] * 1000, digits=3), fmt(r["naive"]),
            ratio(r["naive"], r["derive"])] for r in rows])
    table("Operations (sympy.count_ops of every assignment)",
          ["shape", "forward pass + loss", "gradient code", "gradient / forward"],
          [[r["shape"], f"{r['forward ops']:,}", f"{r['gradient ops']:,}",
            f"{r['gradient ops'] / r['forward ops']:.2f}"] for r in rows])
    us = {"unit": "µs", "scale": 1e6, "digits": 1}
    table("One sample per call (scalar: generated code on floats; matrix: the matrix form, one row)",
          ["shape", "scalar", "matrix", "hand NumPy", "PyTorch", "best / NumPy", "best / PyTorch"],
          [[r["shape"], fmt(r.get("scalar 1", "not run"), **us), fmt(r["matrix 1"], **us), fmt(r["numpy 1"], **us),
            fmt(r.get("torch 1", "n/a"), **us), ratio(min(r.get("scalar 1", np.inf), r["matrix 1"]), r["numpy 1"]),
            ratio(min(r.get("scalar 1", np.inf), r["matrix 1"]), r.get("torch 1"))] for r in rows])
    ms = {"unit": "ms", "scale": 1e3, "digits": 2}
    table(f"Batch of {BATCH} samples per call (matrix form; scalar: the generated code on arrays; GEMM floor: "
          "the matrix products alone)",
          ["shape", "matrix", "scalar", "hand NumPy", "PyTorch", "GEMM floor", "matrix / floor",
           "matrix / faster baseline", "scalar / NumPy"],
          [[r["shape"], fmt(r["matrix B"], **ms), fmt(r.get("scalar B", "not run"), **ms), fmt(r["numpy B"], **ms),
            fmt(r.get("torch B", "n/a"), **ms), fmt(r["floor B"], **ms), ratio(r["matrix B"], r["floor B"]),
            ratio(r["matrix B"], min(r["numpy B"], r.get("torch B", np.inf))),
            ratio(r.get("scalar B"), r["numpy B"])] for r in rows])
    table(f"The matrix form printed for other array libraries, batch of {BATCH} (MatrixCompiled(d, backend=...))",
          ["shape", "NumPy", "on PyTorch", "PyTorch autograd", "on PyTorch / autograd", "on JAX (jit)",
           "jax.grad (jit)", "on JAX / jax.grad"],
          [[r["shape"], fmt(r["matrix B"], **ms), fmt(r.get("ours on torch B", "n/a"), **ms),
            fmt(r.get("torch B", "n/a"), **ms), ratio(r.get("ours on torch B"), r.get("torch B")),
            fmt(r.get("ours on jax B", "n/a"), **ms), fmt(r.get("jax B", "n/a"), **ms),
            ratio(r.get("ours on jax B"), r.get("jax B"))] for r in rows])
    table("Finite differences of every parameter (central, one sample)",
          ["shape", "parameters", "matrix form", "scalar code", "scalar / matrix"],
          [[r["shape"], f"{r['parameters']:,}", fmt(r["fd matrix"], digits=3), fmt(r.get("fd scalar", "not run"),
                                                                                  digits=3),
            ratio(r.get("fd scalar"), r["fd matrix"])] for r in rows])
    rate = lambda value: "n/a" if value is None else f"{value:.0f}"
    table("check throughput (answers graded per second, generic targets, references prepared in the run)",
          ["shape", "this version", "baseline version", "this / baseline"],
          [[r["shape"], rate(r["check"]["ours"]), rate(r["check"].get("baseline")),
            ratio(r["check"]["ours"], r["check"].get("baseline"))] for r in rows])


def report_commands(rows: list[dict]) -> None:
    cell = lambda measured: "" if measured is None else (
        f"{fmt(measured[0])} ({fmt(measured[2])} CPU), {measured[1]:,.0f} MB" if measured[0] is not None
        else f"> {COMMAND_TIMEOUT:.0f} s")
    table("Commands in a fresh interpreter (wall seconds (CPU seconds), peak resident memory; the ratio "
          "of CPU seconds)",
          ["command", "this version", "baseline version", "baseline / this", "import sympy, numpy"],
          [[r["command"], cell(r["ours"]), cell(r.get("baseline")),
            ratio((r.get("baseline") or (None,) * 3)[2], r["ours"][2]), cell(r.get("import sympy, numpy"))]
           for r in rows])


#: glibc returns freed memory above this size to the system and faults it in again on the next
#: allocation; whether a 4096 x 16 temporary pays that depended on the allocation history, not on
#: the code timed (8-16-8 measured 2.9x hand NumPy one way, 1.03x the other).  Both limits high,
#: every contender computes on memory already mapped.
_ALLOCATOR = {"MALLOC_TRIM_THRESHOLD_": str(2**30), "MALLOC_MMAP_THRESHOLD_": str(2**30)}


def pin_threads(threads: int) -> None:
    """Run again with ``threads`` BLAS threads (NumPy reads the setting when it loads) and
    the allocator settings above (glibc reads them at start)."""
    if os.environ.get("OPENBLAS_NUM_THREADS") != str(threads) or any(
            os.environ.get(k) != v for k, v in _ALLOCATOR.items()):
        variables = dict.fromkeys(["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"], str(threads))
        if threads == 1:  # XLA's own pool, as JAX reads it when it loads
            variables["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **variables, **_ALLOCATOR})
    if torch is not None:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slow baselines, shorter timings")
    parser.add_argument("--threads", type=int, default=1, help="threads for NumPy's BLAS and PyTorch (default 1)")
    parser.add_argument("--baseline", help="a directory with an earlier version of the package (git archive "
                                           "COMMIT | tar -x -C DIR) whose commands are timed next to these")
    parser.add_argument("--commands-only", action="store_true", help="only the table of commands")
    parser.add_argument("--conv-only", action="store_true", help="only the table of the convolutional network")
    parser.add_argument("--course-only", action="store_true", help="only the course rows (bench/course.py)")
    parser.add_argument("--students", default="300,1000", help="class sizes of the course rows (default 300,1000)")
    args = parser.parse_args()
    if args.course_only:
        run_course(args)
        return
    pin_threads(args.threads)
    global clock
    clock = time.process_time if args.threads == 1 else time.perf_counter
    load = os.getloadavg()[0]
    quick = args.quick
    if args.conv_only:
        report_convolution(convolution(0.2 if quick else 1.0))
        return
    rows, naive_limit = [], 100.0 if quick else np.inf
    for shape in [] if args.commands_only else SHAPES:
        print(f"measuring {name(shape)} ...", file=sys.stderr, flush=True)
        rows.append(measure(shape, quick, naive_limit, args.baseline))
        if rows[-1]["naive"] is None:  # out of time: larger networks will be too
            naive_limit = min(naive_limit, rows[-1]["parameters"])
    print(f"python -m symbackprop derive, cold start: {cold_start():.2f} s; PyTorch "
          f"{torch.__version__ + ' (CPU)' if torch is not None else 'not installed'}; JAX "
          f"{jax.__version__ + ' (CPU)' if jax is not None else 'not installed'}; "
          f"{args.threads} thread(s) for BLAS, PyTorch and JAX; {os.cpu_count()} cores; load average "
          f"{load:.1f} at the start of the tables, {os.getloadavg()[0]:.1f} at their end")
    print("measuring the commands ...", file=sys.stderr, flush=True)
    lines = commands(args.baseline)
    if args.commands_only:
        report_commands(lines)
        return
    print("measuring the convolutional network ...", file=sys.stderr, flush=True)
    conv = convolution(0.2 if quick else 1.0)
    if rows:
        report(rows)
    report_commands(lines)
    report_convolution(conv)
    run_course(args)


def run_course(args) -> None:
    """The course rows: writing, grading and serving 300 and 1,000 students' sets (bench/course.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    trees = {"this": os.path.dirname(here), **({"baseline": args.baseline} if args.baseline else {})}
    print("measuring the course ...", file=sys.stderr, flush=True)
    course.report(course.course(trees, [int(n) for n in args.students.split(",")]))


if __name__ == "__main__":
    main()
