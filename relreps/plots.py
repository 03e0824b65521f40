"""Plotly figures used by the chapters. Each function returns a ``plotly.graph_objects.Figure``.

Images are embedded as PNG data URIs (``go.Image(source=...)``): a 96x96 frame costs a few
kilobytes in the built page instead of ~100 kB of JSON numbers, and it is drawn pixel for pixel
(no smoothing), so what you see is exactly what the environment produced.
"""

from __future__ import annotations

import base64
import struct
import textwrap
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["as_rgb", "bar_speed", "frames_grid", "png_data_uri"]

_PALETTE = ["#888888", "#2a9d8f", "#e9c46a", "#e76f51"]  # bars: stock grey first


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
    img = np.ascontiguousarray(as_rgb(image))
    h, w, _ = img.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1)  # filter 0

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))  # 8-bit RGB
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


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
    lines = _wrap(title, width) if title else []
    top = 30 + 20 * len(lines) + (25 if col_labels is not None else 0)
    fig.update_annotations(font_size=12)  # the column labels
    fig.update_layout(
        title=dict(text="<br>".join(lines), font_size=14, x=0, xref="paper") if title else None,
        width=width,
        height=top + 10 + n_rows * cell,
        margin=dict(l=left, r=10, t=top, b=10),
        plot_bgcolor="white",
    )
    return fig


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
    width = 520
    lines = _wrap(title, width) if title else []
    fig.update_layout(
        # the title sits just above the plot, below plotly's toolbar
        title=dict(text="<br>".join(lines), font_size=14, x=0, xref="paper", y=1, yref="paper",
                   yanchor="bottom", pad=dict(b=12)) if title else None,
        yaxis_title=unit,
        yaxis_range=[0, max(values) * 1.18],
        width=width,
        height=380 + 20 * len(lines),
        margin=dict(l=60, r=20, t=60 + 20 * len(lines), b=40),
        showlegend=False,
    )
    return fig
