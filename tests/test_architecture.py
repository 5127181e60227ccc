"""The import direction of ARCHITECTURE.md: files → ingest → store/engines → rules → scoring → present → api
→ cli, checked on the source with ast (no module is imported to check it)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "chuanliu_cli"


@dataclass(frozen=True)
class Import:
    """One `import` statement: the importing module, the module imported, the names, where."""

    module: str
    target: str
    names: tuple[str, ...]
    line: int
    top_level: bool  # executed when the module is imported (not in a function, not under TYPE_CHECKING)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports() -> list[Import]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

        def visit(node: ast.AST, top: bool, module: str = module, path: Path = path) -> None:
            for child in ast.iter_child_nodes(node):
                deferred = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or (
                    isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
                )
                if deferred:
                    visit(child, False)
                elif isinstance(child, ast.Import):
                    for alias in child.names:
                        found.append(Import(module, alias.name, (), child.lineno, top))
                elif isinstance(child, ast.ImportFrom):
                    target = _resolve(module, path.name == "__init__.py", child)
                    names = tuple(a.name for a in child.names)
                    found.append(Import(module, target, names, child.lineno, top))
                else:
                    visit(child, top)

        visit(tree, True)
    return [i for i in found if i.target.startswith("chuanliu_cli")]


IMPORTS = _imports()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _where(i: Import) -> str:
    return f"{i.module}:{i.line} imports {i.target}"


def test_the_scan_finds_the_package() -> None:
    modules = {i.module for i in IMPORTS}
    assert {"chuanliu_cli.api", "chuanliu_cli.cli.app", "chuanliu_cli.scoring.pipeline"} <= modules


def test_nothing_imports_the_cli() -> None:
    # __main__ is the other entry point of the command line (python -m chuanliu_cli)
    bad = [
        _where(i)
        for i in IMPORTS
        if i.target.startswith("chuanliu_cli.cli")
        and _layer(i.module) != "cli"
        and i.module != "chuanliu_cli.__main__"
    ]
    assert bad == []


def test_only_the_cli_imports_the_api() -> None:
    bad = [
        _where(i)
        for i in IMPORTS
        if i.target == "chuanliu_cli.api" and _layer(i.module) not in ("cli", "api")
    ]
    assert bad == []


#: Lower layers never reach up: what each may not import.
FORBIDDEN = {
    "ingest": ("present", "cli", "api", "scoring"),
    "store": ("present", "cli", "api"),
    "engines": ("present", "cli", "api"),
    "rules": ("present", "cli", "api", "scoring"),
    "scoring": ("present", "cli", "api"),
    "present": ("cli", "api"),
}


@pytest.mark.parametrize("layer", FORBIDDEN)
def test_lower_layers_do_not_import_upper_ones(layer: str) -> None:
    bad = [_where(i) for i in IMPORTS if _layer(i.module) == layer and _layer(i.target) in FORBIDDEN[layer]]
    assert bad == []


def test_the_cli_builds_no_sql() -> None:
    bad = [
        _where(i)
        for i in IMPORTS
        if _layer(i.module) == "cli"
        and (
            i.target.startswith(("chuanliu_cli.rules.compiler", "chuanliu_cli.sqltext"))
            or "sqlglot" in i.target
        )
    ]
    assert bad == []
    for path in (PACKAGE / "cli").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import duckdb" not in text and ".execute(" not in text, path


def test_no_module_imports_private_names_of_another() -> None:
    bad = [
        f"{_where(i)} ({name})"
        for i in IMPORTS
        for name in i.names
        if name.startswith("_") and not name.startswith("__") and i.target != i.module
    ]
    assert bad == []


def test_no_import_cycles_at_module_level() -> None:
    modules = {i.module for i in IMPORTS}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for i in IMPORTS:
        if not i.top_level:
            continue
        targets = {i.target} | {f"{i.target}.{n}" for n in i.names}
        graph[i.module] |= {t for t in targets if t in modules and t != i.module}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == []
