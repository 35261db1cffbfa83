"""Figure helpers shared by every stage that draws: new figures, panel grids, atomic PNG files."""

from __future__ import annotations

import base64
import io
import math
import os

from .fileio import atomic_write

DPI = 110


def new_figure(figsize=(8.0, 5.2)):
    """A matplotlib Figure (no pyplot state) with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def panel_figure(n_panels: int, ncols: int = 3, panel: tuple[float, float] = (4.2, 3.6), share: bool = False):
    """A Figure with ``n_panels`` axes on a grid of ``ncols`` columns (spare axes hidden): (fig, axes)."""
    from matplotlib.figure import Figure

    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=share, sharey=share).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def save_png(fig, path: str | os.PathLike, *, tight: bool = False) -> str:
    """Write ``fig`` as a PNG atomically (``tight``: tight_layout first); returns the path as a string."""
    if tight:
        fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    return str(path)


def png_data_uri(fig, dpi: int = 100) -> str:
    """``fig`` as a base64 PNG data URI, for self-contained HTML pages."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
