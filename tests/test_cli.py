"""The command line as a user runs it: output, JSON shapes, and every kind of bad input."""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import symbackprop as sb
from symbackprop.cli import main


def run(*args, cwd=None):
    """The CLI in a fresh interpreter, as a user runs it (catches tracebacks and exit codes)."""
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False)


MAZUR = """
[network]
layers = [2, 2, 2]
activation = ["sigmoid", "sigmoid"]
loss = "half_sse"
bias = true

[example]
inputs = [0.05, 0.10]
targets = [0.01, 0.99]
learning_rate = 0.5
weights = [[[0.15, 0.25], [0.20, 0.30]], [[0.40, 0.50], [0.45, 0.55]]]
biases = [[0.35, 0.35], [0.60, 0.60]]
"""


def test_example_json_reproduces_the_published_mazur_numbers(tmp_path):
    """Matt Mazur's worked example (the spec in the issue): E_total = 0.298371109,
    w5+ = 0.35891648, w1+ = 0.149780716 (his w1 is input 1 -> hidden 1, w5 hidden 1 -> output 1)."""
    spec = tmp_path / "mazur.toml"
    spec.write_text(MAZUR)
    result = run("example", str(spec), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["loss"] == pytest.approx(0.298371109, abs=1e-9)
    assert data["updated"]["weights"][1][0][0] == pytest.approx(0.35891648, abs=1e-8)
    assert data["updated"]["weights"][0][0][0] == pytest.approx(0.149780716, abs=1e-9)
    assert data["a"][0] == [0.05, 0.10] and len(data["a"]) == 3
    assert data["a"][1][0] == pytest.approx(0.593269992, abs=1e-9)
    assert len(data["grad"]["biases"]) == 2


def test_verify_json_lists_every_parameter_and_exits_zero():
    result = run("verify", "3-4-2", "--activation", "tanh,softmax", "--loss", "cross_entropy", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True and len(data["parameters"]) == 3 * 4 + 4 * 2 + 4 + 2
    assert {"name", "analytic", "numeric", "rel_error"} <= set(data["parameters"][0])


def test_verify_table_and_default_network(capsys):
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "verdict: all witnesses agree" in out and "w[1][2][0]" in out


def test_verify_exits_one_when_a_witness_disagrees(monkeypatch, capsys):
    real = sb.derive

    def broken(network):  # a derivation with one wrong gradient: drop a factor
        derivation = real(network)
        p = network.parameters[0]
        derivation.gradients[p] = 2 * derivation.gradients[p]
        return derivation

    monkeypatch.setattr(sb.verification, "derive", broken)
    assert main(["verify", "2-2-1"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_derive_writes_notes_and_prints_the_path(tmp_path):
    result = run("derive", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    notes = tmp_path / "out" / "notes.md"
    assert result.stdout.split() == [str(notes), str(notes.with_suffix(".tex")), str(notes.with_suffix(".svg")),
                                     str(notes.with_name("notes-backward.svg"))]
    text = notes.read_text()
    assert r"\delta_{j}" in text and "all witnesses agree" in text


def test_derive_in_a_notation_leaving_parts_out(tmp_path):
    out = tmp_path / "out"
    result = run("derive", "--notation", "haykin", "--no-matrix", "--no-example", "--format", "tex", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.tex"]
    text = (out / "notes.tex").read_text()
    assert r"\varphi'(v_{j})" in text and "Matrix form" not in text and "Worked example" not in text
    assert "\\appendix" in text and "section{Verification}" in text


def test_derive_handout_leaves_the_appendix_out(tmp_path):
    result = run("derive", "--handout", "--format", "md", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "notes.md").read_text()
    assert "## A worked example" in text and "Appendix" not in text


def test_templates_run_in_a_sandbox(tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "notes.j2").write_text("{{ cycler.__init__.__globals__.os.popen('id').read() }}")
    result = run("derive", "--templates", str(evil), "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--templates" in result.stderr and "cannot reach Python" in result.stderr
    assert not (tmp_path / "out").exists()


def test_without_spec_the_default_network_takes_the_notations_error_function(tmp_path):
    own = tmp_path / "no-half.toml"
    own.write_text('base = "default"\n[conventions]\nloss = "sse"\n')
    for notation, error in ((str(own), "E = \\sum_{k} (a_{k} - t_{k})^{2}"),
                            ("default", "E = \\sum_{k} \\frac{(a_{k} - t_{k})^{2}}{2}")):
        out = tmp_path / Path(notation).stem
        assert main(["derive", "--notation", notation, "--format", "md", "-o", str(out)]) == 0
        assert f"$${error} \\tag{{3}}$$" in (out / "notes.md").read_text()


def test_user_templates_override_the_built_in_ones(tmp_path):
    own = tmp_path / "templates"
    own.mkdir()
    (own / "notes.j2").write_text("{{ f.m(notes.loss.equation) }}\n")
    assert main(["derive", "--templates", str(own), "--format", "md", "--no-figure", "-o", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "notes.md").read_text() == "$E = \\frac{({a^{(2)}_{1}} - t_{1})^{2}}{2}$\n"


@pytest.mark.parametrize("args, field", [
    (["--notation", "hayking"], "notation"),
    (["--templates", "missing-folder"], "--templates"),
    (["--templates", "BROKEN"], "--templates"),
    (["--notation", "BADNOTATION"], "notation.symbols.pre_activaton"),
])
def test_bad_notation_or_templates_exit_two_and_write_nothing(tmp_path, capsys, args, field):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "notes.j2").write_text("{% if %}")
    bad_notation = tmp_path / "mine.toml"
    bad_notation.write_text('base = "haykin"\n[symbols]\npre_activaton = "u"\n')
    args = [{"BROKEN": str(broken), "BADNOTATION": str(bad_notation)}.get(a, a) for a in args]
    out = tmp_path / "out"
    assert main(["derive", *args, "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and field in error, error
    assert not out.exists()


def test_graph_spec_file_with_tied_weights(tmp_path):
    readme = (__import__("pathlib").Path(__file__).parent.parent / "README.md").read_text()
    elman = readme.split("An Elman network unrolled over two steps:\n\n```toml\n")[1].split("```")[0]
    spec = tmp_path / "elman.toml"
    spec.write_text(elman)
    result = run("verify", str(spec), "--json")
    assert result.returncode == 0, result.stderr
    names = [p["name"] for p in json.loads(result.stdout)["parameters"]]
    assert names.count("u") == 1 and names.count("v") == 1 and names.count("c") == 1  # the bias tied too


BAD_SPECS = [
    ("[network]\nlayers = [2, 1]\nactivaton = 'sigmoid'\n", "network.activaton", "did you mean 'activation'"),
    ("[network]\nlayers = [2, 0]\n", "network.layers", "positive integers"),
    ("[network]\nlayers = [2]\n", "network.layers", "at least two"),
    ("[network]\nlayers = [2, 3, 1]\nactivation = ['sigmoid']\n", "network.activation", "one per non-input layer"),
    ("[network]\nlayers = [2, 1]\nactivation = 'sigmoidd'\n", "network.activation", "unknown name 'sigmoidd'"),
    ("[network]\nlayers = [2, 1]\nloss = 'hinge'\n", "network.loss", "a loss name"),
    ("[network]\nlayers = [2, 1]\nactivation = '2*x'\n", "network.activation", "unknown name 'x'"),
    ("[network]\nlayers = [2, 1]\nactivation = '3'\n", "network.activation", "not a function of z"),
    ("[network]\nlayers = [2, 1]\nloss = 't^2'\n", "network.loss", "not a function of the output a"),
    ("[network]\nlayers = [2, 1]\nactivation = '__import__(\"os\")'\n", "network.activation", "is not an activation"),
    ("[network]\nlayers = [2, 1]\n[example]\ninputs = [0.1]\n", "example.inputs", "2 entries"),
    ("[network]\nlayers = [2, 1]\n[example]\ninputs = [0.1, nan]\n", "example.inputs[1]", "finite"),
    ("[network]\nlayers = [2, 1]\n[example]\ntargets = [inf]\n", "example.targets[0]", "finite"),
    ("[network]\nlayers = [2, 1]\n[example]\nlearning_rate = 'fast'\n", "example.learning_rate", "must be a number"),
    ("[network]\nlayers = [2, 1]\n[example]\nweights = [[[0.1], [0.2], [0.3]]]\n", "example.weights[0]", "2 entries"),
    ("[network]\nlayers = [2, 1]\nbias = false\n[example]\nbiases = [[0.1]]\n", "example.biases", "bias = false"),
    ("[network]\nlayers = [2, 2]\nactivation = 'softmax'\nloss = 'cross_entropy'\n[example]\ntargets = [0.5, 0.9]\n",
     "example.targets", "sum to 1"),
    ("[network]\nlayers = [2, 1]\nactivation = {name = 'leaky_relu', slop = 0.1}\n", "network.activation.slop", "slope"),
    ("[network]\ninputs = ['x']\noutputs = ['y']\n[[network.units]]\nname = 'y'\ninputs = ['h']\n",
     "unit 'y'.inputs", "not a unit defined before it"),
    (("[network]\ninputs = ['x']\noutputs = ['y']\n[[network.units]]\nname = 'h'\ninputs = ['x']\ngroup = 'g'\n"
      "[[network.units]]\nname = 'y'\ninputs = ['h']\ngroup = 'g'\n"), "group 'g'", "mixes output and hidden"),
    ("[network]\ninputs = ['x']\noutputs = ['y}']\n[[network.units]]\nname = 'y}'\ninputs = ['x']\n",
     "network.units", "letters and digits"),
    # 83 characters that keep SymPy's automatic evaluation busy for minutes (found by fuzzing the parser)
    (("[network]\nlayers = [1, 1]\nactivation = 'abs((heaviside(log(pi (cos((sinh((7(pi))^10))^3)+7) "
      "(tan(max(1e-3,sqrt(z)))))))**z)'\n"), "network.activation", "more than 5 s"),
    ("[network]\nlayers = [2, 1\n", "", "not valid TOML"),
    ("[netwrk]\nlayers = [2, 1]\n", "netwrk", "did you mean 'network'"),
]


@pytest.mark.parametrize("text, field, message", BAD_SPECS)
def test_bad_spec_names_the_field_and_exits_two(tmp_path, capsys, text, field, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    out = tmp_path / "out"
    assert main(["derive", str(spec), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and field in error and message in error, error
    assert "Traceback" not in error and not out.exists()


def test_bad_input_through_a_real_process_has_no_traceback(tmp_path):
    for args in (["verify", "2-x-1"], ["example", str(tmp_path / "missing.toml")],
                 ["verify", "2-1", "--activation", "relu,relu"]):
        result = run(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.startswith("error: ")


def test_readme_python_example_runs(tmp_path):
    readme = (__import__("pathlib").Path(__file__).parent.parent / "README.md").read_text()
    code = readme.split("## Python\n\n```python\n")[1].split("```")[0]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert r"\begin{document}" in result.stdout


def test_output_piped_into_head_stops_quietly():
    # 2,128 parameters make ~250 KB of JSON, more than a pipe holds, so the write meets the closed pipe
    pipeline = subprocess.run(f"{sys.executable} -m symbackprop verify 16-64-16 --json | head -c 8", shell=True,
                              capture_output=True, text=True, timeout=300, check=False)
    assert pipeline.stdout == '{"ok": t' and "Traceback" not in pipeline.stderr


# ---------------------------------------------------------------------------------------
# argument orders, defaults and help, as users write them

SUBMISSIONS = "id,target,answer\n1,delta_hidden,g'(z_j) sum_k w_jk delta_k\n"


@pytest.mark.parametrize("order", [
    ["SPEC", "--activation", "sigmoid,identity", "--loss", "half_sse", "CSV", "-o", "REP"],  # the issue's order
    ["CSV", "SPEC", "--activation", "sigmoid,identity", "--loss", "half_sse", "-o", "REP"],
    ["-o", "REP", "--loss", "half_sse", "CSV", "--activation", "sigmoid,identity", "SPEC"],
    ["--activation", "sigmoid,identity", "SPEC", "-o", "REP", "--loss", "half_sse", "CSV"],
])
def test_grade_takes_the_spec_its_options_and_the_csv_in_any_order(tmp_path, capsys, order):
    (tmp_path / "subs.csv").write_text(SUBMISSIONS)
    names = {"SPEC": "2-3-1", "CSV": str(tmp_path / "subs.csv"), "REP": str(tmp_path / "rep")}
    assert main(["grade", *(names.get(a, a) for a in order)]) == 0
    assert capsys.readouterr().out.endswith("1 answer: 1 correct, 0 incorrect, 0 cannot read\n")
    assert (tmp_path / "rep.csv").exists() and (tmp_path / "rep.md").exists()


def test_the_issues_grade_command_in_a_real_process(tmp_path):
    (tmp_path / "subs.csv").write_text(SUBMISSIONS)
    result = run("grade", "2-3-1", "--activation", "sigmoid,identity", "--loss", "half_sse", "subs.csv", "-o", "rep",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["rep.csv", "rep.md", "1 answer: 1 correct, 0 incorrect, 0 cannot read"]


@pytest.mark.parametrize("command", [["verify"], ["example"], ["derive", "--format", "md"],
                                     ["check", "--target", "delta_output", "--answer", "a_k - t_k"]])
def test_options_before_or_after_the_spec_mean_the_same(tmp_path, capsys, command):
    outputs = []
    for n, args in enumerate((["2-2-1", "--activation", "tanh,identity", "--seed", "3"],
                              ["--activation", "tanh,identity", "2-2-1", "--seed", "3"],
                              ["--seed", "3", "--activation", "tanh,identity", "2-2-1"])):
        extra = ["-o", str(tmp_path / "same")] if command[0] == "derive" else []
        assert main([command[0], *args, *command[1:], *extra]) == 0
        outputs.append(capsys.readouterr().out)
        if command[0] == "derive":
            outputs[-1] = (tmp_path / "same" / "notes.md").read_text()
    assert outputs[0] == outputs[1] == outputs[2]


def test_a_compact_form_without_activation_is_the_default_network(capsys):
    """Sigmoid hidden units and a linear output, like the network used without a spec:
    independent witness, the loss of the default network and of the same spec given whole."""
    losses = []
    for args in (["example"], ["example", "2-3-1"], ["example", "2-3-1", "--activation", "sigmoid,identity"]):
        assert main([*args, "--json"]) == 0
        losses.append(json.loads(capsys.readouterr().out)["loss"])
    assert losses[0] == losses[1] == losses[2]
    default = sb.from_dict({"network": {"layers": [2, 3, 1], "activation": ["sigmoid", "identity"]}})
    assert losses[0] == pytest.approx(sb.example(default.network, default.values).evaluation.loss, rel=1e-12)


@pytest.mark.parametrize("option, changed", [(["--no-bias"], "bias"), (["--loss", "mse"], "loss"),
                                             (["--activation", "tanh"], "activation")])
def test_an_option_changes_only_what_it_names(option, changed):
    base = sb.compact("2-3-1")
    spec = sb.cli._spec(sb.cli._arguments(["example", *option], "symbackprop"))
    names = lambda s: [g.activation.name for g in s.network.groups]
    assert (names(spec) == names(base)) == (changed != "activation")
    assert (spec.network.loss.name == base.network.loss.name) == (changed != "loss")
    assert (bool(spec.network.biases) == bool(base.network.biases)) == (changed != "bias")


def test_spaces_in_an_activation_list_are_ignored(capsys):
    assert main(["example", "2-3-1", "--activation", "sigmoid, identity", "--json"]) == 0
    spaced = json.loads(capsys.readouterr().out)
    assert main(["example", "2-3-1", "--activation", "sigmoid,identity", "--json"]) == 0
    assert spaced == json.loads(capsys.readouterr().out)


def test_help_version_and_usage_name_the_entry_point_and_the_subcommand():
    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"python -m symbackprop {sb.__version__}"
    script = Path(sys.executable).parent / "symbackprop"
    installed = subprocess.run([str(script), "derive", "--help"], capture_output=True, text=True, timeout=300)
    assert installed.stdout.startswith("usage: symbackprop derive")
    top = run("--help").stdout
    for name in ("derive", "verify", "example", "check", "grade"):
        assert f"    {name} " in top
    for name in ("derive", "verify", "example"):
        text = run(name, "--help").stdout
        assert text.startswith(f"usage: python -m symbackprop {name}") and sb.cli.DESCRIPTIONS[name][:40] in \
            " ".join(text.split())
    grade = run("grade", "--help").stdout
    assert "0 when the report is written, whatever the verdicts" in grade
    error = run("grade", "subs.csv")
    assert error.returncode == 2 and error.stderr == ("error: the following arguments are required: -o/--output; "
                                                      "see python -m symbackprop grade --help\n")


def test_grade_exits_zero_when_every_answer_is_wrong_as_its_help_says(tmp_path, capsys):
    (tmp_path / "subs.csv").write_text("id,target,answer\n1,delta_output,a_k\n2,delta_output,t_k\n")
    assert main(["grade", str(tmp_path / "subs.csv"), "-o", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.endswith("2 answers: 0 correct, 2 incorrect, 0 cannot read\n")


# ---------------------------------------------------------------------------------------
# files: what a run replaces, and what it refuses to touch

def test_notes_without_the_figure_remove_the_old_figure_and_nothing_else(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["derive", "-o", str(out)]) == 0
    (out / "mine.txt").write_text("the lecturer's own file")
    assert main(["derive", "--no-figure", "--format", "md", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "notes.md", "notes.tex"]
    assert "notes.svg" not in (out / "notes.md").read_text()
    assert main(["derive", "-o", str(out)]) == 0 and (out / "notes.svg").exists()
    assert main(["derive", "--format", "tex", "--no-figure", "-o", str(out)]) == 0
    assert (out / "notes.svg").exists()  # the Markdown notes that show it were not replaced


def test_notes_and_reports_get_the_users_umask(tmp_path):
    (tmp_path / "subs.csv").write_text(SUBMISSIONS)
    for args in (["derive", "-o", "out"], ["grade", "subs.csv", "-o", "rep"]):
        result = subprocess.run(f"umask 022 && {sys.executable} -m symbackprop {' '.join(args)}", shell=True,
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    for path in [*(tmp_path / "out").iterdir(), tmp_path / "rep.csv", tmp_path / "rep.md"]:
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_sigterm_stops_with_one_line_and_leaves_the_old_notes(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.md").write_text("old notes")
    process = subprocess.Popen([sys.executable, "-m", "symbackprop", "derive", "784-30-10", "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    note = process.stderr.readline()  # printed once the network is read, before the derivation
    assert note.startswith("note: 23,860 parameters")
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr == "python -m symbackprop: stopped by SIGTERM\n" and stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["notes.md"] and (out / "notes.md").read_text() == "old notes"


def test_the_readme_command_line_examples_run(tmp_path, monkeypatch):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("(one line). For example:\n\n```bash\n")[1].split("```")[0]
    commands = [shlex.split(line, comments=True) for line in block.splitlines()]
    assert len(commands) == 4
    monkeypatch.chdir(tmp_path)
    for words in commands:
        assert words[:3] == ["python", "-m", "symbackprop"]
        assert main(words[3:]) == 0, words


def test_verify_and_example_tables_line_up_with_long_names(tmp_path, capsys):
    spec = tmp_path / "long.toml"
    spec.write_text("[network]\ninputs = ['x']\noutputs = ['averyveryverylongoutputname']\n"
                    "[[network.units]]\nname = 'averyveryverylongoutputname'\ninputs = ['x']\n")
    right_edges = lambda line: [m.end() for m in re.finditer(r"\S+(?: \S+)*", line)][1:4]
    for command, header, rows in (("verify", "parameter", 2), ("example", "unit", 1), ("example", "parameter", 2)):
        main([command, str(spec)])
        lines = capsys.readouterr().out.splitlines()
        start = lines.index(next(line for line in lines if line.startswith(header)))
        table = lines[start:start + 1 + rows]
        assert all(right_edges(line) == right_edges(table[0]) for line in table), "\n".join(table)


def test_ctrl_c_during_grade_prints_one_line_and_leaves_no_worker(tmp_path):
    """Ctrl-C reaches the whole process group (main process and its forked workers), as a terminal sends it."""
    rows = [f"{n},delta_hidden,g'(z_j) sum_k w_jk delta_k + {n}" for n in range(3000)]
    (tmp_path / "many.csv").write_text("id,target,answer\n" + "\n".join(rows) + "\n")
    process = subprocess.Popen([sys.executable, "-m", "symbackprop", "grade", "many.csv", "-o", "rep", "--workers", "2"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline, workers = time.monotonic() + 120, []
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) >= 2
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT and stderr == "python -m symbackprop: stopped by SIGINT\n"
    time.sleep(0.5)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.csv"]

def test_derive_of_a_large_network_says_first_what_it_leaves_out(tmp_path):
    """100-99-2 has 10,199 parameters, just above the limit: the lecture chapter, the matrix form,
    the worked example per unit and the verification verdict, but nothing listed per weight."""
    limit = sb.rendering.PER_WEIGHT_LIMIT
    assert len(sb.compact("100-99-2").network.parameters) == 10_199 > limit
    result = run("derive", "100-99-2", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"note: 10,199 parameters; above {limit:,} the notes leave out")
    notes = (tmp_path / "notes.md").read_text()
    for kept in ("## Matrix form", "## A worked example", "## Appendix: verification", "all witnesses agree",
                 "left out"):
        assert kept in notes, kept
    for dropped in ("The forward pass, unit by unit", "Appendix: every formula", "| parameter | gradient |",
                    "| parameter | value |"):
        assert dropped not in notes, dropped
    small = run("derive", "64-64-10", "-o", str(tmp_path / "small"))  # 4,810 parameters: everything
    assert small.stderr == "" and "The forward pass, unit by unit" in (tmp_path / "small" / "notes.md").read_text()


def test_commands_that_read_no_expression_run_without_lark_and_check_says_what_is_missing(tmp_path):
    """lark reads expressions and answers; the default derivation needs neither, and a Python
    without lark gets one line naming the package instead of a traceback."""
    blocked = ("import sys, runpy; sys.modules['lark'] = None; sys.argv = ['symbackprop'] + sys.argv[1:]; "
               "runpy.run_module('symbackprop', run_name='__main__', alter_sys=True)")
    run = lambda *args: subprocess.run([sys.executable, "-c", blocked, *args], capture_output=True, text=True,
                                       cwd=tmp_path, timeout=300)
    derived = run("derive")
    assert derived.returncode == 0, derived.stderr
    assert (tmp_path / "output" / "notes.md").read_text().startswith("# Backpropagation")
    checked = run("check", "--target", "delta_hidden", "--answer", "g'(z_j) sum_k w_jk delta_k")
    assert checked.returncode == 2 and "Traceback" not in checked.stderr
    assert "needs the package 'lark'" in checked.stderr and "pip install -e ." in checked.stderr
