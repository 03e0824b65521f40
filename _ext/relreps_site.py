"""The built book's own Sphinx extension (named in _config.yml's ``sphinx.local_extensions``).

- **plotly.js from the site, once per page.** Figures are HTML fragments made by
  :func:`relreps.notebook.figure_html` that draw with ``window.Plotly``. Pages that hold a figure
  load ``_static/plotly.min.js``, copied at the end of the build from the installed ``plotly``
  package (the version the figures were made with), so no figure needs a CDN and plotly.js is not
  embedded once per figure.
- **Dark mode and captions** for figures: ``_static/relreps-site.js`` and ``_static/relreps.css``.
- **No script twice**: sphinx-thebe 0.3.1 registers its inline configuration twice under Sphinx 7
  (``const THEBE_JS_URL`` declared twice is a script error on every page); each page keeps the
  first of identical scripts.
- **Page descriptions**: each page's ``<meta name="description">`` is its first paragraph of prose
  (the Colab badge and other image-only paragraphs skipped), cut at about 160 characters.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

PLOTLY_JS = "plotly.min.js"
DESCRIPTION_CHARS = 160


def _plotly_source() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.is_file():
        raise FileNotFoundError(f"plotly.js not found at {path}: reinstall plotly (pip install plotly)")
    return path


def description(doctree: nodes.document) -> str | None:
    """The first paragraph of prose of a page, as one line of at most ~160 characters."""
    for para in doctree.findall(nodes.paragraph):
        if any(isinstance(n, nodes.image) for n in para.findall()):
            continue
        text = " ".join(para.astext().split())
        if len(text) < 40:
            continue
        if len(text) > DESCRIPTION_CHARS:
            text = text[: DESCRIPTION_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:.") + "…"
        return text
    return None


def _builder_inited(app: Sphinx) -> None:
    _plotly_source()  # fail before building anything when plotly.js is missing
    app.add_css_file("relreps.css")
    app.add_js_file("relreps-site.js")


def _page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                  doctree: nodes.document | None) -> None:
    if "plotly-graph-div" in context.get("body", ""):
        app.add_js_file(PLOTLY_JS)  # called here, it is added to this page only
    if doctree is not None:
        text = description(doctree)
        if text:
            context["metatags"] = context.get("metatags", "") + (
                f'\n<meta name="description" content="{html.escape(text)}" />'
            )


def _unique_scripts(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                    doctree: nodes.document | None) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for js in scripts:
        # the same script may come as filename None and as "" (an inline body)
        key = (str(getattr(js, "filename", js) or ""), str(getattr(js, "attributes", {}).get("body", "")))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # the page's own list: the template reads it after every handler ran


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    tmp = static / (PLOTLY_JS + ".tmp")
    shutil.copyfile(_plotly_source(), tmp)
    tmp.replace(static / PLOTLY_JS)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _builder_inited)
    app.connect("html-page-context", _page_context)
    app.connect("html-page-context", _unique_scripts, priority=900)  # after every other handler
    app.connect("build-finished", _build_finished)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
