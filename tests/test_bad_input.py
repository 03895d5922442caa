"""Bad input of every kind the red team tried: one line naming what is wrong, exit status 2,
no traceback, no file written or lost, and never more than a few seconds of work."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symbackprop.cli import main

LAYERED = "[network]\nlayers = [2, 1]\n"
GRAPH = "[network]\ninputs = ['x']\noutputs = ['y']\n[[network.units]]\nname = 'y'\n"

#: (what the spec file SPEC holds, or None; the arguments; the exit status; a fragment of the message)
CASES = [
    ("[network]\nlayers = [2, 1]\nactivation = {name = ['leaky_relu']}\n", ["example", "SPEC"], 2,
     "network.activation.name: ['leaky_relu'] is not one of"),
    ("[network]\nlayers = 5\n", ["example", "SPEC"], 2, "network.layers: 5 is not a list"),
    (LAYERED + "[example]\nseed = -1\n", ["example", "SPEC"], 2, "example.seed: must be a non-negative integer"),
    (None, ["example", "2-3-1", "--seed", "-1"], 2, "--seed: must be a non-negative integer, not -1"),
    (None, ["exercises", "--seed", "-1", "-o", "OUT"], 2, "--seed: must be a non-negative integer, not -1"),
    (None, ["exercises", "--students", "CSV", "-o", "CSV"], 2, "small.csv: is a file, not a folder"),
    (None, ["example", "--seed", "5"], 2, "--seed: applies to a compact form"),
    (LAYERED, ["verify", "SPEC", "--seed", "5"], 2, "--seed: applies to a compact form such as 2-3-1, not to the spec"),
    (LAYERED + "activation = {name = 'softplus', beta = 0}\n", ["example", "SPEC"], 2,
     "network.activation: it is undefined (softplus divides by zero"),
    (LAYERED + "activation = 'exp(3000*z)'\n", ["example", "SPEC"], 2,
     "example: the worked example is not finite (loss, "),
    (LAYERED + "activation = 'exp(exp(exp(exp(exp(z)))))'\n", ["example", "SPEC"], 2,
     "network.activation: 'exp(exp(exp(exp(exp(z)))))' is not an activation name (identity, sigmoid, tanh, relu, "
     "leaky_relu, softplus, elu, step, softmax) or an expression in z: expression nests exponentials 5 deep"),
    (LAYERED + "activation = '1e999*z'\n", ["example", "SPEC"], 2, "network.activation: it has the number 1.00E+999"),
    (LAYERED + "loss = '1e308*(a-t)^2'\n", ["example", "SPEC"], 2,
     "network.loss: its derivative has the number -2.00E+308, beyond float64"),
    (LAYERED + "activation = 'heaviside(z)*exp(z)'\n", ["example", "SPEC"], 2,
     "network.activation: its derivative has a Dirac delta"),
    (LAYERED + "loss = 'sign(a-t)*a'\n", ["example", "SPEC"], 2, "network.loss: its derivative has a Dirac delta"),
    ("[network]\ninputs = 5\noutputs = ['y']\n[[network.units]]\nname = 'y'\ninputs = ['x']\n", ["example", "SPEC"], 2,
     "network.inputs: must be a list of unit names"),
    (GRAPH + "inputs = 5\n", ["example", "SPEC"], 2, "unit 'y'.inputs: must be a list of unit names, not 5"),
    (GRAPH + "inputs = ['x']\nweights = 5\n", ["example", "SPEC"], 2, "unit 'y'.weights: must be a list of parameter"),
    (GRAPH + "inputs = ['x']\ngroup = ['g']\n", ["example", "SPEC"], 2, "unit 'y'.group: must be a group name"),
    (GRAPH + 'inputs = ["x"]\nweights = ["w[\\n# heading"]\n', ["example", "SPEC"], 2, "must be letters and digits"),
    ('[network]\ninputs = ["x"]\noutputs = ["y\\n"]\n[[network.units]]\nname = "y\\n"\ninputs = ["x"]\n',
     ["derive", "SPEC", "-o", "OUT"], 2, "unit name 'y\\n' must be letters and digits"),
    ("[network]\nlayers = [100000, 10]\n", ["example", "SPEC"], 2,
     "network: has 1,000,010 parameters, more than the limit of 300,000"),
    ("[network]\nlayers = [2, 99999999999999999, 1]\n", ["example", "SPEC"], 2,
     f"has {4 * 99999999999999999 + 1:,} parameters, more than the limit"),  # 2N + N weights, N + 1 biases
    ("[network]\nlayers = [" + "1, " * 300_000 + "1]\n", ["example", "SPEC"], 2,
     f"has {2 * 300_000:,} parameters"),  # 300,000 weights and as many biases
    ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", ["example", "SPEC"], 2, "nests arrays or tables too deeply"),
    (None, ["example", "1000-1000-1000"], 2, "network: has 2,002,000 parameters, more than the limit of 300,000; "),
    (None, ["example", "10-10", "--max-parameters", "100"], 2, "has 110 parameters, more than the limit of 100"),
    (None, ["example", "10-10", "--max-parameters", "0"], 2, "--max-parameters: must be at least 1"),
    (None, ["example", "/dev/zero"], 2, "/dev/zero: is larger than 1,000,000 bytes, the limit for a spec file"),
    (None, ["grade", "/dev/zero", "-o", "REP"], 2, "/dev/zero: is larger than 64 MB"),
    (None, ["grade", "CSV", "-o", "SMALL"], 2, "small.csv: is also an input of this run"),
    (None, ["grade", "CSV", "-o", "."], 2, "-o: '.' names no file"),
    (None, ["grade", "CSV", "-o", "REP", "--workers", "100000"], 2, "--workers: must be from 1 to 64, not 100000"),
    (None, ["grade", "CSV", "-o", "REP", "--workers", "0"], 2, "--workers: must be from 1 to 64, not 0"),
    (None, ["grade", "CSV", "-o", "REP", "--timeout", "nan"], 2, "--timeout: must be more than 0 and at most 600"),
    (None, ["grade", "CSV", "-o", "REP", "--timeout", "0"], 2, "--timeout: must be more than 0"),
    (None, ["grade", "CSV", "-o", ""], 2, "-o: '' names no file"),
    (None, ["grade", "CSV", "-o", "FOLDER_PAIR"], 2, "R.md: is a folder"),
    (None, ["derive", "-o", "CSV"], 2, "small.csv: is a file, not a folder"),
    (None, ["derive", "-o", "UNDER_A_FILE"], 2, "small.csv: is a file, not a folder"),
    (None, ["derive", "-o", "DANGLING"], 2, "dangling: is a symbolic link to"),
]


def _files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))
            if not p.is_symlink()}


@pytest.mark.parametrize("spec, args, status, message", CASES, ids=[" ".join(c[1])[:40] + f" {n}"
                                                                    for n, c in enumerate(CASES)])
def test_bad_input_is_one_line_exit_two_and_touches_nothing(tmp_path, capsys, spec, args, status, message):
    (tmp_path / "small.csv").write_text("id,target,answer\n1,delta_output,a_k - t_k\n")
    (tmp_path / "R.csv").write_text("the old report")
    (tmp_path / "R.md").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    if spec is not None:
        (tmp_path / "spec.toml").write_text(spec)
    names = {"SPEC": "spec.toml", "CSV": "small.csv", "SMALL": "small", "REP": "rep", "OUT": "out",
             "FOLDER_PAIR": "R", "UNDER_A_FILE": "small.csv/notes", "DANGLING": "dangling"}
    before = _files(tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        started = time.perf_counter()
        assert main([names.get(a, a) for a in args]) == status
        took = time.perf_counter() - started
    finally:
        os.chdir(cwd)
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1, error
    assert _files(tmp_path) == before
    assert took < 10, f"{took:.1f} s"  # the slowest, a 300,000-entry list of layers, takes about 1 s


def test_a_network_over_the_cap_is_refused_in_under_a_second():
    for args in (["example", "1000-1000-1000"], ["verify", "2-99999999999999999-1"], ["derive", "100000-10"]):
        started = time.perf_counter()
        assert main(args) == 2
        assert time.perf_counter() - started < 1


def test_bad_input_through_real_processes_has_no_traceback(tmp_path):
    (tmp_path / "layers.toml").write_text("[network]\nlayers = 5\n")
    (tmp_path / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    for args in (["example", "layers.toml"], ["verify", "deep.toml", "--loss", "mse"], ["derive", "/dev/zero"]):
        result = subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                                cwd=tmp_path, timeout=300)
        assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""


def _strict(text: str):
    """JSON as RFC 8259 has it: NaN and Infinity are not numbers there (JSON.parse rejects them)."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_json_of_numbers_that_overflow_is_strict_with_null_and_the_reason(tmp_path, capsys):
    (tmp_path / "exp.toml").write_text(LAYERED + "activation = 'exp(3000*z)'\n")
    assert main(["example", str(tmp_path / "exp.toml"), "--json"]) == 2
    out, error = capsys.readouterr()
    data = _strict(out)
    assert data["loss"] is None and "loss" in data["non_finite"] and data["z"] == [[pytest.approx(0.2783)]]
    assert error.startswith("error: example: the worked example is not finite")
    (tmp_path / "elu.toml").write_text("[network]\nlayers = [1, 1]\nactivation = 'elu'\n"
                                       "[example]\ninputs = [1000.0]\nweights = [[[1e200]]]\n")
    assert main(["verify", str(tmp_path / "elu.toml"), "--json"]) == 1
    data = _strict(capsys.readouterr().out)
    assert data["ok"] is False and data["max_rel_error"] is None and "max_rel_error" in data["non_finite"]


@pytest.mark.parametrize("spec", [
    LAYERED + "activation = '" + "sin(" * 12 + "z" + ")" * 12 + "'\n",
    LAYERED + "activation = 'identity'\nloss = '(a-t)^1000'\n",
])
def test_a_simplification_that_takes_too_long_falls_back_and_the_notes_say_so(tmp_path, capsys, spec):
    (tmp_path / "slow.toml").write_text(spec)
    started = time.perf_counter()
    assert main(["derive", str(tmp_path / "slow.toml"), "--format", "md", "-o", str(tmp_path / "out")]) == 0
    assert time.perf_counter() - started < 60  # minutes before the limit
    assert "SymPy's simplification ran out of time" in (tmp_path / "out" / "notes.md").read_text()


def test_the_python_api_takes_the_cap_as_a_keyword(tmp_path):
    import symbackprop as sb
    from symbackprop.errors import SpecError
    with pytest.raises(SpecError, match="has 110 parameters, more than the limit of 100"):  # 10*10 + 10
        sb.layered([10, 10], max_parameters=100)
    assert len(sb.layered([10, 10], max_parameters=110).parameters) == 110
    with pytest.raises(SpecError, match="2,002,000 parameters"):
        sb.compact("1000-1000-1000")
    (tmp_path / "wide.toml").write_text("[network]\nlayers = [600, 500]\n")
    with pytest.raises(SpecError, match="300,500 parameters"):
        sb.load(tmp_path / "wide.toml")
    units = [{"name": "y", "inputs": ["x1", "x2"]}]
    with pytest.raises(SpecError, match="has 3 parameters, more than the limit of 2"):  # two weights, a bias
        sb.graph(["x1", "x2"], units, ["y"], max_parameters=2)
