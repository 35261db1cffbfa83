"""Latent interpolation: windows decoded along a straight latent line from a quiet window to a mainshock."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from ..features import check_spec, windows_to_catalog
from ..models.files import ModelBundle
from .embedding import latent_columns
from ..plotting import panel_figure, save_png
from ..threads import one_thread


@torch.no_grad()
@one_thread
def interpolation_windows(bundle: ModelBundle, embedding: pd.DataFrame, steps: int = 6
                          ) -> tuple[pd.DataFrame, np.ndarray, pd.Series, pd.Series]:
    """Decoded windows (decoder mean) along the straight line between the latent means of a quiet window
    (lowest max magnitude) and of a window holding a large mainshock (highest max magnitude), both taken
    from the held-out and training windows. Returns (catalog with ``window`` = step, fractions along the
    line, quiet row, mainshock row)."""
    if steps < 2:
        raise ValueError(f"interpolation needs steps >= 2, got {steps}")
    zc, _ = latent_columns(embedding)
    pool = embedding[embedding["role"].isin(["heldout", "train"]) & embedding["max_magnitude"].notna()]
    if pool.empty:
        pool = embedding[embedding["max_magnitude"].notna()]
    if pool.empty:
        raise ValueError("interpolation: no window with events to start from")
    quiet = pool.loc[pool["max_magnitude"].idxmin()]
    loud = pool.loc[pool["max_magnitude"].idxmax()]
    frac = np.linspace(0.0, 1.0, steps)
    z0 = quiet[zc].to_numpy(dtype=np.float32)
    z1 = loud[zc].to_numpy(dtype=np.float32)
    Z = (1.0 - frac[:, None]) * z0[None, :] + frac[:, None] * z1[None, :]
    model = bundle.model.eval()
    dev = next(model.parameters()).device
    out = model.likelihood_mean(model.decode(torch.from_numpy(Z.astype(np.float32)).to(dev))).cpu().numpy()
    X = bundle.transform.inverse(out)
    catalog = windows_to_catalog(X, check_spec(bundle.spec), t0=0.0)
    return catalog, frac, quiet, loud


def plot_interpolation(bundle: ModelBundle, embedding: pd.DataFrame, path: str | os.PathLike, *,
                       title: str, steps: int = 6) -> None:
    """PNG: magnitude-time stem plots of the decoded windows along the latent line from a quiet window to a
    window holding a large mainshock (interpolation_windows); one panel per step, shared axes."""
    catalog, frac, quiet, loud = interpolation_windows(bundle, embedding, steps)
    mc = float(check_spec(bundle.spec)["mc"])
    fig, axes = panel_figure(steps, ncols=3, panel=(4.0, 2.8), share=True)
    top = max(float(catalog["magnitude"].max()) if len(catalog) else mc + 1, mc + 1)
    for step, ax in enumerate(axes):
        ev = catalog[catalog["window"] == step]
        t, m = ev["time"].to_numpy(), ev["magnitude"].to_numpy()
        ax.vlines(t, mc, m, color="tab:blue", linewidth=0.8)
        ax.scatter(t, m, s=10, color="tab:blue", zorder=3)
        if len(m):
            i = int(np.argmax(m))
            ax.scatter([t[i]], [m[i]], s=60, marker="*", color="tab:red", zorder=4,
                       label=f"largest: M {m[i]:.1f}")
            ax.legend(fontsize=7, loc="upper right")
        name = ""
        if step == 0:
            name = f" — quiet window (max M {quiet['max_magnitude']:.1f})"
        elif step == steps - 1:
            name = f" — mainshock window (max M {loud['max_magnitude']:.1f})"
        ax.set_title(f"step {step}: λ = {frac[step]:.2f}{name}", fontsize=9)
        ax.set_xlabel("time since window start [days]")
        ax.set_ylabel("magnitude")
        ax.set_ylim(mc - 0.05, top + 0.3)
        ax.grid(alpha=0.3)
        ax.label_outer()
    how = "decoded windows (decoder mean) along z = (1 − λ)·z_quiet + λ·z_mainshock"
    if check_spec(bundle.spec)["representation"] == "binned":
        how += "\n(binned: events spread evenly over each time bin × magnitude band cell)"
    fig.suptitle(f"{title}\n{how}")
    save_png(fig, path, tight=True)
