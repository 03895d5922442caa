"""The disk cache of prepared references: reused across processes, never read when unsafe or stale."""
import os
import pickle
import subprocess
import sys

import pytest

import symbackprop as sb
from symbackprop import cache, grading

ANSWER = r"g'(z_j) \sum_k w_{jk} \delta_k"


def _check(home, *extra, answer=ANSWER):
    environment = {**os.environ, "XDG_CACHE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "symbackprop", "check", *extra, "--target", "delta_hidden",
                           "--answer", answer, "--json"], capture_output=True, text=True, env=environment, timeout=120)


def _pickles(home):
    return sorted((home / "symbackprop").glob("*.pickle"))


def test_a_second_process_reads_the_prepared_reference(tmp_path):
    first = _check(tmp_path)
    stored = _pickles(tmp_path)
    assert first.returncode == 0 and len(stored) == 1
    assert oct((tmp_path / "symbackprop").stat().st_mode & 0o777) == "0o700"
    assert oct(stored[0].stat().st_mode & 0o777) == "0o600"
    written = stored[0].stat().st_mtime_ns
    again, wrong = _check(tmp_path), _check(tmp_path, answer=r"\sum_k w_{jk} \delta_k")
    assert again.stdout == first.stdout and again.returncode == 0
    assert wrong.returncode == 1 and "incorrect" in wrong.stdout
    assert _pickles(tmp_path) == stored and stored[0].stat().st_mtime_ns == written  # read, not rewritten
    other = _check(tmp_path, "3-2-2", "--activation", "tanh,identity")  # another network: another key
    assert other.returncode == 0 and len(_pickles(tmp_path)) == 2


def _stored(monkeypatch, tmp_path, value, mode=0o600):
    """Plant ``value`` under the key of compute() and return what remembered() gives back."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    def compute(x):
        return f"computed {x}"
    folder = cache.folder()
    key = cache.key(f"{compute.__module__}.{compute.__qualname__}", 7)
    path = folder / f"{key}.pickle"
    path.write_bytes(value(key) if callable(value) else value)
    path.chmod(mode)
    return cache.remembered(compute, 7, kind=str), path


def test_a_file_of_this_user_with_the_right_key_is_used(monkeypatch, tmp_path):
    result, _ = _stored(monkeypatch, tmp_path, lambda key: pickle.dumps((key, "stored")))
    assert result == "stored"


@pytest.mark.parametrize("planted, mode", [
    (lambda key: pickle.dumps((key, "planted")), 0o666),  # writable by others: never unpickled
    (lambda key: pickle.dumps(("another key", "stale")), 0o600),
    (lambda key: pickle.dumps((key, 42)), 0o600),  # not the type asked for
    (b"not a pickle at all", 0o600),
    (lambda key: pickle.dumps((key, "half"))[:9], 0o600),  # truncated
])
def test_unsafe_stale_or_broken_files_are_computed_again_and_replaced(monkeypatch, tmp_path, planted, mode):
    result, path = _stored(monkeypatch, tmp_path, planted, mode)
    assert result == "computed 7"
    assert pickle.loads(path.read_bytes())[1] == "computed 7" and path.stat().st_mode & 0o077 == 0


def test_a_folder_others_can_write_is_not_used(monkeypatch, tmp_path):
    (tmp_path / "symbackprop").mkdir(mode=0o777)
    (tmp_path / "symbackprop").chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.folder() is None and cache.library_file("lark-answers") is False
    assert cache.remembered(lambda: "computed", kind=str) == "computed"
    assert list((tmp_path / "symbackprop").iterdir()) == []


def test_the_cache_can_be_switched_off(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv(cache.SWITCH, "0")
    assert cache.folder() is None
    assert _check(tmp_path).returncode == 0 and not (tmp_path / "symbackprop").exists()


def test_keys_follow_the_content_not_the_objects():
    same = [sb.compact("2-3-1", "tanh,identity", "half_sse") for _ in range(2)]
    other = sb.compact("2-3-1", "sigmoid,identity", "half_sse")
    key = lambda spec: cache.key("prepare", spec.network, "delta_hidden", sb.notation.load("haykin"), spec.values)
    assert key(same[0]) == key(same[1]) != key(other)
    assert cache.key("prepare", same[0].network, "delta_hidden", sb.notation.load("nielsen"), same[0].values) \
        != key(same[0])
    shifted = sb.Values(same[0].values.inputs + 1, same[0].values.targets, same[0].values.parameters)
    assert cache.key("prepare", same[0].network, "delta_hidden", sb.notation.load("haykin"), shifted) != key(same[0])


def test_a_prepared_target_survives_the_round_trip_through_pickle():
    spec = sb.compact("2-3-1", "tanh,identity", "half_sse")
    prepared = grading.prepare(spec.network, "delta_hidden", "default", spec.values, spec.learning_rate)
    loaded = pickle.loads(pickle.dumps(prepared))
    for answer in (ANSWER, "(1 - a_j^2) sum(w_jk*delta_k, k)", r"\sum_k w_{jk} \delta_k"):
        assert grading.check_prepared(loaded, answer) == grading.check_prepared(prepared, answer)
