"""The autoregressive intensity's ETAS globals from a whole-catalog fit of the training catalogs.

A window's likelihood without its history cannot see the parents older than the window: trained on windows
alone, the intensity explains their aftershocks by a larger background and one virtual parent, and its
branching ratio is squeezed toward 0.4 whatever the truth (docs/generator-diagnosis.md, finding 3). The
training windows of one catalog source (an ETAS config's training replicates, or a real dataset's training
period) overlap by their stride and so hold every training event of each catalog: ``training_sequences``
rebuilds those catalogs, ``fit_training_catalogs`` fits the space-time ETAS model to them with each event's
full history (etasvae.inversion, the maximum-likelihood estimate; space-time because its spatial pair cut
makes it several times cheaper than the temporal fit on a whole catalog, and steadier), and
``freeze_globals`` sets mu, K, alpha, c and p of ``ExcitationIntensity`` and D, gamma, q of the offset
kernel to that estimate and keeps them there during training. z then models only what the window inherits
from its unseen past (the virtual parents). A pooled model (configs of different productivity) or a fit
that is not usable keeps the windows' own starting fits.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ..features import check_spec, windows_to_catalog
from ..inversion import InversionError, Sequence, fit_sequences

FIT_EVENTS = 20000     # target events of the fit at most, shared by the catalogs (the default run's: 10,000-19,000)
HISTORY_DAYS = 30.0    # each catalog's first days are history only (the fit's aux period)


def training_sequences(table: pd.DataFrame, X: np.ndarray, spec: dict[str, Any],
                       fit_events: int = FIT_EVENTS) -> list[Sequence]:
    """One sequence per catalog (replicate) of the training windows (``table`` rows with role "train", X
    their features): its events above Mc rebuilt from the windows (``windows_to_catalog`` with t0 = t_ref and
    the first events' positions), each once: window k after window k - 1 of the same catalog shares its first
    L - stride events (the windows start every ``stride`` events), which are dropped when its event L - stride - 1
    is window k - 1's last. The first HISTORY_DAYS are history only, then targets up to about ``fit_events`` /
    number of catalogs events, in the region. Empty when the windows are not event windows."""
    spec = check_spec(spec)
    if spec["representation"] != "event":
        return []
    L, S = spec["length"], spec["stride"]
    train = (table["role"] == "train").to_numpy()
    table, X = table[train].reset_index(drop=True), np.asarray(X)[train]
    groups = list(table.groupby("replicate", sort=True).indices.values())
    per = max(1, fit_events // max(len(groups), 1))
    out = []
    for rows in groups:
        rows = rows[np.argsort(table["t_start"].to_numpy()[rows], kind="stable")]
        cat = windows_to_catalog(X[rows], spec, t0=table["t_ref"].to_numpy()[rows])
        t = cat["time"].to_numpy(np.float64).reshape(len(rows), L)
        keep = np.ones((len(rows), L), dtype=bool)
        if 0 < S < L:
            t_end = table["t_end"].to_numpy()[rows]
            shared = np.abs(t[1:, L - S - 1] - t_end[:-1]) <= 1e-5 * np.maximum(1.0, np.abs(t_end[:-1]))
            keep[1:, :L - S] &= ~shared[:, None]
        keep = keep.ravel()
        t = t.ravel()[keep]
        m = cat["magnitude"].to_numpy(np.float64)[keep]
        x = (cat["x"].to_numpy(np.float64) + np.repeat(table["x_first"].to_numpy()[rows], L))[keep]
        y = (cat["y"].to_numpy(np.float64) + np.repeat(table["y_first"].to_numpy()[rows], L))[keep]
        t0 = t[0] + HISTORY_DAYS
        targets = np.flatnonzero(t >= t0)
        if len(targets) < 2:
            continue
        last = targets[min(per, len(targets)) - 1]   # the window ends halfway to the next event
        t1 = 0.5 * (t[last] + t[last + 1]) if last + 1 < len(t) else t[last] + 1e-6
        inside = t < t1
        out.append(Sequence(t[inside], m[inside], x[inside], y[inside], float(t0), float(t1),
                            tuple(spec["region_km"])))
    return out


def fit_training_catalogs(table: pd.DataFrame, X: np.ndarray, spec: dict[str, Any], *,
                          log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """The space-time ETAS maximum-likelihood fit of the training catalogs (``training_sequences``): a dict of
    estimates, std_errors, n_target, n_sequences, or None (and a log line saying why) for windows of several
    configs (a pooled table), binned windows, too few events or a fit that is not usable."""
    if "config_id" in table.columns and table["config_id"].nunique() > 1:
        log("intensity: windows of several configs; the globals start at the windows' own fit")
        return None
    seqs = training_sequences(table, X, spec)
    if not seqs:
        return None
    try:
        fit = fit_sequences(seqs, mc=spec["mc"], model="space-time", n_starts=1)
    except InversionError as err:
        log(f"intensity: the training catalogs' ETAS fit failed ({err}); the globals start at the windows' own fit")
        return None
    if not fit.usable:
        log(f"intensity: the training catalogs' ETAS fit is not usable ({'; '.join(fit.problems)}); "
            "the globals start at the windows' own fit")
        return None
    keys = ("mu", "K", "alpha", "c", "p", "D", "gamma", "q", "branching_ratio")
    out = {"estimates": {k: float(fit.estimates[k]) for k in keys},
           "std_errors": {k: float(fit.std_errors.get(k, math.nan)) for k in keys},
           "n_target": int(fit.n_target), "n_sequences": int(fit.n_sequences)}
    log("intensity: ETAS fit of %d training events in %d catalogs: %s" % (
        fit.n_target, fit.n_sequences, ", ".join(f"{k} {v:.4g}" for k, v in out["estimates"].items())))
    return out


def _inverse_softplus(x: float) -> float:
    return x + math.log(-math.expm1(-x))


@torch.no_grad()
def freeze_globals(intensity, estimates: dict[str, float], heads=None) -> None:
    """Set mu, K, alpha, c, p of an ``ExcitationIntensity`` to ``estimates`` and stop their training, with
    the productivity's dependence on z (zero: one K per config, as in ETAS); the virtual parents stay free.
    With ``heads`` (``EventHeads``) also the offset kernel's D, gamma and q (the fit's spatial kernel, the
    same f(r | m) = (q-1)/(pi s) (1 + r^2/s)^-q with s = D e^(gamma (m - Mc)), normalised as the fit's
    region integral sees it, where the windows' own fit trades D against q: docs/generator-diagnosis.md)."""
    intensity.log_mu.fill_(math.log(estimates["mu"]))
    intensity.log_K.fill_(math.log(estimates["K"]))
    intensity.raw_alpha.fill_(_inverse_softplus(max(estimates["alpha"], 1e-3)))
    intensity.log_c.fill_(math.log(estimates["c"]))
    intensity.raw_p.fill_(_inverse_softplus(max(estimates["p"] - 1.0 - 1e-3, 1e-4)))
    intensity.productivity_head.weight.zero_()
    intensity.productivity_head.bias.zero_()
    frozen = [intensity.log_mu, intensity.log_K, intensity.raw_alpha, intensity.log_c, intensity.raw_p,
              *intensity.productivity_head.parameters()]
    if heads is not None and all(k in estimates for k in ("D", "gamma", "q")):
        heads.log_D.fill_(math.log(estimates["D"]))
        heads.raw_gamma.fill_(estimates["gamma"])
        heads.raw_q.fill_(_inverse_softplus(max(estimates["q"] - 1.0 - 1e-3, 1e-4)))
        frozen += [heads.log_D, heads.raw_gamma, heads.raw_q]
    for q in frozen:
        q.requires_grad_(False)


SHARED = ("alpha", "c", "p", "D", "gamma", "q")   # one value for every config of a conditional model


@torch.no_grad()
def freeze_conditional_globals(intensity, fits: list[tuple[np.ndarray, dict[str, float]]], heads=None) -> None:
    """``freeze_globals`` for a model conditioned on ``n_cond`` standardised values c (the surrogate), from
    the training catalogs' fits of several configs (``fits``: (c, estimates) per config): log mu and log K
    are the least-squares lines in c through the configs' estimates (``background_head`` and the c columns of
    ``productivity_head``, z's columns zero), alpha, c, p, D, gamma, q the configs' mean (c's geometric
    mean); all frozen. With one config (or n_cond = 0) this is ``freeze_globals`` of its estimates."""
    C = np.array([np.asarray(c, dtype=float).reshape(-1) for c, _ in fits]).reshape(len(fits), -1)
    design = np.column_stack([np.ones(len(fits)), C])

    def line(key: str) -> np.ndarray:
        return np.linalg.lstsq(design, np.log([est[key] for _, est in fits]), rcond=None)[0]

    shared = {k: float(np.mean([est[k] for _, est in fits])) for k in SHARED if all(k in est for _, est in fits)}
    shared["c"] = float(np.exp(np.mean([math.log(est["c"]) for _, est in fits])))
    mu_line, k_line = line("mu"), line("K")
    freeze_globals(intensity, {**shared, "mu": math.exp(mu_line[0]), "K": math.exp(k_line[0])}, heads)
    n_cond = getattr(intensity, "n_cond", 0)
    if n_cond and C.shape[1] == n_cond:
        intensity.background_head.weight.copy_(torch.tensor(mu_line[1:], dtype=torch.float32)[None, :])
        intensity.background_head.bias.zero_()
        intensity.productivity_head.weight[0, -n_cond:] = torch.tensor(k_line[1:], dtype=torch.float32)
        for q in intensity.background_head.parameters():
            q.requires_grad_(False)
