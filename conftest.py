"""pytest configuration for the whole repository (unit tests and notebook tests).

Set here, before any test or notebook kernel starts (nbval's kernels inherit the environment):

- ``RELREPS_SMOKE=1``: chapters shrink their long loops (see :mod:`relreps.notebook`); run
  ``RELREPS_SMOKE=0 python3 -m pytest book`` to test the notebooks in full mode;
- ``PLOTLY_RENDERER=json``: figures become a small JSON output instead of HTML with plotly.js;
- ``SDL_VIDEODRIVER=dummy``: pygame never looks for a display.

Every notebook test (a cell of book/*.ipynb run by nbval) is marked ``slow``: ``pytest -m "not slow"``
is the fast loop (see tests/conftest.py).
"""

import os

import pytest

os.environ.setdefault("RELREPS_SMOKE", "1")
os.environ.setdefault("PLOTLY_RENDERER", "json")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
