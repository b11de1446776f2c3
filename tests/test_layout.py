"""Dependencies point one way: api -> services -> {streaming, providers, stores}; nothing imports api."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "chatstream"

# Which top-level parts each part may import (config, errors and security are leaves anyone may use).
ALLOWED = {
    "api": {"api", "services", "schemas", "streaming", "providers", "stores"},
    "services": {"services", "streaming", "providers", "rag", "stores"},
    "streaming": {"streaming", "providers"},
    "providers": {"providers"},
    "rag": {"rag"},
    "stores": {"stores"},
    "schemas": {"schemas"},
    "migrations": {"stores"},
}
LEAVES = {"config", "errors", "security", "__init__"}


def chatstream_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chatstream."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("chatstream.")}
    return found


def test_imports_point_one_way() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part not in ALLOWED:
            continue
        for imported in chatstream_imports(path) - LEAVES - ALLOWED[part]:
            problems.append(f"{path.relative_to(PACKAGE)} imports chatstream.{imported}")
    assert problems == []


def test_only_main_imports_the_routes() -> None:
    importers = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if "api" in chatstream_imports(p) and p.relative_to(PACKAGE).parts[0] != "api"
    ]
    assert importers == ["main.py"]
