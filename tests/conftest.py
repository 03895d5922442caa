"""Every test, and every command it starts, keeps its cache in a fresh folder of its own:
never the user's, and never warm from an earlier run.  Property tests run a bounded number of
examples and report the first failure as drawn: shrinking and explaining a failure that takes
seconds per example once ran for 45 minutes (``--hypothesis-profile=shrink`` turns them back on
when debugging one test)."""
import atexit
import os
import shutil
import tempfile

from hypothesis import Phase, settings

settings.register_profile("bounded", phases=(Phase.explicit, Phase.reuse, Phase.generate), print_blob=True)
settings.register_profile("shrink", phases=tuple(Phase))
settings.load_profile("bounded")

os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="symbackprop-tests-")  # before symbackprop is imported
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)


def pytest_collection_modifyitems(items):
    """The tests on other array libraries run last: JAX starts threads when it loads, and a
    process forked after that (grading workers, the answer page's, every command a test starts)
    may deadlock; in one process with the others it warned on every fork that followed."""
    items.sort(key=lambda item: item.path.name == "test_backends.py")
