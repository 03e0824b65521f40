"""Plotly figures used by the chapters. Each function returns a ``plotly.graph_objects.Figure``.

Images are embedded as PNG data URIs (``go.Image(source=...)``): a 96x96 frame costs a few
kilobytes in the built page instead of ~100 kB of JSON numbers, and it is drawn pixel for pixel
(no smoothing), so what you see is exactly what the environment produced.

Every figure uses one template, ``relreps`` (:data:`TEMPLATE`): transparent backgrounds, so a
figure sits on the page's own colour in light and in dark mode (the built book's
``_static/relreps-site.js`` recolours text and grid lines when the reader picks dark mode). A
figure's ``layout.width`` is its natural width, at most :data:`TEXT_WIDTH`: the book's renderer
(:func:`relreps.notebook.figure_html`) turns it into a maximum, so figures shrink to fit a phone,
and lifts the title out of the figure into the page, where it wraps at any width.
"""

from __future__ import annotations

import base64
import struct
import textwrap
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

__all__ = ["NARROW", "TEMPLATE", "TEXT_WIDTH", "as_rgb", "bar_speed", "frames_grid", "learning_curves", "matched_histograms", "png_bytes", "png_data_uri", "return_curve",
           "similarity_heatmaps", "stitching_heatmaps"]

_PALETTE = ["#888888", "#2a9d8f", "#e9c46a", "#e76f51"]  # bars: stock grey first
#: Line colours, each distinct from the others (and from the paper colours' lines).
_LINES = ["#2a9d8f", "#e76f51", "#6a4c93", "#e9c46a", "#264653", "#f4a261", "#8ab17d", "#b5179e"]
#: The widest a figure may be: the built book's text column (sphinx-book-theme, about 690 px on a
#: desktop screen; measured in a browser). Wider figures would hide their right side behind a
#: scroll bar, so multi-panel figures fit their panels into it (stitching tables two to a row).
TEXT_WIDTH = 660

#: Below this width (px) a multi-panel figure is drawn with its panels one under another.
NARROW = 560

#: The name of the plotly template every figure here uses (registered in ``plotly.io.templates``).
TEMPLATE = "relreps"
_FONT = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'


def _register_template() -> None:
    """``plotly_white`` on a transparent background, in the book's font (light-mode colours)."""
    base = pio.templates["plotly_white"]
    template = go.layout.Template(base)
    template.layout.update(
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font=dict(family=_FONT, color="#333333"),
        legend=dict(bgcolor="rgba(0,0,0,0)"),
    )
    for axis in (template.layout.xaxis, template.layout.yaxis):
        axis.update(gridcolor="#e3e3e3", zerolinecolor="#cccccc")
    pio.templates[TEMPLATE] = template


_register_template()


def _finish(fig: go.Figure, title: str | None, *, width: int, height: int, margin: dict[str, int],
            panels: bool = False, keep_aspect: bool = False, narrow: go.Figure | None = None,
            **layout: Any) -> go.Figure:
    """Size a figure, add its title, apply the template.

    ``height`` and ``margin["t"]`` are without the title: the title's lines (wrapped to ``width``,
    for renderers that draw it inside the figure) add their own space, recorded in
    ``layout.meta["relreps"]["title_space"]`` so that :func:`relreps.notebook.figure_html` can take
    it back when it moves the title into the page. ``panels``: the title sits above subplot
    titles. ``keep_aspect``: the figure keeps its proportions when it shrinks (images).
    ``narrow``: the same figure with its panels one under another (same traces, same axes), whose
    layout :func:`relreps.notebook.figure_html` uses in a column narrower than :data:`NARROW`.
    """
    lines = _wrap(title, width) if title else []
    space = 20 * len(lines) + (10 if lines else 0)
    title_layout: dict[str, Any] | None = None
    if lines:
        title_layout = dict(text="<br>".join(lines), font_size=14, x=0, xref="paper")
        if panels:
            # plotly anchors a multi-line title by its first line: lift it by the lines below that
            # one, or they fall onto the subplot titles
            title_layout.update(y=1, yref="paper", yanchor="bottom", pad=dict(b=30 + 19 * (len(lines) - 1)))
    fig.update_layout(
        template=TEMPLATE,
        title=title_layout,
        width=width,
        height=height + space,
        margin=dict(margin, t=margin["t"] + space),
        meta={"relreps": {"title_space": space, "keep_aspect": keep_aspect,
                          **({"narrow": narrow.layout.to_plotly_json()} if narrow is not None else {})}},
        **layout,
    )
    return fig


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An image as ``(H, W, 3)`` uint8: RGB as is, grayscale repeated, a boolean mask white on black."""
    img = np.asarray(image)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 or bool image, got {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W), (H, W, 3) or boolean (H, W) image, got shape {img.shape}")
    return img


def png_data_uri(image: np.ndarray) -> str:
    """Encode an image (see :func:`as_rgb`) as a lossless ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def png_bytes(image: np.ndarray, level: int = 9) -> bytes:
    """An image (see :func:`as_rgb`) as lossless PNG bytes; ``level``: zlib compression (1 is fast)."""
    img = np.ascontiguousarray(as_rgb(image))
    h, w, _ = img.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1)  # filter 0

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))  # 8-bit RGB
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + chunk(b"IEND", b"")
    )
    return png


def frames_grid(
    frames: Sequence[Sequence[np.ndarray]] | np.ndarray,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str | None = None,
    *,
    cell_px: int = 110,
    max_width: int = 610,
) -> go.Figure:
    """A grid of images: ``frames[r][c]`` in row ``r``, column ``c`` (one ``go.Image`` each).

    Args:
        frames: an array ``(rows, cols, H, W[, 3])`` or nested lists of images (sizes may differ);
            images are uint8 RGB, uint8 grayscale or boolean masks.
        row_labels: one label per row, written left of the row.
        col_labels: one label per column, written above it.
        title: the figure's title (its caption).
        cell_px: the displayed size of a cell, in pixels, shrunk when needed so that the figure
            fits in ``max_width`` pixels (the width of the book's text column).
    """
    grid = [list(row) for row in frames]
    n_rows = len(grid)
    n_cols = max((len(row) for row in grid), default=0)
    if n_rows == 0 or n_cols == 0:
        raise ValueError("frames_grid needs at least one image")
    if row_labels is not None and len(row_labels) != n_rows:
        raise ValueError(f"{len(row_labels)} row labels for {n_rows} rows")
    if col_labels is not None and len(col_labels) != n_cols:
        raise ValueError(f"{len(col_labels)} column labels for {n_cols} columns")
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        column_titles=list(col_labels) if col_labels is not None else None,
        horizontal_spacing=0.02 if n_cols > 1 else 0.0,
        vertical_spacing=(0.15 if col_labels is not None else 0.06) / n_rows if n_rows > 1 else 0.0,
    )
    for r, row in enumerate(grid):
        for c, image in enumerate(row):
            img = as_rgb(image)
            fig.add_trace(
                go.Image(source=png_data_uri(img), name=f"{r},{c}", hovertemplate="x %{x}, y %{y}<extra></extra>"),
                row=r + 1,
                col=c + 1,
            )
        if row_labels is not None:
            fig.update_yaxes(title_text=str(row_labels[r]), row=r + 1, col=1)
    frame = dict(showticklabels=False, showgrid=False, zeroline=False, showline=True, mirror=True,
                 linecolor="#bbbbbb", linewidth=1)  # a thin border: white images stay visible
    fig.update_xaxes(**frame)
    fig.update_yaxes(**frame)
    left = 50 if row_labels is not None else 10
    cell = max(20, min(cell_px, (max_width - left - 10) // n_cols))
    width = left + 10 + n_cols * cell
    top = 20 + (25 if col_labels is not None else 0)
    fig.update_annotations(font_size=12)  # the column labels
    return _finish(fig, title, width=width, height=top + 10 + n_rows * cell,
                   margin=dict(l=left, r=10, t=top, b=10), keep_aspect=True)


def _wrap(text: str, width_px: int, char_px: float = 7.5) -> list[str]:
    """Split a title into lines that fit ``width_px`` (plotly does not wrap titles)."""
    return textwrap.wrap(text, max(16, int((width_px - 20) / char_px))) or [text]


def bar_speed(
    speeds: Mapping[str, float],
    title: str | None = None,
    *,
    unit: str = "steps/s",
) -> go.Figure:
    """One bar per named speed (e.g. ``{"stock": 192, "fast": 455}``), the value written on it."""
    if not speeds:
        raise ValueError("bar_speed needs at least one speed")
    names, values = list(speeds), [float(v) for v in speeds.values()]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            text=[f"{v:,.0f}" for v in values],
            textposition="outside",
            marker_color=[_PALETTE[i % len(_PALETTE)] for i in range(len(names))],
            hovertemplate="%{x}: %{y:,.0f} " + unit + "<extra></extra>",
        )
    )
    return _finish(fig, title, width=520, height=380, margin=dict(l=60, r=20, t=40, b=40),
                   yaxis_title=unit, yaxis_range=[0, max(values) * 1.18], showlegend=False)


# --------------------------------------------------------------------------------------------
# Stitching tables and learning curves
# --------------------------------------------------------------------------------------------

#: Line colours for the four paper colours (slightly darker than the backgrounds, to read on white).
COLOR_LINES = {"green": "#2e9e44", "red": "#c8453a", "blue": "#3a5fc8", "yellow": "#c9a800"}


def stitching_heatmaps(
    tables: Mapping[str, Mapping[str, Mapping[str, tuple[float, float]]]],
    title: str | None = None,
    *,
    zmax: float = 1000.0,
    columns: int | None = None,
) -> go.Figure:
    """Side-by-side heatmaps of encoder (rows) x policy (columns) tables.

    ``tables`` maps a panel title (e.g. ``"ours"``, ``"paper"``) to ``cells[encoder][policy] =
    (mean, std)``. Every panel uses the same colour scale (0 to ``zmax``), and each cell shows its
    mean and std; missing cells are left blank. ``columns``: panels to a row (default two, as the
    book's text column holds no more; on a phone the book shows them one under another).
    """
    if not tables:
        raise ValueError("stitching_heatmaps needs at least one table")
    names = list(tables)
    n_cols = min(len(names), columns or 2)
    n_rows = -(-len(names) // n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=names, horizontal_spacing=0.14,
                        vertical_spacing=0.3 / n_rows)
    for k, name in enumerate(names, start=1):
        row, col = (k - 1) // n_cols + 1, (k - 1) % n_cols + 1
        cells = tables[name]
        rows = list(cells)
        cols = list(dict.fromkeys(c for r in rows for c in cells[r]))
        z = [[cells[r][c][0] if c in cells[r] else None for c in cols] for r in rows]
        text = [[f"{cells[r][c][0]:.0f}<br>±{cells[r][c][1]:.0f}" if c in cells[r] else "" for c in cols]
                for r in rows]
        fig.add_trace(
            go.Heatmap(
                z=z, x=cols, y=rows, text=text, texttemplate="%{text}", zmin=0, zmax=zmax,
                colorscale="Viridis", showscale=k == len(names), colorbar=dict(title="max return"),
                hovertemplate="encoder %{y}, policy %{x}: %{z:.0f}<extra>" + name + "</extra>",
            ),
            row=row, col=col,
        )
        fig.update_yaxes(autorange="reversed", title_text="encoder (track colour)" if col == 1 else None,
                         row=row, col=col)
        fig.update_xaxes(title_text="policy", row=row, col=col)
    narrow = stitching_heatmaps(tables, title, zmax=zmax, columns=1) if n_cols > 1 else None
    return _finish(fig, title, width=min(360 * n_cols + 120, TEXT_WIDTH), height=330 * n_rows + 45,
                   margin=dict(l=90, r=20, t=45, b=60), panels=True, narrow=narrow)


def learning_curves(
    curves: Mapping[str, Mapping[str, Any]],
    title: str | None = None,
    *,
    y_title: str = "mean max return (held-out tracks)",
    columns: int | None = None,
) -> go.Figure:
    """The paper's Figure 2: one panel per representation, one line per colour.

    ``curves[name] = {"steps": [...], "value": [...], "representation": "relative"|"absolute",
    "color": "green"|...}``, e.g. read from a zoo agent's ``eval.csv``; with an optional ``"seed"``,
    the curves of a colour's other seeds than its first are dotted, so that they stay apart.
    ``columns``: panels to a row (default: side by side; on a phone the book stacks them).
    """
    if not curves:
        raise ValueError("learning_curves needs at least one curve")
    first_seed: dict[tuple[str, str], int | None] = {}
    for c in sorted(curves.values(), key=lambda c: (c.get("seed") is None, c.get("seed") or 0)):
        first_seed.setdefault((c["representation"], c["color"]), c.get("seed"))
    panels = [r for r in ("absolute", "relative") if any(c["representation"] == r for c in curves.values())]
    n_cols = min(len(panels), columns or len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=panels, shared_yaxes=True,
                        horizontal_spacing=0.06, vertical_spacing=0.3 / n_rows)
    for name, c in curves.items():
        k = panels.index(c["representation"])
        row, col = k // n_cols + 1, k % n_cols + 1
        fig.add_trace(
            go.Scatter(
                x=list(c["steps"]), y=list(c["value"]), mode="lines+markers", name=name,
                line=dict(color=COLOR_LINES.get(c["color"], "#555555"),
                          dash="solid" if c.get("seed") == first_seed[c["representation"], c["color"]] else "dot"),
                marker=dict(size=5),
                hovertemplate=name + ": %{y:.0f} at %{x:,} steps<extra></extra>",
            ),
            row=row, col=col,
        )
        fig.update_xaxes(title_text="environment steps", row=row, col=col)
    for row in range(1, n_rows + 1):
        fig.update_yaxes(title_text=y_title, row=row, col=1)
    legend_rows = -(-len(curves) // (3 if n_cols > 1 else 2))  # the legend goes below the panels
    narrow = learning_curves(curves, title, y_title=y_title, columns=1) if n_cols > 1 else None
    plot = 340 * n_rows
    return _finish(fig, title, width=TEXT_WIDTH if n_cols > 1 else 560, height=plot + 45 + 22 * legend_rows,
                   margin=dict(l=70, r=20, t=45, b=70 + 22 * legend_rows), panels=True, narrow=narrow,
                   legend=dict(orientation="h", yanchor="top", y=-55 / (plot - 70), x=0))


# --------------------------------------------------------------------------------------------
# Latent space analysis (relreps.latent)
# --------------------------------------------------------------------------------------------


def similarity_heatmaps(
    matrices: Mapping[str, np.ndarray],
    title: str | None = None,
    *,
    max_frames: int = 300,
    zrange: tuple[float, float] | None = None,
    x_title: str = "frame j (second encoder)",
    y_title: str = "frame i (first encoder)",
    columns: int | None = None,
) -> go.Figure:
    """Side-by-side cosine-similarity matrices (the paper's Figures 3-5), one panel per entry.

    ``matrices`` maps a panel title (e.g. ``"absolute"``, ``"relative"``) to a square matrix
    ``S[i, j]`` (row ``i``: frame ``i`` as the first encoder sees it). Row 0 is at the top, as in
    a printed matrix, so matched frames lie on the diagonal from top left to bottom right. All
    panels share one colour scale: ``zrange``, or the smallest and largest value over all panels.
    Matrices larger than ``max_frames`` show every k-th row and column (the title says so), to
    keep the page light. ``columns``: panels to a row (default: all in one row; on a phone the book
    shows them one under another).
    """
    if not matrices:
        raise ValueError("similarity_heatmaps needs at least one matrix")
    mats = {k: np.asarray(v, dtype=np.float64) for k, v in matrices.items()}
    for key, m in mats.items():
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.size == 0:
            raise ValueError(f"matrix {key!r} is not square: shape {m.shape}")
    lo = min(float(m.min()) for m in mats.values()) if zrange is None else float(zrange[0])
    hi = max(float(m.max()) for m in mats.values()) if zrange is None else float(zrange[1])
    names = list(mats)
    n_cols = min(len(names), columns or len(names))
    n_rows = -(-len(names) // n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=names, horizontal_spacing=0.08,
                        vertical_spacing=0.25 / n_rows)
    step = 1
    for k, name in enumerate(names, start=1):
        row, col = (k - 1) // n_cols + 1, (k - 1) % n_cols + 1
        m = mats[name]
        s = max(1, -(-len(m) // max_frames))  # ceil: at most max_frames rows shown
        step = max(step, s)
        idx = np.arange(0, len(m), s)
        fig.add_trace(
            go.Heatmap(
                z=m[np.ix_(idx, idx)].astype(np.float32), x=idx, y=idx, coloraxis="coloraxis",
                hovertemplate="frame %{y} vs frame %{x}: cosine %{z:.3f}<extra>" + name + "</extra>",
            ),
            row=row, col=col,
        )
        axis = "x" if k == 1 else f"x{k}"
        fig.update_yaxes(autorange="reversed", scaleanchor=axis, constrain="domain",
                         title_text=y_title if col == 1 else None, row=row, col=col)
        fig.update_xaxes(constrain="domain", title_text=x_title, row=row, col=col)
    narrow = None
    if n_cols > 1:
        narrow = similarity_heatmaps(matrices, title, max_frames=max_frames, zrange=(lo, hi), x_title=x_title,
                                     y_title=y_title, columns=1)
    if step > 1:
        title = f"{title or ''}; one frame in {step} shown".strip("; ")
    return _finish(fig, title, width=min(330 * n_cols + 150, TEXT_WIDTH), height=330 * n_rows + 50,
                   margin=dict(l=70, r=20, t=45, b=50), panels=True, narrow=narrow,
                   coloraxis=dict(colorscale="Viridis", cmin=lo, cmax=hi, colorbar=dict(title="cosine")))


def matched_histograms(
    values: Mapping[str, np.ndarray],
    title: str | None = None,
    *,
    bin_size: float = 0.025,
    x_title: str = "cosine of matched frames",
) -> go.Figure:
    """Overlaid histograms of cosine values (e.g. the diagonal of each similarity matrix).

    One semi-transparent histogram per entry, all on the same bins (``bin_size`` wide, from -1
    to 1), with the entry's mean in the legend.
    """
    if not values:
        raise ValueError("matched_histograms needs at least one series")
    fig = go.Figure()
    for k, (name, v) in enumerate(values.items()):
        v = np.asarray(v, dtype=np.float64).ravel()
        if v.size == 0:
            raise ValueError(f"series {name!r} is empty")
        fig.add_trace(
            go.Histogram(
                x=v.astype(np.float32), name=f"{name} (mean {v.mean():.2f})", opacity=0.6,
                xbins=dict(start=-1.0, end=1.0 + 1e-9, size=bin_size),
                marker_color=_PALETTE[(k + 1) % len(_PALETTE)],
                hovertemplate="cosine %{x}: %{y} frames<extra>" + name + "</extra>",
            )
        )
    return _finish(fig, title, width=620, height=390 + 20 * len(values),
                   margin=dict(l=60, r=20, t=40, b=90 + 20 * len(values)),
                   barmode="overlay", xaxis_title=x_title, yaxis_title="frames",
                   legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))  # below the plot: long names fit


# --------------------------------------------------------------------------------------------
# Recorded drives
# --------------------------------------------------------------------------------------------


def return_curve(drives, title: str | None = None, *, labels: Sequence[str] | None = None) -> go.Figure:
    """The running return of recorded drives against the step, each line's maximum marked.

    Args:
        drives: one :class:`relreps.evaluation.Drive`, a sequence of them, or a mapping
            ``label -> Drive``. The maximum of a line is the paper's score for that episode.
        title: the figure's title (its caption).
        labels: one legend label per drive (default: the mapping's keys, else
            ``"AGENT on COLOUR"``).
    """
    if isinstance(drives, Mapping):
        labels = list(drives) if labels is None else labels
        drives = list(drives.values())
    elif hasattr(drives, "returns"):
        drives = [drives]
    drives = list(drives)
    if not drives:
        raise ValueError("return_curve needs at least one drive")
    if labels is None:
        labels = [f"{d.agent} on {d.color}" for d in drives]
    if len(labels) != len(drives):
        raise ValueError(f"{len(labels)} labels for {len(drives)} drives")
    fig = go.Figure()
    for k, (drive, label) in enumerate(zip(drives, labels)):
        returns = np.asarray(drive.returns, dtype=np.float64)
        steps = np.arange(1, len(returns) + 1)
        color = _LINES[k % len(_LINES)]
        fig.add_trace(go.Scatter(x=steps, y=returns, mode="lines", name=str(label), line_color=color,
                                 hovertemplate="step %{x}: return %{y:.1f}<extra></extra>"))
        best = int(np.argmax(returns))
        fig.add_trace(go.Scatter(x=[steps[best]], y=[returns[best]], mode="markers+text",
                                 marker=dict(color=color, size=9), text=[f"max {returns[best]:.0f}"],
                                 textposition="top center", showlegend=False,
                                 hovertemplate="max return %{y:.1f} at step %{x}<extra></extra>"))
    top = max(float(np.max(d.returns)) for d in drives)
    bottom = min(0.0, min(float(np.min(d.returns)) for d in drives))
    return _finish(fig, title, width=610, height=350, margin=dict(l=60, r=30, t=40, b=50),
                   xaxis_title="step", yaxis_title="running return",
                   yaxis_range=[bottom - 20, top + 0.12 * (top - bottom) + 20],  # the max labels fit
                   legend=dict(orientation="h", yanchor="top", y=-0.18, x=0), showlegend=True)
