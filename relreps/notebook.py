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
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["RENDERER", "RESULTS_URL", "SMOKE", "figure_html", "on_colab", "pick", "results_file", "setup"]

#: Where a chapter on Colab (no clone of the repository) reads the repository's ``results/``.
RESULTS_URL = "https://raw.githubusercontent.com/relreps-book/relreps-book/main/results/"

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


def results_file(name: str) -> Path:
    """``results/NAME`` of the repository, for a chapter that runs from ``book/``: the local file,
    or on Colab a copy fetched from :data:`RESULTS_URL` into ``results/``. Returns its path."""
    path = Path("..") / "results" / name
    if not path.exists() and on_colab():
        import urllib.request

        path = Path("results") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(RESULTS_URL + name, path)
    return path


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
    - A multi-panel figure of :mod:`relreps.plots` carries a second layout with its panels one under
      another (``layout.meta["relreps"]["narrow"]``): the script uses it in a column narrower than
      :data:`relreps.plots.NARROW` pixels (a phone), and switches when the window is resized.
    - The script draws with the page's ``window.Plotly`` (the built book loads its own copy, once
      per page); without one (Jupyter) it loads plotly.js from its CDN, once, then draws. It
      includes no MathJax. After drawing it calls ``window.relrepsFigureTheme(div)`` when the page
      defines it (the book's dark mode).
    """
    from plotly.io.json import to_json_plotly
    from plotly.offline import get_plotlyjs_version

    from .plots import NARROW

    fig_dict = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig
    layout, text, width, height, keep_aspect, narrow_in = _page_layout(fig_dict.get("layout") or {})
    narrow = None
    if narrow_in is not None:  # the same template and meta as the wide layout: sent once, in it
        narrow = _page_layout(narrow_in)[0]
        narrow.pop("template", None)
        narrow.pop("meta", None)
    style = ["width:100%"]
    if width:
        style.append(f"max-width:{int(width)}px")
    if keep_aspect and width and height:
        layout.pop("height")
        style.append(f"aspect-ratio:{int(width)}/{int(height)}")
    else:
        style.append(f"height:{int(height) if height else 450}px")
    payload = to_json_plotly({"data": fig_dict.get("data") or [], "layout": layout, "narrow": narrow})
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
        '  var config = {"responsive": true, "displaylogo": false};\n'
        "  if (fig.narrow) { fig.narrow.template = fig.layout.template; fig.narrow.meta = fig.layout.meta; }\n"
        "  function theme(gd) { if (window.relrepsFigureTheme) { window.relrepsFigureTheme(gd); } }\n"
        "  // a figure with a narrow layout stacks its panels in a column narrower than NARROW px\n"
        "  function layoutFor(gd) {\n"
        f"    return fig.narrow && gd.clientWidth < {NARROW} ? fig.narrow : fig.layout;\n"
        "  }\n"
        "  function plot(gd, layout, how) {\n"
        "    gd.relrepsLayout = layout; gd.relrepsDark = undefined;\n"
        '    if (fig.narrow) { gd.style.height = layout.height + "px"; }\n'
        "    how(gd, fig.data, JSON.parse(JSON.stringify(layout)), config).then(theme);\n"
        "  }\n"
        "  function draw() {\n"
        f'    var gd = document.getElementById("{div_id}");\n'
        "    plot(gd, layoutFor(gd), Plotly.newPlot);\n"
        "    if (fig.narrow) {\n"
        '      window.addEventListener("resize", function () {\n'
        "        var next = layoutFor(gd);\n"
        "        if (next !== gd.relrepsLayout) { plot(gd, next, Plotly.react); }\n"
        "      });\n"
        "    }\n"
        "  }\n"
        "  if (window.Plotly) { draw(); return; }\n"
        '  var s = document.getElementById("relreps-plotlyjs");\n'
        '  if (!s) { s = document.createElement("script"); s.id = "relreps-plotlyjs";\n'
        f"    s.src = {json.dumps(cdn)}; document.head.appendChild(s); }}\n"
        '  s.addEventListener("load", draw);\n'
        "})();\n</script>\n</div>"
    )


def _page_layout(layout_in: dict[str, Any]) -> tuple[dict[str, Any], Any, Any, Any, bool, dict | None]:
    """A figure's layout for the page: (layout without title and width, title text, natural
    width, height without the title's space, keep_aspect, the narrow layout if it has one)."""
    layout: dict[str, Any] = copy.deepcopy(dict(layout_in))
    meta = layout.get("meta")
    ours: dict[str, Any] = meta.get("relreps", {}) if isinstance(meta, dict) else {}
    narrow = ours.pop("narrow", None)
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
    layout["autosize"] = True
    return layout, text, width, layout.get("height"), bool(ours.get("keep_aspect")), narrow
