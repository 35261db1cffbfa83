"""The inhomogeneous ETAS background: a kernel-smoothed density of the training events weighted by their
background probabilities (stochastic declustering, Zhuang, Ogata & Vere-Jones 2002).

u(x) = sum_j phi_j k_j(x - x_j) / sum_j phi_j M_j, k_j the isotropic Gaussian of bandwidth h_j = max(the
distance to the ``neighbours``-th nearest event, ``min_bandwidth``) (Zhuang et al.'s variable bandwidth),
phi_j the probability that event j is a background event, M_j the mass of k_j inside the region (the region
quadrature of etasvae.inversion_geometry with the Gaussian's radial CDF 1 - exp(-r^2 / 2 h^2)), so that u
integrates to 1 over the region. The fit alternates: the ETAS fit given u, then u from that fit's phi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .inversion_geometry import polygon_quadrature

# Sources per k-d tree query (bounds the candidates held at once).
_BLOCK = 2048
# The Gaussian is cut at this many bandwidths (its mass beyond is e^-18: below rounding of u's sums).
_REACH = 6.0


@dataclass
class BackgroundDensity:
    """A normalised smoothed density over the region (1/km^2)."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray  # phi_j / sum_j phi_j M_j
    bandwidth: np.ndarray  # km

    def __call__(self, x, y) -> np.ndarray:
        """u at the points (x, y)."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        out = np.zeros(x.size)
        if not x.size:
            return out
        points = cKDTree(np.column_stack([x, y]))
        level = np.floor(np.log2(self.bandwidth)).astype(np.int64)
        xy = np.column_stack([self.x, self.y])
        for lv in np.unique(level):
            members = np.flatnonzero(level == lv)
            for src in np.array_split(members, -(-members.size // _BLOCK)):
                h = self.bandwidth[src]
                found = cKDTree(xy[src]).sparse_distance_matrix(points, float(_REACH * h.max()), output_type="ndarray")
                j, i, r = src[found["i"]], found["j"], found["v"]
                hj = self.bandwidth[j]
                dens = self.weight[j] * np.exp(-0.5 * (r / hj) ** 2) / (2.0 * math.pi * hj * hj)
                out += np.bincount(i, weights=dens, minlength=x.size)
        return out

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": self.x.tolist(), "y": self.y.tolist(), "weight": self.weight.tolist(),
                "bandwidth": self.bandwidth.tolist()}

    @classmethod
    def from_dict(cls, d) -> "BackgroundDensity":
        return cls(*(np.asarray(d[k], dtype=float) for k in ("x", "y", "weight", "bandwidth")))


def smoothed_background(x, y, probability, region, *, neighbours: int = 10,
                        min_bandwidth: float = 1.0) -> BackgroundDensity:
    """u from the events at (x, y) with background probabilities ``probability`` (module docstring)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    phi = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    k = min(neighbours, x.size - 1)
    if k >= 1:
        dist, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=k + 1)
        h = np.maximum(dist[:, -1], min_bandwidth)
    else:
        h = np.full(x.size, min_bandwidth)
    (rho2, w), (const, _) = polygon_quadrature(x, y, region, None)
    mass = (w * -np.expm1(-0.5 * rho2 / (h * h)[:, None])).sum(axis=1) + const
    norm = float(np.sum(phi * mass))
    if not norm > 0:
        raise ValueError("no background weight inside the region: the smoothed background is undefined")
    return BackgroundDensity(x, y, phi / norm, h)
