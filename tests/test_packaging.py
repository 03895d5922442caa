"""A non-editable install works: templates and notation presets ship inside the wheel."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_installs_and_derives_in_another_notation(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", str(ROOT), "--no-deps", "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    wheel, = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "symbackprop/templates/notes.j2" in names and "symbackprop/notations/haykin.toml" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    work = tmp_path / "work"  # away from the checkout, whose templates/ must not be what is found
    work.mkdir()
    result = subprocess.run([sys.executable, "-m", "symbackprop", "derive", "--notation", "haykin"], cwd=work,
                            env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert str(site) in subprocess.run([sys.executable, "-c", "import symbackprop; print(symbackprop.__file__)"],
                                       cwd=work, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True,
                                       text=True, check=True).stdout
    assert r"\varphi'(v_{j})" in (work / "output" / "notes.md").read_text()
