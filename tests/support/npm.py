"""A front-end package's node_modules for a test, installed by `npm ci` from its committed
package-lock.json only when missing or installed from another lockfile (a test session then
reuses it: node_modules is .gitignored)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

# How npm is called lives with `make vendor`'s script, which runs with Python alone: the tests use
# the tool's helper, never the other way round (tools/ must not need pytest or tests/).
from tools.vendor import refresh as vendor

STAMP = ".installed-from"  # in node_modules/: the hash of the lockfile it was installed from


def require_node() -> tuple[str, str]:
    """node's and npm's paths, or a skip (of the module, when called at import) saying they are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(
            "node and npm are needed for this test (Debian's nodejs and npm)", allow_module_level=True
        )
    return node, npm


def install(package: Path) -> None:
    lock = hashlib.sha256((package / "package-lock.json").read_bytes()).hexdigest()
    stamp = package / "node_modules" / STAMP
    if stamp.exists() and stamp.read_text() == lock:
        return
    run(package, "ci")
    stamp.write_text(lock)


def run(package: Path, *args: str) -> None:
    """``npm <args>`` in ``package``; a failure shows npm's output."""
    _, npm = require_node()
    result = vendor.npm(package, *args, executable=npm, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"npm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
