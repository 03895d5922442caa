"""The KaTeX rendering tests' tools: Node.js on PATH and the katex package in ``.ci/node``
(``.ci/run`` installs both); when one is missing, the skip reason names that one."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

KATEX = Path(__file__).parent.parent / ".ci" / "node" / "node_modules" / "katex"
INSTALL_KATEX = "npm install --prefix .ci/node katex@0.16"


def missing(path: str | None = None, katex: Path = KATEX) -> str:
    """What the KaTeX tests lack, in words ('' when nothing): ``path`` is where node is looked for
    (default: PATH), ``katex`` the package's folder."""
    node = shutil.which("node", path=path) is not None
    package = katex.is_dir()
    if not node and not package:
        return f"needs Node.js (node on PATH) and the katex package ({INSTALL_KATEX}); .ci/run installs both"
    if not node:
        return f"needs Node.js (node on PATH); the katex package is in {katex.parent.parent}"
    if not package:
        return f"needs the katex package in {katex.parent} ({INSTALL_KATEX}); node is installed"
    return ""


requires_katex = pytest.mark.skipif(bool(missing()), reason=missing() or "node and katex are installed")


def render_all(files: list[str], timeout: float) -> subprocess.CompletedProcess:
    """``katex_check.js`` over ``files``: every math span of each rendered, errors counted."""
    return subprocess.run(["node", str(Path(__file__).parent / "katex_check.js"), *files], capture_output=True,
                          text=True, timeout=timeout, check=False, env={**os.environ, "NODE_PATH": str(KATEX.parent)})
