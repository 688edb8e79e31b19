"""The package's layout: rooms by concern, no import cycle between them, commands apart from the libraries.

A room is a top-level module (`colorjax/runs.py`) or a subpackage (`colorjax/inference/`). The graph is built from
the AST of every file, function-level imports included (a cycle hidden in a function is still a cycle), by the
rules `../shared/tools/rooms.py` uses; `colorjax/__init__.py` and `colorjax/__main__.py` (the dispatcher) are the
package's face and entry point, not rooms.
"""

import ast
import importlib
import tomllib
from pathlib import Path

import pytest
from helpers.paths import REPO

PACKAGE = REPO / "colorjax"
MAX_TOP_LEVEL_MODULES = 14
# The commands of the brief: `python -m colorjax.NAME` works for each.
MODULE_ENTRY_POINTS = ("train", "colorize", "evaluate", "report", "prior", "bench", "weights", "export", "serve")


def room_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0][:-3] if len(parts) == 1 else parts[0]


def imported_modules(path: Path) -> list[str]:
    """Every colorjax module a file imports, anywhere in it (relative imports resolved)."""
    targets = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(path.relative_to(PACKAGE).parts[:-1])[: len(path.relative_to(PACKAGE).parts) - node.level]
                module = ".".join(["colorjax", *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "colorjax":
                targets += [f"colorjax.{alias.name}" for alias in node.names]
            else:
                targets.append(module)
    return [t for t in targets if t.startswith("colorjax.")]


def room_graph() -> dict[str, set[str]]:
    files = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]
    rooms = {room_of(p) for p in files} - {"__init__", "__main__"}
    graph: dict[str, set[str]] = {room: set() for room in rooms}
    for path in files:
        source = room_of(path)
        if source not in rooms:
            continue
        for module in imported_modules(path):
            target = module.split(".")[1]
            if target in rooms and target != source:
                graph[source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one room (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(room: str) -> None:
        index[room] = low[room] = len(index)
        stack.append(room)
        for other in sorted(graph[room]):
            if other not in index:
                visit(other)
                low[room] = min(low[room], low[other])
            elif other in stack:
                low[room] = min(low[room], index[other])
        if low[room] == index[room]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == room:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for room in sorted(graph):
        if room not in index:
            visit(room)
    return found


def test_the_room_graph_has_no_cycle():
    graph = room_graph()
    assert {"data", "models", "weights", "train", "evaluation", "inference", "video", "serve", "cli"} <= set(graph)
    assert cycles(graph) == []


def test_a_cycle_is_found_when_there_is_one():
    """The checker itself: a graph with a loop through three rooms is reported."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_library_room_imports_the_commands():
    importers = sorted(room for room, targets in room_graph().items() if "cli" in targets)
    assert importers == []


def test_weights_import_no_model_and_the_low_rooms_import_nothing_above_them():
    graph = room_graph()
    assert "models" not in graph["weights"] and "runs" not in graph["weights"]
    for low in ("color", "files", "quantize", "config_lib"):
        assert graph[low] <= {"color", "quantize", "files"}, (low, graph[low])


def test_the_top_level_holds_at_most_14_modules():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def test_every_command_has_a_thin_module_an_entry_point_and_a_console_script():
    from colorjax.__main__ import COMMANDS

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["colorjax"] == "colorjax.__main__:main"
    for name, (module, _) in COMMANDS.items():
        assert callable(importlib.import_module(f"colorjax.cli.{module}").run), name
        assert f"colorjax-{name}" in scripts, name
    for name in MODULE_ENTRY_POINTS:
        assert name in COMMANDS
        assert (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name / "__main__.py").is_file(), name


@pytest.mark.parametrize("room", ["runs", "inference", "evaluation", "serve", "video"])
def test_one_loaded_model_type(room):
    """`runs.Run` is the only "model + config + variables" type: no room defines another loader class."""
    names = {
        node.name
        for path in ([PACKAGE / f"{room}.py"] if (PACKAGE / f"{room}.py").is_file() else (PACKAGE / room).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    }
    assert not names & {"LoadedModel", "LoadedRun", "PublishedModel"}
