"""The package's shape: no import cycles, no oversized files, layers import downward.

Every module of ``mlaas_jupyter`` is parsed with :mod:`ast` (nothing is imported), and
every import statement counts: module-level ones, those under ``if TYPE_CHECKING:``
and those inside functions. A lazy import still ties two modules together: it only
hides the circle from the interpreter, not from the reader.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mlaas_jupyter"
MAX_LINES = 400

#: import edges (importer, imported) that may close a cycle. Each entry needs a comment
#: saying why the two modules cannot be untangled; there is none today.
ALLOWED_CYCLE_EDGES: frozenset[tuple[str, str]] = frozenset()

#: top-level layers from the bottom up: a module may import its own layer or lower ones.
#: Top-level modules not named here (the package itself, examples, demo, __main__) are
#: above everything.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "_version", "_progress", "_json"}),
    frozenset({"specs"}),
    frozenset({"stream"}),
    frozenset({"train"}),
    frozenset({"inference"}),
    frozenset({"jobs"}),
    frozenset({"core"}),
    frozenset({"web"}),
    frozenset({"client"}),
    frozenset({"cli"}),
    frozenset({"notebook"}),
)
#: layers that run anywhere (a batch job, a dask worker): no Jupyter front end in them
HEADLESS = ("stream", "train", "inference", "jobs", "core")
JUPYTER = ("jupyter_server", "IPython", "ipywidgets", "ipykernel", "tornado", "anywidget")
FRONT_ENDS = ("web", "client", "notebook", "cli")
#: the one module that talks to kernels
KERNEL_CLIENT = "mlaas_jupyter.jobs.executors.kernel"


@dataclass(frozen=True)
class Import:
    """One import statement of a module: what it names and where."""

    target: str  # a module of the package, or a top-level third-party name
    line: int
    internal: bool


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


@cache
def modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package: name -> (file, is a package)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name, is_package = _module_name(path)
        found[name] = (path, is_package)
    return found


def _known(name: str) -> str | None:
    """The longest prefix of ``name`` that is a module of the package."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


def _resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[Import]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.level == 0:
        base = node.module or ""
        names = [f"{base}.{alias.name}" for alias in node.names]
    else:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
        names = [f"{base}.{alias.name}" for alias in node.names]
    found = []
    for name in names:
        if name.split(".")[0] == "mlaas_jupyter":
            # `from .pkg import name`: a submodule when there is one, else pkg itself
            target = _known(name)
            if target is not None:
                found.append(Import(target, node.lineno, internal=True))
        else:
            found.append(Import(name.split(".")[0], node.lineno, internal=False))
    return found


@cache
def imports() -> dict[str, tuple[Import, ...]]:
    """Every import of every module, wherever in the module it stands."""
    table = {}
    for module, (path, is_package) in modules().items():
        found: list[Import] = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.extend(_resolve(module, is_package, node))
        table[module] = tuple(i for i in found if i.target != module)
    return table


def import_graph() -> dict[str, dict[str, int]]:
    """importer -> {imported module of the package: first line}, allowed edges left out."""
    graph: dict[str, dict[str, int]] = {}
    for module, found in imports().items():
        edges: dict[str, int] = {}
        for item in found:
            if item.internal and (module, item.target) not in ALLOWED_CYCLE_EDGES:
                edges.setdefault(item.target, item.line)
        graph[module] = edges
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                group.append(other)
                if other == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def cycle_path(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """A shortest cycle through the group's first module (breadth-first)."""
    start, members = group[0], set(group)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for other in sorted(graph[node]):
            if other not in members:
                continue
            if other == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if other not in came_from:
                came_from[other] = node
                queue.append(other)
    raise AssertionError(f"no cycle through {start} in {group}")


def describe(graph: dict[str, dict[str, int]], path: list[str]) -> str:
    steps = [f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(path)]
    return " -> ".join([*steps, path[-1]])


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _rank(layer: str) -> int:
    for rank, names in enumerate(LAYERS):
        if layer in names:
            return rank
    return len(LAYERS)


def _short(module: str) -> str:
    return module.removeprefix("mlaas_jupyter.")


# -- the tests -------------------------------------------------------------------------


def test_the_scanner_sees_the_package() -> None:
    graph = import_graph()
    assert len(graph) > 50
    # relative imports, at module level and inside a function (compute_stats), are edges
    assert "mlaas_jupyter.errors" in graph["mlaas_jupyter.stream.stats"]
    assert "mlaas_jupyter.stream.distributed" in graph["mlaas_jupyter.stream.stats"]
    assert "mlaas_jupyter.jobs.executors.base" in graph["mlaas_jupyter.jobs.executors.local"]
    # plug-ins are found through entry points: no module names them
    assert "mlaas_jupyter.train.torch_backend" not in graph["mlaas_jupyter.train.backend"]
    plugins = {f"mlaas_jupyter.jobs.executors.{name}" for name in ("local", "dask", "kernel")}
    assert not plugins & set(graph["mlaas_jupyter.jobs.executors"])


def test_the_cycle_finder_names_the_path() -> None:
    graph = {"a": {"b": 3}, "b": {"c": 5}, "c": {"a": 7, "d": 1}, "d": {}}
    groups = strongly_connected(graph)
    assert groups == [["a", "b", "c"]]
    path = cycle_path(graph, groups[0])
    assert path == ["a", "b", "c", "a"]
    assert describe(graph, path) == "a (line 3) -> b (line 5) -> c (line 7) -> a"


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = [
        f"{describe(graph, cycle_path(graph, group))}  [tangled: {', '.join(map(_short, group))}]"
        for group in strongly_connected(graph)
    ]
    assert not cycles, "import cycles (module (line of the import) -> ...):\n" + "\n".join(cycles)


def test_no_file_over_the_size_limit() -> None:
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "labextension" / "src").glob("*.ts"))
    assert len(files) > 50
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in files
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"files over {MAX_LINES} lines: {too_long}"


def test_layers_import_downward_only() -> None:
    upward = []
    for module, found in sorted(imports().items()):
        rank = _rank(_layer(module))
        for item in found:
            if item.internal and _rank(_layer(item.target)) > rank:
                upward.append(f"{_short(module)} (line {item.line}) imports {_short(item.target)}")
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_specs_import_no_other_layer_but_errors() -> None:
    wrong = [
        f"{_short(module)} (line {item.line}) imports {_short(item.target)}"
        for module, found in sorted(imports().items())
        if _layer(module) == "specs"
        for item in found
        if item.internal and _layer(item.target) not in ("specs", "errors")
    ]
    assert not wrong, "specs/ may import only errors:\n" + "\n".join(wrong)


@pytest.mark.parametrize("layer", HEADLESS)
def test_headless_layers_import_no_jupyter_front_end(layer: str) -> None:
    wrong = []
    for module, found in sorted(imports().items()):
        if _layer(module) != layer:
            continue
        for item in found:
            refused = (
                (item.internal and _layer(item.target) in FRONT_ENDS)
                or (not item.internal and item.target in JUPYTER)
                or (item.target == "jupyter_client" and module != KERNEL_CLIENT)
            )
            if refused:
                wrong.append(f"{_short(module)} (line {item.line}) imports {_short(item.target)}")
    assert not wrong, f"{layer}/ must run without Jupyter front ends:\n" + "\n".join(wrong)
