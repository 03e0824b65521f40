"""Small helpers every chapter uses: the smoke switch, plotly's renderer, where we run.

- :data:`SMOKE` is true when the environment variable ``RELREPS_SMOKE`` is ``1`` (the tests and CI
  set it): chapters then shrink every long loop, with :func:`pick`, so the whole book runs in
  minutes. The built book runs in full mode (``RELREPS_SMOKE`` unset).
- :func:`setup` makes plotly figures show in the built HTML (and in Jupyter and on Colab), through
  :func:`figure_html`: a figure as a responsive HTML fragment that needs no CDN in the built book.
- :func:`on_colab` tells whether the kernel runs on Google Colab.
"""

from __future__ import annotations

import copy
import hashlib
import html
import itertools
import json
import os
import sys
from typing import Any, TypeVar

__all__ = ["RENDERER", "SMOKE", "figure_html", "on_colab", "pick", "setup"]

#: The name of the plotly renderer :func:`setup` registers: :func:`figure_html` as ``text/html``.
RENDERER = "relreps"

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
    ``colab`` on Colab, and :data:`RENDERER` elsewhere: each figure becomes the HTML of
    :func:`figure_html`, which the built book shows with the site's own copy of plotly.js (and
    Jupyter with plotly.js from its CDN, fetched once). Plotly's default in a kernel,
    ``plotly_mimetype``, shows blank in static HTML. Plotly's default template becomes
    :data:`relreps.plots.TEMPLATE`, so figures a chapter builds itself look like the package's.
    """
    import plotly.io as pio
    from plotly.io.base_renderers import MimetypeRenderer

    class _Renderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict: Any) -> dict[str, str]:
            return {"text/html": figure_html(fig_dict)}

    from . import plots

    pio.renderers[RENDERER] = _Renderer()
    pio.templates.default = plots.TEMPLATE
    name = os.environ.get("PLOTLY_RENDERER") or ("colab" if on_colab() else RENDERER)
    pio.renderers.default = name
    return name


_FIGURES = itertools.count(1)


def _caption(text: str) -> str:
    """A plotly title as HTML: escaped, with plotly's line breaks as spaces and its b/i/sub/sup kept."""
    out = html.escape(text.replace("<br>", " "), quote=False)
    for tag in ("b", "i", "sub", "sup"):
        out = out.replace(f"&lt;{tag}&gt;", f"<{tag}>").replace(f"&lt;/{tag}&gt;", f"</{tag}>")
    return out


def figure_html(fig: Any) -> str:
    """A plotly figure (a ``Figure`` or its dict) as a self-drawing, responsive HTML fragment.

    - The figure fills the width of its column; ``layout.width`` becomes its ``max-width``, so it
      never overflows a narrow screen. Figures made by :mod:`relreps.plots` with
      ``keep_aspect`` (image grids) keep their proportions as they shrink; others keep their height.
    - The title moves out of the figure into a caption above it, where it wraps at any width; the
      space :mod:`relreps.plots` kept for it (``layout.meta["relreps"]["title_space"]``) is given back.
    - The script draws with the page's ``window.Plotly`` (the built book loads its own copy, once
      per page); without one (Jupyter) it loads plotly.js from its CDN, once, then draws. It
      includes no MathJax. After drawing it calls ``window.relrepsFigureTheme(div)`` when the page
      defines it (the book's dark mode).
    """
    from plotly.io.json import to_json_plotly
    from plotly.offline import get_plotlyjs_version

    fig_dict = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig
    layout: dict[str, Any] = copy.deepcopy(dict(fig_dict.get("layout") or {}))
    meta = layout.get("meta")
    ours: dict[str, Any] = meta.get("relreps", {}) if isinstance(meta, dict) else {}
    title = layout.pop("title", None)
    text = title.get("text") if isinstance(title, dict) else title
    if text and ours.get("title_space"):
        margin = dict(layout.get("margin") or {})
        if "t" in margin:
            margin["t"] = max(10, int(margin["t"]) - int(ours["title_space"]))
            layout["margin"] = margin
        if layout.get("height"):
            layout["height"] = int(layout["height"]) - int(ours["title_space"])
    width = layout.pop("width", None)
    height = layout.get("height")
    style = ["width:100%"]
    if width:
        style.append(f"max-width:{int(width)}px")
    if ours.get("keep_aspect") and width and height:
        layout.pop("height")
        style.append(f"aspect-ratio:{int(width)}/{int(height)}")
    else:
        style.append(f"height:{int(height) if height else 450}px")
    layout["autosize"] = True
    payload = to_json_plotly({"data": fig_dict.get("data") or [], "layout": layout})
    # the same figures give the same page: the id comes from the content and the figure's rank
    digest = hashlib.sha256(payload.encode()).hexdigest()[:10]
    div_id = f"relreps-{next(_FIGURES)}-{digest}"
    payload = payload.replace("</", "<\\/")  # never closes the script element early
    caption = ""
    if text:
        caption = f'<p class="relreps-figure-title">{_caption(str(text))}</p>\n'
    cdn = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    return (
        f'<div class="relreps-figure">\n{caption}'
        f'<div id="{div_id}" class="plotly-graph-div" style="{";".join(style)}"></div>\n'
        "<script type=\"text/javascript\">\n(function () {\n"
        f"  var fig = {payload};\n"
        "  function draw() {\n"
        f'    Plotly.newPlot("{div_id}", fig.data, fig.layout, {{"responsive": true, "displaylogo": false}})'
        ".then(function (gd) { if (window.relrepsFigureTheme) { window.relrepsFigureTheme(gd); } });\n"
        "  }\n"
        "  if (window.Plotly) { draw(); return; }\n"
        '  var s = document.getElementById("relreps-plotlyjs");\n'
        '  if (!s) { s = document.createElement("script"); s.id = "relreps-plotlyjs";\n'
        f"    s.src = {json.dumps(cdn)}; document.head.appendChild(s); }}\n"
        '  s.addEventListener("load", draw);\n'
        "})();\n</script>\n</div>"
    )
