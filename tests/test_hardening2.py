"""The second red-team pass, each finding reproduced through the real command in a process of
its own (bounded: 4 GB of address space, 60 CPU seconds), where a user would meet it; and
property tests of the two new bounds."""
import resource
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st


def _bounded():
    resource.setrlimit(resource.RLIMIT_AS, (4_000_000_000, 4_000_000_000))
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))


def run(*args, cwd=None, code=None):
    """``python -m symbackprop ARGS`` (or the CLI's main() after ``code``, to lower a limit)."""
    command = ([sys.executable, "-m", "symbackprop"] if code is None else
               [sys.executable, "-c", f"{code}\nfrom symbackprop.cli import main\nraise SystemExit(main())"])
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120,
                          preexec_fn=_bounded)


def refused(result, *fragments):
    """One line on stderr with every fragment, exit status 2, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# -- 1. templates: bounded in size, time and memory; a template extending itself ----------------

HOSTILE_TEMPLATES = [
    ('{{ "x" * 10**10 }}', "repeats a str into 10,000,000,000 items", 1),
    ("title\n{{ [0] * 10**9 }}", "repeats a list into 1,000,000,000 items", 2),
    ("{{ 10**100000 }}", "computes 10**100000, an integer of about 400,000 bits", 1),
    ('{% set ns = namespace(s="x") %}\n{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}',
     "needed more than 2 GB of memory", 2),
    ("{% for i in range(10**9) %}{% endfor %}", "Range too big", 1),
    ('{% for i in range(99999) %}{{ "x" * 1000 }}{% endfor %}', "writes more than 50,000,000 characters", 1),
    ('{% extends "notes.j2" %}', "extends, includes or calls itself without end", 1),
    ("\n\n{{ 1 / 0 }}", "ZeroDivisionError: division by zero", 3),
    ("{% for x in %}", "failed: Expected an expression", 1),
]


@pytest.mark.parametrize("text, problem, line", HOSTILE_TEMPLATES, ids=[t[1][:30] for t in HOSTILE_TEMPLATES])
def test_a_hostile_template_is_refused_with_its_file_and_line_and_nothing_is_written(tmp_path, text, problem, line):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.j2").write_text(text)
    result = run("derive", "2-1", "--templates", tmp_path / "mine", "-o", tmp_path / "out")
    refused(result, f"--templates: the template in {tmp_path / 'mine' / 'notes.j2'} ", problem,
            *([f"(line {line})"] if line else []))
    assert not (tmp_path / "out").exists()


def test_a_template_that_loops_for_long_is_stopped_by_the_cpu_time_limit(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.j2").write_text(
        "notes\n{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}")
    result = run("derive", "2-1", "--templates", tmp_path / "mine", "-o", tmp_path / "out",
                 code="import symbackprop.limits as limits\nlimits.TEMPLATE_SECONDS = 1")
    refused(result, "notes.j2 ran for more than 1 s of CPU time (line 2); look for a loop")
    assert not (tmp_path / "out").exists()


def test_exercise_sheets_from_a_hostile_template_are_refused_alike(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "sheet.j2").write_text('{{ "x" * 10**10 }}')
    result = run("exercises", "--templates", tmp_path / "mine", "-o", tmp_path / "out")
    refused(result, "sheet.j2 repeats a str into 10,000,000,000 items", "(line 1)")
    assert not (tmp_path / "out").exists()


def test_a_template_of_ordinary_size_still_renders_and_extends_what_it_may(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "base.j2").write_text("{% block body %}{% endblock %}\n")
    (tmp_path / "mine" / "notes.j2").write_text('{% extends "base.j2" %}{% block body %}{{ "ab" * 3 }} '
                                                '{{ 2 ** 10 }} {{ notes.E }}{% endblock %}')
    result = run("derive", "2-1", "--format", "md", "--templates", tmp_path / "mine", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "notes.md").read_text() == "ababab 1024 E"  # trim_blocks takes the newline after a tag


# -- 2. towers of exponentials: refused as they are read, bounded where they are evaluated ------

@pytest.mark.parametrize("activation, depth", [("z^z^z^z^z", 4), ("exp(exp(exp(exp(z))))", 4),
                                               ("exp(z^z^exp(z))", 4)])
def test_a_tower_of_exponentials_is_refused_with_the_real_reason_at_once(tmp_path, activation, depth):
    for command in (["verify", "2-1", "--activation", activation],
                    ["check", "2-1", "--activation", activation, "--target", "delta_output", "--answer", "a_k - t_k"]):
        refused(run(*command), f"nests exponentials {depth} deep", "at most 3", "outgrow any arithmetic")
    (tmp_path / "tower.toml").write_text(f"[network]\nlayers = [2, 1]\nactivation = '{activation}'\n")
    refused(run("example", tmp_path / "tower.toml"), "network.activation: ", f"nests exponentials {depth} deep")


def test_a_tower_the_parser_allows_verifies_without_the_brute_force_it_cannot_evaluate():
    result = run("verify", "2-3-1", "--activation", "exp(exp(exp(z)))")  # two layers of it: 10^(10^700)
    assert result.returncode == 0, result.stderr
    assert "brute-force sympy.diff of the expanded loss: too large to evaluate" in result.stdout
    assert "verdict: all witnesses agree" in result.stdout


def test_a_fitted_textbook_form_of_a_tower_given_through_the_api_is_bounded():
    from symbackprop.functions import Z, activation, custom_activation
    assert custom_activation(Z ** Z ** Z ** Z ** Z).derivative_in_activation is None  # hung 93 s, 2.7 GB
    assert str(activation("sigmoid").derivative_in_activation) == "a*(1 - a)"


# -- 3. a worked example that overflows: check and derive refuse, naming the inputs ------------

OVERFLOWING = "[network]\nlayers = [1, 1]\nactivation = 'exp(z)'\n[example]\ninputs = [800.0]\nweights = [[[1.0]]]\n"


def test_check_and_derive_of_an_overflowing_example_refuse_naming_its_inputs(tmp_path):
    (tmp_path / "big.toml").write_text(OVERFLOWING)
    refused(run("check", tmp_path / "big.toml", "--target", "delta[0][0]", "--answer", "1"),
            "example: delta[0][0] of the worked example is not finite", "inputs [800.0]", "smaller inputs")
    refused(run("derive", tmp_path / "big.toml", "-o", tmp_path / "out"),
            "example: the worked example is not finite (loss, a[1][0]", "inputs [800.0]", "smaller inputs")
    assert not (tmp_path / "out").exists()


def test_check_of_a_generic_target_whose_numbers_overflow_names_the_activation():
    refused(run("check", "2-1", "--activation", "exp(exp(exp(z)))", "--target", "delta_output", "--answer", "a_k"),
            "network.activation: delta_output overflows float64 at the random points answers are checked at")


# -- 4. messages that name the right thing -------------------------------------------------------

def test_a_grade_row_with_a_bad_target_names_the_target_column_not_an_option(tmp_path):
    (tmp_path / "answers.csv").write_text("id,target,answer\n1,delta[9][9],1\n2,nonsense,1\n")
    result = run("grade", tmp_path / "answers.csv", "-o", tmp_path / "report", "--workers", "1")
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "report.csv").read_text()
    assert "--target" not in report
    assert '"the target column: delta[9][9] is outside the network 2-3-1' in report
    assert '"the target column: unknown target \'nonsense\'' in report


def test_notation_files_are_named_as_such(tmp_path):
    (tmp_path / "loss.toml").write_text('base = "default"\n[conventions]\nloss = "bogus"\n')
    refused(run("derive", "--notation", tmp_path / "loss.toml", "-o", tmp_path / "out"),
            "notation.conventions.loss: 'bogus' is not one of half_sse, sse, mse")
    refused(run("derive", "--notation", "/etc/passwd", "-o", tmp_path / "out"),
            "notation: '/etc/passwd' exists but is not a notation file")
    (tmp_path / "slash.toml").write_text('base = "default"\n[symbols]\nweight = "\\\\input{x}"\n')
    result = run("derive", "--notation", tmp_path / "slash.toml", "-o", tmp_path / "out")
    refused(result, "notation.symbols.weight: '\\input' is not allowed in a symbol")
    assert "\\\\" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_exercises_name_their_own_options_and_files(tmp_path):
    (tmp_path / "roster.csv").write_text("student\nann\n")
    refused(run("exercises", "--seed", "-1", "-o", tmp_path / "set"), "--seed: must be a non-negative integer")
    refused(run("exercises", "--students", tmp_path / "roster.csv", "-o", tmp_path / "roster.csv"),
            "roster.csv: is a file, not a folder; choose a folder")
    assert (tmp_path / "roster.csv").read_text() == "student\nann\n"
    result = run("exercises", "--students", tmp_path / "roster.csv", "-o", tmp_path / "set")
    assert result.returncode == 0 and "codes.csv" in result.stdout and (tmp_path / "set" / "codes.csv").is_file()


def test_a_huge_cell_is_reported_with_its_unit(tmp_path):
    (tmp_path / "answers.csv").write_text("id,target,answer\n1,delta_output," + "a" * 2_000_000 + "\n")
    result = run("grade", tmp_path / "answers.csv", "-o", tmp_path / "report", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "answer longer than 2000 characters (its row has 2,000,016 characters)" in (tmp_path / "report.csv").read_text()


# -- 5. CSV input --------------------------------------------------------------------------------

def test_a_nul_byte_never_reaches_the_report_raw(tmp_path):
    (tmp_path / "answers.csv").write_bytes(b"id,target,answer,note\n1,delta_output,a\0b,x\0y\n")
    result = run("grade", tmp_path / "answers.csv", "-o", tmp_path / "report", "--workers", "1")
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "report.csv").read_bytes()
    assert b"\0" not in report and "a\u2400b,x\u2400y".encode() in report


@pytest.mark.parametrize("header, twice", [("id,target,answer,answer", "'answer' more than once (columns 3, 4)"),
                                           ("id,target,target,answer", "'target' more than once (columns 2, 3)"),
                                           ("ID,target,answer,id", "'id' more than once (columns 1, 4)")])
def test_a_column_named_twice_is_refused_with_its_name(tmp_path, header, twice):
    (tmp_path / "answers.csv").write_text(f"{header}\n1,delta_output,a_k,b\n")
    refused(run("grade", tmp_path / "answers.csv", "-o", tmp_path / "report"), f"the header row names {twice}")
    assert not (tmp_path / "report.csv").exists()


def test_roster_ids_are_stripped_as_submissions_are_and_special_spaces_refused(tmp_path):
    (tmp_path / "twice.csv").write_text("student,student\nann,bob\n")
    refused(run("exercises", "--students", tmp_path / "twice.csv", "-o", tmp_path / "set"),
            "names the 'student' column more than once")
    (tmp_path / "inside.csv").write_text("student\nbo\u00a0b\n", encoding="utf-8")
    refused(run("exercises", "--students", tmp_path / "inside.csv", "-o", tmp_path / "set"),
            "(row 2 of inside.csv): student id 'bo\\xa0b' contains a no-break or other special space")
    (tmp_path / "edges.csv").write_text("student\n\u00a0ann \n", encoding="utf-8")
    assert run("exercises", "--students", tmp_path / "edges.csv", "-o", tmp_path / "set").returncode == 0
    assert (tmp_path / "set" / "ann").is_dir()  # stripped, as grading strips the student column
    import symbackprop as sb
    from symbackprop.errors import SpecError
    with pytest.raises(SpecError, match="starts or ends with a space"):
        sb.exercises.exercises(sb.compact("2-1"), [" ann"])


def test_a_question_listed_twice_is_refused(tmp_path):
    refused(run("exercises", "--questions", "delta,grad_w,delta", "-o", tmp_path / "set"),
            "--questions: delta listed more than once")


def test_options_may_come_before_the_subcommand(tmp_path):
    result = run("-o", tmp_path / "notes", "--format", "md", "derive", "2-1")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "notes" / "notes.md").is_file()
    result = run("-o", "derive", "derive", "2-1", "--format", "md", cwd=tmp_path)  # a folder named derive
    assert result.returncode == 0 and (tmp_path / "derive" / "notes.md").is_file(), result.stderr
    assert run("--version").stdout.startswith("python -m symbackprop ")
    result = run("-o", tmp_path / "notes")
    assert result.returncode == 2 and "invalid choice" in result.stderr


# -- 6. one reader and one writer for every file -------------------------------------------------

def test_inputs_are_read_bounded_whatever_their_kind(tmp_path):
    refused(run("grade", "/dev/zero", "-o", tmp_path / "report"),
            "/dev/zero: is larger than 64 MB, the limit for a submissions CSV; split the class into files")
    refused(run("exercises", "--students", "/dev/zero", "-o", tmp_path / "set"),  # was read whole: all memory
            "/dev/zero: is larger than 2,000,000 bytes, the limit for a roster CSV")


def test_an_exercise_set_is_written_as_one_set_into_its_subfolders(tmp_path):
    (tmp_path / "roster.csv").write_text("student\nann\nbob\n")
    result = run("exercises", "--students", tmp_path / "roster.csv", "--format", "md", "-o", tmp_path / "set")
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path / "set")) for p in (tmp_path / "set").rglob("*"))
    assert written == ["ann", "ann/sheet.md", "ann/sheet.svg", "bob", "bob/sheet.md", "bob/sheet.svg", "codes.csv",
                       "exercises.toml", "key.csv", "key.md", "key.svg"]  # no staging folder left behind


# -- properties of the two new bounds -----------------------------------------------------------

WRAPPERS = {"exp": ("exp(", ")", 1), "power": ("z^(", ")", 1), "sin": ("sin(", ")", 0), "square": ("(", ")^2", 0),
            "sigmoid": ("sigmoid(", ")", 1)}  # sigmoid is 1/(1 + exp(-x)): one exponential


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(WRAPPERS)), max_size=7))
def test_an_expression_is_refused_exactly_when_its_exponentials_nest_more_than_three_deep(layers):
    from symbackprop.parsing import ExpressionError, parse_expression
    from symbackprop.functions import Z
    text = "z"
    for name in layers:
        before, after, _ = WRAPPERS[name]
        text = before + text + after
    depth = sum(WRAPPERS[name][2] for name in layers)  # counted on the text, not by the parser
    if depth > 3:
        with pytest.raises(ExpressionError, match=f"nests exponentials {depth} deep"):
            parse_expression(text, {"z": Z})
    else:
        parse_expression(text, {"z": Z})


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="ab", min_size=1, max_size=5), st.integers(0, 10 ** 12))
def test_a_template_repeats_a_string_exactly_when_the_result_fits_a_document(text, count):
    from symbackprop import limits
    from symbackprop.notes import sandbox
    env = sandbox.BoundedSandbox()
    template = env.from_string("{{ s * n }}")
    if len(text) * count <= limits.MAX_DOCUMENT_CHARACTERS:
        if len(text) * count <= 10_000:  # the larger ones fit too, but take memory to check
            assert template.render(s=text, n=count) == text * count
    else:
        with pytest.raises(Exception, match=f"repeats a str into {len(text) * count:,} items"):
            template.render(s=text, n=count)
