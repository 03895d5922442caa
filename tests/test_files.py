"""Outputs are written as one set or not at all, never over an input, with the user's umask."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from symbackprop import files
from symbackprop.errors import SpecError


def test_a_set_replaces_the_old_one_and_removes_what_it_replaces(tmp_path):
    (tmp_path / "notes.md").write_text("old md")
    (tmp_path / "notes.svg").write_text("old figure")
    (tmp_path / "mine.txt").write_text("not ours")
    written = files.write_set({tmp_path / "notes.md": "new md", tmp_path / "notes.tex": "new tex"},
                              replaces=[tmp_path / "notes.svg"])
    assert written == [tmp_path / "notes.md", tmp_path / "notes.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt", "notes.md", "notes.tex"]
    assert (tmp_path / "notes.md").read_text() == "new md" and (tmp_path / "mine.txt").read_text() == "not ours"


def test_new_files_get_the_users_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        files.write_set({tmp_path / "a.md": "x", tmp_path / "a.csv": "y"})
    finally:
        os.umask(previous)
    assert {oct((tmp_path / name).stat().st_mode & 0o777) for name in ("a.md", "a.csv")} == {"0o644"}


@pytest.mark.parametrize("how", ["same path", "through a symbolic link", "relative path"])
def test_an_output_that_is_an_input_is_refused_and_nothing_changes(tmp_path, monkeypatch, how):
    source = tmp_path / "small.csv"
    source.write_text("id,target,answer\n")
    target = {"same path": source, "relative path": Path("small.csv"),
              "through a symbolic link": tmp_path / "link.csv"}[how]
    if how == "through a symbolic link":
        target.symlink_to(source)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match="is also an input"):
        files.write_set({target: "report", target.with_suffix(".md"): "summary"}, inputs=[source])
    assert source.read_text() == "id,target,answer\n" and not (tmp_path / "small.md").exists()


def test_a_folder_where_a_file_goes_is_refused_before_anything_is_replaced(tmp_path):
    (tmp_path / "R.csv").write_text("old report")
    (tmp_path / "R.md").mkdir()
    with pytest.raises(SpecError, match="R.md: is a folder"):
        files.write_set({tmp_path / "R.csv": "new", tmp_path / "R.md": "new"})
    assert (tmp_path / "R.csv").read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R.csv", "R.md"]


def test_unusable_folders_are_named(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("a file")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    for folder, message in ((plain, "is a file, not a folder"), (plain / "sub", "is a file, not a folder"),
                            (dangling, "which does not exist"), (dangling / "sub", "which does not exist")):
        with pytest.raises(SpecError, match=message):
            files.write_set({folder / "notes.md": "x"})
    assert plain.read_text() == "a file" and not (tmp_path / "gone").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the CLI table covers a "
                                               "folder under a regular file instead")
def test_a_read_only_folder_is_named(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(SpecError, match="cannot write into"):
            files.write_set({tmp_path / "notes.md": "x"})
    finally:
        tmp_path.chmod(0o755)


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from symbackprop import files
    files.os.replace = lambda *a: time.sleep(60)   # every new file is written, none moved yet
    folder = Path(sys.argv[1])
    print("writing", flush=True)
    files.write_set({folder / "notes.md": "new md", folder / "notes.tex": "new tex"})
""")


def test_a_killed_run_leaves_the_old_set_whole_and_the_next_run_cleans_up(tmp_path):
    for name in ("notes.md", "notes.tex", "notes.svg"):
        (tmp_path / name).write_text(f"old {name}")
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "writing\n"
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".tmp") and len(list(p.iterdir())) == 2 for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].name.startswith(f".symbackprop-{writer.pid}-")
    assert {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()} == {
        "notes.md": "old notes.md", "notes.tex": "old notes.tex", "notes.svg": "old notes.svg"}
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a folder of a run still going is left alone
        running = tmp_path / f".symbackprop-{alive.pid}-abc.tmp"
        running.mkdir()
        files.write_set({tmp_path / "notes.md": "new md"}, replaces=[tmp_path / "notes.svg"])
        assert sorted(p.name for p in tmp_path.iterdir()) == [running.name, "notes.md", "notes.tex"]
    finally:
        alive.kill()
        alive.wait()


def test_reads_stop_at_the_limit(tmp_path):
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * 100)
    assert files.read_bounded(exact, 100, "spec file") == b"x" * 100
    with pytest.raises(SpecError, match="larger than 99 bytes"):
        files.read_bounded(exact, 99, "spec file")
    started = time.perf_counter()
    with pytest.raises(SpecError, match="/dev/zero: is larger than 1,000,000 bytes"):
        files.read_bounded("/dev/zero", 1_000_000, "spec file")
    assert time.perf_counter() - started < 1
    with pytest.raises(SpecError, match="cannot read it as a submissions file"):
        files.read_bounded(tmp_path / "missing.csv", 10, "submissions file")


def test_a_stale_picture_that_is_an_input_is_not_removed(tmp_path):
    """Markdown notes without their figure remove the old pictures: a spec saved as notes.svg in
    the output folder was deleted (exit 0)."""
    spec = tmp_path / "notes.svg"
    spec.write_text("[network]\nlayers = [2, 2, 1]\n")
    with pytest.raises(SpecError, match="notes.svg: is also an input"):
        files.write_set({tmp_path / "notes.md": "new"}, replaces=[spec], inputs=[spec])
    assert spec.read_text() == "[network]\nlayers = [2, 2, 1]\n" and not (tmp_path / "notes.md").exists()


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False)


def test_derive_keeps_a_spec_saved_where_a_picture_it_removes_was(tmp_path):
    (tmp_path / "out").mkdir()
    spec = tmp_path / "out" / "notes.svg"
    spec.write_text("[network]\nlayers = [2, 2, 1]\n")
    result = _cli("derive", "out/notes.svg", "--no-figure", "--format", "md", "-o", "out", cwd=tmp_path)
    assert result.returncode == 2 and "is also an input" in result.stderr, result.stderr
    assert spec.exists() and not (tmp_path / "out" / "notes.md").exists()


def test_a_template_in_a_subfolder_of_templates_is_an_input(tmp_path):
    """--templates T -o T/parts replaced T/parts/notes.md, a template that md.j2 includes."""
    templates = tmp_path / "T"
    (templates / "parts").mkdir(parents=True)
    shipped = Path(__file__).resolve().parent.parent / "templates"
    for name in ("md.j2", "notes.j2", "steps.j2", "words.j2"):
        (templates / name).write_text((shipped / name).read_text())
    (templates / "parts" / "notes.md").write_text("a part of my notes")
    result = _cli("derive", "--templates", "T", "--format", "md", "-o", "T/parts", cwd=tmp_path)
    assert result.returncode == 2 and "is also an input" in result.stderr, result.stderr
    assert (templates / "parts" / "notes.md").read_text() == "a part of my notes"
