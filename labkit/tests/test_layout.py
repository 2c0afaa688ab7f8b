"""The library's import structure, read from the source with ``ast``: no import cycle among labkit
modules, and every module imports only from its own layer or the layers below it.

Imports inside functions count (they run too); imports under ``if TYPE_CHECKING:`` do not (they
never run). A new module must be given a layer in :data:`LAYERS` before this test passes.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the labkit folder

#: Lowest first. A module may import from its own layer and the layers before it.
LAYERS = (
    ("base", ("labkit", "labkit._checks", "labkit._workers", "labkit.rundir")),
    ("maths", ("labkit.ot", "labkit.toys", "labkit.divergences", "labkit.metrics")),
    ("models", ("labkit.models",)),
    ("games", ("labkit.gan",)),
    ("data", ("labkit.lsun", "labkit.images", "labkit.datasets", "labkit.digits",
              "labkit.checkpoint", "labkit.distributed")),
    ("training", ("labkit.train",)),
    ("experiments", ("labkit.critics", "labkit.study")),
    ("presentation", ("labkit.plots", "labkit.publish")),
    ("apps", ("labkit.widgets", "labkit.digits_experiment")),
    ("command line", ("labkit.cli", "labkit.__main__")),
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(source: str) -> set[str]:
    """Every absolute import in ``source`` as dotted names (``from a import b`` gives ``a.b``),
    skipping the bodies of ``if TYPE_CHECKING:``."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package (``root``) it imports; tests left out."""
    paths = {module_name(p, root): p for p in root.rglob("*.py") if "tests" not in p.parts}
    graph = {}
    for name, path in paths.items():
        edges = set()
        for imported in imported_names(path.read_text()):
            while imported and imported not in paths:  # ``from a import b``: b may be a name
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported != root.name:
                edges.add(imported)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layer_of(module: str, layers=LAYERS) -> int:
    """The index of the layer that holds ``module`` (a package holds its submodules)."""
    for index, (_, members) in enumerate(layers):
        if any(module == m or module.startswith(m + ".") for m in members):
            return index
    raise LookupError(f"{module} has no layer in LAYERS; give it one")


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """Each import of a module from a higher layer, as ``"a (layer) -> b (layer)"``."""
    return [f"{a} ({layers[layer_of(a, layers)][0]}) -> {b} ({layers[layer_of(b, layers)][0]})"
            for a in sorted(graph) for b in sorted(graph[a])
            if layer_of(b, layers) > layer_of(a, layers)]


# ------------------------------------------------------------------ the library
def test_labkit_has_no_import_cycle():
    assert find_cycle(import_graph(ROOT)) is None


def test_every_module_has_a_layer_and_imports_nothing_above_it():
    graph = import_graph(ROOT)
    assert len(graph) > 30 and "labkit.train.loop" in graph
    for module in graph:
        layer_of(module)
    assert upward_imports(graph) == []


def test_the_games_and_the_training_loop_stay_below_their_users():
    graph = import_graph(ROOT)
    gan = {m for m in graph if m.startswith("labkit.gan")}
    assert not any(b.startswith("labkit.train") for a in gan for b in graph[a])
    train = {m for m in graph if m.startswith("labkit.train")}
    users = {"labkit.cli", "labkit.study", "labkit.plots", "labkit.widgets", "labkit.critics"}
    assert not {b for a in train for b in graph[a]} & users


# ------------------------------------------------------------------ the checks can fail
def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_crafted_cycle_is_found(tmp_path):
    pkg = _write(tmp_path / "pkg", {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def f():\n    from pkg.c import g\n",  # inside a function: it still runs
        "c.py": "import pkg.a\n\ndef g():\n    pass\n",
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg.d"] == set()  # TYPE_CHECKING imports never run
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    del graph["pkg.c"]
    assert find_cycle(graph) is None


def test_a_crafted_upward_import_is_found():
    layers = (("low", ("pkg.low",)), ("high", ("pkg.high",)))
    graph = {"pkg.low": {"pkg.high.x"}, "pkg.high.x": set()}
    assert upward_imports(graph, layers) == ["pkg.low (low) -> pkg.high.x (high)"]
    with pytest.raises(LookupError, match="pkg.other has no layer"):
        layer_of("pkg.other", layers)
