"""The package's modules form layers: a module imports only modules of lower layers (the README's
layout lists them), so there is no import cycle, lazy imports inside functions included."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "relreps"

#: Lowest first. A module may import any module of a lower layer, none of its own or a higher one.
LAYERS = [
    ("__init__", "_raster", "align", "files", "paper", "plots", "precision", "projection", "vec"),
    ("notebook",),
    ("render",),
    ("envs",),
    ("evaluation",),
    ("anchors",),
    ("extractors",),
    ("algos",),
    ("zoo",),
    ("latent", "selection", "training"),
    ("stitching",),
    ("bench", "grid", "showcase", "widgets"),
    ("cli",),
    ("__main__",),
]


def _modules() -> dict[str, Path]:
    return {p.stem: p for p in PACKAGE.glob("*.py")}


def imports(path: Path, modules) -> set[str]:
    """The package modules that ``path`` imports, anywhere in the file (lazy imports included),
    except under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == "relreps":
                parts = [] if node.level == 1 and not node.module else (node.module or "").split(".")
                if node.level == 1 and node.module:
                    found.add(parts[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith("relreps."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("relreps."))
    return {m for m in found if m in modules} - {path.stem}


def test_imports_are_parsed_lazy_ones_included(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from . import a\nfrom .b import x\ndef g():\n    from relreps import c\n    import relreps.d\n"
                 "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import e\n")
    assert imports(f, {"a", "b", "c", "d", "e", "m"}) == {"a", "b", "c", "d"}


def test_every_module_has_a_layer():
    placed = [m for layer in LAYERS for m in layer]
    assert len(placed) == len(set(placed))
    assert set(placed) == set(_modules()), "place each new module of relreps/ in LAYERS (and the README)"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_a_module_imports_only_lower_layers(name):
    modules = _modules()
    rank = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    above = sorted(m for m in imports(modules[name], modules) if rank[m] >= rank[name])
    assert not above, f"relreps.{name} imports {above}, not below it"


def test_no_import_cycle():
    modules = _modules()
    graph = {name: imports(path, modules) for name, path in modules.items()}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError
