"""The sequence VAE (loss channels): likelihood heads against references and their own samplers, causality of
the autoregressive decoder, the reparameterisation, the KL in the optimised objective, files and sampling."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from etasvae.models.decoders import (N_DT, ROW_BLOCK, ExcitationIntensity, History, PositionMixture,
                              PowerLawKernel, dt_distribution, magnitude_distribution)
from etasvae.features import build_windows, windows_to_catalog
from etasvae.models.files import encode_windows, load_model, sample_windows, save_model
from etasvae.models.sequence import Batch, SequenceVAE, window_origins
from etasvae.models.train import train_vae

from etas_samples import MC, clustered_catalog

SPEC = {"representation": "event", "length": 16, "stride": 8, "mc": MC, "xy_scale_km": 5.0, "min_dt_days": 1e-6,
        "region_km": [0.0, 100.0, 0.0, 100.0], "mmax": 7.0}
SMALL = {"latent_dim": 3, "hidden": [32], "beta": 1.0, "kl_warmup_epochs": 0, "lr": 3e-3, "optimizer": "adam",
         "loss": "channels", "decoder": "autoregressive", "epochs": 4, "batch_size": 32, "patience": 0,
         "grad_clip": 5.0, "seed": 0}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def windows():
    catalogs = [(r, clustered_catalog(seed=10 + r, duration=300.0, K=0.45)) for r in range(3)]
    table, X = build_windows(catalogs, SPEC, heldout_replicates=[2], validation_fraction=0.25)
    return table, X


def split(table, X, role):
    mask = (table["role"] == role).to_numpy()
    return X[mask], window_origins(table)[mask]


def quiet(_line: str) -> None:
    pass


# ------------------------------------------------------------------------------------ likelihood heads


def test_dt_mixture_is_a_mixture_of_log_normals():
    """log_prob on ln dt against scipy's log-normal mixture on dt (Jacobian: p(ln dt) = dt * p(dt))."""
    g = torch.Generator().manual_seed(0)
    params = torch.randn(3 * N_DT, generator=g)
    d = dt_distribution(params)
    logits, loc, log_scale = params.chunk(3)
    w = torch.softmax(logits, 0).numpy()
    dt = np.array([1e-4, 0.01, 0.3, 1.0, 7.0])
    ref = sum(w[k] * sps.lognorm.pdf(dt, s=math.exp(log_scale[k]), scale=math.exp(loc[k])) for k in range(N_DT))
    got = d.log_prob(torch.log(torch.tensor(dt, dtype=torch.float32))).numpy()
    np.testing.assert_allclose(got, np.log(ref * dt), rtol=1e-4)


def test_dt_mixture_samples_follow_its_density():
    """KS of 20 000 draws against the mixture CDF; under H0 the KS p-value is uniform, p < 1e-3 has odds 1e-3."""
    torch.manual_seed(1)
    params = torch.tensor([0.0, 1.0, -1.0, 0.5, 0, 0, 0, 0,
                           -6.0, -3.0, 0.0, 1.0, -1, 2, -2, 0,
                           0.5, -1.0, 0.0, -0.5, 0, 0, 0, 0])
    d = dt_distribution(params)
    x = d.sample((20000,))
    comp_cdf = lambda v: (torch.softmax(d.mixture_distribution.logits, 0)   # noqa: E731
                          * d.component_distribution.cdf(torch.as_tensor(v, dtype=torch.float32)[:, None])).sum(1)
    assert sps.kstest(x.numpy(), lambda v: comp_cdf(v).numpy()).pvalue > 1e-3


def test_magnitude_mixture_matches_gutenberg_richter_references():
    """One component with rate beta = b ln 10 is Gutenberg-Richter with b; a mixture is the weighted sum."""
    b = 1.0
    raw = torch.tensor([0.0, -50.0, -50.0, -50.0, math.log(b * math.log(10)), 0.0, 0.0, 0.0])
    d = magnitude_distribution(raw)
    m = torch.tensor([0.0, 0.5, 2.0, 4.0])
    np.testing.assert_allclose(d.log_prob(m).numpy(), np.log(b * math.log(10)) - b * math.log(10) * m.numpy(), rtol=1e-5)
    raw = torch.tensor([0.3, -0.2, 0.0, 1.0, 0.1, 0.8, -0.4, 1.2])
    d = magnitude_distribution(raw)
    w = torch.softmax(raw[:4], 0).numpy()
    rate = np.exp(raw[4:].numpy())
    ref = (w * rate * np.exp(-rate * m.numpy()[:, None])).sum(1)
    np.testing.assert_allclose(d.log_prob(m).numpy(), np.log(ref), rtol=1e-5)
    torch.manual_seed(2)
    x = d.sample((20000,)).numpy()
    assert sps.kstest(x, lambda v: (w * (1 - np.exp(-rate * np.asarray(v)[:, None]))).sum(1)).pvalue > 1e-3


def test_power_law_kernel_integrates_to_one_and_samples_match():
    s, q = torch.tensor(2.5), torch.tensor(1.6)
    k = PowerLawKernel(s, q)
    # Radial integral of the density: int 2 pi r f(r) dr over [0, R] against the closed-form CDF, and -> 1.
    r = np.linspace(0.0, 2000.0, 2_000_001)
    f = np.exp(k.log_prob(torch.tensor(np.stack([r, np.zeros_like(r)], 1))).numpy())
    mass = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] * r[1:] + f[:-1] * r[:-1]) * np.diff(r))]) * 2 * math.pi
    for R in (1.0, 5.0, 50.0):
        i = int(R / 0.001)
        assert mass[i] == pytest.approx(float(k.radius_cdf(torch.tensor(R, dtype=torch.float64))), abs=1e-6)
    assert mass[-1] == pytest.approx(1.0 - (1 + 2000.0 ** 2 / 2.5) ** (1 - 1.6), abs=1e-6)
    torch.manual_seed(3)
    xy = k.sample((20000,))
    radius = xy.pow(2).sum(-1).sqrt().numpy()
    assert sps.kstest(radius, lambda v: k.radius_cdf(torch.as_tensor(v)).numpy()).pvalue > 1e-3
    angle = np.arctan2(xy[:, 1].numpy(), xy[:, 0].numpy())
    assert sps.kstest(angle, sps.uniform(-math.pi, 2 * math.pi).cdf).pvalue > 1e-3


def test_position_log_prob_in_blocks_is_that_of_every_earlier_event_as_parent():
    """The heads' position log densities of a window longer than ROW_BLOCK, computed block by block, equal
    each event's PositionMixture with all its earlier events as parent candidates, built one event at a time
    (float32 rounding only)."""
    from etasvae.models.decoders import EventHeads

    torch.manual_seed(0)
    heads = EventHeads(8, 3, [0.0, 100.0, 0.0, 100.0])
    L = 2 * ROW_BLOCK + 5
    ctx, z = torch.randn(2, L, 8), torch.randn(2, 3)
    t = torch.cumsum(torch.rand(2, L), dim=1)
    m, xy = torch.rand(2, L) * 2, 100 * torch.rand(2, L, 2)
    with torch.no_grad():
        got = heads.position_log_prob(ctx, z, t, m, xy)
        for i in range(L):
            allowed = torch.arange(L) < i
            mix = heads.position(ctx[:, i], z, t[:, i], t, m, xy, allowed)
            assert torch.allclose(got[:, i], mix.log_prob(xy[:, i]), atol=1e-5), i


def test_position_mixture_samples_follow_its_density_inside_the_region():
    """Counts of 40 000 draws in a 5 x 5 grid of the region against the density integrated over each cell
    (truncated to the region, as the sampler redraws outside): chi-square p > 1e-3."""
    f64 = dict(dtype=torch.float64)
    region = torch.tensor([0.0, 100.0, 0.0, 100.0], **f64)
    args = (torch.tensor([0.0], **f64), torch.tensor([-0.5], **f64), torch.tensor([[20.0, 70.0]], **f64),
            torch.tensor([8.0], **f64), torch.tensor([[0.7, 0.2]], **f64),
            torch.tensor([[[50.0, 50.0], [80.0, 20.0]]], **f64), torch.tensor([[30.0, 4.0]], **f64))
    q = torch.tensor(1.5, **f64)
    mix = PositionMixture(region, *args, q)
    h = 0.1                                   # midpoint rule on a 0.1 km grid
    grid = torch.arange(h / 2, 100.0, h, **f64)
    gx, gy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([gx, gy], -1).reshape(-1, 2)
    dens = torch.exp(mix.log_prob(points))

    def cell(xy):
        return (torch.div(xy[:, 0], 20.0, rounding_mode="floor") * 5 + torch.div(xy[:, 1], 20.0, rounding_mode="floor")).long()

    mass = torch.zeros(25, **f64).index_add_(0, cell(points), dens * h * h)
    torch.manual_seed(4)
    batch = PositionMixture(region, *[a.expand(2000, *a.shape[1:]) for a in args], q)
    draws = torch.cat([batch.sample() for _ in range(20)])
    assert mix.inside(draws).all()
    counts = torch.bincount(cell(draws), minlength=25).numpy()
    expected = (mass / mass.sum()).numpy() * len(draws)
    assert sps.chisquare(counts, expected).pvalue > 1e-3


# ------------------------------------------------------------------------------ ETAS-intensity time channel


def fixed_intensity(mu: float, K: float, alpha: float, c: float, p: float, kappa_v: float = 0.0,
                    lag_v: float = 1.0) -> ExcitationIntensity:
    """An ExcitationIntensity whose parameters do not depend on z (latent dim 1)."""
    f = ExcitationIntensity(1)
    with torch.no_grad():
        f.log_mu.fill_(math.log(mu))
        f.log_K.fill_(math.log(K))
        f.virtual_head.weight.zero_()
        f.virtual_head.bias.copy_(torch.tensor([math.log(kappa_v) if kappa_v > 0 else -12.0, math.log(lag_v)]))
        f.raw_alpha.fill_(math.log(math.expm1(alpha)))
        f.log_c.fill_(math.log(c))
        f.raw_p.fill_(math.log(math.expm1(p - 1.0 - 1e-3)))
    return f


def reference_rate(t, times, mags, mu, K, alpha, c, p, t_v=None, kappa_v=0.0):
    """lambda(t) written out: mu + sum over earlier events K e^{alpha m} (p-1)/c (1 + (t - t_j)/c)^-p."""
    g = lambda s: (p - 1.0) / c * (1.0 + s / c) ** -p  # noqa: E731
    out = mu + sum(K * math.exp(alpha * m) * g(t - tj) for tj, m in zip(times, mags) if tj < t)
    return out + (kappa_v * g(t - t_v) if t_v is not None else 0.0)


def test_intensity_log_prob_is_log_rate_minus_numerical_compensator():
    """Each interval's term equals log lambda(t_i) - int_{t_{i-1}}^{t_i} lambda + ln dt_i with lambda written
    out and integrated by adaptive quadrature (scipy.integrate.quad, error far below the 1e-6 tolerance); and
    the position terms are log kappa_j g(t_i - t_j) for every earlier event and the virtual parent, and no
    parent (-inf) for the event itself and later ones. The window is longer than ROW_BLOCK, so that the pairs
    computed block by block are all checked, across block edges too."""
    from scipy.integrate import quad

    par = {"mu": 3.0, "K": 0.3, "alpha": 1.4, "c": 0.02, "p": 1.3}
    f = fixed_intensity(**par, kappa_v=2.0, lag_v=0.5)
    rng = np.random.default_rng(3)
    dt = np.concatenate([[0.7, 0.001, 0.05, 0.3, 2e-5, 1.2, 0.01, 0.4], 10.0 ** rng.uniform(-5, 0.3, 2 * ROW_BLOCK)])
    m = np.concatenate([[0.2, 2.5, 0.0, 1.1, 0.4, 0.0, 3.0, 0.7], rng.exponential(0.43, 2 * ROW_BLOCK)])
    with torch.no_grad():
        lp, _, terms = f.window_log_prob(torch.zeros(1, 1), torch.log(torch.tensor(dt[None], dtype=torch.float32)),
                                     torch.tensor(m[None], dtype=torch.float32))
    ln_dt32 = np.log(dt.astype(np.float32)).astype(np.float64)   # the intervals as the model stores them
    d = np.exp(ln_dt32)
    t = np.concatenate([[0.0], np.cumsum(d[1:])])
    rate = lambda s: reference_rate(s, t, m, **par, t_v=-0.5, kappa_v=2.0)  # noqa: E731
    for i in range(1, len(t)):
        comp = quad(rate, t[i - 1], t[i], points=[t[i - 1]], epsabs=1e-12, epsrel=1e-10, limit=200)[0]
        want = math.log(rate(t[i])) - comp + ln_dt32[i]
        assert float(lp[0, i - 1]) == pytest.approx(want, abs=1e-5), i
    L = len(t)
    g = lambda s: (par["p"] - 1) / par["c"] * (1 + s / par["c"]) ** -par["p"]  # noqa: E731
    m32 = m.astype(np.float32).astype(np.float64)
    for i in range(L):
        for j in range(L):
            if j < i:
                want = math.log(par["K"] * math.exp(par["alpha"] * m32[j]) * g(t[i] - t[j]))
                assert float(terms[0, i, j]) == pytest.approx(want, abs=1e-6), (i, j)
            else:
                assert float(terms[0, i, j]) < -1e29, (i, j)
        assert float(terms[0, i, L]) == pytest.approx(math.log(2.0 * g(t[i] + 0.5)), abs=1e-6), i


def test_intensity_with_a_history_counts_its_events_as_parents():
    """With History events before the window (one of them marked absent), each interval's term is again
    log lambda - integral of lambda + ln dt, lambda now summing over the present history events too (written
    out, integrated by quadrature); the position terms give the history events their kappa g."""
    from scipy.integrate import quad

    par = {"mu": 1.5, "K": 0.3, "alpha": 1.2, "c": 0.02, "p": 1.2}
    f = fixed_intensity(**par)
    dt = np.array([0.4, 0.02, 0.3, 0.001, 0.9])
    m = np.array([0.1, 1.5, 0.0, 0.6, 0.2])
    t_h, m_h, ok = np.array([-3.0, -0.8, -0.05]), np.array([2.8, 0.4, 1.9]), np.array([True, False, True])
    history = History(torch.tensor(t_h[None]), torch.tensor(m_h[None], dtype=torch.float32), torch.tensor(ok[None]))
    with torch.no_grad():
        lp, _, terms = f.window_log_prob(torch.zeros(1, 1), torch.log(torch.tensor(dt[None], dtype=torch.float32)),
                                         torch.tensor(m[None], dtype=torch.float32), history)
    ln_dt32 = np.log(dt.astype(np.float32)).astype(np.float64)
    t = np.concatenate([[0.0], np.cumsum(np.exp(ln_dt32)[1:])])
    parents_t = np.concatenate([t_h[ok], t])
    parents_m = np.concatenate([m_h[ok], m])
    rate = lambda s: reference_rate(s, parents_t, parents_m, **par)  # noqa: E731
    for i in range(1, len(t)):
        comp = quad(rate, t[i - 1], t[i], points=[t[i - 1]], epsabs=1e-12, epsrel=1e-10, limit=200)[0]
        want = math.log(rate(t[i])) - comp + ln_dt32[i]
        assert float(lp[0, i - 1]) == pytest.approx(want, abs=1e-5), i
    L = len(t)
    assert float(terms[0, 2, L + 1]) < -1e29                       # the absent history event is no parent
    g = (par["p"] - 1) / par["c"] * (1 + (t[2] - t_h[2]) / par["c"]) ** -par["p"]
    assert float(terms[0, 2, L + 2]) == pytest.approx(math.log(par["K"] * math.exp(par["alpha"] * m_h[2]) * g), abs=1e-5)


def test_first_interval_after_a_history_is_log_rate_minus_its_integral():
    """A window's first event after a history: log lambda(0) - integral of lambda over [-dt_0, 0] + ln dt_0,
    lambda = mu + the present history events (written out, integrated by quadrature), no virtual parent."""
    from scipy.integrate import quad

    par = {"mu": 0.8, "K": 0.4, "alpha": 1.0, "c": 0.05, "p": 1.3}
    f = fixed_intensity(**par, kappa_v=5.0, lag_v=0.1)
    dt0 = 0.37
    t_h, m_h, ok = np.array([-2.0, -1.1, -dt0]), np.array([2.0, 0.5, 1.0]), np.array([True, False, True])
    history = History(torch.tensor(t_h[None]), torch.tensor(m_h[None], dtype=torch.float32), torch.tensor(ok[None]))
    with torch.no_grad():
        lp = f.first_interval_log_prob(torch.zeros(1, 1), torch.log(torch.tensor([dt0], dtype=torch.float64)), history)
    rate = lambda s: reference_rate(s, t_h[ok], m_h[ok], **par)  # noqa: E731
    comp = quad(rate, -dt0, 0.0, points=[-dt0], epsabs=1e-12, epsrel=1e-10, limit=200)[0]
    assert float(lp[0]) == pytest.approx(math.log(rate(0.0)) - comp + math.log(dt0), abs=1e-5)


def thinning_draws(f: ExcitationIntensity, n: int, times, mags, t_last: float) -> np.ndarray:
    """n waiting times from t_last with the same parents (the window's events, then the virtual parent)."""
    with torch.no_grad():
        log_mu, log_K, t_v, lk_v = f.window_terms(torch.zeros(n, 1))
        lk = torch.cat([f.log_productivity(log_K[:, None], torch.tensor(mags)), lk_v], dim=1)
    tp = torch.cat([torch.tensor(times, dtype=torch.float64).expand(n, -1), t_v], dim=1)
    allowed = torch.ones_like(tp, dtype=torch.bool)
    return f.sample_next(log_mu, torch.full((n,), t_last, dtype=torch.float64), tp, lk, allowed).numpy()


def test_thinning_draws_follow_the_intensity():
    """20 000 waiting times after a large event against the exact CDF 1 - exp(-Lambda(s)) (closed form
    compensator, checked against quadrature above): KS p-value uniform under H0, p < 1e-3 has odds 1e-3.
    The mean count in [t_last, t_last + s] also matches Lambda(s) (Poisson: 4 standard errors)."""
    torch.manual_seed(3)
    par = {"mu": 2.0, "K": 0.25, "alpha": 1.5, "c": 0.01, "p": 1.15}
    f = fixed_intensity(**par, kappa_v=1.0, lag_v=2.0)
    times, mags, t_last = [0.0, 0.2, 0.25], [0.3, 3.5, 0.1], 0.25
    w = thinning_draws(f, 20000, times, mags, t_last)
    c, p = par["c"], par["p"]
    G = lambda a, s: (1 + a / c) ** (1 - p) - (1 + (a + s) / c) ** (1 - p)  # noqa: E731  (Omori mass of [a, a+s])
    kappa = [par["K"] * math.exp(par["alpha"] * m) for m in mags]

    def compensator(s):
        out = par["mu"] * s + sum(k * G(t_last - tj, s) for k, tj in zip(kappa, times))
        return out + 1.0 * G(t_last + 2.0, s)

    cdf = lambda s: 1.0 - np.exp(-np.array([compensator(v) for v in np.atleast_1d(s)]))  # noqa: E731
    assert sps.kstest(w, cdf).pvalue > 1e-3
    # Omori decay right after the event: P(wait < s) at short s, binomial standard error
    for s in (1e-3, 1e-2, 1e-1):
        q = float(cdf(s)[0])
        assert abs((w < s).mean() - q) < 4 * math.sqrt(q * (1 - q) / len(w)), s


def sample_time_windows(f: ExcitationIntensity, n: int, L: int, b: float,
                        seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n windows of L events from a fixed intensity with Gutenberg-Richter magnitudes (b): ln dt (n, L) with
    ln dt_0 = 0 and m - Mc (n, L), event by event with the thinning sampler."""
    g = torch.Generator().manual_seed(seed)
    m = torch.empty(n, L, dtype=torch.float64).exponential_(b * math.log(10.0), generator=g)
    torch.manual_seed(seed)
    log_mu, log_K, t_v, lk_v = f.window_terms(torch.zeros(n, 1))
    tp = torch.cat([torch.zeros(n, L, dtype=torch.float64), t_v], dim=1)
    lk = torch.cat([f.log_productivity(log_K[:, None], m), lk_v], dim=1)
    allowed = torch.cat([torch.ones(L, L, dtype=torch.bool).tril(-1), torch.ones(L, 1, dtype=torch.bool)], dim=1)
    ln_dt = torch.zeros(n, L)
    for i in range(1, L):
        wait = f.sample_next(log_mu, tp[:, i - 1], tp, lk, allowed[i].expand(n, -1))
        ln_dt[:, i] = torch.log(wait).float()
        tp[:, i] = tp[:, i - 1] + torch.exp(ln_dt[:, i].double())
    return ln_dt, m.float()


TRUTH = {"mu": 1.0, "K": 0.2, "alpha": 1.5, "c": 0.01, "p": 1.2}


@pytest.fixture(scope="module")
def excited_windows():
    with torch.no_grad():
        return sample_time_windows(fixed_intensity(**TRUTH), 150, 32, 1.0, seed=11)


def test_intensity_likelihood_peaks_near_the_sampling_parameters(excited_windows):
    """The summed log-likelihood of windows drawn with alpha 1.5 and p 1.2, as a function of alpha (and of
    p), is highest on the grid point next to the truth (grid steps of ~2-3 standard errors of 150 windows)."""
    ln_dt, m = excited_windows
    z = torch.zeros(len(m), 1)

    def total(**change):
        with torch.no_grad():
            return float(fixed_intensity(**{**TRUTH, **change}).window_log_prob(z, ln_dt, m)[0].sum())

    alphas = [0.5, 1.0, 1.5, 2.0, 2.5]
    assert alphas[int(np.argmax([total(alpha=a) for a in alphas]))] == 1.5
    ps = [1.05, 1.2, 1.4, 1.7]
    assert ps[int(np.argmax([total(p=p) for p in ps]))] == 1.2


def test_inversion_recovers_alpha_of_thinning_windows(excited_windows):
    """The project's ETAS inversion of windows drawn with alpha 1.5 recovers alpha and p within 3 standard
    errors (its own, from the Hessian)."""
    from etasvae.inversion import fit_windows

    ln_dt, m = excited_windows
    t = torch.cumsum(torch.cat([torch.zeros(len(m), 1), torch.exp(ln_dt[:, 1:].double())], dim=1), dim=1)
    frames = [pd.DataFrame({"time": t[k].numpy(), "magnitude": MC + m[k].double().numpy(),
                            "x": 0.0, "y": 0.0}) for k in range(len(m))]
    fit = fit_windows(frames, [float(w["time"].iloc[-1]) for w in frames], mc=MC, model="temporal", n_starts=1)
    for name in ("alpha", "p"):
        est, se = fit.estimates[name], fit.std_errors[name]
        assert abs(est - TRUTH[name]) < 3 * se, (name, est, se)


# ------------------------------------------------------------------------------------------ the model


def test_autoregressive_decoder_is_causal(windows):
    """The log-likelihood of event i may depend on events < i only: changing events k.. leaves events < k."""
    table, X = windows
    torch.manual_seed(0)
    model = SequenceVAE(16, 3, [32], "autoregressive", SPEC).eval()
    Xt = torch.from_numpy(X[:8].copy())
    O = torch.from_numpy(window_origins(table)[:8].copy())
    z = torch.randn(8, 3)
    base = model.event_log_probs(z, Batch(Xt, O, SPEC))
    k = 9
    changed = Xt.reshape(8, 16, 4).clone()
    changed[:, k:, 0] -= 1.5            # later events 30 times closer in time
    changed[:, k:, 1] += 1.0            # one magnitude unit larger
    changed[:, k:, 2:] += 0.7           # moved
    after = model.event_log_probs(z, Batch(changed.reshape(8, 64), O, SPEC))
    torch.testing.assert_close(after[:, :k], base[:, :k], rtol=0, atol=1e-5)
    assert (after[:, k] - base[:, k]).abs().min() > 1e-3     # the changed event itself does change
    # The decoder state that parameterises event k (its dt and magnitude mixtures) has not seen event k.
    ctx = model.contexts(z, Batch(Xt, O, SPEC))
    ctx_after = model.contexts(z, Batch(changed.reshape(8, 64), O, SPEC))
    torch.testing.assert_close(ctx_after[:, :k + 1], ctx[:, :k + 1], rtol=0, atol=1e-6)
    assert (ctx_after[:, k + 1] - ctx[:, k + 1]).abs().max() > 1e-4


def test_reparameterisation_has_the_posterior_standard_deviation():
    """z = mu + exp(logvar/2) eps: with logvar = log 4 the draws have variance 4 (exp(logvar) eps gives 16).
    Sample variance of 40 000 normal draws: relative standard error sqrt(2/n) = 0.7 %; tolerance 5 %."""
    torch.manual_seed(5)
    mu = torch.full((40000, 1), 0.5)
    logvar = torch.full((40000, 1), math.log(4.0))
    z = SequenceVAE.reparameterise(mu, logvar)
    assert float(z.mean()) == pytest.approx(0.5, abs=0.05)
    assert float(z.var()) == pytest.approx(4.0, rel=0.05)


def test_kl_enters_the_optimised_objective_with_a_plus_sign(windows):
    """Trained with a large beta, the KL per window must end near the free-bits floor (latent_dim x 0.5 nats);
    with the sign of the KL term flipped in the objective the optimiser drives it far up instead."""
    table, X = windows
    Xtr, Otr = split(table, X, "train")
    result = train_vae(Xtr, None, {**SMALL, "beta": 20.0, "epochs": 6}, log=quiet, spec=SPEC, origin_train=Otr)
    kl = result.history["train_kl"].to_numpy()
    assert np.isfinite(kl).all() and kl[-1] < 5.0, kl


def test_training_lowers_the_held_out_nll_and_z_is_read(windows):
    """A few epochs: the validation NLL falls below that of the same model as training starts it (its globals
    at their starting fits: ``init_from_data``; the first epoch's figure is already close to the end's, as the
    starting fits leave little for the globals to learn: 0.2 nats per window here, which the last-against-first-
    epoch comparison this replaced no longer saw); encoded z beats the prior on held-out windows (a
    decoder that ignores z would give the same NLL for both)."""
    from etasvae.features import FeatureTransform
    from etasvae.models.sequence_training import feature_batches, init_from_data, mean_terms
    table, X = windows
    Xtr, Otr = split(table, X, "train")
    Xv, Ov = split(table, X, "validation")
    settings = {**SMALL, "epochs": 8}
    result = train_vae(Xtr, Xv, settings, log=quiet, spec=SPEC, origin_train=Otr, origin_val=Ov)
    torch.manual_seed(settings["seed"])
    start = SequenceVAE(SPEC["length"], settings["latent_dim"], settings["hidden"], settings["decoder"], SPEC)
    init_from_data(start, FeatureTransform.fit(Xtr, kind="standard"), torch.from_numpy(Xtr), torch.from_numpy(Otr), SPEC)
    Vt, VOt = torch.from_numpy(Xv), torch.from_numpy(Ov)
    nll = {name: mean_terms(m.eval(), feature_batches(Vt, VOt, SPEC), seed=1)["nll"]
           for name, m in (("start", start), ("trained", result.model))}
    assert nll["trained"] < nll["start"], nll   # paired: the same windows, the same z draws (seed 1)
    from etasvae.models.sequence_training import health

    Xh, Oh = split(table, X, "heldout")
    numbers = health(result.model, Xh, Oh)
    assert numbers["prior_minus_encoded_nats"] > 0 and numbers["kl_per_window"] > 0


def test_save_load_sample_and_encode(tmp_path, windows):
    table, X = windows
    Xtr, Otr = split(table, X, "train")
    settings = {**SMALL, "decoder": "mlp", "epochs": 2}
    result = train_vae(Xtr, None, settings, log=quiet, spec=SPEC, origin_train=Otr)
    path = tmp_path / "model.pt"
    save_model(path, result, settings, SPEC)
    bundle = load_model(path)
    assert bundle.model.decoder_kind == "mlp"
    S = sample_windows(bundle, 40, seed=3, mode="draw")
    assert S.shape == (40, 64) and np.array_equal(S, sample_windows(bundle, 40, seed=3, mode="draw"))
    assert not np.array_equal(S, sample_windows(bundle, 40, seed=4, mode="draw"))
    cat = windows_to_catalog(S, SPEC)
    assert (cat["magnitude"] >= MC).all() and np.isfinite(cat[["time", "x", "y"]].to_numpy()).all()
    # positions relative to the first event stay within the region's extent
    assert (cat["x"].abs() <= 100.0 + 1e-3).all() and (cat["y"].abs() <= 100.0 + 1e-3).all()
    # Gutenberg-Richter truncation: draws above mmax are drawn again (mmax half a unit above Mc: most draws)
    bundle.model.spec["mmax"] = MC + 0.5
    capped = windows_to_catalog(sample_windows(bundle, 40, seed=3), SPEC)
    assert capped["magnitude"].max() <= MC + 0.5 + 1e-6 and capped["magnitude"].nunique() > 100
    mu, logvar = encode_windows(bundle, Xtr[:5], Otr[:5])
    mu2, _ = encode_windows(bundle, Xtr[:5], Otr[:5])
    assert mu.shape == logvar.shape == (5, 3) and np.array_equal(mu, mu2)
    assert not np.allclose(mu, encode_windows(bundle, Xtr[:5])[0])   # the first event's position is read


def test_same_seed_same_history(windows):
    table, X = windows
    Xtr, Otr = split(table, X, "train")
    a = train_vae(Xtr, None, {**SMALL, "epochs": 2}, log=quiet, spec=SPEC, origin_train=Otr).history
    b = train_vae(Xtr, None, {**SMALL, "epochs": 2}, log=quiet, spec=SPEC, origin_train=Otr).history
    assert a.equals(b)


def test_sampling_prior_has_the_moments_of_the_aggregate_posterior(windows):
    """fit_sampling_prior gives N(m, S) with m and S the mean and covariance of the aggregate posterior
    (mixture over windows of q(z|x)), checked against draws of that mixture: 200 draws per window; each mean
    within 5 of its standard errors sqrt(S_jj / N), each covariance entry within 5 standard errors
    sqrt((S_ii S_jj + S_ij^2) / N) (normal-theory variance of a sample covariance). The sampler then draws
    with that mean and covariance."""
    table, X = windows
    Xtr, Otr = split(table, X, "train")
    torch.manual_seed(0)
    model = SequenceVAE(SPEC["length"], 3, [32], "autoregressive", SPEC).eval()
    Xt, Ot = torch.from_numpy(Xtr), torch.from_numpy(Otr)
    model.fit_sampling_prior(Xt, Ot)
    with torch.no_grad():
        mu, logvar = model.encode_raw(Xt, Ot)
        g = torch.Generator().manual_seed(1)
        agg = (mu + torch.exp(0.5 * logvar) * torch.randn((200, *mu.shape), generator=g)).reshape(-1, 3).double()
    cov = model.prior_tril.double() @ model.prior_tril.double().T
    n = len(agg)
    se_mean = torch.sqrt(torch.diag(cov) / n)
    assert (torch.abs(agg.mean(0) - model.prior_loc.double()) < 5 * se_mean).all()
    se_cov = torch.sqrt((torch.outer(torch.diag(cov), torch.diag(cov)) + cov ** 2) / n)
    assert (torch.abs(torch.cov(agg.T) - cov) < 5 * se_cov).all()
    # The posterior variances matter here: without them the covariance would be off by far more than its error.
    assert (torch.exp(logvar).mean(0).double() > 10 * torch.diag(se_cov)).all()
    _, _, z = model.sample_features(4000, seed=2)
    z = torch.from_numpy(z).double()
    assert (torch.abs(z.mean(0) - model.prior_loc.double()) < 5 * torch.sqrt(torch.diag(cov) / 4000)).all()


def test_position_components_are_drawn_with_their_weights():
    """``decoders.draw_component`` (the inverse-CDF draw of a mixture component): the share of 100,000 draws
    of each component within 4 binomial standard errors of its weight, for weights over four orders of
    magnitude among a chain's worth of components, and no draw of a component of weight zero (log-weight
    NEG_INF). Drawn in rows of 10,000 (a (N, J) table of all at once would hold 10^8 numbers)."""
    from etasvae.models.decoders import NEG_INF, draw_component

    J, N, rows = 1000, 100_000, 10_000
    log_w = torch.full((J,), NEG_INF, dtype=torch.float64)
    picked = torch.tensor([0, 7, 500, 998])
    log_w[picked] = torch.log(torch.tensor([0.5, 0.3, 0.1999, 0.0001], dtype=torch.float64))
    torch.manual_seed(0)
    k = torch.cat([draw_component(log_w.expand(rows, J).float()) for _ in range(N // rows)])
    counts = torch.bincount(k, minlength=J).double()
    assert counts.sum() == N and counts[picked].sum() == N       # nothing outside the weighted components
    w = torch.softmax(log_w, 0)[picked]
    share = counts[picked] / N
    assert bool(((share - w).abs() <= 4.0 * torch.sqrt(w * (1.0 - w) / N)).all()), (share, w)
