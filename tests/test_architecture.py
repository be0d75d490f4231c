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
    ("inpaintstudio.outputs", 0),
    ("inpaintstudio.boundary", 0),
    ("inpaintstudio.masks", 0),
    ("inpaintstudio.grid", 0),
    ("inpaintstudio.multiscale", 0),
    ("inpaintstudio.models.layers", 0),
    ("inpaintstudio.backbones", 0),
    ("inpaintstudio.cards", 1),
    ("inpaintstudio.models", 1),
    ("inpaintstudio.engines", 1),
    ("inpaintstudio.weights", 1),
    ("inpaintstudio.weight_sources", 1),
    ("inpaintstudio.registry", 2),
    ("inpaintstudio.classical", 2),
    ("inpaintstudio.landmarks", 2),
    ("inpaintstudio.loading", 3),
    ("inpaintstudio.selection.mobile_sam", 1),  # the network: torch only
    ("inpaintstudio.selection.command", 6),
    ("inpaintstudio.selection", 4),  # Selector loads weights through loading
    ("inpaintstudio.pipeline", 4),
    ("inpaintstudio.fetch", 4),
    ("inpaintstudio.parity", 4),
    ("inpaintstudio.metrics", 5),
    ("inpaintstudio.training.commands", 6),
    ("inpaintstudio.training", 5),
    ("inpaintstudio.clinic", 5),
    ("inpaintstudio.ui", 6),
    ("inpaintstudio.cli", 6),
    ("inpaintstudio.__main__", 7),
    ("inpaintstudio", 0),  # the package's __init__: the version only
]


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
    assert "inpaintstudio.loading" in graph["inpaintstudio.parity"]  # imported inside run_parity
    assert graph["inpaintstudio.weights"] <= {"inpaintstudio.modelcard", "inpaintstudio.errors"}
    assert graph["inpaintstudio.registry"] <= {  # weight_sources: the variants a model:variant name resolves to
        "inpaintstudio.cards", "inpaintstudio.errors", "inpaintstudio.modelcard", "inpaintstudio.weight_sources",
    }
    # metrics and training share the backbones, which sit below both
    assert "inpaintstudio.backbones" in graph["inpaintstudio.metrics"]
    assert not [t for t in graph["inpaintstudio.metrics"] if t.startswith("inpaintstudio.training")]
    for name, targets in graph.items():
        if name.startswith("inpaintstudio.cards."):
            assert targets <= {"inpaintstudio.modelcard"}, name
    assert graph["inpaintstudio.selection.mobile_sam"] == set()  # a network file imports torch, nothing of ours
