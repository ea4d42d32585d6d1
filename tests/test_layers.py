"""The import layers of DESIGN.md hold, and no module needs another to be imported first.

    cli -> cli_commands, cli_args -> demo, tune, report, cluster -> train -> methods -> data, models
        -> track, config, registry -> errors, typed, home, log, console, resources, ray_runtime

Imports point down only (imports inside functions count: grimp reads every import statement),
no module imports another package's underscore names, and there are no import cycles.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
from grimp import Layer

REPO = Path(__file__).resolve().parents[1]
LAYERS = [("cli",), ("cli_commands", "cli_args"), ("demo", "tune", "report", "cluster"), ("train",), ("methods",), ("data", "models"),
          ("track", "config", "registry"), ("errors", "typed", "home", "log", "console", "resources", "ray_runtime")]


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("zsar", "zsar.methods")


def test_every_package_is_in_a_layer(graph):
    placed = {name for layer in LAYERS for name in layer}
    top = {m.split(".")[1] for m in graph.modules if m.count(".") >= 1}
    assert top <= placed, f"packages with no layer in DESIGN.md: {sorted(top - placed)}"


def test_imports_point_down_only(graph):
    layers = [Layer(*[f"zsar.{n}" for n in layer], independent=False) for layer in LAYERS]
    illegal = graph.find_illegal_dependencies_for_layers(layers=layers)
    shown = [f"{d.importer} -> {d.imported}: " + "; ".join(" -> ".join(r.heads | set(r.middle) | r.tails) for r in d.routes)
             for d in illegal]
    assert not illegal, "\n".join(shown)


def _cycles(adjacency: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adjacency[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in adjacency:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles(graph):
    adjacency = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(adjacency) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _module_files():
    for root, package in ((REPO / "platform", "zsar"), (REPO / "methods", "zsar.methods")):
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield path, ".".join([package, *parts])


def test_no_module_imports_another_packages_underscore_names():
    bad = []
    for path, module in _module_files():
        own_package = module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zsar"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__") and \
                            node.module.rsplit(".", 1)[0] != own_package and node.module != own_package:
                        bad.append(f"{module}: from {node.module} import {alias.name}")
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and isinstance(node.value, ast.Name) and node.value.id in ("runner", "ckpt", "track", "prepared"):
                bad.append(f"{module}: {node.value.id}.{node.attr}")
    assert bad == []


@pytest.mark.integration  # a fresh interpreter, every module imported on its own (~5 s)
def test_each_module_imports_alone():
    """Every module imports in a fresh interpreter state of zsar (no other zsar module first),
    so no import works only because of the order in which others ran."""
    modules = [m for _, m in _module_files()]
    script = (
        "import importlib, sys\n"
        f"failed = []\nfor m in {modules!r}:\n"
        "    for k in [k for k in sys.modules if k == 'zsar' or k.startswith('zsar.')]:\n"
        "        del sys.modules[k]\n"
        "    try:\n        importlib.import_module(m)\n"
        "    except Exception as e:\n        failed.append(f'{m}: {type(e).__name__}: {e}')\n"
        "print('\\n'.join(failed))\nsys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
