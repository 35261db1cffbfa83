"""The evaluate stage end to end: one model's sets, comparison table, figures and metrics.json document."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .compare import compare_sets
from .figures import plot_comparison_figures
from .reference import reference_table
from .sets import evaluation_sets
from .caveats import small_set_warnings
from .verdict import group_scores, overall_score, verdict, verdict_class


def evaluate_model(
    table: pd.DataFrame,
    catalogs: Mapping[tuple[str, int], pd.DataFrame | str | os.PathLike],
    spec: dict[str, Any],
    synthetic: pd.DataFrame | str | os.PathLike,
    synthetic_meta: dict[str, Any],
    *,
    config_id: str,
    seed: int,
    permutations: int,
    cv_folds: int,
    figures_dir: str | os.PathLike,
    title: str,
    etas_fits: dict[str, Any] | None = None,
    real: bool = False,
    references: Mapping[tuple[str, int], pd.DataFrame | str | os.PathLike] | None = None,
    reference_windows: int = 0,
    duration_days: float | None = None,
    max_windows: int = 500,
    mmd_windows: int | None = None,
    synthetic_label: str | None = None,
) -> tuple[pd.DataFrame, dict[str, int], dict[str, str]]:
    """Compare a model's synthetic windows with its held-out windows (next to A and P) and draw the figures.

    ``catalogs`` maps (config id, replicate) to the catalogs the windows were cut from, or to their files
    (H and A are their events, see :func:`~etasvae.evaluate.sets.catalog_windows`; files are read one at a
    time); ``synthetic`` is the synthetic catalog or its file; ``config_id`` names the config of a
    table without a ``config_id`` column. One generator seeded with ``seed`` builds the sets and then runs
    every randomised statistic, in that order. ``etas_fits`` (the "fits" of the model's ``estimates.json``;
    None for the pooled model) adds the ETAS-parameter rows. ``references`` maps (config id, replicate) to
    the reference catalogs (:mod:`~etasvae.evaluate.reference`; replicates of ``duration_days``): with them
    H grows by the even ones and A is the odd ones, S, H and A of one size (at most ``reference_windows``
    when > 0; :func:`~etasvae.evaluate.sets.evaluation_sets`). ``max_windows``: windows per set for the classifier
    test and the pair correlation, ``mmd_windows`` for MMD (default ``max_windows``). ``real``: the model is a dataset's (H and A
    are its held-out and training periods; the figures say so). ``synthetic_label``: the figures' legend of S where S
    is not a VAE's (a dataset's ETAS fit simulated over the held-out period). Returns (comparison table, windows per set, {figure name: path}).
    """
    rng = np.random.default_rng(seed)
    reference = None
    if references:
        reference = reference_table(references, spec, duration_days, pooled="config_id" in table)
        catalogs = {**catalogs, **references}
    sets = evaluation_sets(table, catalogs, spec, synthetic, rng=rng, n_synthetic=synthetic_meta["n_windows"],
                           config_id=config_id, reference=reference, reference_windows=reference_windows)
    metrics = compare_sets(
        sets["S"], sets["H"], sets["A"], sets["P"], mc=spec["mc"], rng=rng, n_permutations=permutations, cv_folds=cv_folds,
        etas_fits=etas_fits, max_windows=max_windows, mmd_windows=mmd_windows,
    )
    figures = plot_comparison_figures(sets, mc=spec["mc"], outdir=figures_dir, title=title, real=real,
                                      synthetic_label=synthetic_label)
    return metrics, {k: len(v) for k, v in sets.items()}, figures


def evaluation_summary(
    metrics: pd.DataFrame,
    *,
    config_id: str,
    vae_id: str,
    settings: dict[str, Any],
    n_windows: dict[str, int],
    health: dict[str, Any],
    figures: dict[str, str],
    cv_folds: int = 5,
    real: bool = False,
    floor_set: str = "training",
) -> dict[str, Any]:
    """The metrics.json document of one model (docs/outputs.md), in its key order.

    ``verdict_class`` is the verdict in one word ("separated" where a whole-window test tells S from H,
    else floor / partial / naive); ``warnings`` says where a set is too small for the tests to mean much
    (:func:`~etasvae.evaluate.caveats.small_set_warnings`). ``real``: a dataset's model (the verdict speaks
    of its held-out and training periods). ``floor_set``: where A comes from, "reference" (reference
    catalogs, evaluation only) or "training" (the training windows).
    """
    return {
        "config_id": config_id,
        "vae_id": vae_id,
        "settings": dict(settings),
        "overall_score": overall_score(metrics),
        "group_scores": group_scores(metrics),
        "verdict": verdict(metrics, real=real),
        "verdict_class": verdict_class(metrics),
        "warnings": small_set_warnings(n_windows, cv_folds=cv_folds, real=real),
        "n_windows": n_windows,
        "floor_set": floor_set,
        "health": health,
        "figures": figures,
        "statistics": metrics.set_index("statistic").to_dict(orient="index"),
    }
