"""The chapters follow the book's template and are stored clean (the notebooks themselves are run
by nbval: `book/` is in pytest's testpaths)."""

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"].get("branch", "main")


def _toc_files(node) -> list[str]:
    out = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(node["file"])
        for v in node.values():
            out += _toc_files(v)
    elif isinstance(node, list):
        for v in node:
            out += _toc_files(v)
    return out


TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def test_every_chapter_is_in_the_toc_and_exists():
    listed = [TOC["root"], *_toc_files(TOC)]
    for f in listed:
        assert list(ROOT.glob(f + ".*")), f"{f} is in _toc.yml but has no file"
    for nb in CHAPTERS:
        assert nb.relative_to(ROOT).with_suffix("").as_posix() in listed, f"{nb.name} not in _toc.yml"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_stored_clean_and_follows_the_template(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "store notebooks without outputs"
    # first cell: title and a Colab badge pointing at this very notebook in the configured repository
    first = nb.cells[0].source
    assert first.startswith("# ")
    slug = REPO_URL.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/book/{path.name}"
    assert colab in first, f"Colab link should be {colab}"
    assert "Objectives" in first
    # exactly one install cell, acting only on Colab, installing from the configured repository
    installs = [c.source for c in nb.cells if c.cell_type == "code" and "pip install" in c.source]
    assert len(installs) == 1
    assert 'if "google.colab" in sys.modules:' in installs[0]
    assert f"git+{REPO_URL}" in installs[0]
    urls = set(re.findall(r"github\.com/[\w.-]+/[\w.-]+", "\n".join(c.source for c in nb.cells)))
    assert urls <= {f"github.com/{slug}"}, f"other repository URLs: {urls}"
    assert nb.cells[-1].source.startswith("## Summary")
