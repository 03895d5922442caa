"""Progress lines: on a terminal after the delay, never elsewhere."""
import io

import symbackprop as sb
from symbackprop import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_sees_one_updating_line_that_is_erased_at_the_end(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr(progress, "DELAY", -1.0)
    monkeypatch.setattr(progress, "INTERVAL", -1.0)
    with progress.progress("deriving", 3) as bar:
        bar.advance()
        bar.advance(2)
    written = terminal.getvalue()
    assert "\rderiving: 1/3" in written and "\rderiving: 3/3" in written and "\n" not in written
    assert written.endswith("\r\x1b[K")


def test_nothing_is_printed_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(progress, "DELAY", -1.0)
    monkeypatch.setattr(progress, "INTERVAL", -1.0)
    net = sb.layered([2, 3, 1])
    sb.verify(net, sb.derive(net))
    assert capsys.readouterr().err == ""


def test_quick_work_prints_nothing_on_a_terminal(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    net = sb.layered([2, 3, 1])
    sb.verify(net, sb.derive(net))
    assert terminal.getvalue() == ""


def test_derive_codegen_and_verify_report_progress(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr(progress, "DELAY", -1.0)
    monkeypatch.setattr(progress, "INTERVAL", -1.0)
    net = sb.layered([2, 3, 1])  # 2 layers, 4 units, 13 parameters
    sb.verify(net, sb.derive(net))
    written = terminal.getvalue()
    for label in ("deriving: 19/19", "generating code:", "checking generic formulas: 4/4", "brute force: 13/13"):
        assert label in written, label
