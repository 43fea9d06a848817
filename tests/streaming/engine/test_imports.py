"""The engine's modules import one another one way: no cycle, so none reaches another's
state through a late import."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[3] / "streaming" / "engine"


def engine_imports() -> dict[str, set[str]]:
    names = {path.stem for path in ENGINE.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in ENGINE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):  # late imports inside functions too
            if isinstance(node, ast.ImportFrom) and node.module == "streaming.engine":
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("streaming.engine."):
                found.add(node.module.rsplit(".", 1)[1])  # type: ignore[union-attr]
        graph[path.stem] = (found & names) - {path.stem}
    return graph


def test_no_import_cycle_in_the_engine():
    graph = engine_imports()
    assert graph["shutdown"] == {"runtime"}  # it reads the runtime, not generate
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " → ".join((*path, module))
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
