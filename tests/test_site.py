"""The built book as its readers see it: every page of ``_toc.yml`` opened in headless Chromium at
desktop (1280 px) and phone (390 px) widths, from the built site served over HTTP with every request
to another host refused (so a figure that needs a CDN shows as blank and fails).

Run by ``make book`` after the build (``make check-site`` alone), which sets ``RELREPS_SITE`` to
``_build/html``: a missing site is then a failure. Without ``RELREPS_SITE`` (``make test``, which
runs before any build) the page tests skip: a site left from an older build is not judged (``RELREPS_TOC``: another book's
``_toc.yml``, to try these tests on a small book). Screenshots go to
``_build/screenshots/`` (``RELREPS_SHOTS`` to change it).

Each page must have: no script error, no console error (other than the refused outside requests),
no local request that fails or returns an error (no 404), no script loaded twice, no page wider
than the screen, and every figure drawn (plotly.js from the site itself, once), fitting its column
and non-blank. The chapter with the static stitch explorer must play a stitch chosen from its menus.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser import CHROMIUM, chromium, serve

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("RELREPS_SITE") or ROOT / "_build" / "html").resolve()
SHOTS = Path(os.environ.get("RELREPS_SHOTS") or ROOT / "_build" / "screenshots")
WIDTHS = (1280, 390)
EXPLORER_PAGE = "book/07_explorer"

pytestmark = pytest.mark.slow


TOC = Path(os.environ.get("RELREPS_TOC") or ROOT / "_toc.yml")


def toc_pages(toc: Path = TOC) -> list[str]:
    """Every page of the table of contents, in order, without its suffix (``book/01_environment``)."""
    spec = yaml.safe_load(toc.read_text())
    pages = [spec["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                pages.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in spec.items() if k != "root"})
    return pages


def test_toc_pages_lists_every_chapter_once():
    pages = toc_pages(ROOT / "_toc.yml")
    assert pages[0] == "book/intro" and len(pages) == len(set(pages))
    assert {f"book/{p.stem}" for p in (ROOT / "book").glob("0*.ipynb")} <= set(pages)


@pytest.fixture(scope="module")
def site_url():
    if not os.environ.get("RELREPS_SITE"):
        pytest.skip("the built book is checked by `make book` (or `make check-site` after it), not by `make test`")
    if not (SITE / "index.html").is_file():
        pytest.fail(f"RELREPS_SITE={SITE} holds no built book (no index.html): run `make book` first")
    with serve(SITE) as base:
        yield base


@pytest.fixture(scope="module")
def browser(site_url):
    sync_playwright = chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


# Every figure's state, measured in the page: drawn (plotly's SVG with traces), its box, and its
# column's width.
FIGURES = """() => Array.from(document.querySelectorAll(".plotly-graph-div")).map((gd) => {
  const box = gd.getBoundingClientRect();
  const column = gd.closest("article, main, body").getBoundingClientRect();
  return {
    id: gd.id, ours: !!gd.closest(".relreps-figure"), drawn: !!gd.querySelector(".main-svg"),
    traces: (gd._fullData || []).length, left: box.left, right: box.right, width: box.width,
    height: box.height, columnRight: column.right,
  };
})"""


def open_page(browser, url: str, width: int) -> tuple[Any, Any, dict[str, list[str]]]:
    """A new page at ``width`` px, outside requests refused, problems collected while it loads."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    problems: dict[str, list[str]] = {"errors": [], "console": [], "failed": [], "outside": []}
    local = url.split("/book/")[0]

    def route(r):
        if r.request.url.startswith(local) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            problems["outside"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: problems["errors"].append(str(e)))

    def console(m):
        where = (m.location or {}).get("url", "")
        if m.type == "error" and not (where and not where.startswith(local)) and "net::ERR_FAILED" not in m.text:
            problems["console"].append(f"{m.text} ({where})")

    page.on("console", console)
    page.on("requestfailed", lambda r: problems["failed"].append(r.url) if r.url.startswith(local) else None)
    page.on("response", lambda r: problems["failed"].append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    return context, page, problems


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", toc_pages())
def test_page(browser, site_url, name, width):
    url = f"{site_url}{name}.html"
    assert (SITE / f"{name}.html").is_file(), f"{name}.html was not built"
    context, page, problems = open_page(browser, url, width)
    try:
        n = page.locator(".plotly-graph-div").count()
        if n:
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.plotly-graph-div'))"
                ".every((gd) => gd.querySelector('.main-svg'))", timeout=30_000)
        page.wait_for_timeout(300)  # late console messages and resizes
        figures = page.evaluate(FIGURES)
        scripts = Counter(page.evaluate("() => Array.from(document.scripts).map((s) => s.src).filter((s) => s)"))
        page_width = page.evaluate("() => document.documentElement.scrollWidth")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name.replace('/', '-')}-{width}.png"), full_page=True)
    finally:
        context.close()
    assert problems["errors"] == [], f"script errors on {name}: {problems['errors']}"
    assert problems["console"] == [], f"console errors on {name}: {problems['console']}"
    assert problems["failed"] == [], f"failed local requests on {name}: {problems['failed']}"
    assert [s for s, k in scripts.items() if k > 1] == [], f"scripts loaded twice on {name}"
    plotly_js = [s for s in scripts if "plotly" in s.rsplit("/", 1)[-1]]
    if figures:
        assert len(plotly_js) == 1 and plotly_js[0].split("?")[0].endswith("/_static/plotly.min.js"), plotly_js
    else:
        assert plotly_js == [], f"{name} has no figure but loads {plotly_js}"
    assert page_width <= width, f"{name} is {page_width} px wide on a {width} px screen"
    for fig in figures:
        label = f"figure {fig['id']} on {name} at {width} px"
        assert fig["ours"], f"{label} was not made by relreps.notebook.figure_html (renderer not set up?)"
        assert fig["drawn"] and fig["traces"] > 0, f"{label} is blank: {fig}"
        assert fig["width"] > 150 and fig["height"] > 100, f"{label} is too small: {fig}"
        assert fig["left"] >= 0 and fig["right"] <= min(width, fig["columnRight"]) + 1, f"{label} overflows: {fig}"


def test_figures_turn_light_in_dark_mode(browser, site_url):
    pages = [p for p in toc_pages() if "plotly-graph-div" in (SITE / f"{p}.html").read_text()]
    assert pages, "no page of the book has a figure"
    context, page, problems = open_page(browser, f"{site_url}{pages[0]}.html", 1280)
    try:
        page.wait_for_function("() => document.querySelector('.plotly-graph-div .main-svg')")
        read = "() => { const gd = document.querySelector('.plotly-graph-div'); return gd._fullLayout.font.color; }"
        light = page.evaluate(read)
        page.evaluate("() => document.documentElement.setAttribute('data-theme', 'dark')")
        page.wait_for_function(f"() => ({read})() !== {json.dumps(light)}")
        dark = page.evaluate(read)
        page.evaluate("() => document.documentElement.setAttribute('data-theme', 'light')")
        page.wait_for_function(f"() => ({read})() === {json.dumps(light)}")
        background = page.evaluate("() => document.querySelector('.plotly-graph-div')._fullLayout.paper_bgcolor")
        page.evaluate("() => document.documentElement.setAttribute('data-theme', 'dark')")
        page.wait_for_function(f"() => ({read})() === {json.dumps(dark)}")
        # the figure sits on the dark page, not on the light box the theme gives other HTML outputs
        box = page.evaluate("() => getComputedStyle(document.querySelector('.plotly-graph-div')"
                            ".closest('.cell_output .text_html') || document.body).backgroundColor")
    finally:
        context.close()
    assert problems["errors"] == []
    assert light != dark and background == "rgba(0,0,0,0)"
    assert box in ("rgba(0, 0, 0, 0)", "transparent"), f"figures sit on a {box} box in dark mode"


def test_the_chapter_menu_opens_on_a_phone(browser, site_url):
    """The visible menu button opens the list of chapters (the themes bind a hidden one)."""
    context, page, problems = open_page(browser, f"{site_url}{toc_pages()[1]}.html", 390)
    try:
        buttons = [b for b in page.locator(".primary-toggle").all() if b.is_visible()]
        assert buttons, "no visible menu button on a phone"
        buttons[0].click()
        page.wait_for_function("() => document.querySelector('#pst-primary-sidebar-modal')?.open", timeout=5000)
        links = page.locator("#pst-primary-sidebar-modal a.reference.internal").count()
    finally:
        context.close()
    assert problems["errors"] == [] and links >= len(toc_pages()) - 1


def test_the_static_explorer_plays_a_chosen_stitch(browser, site_url):
    html = SITE / f"{EXPLORER_PAGE}.html"
    assert html.is_file(), f"{EXPLORER_PAGE}.html was not built"
    for width in WIDTHS:
        context, page, problems = open_page(browser, f"{site_url}{EXPLORER_PAGE}.html", width)
        try:
            page.locator(".rrx").first.scroll_into_view_if_needed()
            page.wait_for_function("() => document.querySelector('[data-rrx=frame]').getAttribute('data-frame')")
            first = page.locator("[data-rrx=frame]").first.get_attribute("data-frame")
            choices = page.evaluate("() => Array.from(document.querySelector('[data-rrx=enc]').options)"
                                    ".map((o) => o.value)")
            current = page.locator("[data-rrx=enc]").first.input_value()
            other = next(c for c in choices if c != current)
            page.select_option("[data-rrx=enc]", other)
            page.wait_for_function("() => document.querySelector('[data-rrx=frame]').getAttribute('data-frame') !== "
                                   + json.dumps(first))
            chosen = page.locator("[data-rrx=frame]").first.get_attribute("data-frame") or ""
            if page.locator("[data-rrx=play]").first.get_attribute("aria-pressed") != "true":
                page.locator("[data-rrx=play]").first.click()  # it plays: the frame moves on
            start = page.locator("[data-rrx=slider]").first.input_value()
            page.wait_for_function("() => document.querySelector('[data-rrx=slider]').value !== " + json.dumps(start))
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.locator(".rrx").first.screenshot(path=str(SHOTS / f"explorer-{width}.png"))
        finally:
            context.close()
        assert problems["errors"] == [] and problems["console"] == [] and problems["failed"] == []
        assert chosen != first and f"-{other}" in chosen.split("--")[0], (first, chosen)
