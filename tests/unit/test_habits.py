"""Habits the code keeps, checked: every public handler and client method says what it is
for, and the server never imports the code that runs inside kernels."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "jupyter_interp_ext"


def public_definitions(path: Path, methods: bool):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and not node.name.startswith("_"):
            yield node.name, node
            if methods and isinstance(node, ast.ClassDef):
                for member in node.body:
                    is_function = isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef)
                    if is_function and not member.name.startswith("_") and not overload(member):
                        yield f"{node.name}.{member.name}", member


def overload(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """An `@overload` signature (its implementation carries the docstring)."""
    return any(ast.unparse(d).endswith("overload") for d in function.decorator_list)


def test_public_handlers_and_client_methods_have_docstrings():
    missing = [
        f"{path.relative_to(PACKAGE)}:{name}"
        for folder, methods in (("handlers", False), ("client", True))
        for path in sorted((PACKAGE / folder).glob("*.py"))
        for name, node in public_definitions(path, methods)
        if not ast.get_docstring(node)
    ]
    assert missing == []


def test_nothing_in_the_server_imports_the_code_that_runs_in_kernels():
    importers = []
    for path in PACKAGE.rglob("*.py"):
        if "in_kernel" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and "in_kernel" in (node.module or ""):
                importers.append(str(path.relative_to(PACKAGE)))
    assert importers == []
