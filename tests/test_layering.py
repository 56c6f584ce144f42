"""Imports flow one way (STYLE.md's layer table), checked with ``ast``.

A cheap stand-in for import-linter: each pbxis module may import only the
pbxis modules listed for it here. The sans-I/O core (protocol, actions,
commands, model, scope, digest) must not import socket, threading or time.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pbxis"

ALLOWED = {
    "errors": set(),
    "events": set(),
    "config": set(),
    "backoff": set(),
    "protocol": set(),
    "versions": set(),
    "model": {"versions"},
    "scope": {"events"},
    "actions": {"protocol"},
    "commands": {"actions", "config", "errors", "protocol", "versions"},
    "digest_queues": {"events", "model", "protocol", "actions", "versions"},
    "digest_calls": {"events", "model", "protocol", "actions", "versions"},
    "digest": {"digest_queues", "digest_calls", "events", "model", "protocol", "actions",
               "versions"},
    "channels": {"events", "scope"},
    "transport": {"backoff", "commands", "config", "errors", "protocol"},
    "control": {"actions", "commands", "config", "digest", "errors", "protocol", "versions"},
    "client": {"actions", "channels", "commands", "config", "control", "digest", "errors",
               "events", "protocol", "scope", "transport", "versions"},
    "notebook": {"client", "events", "cli"},
    "cli": {"client", "errors", "events", "sim", "config", "notebook", "__version__"},
    "__main__": {"cli"},
    "__init__": {"channels", "client", "commands", "errors", "events"},
}
# backoff takes random.random only as its default, injectable source.
PURE = {"errors", "events", "config", "protocol", "versions", "model", "scope", "actions",
        "commands", "digest", "digest_calls", "digest_queues"}
IMPURE_STDLIB = {"socket", "threading", "time", "select", "random"}


def pbxis_imports(path: Path) -> tuple[set[str], set[str]]:
    """(pbxis modules imported, stdlib top-level modules imported)."""
    tree = ast.parse(path.read_text())
    inner: set[str] = set()
    outer: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    inner.add(node.module.split(".")[0])
                else:
                    inner.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module:
                if node.module.startswith("pbxis"):
                    parts = node.module.split(".")
                    inner.add(parts[1] if len(parts) > 1 else "__init__")
                else:
                    outer.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                outer.add(alias.name.split(".")[0])
    return inner, outer


@pytest.mark.parametrize("module", sorted(p.stem for p in PKG.glob("*.py")))
def test_module_imports_only_lower_layers(module):
    assert module in ALLOWED, f"new module {module}: add it to the layer table"
    inner, outer = pbxis_imports(PKG / f"{module}.py")
    assert inner <= ALLOWED[module], f"{module} imports {sorted(inner - ALLOWED[module])}"
    if module in PURE:
        impure = outer & IMPURE_STDLIB
        assert not impure, f"{module} is sans-I/O but imports {impure}"


def test_simulator_uses_only_the_protocol():
    for path in (PKG / "sim").glob("*.py"):
        inner, _ = pbxis_imports(path)
        tree = ast.parse(path.read_text())
        parents = {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module
        }
        assert parents <= {"protocol"}, f"{path.name} imports pbxis.{sorted(parents)}"
