"""The layers of app/ (docs/architecture.md): no import cycles, and nothing above the
repositories reaches the database."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

APP = ROOT / "app"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in APP.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(name: str) -> set[str]:
    """The modules ``name`` imports when it is loaded (imports inside functions and under
    ``TYPE_CHECKING`` left out), as module names, of app/ and of other packages."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported: set[str] = set()
    pending = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and not _is_type_checking(node):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                imported.add(submodule if submodule in MODULES else base)
    return imported


GRAPH = {name: {m for m in module_level_imports(name) if m in MODULES} for name in MODULES}


def test_app_has_no_import_cycle():
    # Depth-first search; a module met again while still on the path closes a cycle.
    cycles = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for imported in sorted(GRAPH[name]):
            if state.get(imported) == "open":
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


VIEWS_AND_LOADERS = sorted(
    name
    for name in MODULES
    if name.startswith("app.api.") and name not in {"app.api.contract", "app.api.docs"}
)


@pytest.mark.parametrize("name", VIEWS_AND_LOADERS)
def test_views_and_loaders_do_not_reach_the_database(name):
    imported = module_level_imports(name)
    assert not {m for m in imported if m.split(".")[0] == "sqlalchemy"}
    assert not {m for m in imported if m == "app.storage" or m.startswith("app.storage.")}
    assert "app.extensions" not in imported


def test_only_repositories_use_the_storage_layer():
    users = {
        name
        for name, imported in GRAPH.items()
        if any(m == "app.storage" or m.startswith("app.storage.") for m in imported)
        and not name.startswith("app.storage")
    }
    # The app factory sets the storage layer up; the repositories use it.
    assert {name for name in users if not name.startswith("app.repositories.")} == {"app"}


def test_domain_rules_import_neither_flask_nor_the_database():
    for name in MODULES:
        if name.startswith("app.domain"):
            roots = {m.split(".")[0] for m in module_level_imports(name)}
            assert not roots & {"flask", "sqlalchemy", "flask_sqlalchemy"}, name
            assert not {m for m in module_level_imports(name) if m.startswith("app.")} - {
                m for m in MODULES if m.startswith("app.domain")
            }, name


def test_no_module_imports_a_private_name_of_another():
    private = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "",
                "app",
            ):
                private += [
                    f"{name}: {alias.name}" for alias in node.names if alias.name.startswith("_")
                ]
    assert private == []


def test_no_test_module_imports_another():
    imports = []
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            if module.startswith("tests.") and module != "tests.support":
                imports.append(f"{path.relative_to(ROOT)}: {module}")
    assert imports == []
