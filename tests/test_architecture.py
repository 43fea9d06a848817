"""The app's modules import one another one way (docs: README "Architecture"): no import cycle
anywhere, late imports inside functions included, and in ``streaming/`` every package imports
only from its own layer or those below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("streaming", "citations", "evi360")

# Lower layers first. A module may import its own layer's and lower layers' modules only.
LAYERS = (
    {"streaming.models", "streaming.text"},
    {"streaming.store"},
    {"streaming.access"},
    # The event log stores and relays the engine's events: of the engine it knows only their
    # shapes and encoding (test_the_event_log_knows_only_the_engines_events).
    {"streaming.engine", "streaming.eventlog"},
    {
        "streaming.api",
        "streaming.openai",
        "streaming.aisdk",
        "streaming.web",
        "streaming.monitoring",
        "streaming.admin",
    },
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The app modules ``path`` imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` imports the module; `from module import name` the module.
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        found.update(name for name in names if name in modules)
    return found - {module_name(path)}


MODULES = app_modules()
GRAPH = {name: imports_of(path, MODULES) for name, path in MODULES.items()}


def _package_import(importer: str, imported: str) -> bool:
    # A package's __init__ importing its own submodules, or a submodule its package: not a cycle.
    return imported.startswith(importer + ".") or importer.startswith(imported + ".")


def test_the_graph_sees_the_apps_imports():
    assert "streaming.engine.runtime" in GRAPH["streaming.engine.shutdown"]
    assert "streaming.models" in GRAPH["streaming.store.writes"]


def test_no_import_cycle():
    edges = {m: {i for i in imported if not _package_import(m, i)} for m, imported in GRAPH.items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            pytest.fail("import cycle: " + " → ".join((*path[path.index(module) :], module)))
        if module not in done:
            for imported in sorted(edges[module]):
                visit(imported, (*path, module))
            done.add(module)

    for module in sorted(edges):
        visit(module, ())


def layer_of(module: str) -> int | None:
    for index, layer in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in layer):
            return index
    return None


def test_streaming_packages_import_downwards_only():
    wrong = []
    for module, imported in GRAPH.items():
        # apps.py connects signals in ready(): it imports what it wires, from any layer.
        if (own := layer_of(module)) is None or module == "streaming.apps":
            continue
        for target in imported:
            if (theirs := layer_of(target)) is not None and theirs > own:
                wrong.append(f"{module} → {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_every_streaming_module_has_a_layer():
    unplaced = [
        m
        for m in GRAPH
        if m.startswith("streaming.")
        and layer_of(m) is None
        and m not in {"streaming.apps", "streaming.urls"}
        and not m.startswith("streaming.management")
    ]
    assert not unplaced, unplaced


def test_the_event_log_knows_only_the_engines_events():
    allowed = {"streaming.engine.events", "streaming.engine.wire"}
    wrong = [
        f"{module} → {target}"
        for module, imported in GRAPH.items()
        if module.startswith("streaming.eventlog")
        for target in imported
        if target.startswith("streaming.engine") and target not in allowed
    ]
    assert not wrong, wrong
