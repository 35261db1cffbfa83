"""The starting fits of the sequence VAE's globals (``models.sequence_training.init_from_data``) against the ETAS
parameters that simulated the training windows: the position globals (``EventHeads.init_position_from_data``)
within sampling error of the truth, with the standard errors from the fit's own observed information."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from etasvae.features import FeatureTransform
from etasvae.models.sequence import Batch, Events, SequenceVAE, features_of_events, window_times
from etasvae.models.sequence_training import init_from_data
from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas

MC = 2.5
L = 32
N_WINDOWS = 128          # INIT_WINDOWS: the fit sees every window
SPEC = {"representation": "event", "length": L, "stride": L, "mc": MC, "xy_scale_km": 5.0, "min_dt_days": 1e-6,
        "region_km": [0.0, 100.0, 0.0, 100.0], "mmax": 7.5}
TRUTH = ETASParams(mu=5.0, K=0.3, alpha=1.5, c=0.01, p=1.1, D=0.5, q=1.5, gamma=1.0, b=1.0, mc=MC)
DECODERS = ("mlp", "autoregressive")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def softplus_inverse(x: float) -> float:
    return math.log(math.expm1(x))


@pytest.fixture(scope="module")
def etas_windows() -> tuple[torch.Tensor, torch.Tensor]:
    """N_WINDOWS windows, each the first L events of its own ETAS catalog started empty (no burn-in, no margin):
    every event's parent is in its window or it is a background event, so the position mixture (background,
    parents weighted by productivity times Omori) is the model that made the data, up to the few aftershocks
    whose parent landed outside the region."""
    rng = np.random.default_rng(7)
    wins = []
    while len(wins) < N_WINDOWS:
        cat = simulate_etas(TRUTH, duration=40.0, region=(0.0, 100.0, 0.0, 100.0), rng=rng)
        if len(cat) >= L:
            wins.append(cat.iloc[:L])
    t = np.stack([w["time"].to_numpy() for w in wins])
    ev = Events(torch.tensor(np.log(np.diff(t, axis=1, prepend=0.0).clip(1e-6)), dtype=torch.float32),
                torch.tensor(np.stack([w["magnitude"].to_numpy() for w in wins]) - MC, dtype=torch.float32),
                torch.tensor(np.stack([w[["x", "y"]].to_numpy() for w in wins]), dtype=torch.float32))
    return features_of_events(ev, SPEC)


def started(decoder: str, X: torch.Tensor, origin: torch.Tensor) -> SequenceVAE:
    torch.manual_seed(0)
    vae = SequenceVAE(L, 3, [32], decoder, SPEC)
    init_from_data(vae, FeatureTransform.fit(X.numpy(), kind="standard"), X, origin, SPEC)
    return vae


def position_nll(vae: SequenceVAE, b: Batch) -> torch.Tensor:
    """The starting fit's objective summed over the windows: -log density of every position after the first,
    contexts' weights zero (ctx = 0, z = 0), the cluster at each window's median event."""
    h, w = vae.heads, b.window
    n = b.n
    ctx, z = torch.zeros(n, L, h.pos_head.in_features), torch.zeros(n, h.cluster_head.in_features)
    m, centre = w.m.clamp_min(0.0), w.xy.median(dim=1).values[:, None, :]
    if vae.decoder_kind == "autoregressive":
        with torch.no_grad():
            _, log_mu, terms = vae.intensity.window_log_prob(torch.zeros(n, vae.latent_dim), w.ln_dt, m)
        lp = h.excited_position(ctx, z[:, None, :], log_mu[:, None], terms, w.xy[:, None], m[:, None],
                                centre=centre).log_prob(w.xy)
    else:
        lp = h.position_log_prob(ctx, z, window_times(w.ln_dt), m, w.xy, centre=centre)
    return -lp[:, 1:].sum()


def fitted_with_errors(vae: SequenceVAE, b: Batch, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The heads' scalar parameters ``names`` at the fit and their standard errors: the square roots of the
    diagonal of the inverse observed information (the Hessian of the summed NLL in those parameters)."""
    h = vae.heads
    theta = torch.stack([getattr(h, n).detach() for n in names]).requires_grad_(True)
    saved = {n: h._parameters[n] for n in names}
    try:
        for i, n in enumerate(names):
            h._parameters[n] = theta[i]
        grad = torch.autograd.grad(position_nll(vae, b), theta, create_graph=True)[0]
        hess = torch.stack([torch.autograd.grad(grad[i], theta, retain_graph=True)[0] for i in range(len(names))])
    finally:
        h._parameters.update(saved)
    cov = torch.linalg.inv(hess.detach().double())
    return theta.detach().double().numpy(), cov.diag().sqrt().numpy()


@pytest.mark.parametrize("decoder", DECODERS)
def test_position_fit_recovers_the_kernels_magnitude_scaling(decoder, etas_windows):
    """gamma (start 0, truth 1) within 3.5 standard errors of the truth (about 0.2 here; two-sided p ~ 5e-4),
    and 8 standard errors away from its start. Without the fit gamma stays at 0, 10+ standard errors off.
    D and q are not asserted: the kernel is normalised over the plane while offsets are seen only inside the
    region, which biases both (even the fit on the true parent-child offsets gives D 0.77, q 1.66)."""
    X, origin = etas_windows
    vae = started(decoder, X, origin)
    theta, se = fitted_with_errors(vae, Batch(X, origin, SPEC), ["log_D", "raw_gamma", "raw_q"])
    gamma, se_gamma = theta[1], se[1]
    assert np.isfinite(se).all() and 0.0 < se_gamma < 0.2
    assert abs(gamma - TRUTH.gamma) < 3.5 * se_gamma, (gamma, se_gamma)
    assert gamma > 8.0 * se_gamma


def test_position_fit_recovers_the_mlp_parent_weights_productivity(etas_windows):
    """The mlp decoder's parent weights exp(a + alpha (m_j - Mc)) / (t_i - t_j + c)^p are the ETAS branching
    odds, so its fitted alpha (start 1.31, i.e. raw 1.0, 4.7 standard errors from the truth's raw 1.26; truth 1.5)
    lies within 3.5 standard errors of the truth (raw,
    softplus-inverse scale; the errors with c, p and the levels held at the fit, which makes them smaller and
    the test stricter). c and p are not asserted: with 32-event windows their information matrix is singular."""
    X, origin = etas_windows
    vae = started("mlp", X, origin)
    theta, se = fitted_with_errors(vae, Batch(X, origin, SPEC), ["raw_alpha", "log_D", "raw_gamma", "raw_q"])
    assert np.isfinite(se).all() and 0.0 < se[0] < 0.2
    assert abs(theta[0] - softplus_inverse(TRUTH.alpha)) < 3.5 * se[0], (theta[0], se[0])
