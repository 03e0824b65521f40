"""Bit-exact numba port of ``pygame.gfxdraw.aapolygon`` + ``filled_polygon``.

This reproduces, pixel for pixel, what pygame-ce 2.5.8 (bundled SDL_gfx,
``src_c/gfxdraw.c`` + ``src_c/SDL_gfx/SDL_gfxPrimitives.c``) writes into a
32-bit surface when, for every polygon, the stock code calls::

    pygame.gfxdraw.aapolygon(surf, points, (r, g, b))
    pygame.gfxdraw.filled_polygon(surf, points, (r, g, b))

Details of the C code that are replicated here:

* ``gfxdraw.c`` converts each coordinate with ``PyNumber_Long`` (truncation
  toward zero, *not* rounding) and then casts the C ``long`` to ``Sint16``
  (wrap-around modulo 2**16).
* ``aapolygonRGBA`` draws the closed outline with ``_aalineColor(...,
  draw_endpoint=0)`` per edge: Cohen-Sutherland clipping against the clip
  rect using *single precision* float slopes and ``(Sint16)`` truncation,
  special cases for vertical / horizontal edges (drawn as full opaque
  v/hlines, endpoint included), otherwise Wu's algorithm with a 32-bit error
  accumulator; the first pixel is the (clipped) start point, drawn opaque,
  the end point is not drawn.  Weighted pixels use alpha ``(255*w) >> 8``
  (so at most 254, never the opaque path) and SDL_gfx's
  ``DEFAULT_ALPHA_PIXEL_ROUTINE`` in unsigned 32-bit arithmetic.  Note that a
  blended pixel is rewritten as ``R|G|B`` (plus A if the format has an alpha
  mask), so even weight-0 pixels clear the unused padding byte.
* ``filledPolygonColorMT`` scan-converts rows ``miny..maxy`` with 16.16
  fixed-point intersections ``((65536*(y-y1))/(y2-y1))*(x2-x1) + 65536*x1``
  (C int arithmetic, truncating division), half-open edge rule plus the
  special ``y == maxy`` rule, sorts the intersections and draws
  ``hlineColor(xa, xb)`` with ``xa = round(int+1)``, ``xb = round(int-1)``
  (``(v >> 16) + ((v & 32768) >> 15)``), swapping when ``xa > xb``.

Exactness is tested for coordinates within +-16000 px (CarRacing stays
within about +-6000).  Beyond +-16383 the C code relies on int overflow; it is
emulated as two's-complement wrap-around (what gcc emits), and qsort's
overflowing ``a - b`` comparator as glibc's (<= 2.36) merge sort.  That
matched pygame up to +-32767 here, but another libc's qsort could order such
huge polygons differently.  Only opaque colours (alpha 255) and 32-bit
surfaces with 8-bit channels are supported.

The kernels take the pixel array transposed, ``img[y, x]``, so that
``pixels2d`` (Fortran-ordered) becomes C-contiguous rows.
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - exercised implicitly
    from numba import njit

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False
    njit = None  # type: ignore[assignment]

__all__ = [
    "AVAILABLE",
    "draw_polygons",
    "draw_polygons_on",
    "polygon_coords",
    "surface_format",
    "transform_visible",
]

_NO_NUMBA_MSG = (
    "relreps._raster requires numba (pip install numba); "
    "fall back to pygame.gfxdraw when relreps._raster.AVAILABLE is False"
)


def polygon_coords(polys) -> np.ndarray:
    """Integer vertex coordinates exactly as pygame's gfxdraw computes them.

    ``int(v)`` (truncation toward zero) followed by a C cast to ``Sint16``.
    Returns an int64 array of the same shape.
    """
    p = np.trunc(np.asarray(polys, dtype=np.float64))
    if not np.all(np.isfinite(p)):
        raise ValueError("polygon coordinates must be finite")
    i = p.astype(np.int64)
    return ((i + 32768) & 0xFFFF) - 32768


def surface_format(surf) -> tuple:
    """``(masks, shifts, clip)`` int64 arrays for :func:`draw_polygons`."""
    if surf.get_bytesize() != 4:
        raise ValueError("only 32-bit surfaces are supported")
    masks = np.array(surf.get_masks(), dtype=np.int64)
    shifts = np.array(surf.get_shifts(), dtype=np.int64)
    for m, s in zip(masks, shifts):
        if m != 0 and m != (0xFF << int(s)):
            raise ValueError("only 8-bit channels are supported")
    c = surf.get_clip()
    clip = np.array([c.x, c.y, c.w, c.h], dtype=np.int64)
    return masks, shifts, clip


if AVAILABLE:

    @njit(cache=True, inline="always", error_model="numpy")
    def _s16(v):
        return ((v + 32768) & 0xFFFF) - 32768

    @njit(cache=True, inline="always", error_model="numpy")
    def _s32(v):
        return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648

    @njit(cache=True, inline="always", error_model="numpy")
    def _cdiv(a, b):
        # C integer division (truncation toward zero)
        q = abs(a) // abs(b)
        if (a < 0) != (b < 0):
            q = -q
        return q

    @njit(cache=True, inline="always", error_model="numpy")
    def _f2s16(f):
        # (Sint16)(float): cvttss2si to int32 (0x80000000 when out of range
        # or NaN), then keep the low 16 bits.
        if not (f > -2147483649.0 and f < 2147483648.0):
            return 0
        return _s16(np.int64(f))

    @njit(cache=True, inline="always", error_model="numpy")
    def _map(r, g, b, a, fmt):
        # SDL_MapRGBA for a 32-bit format with 8-bit channels
        return (
            ((r << fmt[4]) & fmt[0])
            | ((g << fmt[5]) & fmt[1])
            | ((b << fmt[6]) & fmt[2])
            | ((a << fmt[7]) & fmt[3])
        )

    @njit(cache=True, inline="always", error_model="numpy")
    def _chan(dc, c, mask, sh, alpha):
        d = dc & mask
        t = ((c & mask) - d) & 0xFFFFFFFF
        t = ((t >> sh) * alpha) & 0xFFFFFFFF
        t = ((t >> 8) << sh) & 0xFFFFFFFF
        return (d + t) & mask

    @njit(cache=True, inline="always", error_model="numpy")
    def _put_opaque(img, x, y, mcolor, left, top, right, bottom, yoff):
        if x >= left and x <= right and y >= top and y <= bottom:
            img[y - yoff, x] = mcolor

    @njit(cache=True, inline="always", error_model="numpy")
    def _put_weight(img, x, y, r, g, b, weight, fmt, left, top,
                    right, bottom, yoff):
        # pixelColorWeightNolock with colour alpha 255
        x = _s16(x)
        y = _s16(y)
        if x >= left and x <= right and y >= top and y <= bottom:
            a = (255 * weight) >> 8
            mc = _map(r, g, b, a, fmt)
            # a <= 254 here, so _putPixelAlpha always takes the blending
            # branch (DEFAULT_ALPHA_PIXEL_ROUTINE, Uint32 arithmetic)
            dc = np.int64(img[y - yoff, x])
            # (A term is 0 when the format has no alpha mask; computing it
            # unconditionally is much faster than branching on it)
            v = (
                _chan(dc, mc, fmt[0], fmt[4], a)
                | _chan(dc, mc, fmt[1], fmt[5], a)
                | _chan(dc, mc, fmt[2], fmt[6], a)
                | _chan(dc, mc, fmt[3], fmt[7], a)
            )
            img[y - yoff, x] = v

    @njit(cache=True, inline="always", error_model="numpy")
    def _hline(img, x1, x2, y, mcolor, left, top, right, bottom, yoff):
        x1 = _s16(x1)
        x2 = _s16(x2)
        y = _s16(y)
        if x1 > x2:
            x1, x2 = x2, x1
        if x2 < left or x1 > right or y < top or y > bottom:
            return
        if x1 < left:
            x1 = left
        if x2 > right:
            x2 = right
        img[y - yoff, x1:x2 + 1] = mcolor

    @njit(cache=True, inline="always", error_model="numpy")
    def _vline(img, x, y1, y2, mcolor, left, top, right, bottom, yoff):
        x = _s16(x)
        y1 = _s16(y1)
        y2 = _s16(y2)
        if y1 > y2:
            y1, y2 = y2, y1
        if x < left or x > right or y2 < top or y1 > bottom:
            return
        if y1 < top:
            y1 = top
        if y2 > bottom:
            y2 = bottom
        for y in range(y1, y2 + 1):
            img[y - yoff, x] = mcolor

    @njit(cache=True, error_model="numpy")
    def _aaline(img, x1, y1, x2, y2, r, g, b, mcolor, fmt, left,
                top, right, bottom, wtop, wbottom, yoff):
        # _aalineColor(dst, x1, y1, x2, y2, color, draw_endpoint=0).
        # left..bottom is the surface's clip rect (it shapes the clipped
        # line); only rows wtop..wbottom are written (a band of the frame).
        # ---- _clipLine (Cohen-Sutherland, float32 slope)
        while True:
            c1 = 0
            if x1 < left:
                c1 |= 1
            elif x1 > right:
                c1 |= 2
            if y1 < top:
                c1 |= 8
            elif y1 > bottom:
                c1 |= 4
            c2 = 0
            if x2 < left:
                c2 |= 1
            elif x2 > right:
                c2 |= 2
            if y2 < top:
                c2 |= 8
            elif y2 > bottom:
                c2 |= 4
            if (c1 | c2) == 0:
                break
            if (c1 & c2) != 0:
                return
            if c1 == 0:
                x1, x2 = x2, x1
                y1, y2 = y2, y1
                c1, c2 = c2, c1
            if x2 != x1:
                m = np.float32(y2 - y1) / np.float32(x2 - x1)
            else:
                m = np.float32(1.0)
            if c1 & 1:
                y1 = _s16(y1 + _f2s16(np.float32(left - x1) * m))
                x1 = left
            elif c1 & 2:
                y1 = _s16(y1 + _f2s16(np.float32(right - x1) * m))
                x1 = right
            elif c1 & 4:
                if x2 != x1:
                    x1 = _s16(x1 + _f2s16(np.float32(bottom - y1) / m))
                y1 = bottom
            elif c1 & 8:
                if x2 != x1:
                    x1 = _s16(x1 + _f2s16(np.float32(top - y1) / m))
                y1 = top

        # every pixel written lies on rows min(y1, y2) .. max(y1, y2) + 1
        if min(y1, y2) > wbottom or max(y1, y2) + 1 < wtop:
            return
        top = max(top, wtop)
        bottom = min(bottom, wbottom)

        xx0 = x1
        yy0 = y1
        xx1 = x2
        yy1 = y2
        if yy0 > yy1:
            yy0, yy1 = yy1, yy0
            xx0, xx1 = xx1, xx0
        dx = xx1 - xx0
        dy = yy1 - yy0

        if dx == 0:
            if dy > 0:
                _vline(img, x1, yy0, yy0 + dy, mcolor, left, top, right,
                       bottom, yoff)
            else:
                _put_opaque(img, x1, y1, mcolor, left, top, right, bottom, yoff)
            return
        elif dy == 0:
            _hline(img, xx0, xx0 + dx, y1, mcolor, left, top, right, bottom, yoff)
            return

        if dx >= 0:
            xdir = 1
        else:
            xdir = -1
            dx = -dx

        erracc = 0
        _put_opaque(img, x1, y1, mcolor, left, top, right, bottom, yoff)
        if dy > dx:
            erradj = (((dx << 16) // dy) << 16) & 0xFFFFFFFF
            x0pxdir = xx0 + xdir
            dy -= 1
            while dy != 0:
                tmp = erracc
                erracc = (erracc + erradj) & 0xFFFFFFFF
                if erracc <= tmp:
                    xx0 = x0pxdir
                    x0pxdir += xdir
                yy0 += 1
                wgt = (erracc >> 24) & 255
                _put_weight(img, xx0, yy0, r, g, b, 255 - wgt, fmt, left,
                            top, right, bottom, yoff)
                _put_weight(img, x0pxdir, yy0, r, g, b, wgt, fmt, left,
                            top, right, bottom, yoff)
                dy -= 1
        else:
            erradj = (((dy << 16) // dx) << 16) & 0xFFFFFFFF
            y0p1 = yy0 + 1
            dx -= 1
            while dx != 0:
                tmp = erracc
                erracc = (erracc + erradj) & 0xFFFFFFFF
                if erracc <= tmp:
                    yy0 = y0p1
                    y0p1 += 1
                xx0 += xdir
                wgt = (erracc >> 24) & 255
                _put_weight(img, xx0, yy0, r, g, b, 255 - wgt, fmt, left,
                            top, right, bottom, yoff)
                _put_weight(img, xx0, y0p1, r, g, b, wgt, fmt, left,
                            top, right, bottom, yoff)
                dx -= 1

    @njit(cache=True, inline="always", error_model="numpy")
    def _merge(a, tmp, lo, n1, n2):
        i = lo
        j = lo + n1
        k = 0
        while n1 > 0 and n2 > 0:
            if _s32(a[i] - a[j]) <= 0:
                tmp[k] = a[i]
                i += 1
                n1 -= 1
            else:
                tmp[k] = a[j]
                j += 1
                n2 -= 1
            k += 1
        while n1 > 0:
            tmp[k] = a[i]
            i += 1
            n1 -= 1
            k += 1
        for t in range(k):
            a[lo + t] = tmp[t]

    @njit(cache=True, error_model="numpy")
    def _msort(a, tmp, n, stk):
        # glibc (<= 2.36) msort_with_tmp with _gfxPrimitivesCompareInt
        # (``a - b`` in C int), written without recursion (numba's cache
        # does not handle recursive functions).  stk: int64 (3, >= 64).
        if n <= 1:
            return
        if n == 2:
            _merge(a, tmp, 0, 1, 1)
            return
        sp = 0
        stk[0, 0] = 0
        stk[1, 0] = n
        stk[2, 0] = 0
        sp = 1
        while sp > 0:
            t = sp - 1
            lo = stk[0, t]
            m = stk[1, t]
            state = stk[2, t]
            if m <= 1:
                sp -= 1
            elif state == 0:
                stk[2, t] = 1
                stk[0, sp] = lo
                stk[1, sp] = m // 2
                stk[2, sp] = 0
                sp += 1
            elif state == 1:
                stk[2, t] = 2
                stk[0, sp] = lo + m // 2
                stk[1, sp] = m - m // 2
                stk[2, sp] = 0
                sp += 1
            else:
                _merge(a, tmp, lo, m // 2, m - m // 2)
                sp -= 1

    @njit(cache=True, error_model="numpy")
    def _filled(img, vx, vy, n, mcolor, ints, tmp, stk, edges, left, top,
                right, bottom, yoff):
        # top..bottom: the rows written (the clip rect, or a band of it);
        # each row's span depends only on that row, so bands are exact
        # filledPolygonColorMT
        miny = vy[0]
        maxy = vy[0]
        for i in range(1, n):
            if vy[i] < miny:
                miny = vy[i]
            elif vy[i] > maxy:
                maxy = vy[i]
        # rows outside the clip rect are rejected by hlineColor anyway
        ystart = max(miny, top)
        yend = min(maxy, bottom)
        if ystart > yend:
            return
        # Per-edge setup (same orientation / skipping of horizontal edges as
        # the C loop).  The C code computes, for each active edge and row,
        #   q = (65536 * (y - y1)) / (y2 - y1)      (C int, truncating)
        #   v = q * (x2 - x1) + 65536 * x1          (C int)
        # q is tracked incrementally (exact quotient/remainder stepping)
        # whenever 65536 * (y - y1) cannot overflow, i.e. y2 - y1 < 32768.
        ne = 0
        for i in range(n):
            if i == 0:
                ind1 = n - 1
                ind2 = 0
            else:
                ind1 = i - 1
                ind2 = i
            y1 = vy[ind1]
            y2 = vy[ind2]
            if y1 < y2:
                x1 = vx[ind1]
                x2 = vx[ind2]
            elif y1 > y2:
                y2 = vy[ind1]
                y1 = vy[ind2]
                x2 = vx[ind1]
                x1 = vx[ind2]
            else:
                continue
            if y2 < ystart or y1 > yend:
                continue  # never active on a drawn row
            d = y2 - y1
            edges[0, ne] = y1
            edges[1, ne] = y2
            edges[2, ne] = x2 - x1
            edges[3, ne] = _s32(65536 * x1)
            if d < 32768:
                if ystart > y1:
                    num = 65536 * (ystart - y1)
                    edges[4, ne] = num // d
                    edges[5, ne] = num % d
                else:
                    edges[4, ne] = 0
                    edges[5, ne] = 0
                edges[6, ne] = d
            else:
                edges[6, ne] = -1  # fall back to direct (overflowing) math
            ne += 1
        for y in range(ystart, yend + 1):
            nints = 0
            for e in range(ne):
                y1 = edges[0, e]
                if y < y1:
                    continue
                y2 = edges[1, e]
                d = edges[6, e]
                if d > 0:
                    q = edges[4, e]
                    # advance the quotient to the next row
                    r = edges[5, e] + 65536 % d
                    q2 = q + 65536 // d
                    if r >= d:
                        r -= d
                        q2 += 1
                    edges[4, e] = q2
                    edges[5, e] = r
                else:
                    q = _cdiv(_s32(65536 * (y - y1)), y2 - y1)
                if y < y2 or (y == maxy and y > y1 and y <= y2):
                    ints[nints] = _s32(_s32(q * edges[2, e]) + edges[3, e])
                    nints += 1
            # qsort with comparator ``a - b`` (glibc's merge sort); the
            # comparator's int overflow only matters for spans >= 32768 px
            if nints == 2:
                if _s32(ints[0] - ints[1]) > 0:
                    v = ints[0]
                    ints[0] = ints[1]
                    ints[1] = v
            elif nints > 2:
                _msort(ints, tmp, nints, stk)
            for i in range(0, nints - 1, 2):
                xa = ints[i] + 1
                xa = (xa >> 16) + ((xa & 32768) >> 15)
                xb = ints[i + 1] - 1
                xb = (xb >> 16) + ((xb & 32768) >> 15)
                _hline(img, xa, xb, y, mcolor, left, top, right, bottom, yoff)

    @njit(cache=True, error_model="numpy")
    def _draw_polygons_int(img, vxs, vys, colors, masks, shifts, clip,
                           first_row, last_row, yoff):
        # img[y - yoff, x] is pixel (x, y) of the frame whose clip rect is
        # ``clip``; only rows first_row..last_row are written
        cw = clip[2]
        ch = clip[3]
        if cw == 0 or ch == 0:
            return
        left = _s16(clip[0])
        top = _s16(clip[1])
        right = _s16(clip[0] + cw - 1)
        bottom = _s16(clip[1] + ch - 1)
        wtop = max(top, first_row)
        wbottom = min(bottom, last_row)
        if wtop > wbottom:
            return
        fmt = (masks[0], masks[1], masks[2], masks[3],
               shifts[0], shifts[1], shifts[2], shifts[3])
        npoly = vxs.shape[0]
        n = vxs.shape[1]
        ints = np.empty(n + 1, dtype=np.int64)
        tmp = np.empty(n + 1, dtype=np.int64)
        stk = np.empty((3, 64), dtype=np.int64)
        edges = np.empty((7, n), dtype=np.int64)
        for k in range(npoly):
            r = colors[k, 0] & 255
            g = colors[k, 1] & 255
            b = colors[k, 2] & 255
            mcolor = np.uint32(_map(r, g, b, 255, fmt))
            vx = vxs[k]
            vy = vys[k]
            # aapolygon: closed outline, no endpoints
            for i in range(1, n):
                _aaline(img, vx[i - 1], vy[i - 1], vx[i], vy[i], r, g, b,
                        mcolor, fmt, left, top, right, bottom, wtop, wbottom,
                        yoff)
            _aaline(img, vx[n - 1], vy[n - 1], vx[0], vy[0], r, g, b,
                    mcolor, fmt, left, top, right, bottom, wtop, wbottom,
                    yoff)
            # filled_polygon
            _filled(img, vx, vy, n, mcolor, ints, tmp, stk, edges, left,
                    wtop, right, wbottom, yoff)

    @njit(cache=True, error_model="numpy")
    def _draw_polygons_f(img, polys, colors, masks, shifts, clip, first_row,
                         last_row, yoff):
        npoly = polys.shape[0]
        n = polys.shape[1]
        vxs = np.empty((npoly, n), dtype=np.int64)
        vys = np.empty((npoly, n), dtype=np.int64)
        for k in range(npoly):
            for i in range(n):
                fx = polys[k, i, 0]
                fy = polys[k, i, 1]
                # pygame raises for NaN/inf/out-of-long-range coordinates
                if not (abs(fx) < 4.0e18 and abs(fy) < 4.0e18):
                    return -1
                # int(float) truncates toward zero, then (Sint16) wraps
                vxs[k, i] = _s16(np.int64(fx))
                vys[k, i] = _s16(np.int64(fy))
        _draw_polygons_int(img, vxs, vys, colors, masks, shifts, clip,
                           first_row, last_row, yoff)
        return 0


if AVAILABLE:

    @njit(cache=True, error_model="numpy")
    def _transform_visible(xy, c, s, zoom, tx, ty, keep, show, out_idx,
                           out_xy):
        # Same float64 operations, in the same order, as the numpy version in
        # relreps.envs (and as pygame's Vector2.rotate_rad + scaling); numba
        # does not contract them into fused multiply-adds.
        n = 0
        for k in range(xy.shape[0]):
            drawn = False
            bad = False
            x_lo = np.inf
            x_hi = -np.inf
            y_lo = np.inf
            y_hi = -np.inf
            for i in range(4):
                x = xy[k, i, 0]
                y = xy[k, i, 1]
                px = (c * x - s * y) * zoom + tx
                py = (s * x + c * y) * zoom + ty
                out_xy[n, i, 0] = px
                out_xy[n, i, 1] = py
                if px != px or py != py:
                    bad = True
                if (px >= keep[0] and px <= keep[1] and py >= keep[2]
                        and py <= keep[3]):
                    drawn = True
                x_lo = min(x_lo, px)
                x_hi = max(x_hi, px)
                y_lo = min(y_lo, py)
                y_hi = max(y_hi, py)
            if (drawn and not bad and x_hi >= show[0] and x_lo <= show[1]
                    and y_hi >= show[2] and y_lo <= show[3]):
                out_idx[n] = k
                n += 1
        return n


def transform_visible(xy: np.ndarray, c: float, s: float, zoom: float, trans, keep, show):
    """Rotate, scale and translate ``(N, 4, 2)`` quadrilaterals to the screen as CarRacing does;
    return the indices and screen coordinates ``(K, 4, 2)`` of those that have a vertex inside
    ``keep`` (the stock renderer's test) and whose bounding box meets ``show``. ``keep`` and
    ``show`` are ``(x_min, x_max, y_min, y_max)``."""
    if not AVAILABLE:
        raise ImportError(_NO_NUMBA_MSG)
    xy = np.ascontiguousarray(xy, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[1:] != (4, 2):
        raise ValueError(f"xy must have shape (N, 4, 2), not {xy.shape}")
    out_idx = np.empty(len(xy), np.int64)
    out_xy = np.empty((len(xy), 4, 2))
    n = _transform_visible(xy, float(c), float(s), float(zoom), float(trans[0]), float(trans[1]),
                           np.asarray(keep, np.float64), np.asarray(show, np.float64), out_idx,
                           out_xy)
    return out_idx[:n], out_xy[:n]


_DEFAULT_MASKS = np.array([0xFF0000, 0xFF00, 0xFF, 0], dtype=np.int64)
_DEFAULT_SHIFTS = np.array([16, 8, 0, 0], dtype=np.int64)


def draw_polygons(pixels: np.ndarray, polys: np.ndarray, colors: np.ndarray,
                  masks=None, shifts=None, clip=None, rows=None, band=False) -> None:
    """Draw ``aapolygon`` then ``filled_polygon`` for each polygon, in order.

    pixels: uint32 array ``(W, H)`` indexed ``[x, y]`` (e.g.
        ``pygame.surfarray.pixels2d(surf)``), modified in place.
    polys: float ``(N, K, 2)`` vertex coordinates (K >= 3), exactly as they
        would be passed to gfxdraw (truncated toward zero like pygame does).
    colors: int ``(N, 3)`` opaque RGB colours (alpha 255 implied).
    masks, shifts: pixel format as ``surf.get_masks()`` / ``surf.get_shifts()``
        (default: XRGB8888, the format of ``pygame.Surface((w, h))``).
    clip: ``(x, y, w, h)`` clip rectangle; default the whole array.
    rows: ``(start, stop)``: write only these rows (a band of the frame),
        exactly the pixels that drawing everything would put there. The clip
        rectangle still shapes the outlines, as in SDL_gfx, so drawing the
        bands of a frame one after another gives the same frame as drawing
        it at once; interleaving each band with work on its rows keeps that
        work in the cache.
    band: with ``rows``, ``pixels`` holds only those rows (``pixels[:, 0]`` is
        row ``start``): one small buffer, reused for every band, stays in the
        cache. ``clip`` (required then) is the whole frame's clip rectangle.
    """
    if not AVAILABLE:
        raise ImportError(_NO_NUMBA_MSG)
    if pixels.dtype != np.uint32 or pixels.ndim != 2:
        raise ValueError("pixels must be a 2-D uint32 array")
    polys = np.asarray(polys, dtype=np.float64)
    if polys.ndim != 3 or polys.shape[2] != 2 or polys.shape[1] < 3:
        raise ValueError("polys must have shape (N, K>=3, 2)")
    colors = np.asarray(colors, dtype=np.int64)
    if colors.shape != (polys.shape[0], 3):
        raise ValueError("colors must have shape (N, 3)")
    if polys.shape[0] == 0:
        return
    masks = _DEFAULT_MASKS if masks is None else np.asarray(masks, np.int64)
    if shifts is None:
        shifts = _DEFAULT_SHIFTS
    else:
        shifts = np.asarray(shifts, np.int64)
    if band and (rows is None or clip is None):
        raise ValueError("band=True needs rows and the frame's clip rectangle")
    if clip is None:
        clip = np.array([0, 0, pixels.shape[0], pixels.shape[1]], np.int64)
    else:
        clip = np.asarray(clip, dtype=np.int64)
    if (clip[0] < 0 or clip[1] < 0 or clip[2] < 0 or clip[3] < 0
            or clip[0] + clip[2] > pixels.shape[0]
            or (not band and clip[1] + clip[3] > pixels.shape[1])):
        # (the kernels do not check indices: this keeps every write inside ``pixels``)
        raise ValueError(f"clip rectangle {tuple(int(v) for v in clip)} is not inside the "
                         f"{pixels.shape[0]}x{pixels.shape[1]} pixels")
    first, last, yoff = -(2**31), 2**31, 0
    if rows is not None:
        first, last = int(rows[0]), int(rows[1]) - 1
        if band:
            yoff = first
            if last - first + 1 > pixels.shape[1]:
                raise ValueError(f"a band of rows {tuple(rows)} does not fit in {pixels.shape[1]} rows")
    if not polys.flags.c_contiguous:
        polys = np.ascontiguousarray(polys)
    # the kernels index [y, x]; for pixels2d (Fortran-ordered) the transpose
    # is C-contiguous, which lets numba emit tight row loops
    if _draw_polygons_f(pixels.T, polys, colors, masks, shifts, clip, first, last, yoff) != 0:
        raise ValueError("polygon coordinates must be finite (and < 4e18)")


def draw_polygons_on(surf, polys, colors) -> None:
    """Like :func:`draw_polygons` but on a pygame Surface (format and clip
    rect taken from the surface)."""
    if not AVAILABLE:
        raise ImportError(_NO_NUMBA_MSG)
    import pygame

    masks, shifts, clip = surface_format(surf)
    pixels = pygame.surfarray.pixels2d(surf)
    try:
        draw_polygons(pixels, polys, colors, masks, shifts, clip)
    finally:
        del pixels  # release the surface lock
