"""The architecture, enforced: module size, no import cycles, who may import the simulator,
and a command line that starts without the heavy libraries.

The import graph is read from the source with :mod:`ast`, not from ``sys.modules``, so an
import inside a function counts as much as one at the top: it closes a cycle the first time
that function runs. Imports under ``if TYPE_CHECKING:`` never run; they count for the layer
rules (a dependency is a dependency) but not for cycles.

Run it as a script to print what the rules find today, without pytest::

    python tests/test_layout.py
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "glmeval"
MAX_LINES = 650

HEAVY = ("pandas", "numpy", "zhipuai", "httpx", "jinja2", "jsonschema", "pydantic")
# Only these harness modules start the local server, so only they may import it.
SIMULATOR_STARTERS = {"glmeval.session", "glmeval.cli.serve", "glmeval.cli.run"}
# The simulator stands in for the remote API: it must not know the harness that calls it.
SIMULATOR_MUST_NOT_IMPORT = ("glmeval.run", "glmeval.suite", "glmeval.store", "glmeval.report", "glmeval.cli")


@dataclass(frozen=True)
class Edge:
    """One import statement of ``source`` that loads ``target`` (both dotted module names)."""

    source: str
    target: str
    path: Path
    line: int
    typing_only: bool

    def where(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name; a package is named by its ``__init__.py``."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest glmeval module ``name`` starts with, or None for another distribution's."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_import_module_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "import_module"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _import_nodes(tree: ast.AST) -> Iterator[tuple[ast.AST, bool]]:
    """Every import statement (and ``importlib.import_module("...")`` call with a constant name)
    anywhere in the tree, with whether it sits under ``if TYPE_CHECKING:``."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, typing_only = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)) or _is_import_module_call(node):
            yield node, typing_only
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((child, True) for child in node.body)
            stack.extend((child, typing_only) for child in node.orelse)
            continue
        stack.extend((child, typing_only) for child in ast.iter_child_nodes(node))


def import_edges(modules: dict[str, Path] | None = None) -> list[Edge]:
    """Every import between glmeval modules, function-level ones included.

    ``import glmeval.x.y`` and ``from glmeval.x import y`` (y a module) load ``glmeval.x.y``;
    ``from glmeval.x import name`` loads ``glmeval.x``; relative imports resolve against the
    importing module's package. Loading a submodule is not counted as importing its parent
    package's ``__init__``: that is Python's bookkeeping, not a dependency the code chose.
    """
    modules = module_files() if modules is None else modules
    edges = []
    for source, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node, typing_only in _import_nodes(tree):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_resolve(alias.name, modules) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else _resolve(base, modules))
            elif isinstance(node, ast.Call):
                first = node.args[0]
                assert isinstance(first, ast.Constant)
                targets = [_resolve(str(first.value), modules)]
            line = getattr(node, "lineno", 0)
            for target in dict.fromkeys(targets):
                if target is not None and target != source:
                    edges.append(Edge(source, target, path, line, typing_only))
    return edges


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of size > 1 (the import cycles), each sorted,
    largest first. Iterative, so a deep graph cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return sorted(found, key=lambda c: (-len(c), c))


def import_cycles(edges: list[Edge] | None = None) -> list[tuple[list[str], list[Edge]]]:
    """Each cycle among glmeval's runtime imports, with the import statements inside it."""
    edges = import_edges() if edges is None else edges
    runtime = [e for e in edges if not e.typing_only]
    graph: dict[str, set[str]] = {}
    for edge in runtime:
        graph.setdefault(edge.source, set()).add(edge.target)
    cycles = []
    for members in strongly_connected(graph):
        inside = set(members)
        cycles.append((members, [e for e in runtime if e.source in inside and e.target in inside]))
    return cycles


def describe_cycles(cycles: list[tuple[list[str], list[Edge]]]) -> str:
    lines = []
    for members, edges in cycles:
        lines.append(f"cycle of {len(members)}: {{{', '.join(members)}}}")
        lines.extend(f"    {e.source} -> {e.target}  ({e.where()})" for e in sorted(edges, key=lambda e: (e.source, e.line)))
    return "\n".join(lines)


def long_modules(limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """Modules over ``limit`` lines, longest first."""
    counts = [(name, len(path.read_text(encoding="utf-8").splitlines())) for name, path in module_files().items()]
    return sorted(((n, c) for n, c in counts if c > limit), key=lambda item: -item[1])


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_violations(edges: list[Edge] | None = None) -> list[str]:
    """Imports across the harness/simulator line that the architecture forbids."""
    edges = import_edges() if edges is None else edges
    problems = []
    for e in edges:
        in_simulator = _within(e.source, "glmeval.simulator")
        if not in_simulator and _within(e.target, "glmeval.simulator") and e.source not in SIMULATOR_STARTERS:
            problems.append(
                f"{e.where()}: {e.source} imports the simulator ({e.target}); only {sorted(SIMULATOR_STARTERS)} start it"
            )
        if in_simulator and any(_within(e.target, layer) for layer in SIMULATOR_MUST_NOT_IMPORT):
            problems.append(f"{e.where()}: the simulator ({e.source}) imports the harness ({e.target})")
    return problems


def modules_loaded_by(args: list[str]) -> set[str]:
    """Every module a ``python -m glmeval ARGS`` process imports, from ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "glmeval", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            loaded.add(line.rsplit("|", 1)[1].strip())
    assert "glmeval.cli" in loaded, "no -X importtime output to read"
    return loaded


# --- the tests ---


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_import_graph_is_read_as_documented(tmp_path: Path) -> None:
    """A guard on the reader itself, on a package made for it: if it missed imports, every
    rule below would pass vacuously."""
    _write(
        tmp_path / "pkg",
        {
            "__init__.py": "import importlib\ndef lazy():\n    return importlib.import_module('pkg.b')\n",
            "a.py": "from pkg.sub import c\nfrom pkg.sub.c import thing\nimport pkg.sub.d as d\n",
            "b.py": "def later():\n    from . import a\n    from .sub import name_in_init\n",
            "sub/__init__.py": "name_in_init = 1\n",
            "sub/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..b import later\nfrom .. import a\n",
            "sub/d.py": "import os\nfrom pkg.sub.c import not_a_module\n",
        },
    )
    modules = module_files(tmp_path / "pkg")
    assert sorted(modules) == ["pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.sub.d"]
    edges = {(e.source, e.target, e.typing_only) for e in import_edges(modules)}
    assert edges == {
        ("pkg", "pkg.b", False),  # importlib.import_module with a constant name
        ("pkg.a", "pkg.sub.c", False),  # `from pkg.sub import c`, c a module; not pkg.sub itself
        ("pkg.a", "pkg.sub.d", False),
        ("pkg.b", "pkg.a", False),  # function-level, relative
        ("pkg.b", "pkg.sub", False),  # a name defined in a package's __init__
        ("pkg.sub.c", "pkg.b", True),  # under TYPE_CHECKING
        ("pkg.sub.c", "pkg.a", False),
        ("pkg.sub.d", "pkg.sub.c", False),  # os is not the package's
    }
    cycles = import_cycles(import_edges(modules))
    # a -> c -> a and a -> d -> c -> a; c -> b is TYPE_CHECKING only, so b is not in it.
    assert [members for members, _ in cycles] == [["pkg.a", "pkg.sub.c", "pkg.sub.d"]]


def test_the_real_graph_has_the_imports_it_should() -> None:
    pairs = {(e.source, e.target) for e in import_edges()}
    assert ("glmeval.cli.serve", "glmeval.simulator") in pairs  # a function-level import
    assert ("glmeval.cli", "glmeval.cli.run") in pairs


def test_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"], ["d", "e"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_module_is_over_the_line_limit() -> None:
    over = long_modules()
    assert not over, f"modules over {MAX_LINES} lines: " + ", ".join(f"{n} ({c})" for n, c in over)


def test_no_import_cycles() -> None:
    cycles = import_cycles()
    assert not cycles, "import cycles (function-level imports count):\n" + describe_cycles(cycles)


def test_only_the_starters_import_the_simulator_and_it_never_imports_the_harness() -> None:
    problems = layer_violations()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"], ["report", "--help"]], ids=" ".join)
def test_the_command_line_starts_without_heavy_libraries(args: list[str]) -> None:
    loaded = modules_loaded_by(args)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"`glmeval {' '.join(args)}` imported {sorted({m.split('.')[0] for m in heavy})}"


def test_the_report_command_offers_every_report_format() -> None:
    """``glmeval report --format`` spells the format names so its help needs no pandas."""
    from glmeval.cli.report import FORMATS as CLI_FORMATS
    from glmeval.report import FORMATS

    assert tuple(CLI_FORMATS) == tuple(FORMATS)


def main() -> None:
    """Print what the rules find in the tree as it is now."""
    edges = import_edges()
    cycles = import_cycles(edges)
    print(f"{len(module_files())} modules, {len(edges)} imports between them")
    print(describe_cycles(cycles) if cycles else "no import cycles")
    over = long_modules()
    print("\n".join(f"over {MAX_LINES} lines: {n} ({c})" for n, c in over) if over else f"no module over {MAX_LINES} lines")
    problems = layer_violations(edges)
    print("\n".join(problems) if problems else "simulator layering: ok")


if __name__ == "__main__":
    main()
