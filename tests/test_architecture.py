"""The package's import graph: no circles (imports inside functions count) and no arrow pointing up a layer."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "inpaintstudio"

# Layer of each module, bottom up; a module may import only from its own layer or lower ones. The first
# matching prefix wins, so put the longer ones first.
LAYERS: list[tuple[str, int]] = [
    ("inpaintstudio.errors", 0),
    ("inpaintstudio.modelcard", 0),
    ("inpaintstudio.trainspec", 0),
    ("inpaintstudio.io", 0),
    ("inpaintstudio.cli.boundary", 0),
    ("inpaintstudio.core.maskops", 0),
    ("inpaintstudio.core.grid", 0),
    ("inpaintstudio.classical.multiscale", 0),
    ("inpaintstudio.models.layers", 0),
    ("inpaintstudio.training.backbones", 0),
    ("inpaintstudio.classical.card", 1),
    ("inpaintstudio.models", 1),  # each folder's card and network
    ("inpaintstudio.core.engines", 1),
    ("inpaintstudio.weights.fetch", 4),
    ("inpaintstudio.weights", 1),  # the store and the sources (fetch sits above the loading layer)
    ("inpaintstudio.registry", 2),
    ("inpaintstudio.classical.engines", 2),
    ("inpaintstudio.face.landmarks", 2),
    ("inpaintstudio.core.loading", 3),
    ("inpaintstudio.core.pipeline", 4),
    ("inpaintstudio.core.parity", 4),
    ("inpaintstudio.core", 1),  # the package's __init__: a docstring
    ("inpaintstudio.selection.command", 6),
    ("inpaintstudio.selection", 4),  # the Selector loads weights through loading
    ("inpaintstudio.training.metrics", 5),
    ("inpaintstudio.training", 5),
    ("inpaintstudio.face", 5),
    ("inpaintstudio.ui", 6),
    ("inpaintstudio.cli", 6),
    ("inpaintstudio.__main__", 7),
    ("inpaintstudio", 0),  # the package's __init__: the version only
]

# At most this many modules at the package root, and none named like a module of a subpackage.
MAX_ROOT_MODULES = 8


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    modules = _module_names()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _layer(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} has no layer in tests/test_architecture.py")


def test_no_import_points_up_a_layer() -> None:
    upward = [
        f"{source} (layer {_layer(source)}) imports {target} (layer {_layer(target)})"
        for source, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(source) and target != "inpaintstudio"
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "\n".join(" -> ".join(circle) for circle in circles)


def test_the_graph_sees_imports_inside_functions() -> None:
    graph = _graph()
    assert "inpaintstudio.core.loading" in graph["inpaintstudio.core.parity"]  # imported inside run_parity
    assert graph["inpaintstudio.weights.store"] <= {"inpaintstudio.modelcard", "inpaintstudio.errors"}
    assert graph["inpaintstudio.registry"] <= {  # the sources: the variants a model:variant name resolves to
        "inpaintstudio.models", "inpaintstudio.errors", "inpaintstudio.modelcard", "inpaintstudio.weights.sources",
    }
    # metrics and training share the backbones, which sit below both
    assert "inpaintstudio.training.backbones" in graph["inpaintstudio.training.metrics"]
    # a card is torch-free data: it may name the card types, the sources' types and a sibling model's card
    for name, targets in graph.items():
        if name.endswith(".card"):
            allowed = {"inpaintstudio.modelcard", "inpaintstudio.weights.sources"}
            assert all(t in allowed or t.endswith(".card") for t in targets), (name, targets)
    assert graph["inpaintstudio.models.mobile_sam.network"] == set()  # a network file imports torch, nothing of ours


def test_the_tree_shows_the_layers() -> None:
    root = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root
    nested = {path.stem for path in PACKAGE.glob("*/**/*.py")}
    assert not (set(root) - {"__init__"}) & nested, set(root) & nested
    for folder in sorted(p for p in (PACKAGE / "models").iterdir() if p.is_dir() and p.name != "layers"):
        if folder.name.startswith("__"):
            continue
        assert {"__init__.py", "card.py", "network.py"} <= {p.name for p in folder.iterdir()}, folder
