"""The package's layering, read from its source with ``ast`` (nothing is imported, so no torch is needed).

The floors, bottom to top (``docs/architecture.md`` explains each one and the contracts between them):

    0  shared leaves   edgeiqa (the top-level __init__), edgeiqa.errors, edgeiqa.fileio, edgeiqa.metrics,
                       edgeiqa.configs, edgeiqa.progress, edgeiqa.argtypes (never torch)
    1  runtime         edgeiqa.runtime: what ships to a device; torch-free, the floor everything stands on
    2  data            edgeiqa.data: loaders and the embedded dataset (uses the runtime's preprocessing)
    3  models          edgeiqa.models: teachers, students, registry (uses the runtime's contract)
    4  distill         edgeiqa.distill: training stages, checkpoints, score calibration
    5  export          edgeiqa.export: checkpoint -> artifact + manifest, parity gate
    6  bench           edgeiqa.bench: timing, memory, accuracy and result files of any artifact or checkpoint
    7  report          edgeiqa.report: result files merged into tables, pages, Pareto plots, a recommendation
    8  applications    edgeiqa.experiment, edgeiqa.cli, edgeiqa.pipeline, edgeiqa.quickstart: the experiment
                       file (training + export: + bench:) and what wires the floors together for a user

A module may import its own floor and the floors below it, never one above. ``edgeiqa.runtime`` is
stricter: besides itself it may import only the shared leaves that need no torch (errors, fileio,
metrics, progress); backends that need more (the torch runner) are *registered into* it from above
through ``edgeiqa.runtime.runners.register`` (the torch runner, ``edgeiqa.distill.torch_runner``, is
found through its entry point), never imported by it.

Both rules count function-level (lazy) imports, ``if TYPE_CHECKING:`` imports and modules named in a
string for ``importlib`` (``"edgeiqa.x.y"`` or an entry-point style ``"edgeiqa.x.y:func"``): a lazy
import postpones a dependency and a string hides it, neither removes it. The cycle rule counts function-level
imports as well:
the two module cycles issue 10 names (``report`` <-> ``report_html``, ``onnx_export`` <-> ``onnx_int8``)
are each lazy on one side, and a cycle rule over module-level imports alone would pass while they stand.
Left out of the cycle rule: imports under ``if TYPE_CHECKING:`` (they never run, so they cannot form an
import cycle; annotations are the one legitimate reason for a backward reference) and string-named
modules (``edgeiqa.export``'s PEP 562 table resolves a name on first use, after every import finished).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "edgeiqa"

LEAVES = (
    "edgeiqa.errors",
    "edgeiqa.fileio",
    "edgeiqa.metrics",
    "edgeiqa.configs",
    "edgeiqa.progress",
    "edgeiqa.argtypes",
)
RUNTIME_MAY_IMPORT = ("edgeiqa.errors", "edgeiqa.fileio", "edgeiqa.metrics", "edgeiqa.progress")
FLOORS: tuple[tuple[str, ...], ...] = (
    ("edgeiqa", *LEAVES),
    ("edgeiqa.runtime",),
    ("edgeiqa.data",),
    ("edgeiqa.models",),
    ("edgeiqa.distill",),
    ("edgeiqa.export",),
    ("edgeiqa.bench",),
    ("edgeiqa.report",),
    (
        "edgeiqa.experiment",
        "edgeiqa.cli",
        "edgeiqa.predict_cli",
        "edgeiqa.speed_cli",
        "edgeiqa.pipeline",
        "edgeiqa.quickstart",
    ),
)
# A whole string that names a module of the package, optionally with ":attribute" (importlib, plugins).
_MODULE_STRING = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::[A-Za-z_][\w.]*)?$")
BELOW_BENCH = ("edgeiqa.data", "edgeiqa.models", "edgeiqa.distill", "edgeiqa.export", "edgeiqa.runtime")
MEASURING = ("edgeiqa.bench", "edgeiqa.report")


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    # (imported module, line, how): how is "module" (runs at import), "function" (lazy), "typing"
    # (under TYPE_CHECKING) or "string" (a module named in a string constant, for importlib)
    imports: list[tuple[str, int, str]] = field(default_factory=list)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    """The absolute name ``from <...> import`` refers to (relative imports resolved against the package)."""
    if not node.level:
        return node.module or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _collect(module: Module, node: ast.AST, how: str, known: set[str]) -> None:
    for child in ast.iter_child_nodes(node):
        child_how = how
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and how == "module":
            child_how = "function"
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                _collect(module, ast.Module(body=[stmt], type_ignores=[]), "typing", known)
            for stmt in child.orelse:
                _collect(module, ast.Module(body=[stmt], type_ignores=[]), how, known)
            continue
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            match = _MODULE_STRING.match(child.value)
            if match and match.group(1) in known:
                module.imports.append((match.group(1), child.lineno, "string"))
        if isinstance(child, ast.Import):
            module.imports += [(alias.name, child.lineno, child_how) for alias in child.names]
        elif isinstance(child, ast.ImportFrom):
            target = _resolve(module, child)
            # ``from edgeiqa.models import lite_weights`` depends on that submodule, not on what the
            # package's __init__ defines (a package's __init__ runs for any submodule import anyway).
            submodules = [f"{target}.{alias.name}" for alias in child.names if f"{target}.{alias.name}" in known]
            if len(submodules) < len(child.names):
                module.imports.append((target, child.lineno, child_how))
            module.imports += [(name, child.lineno, child_how) for name in submodules]
        _collect(module, child, child_how, known)


def walk_package(root: Path, top: str) -> dict[str, Module]:
    """Every module under ``root`` (named ``top``...), with the imports of other modules of the package."""
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [top, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, path, is_package)
    known = set(modules)
    for module in modules.values():
        _collect(module, ast.parse(module.path.read_text(encoding="utf-8"), str(module.path)), "module", known)
        module.imports = [
            (name, line, how) for name, line, how in module.imports if name == top or name.startswith(top + ".")
        ]
    return modules


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def floor_of(name: str) -> int:
    # The longest matching prefix wins: edgeiqa.runtime.x is floor 1, not floor 0 through "edgeiqa".
    matches = [
        (len(prefix), level)
        for level, prefixes in enumerate(FLOORS)
        for prefix in prefixes
        if _within(name, prefix) and not (prefix == "edgeiqa" and name != "edgeiqa")
    ]
    if not matches:
        raise KeyError(name)
    return max(matches)[1]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative: the recursion limit must not decide the test)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return found


def import_graph(modules: dict[str, Module], hows: tuple[str, ...]) -> dict[str, set[str]]:
    return {
        m.name: {name for name, _, how in m.imports if how in hows and name in modules and name != m.name}
        for m in modules.values()
    }


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return walk_package(PACKAGE_ROOT, "edgeiqa")


def _where(module: Module, name: str, line: int, how: str) -> str:
    return f"{module.path.relative_to(PACKAGE_ROOT.parent)}:{line} imports {name} ({how}-level)"


def test_every_module_has_a_floor(modules: dict[str, Module]) -> None:
    unplaced = []
    for name in modules:
        try:
            floor_of(name)
        except KeyError:
            unplaced.append(name)
    assert not unplaced, f"give these modules a floor in FLOORS (and docs/architecture.md): {unplaced}"


def test_nothing_below_bench_imports_bench_or_report(modules: dict[str, Module]) -> None:
    bad = [
        _where(m, name, line, how)
        for m in modules.values()
        if any(_within(m.name, p) for p in BELOW_BENCH)
        for name, line, how in m.imports
        if any(_within(name, p) for p in MEASURING)
    ]
    assert not bad, "\n".join(bad)


def test_runtime_imports_only_itself_and_the_shared_leaves(modules: dict[str, Module]) -> None:
    bad = [
        _where(m, name, line, how)
        for m in modules.values()
        if _within(m.name, "edgeiqa.runtime")
        for name, line, how in m.imports
        if not _within(name, "edgeiqa.runtime") and not any(_within(name, leaf) for leaf in RUNTIME_MAY_IMPORT)
    ]
    assert not bad, "\n".join(bad)


def test_no_module_imports_a_floor_above_its_own(modules: dict[str, Module]) -> None:
    bad = [
        f"{_where(m, name, line, how)}: floor {floor_of(m.name)} -> {floor_of(name)}"
        for m in modules.values()
        for name, line, how in m.imports
        if name in modules and floor_of(name) > floor_of(m.name)
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_modules(modules: dict[str, Module]) -> None:
    cycles = strongly_connected(import_graph(modules, ("module", "function")))
    assert not cycles, f"import cycles (module- or function-level imports): {cycles}"


# -- the walker itself: it must see what the rules above rely on ------------------------------------------
def test_walker_resolves_relative_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import X\ndef f():\n    from .. import c\n"
    )
    (pkg / "c.py").write_text("def g():\n    import pkg.a\n")
    (pkg / "d.py").write_text('PLUGINS = {"x": "pkg.sub.b:f"}\nNOTE = "pkg.sub is a package"\n')
    mods = walk_package(pkg, "pkg")
    assert mods["pkg.d"].imports == [("pkg.sub.b", 1, "string")]
    assert ("pkg.sub.b", 1, "module") in mods["pkg.a"].imports
    assert mods["pkg.sub"].imports == [("pkg.sub.b", 1, "module")]  # the submodule, not the package itself
    assert ("pkg.a", 3, "typing") in mods["pkg.sub.b"].imports
    assert ("pkg.c", 5, "function") in mods["pkg.sub.b"].imports
    # a -> sub.b -(lazy)-> c -(lazy)-> a is a cycle; the TYPE_CHECKING edge b -> a alone would not be one
    assert strongly_connected(import_graph(mods, ("module", "function"))) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    assert strongly_connected(import_graph(mods, ("module",))) == []


def test_floor_of_picks_the_longest_prefix() -> None:
    assert floor_of("edgeiqa") == 0 and floor_of("edgeiqa.metrics") == 0
    assert floor_of("edgeiqa.runtime.runners.base") == 1
    assert floor_of("edgeiqa.bench.worker") == 6 and floor_of("edgeiqa.report.writer") == 7
    assert floor_of("edgeiqa.experiment") == floor_of("edgeiqa.cli") == 8
    with pytest.raises(KeyError):
        floor_of("edgeiqa.newthing")
