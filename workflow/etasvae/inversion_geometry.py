"""Geometry of the ETAS inversion: the pairs (target, earlier event) inside the pair cut, the region as a
polygon (area, membership), and the quadrature of a radial kernel over the region seen from each event.

The region is a rectangle (xmin, xmax, ymin, ymax) or a simple polygon given by its vertices (km, any
orientation). The fraction of a radial kernel with radial CDF F(r) that falls inside the polygon, seen from
an event at E, is the signed sum over the edges of the triangles (E, P_a, P_b): along the direction at angle
phi from an edge's normal the edge is at |d| / cos(phi), d the signed normal distance of E to the edge's line,
so the fraction is (1/2 pi) sum_edges sign(d) int F(min(|d| / cos phi, R)) dphi over the angle the edge
subtends, R the cut radius. The signed sum holds for convex and non-convex polygons alike. Where |phi| >
acos(|d|/R) the cut disc ends first and the integrand is the constant F(R); the rest is Gauss-Legendre with
_SECTOR_NODES nodes per edge.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.spatial import cKDTree

# Gauss-Legendre nodes per edge of the region integral.
_SECTOR_NODES = 16
# Candidate pairs handled at once when the pair list is built (bounds the temporary memory, ~40 bytes each).
_PAIR_CHUNK = 4_000_000
# Source events per k-d tree query when the pairs come from trees (_tree_pairs): bounds the candidates held.
_TREE_BLOCK = 1024
# Events per block of the region quadrature (its dense temporaries: block x edges x nodes).
_QUADRATURE_BLOCK = 8192


def rupture_length_km(magnitude) -> np.ndarray:
    """Subsurface rupture length of Wells & Coppersmith (1994, all slip types): log10 L = -2.44 + 0.59 M (km);
    the `etas` package caps the pairs' distance at a multiple of it."""
    return 10.0 ** (-2.44 + 0.59 * np.asarray(magnitude, dtype=float))


def as_polygon(region) -> np.ndarray:
    """The region's vertices (n, 2), counter-clockwise: a rectangle (xmin, xmax, ymin, ymax) or vertices."""
    arr = np.asarray(region, dtype=float)
    if arr.ndim == 1:
        if arr.size != 4:
            raise ValueError(f"region {region!r}: a rectangle is (xmin, xmax, ymin, ymax)")
        xmin, xmax, ymin, ymax = arr
        if not (xmax > xmin and ymax > ymin):
            raise ValueError(f"region {region!r}: need xmax > xmin and ymax > ymin")
        arr = np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]])
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3 or not np.isfinite(arr).all():
        raise ValueError("a polygon region is an (n >= 3, 2) array of finite vertices (km)")
    if np.allclose(arr[0], arr[-1]):
        arr = arr[:-1]
    return arr[::-1].copy() if _signed_area(arr) < 0 else arr


def _signed_area(vertices: np.ndarray) -> float:
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def polygon_area(region) -> float:
    """Area (km^2) of the region (shoelace formula)."""
    return abs(_signed_area(as_polygon(region)))


def inside_polygon(region, x, y) -> np.ndarray:
    """Whether each point lies inside the region (even-odd rule; points on an edge may go either way)."""
    poly = as_polygon(region)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    inside = np.zeros(x.shape, dtype=bool)
    for (xa, ya), (xb, yb) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (ya > y) != (yb > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = xa + (y - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (x < x_cross)
    return inside


@functools.lru_cache(maxsize=4)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1], computed once (a chain's sampler asks for them per event)."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    nodes.flags.writeable = weights.flags.writeable = False
    return nodes, weights


def polygon_quadrature(x, y, region, radius2):
    """Nodes of F_j = int over the polygon of a radial kernel truncated at R_j (module docstring).

    Returned: ((rho^2 at the nodes, signed weights / 2 pi), (signed angle / 2 pi of the constant parts, R^2)),
    each per event (rows); sum_nodes w F(rho) + const F(R) is the fraction inside."""
    poly = as_polygon(region)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = x.size
    edge = np.roll(poly, -1, axis=0) - poly
    length = np.hypot(edge[:, 0], edge[:, 1])
    e = edge / length[:, None]
    normal = np.column_stack([e[:, 1], -e[:, 0]])  # outward for a counter-clockwise polygon
    ax, ay = poly[:, 0][None, :] - x[:, None], poly[:, 1][None, :] - y[:, None]  # (N, edges)
    d_signed = ax * normal[:, 0] + ay * normal[:, 1]
    s_a = ax * e[:, 0] + ay * e[:, 1]
    s_b = s_a + length
    d = np.abs(d_signed)
    sign = np.sign(d_signed)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo_angle = np.arctan2(s_a, d)
        hi_angle = np.arctan2(s_b, d)
        r = np.sqrt(radius2)[:, None] if radius2 is not None else np.full((n, 1), np.inf)
        phi_star = np.where(d < r, np.arccos(np.minimum(d / r, 1.0)), 0.0)
    lo = np.maximum(lo_angle, -phi_star)
    hi = np.minimum(hi_angle, phi_star)
    width = np.maximum(hi - lo, 0.0)
    const_angle = (sign * ((hi_angle - lo_angle) - width)).sum(axis=1) / (2.0 * math.pi)
    nodes, weights = _gauss_legendre(_SECTOR_NODES)
    phi = 0.5 * (lo + hi)[..., None] + 0.5 * width[..., None] * nodes  # (N, edges, nodes)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho2 = np.where(width[..., None] > 0, (d[..., None] / np.cos(phi)) ** 2, 0.0)
    w = (sign * 0.5 * width)[..., None] * weights / (2.0 * math.pi)
    r2 = radius2 if radius2 is not None else np.full(n, np.inf)
    return (rho2.reshape(n, -1), w.reshape(n, -1)), (const_angle, r2)


def _region_quadrature(x, y, reg, radius2):
    """_grouped_quadrature for events with rectangles ``reg`` (rows xmin, xmax, ymin, ymax), one per event."""
    reg = np.asarray(reg, dtype=float)
    x = np.clip(x, reg[:, 0], reg[:, 1])
    y = np.clip(y, reg[:, 2], reg[:, 3])
    uniq, which = np.unique(reg, axis=0, return_inverse=True)
    (rho2, w, _owner), const = _grouped_quadrature(x, y, [tuple(u) for u in uniq], which.reshape(-1), radius2)
    return (rho2, w), const


def _grouped_quadrature(x, y, regions, which, radius2):
    """polygon_quadrature of the events with region ``regions[which[i]]``, kept sparse: the nodes of the
    edges that the cut disc reaches only, as flat arrays (rho^2, weight, owner event), and per event the
    constant part (its weight, R^2). Events are taken _QUADRATURE_BLOCK at a time (bounded temporaries)."""
    n = x.size
    const, r2 = np.zeros(n), np.full(n, np.inf)
    rho_parts, w_parts, owner_parts = [], [], []
    for k, region in enumerate(regions):
        members = np.flatnonzero(which == k)
        for idx in np.array_split(members, max(-(-members.size // _QUADRATURE_BLOCK), 1)):
            if not idx.size:
                continue
            (rr, ww), (cc, rad) = polygon_quadrature(x[idx], y[idx], region, None if radius2 is None else radius2[idx])
            keep = ww != 0.0
            rho_parts.append(rr[keep])
            w_parts.append(ww[keep])
            owner_parts.append(np.broadcast_to(idx[:, None], ww.shape)[keep])
            const[idx], r2[idx] = cc, rad
    cat = (lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt))
    return (cat(rho_parts, float), cat(w_parts, float), cat(owner_parts, np.int64)), (const, r2)


def _pairs(t, x, y, offsets, target, t_cut, radius2):
    """Pairs (i, j): target i, earlier event j of the same sequence, t_i - t_j < T_cut and r_ij < R_j.

    Returns (rank of i among the targets, j, lag t_i - t_j, r_ij^2 or None). Candidates come from a sweep
    over time (chunks of _PAIR_CHUNK) or, for the space-time model when there are many, from k-d trees with
    the sources grouped by cut radius (factors of 2), so that memory follows the pairs kept, not N^2.
    """
    target_rank = np.cumsum(target) - 1
    lo = np.empty(t.size, dtype=np.int64)
    hi = np.empty(t.size, dtype=np.int64)
    for a, b in zip(offsets[:-1], offsets[1:]):
        ts = t[a:b]
        lo[a:b] = a + (np.searchsorted(ts, ts - t_cut, side="right") if math.isfinite(t_cut) else 0)
        hi[a:b] = a + np.searchsorted(ts, ts, side="left")
    tgt_index = np.flatnonzero(target)
    counts = (hi - lo)[tgt_index]
    if radius2 is not None and counts.sum() > 4 * _PAIR_CHUNK:
        parts = [_tree_pairs(t, x, y, a, b, target, t_cut, radius2) for a, b in zip(offsets[:-1], offsets[1:])]
    else:
        parts = []
        cum = np.cumsum(counts)
        start = 0
        while start < tgt_index.size:
            base = cum[start - 1] if start else 0
            stop = max(int(np.searchsorted(cum, base + _PAIR_CHUNK, side="right")), start + 1)
            idx, cnt = tgt_index[start:stop], counts[start:stop]
            ii = np.repeat(idx, cnt)
            jj = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo[idx], cnt)
            keep = np.ones(ii.size, dtype=bool)
            r2 = None
            if radius2 is not None:
                r2 = (x[ii] - x[jj]) ** 2 + (y[ii] - y[jj]) ** 2
                keep = r2 < radius2[jj]
                r2 = r2[keep]
            index = np.int32 if t.size < 2**31 else np.int64
            parts.append((ii[keep].astype(index), jj[keep].astype(index), r2))
            start = stop
    ii = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    jj = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    r2 = np.concatenate([p[2] for p in parts]) if parts and radius2 is not None else None
    return target_rank[ii].astype(ii.dtype), jj, t[ii] - t[jj], r2


def _tree_pairs(t, x, y, a, b, target, t_cut, radius2):
    """_pairs for the events a..b-1 of one sequence, from k-d trees (see _pairs)."""
    xy = np.column_stack([x[a:b], y[a:b]])
    tree = cKDTree(xy)
    r = np.sqrt(radius2[a:b])
    level = np.floor(np.log2(np.maximum(r, 1e-300))).astype(np.int64)
    out = []
    for lv in np.unique(level):
        # the sources of a level in blocks of _TREE_BLOCK: each block's candidates (both time orders, before
        # the filter) are held at once, not the level's
        members = np.flatnonzero(level == lv)
        for src in np.array_split(members, -(-members.size // _TREE_BLOCK)):
            found = cKDTree(xy[src]).sparse_distance_matrix(tree, float(r[src].max()), output_type="ndarray")
            j = src[found["i"]]
            i = found["j"].astype(np.int64)
            gi, gj = i + a, j + a
            keep = (found["v"] < r[j]) & (t[gi] > t[gj]) & (t[gi] - t[gj] < t_cut) & target[gi]
            del found
            index = np.int32 if t.size < 2**31 else np.int64
            gi, gj = gi[keep].astype(index), gj[keep].astype(index)
            out.append((gi, gj, (x[gi] - x[gj]) ** 2 + (y[gi] - y[gj]) ** 2))
    ii = np.concatenate([o[0] for o in out])
    order = np.argsort(ii, kind="stable")
    return ii[order], np.concatenate([o[1] for o in out])[order], np.concatenate([o[2] for o in out])[order]
