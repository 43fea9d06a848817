"""Refresh the chat page's vendored browser libraries (``make vendor``).

``npm ci`` installs what ``package-lock.json`` pins into ``tools/vendor/node_modules`` (not
committed), then the dist builds and licence files listed in ``FILES`` are copied into
``static/vendor/`` and ``static/vendor/manifest.json`` records each package's version and each
copied file's sha256. ``tests/test_vendored.py`` checks the files against the manifest and the
lockfile, so ``make run`` needs only Python and the committed copies.

To upgrade: change a version in ``package.json``, ``npm install --package-lock-only`` here, then
``make vendor``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STATIC = HERE.parent.parent / "static" / "vendor"
MANIFEST = STATIC / "manifest.json"

# package -> {file in static/vendor/: file in the package}. markdown-it's browser build bundles
# the small packages after it, so their licences ship too.
FILES: dict[str, dict[str, str]] = {
    "markdown-it": {
        "markdown-it.min.js": "dist/browser/markdown-it.umd.min.js",
        "licenses/markdown-it.LICENSE": "LICENSE",
    },
    "dompurify": {
        "purify.min.js": "dist/purify.min.js",
        "licenses/dompurify.LICENSE": "LICENSE",  # Apache-2.0; it is dual-licensed
        "licenses/dompurify.LICENSE-MPL": "LICENSE-MPL",
    },
    "entities": {"licenses/entities.LICENSE": "LICENSE"},
    "linkify-it": {"licenses/linkify-it.LICENSE": "LICENSE"},
    "mdurl": {"licenses/mdurl.LICENSE": "LICENSE"},
    "uc.micro": {"licenses/uc.micro.LICENSE": "LICENSE.txt"},
    "punycode.js": {"licenses/punycode.js.LICENSE": "LICENSE-MIT.txt"},
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def npm(directory: Path, *args: str, executable: str = "npm", **run: Any) -> subprocess.CompletedProcess:
    """``npm <args>`` in ``directory`` (``run``: subprocess.run's options), as every npm call of the
    project runs it: without npm's audit and funding requests. tests/support/npm.py calls it too."""
    return subprocess.run([executable, *args, "--no-audit", "--no-fund"], cwd=directory, **run)


def npm_ci(directory: Path) -> Path:
    """``npm ci`` of our lockfile into ``directory`` (its package.json and lock copied there
    unless it is this one); returns its node_modules."""
    if directory != HERE:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(HERE / name, directory / name)
    npm(directory, "ci", "--ignore-scripts", "--prefer-offline", check=True)
    return directory / "node_modules"


def manifest_for(modules: Path) -> dict:
    packages = {}
    for package, files in FILES.items():
        meta = json.loads((modules / package / "package.json").read_text(encoding="utf-8"))
        copied = {n: {"from": src, "sha256": sha256(modules / package / src)} for n, src in files.items()}
        packages[package] = {"version": meta["version"], "license": meta["license"], "files": copied}
    return {"packages": packages}


def main() -> int:
    modules = npm_ci(HERE)
    manifest = manifest_for(modules)
    for package, files in FILES.items():
        for name, source in files.items():
            target = STATIC / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(modules / package / source, target)
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for package, entry in manifest["packages"].items():
        print(f"{package} {entry['version']} ({entry['license']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
