"""Model errors that the other model tests would leave unnoticed, each checked against the model's own formula
or distribution: the magnitudes that ``generate`` draws (sequence VAE and the surrogate's conditional model)
against the magnitude mixture at the same contexts; the sampling prior's draws against its fitted mean and
covariance; the parent weights of the mlp and gru decoders' position mixture against the formula of
``decoders.py``; the posterior draws that ``mean_terms(z="sample")`` scores against q(z|x)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from etasvae.models.conditional import ConditionalSequenceVAE
from etasvae.models.decoders import History
from etasvae.models.sequence import Batch, Events, Past, SequenceVAE, features_of_events
from etasvae.models.sequence_training import evaluation_latent, mean_terms

MC = 2.5
L = 8
SPEC = {"representation": "event", "length": L, "stride": L, "mc": MC, "xy_scale_km": 5.0, "min_dt_days": 1e-6,
        "region_km": [0.0, 100.0, 0.0, 100.0], "mmax": MC + 2.0}
DECODERS = ("mlp", "gru_lognormal", "autoregressive")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def start_heads(vae: SequenceVAE, seed: int) -> None:
    """Start the decoder heads from (synthetic) data, as training does: b = 1 magnitudes above Mc, inter-event
    times of about an hour to a few days."""
    g = torch.Generator().manual_seed(seed)
    ln_dt = -1.0 + 1.5 * torch.randn(256, L, generator=g)
    dmag = torch.empty(256, L).exponential_(math.log(10.0), generator=g)
    vae.heads.init_from_data(ln_dt, dmag)


# ------------------------------------------------------------------------------ 1. generated magnitudes


def magnitude_pit(vae: SequenceVAE, u: torch.Tensor, events: Events, past: Past | None = None) -> np.ndarray:
    """The probability integral transform of every generated magnitude above Mc under the model's own
    magnitude mixture at the same event's context (teacher-forced on the generated window, which is the
    context the sampler used), truncated at mmax - Mc as the sampler truncates: F(m) / F(mmax - Mc) with
    F(x) = sum_k w_k (1 - exp(-rate_k x)), evaluated here in numpy from the mixture's weights and rates."""
    X, origin = features_of_events(events, vae.spec)
    with torch.no_grad():
        ctx = vae.contexts(u, Batch(X, origin, window=events, history=past))
        _, m_d = vae.heads.time_and_magnitude(ctx, u[:, None, :])
    w = m_d.mixture_distribution.probs.double().numpy()
    rate = m_d.component_distribution.rate.double().numpy()
    m = events.m.double().numpy()[..., None]
    cdf = lambda x: (w * -np.expm1(-rate * x)).sum(-1)  # noqa: E731
    return (cdf(m) / cdf(vae.spec["mmax"] - vae.spec["mc"])).ravel()


def assert_uniform(pit: np.ndarray) -> None:
    """Given its context each PIT value is U(0, 1), and the values of one window's events are independent
    (the Rosenblatt transform of a sequential draw), so all of them are one sample from U(0, 1). Kolmogorov-
    Smirnov at p > 1e-3, and their mean within 4.5 standard errors sqrt(1/12 / n) of 1/2 (two-sided p ~ 7e-6;
    about 0.004 for 8,000 values, while magnitudes drawn at twice the rate move the mean by about 0.2)."""
    assert np.isfinite(pit).all() and pit.min() >= 0.0 and pit.max() <= 1.0 + 1e-6
    assert sps.kstest(pit, "uniform").pvalue > 1e-3
    assert abs(pit.mean() - 0.5) < 4.5 * math.sqrt(1.0 / 12.0 / len(pit))


@pytest.mark.parametrize("decoder", DECODERS)
def test_sequence_vae_generates_magnitudes_of_its_magnitude_mixture(decoder):
    """1,000 windows of 8 events from z ~ N(0, I) (the decoder heads untrained but started from data)."""
    torch.manual_seed(0)
    vae = SequenceVAE(L, 3, [32], decoder, SPEC).eval()
    start_heads(vae, seed=1)
    torch.manual_seed(2)
    u = torch.randn(1000, 3)
    events = vae.generate(u)
    assert_uniform(magnitude_pit(vae, u, events))


@pytest.mark.parametrize("decoder", DECODERS)
def test_surrogate_generates_magnitudes_of_its_magnitude_mixture(decoder):
    """The surrogate's model as its chains use it (``model.vae.generate`` of u = [z, c] after a history): a
    first window drawn without a history, then 1,000 windows after it, half of them with that history."""
    torch.manual_seed(0)
    model = ConditionalSequenceVAE(L, 3, [32], decoder, SPEC, n_cond=2).eval()
    vae = model.vae
    start_heads(vae, seed=1)
    torch.manual_seed(3)
    n = 1000
    c = torch.randn(n, 2)
    none = Past(Events(torch.zeros(n, L), torch.zeros(n, L), torch.zeros(n, L, 2)), torch.zeros(n),
                torch.zeros(n, 4 * L))
    u_first = torch.cat([torch.randn(n, 3), c], dim=1)
    first = vae.generate(u_first, none)
    past = Past(first, (torch.arange(n) % 2).float(), features_of_events(first, SPEC)[0])
    u = torch.cat([torch.randn(n, 3), c], dim=1)
    events = vae.generate(u, past)
    assert_uniform(np.concatenate([magnitude_pit(vae, u_first, first, none), magnitude_pit(vae, u, events, past)]))


# ------------------------------------------------------------------------------ 2. the sampling prior


def test_sampling_prior_draws_have_the_fitted_mean_and_covariance():
    """fit_sampling_prior's N(m, S) against the aggregate posterior computed here (m = mean of the posterior
    means, S = their covariance (over windows, divisor n) + the mean posterior variance), then the z that
    ``sample_features`` draws from it: 4,000 draws, each mean within 5 standard errors sqrt(S_jj / N) of m_j and
    each covariance entry within 5 standard errors sqrt((S_ii S_jj + S_ij^2) / N) (normal-theory variance of a
    sample covariance) of S_ij. The encoder's mean head is scaled and mixed so that S is far from I and its
    units correlated: a draw with the mean but without the covariance (or with the variances only) is then
    off by many standard errors, which the test asserts too."""
    torch.manual_seed(0)
    vae = SequenceVAE(L, 3, [32], "mlp", SPEC).eval()
    start_heads(vae, seed=1)
    with torch.no_grad():
        W = vae.posterior_head.weight
        mix = torch.tensor([[4.0, 0.0, 0.0], [3.0, 2.0, 0.0], [-1.0, 1.0, 1.5]])
        W[:3] = mix @ W[:3] * 3.0
        vae.posterior_head.bias[:3] = torch.tensor([0.5, -1.0, 2.0])
        vae.posterior_head.bias[3:] = -1.0
    X, origin, _ = vae.sample_features(600, seed=4)
    X, origin = torch.from_numpy(X), torch.from_numpy(origin)
    vae.fit_sampling_prior(X, origin)
    with torch.no_grad():
        mu, logvar = vae.encode_raw(X, origin)
    mu, var = mu.double().numpy(), np.exp(logvar.double().numpy())
    S = np.cov(mu.T, bias=True) + np.diag(var.mean(0))
    loc = vae.prior_loc.double().numpy()
    tril = vae.prior_tril.double().numpy()
    np.testing.assert_allclose(loc, mu.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tril @ tril.T, S, rtol=1e-4, atol=1e-4 * np.abs(S).max())
    N = 4000
    _, _, z = vae.sample_features(N, seed=5)
    z = z.astype(np.float64)
    se_mean = np.sqrt(np.diag(S) / N)
    se_cov = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S ** 2) / N)
    assert (np.abs(z.mean(0) - loc) < 5 * se_mean).all()
    assert (np.abs(np.cov(z.T) - S) < 5 * se_cov).all()
    # The checks bite: identity covariance, or the variances without the correlations, are far outside them.
    assert (np.abs(np.eye(3) - S) > 20 * se_cov).any()
    assert (np.abs(S - np.diag(np.diag(S))) > 20 * se_cov).any()


# ------------------------------------------------------------------------------ 3. parent weights


class PositionKernels:
    """The position components of ``EventHeads`` in numpy, from its parameters and z (u): uniform
    background 1/area, the window cluster N(centre, sd^2 I) with sd = exp(clamp(raw, -2, 4)) + its floor,
    and per parent the kernel (q-1)/(pi s) (1 + r^2/s)^-q, s = D exp(gamma (m_j - Mc))."""

    def __init__(self, h, u: np.ndarray):
        P = lambda x: x.detach().double().numpy()  # noqa: E731
        self.D, self.gamma = math.exp(h.log_D.item()), h.raw_gamma.item()
        self.q = 1.0 + softplus(h.raw_q.item()) + 1e-3
        cl = u @ P(h.cluster_head.weight).T + P(h.cluster_head.bias)
        r = np.asarray(SPEC["region_km"], dtype=float)
        half = np.array([(r[1] - r[0]) / 2, (r[3] - r[2]) / 2])
        self.centre = np.array([(r[0] + r[1]) / 2, (r[2] + r[3]) / 2]) + half * np.tanh(cl[:2])
        self.sd = math.exp(min(max(cl[2], -2.0), 4.0)) + float(h.cluster_floor)
        self.area = (r[1] - r[0]) * (r[3] - r[2])

    def densities(self, xy: np.ndarray, parents) -> list[float]:
        """[background, cluster, each parent (m_j, xy_j)] densities at xy."""
        sd2 = self.sd ** 2
        out = [1.0 / self.area, math.exp(-0.5 * np.sum((xy - self.centre) ** 2) / sd2) / (2 * math.pi * sd2)]
        for mj, xyj in parents:
            s = self.D * math.exp(self.gamma * mj)
            out.append((self.q - 1.0) / (math.pi * s) * (1.0 + np.sum((xy - xyj) ** 2) / s) ** -self.q)
        return out


def numpy_position_log_density(vae: SequenceVAE, ctx: np.ndarray, u: np.ndarray, t, m, xy, hist=None):
    """log density of every event's position of one window (the decoders.py formula, in numpy): background
    exp(a_bg) / area, window cluster exp(a_cl) N(centre, sd^2 I), parent j < i (and every history event) with
    weight exp(a + alpha (m_j - Mc)) / (t_i - t_j + c)^p and the kernel (q-1)/(pi s) (1 + r^2/s)^-q,
    s = D exp(gamma (m_j - Mc)); the weights normalised over the components. Also the normalised weights."""
    h = vae.heads
    P = lambda x: x.detach().double().numpy()  # noqa: E731
    a = ctx @ P(h.pos_head.weight).T + P(h.pos_head.bias)                      # (L, 3)
    alpha, c, p = softplus(h.raw_alpha.item()), math.exp(h.log_c.item()), 1.0 + softplus(h.raw_p.item())
    kernels = PositionKernels(h, u)
    out, weights = [], []
    for i in range(len(t)):
        par = [(t[j], m[j], xy[j]) for j in range(i)] + ([] if hist is None else list(zip(*hist)))
        log_w = [a[i, 0], a[i, 1]] + [a[i, 2] + alpha * mj - p * math.log(t[i] - tj + c) for tj, mj, _ in par]
        dens = kernels.densities(xy[i], [(mj, xyj) for _, mj, xyj in par])
        w = np.exp(np.array(log_w) - np.max(log_w))
        w /= w.sum()
        weights.append(w)
        out.append(math.log(np.dot(w, dens)))
    return np.array(out), weights


# A hand-made window: a mainshock (1.6 above Mc) and its aftershocks, a second sequence later.
T = np.array([0.0, 0.02, 0.05, 0.3, 0.31, 1.2, 1.25, 4.0])
M = np.array([1.6, 0.1, 0.4, 0.0, 0.9, 0.2, 1.1, 0.3])
XY = np.array([[50.0, 50.0], [51.0, 49.5], [48.0, 52.0], [53.0, 50.5], [30.0, 70.0], [31.0, 69.0],
               [50.5, 51.0], [70.0, 20.0]])
HIST = (np.array([-2.0, -0.4, -0.1]), np.array([0.5, 1.4, 0.0]), np.array([[49.0, 50.0], [29.0, 71.0], [60.0, 40.0]]))


@pytest.mark.parametrize("decoder,with_history", [("mlp", False), ("gru_lognormal", False), ("gru_lognormal", True)])
def test_position_parent_weights_follow_the_docstring_formula(decoder, with_history):
    """The mlp and gru decoders' position mixture (``EventHeads.position``, which ``generate`` samples from,
    and ``position_log_prob``, which training scores) against the formula evaluated in numpy from the model's
    parameters, set away from their starting values (alpha 1.3: a flipped magnitude term changes a parent's
    weight by a factor exp(2 alpha m_j), up to e^4). Exact up to float32 rounding: rtol 1e-4."""
    torch.manual_seed(0)
    vae = SequenceVAE(L, 3, [32], decoder, SPEC).eval()
    h = vae.heads
    with torch.no_grad():
        h.raw_alpha.fill_(math.log(math.expm1(1.3)))
        h.log_c.fill_(math.log(0.02))
        h.raw_p.fill_(math.log(math.expm1(0.15)))
        h.log_D.fill_(math.log(2.0))
        h.raw_gamma.fill_(0.7)
        h.raw_q.fill_(math.log(math.expm1(0.6)))
        h.pos_head.bias.copy_(torch.tensor([-1.0, -0.5, 1.0]))   # the parents matter
    ln_dt = np.log(np.concatenate([[0.5], np.diff(T)]))
    events = Events(torch.tensor(ln_dt, dtype=torch.float32)[None], torch.tensor(M, dtype=torch.float32)[None],
                    torch.tensor(XY, dtype=torch.float32)[None])
    X, origin = features_of_events(events, SPEC)
    b = Batch(X, origin, window=events)
    u = torch.tensor([[0.3, -0.8, 0.5]])
    history = None
    if with_history:
        ht, hm, hxy = (torch.tensor(v, dtype=torch.float32)[None] for v in HIST)
        history = History(ht, hm, torch.ones_like(hm, dtype=torch.bool), hxy)
    with torch.no_grad():
        ctx = vae.contexts(u, b)
        lp = h.position_log_prob(ctx, u, b.t, events.m, events.xy, history)[0].double().numpy()
        i = L - 1   # the last event: every earlier event (and the history's) a parent candidate
        t_prev, m_prev, xy_prev = b.t, events.m, events.xy
        if history is not None:
            t_prev, m_prev, xy_prev = (torch.cat([t_prev, history.t], 1), torch.cat([m_prev, history.m], 1),
                                       torch.cat([xy_prev, history.xy], 1))
        allowed = torch.zeros(1, t_prev.shape[1], dtype=torch.bool)
        allowed[:, :i] = True
        allowed[:, L:] = True
        mix = h.position(ctx[:, i], u, b.t[:, i], t_prev, m_prev, xy_prev, allowed)
    expected, weights = numpy_position_log_density(vae, ctx[0].double().numpy(), u[0].double().numpy(),
                                                   b.t[0].double().numpy(), M, XY,
                                                   None if history is None else HIST)
    np.testing.assert_allclose(lp, expected, rtol=1e-4, atol=1e-5)
    w_model = torch.exp(mix.log_w[0]).double().numpy()
    ok = np.concatenate([[True, True], allowed[0].numpy()])
    np.testing.assert_allclose(w_model[ok], weights[i], rtol=1e-4, atol=1e-7)
    assert np.all(w_model[~ok] < 1e-20)


# ------------------------------------------------------------------------------ 4. the posterior draws scored


def posterior_of_windows(seed: int) -> tuple[SequenceVAE, Batch, torch.Tensor, torch.Tensor]:
    """An mlp sequence VAE, 5 of its own windows and their q(z|x), log-variances set from -2 to 1.5 so that
    exp(logvar / 2) is far from 1."""
    torch.manual_seed(seed)
    vae = SequenceVAE(L, 3, [32], "mlp", SPEC).eval()
    start_heads(vae, seed=seed + 1)
    with torch.no_grad():
        vae.posterior_head.bias[3:] = torch.tensor([-2.0, 0.8, 1.5])
    X, origin, _ = vae.sample_features(5, seed=seed + 2)
    b = Batch(torch.from_numpy(X), torch.from_numpy(origin), SPEC)
    with torch.no_grad():
        mu, logvar = vae.encode_raw(b.X, b.origin)
    return vae, b, mu, logvar


def assert_draws(z: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> None:
    """z (N, n, d) draws of N(mean, var) per (window, unit): each sample variance within 5 standard errors
    sqrt(2 / (N - 1)) relative of var (chi-square with N - 1 degrees of freedom), each mean within 5
    standard errors sqrt(var / N)."""
    N = z.shape[0]
    z = z.double()
    assert (torch.abs(z.mean(0) - mean) < 5 * torch.sqrt(var / N)).all()
    assert (torch.abs(z.var(0) / var - 1.0) < 5 * math.sqrt(2.0 / (N - 1))).all()


def test_scored_posterior_draws_have_the_posterior_variance():
    """``evaluation_latent(z="sample")`` (the z of ``mean_terms``): 20,000 draws per window have mean mu and
    variance exp(logvar); with exp(logvar) as the standard deviation the variance would be exp(2 logvar),
    which the log-variances here put at least 20 standard errors away (asserted). The learned-prior branch
    likewise, and the "mean" branch is mu."""
    vae, _, mu, logvar = posterior_of_windows(seed=0)
    N = 20000
    noise = torch.randn((N, *mu.shape), generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        z = evaluation_latent(vae, mu.expand(N, -1, -1), logvar.expand(N, -1, -1), noise, "sample")
    var = torch.exp(logvar.double())
    assert_draws(z, mu.double(), var)
    assert (torch.abs(var - 1.0) > 20 * math.sqrt(2.0 / (N - 1)) * var).all()
    prior = (mu + 1.0, logvar - 1.0)
    with torch.no_grad():
        zp = evaluation_latent(vae, mu.expand(N, -1, -1), logvar.expand(N, -1, -1), noise, "prior",
                               (prior[0].expand(N, -1, -1), prior[1].expand(N, -1, -1)))
    assert_draws(zp, prior[0].double(), torch.exp(prior[1].double()))
    assert torch.equal(evaluation_latent(vae, mu, logvar, noise[0], "mean"), mu)


def test_mean_terms_scores_draws_from_the_posterior():
    """``mean_terms(z="sample")`` against its terms computed here, with z = mu + sqrt(exp(logvar)) eps and eps
    from a generator seeded as its docstring says: the same numbers up to float32 rounding."""
    vae, b, mu, logvar = posterior_of_windows(seed=10)
    got = mean_terms(vae, [b], z="sample", seed=7)
    noise = torch.randn(mu.shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        z = mu + torch.sqrt(torch.exp(logvar)) * noise
        nll = float(-vae.event_log_probs(z, b).sum(1).mean())
        aux = float(vae.aux_nll(z, b.window).mean())
    kl = float((0.5 * (mu ** 2 + torch.exp(logvar) - 1.0 - logvar)).sum(1).mean())
    assert got["nll"] == pytest.approx(nll, rel=1e-5)
    assert got["aux"] == pytest.approx(aux, rel=1e-5)
    assert got["kl"] == pytest.approx(kl, rel=1e-5)


def numpy_excited_log_density(vae: SequenceVAE, ctx: np.ndarray, u: np.ndarray, t, m, xy) -> np.ndarray:
    """The autoregressive decoder's position density of every event of one window (``excited_position``'s
    docstring, in numpy): parent j < i with weight kappa_j g(t_i - t_j), kappa_j = K exp(alpha (m_j - Mc)),
    g(s) = (p-1)/c (1 + s/c)^-p; the background mu split between the uniform background and the window cluster
    by softmax(a_bg, a_cl); the virtual parent's kappa_v g(t_i - t_v) to the cluster; the weights normalised by
    their sum lambda(t_i). Kernels as in ``numpy_position_log_density``."""
    h, f = vae.heads, vae.intensity
    P = lambda x: x.detach().double().numpy()  # noqa: E731
    a = ctx @ P(h.pos_head.weight).T + P(h.pos_head.bias)
    share = np.exp(a[:, :2]) / np.exp(a[:, :2]).sum(1, keepdims=True)
    alpha, c, p = softplus(f.raw_alpha.item()), math.exp(f.log_c.item()), 1.0 + softplus(f.raw_p.item()) + 1e-3
    mu = math.exp(f.log_mu.item())
    K = math.exp(f.log_K.item() + float(u @ P(f.productivity_head.weight)[0] + f.productivity_head.bias.item()))
    v = u @ P(f.virtual_head.weight).T + P(f.virtual_head.bias)
    kappa_v, t_v = math.exp(v[0]), -math.exp(v[1])
    g = lambda s: (p - 1.0) / c * (1.0 + s / c) ** -p  # noqa: E731
    kernels = PositionKernels(h, u)
    out = []
    for i in range(len(t)):
        w = [mu * share[i, 0], mu * share[i, 1] + kappa_v * g(t[i] - t_v)]
        w += [K * math.exp(alpha * m[j]) * g(t[i] - t[j]) for j in range(i)]
        dens = kernels.densities(xy[i], [(m[j], xy[j]) for j in range(i)])
        out.append(math.log(np.dot(w, dens) / np.sum(w)))
    return np.array(out)


def test_autoregressive_position_weights_are_the_branching_probabilities():
    """The autoregressive decoder's position term of ``event_log_probs`` (the log-likelihood minus its time
    and magnitude terms) against ``numpy_excited_log_density`` on the hand-made window, with the intensity's
    parameters set away from their starting values: exact up to float32 rounding (rtol 1e-4)."""
    torch.manual_seed(0)
    vae = SequenceVAE(L, 3, [32], "autoregressive", SPEC).eval()
    h, f = vae.heads, vae.intensity
    with torch.no_grad():
        f.raw_alpha.fill_(math.log(math.expm1(1.3)))
        f.log_c.fill_(math.log(0.02))
        f.raw_p.fill_(math.log(math.expm1(0.15)))
        f.log_mu.fill_(math.log(0.5))
        f.log_K.fill_(math.log(0.3))
        f.productivity_head.bias.fill_(0.2)
        f.virtual_head.bias.copy_(torch.tensor([0.5, math.log(0.3)]))
        h.log_D.fill_(math.log(2.0))
        h.raw_gamma.fill_(0.7)
        h.raw_q.fill_(math.log(math.expm1(0.6)))
    ln_dt = np.log(np.concatenate([[0.5], np.diff(T)]))
    events = Events(torch.tensor(ln_dt, dtype=torch.float32)[None], torch.tensor(M, dtype=torch.float32)[None],
                    torch.tensor(XY, dtype=torch.float32)[None])
    X, origin = features_of_events(events, SPEC)
    b = Batch(X, origin, window=events)
    u = torch.tensor([[0.3, -0.8, 0.5]])
    with torch.no_grad():
        total = vae.event_log_probs(u, b)
        ctx = vae.contexts(u, b)
        dt_d, m_d = h.time_and_magnitude(ctx, u[:, None, :])
        lp_dt = f.window_log_prob(u, events.ln_dt, events.m)[0]
        time_and_mag = torch.cat([dt_d.log_prob(events.ln_dt)[:, :1], lp_dt], 1) + m_d.log_prob(events.m)
    position = (total - time_and_mag)[0].double().numpy()
    expected = numpy_excited_log_density(vae, ctx[0].double().numpy(), u[0].double().numpy(),
                                         b.t[0].double().numpy(), M, XY)
    np.testing.assert_allclose(position, expected, rtol=1e-4, atol=1e-4)
