"""Small helpers every chapter uses: the smoke switch, plotly's renderer, where we run.

- :data:`SMOKE` is true when the environment variable ``RELREPS_SMOKE`` is ``1`` (the tests and CI
  set it): chapters then shrink every long loop, with :func:`pick`, so the whole book runs in
  minutes. The built book runs in full mode (``RELREPS_SMOKE`` unset).
- :func:`setup` makes plotly figures show in the built HTML (and in Jupyter and on Colab).
- :func:`on_colab` tells whether the kernel runs on Google Colab.
"""

from __future__ import annotations

import os
import sys
from typing import TypeVar

__all__ = ["SMOKE", "on_colab", "pick", "setup"]

T = TypeVar("T")

#: True when ``RELREPS_SMOKE=1``: chapters shrink their long loops (read once, at import).
SMOKE: bool = os.environ.get("RELREPS_SMOKE", "").strip().lower() in ("1", "true", "yes", "on")


def pick(full: T, smoke: T) -> T:
    """``smoke`` in smoke mode, else ``full``: ``n_steps = pick(full=300, smoke=60)``."""
    return smoke if SMOKE else full


def on_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def setup() -> str:
    """Choose plotly's default renderer and return its name.

    ``PLOTLY_RENDERER``, when set, wins (plotly reads it itself; the tests use ``json``). Otherwise
    ``colab`` on Colab and ``notebook_connected`` elsewhere: figures carry ``text/html`` that loads
    plotly.js from its CDN, which the built book shows (plotly's default in a kernel,
    ``plotly_mimetype``, shows blank in static HTML).
    """
    import plotly.io as pio

    name = os.environ.get("PLOTLY_RENDERER") or ("colab" if on_colab() else "notebook_connected")
    pio.renderers.default = name
    return name
