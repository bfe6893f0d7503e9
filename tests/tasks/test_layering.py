"""`tasks` sits below `training` and `marketplace`: no module of it imports them (not even in a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TASKS = Path(__file__).resolve().parents[2] / "tasks"
HIGHER = ("training", "marketplace", "bcfl_site")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(TASKS.rglob("*.py")), ids=lambda p: str(p.relative_to(TASKS)))
def test_tasks_never_imports_a_higher_app(path):
    upward = {m for m in imported_modules(path) if m.split(".")[0] in HIGHER}
    assert not upward, f"{path} imports {sorted(upward)}"


def test_no_service_or_module_is_too_long():
    for path in [*TASKS.rglob("*.py")]:
        if "migrations" in path.parts:
            continue
        lines = path.read_text().splitlines()
        assert len(lines) <= 400, f"{path} has {len(lines)} lines"
        tree = ast.parse("\n".join(lines))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 60, f"{path}:{node.lineno} {node.name} has {length} lines"
