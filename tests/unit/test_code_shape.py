"""The house rules that keep the code readable, where no linter rule says them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LONGEST_FUNCTION = 60
LONGEST_CREATE_APP = 60


def functions(folder: str) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node))
    return found


def length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return (node.end_lineno or node.lineno) - node.lineno + 1


@pytest.mark.parametrize("folder", ["services", "shared"])
def test_no_function_is_longer_than_a_screen(folder: str) -> None:
    long = [
        f"{where} ({length(node)} lines)"
        for where, node in functions(folder)
        if length(node) > LONGEST_FUNCTION
    ]
    assert long == []


def test_each_app_is_wiring_that_fits_on_a_screen() -> None:
    apps = [(w, n) for w, n in functions("services") if n.name == "create_app"]
    assert len(apps) == 4
    assert [w for w, n in apps if length(n) >= LONGEST_CREATE_APP] == []
