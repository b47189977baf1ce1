"""The layers, checked on the import graph: the library imports none of our demo, lab or examples; its
protocol imports neither side; the client and the worker extension do not import each other; and the
repository's import graph has no cycle.

The graph is read from the source with ``ast`` (every import statement, including those inside functions,
but not those under ``if TYPE_CHECKING:``, which never run), then confirmed at run time in a fresh
interpreter that imports every library module and finds none of the demo's in ``sys.modules``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"celery_futures": ROOT, "worker": ROOT, "producer": ROOT, "acme": ROOT / "examples" / "own_app"}
OURS_OUTSIDE_THE_LIBRARY = ("worker", "producer", "acme", "tests", "examples")


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package, base in PACKAGES.items():
        for path in sorted((base / package).rglob("*.py")):
            found[module_name(path, base)] = path
    return found


def runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run: everything but the bodies of ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for branch in node.orelse for n in runtime_imports(branch))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from runtime_imports(node)


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules ``name`` imports: ``from a import b`` counts as ``a.b`` where that is a module, else ``a``."""
    targets: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in runtime_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parent, base] if base else parent)
        for alias in node.names:
            targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return targets


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def offenders(graph: dict[str, set[str]], source: str, forbidden: tuple[str, ...]) -> dict[str, set[str]]:
    """Each module under ``source`` that imports something under ``forbidden``, with what it imports."""
    found = {name: {t for t in targets if within(t, forbidden)}
             for name, targets in graph.items() if within(name, (source,))}
    return {name: targets for name, targets in found.items() if targets}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles among the graph's own modules (a depth-first search; each cycle found is listed)."""
    ours = {name: {t for t in targets if t in graph and t != name} for name, targets in graph.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in visiting:
            return [*visiting[visiting.index(name):], name]
        if name in done:
            return None
        visiting.append(name)
        for target in sorted(ours[name]):
            if (cycle := visit(target)) is not None:
                return cycle
        visiting.pop()
        done.add(name)
        return None

    found = []
    for name in sorted(ours):
        visiting.clear()
        if (cycle := visit(name)) is not None:
            found.append(cycle)
    return found


def test_the_checks_see_what_they_look_for() -> None:
    planted = {"celery_futures.client.x": {"worker.app", "redis"}, "a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert offenders(planted, "celery_futures", OURS_OUTSIDE_THE_LIBRARY) == {"celery_futures.client.x": {"worker.app"}}
    assert cycles(planted)[0] == ["a", "b", "a"]


def test_the_library_imports_nothing_of_the_demo_the_lab_or_the_examples(graph: dict[str, set[str]]) -> None:
    assert len([name for name in graph if name.startswith("celery_futures")]) > 30  # the graph was really read
    assert offenders(graph, "celery_futures", OURS_OUTSIDE_THE_LIBRARY) == {}


def test_the_protocol_imports_neither_side(graph: dict[str, set[str]]) -> None:
    assert offenders(graph, "celery_futures.protocol", ("celery_futures.client", "celery_futures.worker")) == {}


def test_the_client_and_the_worker_extension_do_not_import_each_other(graph: dict[str, set[str]]) -> None:
    assert offenders(graph, "celery_futures.client", ("celery_futures.worker",)) == {}
    assert offenders(graph, "celery_futures.worker", ("celery_futures.client",)) == {}


def test_the_example_imports_only_the_library(graph: dict[str, set[str]]) -> None:
    assert offenders(graph, "acme", ("worker", "producer", "tests")) == {}


def test_the_import_graph_has_no_cycle(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_at_run_time_the_library_loads_nothing_of_ours_but_itself() -> None:
    library = sorted(name for name in modules() if name.startswith("celery_futures"))
    code = ("import importlib, sys\n"
            f"for name in {library!r}: importlib.import_module(name)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {OURS_OUTSIDE_THE_LIBRARY!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_a_gevent_worker_can_import_the_protocol_before_it_patches() -> None:
    """What ``python -m worker`` imports before monkey-patching must not load ssl, socket users or redis."""
    code = ("import sys, celery_futures.protocol.pools, worker.cli; "
            "print(sorted(m for m in ('ssl', 'redis', 'kombu', 'celery') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"
