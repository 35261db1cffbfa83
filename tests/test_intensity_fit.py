"""The autoregressive decoder's globals from a whole-catalog ETAS fit of its training catalogs
(``etasvae.models.intensity_fit``): the catalogs rebuilt from the overlapping training windows are the catalogs,
event for event; their fit is the fit of the original catalogs; training keeps the frozen globals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from etasvae.features import build_windows, events_above_mc
from etasvae.inversion import catalog_sequence, fit_sequences
from etasvae.models.intensity_fit import HISTORY_DAYS, fit_training_catalogs, training_sequences
from etasvae.models.sequence import window_origins
from etasvae.models.train import train_vae
from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas

MC = 2.5
REGION = (0.0, 60.0, 0.0, 60.0)
SPEC = {"representation": "event", "length": 32, "stride": 16, "mc": MC, "xy_scale_km": 5.0,
        "min_dt_days": 1e-6, "region_km": list(REGION)}
TRUTH = ETASParams(mu=2.0, K=0.2, alpha=1.5, c=0.01, p=1.2, D=0.5, q=1.5, gamma=1.0, b=1.0, mc=MC)
SMALL = {"latent_dim": 3, "hidden": [32], "beta": 1.0, "kl_warmup_epochs": 0, "lr": 3e-3, "optimizer": "adam",
         "loss": "channels", "decoder": "autoregressive", "epochs": 3, "batch_size": 32, "patience": 0,
         "grad_clip": 5.0, "seed": 0}


def quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def windows():
    """Three ETAS catalogs of 150 days (two for training, one held out), cut into windows overlapping by half."""
    rng = np.random.default_rng(11)
    catalogs = [(r, simulate_etas(TRUTH, duration=150.0, region=REGION, rng=rng, burn_in=30.0)) for r in range(3)]
    table, X = build_windows(catalogs, SPEC, heldout_replicates=[2], validation_fraction=0.2)
    return catalogs, table, X


def test_training_catalogs_are_rebuilt_event_for_event(windows):
    """Each training catalog comes back from its windows once per event: the same number of events as the
    catalog's training block (the events of the train windows), times to 1e-6 days, magnitudes and positions to
    float32 precision; the held-out catalog and the validation block are not in it."""
    catalogs, table, X = windows
    seqs = training_sequences(table, X, SPEC, fit_events=10**9)
    assert len(seqs) == 2
    for (rep, cat), seq in zip(catalogs[:2], seqs):
        _, t, m, x, y = events_above_mc(cat, MC)
        rows = table[(table["replicate"] == rep) & (table["role"] == "train")]
        n_train = int(np.searchsorted(t, rows["t_end"].max(), side="right"))
        keep = slice(0, n_train)
        assert len(seq.time) == n_train
        np.testing.assert_allclose(seq.time, t[keep], rtol=0, atol=1e-6)
        np.testing.assert_allclose(seq.magnitude, m[keep], rtol=0, atol=1e-5)
        np.testing.assert_allclose(seq.x, x[keep], rtol=0, atol=1e-4)
        np.testing.assert_allclose(seq.y, y[keep], rtol=0, atol=1e-4)
        assert seq.t0 == pytest.approx(t[0] + HISTORY_DAYS)
        assert t[n_train - 1] < seq.t1 <= t[n_train - 1] + 2e-6   # 1e-6 after the last, to the rebuilt times' rounding


def test_the_fit_of_the_rebuilt_catalogs_is_the_fit_of_the_catalogs(windows):
    """The same targets and history from the original catalogs give the same estimates (to the rebuilt
    values' float32 rounding: 1e-4 relative is far below every standard error)."""
    catalogs, table, X = windows
    seqs = training_sequences(table, X, SPEC)
    direct = [catalog_sequence(cat, mc=MC, t_start=s.t0, t_end=s.t1, region=REGION)
              for (_, cat), s in zip(catalogs[:2], seqs)]
    ours = fit_training_catalogs(table, X, SPEC, log=quiet)
    ref = fit_sequences(direct, mc=MC, model="space-time", n_starts=1)
    assert ours is not None and ref.usable
    assert ours["n_target"] == ref.n_target
    for k, v in ours["estimates"].items():
        assert v == pytest.approx(ref.estimates[k], rel=1e-4), k


def test_a_pooled_table_keeps_the_windows_own_fit(windows):
    _, table, X = windows
    pooled = table.assign(config_id=np.where(table["replicate"] == 0, "a", "b"))
    assert fit_training_catalogs(pooled, X, SPEC, log=quiet) is None


def test_training_keeps_the_frozen_globals(windows):
    """After training with ``intensity_globals`` the intensity's mu, K, alpha, c, p and the kernel's D, gamma, q
    are the estimates (z has no say in K), while the virtual parent has moved from its zero start."""
    _, table, X = windows
    est = fit_training_catalogs(table, X, SPEC, log=quiet)["estimates"]
    train = (table["role"] == "train").to_numpy()
    torch.set_num_threads(1)
    model = train_vae(X[train], None, SMALL, log=quiet, spec=SPEC, origin_train=window_origins(table)[train],
                      intensity_globals=est).model
    intensity, heads = model.intensity, model.heads
    alpha, c, p = (float(v) for v in intensity.globals())
    got = {"mu": math.exp(float(intensity.log_mu)), "K": math.exp(float(intensity.log_K)), "alpha": alpha, "c": c,
           "p": p, "D": math.exp(float(heads.log_D)), "gamma": float(heads.raw_gamma),
           "q": 1.0 + float(torch.nn.functional.softplus(heads.raw_q)) + 1e-3}
    for k, v in got.items():
        assert v == pytest.approx(est[k], rel=1e-5), k
    assert float(intensity.productivity_head.weight.abs().max()) == 0.0
    assert float(intensity.virtual_head.weight.detach().abs().max()) > 0.0


def test_a_conditional_intensity_takes_the_configs_lines_in_c():
    """The surrogate's intensity from two configs' fits: log mu and log K at each config's c are that config's
    estimates (the line through two points is exact), at the midpoint their geometric mean; alpha, c, p, D,
    gamma, q the configs' mean (c geometric); everything frozen, z's columns of the productivity zero."""
    from etasvae.models.decoders import EventHeads, ExcitationIntensity
    from etasvae.models.intensity_fit import freeze_conditional_globals

    latent, n_cond = 3, 1
    fits = [(np.array([-1.0]), {"mu": 4.0, "K": 0.1, "alpha": 1.4, "c": 0.01, "p": 1.1, "D": 0.6, "gamma": 1.0, "q": 1.6}),
            (np.array([1.0]), {"mu": 6.0, "K": 0.4, "alpha": 1.6, "c": 0.04, "p": 1.2, "D": 0.8, "gamma": 1.2, "q": 1.8})]
    intensity = ExcitationIntensity(latent + n_cond, n_cond=n_cond)
    heads = EventHeads(8, latent + n_cond, list(REGION), n_cond=n_cond)
    freeze_conditional_globals(intensity, fits, heads)
    z = torch.zeros(3, latent)
    u = torch.cat([z, torch.tensor([[-1.0], [1.0], [0.0]])], dim=1)
    log_mu, log_K, _, _ = intensity.window_terms(u)
    np.testing.assert_allclose(np.exp(log_mu.numpy()), [4.0, 6.0, math.sqrt(24.0)], rtol=1e-5)
    np.testing.assert_allclose(np.exp(log_K.numpy()), [0.1, 0.4, 0.2], rtol=1e-5)
    alpha, c, p = (float(v) for v in intensity.globals())
    assert (alpha, c, p) == pytest.approx((1.5, 0.02, 1.15), rel=1e-5)
    assert math.exp(float(heads.log_D)) == pytest.approx(0.7, rel=1e-5)
    assert float(heads.raw_gamma) == pytest.approx(1.1, rel=1e-5)
    assert not any(q.requires_grad for q in (intensity.log_mu, intensity.log_K, intensity.raw_p, heads.log_D,
                                              *intensity.background_head.parameters(),
                                              *intensity.productivity_head.parameters()))
    assert float(intensity.productivity_head.weight[0, :latent].abs().max()) == 0.0


def _quiet_intensity_model() -> "torch.nn.Module":
    """An autoregressive sequence VAE whose intensity has a tiny background (1e-3 per day) and productivity
    (K = 1e-3) and a virtual parent of productivity e^10 just before the window (1e-3 days)."""
    from etasvae.models.sequence import SequenceVAE

    torch.manual_seed(0)
    model = SequenceVAE(SPEC["length"], 3, [16], "autoregressive", SPEC)
    with torch.no_grad():
        model.intensity.log_mu.fill_(math.log(1e-3))
        model.intensity.log_K.fill_(math.log(1e-3))
        model.intensity.virtual_head.weight.zero_()
        model.intensity.virtual_head.bias.copy_(torch.tensor([10.0, math.log(1e-3)]))
    return model.eval()


def test_a_chains_earlier_events_replace_the_virtual_parent():
    """``generate(older=...)``: with the chain's earlier events given, the virtual parent is off and those
    events are parents. With the virtual parent on, the window's intervals are about e^-10 days short; with
    ``older`` holding one unproductive event they follow the tiny background (median above a day); with
    ``older`` holding one event of productivity K e^(alpha m) = 1e-3 e^15 = 3,300 (alpha 1 at the start) just
    before the history, the window's intervals are short again: the older event is a parent."""
    from etasvae.models.sequence import Events, Past

    model = _quiet_intensity_model()
    n, L = 64, SPEC["length"]
    u = torch.zeros(n, 3)
    hist = Events(torch.full((n, L), math.log(1e-3)), torch.zeros(n, L), torch.full((n, L, 2), 30.0))
    past = Past(hist, torch.ones(n), torch.zeros(n, 4 * L))
    older = Events(torch.zeros(n, 1), torch.zeros(n, 1), torch.full((n, 1, 2), 30.0))
    draws = {}
    for name, kwargs in {"virtual": {}, "quiet": {"older": older},
                         "productive": {"older": older._replace(m=torch.full((n, 1), 15.0))}}.items():
        torch.manual_seed(1)
        draws[name] = float(model.generate(u, past, **kwargs).ln_dt[:, 1:].median())
    assert draws["virtual"] < math.log(1e-2)
    assert draws["quiet"] > math.log(1.0)
    assert draws["productive"] < math.log(1e-1)


def test_a_model_held_at_a_catalog_fit_draws_chained_windows(windows):
    """Training with ``intensity_globals`` marks the model (kept in its architecture, so in its file);
    ``sample_windows`` then cuts the windows from chains: seeded (the same bytes twice), as many as asked,
    and different from the independent windows of ``sample_features``."""
    from etasvae.models.sequence import SequenceVAE

    _, table, X = windows
    est = fit_training_catalogs(table, X, SPEC, log=quiet)["estimates"]
    train = (table["role"] == "train").to_numpy()
    torch.set_num_threads(1)
    model = train_vae(X[train], None, {**SMALL, "epochs": 1}, log=quiet, spec=SPEC,
                      origin_train=window_origins(table)[train], intensity_globals=est).model.eval()
    assert model.catalog_intensity and SequenceVAE.from_architecture(model.architecture()).catalog_intensity
    a, za = model.sample_windows(30, seed=4, mode="draw", transform=None)
    b, _ = model.sample_windows(30, seed=4, mode="draw", transform=None)
    c, _, _ = model.sample_features(30, seed=4)
    assert a.shape == (30, 4 * SPEC["length"]) and za.shape == (30, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_kernels_mass_inside_the_region_is_the_share_of_its_draws_inside():
    """``EventHeads.kernel_log_mass`` (the edge quadrature of the fit) against the share of 200,000 draws of
    the kernel that land inside the region, for a parent near a corner, one near an edge and one in the
    centre: within 4 binomial standard errors sqrt(M (1 - M) / N) (at most 0.0045) plus 1e-4 for the
    quadrature."""
    from etasvae.models.decoders import EventHeads, PowerLawKernel

    heads = EventHeads(8, 3, list(REGION))
    with torch.no_grad():
        heads.log_D.fill_(math.log(2.0))
        heads.raw_gamma.fill_(0.8)
        heads.raw_q.fill_(0.0)             # q = 1 + ln 2: a heavy tail, so the far edges count too
    xy = torch.tensor([[3.0, 5.0], [30.0, 2.0], [30.0, 30.0]])
    m = torch.tensor([1.5, 0.5, 3.0])
    mass = torch.exp(heads.kernel_log_mass(xy, m))
    N = 200_000
    torch.manual_seed(0)
    s = torch.exp(heads.log_D + heads.raw_gamma * m).detach()
    q = (1.0 + torch.nn.functional.softplus(heads.raw_q) + 1e-3).detach()
    draws = xy[:, None, :] + PowerLawKernel(s[:, None].expand(3, N), q).sample()
    inside = ((draws[..., 0] >= REGION[0]) & (draws[..., 0] <= REGION[1]) &
              (draws[..., 1] >= REGION[2]) & (draws[..., 1] <= REGION[3])).double().mean(1)
    se = torch.sqrt(inside * (1.0 - inside) / N)
    assert bool((mass < 0.95).all())   # each loses a visible share
    assert bool(((mass - inside).abs() <= 4.0 * se + 1e-4).all()), (mass, inside)


def _productive_parent_model(catalog: bool):
    """An autoregressive model at a catalog fit's globals: a background of 1e-6 a day, K = 1, alpha = 1,
    c = 0.01, p = 1.2 and a narrow kernel (D = 0.01 km^2, gamma = 0, q = 3), with ``catalog_intensity``
    as given."""
    from etasvae.models.intensity_fit import freeze_globals
    from etasvae.models.sequence import SequenceVAE

    model = SequenceVAE(SPEC["length"], 3, [16], "autoregressive", SPEC, catalog_intensity=catalog)
    freeze_globals(model.intensity, {"mu": 1e-6, "K": 1.0, "alpha": 1.0, "c": 0.01, "p": 1.2,
                                     "D": 0.01, "gamma": 0.0, "q": 3.0}, model.heads)
    return model.eval()


@pytest.mark.parametrize("catalog, share", [(True, 0.25), (False, 1.0)])
def test_a_catalog_intensity_counts_only_a_parents_offspring_inside_the_region(catalog, share):
    """One earlier event of productivity kappa = 40 at the region's corner, with a kernel so narrow that
    exactly a quarter of its mass lies inside (the far tail beyond 60 km: (1 + 3600 / 0.01)^-2 < 1e-11):
    held at a catalog fit, the intensity counts kappa / 4 of its offspring, as the fit's region integral
    does, so the wait w to the window's first event has kappa/4 G(w) ~ Exp(1) (G the Omori kernel's mass
    up to w); without the fit it counts all kappa. Mean of 4,000 draws within 4 standard errors (1 /
    sqrt(4000)) of 1."""
    from etasvae.models.sequence import Events

    model = _productive_parent_model(catalog)
    n = 4000
    older = Events(torch.zeros(n, 1), torch.full((n, 1), math.log(40.0)), torch.zeros(n, 1, 2))
    torch.manual_seed(3)
    w = torch.exp(model.generate(torch.zeros(n, 3), older=older).ln_dt[:, 0].double())
    u = 40.0 * share * (1.0 - (1.0 + w / 0.01) ** (1.0 - 1.2))
    assert abs(float(u.mean()) - 1.0) < 4.0 / math.sqrt(n)
