"""The house keeps standing: the package's imports (read with ast, nothing executed) have no
cycle, no layer imports from a layer above it, and no private name crosses a package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "convbench"

# Bottom to top: a module may import from its own layer or one below (README, "Layout").
LAYERS: tuple[tuple[str, ...], ...] = (
    ("problems", "measure", "units"),
    ("backends",),
    ("algorithms",),
    ("oracle",),
    ("run", "suites", "fuzz"),
    ("analysis",),
    ("report",),
    ("api",),
    ("models",),
    ("commands", "cli", "__main__", "__init__"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) for every import of convbench in `path`, absolute or relative."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, ()) for a in node.names if a.name.startswith("convbench")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("convbench"):
            found.append((node.module, tuple(a.name for a in node.names)))
    return found


def resolve(module: str, names: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """The modules an import reaches: `from pkg import sub` names a module; else the names are
    attributes of the deepest known module."""
    targets = []
    for name in names or (None,):
        full = f"{module}.{name}" if name else module
        targets.append((full, None) if full in MODULES else (deepest(module), name))
    return targets


def deepest(module: str) -> str:
    while module not in MODULES and "." in module:
        module = module.rpartition(".")[0]
    return module


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, path in MODULES.items():
        for module, names in imported(path):
            for target, _ in resolve(module, names):
                if target != m and not m.startswith(target + "."):  # own package __init__
                    graph[m].add(target)
    return graph


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module}: package {top!r} has no layer in LAYERS")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while component[-1:] != [v]:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer() -> None:
    for m in MODULES:
        layer(m)


def test_no_import_cycle() -> None:
    assert cycles(edges()) == []


def test_no_layer_imports_from_a_layer_above() -> None:
    upward = [f"{m} -> {t}" for m, targets in edges().items() for t in targets
              if m != "convbench" and layer(t) > layer(m)]
    assert upward == []


def test_no_private_name_crosses_a_package() -> None:
    crossing = []
    for m, path in MODULES.items():
        package = m.rpartition(".")[0] if path.name != "__init__.py" else m
        for module, names in imported(path):
            for target, name in resolve(module, names):
                private = name if name and name.startswith("_") else None
                if private and not target.startswith(package):
                    crossing.append(f"{m} imports {target}.{private}")
    assert crossing == []


@pytest.mark.parametrize("fake", ["convbench/measure/fake.py", "convbench/problems/fake.py"])
def test_an_upward_import_would_be_caught(fake: str) -> None:
    """The check is not vacuous: a measure/ or problems/ module importing run/ fails it."""
    m = fake.removesuffix(".py").replace("/", ".")
    assert layer(m) < layer("convbench.run.runner")


def readme_layout() -> str:
    text = (PACKAGE.parent / "README.md").read_text()
    start = text.index("\n## Layout")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_readme_layout_names_every_package_and_module() -> None:
    section = readme_layout()
    for package in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        assert f"`convbench/{package.name}/`" in section, package.name
        for module in package.glob("*.py"):
            if module.stem != "__init__":
                assert f"`{module.name}`" in section or f"`{module.stem}`" in section, module


def test_readme_layout_names_only_files_that_exist() -> None:
    import re

    for path in re.findall(r"`((?:convbench|benchmarks|tests)/[\w/.]+)`", readme_layout()):
        assert (PACKAGE.parent / path.rstrip("/")).exists(), path
