"""Every test, and every command it starts, keeps its cache in a fresh folder of its own:
never the user's, and never warm from an earlier run."""
import atexit
import os
import shutil
import tempfile

os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="symbackprop-tests-")  # before symbackprop is imported
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)
