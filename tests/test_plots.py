"""relreps.plots builds the figures the chapters show; relreps.notebook's switches."""

import base64
import io
import json
import zlib

import numpy as np
import plotly.graph_objects as go
import pytest

from relreps import notebook, plots


def _decode_png(uri: str) -> np.ndarray:
    """A minimal PNG reader for what png_data_uri writes (8-bit RGB, filter 0, one IDAT)."""
    assert uri.startswith("data:image/png;base64,")
    data = base64.b64decode(uri.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        crc = int.from_bytes(data[pos + 8 + n : pos + 12 + n], "big")
        assert crc == zlib.crc32(tag + body)
        chunks[tag] = body
        pos += 12 + n
    w, h = int.from_bytes(chunks[b"IHDR"][:4], "big"), int.from_bytes(chunks[b"IHDR"][4:8], "big")
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, 3)


def test_png_round_trip():
    img = np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    assert np.array_equal(_decode_png(plots.png_data_uri(img)), img)


def test_png_readable_by_pillow():
    Image = pytest.importorskip("PIL.Image")
    img = np.random.default_rng(1).integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    data = base64.b64decode(plots.png_data_uri(img).split(",", 1)[1])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), img)


def test_as_rgb_gray_and_mask():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert plots.as_rgb(gray).shape == (2, 3, 3)
    assert (plots.as_rgb(gray)[..., 2] == gray).all()
    mask = np.array([[True, False]])
    assert plots.as_rgb(mask).tolist() == [[[255, 255, 255], [0, 0, 0]]]
    with pytest.raises(ValueError):
        plots.as_rgb(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError):
        plots.as_rgb(np.zeros((2, 2, 4), np.uint8))


def test_frames_grid_shape_and_labels():
    frames = np.zeros((4, 3, 84, 84, 3), np.uint8)
    fig = plots.frames_grid(frames, ["green", "red", "blue", "yellow"], ["a", "b", "c"], title="T")
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 12 and all(isinstance(t, go.Image) for t in fig.data)
    rows, cols = fig._get_subplot_rows_columns()
    assert (len(rows), len(cols)) == (4, 3)
    assert fig.layout.title.text == "T"
    assert [a.text for a in fig.layout.annotations] == ["a", "b", "c"]
    assert fig.layout.yaxis.title.text == "green" and fig.layout.yaxis10.title.text == "yellow"
    fig.to_json()  # serialisable


def test_frames_grid_mixed_sizes_and_masks():
    fig = plots.frames_grid([[np.zeros((96, 96, 3), np.uint8), np.ones((84, 84), bool)]])
    assert len(fig.data) == 2
    assert fig.layout.title.text is None and not fig.layout.annotations


def test_frames_grid_fits_the_text_column_and_wraps_long_titles():
    title = "a long caption " * 10
    fig = plots.frames_grid(np.zeros((1, 8, 84, 84, 3), np.uint8), title=title, cell_px=200, max_width=600)
    assert fig.layout.width <= 600
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) > 1 and " ".join(lines) == title.strip()
    small = plots.frames_grid(np.zeros((1, 2, 84, 84, 3), np.uint8), cell_px=100)
    assert small.layout.width == 10 + 10 + 2 * 100  # small grids keep their cell size


def test_frames_grid_bad_input():
    with pytest.raises(ValueError):
        plots.frames_grid([])
    with pytest.raises(ValueError):
        plots.frames_grid(np.zeros((2, 2, 8, 8, 3), np.uint8), row_labels=["only one"])
    with pytest.raises(ValueError):
        plots.frames_grid(np.zeros((2, 2, 8, 8, 3), np.uint8), col_labels=["a", "b", "c"])


def test_bar_speed():
    fig = plots.bar_speed({"stock": 192.0, "fast": 455.4}, title="speed")
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Bar)
    assert list(fig.data[0].x) == ["stock", "fast"] and list(fig.data[0].y) == [192.0, 455.4]
    assert list(fig.data[0].text) == ["192", "455"]
    assert fig.layout.yaxis.title.text == "steps/s"
    with pytest.raises(ValueError):
        plots.bar_speed({})


def test_notebook_helpers(monkeypatch):
    assert notebook.pick(full=300, smoke=60) == (60 if notebook.SMOKE else 300)
    assert notebook.on_colab() is False
    import plotly.io as pio

    before = pio.renderers.default
    try:
        monkeypatch.setenv("PLOTLY_RENDERER", "json")
        assert notebook.setup() == "json" == pio.renderers.default
        monkeypatch.delenv("PLOTLY_RENDERER")
        assert notebook.setup() == notebook.RENDERER == pio.renderers.default
        bundle = pio.renderers[notebook.RENDERER].to_mimebundle(plots.bar_speed({"a": 1.0}).to_plotly_json())
        assert list(bundle) == ["text/html"] and "Plotly.newPlot" in bundle["text/html"]
    finally:
        pio.renderers.default = before


def test_every_figure_uses_the_template_on_a_transparent_background():
    table = {"green": {"green": (800.0, 10.0)}}
    figs = [plots.frames_grid(np.zeros((1, 2, 8, 8, 3), np.uint8)), plots.bar_speed({"a": 1.0}),
            plots.stitching_heatmaps({"t": table}), plots.similarity_heatmaps({"a": np.eye(3)}),
            plots.matched_histograms({"a": np.zeros(3)}),
            plots.learning_curves({"c": {"steps": [0], "value": [0.0], "representation": "relative",
                                         "color": "green"}})]
    for fig in figs:
        assert fig.layout.template.layout.paper_bgcolor == "rgba(0,0,0,0)"
        assert fig.layout.template.layout.plot_bgcolor == "rgba(0,0,0,0)"
        assert not fig.layout.plot_bgcolor and not fig.layout.paper_bgcolor  # nothing overrides it


def test_figure_html_is_responsive_and_lifts_the_title_into_the_page():
    title = "Speed <b>of</b> x < y " * 8
    fig = plots.bar_speed({"stock": 1.0, "fast": 2.0}, title=title)
    space = fig.layout.meta["relreps"]["title_space"]
    assert space > 20  # the title wraps over several lines inside the figure
    html = notebook.figure_html(fig)
    # the natural width is a maximum; the figure fills narrower columns
    assert f"width:100%;max-width:{fig.layout.width}px;height:{fig.layout.height - space}px" in html
    payload = json.loads(html.split("var fig = ", 1)[1].split(";\n", 1)[0].replace("<\\/", "</"))
    assert "width" not in payload["layout"] and "title" not in payload["layout"]
    assert payload["layout"]["margin"]["t"] == fig.layout.margin.t - space
    assert payload["layout"]["height"] == fig.layout.height - space
    assert payload["layout"]["autosize"] is True
    caption = html.split('<p class="relreps-figure-title">', 1)[1].split("</p>", 1)[0]
    assert "<br>" not in caption and "<b>of</b>" in caption and "x &lt; y" in caption
    assert html.count("<script") == 1 and "</script>" not in html.split("<script", 1)[1][:-len("</script>\n</div>")]
    assert "mathjax" not in html.lower()
    # plotly.js: the page's own, else the CDN once (the only external resource)
    assert "if (window.Plotly) { draw(); return; }" in html and "cdn.plot.ly/plotly-" in html


def test_figure_html_keeps_the_proportions_of_image_grids():
    fig = plots.frames_grid(np.zeros((2, 3, 8, 8, 3), np.uint8), title="t")
    space = fig.layout.meta["relreps"]["title_space"]
    html = notebook.figure_html(fig)
    assert f"aspect-ratio:{fig.layout.width}/{fig.layout.height - space}" in html
    assert '"height"' not in html.split("var fig = ", 1)[1].split('"layout"', 1)[1].split('"margin"', 1)[0]
    # two figures with the same content on one page get different ids
    a, b = notebook.figure_html(fig), notebook.figure_html(fig)
    assert a.split('id="', 1)[1].split('"')[0] != b.split('id="', 1)[1].split('"')[0]
    # a figure made elsewhere (no relreps meta) keeps its layout and gets a default height
    plain = notebook.figure_html(go.Figure(go.Bar(x=[1], y=[1]), layout=dict(title="plain")))
    assert "height:450px" in plain and "max-width" not in plain and ">plain</p>" in plain


def test_learning_curves_dot_a_colours_other_seeds():
    def curve(rep, color, seed):
        return {"steps": [0, 100], "value": [0.0, 1.0], "representation": rep, "color": color, "seed": seed}

    fig = plots.learning_curves({"rel-green-s2": curve("relative", "green", 2), "rel-green": curve("relative", "green", 1),
                                 "abs-green-s2": curve("absolute", "green", 2), "rel-red": curve("relative", "red", 3)})
    dash = {t.name: t.line.dash for t in fig.data}
    assert dash == {"rel-green-s2": "dot", "rel-green": "solid", "abs-green-s2": "solid", "rel-red": "solid"}
    assert [a.text for a in fig.layout.annotations] == ["absolute", "relative"]
    with pytest.raises(ValueError, match="at least one curve"):
        plots.learning_curves({})


def test_multi_panel_figures_fit_the_text_column():
    """Figures wider than the book's text column hide their right side behind a scroll bar."""
    table = {e: {p: (800.0, 50.0) for p in ("green", "red", "blue", "yellow")} for e in ("green", "red", "blue", "yellow")}
    two = plots.stitching_heatmaps({"ours": table, "paper": table}, title="t")
    assert two.layout.width <= plots.TEXT_WIDTH
    assert [(t.xaxis, t.yaxis) for t in two.data] == [("x", "y"), ("x2", "y2")]  # side by side
    three = plots.stitching_heatmaps({"a": table, "b": table, "c": table})
    assert three.layout.width <= plots.TEXT_WIDTH and three.layout.height > two.layout.height
    # two to a row: the third panel starts a second row, under the first
    assert three.layout.xaxis3.domain == three.layout.xaxis.domain
    assert three.layout.yaxis3.domain[1] < three.layout.yaxis.domain[0]
    assert [a.text for a in three.layout.annotations if a.text in "abc"] == ["a", "b", "c"]
    curve = {"steps": [0, 100], "value": [0.0, 1.0], "color": "green", "seed": 1}
    lc = plots.learning_curves({f"{r}-{k}": dict(curve, representation=r) for r in ("absolute", "relative")
                                for k in range(5)})
    assert lc.layout.width <= plots.TEXT_WIDTH and lc.layout.legend.orientation == "h"
    sim = plots.similarity_heatmaps({"a": np.eye(5), "b": np.eye(5)})
    assert sim.layout.width <= plots.TEXT_WIDTH


def _payload(html: str) -> dict:
    return json.loads(html.split("var fig = ", 1)[1].split(";\n", 1)[0].replace("<\\/", "</"))


def test_multi_panel_figures_stack_their_panels_in_a_narrow_column():
    table = {e: {p: (800.0, 50.0) for p in ("green", "red")} for e in ("green", "red")}
    wide = plots.stitching_heatmaps({"ours": table, "paper": table}, title="t")
    payload = _payload(notebook.figure_html(wide))
    narrow = payload["narrow"]
    # side by side on a desktop, one under the other on a phone: same axes, taller
    assert payload["layout"]["xaxis2"]["domain"][0] > payload["layout"]["xaxis"]["domain"][1]
    assert narrow["xaxis2"]["domain"] == narrow["xaxis"]["domain"]
    assert narrow["yaxis2"]["domain"][1] < narrow["yaxis"]["domain"][0]
    assert narrow["height"] > payload["layout"]["height"] and "title" not in narrow and "width" not in narrow
    assert "narrow" not in payload["layout"]["meta"]["relreps"]
    assert f"gd.clientWidth < {plots.NARROW}" in notebook.figure_html(wide)
    sim = _payload(notebook.figure_html(plots.similarity_heatmaps({"a": np.eye(4), "b": np.eye(4)})))
    assert sim["narrow"]["xaxis2"]["domain"] == sim["narrow"]["xaxis"]["domain"]
    curve = {"steps": [0, 1], "value": [0.0, 1.0], "color": "green"}
    lc = _payload(notebook.figure_html(plots.learning_curves(
        {r: dict(curve, representation=r) for r in ("absolute", "relative")})))
    assert lc["narrow"]["yaxis2"]["domain"][1] < lc["narrow"]["yaxis"]["domain"][0]
    # one panel: nothing to stack
    assert _payload(notebook.figure_html(plots.stitching_heatmaps({"ours": table})))["narrow"] is None
