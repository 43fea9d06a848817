"""The chat page's vendored libraries (static/vendor/) are what tools/vendor/package-lock.json pins:
the manifest's versions are the lockfile's, the files' hashes are the manifest's and, where npm is
installed, a fresh ``npm ci`` of the lockfile yields the same bytes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "vendor"
TOOLS = ROOT / "tools" / "vendor"
MANIFEST = json.loads((VENDOR / "manifest.json").read_text(encoding="utf-8"))["packages"]


def refresh_module():
    spec = importlib.util.spec_from_file_location("vendor_refresh", TOOLS / "refresh.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_manifest_pins_the_lockfiles_versions():
    lock = json.loads((TOOLS / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    declared = json.loads((TOOLS / "package.json").read_text(encoding="utf-8"))["dependencies"]
    assert {name: entry["version"] for name, entry in MANIFEST.items()} == {
        name: lock[f"node_modules/{name}"]["version"] for name in MANIFEST
    }
    # package.json pins exact versions, the ones locked.
    assert {name: lock[f"node_modules/{name}"]["version"] for name in declared} == declared


def test_every_vendored_file_has_the_manifests_hash():
    listed = {name: entry["sha256"] for p in MANIFEST.values() for name, entry in p["files"].items()}
    on_disk = {
        path.relative_to(VENDOR).as_posix()
        for path in VENDOR.rglob("*")
        if path.is_file() and path.name not in ("README.md", "manifest.json")
    }
    assert on_disk == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert {
        n: {f: e["from"] for f, e in p["files"].items()} for n, p in MANIFEST.items()
    } == refresh_module().FILES


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the byte-for-byte comparison with npm ci needs it")
    return refresh_module().npm_ci(tmp_path_factory.mktemp("vendor-npm-ci"))


def test_the_vendored_files_are_npm_cis_bytes(installed):
    for package, entry in MANIFEST.items():
        for name, file in entry["files"].items():
            assert (VENDOR / name).read_bytes() == (installed / package / file["from"]).read_bytes(), name
    assert refresh_module().manifest_for(installed) == {"packages": MANIFEST}
