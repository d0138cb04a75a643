"""The layers stay apart: no adapter imports another, and nothing below the adapters imports one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "testledger"
ADAPTERS = ("testledger.cli", "testledger.pytest_plugin", "testledger.api", "testledger.mcp_server")
#: The composition root: builds the HTTP app from the API and MCP adapters for the commands that run it.
ROOTS = ("testledger.__main__", "testledger.server")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _module(path: Path) -> str:
    return ".".join(("testledger", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_an_adapter_other_than_its_own(path: Path) -> None:
    module = _module(path)
    own = next((adapter for adapter in ADAPTERS if module.startswith(adapter)), None)
    if module in ROOTS:
        return  # `python -m testledger` is the CLI's entry point; `server` composes the adapters
    foreign = {name for name in _imports(path) if name.startswith(ADAPTERS) and not name.startswith(own or "-")}
    assert not foreign, f"{module} imports the adapter(s) {sorted(foreign)}"


def test_services_return_no_orm_objects() -> None:
    """Public service functions are annotated with schemas (or plain values), never table classes."""
    from testledger.db import analytics_tables, tables

    orm = {name for module in (tables, analytics_tables) for name, value in vars(module).items()
           if isinstance(value, type) and issubclass(value, tables.Base) and value is not tables.Base}
    offenders = []
    for path in (SRC / "services").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.returns is not None:
                returned = {n.id for n in ast.walk(node.returns) if isinstance(n, ast.Name)}
                returned |= {n.value for n in ast.walk(node.returns) if isinstance(n, ast.Constant)
                             and isinstance(n.value, str)}
                if returned & orm:
                    offenders.append(f"{path.name}:{node.name} -> {ast.unparse(node.returns)}")
    assert offenders == []
