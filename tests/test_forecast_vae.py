"""The sequence VAE as a forecaster (etasvae.forecast_vae): its temporal density is a proper density of the
next event's time, its scores match a direct computation where the decoder's laws are known, the position
density's mass inside a polygon, determinism and keys, and a tiny trained VAE end to end on an ETAS catalog.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from etas_samples import MC, clustered_catalog
from etasvae.features import FeatureTransform, build_windows
from etasvae.forecast import magnitude_log_density
from etasvae.forecast_vae import vae_forecast
from etasvae.forecast_vae_catalogs import vae_forecaster
from etasvae.inversion import InversionError, catalog_sequence
from etasvae.inversion_geometry import inside_polygon
from etasvae.models.decoders import PositionMixture
from etasvae.models.files import ModelBundle
from etasvae.models.sequence import Batch, Events, Past, SequenceVAE, window_origins
from etasvae.models.train import train_vae

L = 8
REGION = [0.0, 100.0, 0.0, 100.0]
SPEC = {"representation": "event", "mc": MC, "length": L, "stride": L, "xy_scale_km": 1.0, "min_dt_days": 1e-6,
        "region_km": REGION}
SETTINGS = {"loss": "channels", "latent_dim": 2, "hidden": [16], "epochs": 3, "batch_size": 16, "seed": 0, "lr": 1e-3,
            "beta": 1.0, "optimizer": "adam", "kl_warmup_epochs": 1, "patience": 0, "grad_clip": 5.0}
TEST = (70.0, 90.0)   # the test period (days) of the ETAS catalog: 60 days of training windows before it


@pytest.fixture(scope="module")
def etas():
    """(catalog, windows table, X) of a 100-day ETAS catalog, windows of its first 60 days."""
    cat = clustered_catalog(0, duration=100.0)
    table, X = build_windows([(0, cat[cat.time < 60].reset_index(drop=True))], SPEC, heldout_replicates=[],
                             validation_fraction=0.2)
    return cat, table, X


def trained(etas, decoder: str, **settings) -> ModelBundle:
    _, table, X = etas
    O = window_origins(table)
    tr, va = (table.role == "train").to_numpy(), (table.role == "validation").to_numpy()
    s = {**SETTINGS, "decoder": decoder, **settings}
    r = train_vae(X[tr], X[va], s, spec=SPEC, origin_train=O[tr], origin_val=O[va], log=lambda *_: None, device="cpu")
    return ModelBundle(r.model.eval(), s, r.transform, SPEC, r.history)


@pytest.fixture(scope="module")
def autoregressive(etas):
    return trained(etas, "autoregressive")


@pytest.fixture(scope="module")
def lognormal(etas):
    return trained(etas, "gru_lognormal")


def score(bundle, cat, **kw):
    return vae_forecast(bundle, cat, start_days=TEST[0], end_days=TEST[1], region=REGION, mc=MC, **kw)


# ------------------------------------------------------------------------------------ (a) a proper density


def one_window_on_a_grid(bundle, cat, slot: int, grid: torch.Tensor, history: bool):
    """EventTerms of G copies of the first test window whose event ``slot`` comes exp(grid) days after the
    one before it (the earlier events as in the catalog; the later ones follow it unchanged)."""
    model = bundle.model
    t, m, x, y = (np.asarray(v) for v in (cat.time, cat.magnitude, cat.x, cat.y))
    keep = m >= MC
    t, m, x, y = t[keep], m[keep], x[keep], y[keep]
    s = int(np.searchsorted(t, TEST[0]))
    idx = np.arange(s - L, s + L)
    ln_dt = np.log(np.maximum(np.diff(t[idx[0] - 1:idx[-1] + 1]), 1e-6))
    G = len(grid)
    rep = lambda a: torch.tensor(np.repeat(a[None], G, axis=0), dtype=torch.float32)  # noqa: E731
    ev_ln_dt, ev_m, ev_xy = rep(ln_dt), rep(m[idx] - MC), rep(np.stack([x[idx], y[idx]], -1))
    ev_ln_dt[:, L + slot] = grid
    window = Events(ev_ln_dt[:, L:], ev_m[:, L:], ev_xy[:, L:])
    past = Past(Events(ev_ln_dt[:, :L], ev_m[:, :L], ev_xy[:, :L]), torch.ones(G), torch.zeros(G, 4 * L))
    X = torch.zeros(G, 4 * L)
    b = Batch(X, window.xy[:, 0], window=window, history=past if history else None)
    u = torch.zeros(G, model.latent_dim)
    with torch.no_grad():
        return model.event_terms(u, b, survival=True)


@pytest.mark.parametrize("decoder, slot, history", [
    ("autoregressive", 3, False),   # the ETAS intensity after earlier window events
    ("autoregressive", 0, True),    # the intensity of the history's events for the first event
    ("autoregressive", 0, False),   # the log-normal mixture of a window's first event
    ("gru_lognormal", 5, False),
])
def test_the_temporal_density_integrates_to_one_and_its_survival_is_its_tail(etas, autoregressive, lognormal,
                                                                             decoder, slot, history):
    bundle = autoregressive if decoder == "autoregressive" else lognormal
    # ln w from 1e-13 to 1e9 days in steps of 0.005: the trapezoid's error is far below the tolerance (the
    # density of ln w is smooth on that scale) and the mass beyond either end is below 1e-6.
    grid = torch.arange(-30.0, 20.0, 0.005)
    terms = one_window_on_a_grid(bundle, etas[0], slot, grid, history)
    w = np.exp(grid.double().numpy())
    f = np.exp(terms.time[:, slot].double().numpy() - np.log(w))      # the forecast's density of dt (1/day)
    total = np.trapezoid(f, w)
    assert total == pytest.approx(1.0, abs=2e-3)
    # S(w) = integral of f beyond w, at a few points in the bulk
    tail = np.concatenate([np.cumsum((0.5 * (f[1:] + f[:-1]) * np.diff(w))[::-1])[::-1], [0.0]])
    for k in np.searchsorted(np.cumsum(f * np.gradient(w)) / total, [0.1, 0.5, 0.9]):
        assert math.exp(float(terms.survival[k, slot])) == pytest.approx(tail[k], abs=2e-3)


# ------------------------------------------------------------------------------- (b) known laws, direct sums


def known_model(decoder: str, mu_ln: float, sd_ln: float, rate: float, beta: float) -> ModelBundle:
    """A sequence VAE whose laws are known: ln dt ~ N(mu_ln, sd_ln) (a window's first event; every event with
    a log-normal decoder), the other events of the autoregressive decoder at a constant rate ``rate`` (K at its
    floor, alpha ~ 0 and c = 20 days: triggering below 1e-7 per day), magnitudes exponential with rate
    ``beta``, positions uniform in the region (cluster and parents at weight e^-60)."""
    torch.manual_seed(0)
    model = SequenceVAE(L, 2, [16], decoder, SPEC).eval()
    h = model.heads
    with torch.no_grad():
        for lin in (h.dt_head, h.dt_shift, h.pos_head):
            lin.weight.zero_()
            lin.bias.zero_()
        h.dt_head.bias[8:16] = mu_ln
        h.dt_head.bias[16:] = math.log(sd_ln)
        h.log_mag_rate.fill_(math.log(beta))
        h.pos_head.bias[1:] = -60.0
        h.raw_q.fill_(20.0)                       # parent kernels ~ r^-42: nothing beyond a few km
        h.cluster_head.weight.zero_()
        h.cluster_head.bias.copy_(torch.tensor([0.0, 0.0, -2.0]))   # a 0.24 km cluster at the centre
        if decoder == "autoregressive":
            f = model.intensity
            f.log_mu.fill_(math.log(rate))
            f.log_K.fill_(-30.0)
            f.productivity_head.weight.zero_()
            f.productivity_head.bias.zero_()
            f.virtual_head.weight.zero_()
            f.virtual_head.bias.copy_(torch.tensor([-30.0, 30.0]))   # log kappa, log lag: at their floor, far back
            f.raw_alpha.fill_(-30.0)
            f.log_c.fill_(3.0)
    return ModelBundle(model, {}, FeatureTransform("standard", np.zeros(4 * L), np.ones(4 * L)), SPEC,
                       pd.DataFrame())


def renewal_catalog(seed: int, n: int = 140) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(0.5, n))
    m = MC + np.round(rng.exponential(1 / math.log(10), n), 1)
    return pd.DataFrame({"event_id": np.arange(n), "time": t, "magnitude": m, "x": rng.uniform(0, 100, n),
                         "y": rng.uniform(0, 100, n)})


HALF = [[0.0, 0.0], [100.0, 0.0], [100.0, 50.0], [0.0, 50.0]]   # a polygon: the rectangle's lower half


@pytest.mark.parametrize("decoder, region", [("gru_lognormal", REGION), ("autoregressive", REGION),
                                             ("gru_lognormal", HALF)])
def test_the_scores_of_known_laws_are_their_direct_log_likelihoods(decoder, region):
    mu_ln, sd_ln, rate, beta = -1.0, 1.3, 2.0, math.log(10)
    bundle = known_model(decoder, mu_ln, sd_ln, rate, beta)
    cat = renewal_catalog(1, 240)
    start, end = 20.0, 50.0
    got = vae_forecast(bundle, cat, start_days=start, end_days=end, region=region, mc=MC, delta_m=0.1)
    cat = cat[cat.y <= 50.0] if region is HALF else cat     # the region's events only, as the ETAS score
    t = cat.time.to_numpy()
    s, e = np.searchsorted(t, start), np.searchsorted(t, end)
    n = e - s
    # slot of each event in its window (the first window starts at the first test event); slot n the censored
    lognormal = stats.lognorm(s=sd_ln, scale=math.exp(mu_ln))
    exponential = stats.expon(scale=1.0 / rate)
    law = lambda k: lognormal if decoder == "gru_lognormal" or k % L == 0 else exponential  # noqa: E731
    dt = np.diff(t[s - 1:e])
    log_f = sum(law(k).logpdf(dt[k]) for k in range(n))
    log_last = law(n).logsf(end - t[e - 1])
    log_first = law(0).logsf(start - t[s - 1])
    assert got["n_events"] == n
    assert got["tll"] == pytest.approx((log_f + log_last - log_first) / n, abs=1e-5)
    # uniform over the decoder's rectangle, renormalised to the region: -log of the region's area
    area = 100.0 * (50.0 if region is HALF else 100.0)
    assert got["sll"] == pytest.approx(-math.log(area), abs=1e-5)
    b = beta / math.log(10)
    assert got["mll"] == pytest.approx(float(np.mean(magnitude_log_density(cat.magnitude.to_numpy()[s:e], MC, b, 0.1))),
                                       abs=1e-5)


# -------------------------------------------------------------------------- the position density's region mass


def test_the_position_mass_inside_a_polygon_is_the_integral_of_its_density():
    # A mixture of the three kinds of components, an L-shaped region inside the decoder's rectangle, one event.
    rect = torch.tensor(REGION)
    parents = torch.tensor([[[20.0, 30.0], [58.0, 52.0], [90.0, 10.0]]])
    mix = PositionMixture(rect, torch.tensor([0.2]), torch.tensor([0.5]), torch.tensor([[45.0, 60.0]]),
                          torch.tensor([12.0]), torch.tensor([[0.3, 1.0, -0.5]]), parents,
                          torch.tensor([[4.0, 30.0, 9.0]]), torch.tensor(1.6))
    polygon = np.array([[5.0, 5.0], [95.0, 5.0], [95.0, 40.0], [60.0, 40.0], [60.0, 95.0], [5.0, 95.0]])
    got = math.exp(float(mix.log_mass_inside(polygon)[0]))
    # the integral on a 0.05 km grid (4e6 cells): the kernels' cores span 2-5 km, well resolved
    g = np.arange(0.025, 100.0, 0.05)
    total = 0.0
    for row in np.array_split(g, 20):
        X, Y = np.meshgrid(row, g, indexing="ij")
        inside = inside_polygon(polygon, X.ravel(), Y.ravel())
        xy = torch.tensor(np.stack([X.ravel()[inside], Y.ravel()[inside]], -1), dtype=torch.float64)
        total += float(torch.exp(mix.log_prob(xy[:, None, :].float()).double()).sum()) * 0.05 ** 2
    assert 0.5 < got < 0.95   # a mass well inside (0, 1): the test sees the edges
    assert got == pytest.approx(total, abs=2e-3)


# ---------------------------------------------------------------------------------- (c) keys and determinism


def test_the_scores_are_deterministic_and_have_the_score_keys(etas, autoregressive):
    cat = etas[0]
    a, b = score(autoregressive, cat), score(autoregressive, cat)
    assert a == b
    # windows one at a time: the same scores (each window's terms depend on its own events and z only), to
    # float32 rounding (a batch of one takes other matrix kernels: differences of 1e-9 seen, 1e-6 allowed)
    one = score(autoregressive, cat, window_batch=1)
    assert all(one[k] == pytest.approx(a[k], abs=1e-6) for k in ("tll", "sll", "mll"))
    assert {"tll", "sll", "mll", "n_events", "z", "history"} <= set(a)
    prior = score(autoregressive, cat, z="prior")
    assert prior["n_events"] == a["n_events"] and prior["tll"] != a["tll"]   # z matters
    with pytest.raises(ValueError, match="z must be one of"):
        score(autoregressive, cat, z="draw")


def test_an_mlp_vae_is_not_a_forecaster(etas):
    mlp = trained(etas, "mlp", loss="mse", epochs=1)
    out = score(mlp, etas[0])
    assert set(out) == {"not_forecaster"} and "MLP VAE" in out["not_forecaster"]


# -------------------------------------------------------------------------------------- (d) end to end


def test_a_trained_sequence_vae_scores_the_test_period_of_an_etas_catalog(etas, autoregressive):
    cat = etas[0]
    got = score(autoregressive, cat)
    seq = catalog_sequence(cat, mc=MC, t_start=TEST[0], t_end=TEST[1], region=REGION)
    n = int((seq.time >= TEST[0]).sum())
    assert got["n_events"] == n and got["windows"] == -(-(n + 1) // L)
    assert all(np.isfinite(got[k]) for k in ("tll", "sll", "mll"))
    # the positions are a density over the region: better than uniform for clustered events, and below the
    # log density of a 1 km^2 cell (no event is predicted to the metre)
    assert -math.log(100.0 * 100.0) < got["sll"] < 0.0
    # the events before the window are history of its first event's position and time when asked for
    with_history = score(autoregressive, cat, history=True)
    assert with_history["history"] and with_history["tll"] != got["tll"]


def test_too_few_events_before_the_test_period_are_named(etas, autoregressive):
    cat = etas[0]
    early = float(np.sort(cat.time[cat.magnitude >= MC])[L - 2])   # L - 2 events before it: no window before
    with pytest.raises(InversionError, match=f"{L - 2} events before the test period"):
        vae_forecast(autoregressive, cat, start_days=early, end_days=early + 5.0, region=REGION, mc=MC)


# ------------------------------------------------------------- (e) catalogs generated given the history (CSEP)


def history_of(cat: pd.DataFrame, start: float) -> pd.DataFrame:
    seq = catalog_sequence(cat, mc=MC, t_start=start, t_end=start + 1.0, region=REGION)
    keep = seq.time < start
    return pd.DataFrame({"time": seq.time[keep], "magnitude": seq.magnitude[keep], "x": seq.x[keep], "y": seq.y[keep]})


def test_the_vae_catalogs_lie_in_the_horizon_and_the_region_and_repeat_with_the_seed(etas, autoregressive):
    """A trained decoder's catalogs of [70, 73) given the events before day 70: columns, times in the horizon,
    positions in the (half-rectangle) region, magnitudes above Mc; the same seed gives the same catalogs, another
    seed others; with a history the decoder reads it (other catalogs)."""
    history = history_of(etas[0], TEST[0])
    forecast = vae_forecaster(autoregressive.model, delta_m=0.0, region=HALF)
    a = forecast(history, 70.0, 73.0, np.random.default_rng(3), 50)
    b = forecast(history, 70.0, 73.0, np.random.default_rng(3), 50)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["catalog", "time", "magnitude", "x", "y"] and len(a) > 50
    assert ((a.time >= 70.0) & (a.time < 73.0)).all() and (a.magnitude >= MC).all()
    assert inside_polygon(HALF, a.x.to_numpy(), a.y.to_numpy()).all()
    assert set(a.catalog) <= set(range(50)) and (np.diff(a.catalog) >= 0).all()
    other = forecast(history, 70.0, 73.0, np.random.default_rng(4), 50)
    assert not a.equals(other)
    binned = vae_forecaster(autoregressive.model, delta_m=0.1, region=REGION)(history, 70.0, 73.0,
                                                                               np.random.default_rng(3), 20)
    k = (binned.magnitude - MC) / 0.1
    assert np.allclose(k, np.round(k), atol=1e-6) and (k > -0.5).all()
    hist = vae_forecaster(autoregressive.model, delta_m=0.0, region=HALF, history=True)(
        history, 70.0, 73.0, np.random.default_rng(3), 50)
    assert not hist.equals(a)


@pytest.mark.parametrize("history", [False, True])
def test_the_vae_catalogs_have_no_event_in_a_horizon_as_often_as_the_decoders_survival_says(history):
    """Known laws (``known_model``): without a history the first event after the history's last (t_0) waits a
    log-normal interval; given no event in (t_0, a), P(no event in [a, b)) = S(b - t_0) / S(a - t_0) = 0.49
    here (0.27 unconditioned). With the history the wait comes from the intensity, a constant rate 2 per day
    (triggering at its floor): P = exp(-2 (b - a)) = 0.37 whatever the gap. 4000 catalogs: binomial standard
    error 0.008; tolerance 4 of them (a chance failure 6e-5)."""
    mu_ln, sd_ln, rate = -1.0, 1.3, 2.0
    bundle = known_model("autoregressive", mu_ln, sd_ln, rate, math.log(10))
    history_events = history_of(renewal_catalog(1, 240), 60.0)
    t0 = float(history_events.time.iloc[-1])
    a, b, n = t0 + 0.3, t0 + 0.8, 4000
    law = stats.lognorm(s=sd_ln, scale=math.exp(mu_ln))
    want = math.exp(-rate * (b - a)) if history else law.sf(b - t0) / law.sf(a - t0)
    sims = vae_forecaster(bundle.model, delta_m=0.0, region=REGION, history=history)(
        history_events, a, b, np.random.default_rng(0), n)
    empty = 1.0 - sims.catalog.nunique() / n
    assert abs(empty - want) < 4.0 * math.sqrt(want * (1 - want) / n), (empty, want)


def test_the_mean_count_of_the_vae_catalogs_is_the_renewal_expectation_of_its_laws():
    """Known laws, log-normal decoder: every interval log-normal, independent (a renewal process over the
    chained windows of L = 8 events). Over 12 days (about 14 events: two windows and more) the mean count
    given no event in (t_0, a) is the renewal expectation, estimated from 200 000 renewal paths drawn with
    scipy; tolerance 4 standard errors of the difference (the VAE's 3000 catalogs and the paths')."""
    mu_ln, sd_ln = -1.0, 1.3
    bundle = known_model("gru_lognormal", mu_ln, sd_ln, 2.0, math.log(10))
    history = history_of(renewal_catalog(2, 240), 60.0)
    t0 = float(history.time.iloc[-1])
    a, b, n = t0 + 0.2, t0 + 12.2, 3000
    sims = vae_forecaster(bundle.model, delta_m=0.0, region=REGION)(history, a, b, np.random.default_rng(1), n)
    counts = np.bincount(sims.catalog, minlength=n)
    law = stats.lognorm(s=sd_ln, scale=math.exp(mu_ln))
    rng = np.random.default_rng(9)
    paths = 200_000
    first = law.isf(rng.uniform(0.0, law.sf(a - t0), paths))    # the first interval given it exceeds a - t_0
    t = t0 + np.cumsum(np.column_stack([first, law.rvs(size=(paths, 80), random_state=rng)]), axis=1)
    ref = ((t >= a) & (t < b)).sum(axis=1)
    assert (t[:, -1] > b).all()                                  # 80 intervals reach past the horizon
    se = math.sqrt(counts.var(ddof=1) / n + ref.var(ddof=1) / paths)
    assert abs(counts.mean() - ref.mean()) < 4.0 * se, (counts.mean(), ref.mean(), se)


def test_the_csep_tests_of_a_trained_vae_give_pass_rates(etas, autoregressive):
    pytest.importorskip("csep")
    from etasvae.forecast_csep import TESTS, catalog_tests

    forecast = vae_forecaster(autoregressive.model, delta_m=0.0, region=REGION)
    out = catalog_tests(forecast, etas[0], 70.0, 5.0, mc=MC, delta_m=0.0, region=REGION, n_catalogs=20,
                        seed=0, end_days=90.0)
    assert out["n_horizons"] == 4 and set(out["pass_rate"]) == set(TESTS)
    assert all(0.0 <= out["pass_rate"][k] <= 1.0 for k in TESTS if out["n_valid"][k])
    assert all(h["mean_simulated"] > 0 for h in out["horizons"])


def test_a_mixture_of_normals_drawn_above_a_bound_is_the_truncated_mixture():
    """``decoders.sample_above``: 20 000 draws of a two-component mixture given X > 0.5 against the exact
    conditional CDF (Kolmogorov-Smirnov; a chance failure below 1e-4); far in the tail (40 sd above the
    upper component's mean) every draw is above the bound and finite."""
    from torch.distributions import Categorical, MixtureSameFamily, Normal

    from etasvae.models.decoders import sample_above

    n = 20_000
    w, loc, sd = torch.tensor([0.7, 0.3]), torch.tensor([-1.0, 1.0]), torch.tensor([0.5, 0.8])
    mix = MixtureSameFamily(Categorical(probs=w.expand(n, 2)), Normal(loc.expand(n, 2), sd.expand(n, 2)))
    torch.manual_seed(0)
    x = sample_above(mix, torch.full((n,), 0.5)).double().numpy()
    parts = [stats.norm(float(m), float(s)) for m, s in zip(loc, sd)]
    tail = sum(float(p) * q.sf(0.5) for p, q in zip(w, parts))
    cdf = lambda v: sum(float(p) * (q.cdf(v) - q.cdf(0.5)) for p, q in zip(w, parts)) / tail  # noqa: E731
    assert (x > 0.5).all() and stats.kstest(x, cdf).pvalue > 1e-4
    far = sample_above(mix, torch.full((n,), 33.0))
    assert torch.isfinite(far).all() and (far >= 33.0).all()   # float32: a draw just above may round to it


def test_the_first_wait_of_a_trained_intensity_after_its_history_is_its_survival_ratio(etas, autoregressive):
    """A trained autoregressive decoder reading the preceding window as history: its first event's wait comes
    from the intensity of the history's events (an Omori decay, not memoryless). The share of catalogs
    without an event in [a, b) is exp(-(Lambda(b) - Lambda(a))), the ratio of the survivals that the scores
    compute from the compensator (forecast_vae's terms: another code path than generate's thinning). b is
    picked so that the ratio is near 0.5; 4000 catalogs, tolerance 4 binomial standard errors."""
    from etasvae.forecast_vae import _latent, _rectangle, _terms, _windows

    cat, model = etas[0], autoregressive.model
    history_events = history_of(cat, TEST[0])
    t0 = float(history_events.time.iloc[-1])
    seq = catalog_sequence(cat, mc=MC, t_start=TEST[0], t_end=TEST[1], region=REGION)
    a = t0 + 0.5 * (float(seq.time[seq.time >= TEST[0]][0]) - t0)   # before the next event: the same windows
    data, _, _ = _windows(seq, a, TEST[1], model.spec)
    T = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in data.items() if k != "role"}
    u = _latent(model, T, "posterior")

    def log_survival(gap):
        first = {k: v[:1].clone() for k, v in T.items()}
        first["ln_dt"][0, L] = math.log(gap)
        return float(_terms(model, first, u[:1], True, _rectangle(REGION)).survival[0, 0])

    with torch.no_grad():
        ratios = {h: math.exp(log_survival(a + h - t0) - log_survival(a - t0)) for h in np.geomspace(1e-3, 30.0, 60)}
    h, want = min(ratios.items(), key=lambda kv: abs(kv[1] - 0.5))
    assert 0.2 < want < 0.8, ratios
    n = 4000
    sims = vae_forecaster(model, delta_m=0.0, region=[-1e5, 1e5, -1e5, 1e5], history=True)(
        history_events, a, a + h, np.random.default_rng(5), n)
    empty = 1.0 - sims.catalog.nunique() / n
    assert abs(empty - want) < 4.0 * math.sqrt(want * (1 - want) / n), (empty, want, h)
