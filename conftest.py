"""pytest configuration for the whole repository (unit tests and notebook tests).

Set here, before any test or notebook kernel starts (nbval's kernels inherit the environment):

- ``RELREPS_SMOKE=1``: chapters shrink their long loops (see :mod:`relreps.notebook`); run
  ``RELREPS_SMOKE=0 python3 -m pytest book`` to test the notebooks in full mode;
- ``PLOTLY_RENDERER=json``: figures become a small JSON output instead of HTML with plotly.js;
- ``SDL_VIDEODRIVER=dummy``: pygame never looks for a display.
"""

import os

os.environ.setdefault("RELREPS_SMOKE", "1")
os.environ.setdefault("PLOTLY_RENDERER", "json")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
