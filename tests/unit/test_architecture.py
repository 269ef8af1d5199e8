"""The import rules of docs/architecture.md, checked on the source (ast, nothing imported).

- The ``arena`` app never imports the ``judges`` app (judges builds on arena), and
  neither imports ``config`` (the wiring).
- The pure packages import neither Django nor the apps' Django modules.
- No import cycles between modules (function-local imports included).
- A function-local import says why, in a comment on its line or the line above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("arena", "judges", "config", "llm")
PURE = (
    "arena/ratings",
    "arena/matchmaking",
    "arena/importers/formats",
    "judges/audit_metrics",
    "llm",
    "arena/rubrics",  # a module (arena/rubrics.py)
)
# The pure modules a pure package may import besides its own.
PURE_MAY_IMPORT = (
    "arena.vocabulary",
    "arena.rubrics",
    "arena.ratings",
    "arena.importers.formats",
    "arena.importers.records",
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path):
    """(imported module, line, is function-local) for every project import of a file."""
    tree = ast.parse(path.read_text(), str(path))
    local = {
        id(node)
        for scope in ast.walk(tree)
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(scope)
    }
    module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module_name.split(".")
                base = base[: len(base) - node.level]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES + ("django",):
                yield name, node.lineno, id(node) in local


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (``arena.models.Judge`` -> arena.models)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def test_arena_never_imports_judges():
    offenders = [
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {name}"
        for m in MODULES
        if m.split(".")[0] == "arena"
        for name, line, _ in _imports(MODULES[m])
        if name.split(".")[0] == "judges"
    ]
    assert not offenders, "\n".join(offenders)


def test_the_apps_never_import_config():
    """config wires the apps together; the apps do not reach back into the wiring."""
    offenders = [
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {name}"
        for m in MODULES
        if m.split(".")[0] in ("arena", "judges", "llm")
        for name, line, _ in _imports(MODULES[m])
        if name.split(".")[0] == "config"
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_stay_pure(package):
    prefix = package.replace("/", ".")
    offenders = [
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {name}"
        for m in MODULES
        if m == prefix or m.startswith(prefix + ".")
        for name, line, _ in _imports(MODULES[m])
        if not name.startswith(prefix) and not name.startswith(PURE_MAY_IMPORT)
    ]
    if (ROOT / package).exists() or (ROOT / f"{package}.py").exists():
        assert not offenders, "\n".join(offenders)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for name, _, _ in _imports(path):
            target = _resolve(name)
            # A package's __init__ re-exporting its own submodules is not a cycle.
            if target and target != module and not target.startswith(module + "."):
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules():
    assert _cycles(_graph()) == []


def test_function_local_imports_say_why():
    offenders = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for name, line, is_local in _imports(path):
            here, above = lines[line - 1], lines[line - 2] if line > 1 else ""
            if is_local and "#" not in here and not above.strip().startswith("#"):
                offenders.append(f"{path.relative_to(ROOT)}:{line} {name}")
    assert not sorted(set(offenders)), "\n".join(sorted(set(offenders)))


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
