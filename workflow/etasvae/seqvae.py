"""A VAE over event windows whose decoder generates earthquake sequences (loss ``channels``).

The encoder reads a window's standardised features (as the MLP VAE does) plus the position of its first
event in the region (``x_first``, ``y_first`` of the windows table; the region is ``spec["region_km"]``)
and gives q(z|x) = N(mu, diag exp(logvar)). The decoder gives every event i a context vector, and
``etasvae.decoders.EventHeads`` turns it into the distribution of its inter-event time, magnitude and
position given the earlier events (mixture of log-normals, mixture of exponentials, ETAS placement):

    decoder          context of event i
    autoregressive   a GRU over the earlier events of the window, started from z and fed z at every step;
                     the inter-event times (after the first) come from an ETAS conditional intensity instead
                     (``etasvae.decoders.ExcitationIntensity``: background mu(z), a z-placed virtual parent
                     before the window, K e^{alpha (m_j - Mc)} times normalised Omori-Utsu for each earlier
                     event), and the position parents are weighted by its branching probabilities
    gru_lognormal    the same GRU with the log-normal mixture for every inter-event time
    mlp              an MLP of z alone (one context per event position); events still see their earlier
                     events through the parent choice of their position

Against posterior collapse (an autoregressive decoder can model a window without reading z):
- auxiliary heads predict window-level quantities from z alone (mean and spread of ln dt, the largest
  magnitude, the mean position, the first event's position), a Gaussian likelihood term
  weighted by ``AUX_WEIGHT``;
- the window's time scale enters the dt mixture directly from z (``EventHeads.dt_shift``) and the window
  cluster's centre and spread come from z alone;
- free bits (Kingma et al. 2016): the optimised KL term is sum_j max(FREE_BITS, mean over the batch of
  KL_j), so units below FREE_BITS nats cost nothing to use.

Loss per window (nats) = -log p(x|z) summed over events and channels + AUX_WEIGHT * aux NLL + beta_t *
free-bits KL. The history's KL columns are the plain KL; its reconstruction columns the sequence NLL.
The first event of a window has no earlier events in it, so its position is background or cluster.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .decoders import EventHeads, ExcitationIntensity
from .features import FeatureTransform, check_spec
from .threads import one_thread

DECODERS = ("mlp", "autoregressive", "gru_lognormal")
RECURRENT = ("autoregressive", "gru_lognormal")
RNN_HIDDEN = 64
CONTEXT = 64
FREE_BITS = 0.5      # nats per latent unit
AUX_WEIGHT = 4.0
AUX_NAMES = ("mean_ln_dt", "std_ln_dt", "max_magnitude", "mean_x", "mean_y", "x_first", "y_first")
_LN10 = math.log(10.0)
_EVAL_BATCH = 1024
MAX_REDRAWS = 50     # magnitudes above mmax are drawn again this often, then set to mmax


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return layers


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per window and latent unit."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def free_bits_kl(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float = FREE_BITS) -> torch.Tensor:
    """The KL term that is optimised: sum over units of max(free_bits, batch-mean KL of the unit)."""
    return torch.clamp(kl_per_unit(mu, logvar).mean(dim=0), min=free_bits).sum()


def objective(nll, aux, kl_term, beta: float):
    """The training loss per window: what the optimiser minimises (tensors, or floats for a validation score)."""
    return nll + AUX_WEIGHT * aux + beta * kl_term


def optimiser_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params, grad_clip: float) -> None:
    """One gradient step on ``loss``, the gradient norm clipped to ``grad_clip`` (0: no clipping)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


class Batch:
    """A batch of event windows in the model's physical units, from raw features (n, 4L) and first-event
    positions (n, 2) km: ln dt (days), m - Mc, x, y (km, region frame), t (days after the first event)."""

    def __init__(self, X: torch.Tensor, origin: torch.Tensor, spec: dict[str, Any]):
        n = X.shape[0]
        V = X.reshape(n, -1, 4)
        self.ln_dt = V[..., 0] * _LN10
        self.m = V[..., 1]
        scale = spec["xy_scale_km"]
        self.xy = origin[:, None, :] + scale * torch.sinh(V[..., 2:4])
        dt = torch.exp(self.ln_dt)
        self.t = torch.cumsum(torch.cat([torch.zeros_like(dt[:, :1]), dt[:, 1:]], dim=1), dim=1)
        self.origin = origin
        self.n = n


class SequenceVAE(nn.Module):
    """Encoder MLP -> z; decoder (GRU or MLP) -> per-event context -> EventHeads."""

    kind = "sequence"

    def __init__(self, length: int, latent_dim: int, hidden: list[int], decoder: str, spec: dict[str, Any],
                 n_features: int | None = None, loss: str = "channels"):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"SequenceVAE: decoder must be one of {DECODERS}, got {decoder!r}")
        spec = check_spec(spec)
        if "region_km" not in spec:
            raise ValueError("SequenceVAE: the window spec has no 'region_km' (the region the decoder places events in)")
        self.length, self.latent_dim, self.hidden, self.decoder_kind = length, latent_dim, list(hidden), decoder
        self.n_features, self.loss, self.spec = 4 * length, loss, spec
        self.encoder = nn.Sequential(*_mlp([4 * length + 2, *hidden]))
        self.posterior_head = nn.Linear(hidden[-1], 2 * latent_dim)
        self.heads = EventHeads(CONTEXT, latent_dim, spec["region_km"])
        if decoder == "autoregressive":
            self.intensity = ExcitationIntensity(latent_dim)
        if decoder in RECURRENT:
            self.z_to_h = nn.Linear(latent_dim, RNN_HIDDEN)
            self.rnn = nn.GRU(5 + latent_dim, RNN_HIDDEN, batch_first=True)
            self.ctx = nn.Sequential(nn.Linear(RNN_HIDDEN + latent_dim, CONTEXT), nn.Tanh())
        else:
            back = list(reversed(hidden))
            self.ctx_mlp = nn.Sequential(*_mlp([latent_dim, *back]), nn.Linear(back[-1], length * CONTEXT), nn.Tanh())
        self.aux = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, 2 * len(AUX_NAMES)))
        # Feature standardisation (fitted on the training windows) and of the auxiliary targets.
        self.register_buffer("feat_offset", torch.zeros(4 * length))
        self.register_buffer("feat_scale", torch.ones(4 * length))
        self.register_buffer("ln_dt_stats", torch.tensor([0.0, 1.0]))
        self.register_buffer("aux_offset", torch.zeros(len(AUX_NAMES)))
        self.register_buffer("aux_scale", torch.ones(len(AUX_NAMES)))
        # The sampling prior N(prior_loc, prior_tril prior_tril^T): N(0, I) until fit_sampling_prior sets it to
        # the moments of the aggregate posterior of the training windows (at the end of training).
        self.register_buffer("prior_loc", torch.zeros(latent_dim))
        self.register_buffer("prior_tril", torch.eye(latent_dim))

    def architecture(self) -> dict[str, Any]:
        return {"kind": self.kind, "length": self.length, "latent_dim": self.latent_dim, "hidden": self.hidden,
                "decoder": self.decoder_kind, "spec": self.spec, "loss": self.loss}

    # ------------------------------------------------------------------------------------ pieces

    def default_origin(self, n: int, device) -> torch.Tensor:
        """The region's centre, for windows whose first-event position is unknown."""
        return self.heads.from_region_units(torch.zeros(n, 2, device=device))

    def encoder_input(self, X: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
        return torch.cat([(X - self.feat_offset) / self.feat_scale, self.heads.region_units(origin)], dim=1)

    def encode_raw(self, X: torch.Tensor, origin: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) of raw feature windows: (mu, logvar)."""
        if origin is None:
            origin = self.default_origin(len(X), X.device)
        return self.posterior_head(self.encoder(self.encoder_input(X, origin))).chunk(2, dim=1)

    def prior_draw(self, noise: torch.Tensor) -> torch.Tensor:
        """z from the sampling prior for standard normal noise (n, latent_dim)."""
        return self.prior_loc + noise @ self.prior_tril.T

    @torch.no_grad()
    def fit_sampling_prior(self, X: torch.Tensor, origin: torch.Tensor) -> None:
        """Set the sampling prior to the Gaussian with the mean and covariance of the aggregate posterior
        q(z) = mean over windows of q(z|x): mean of the posterior means; covariance of the posterior means
        (over windows) plus the mean posterior variance (an "ex-post" density of the latent codes, Ghosh et
        al. 2020; Dai & Wipf 2019). The training objective keeps N(0, I) in its KL term; sampling from the
        fitted Gaussian draws z where the decoder was trained instead of in the holes of N(0, I)."""
        parts = [self.encode_raw(X[i:i + _EVAL_BATCH], origin[i:i + _EVAL_BATCH]) for i in range(0, len(X), _EVAL_BATCH)]
        mu = torch.cat([q[0] for q in parts]).double()
        var = torch.exp(torch.cat([q[1] for q in parts]).double())
        loc = mu.mean(0)
        cov = (mu - loc).T @ (mu - loc) / len(mu) + torch.diag(var.mean(0))
        self.prior_loc.copy_(loc.float())
        self.prior_tril.copy_(torch.linalg.cholesky(cov).float())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) of windows in the model's standardised feature space (as VAE.encode; origin unknown)."""
        return self.encode_raw(x * self.feat_scale + self.feat_offset)

    def step_inputs(self, b: Batch) -> torch.Tensor:
        """GRU input of each event: the previous event (standardised ln dt, m - Mc, position in region units)
        and a start flag for the first event."""
        mean, sd = self.ln_dt_stats[0], self.ln_dt_stats[1]
        prev = torch.cat([((b.ln_dt - mean) / sd)[..., None], b.m[..., None], self.heads.region_units(b.xy),
                          torch.zeros_like(b.m[..., None])], dim=-1)
        start = torch.zeros_like(prev[:, :1])
        start[..., 4] = 1.0
        return torch.cat([start, prev[:, :-1]], dim=1)

    def contexts(self, z: torch.Tensor, b: Batch) -> torch.Tensor:
        """(n, L, CONTEXT): the decoder's context of every event of the windows in b (teacher forcing)."""
        if self.decoder_kind == "mlp":
            return self.ctx_mlp(z).reshape(len(z), self.length, CONTEXT)
        inp = self.step_inputs(b)
        zz = z[:, None, :].expand(-1, self.length, -1)
        out, _ = self.rnn(torch.cat([inp, zz], dim=-1), torch.tanh(self.z_to_h(z))[None])
        return self.ctx(torch.cat([out, zz], dim=-1))

    def event_log_probs(self, z: torch.Tensor, b: Batch) -> torch.Tensor:
        """log p(event i | events < i, z) of every event (n, L): ln dt, m - Mc and position terms."""
        ctx = self.contexts(z, b)
        dt_d, m_d = self.heads.time_and_magnitude(ctx, z[:, None, :])
        m = b.m.clamp_min(0.0)
        if self.decoder_kind != "autoregressive":
            lp = dt_d.log_prob(b.ln_dt) + m_d.log_prob(m)
            return lp + self.heads.position_log_prob(ctx, z, b.t, b.m, b.xy)
        # The first event's dt (from an event before the window) from the log-normal mixture, the others from
        # the intensity; positions with the intensity's branching probabilities.
        lp_dt, log_mu, terms = self.intensity.window_log_prob(z, b.ln_dt, m)
        lp = torch.cat([dt_d.log_prob(b.ln_dt)[:, :1], lp_dt], dim=1) + m_d.log_prob(m)
        mix = self.heads.excited_position(ctx, z[:, None, :], log_mu[:, None], terms, b.xy[:, None, :, :],
                                          m[:, None, :])
        return lp + mix.log_prob(b.xy)

    def nll(self, z: torch.Tensor, b: Batch) -> torch.Tensor:
        """-log p(x | z) per window (nats): the sum over its events of event_log_probs."""
        return -self.event_log_probs(z, b).sum(dim=1)

    def aux_targets(self, b: Batch) -> torch.Tensor:
        u = self.heads.region_units(b.xy)
        t = torch.stack([b.ln_dt[:, 1:].mean(1), b.ln_dt[:, 1:].std(1), b.m.max(1).values,
                         u[..., 0].mean(1), u[..., 1].mean(1), u[:, 0, 0], u[:, 0, 1]], dim=1)
        return (t - self.aux_offset) / self.aux_scale

    def aux_nll(self, z: torch.Tensor, b: Batch) -> torch.Tensor:
        """Gaussian NLL per window of the window-level quantities predicted from z alone."""
        mean, logvar = self.aux(z).chunk(2, dim=1)
        logvar = logvar.clamp(-6.0, 6.0)
        return 0.5 * (logvar + (self.aux_targets(b) - mean).pow(2) * torch.exp(-logvar) + math.log(2 * math.pi)).sum(1)

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * noise, noise ~ N(0, I)."""
        if noise is None:
            noise = torch.randn_like(mu)
        return mu + torch.exp(0.5 * logvar) * noise

    def losses(self, b: Batch, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per batch: (mean NLL, mean aux NLL, free-bits KL term, mean plain KL) per window."""
        mu, logvar = self.encode_raw(X, b.origin)
        z = self.reparameterise(mu, logvar)
        return (self.nll(z, b).mean(), self.aux_nll(z, b).mean(), free_bits_kl(mu, logvar),
                kl_per_unit(mu, logvar).sum(1).mean())

    # ------------------------------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One window per row of z, event by event: (raw features (n, 4L), first-event positions (n, 2) km).
        Draws use torch's global generator (seed it, or use ``sample_features``)."""
        n, L, dev = len(z), self.length, z.device
        spec = self.spec
        min_ln_dt = math.log(spec["min_dt_days"])
        ln_dt = torch.zeros(n, L, device=dev)
        m = torch.zeros(n, L, device=dev)
        xy = torch.zeros(n, L, 2, device=dev)
        t = torch.zeros(n, L, device=dev)
        allowed_all = torch.ones(L, L, dtype=torch.bool, device=dev).tril(-1)
        if self.decoder_kind == "mlp":
            ctx_all = self.ctx_mlp(z).reshape(n, L, CONTEXT)
        else:
            h = torch.tanh(self.z_to_h(z))[None]
            inp = torch.zeros(n, 5, device=dev)
            inp[:, 4] = 1.0
        excited = self.decoder_kind == "autoregressive"
        if excited:
            log_mu, log_K, t_v, lk_v = self.intensity.window_terms(z)
            tp = torch.cat([torch.zeros(n, L, dtype=torch.float64, device=dev), t_v], dim=1)
            lk = torch.cat([torch.zeros(n, L, dtype=torch.float64, device=dev), lk_v], dim=1)
            allowed_all = torch.cat([allowed_all, torch.ones(L, t_v.shape[1], dtype=torch.bool, device=dev)], dim=1)
        mean, sd = self.ln_dt_stats[0], self.ln_dt_stats[1]
        for i in range(L):
            if self.decoder_kind == "mlp":
                ctx = ctx_all[:, i]
            else:
                out, h = self.rnn(torch.cat([inp, z], dim=-1)[:, None, :], h)
                ctx = self.ctx(torch.cat([out[:, 0], z], dim=-1))
            dt_d, m_d = self.heads.time_and_magnitude(ctx, z)
            allowed = allowed_all[i].expand(n, -1)
            if excited and i > 0:
                wait = self.intensity.sample_next(log_mu, tp[:, i - 1], tp, lk, allowed)
                ln_dt[:, i] = torch.log(wait).float().clamp(min_ln_dt, math.log(10.0 ** 6))
            else:
                ln_dt[:, i] = dt_d.sample().clamp(min_ln_dt, math.log(10.0 ** 6))
            m[:, i] = _below(m_d, self.spec.get("mmax"), self.spec["mc"])
            if i > 0:
                t[:, i] = t[:, i - 1] + torch.exp(ln_dt[:, i])
            if excited:
                if i > 0:   # the clock the likelihood uses: float64 sums of the stored (float32) intervals
                    tp[:, i] = tp[:, i - 1] + torch.exp(ln_dt[:, i].double())
                terms = self.intensity.log_terms(tp[:, i, None] - tp, lk, allowed)
                mix = self.heads.excited_position(ctx, z, log_mu, terms, xy, m)
                lk[:, i] = self.intensity.log_productivity(log_K, m[:, i])
            else:
                mix = self.heads.position(ctx, z, t[:, i], t, m, xy, allowed)
            xy[:, i] = mix.sample()
            if self.decoder_kind in RECURRENT:
                inp = torch.cat([((ln_dt[:, i] - mean) / sd)[:, None], m[:, i, None],
                                 self.heads.region_units(xy[:, i]), torch.zeros(n, 1, device=dev)], dim=1)
        origin = xy[:, 0].clone()
        rel = torch.asinh((xy - origin[:, None, :]) / spec["xy_scale_km"])
        X = torch.stack([ln_dt / _LN10, m, rel[..., 0], rel[..., 1]], dim=-1).reshape(n, 4 * L)
        return X, origin

    @torch.no_grad()
    def sample_features(self, n: int, seed: int, z: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n windows drawn with z from the sampling prior (or the given z) from the decoder likelihood, seeded: raw features
        (n, 4L) float32, first-event positions (n, 2) and the z used (n, latent_dim). The same seed gives the
        same windows (on one device)."""
        dev = next(self.parameters()).device
        devices = [dev] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed))
            if z is None:
                z = self.prior_draw(torch.randn(n, self.latent_dim, device=dev))
            parts = [self.generate(z[i:i + _EVAL_BATCH]) for i in range(0, n, _EVAL_BATCH)]
        if not parts:
            return (np.zeros((0, 4 * self.length), np.float32), np.zeros((0, 2), np.float32),
                    np.zeros((0, self.latent_dim), np.float32))
        X = torch.cat([p[0] for p in parts]).cpu().numpy().astype(np.float32)
        return X, torch.cat([p[1] for p in parts]).cpu().numpy(), z.cpu().numpy().astype(np.float32)

    # --- the VAE interface used by latent maps and interpolation (decode gives one seeded draw)
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        X, _, _ = self.sample_features(len(z), seed=0, z=z)
        return (torch.from_numpy(X).to(z.device) - self.feat_offset) / self.feat_scale

    def likelihood_mean(self, out: torch.Tensor) -> torch.Tensor:
        return out


def _below(dist: torch.distributions.Distribution, mmax: float | None, mc: float) -> torch.Tensor:
    """A draw of m - Mc from ``dist``, drawn again where it exceeds mmax - Mc (Gutenberg-Richter truncation)."""
    m = dist.sample()
    if mmax is None:
        return m
    for _ in range(MAX_REDRAWS):
        over = m > mmax - mc
        if not over.any():
            return m
        m = torch.where(over, dist.sample(), m)
    return m.clamp_max(mmax - mc)


# ------------------------------------------------------------------------------------------ training


def _tensors(X: np.ndarray, origin: np.ndarray | None, model: SequenceVAE, dev) -> tuple[torch.Tensor, torch.Tensor]:
    Xt = torch.from_numpy(np.asarray(X, dtype=np.float32)).to(dev)
    if origin is None:
        return Xt, model.default_origin(len(Xt), dev)
    return Xt, torch.from_numpy(np.asarray(origin, dtype=np.float32)).to(dev)


@torch.no_grad()
def evaluate_terms(model: SequenceVAE, X: torch.Tensor, origin: torch.Tensor, *, z: str = "sample",
                   seed: int = 0) -> dict[str, float]:
    """Mean per window over X of the NLL, aux NLL and KL; z = "sample" (from q), "mean" (z = mu) or "prior"
    (the sampling prior)."""
    g = torch.Generator(device=X.device).manual_seed(seed)
    tot = np.zeros(3)
    for i in range(0, len(X), _EVAL_BATCH):
        xb, ob = X[i:i + _EVAL_BATCH], origin[i:i + _EVAL_BATCH]
        b = Batch(xb, ob, model.spec)
        mu, logvar = model.encode_raw(xb, ob)
        noise = torch.randn(mu.shape, generator=g, device=mu.device)
        zz = {"sample": mu + torch.exp(0.5 * logvar) * noise, "mean": mu, "prior": model.prior_draw(noise)}[z]
        terms = (model.nll(zz, b), model.aux_nll(zz, b), kl_per_unit(mu, logvar).sum(1))
        tot += np.array([float(t.sum()) for t in terms])
    tot /= max(len(X), 1)
    return {"nll": tot[0], "aux": tot[1], "kl": tot[2]}


def train_sequence_vae(X_train: np.ndarray, X_val: np.ndarray | None, settings: dict[str, Any], spec: dict[str, Any],
                       origin_train: np.ndarray | None = None, origin_val: np.ndarray | None = None, *,
                       log: Callable[[str], None] = print, dev: torch.device) -> tuple[SequenceVAE, FeatureTransform, pd.DataFrame]:
    """Train a SequenceVAE (settings as vae.check_settings gives them, plus ``decoder``); keep the epoch with
    the lowest validation loss (training loss without validation windows); stop after ``patience`` epochs
    without improvement. Returns (model in eval mode, feature transform, history)."""
    from .vae import HISTORY_COLUMNS, BestEpoch, TrainingDiverged, beta_at, history_row, log_epoch, make_optimizer

    spec = check_spec(spec)
    s = settings
    X_train = np.asarray(X_train, dtype=np.float32)
    L = spec["length"]
    if X_train.ndim != 2 or X_train.shape[1] != 4 * L or len(X_train) == 0:
        raise ValueError(f"train_vae: need event windows of shape (n, {4 * L}), got {X_train.shape}")
    has_val = X_val is not None and len(X_val) > 0
    transform = FeatureTransform.fit(X_train, kind="standard")
    torch.manual_seed(s["seed"])
    generator = torch.Generator(device=dev).manual_seed(s["seed"])
    model = SequenceVAE(L, s["latent_dim"], s["hidden"], s["decoder"], spec).to(dev)
    Xt, Ot = _tensors(X_train, origin_train, model, dev)
    Xv, Ov = _tensors(X_val, origin_val, model, dev) if has_val else (None, None)
    _init_from_data(model, transform, Xt, Ot, spec)
    _log_training_start(log, dev, s, len(Xt), len(Xv) if has_val else 0, L)
    params = list(model.parameters())
    optimizer = make_optimizer(params, s)
    n = len(Xt)
    rows, best = [], BestEpoch(s["kl_warmup_epochs"], s["patience"])
    for epoch in range(1, s["epochs"] + 1):
        beta_t = beta_at(s, epoch)
        started = time.perf_counter()
        train_nll, train_aux, train_kl = _train_epoch(model, Xt, Ot, spec, optimizer, params, s, epoch, beta_t,
                                                      generator)
        model.eval()
        val_nll, val_aux, val_kl = _validation_terms(model, Xv, Ov, epoch) if has_val else (math.nan,) * 3
        row = history_row(epoch, beta_t, train_nll, train_kl, val_nll, val_kl)
        rows.append(row)
        log_epoch(log, epoch, s["epochs"], beta_t, started, n,
                  f"train NLL {train_nll:.5g} aux {train_aux:.3g} KL {train_kl:.3g}  val NLL {val_nll:.5g} aux {val_aux:.3g} KL {val_kl:.3g}")
        score = objective(val_nll, val_aux, val_kl, beta_t) if has_val else row["train_total"]
        if not math.isfinite(score):
            raise TrainingDiverged(f"training diverged: the validation loss is not finite after epoch {epoch}")
        if best.stop_after(epoch, score, model, log):
            break
    best.restore(model, log, "validation loss" if has_val else "training loss")
    model.eval()
    model.fit_sampling_prior(Xt, Ot)
    return model, transform, pd.DataFrame(rows, columns=HISTORY_COLUMNS)


@torch.no_grad()
def _init_from_data(model: SequenceVAE, transform: FeatureTransform, Xt: torch.Tensor, Ot: torch.Tensor,
                    spec: dict[str, Any]) -> None:
    """Set the feature scaling, log-interval statistics, decoder heads and aux scaling from the training windows."""
    model.feat_offset.copy_(torch.from_numpy(transform.offset))
    model.feat_scale.copy_(torch.from_numpy(transform.scale))
    bt = Batch(Xt, Ot, spec)
    model.ln_dt_stats.copy_(torch.stack([bt.ln_dt.mean(), bt.ln_dt.std().clamp_min(1e-3)]))
    model.heads.init_from_data(bt.ln_dt, bt.m)
    if model.decoder_kind == "autoregressive":
        model.intensity.init_from_data(bt.ln_dt, bt.m)
    raw = model.aux_targets(bt)
    model.aux_offset.copy_(raw.mean(0))
    model.aux_scale.copy_(raw.std(0).clamp_min(1e-3))


def _log_training_start(log: Callable[[str], None], dev: torch.device, s: dict[str, Any], n_train: int, n_val: int,
                        L: int) -> None:
    """Log the line that opens a training run: decoder, device, window counts and settings."""
    log(f"training sequence VAE ({s['decoder']} decoder) on {dev} ({torch.get_num_threads()} threads): {n_train} "
        f"training / {n_val} validation windows of {L} events, latent {s['latent_dim']}, encoder "
        f"{s['hidden']}, {s['optimizer']} lr {s['lr']:g}, batch {s['batch_size']}, beta {s['beta']:g}, free bits {FREE_BITS:g}, aux weight {AUX_WEIGHT:g}")


def _train_epoch(model: SequenceVAE, Xt: torch.Tensor, Ot: torch.Tensor, spec: dict[str, Any],
                 optimizer: torch.optim.Optimizer, params: list[torch.Tensor], s: dict[str, Any], epoch: int,
                 beta_t: float, generator: torch.Generator) -> tuple[float, float, float]:
    """One pass over shuffled mini-batches; return the window-weighted mean (NLL, aux, KL)."""
    from .vae import TrainingDiverged, shuffled_for_training

    n, bs = len(Xt), s["batch_size"]
    perm = shuffled_for_training(model, n, generator)
    sums = np.zeros(3)
    for i in range(0, n, bs):
        idx = perm[i:i + bs]
        b = Batch(Xt[idx], Ot[idx], spec)
        nll, aux, kl_term, kl = model.losses(b, Xt[idx])
        loss = objective(nll, aux, kl_term, beta_t)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"training diverged: the loss is not finite in epoch {epoch} "
                                   f"(NLL {float(nll)}, KL {float(kl)}); lower the learning rate (lr = {s['lr']:g})")
        optimiser_step(optimizer, loss, params, s["grad_clip"])
        sums += np.array([float(nll.detach()), float(aux.detach()), float(kl.detach())]) * len(idx)
    train_nll, train_aux, train_kl = sums / n
    return train_nll, train_aux, train_kl


def _validation_terms(model: SequenceVAE, Xv: torch.Tensor, Ov: torch.Tensor,
                      epoch: int) -> tuple[float, float, float]:
    """Mean (NLL, aux, KL) of the validation windows; the epoch number seeds the latent draws."""
    v = evaluate_terms(model, Xv, Ov, seed=epoch)
    return v["nll"], v["aux"], v["kl"]


# ------------------------------------------------------------------------------------------ health


@torch.no_grad()
@one_thread
def health(model: SequenceVAE, X: np.ndarray, origin: np.ndarray | None = None, seed: int = 0) -> dict[str, Any]:
    """Held-out numbers of a sequence VAE: mean NLL per window with z = posterior mean, z drawn from q, and
    z drawn from the prior, the margin prior - encoded (nats per window: what z tells the decoder), KL per
    window and per unit, activity (variance of the posterior mean) and active units."""
    model.eval()
    dev = next(model.parameters()).device
    Xt, Ot = _tensors(X, origin, model, dev)
    enc = evaluate_terms(model, Xt, Ot, z="mean", seed=seed)
    post = evaluate_terms(model, Xt, Ot, z="sample", seed=seed)
    prior = evaluate_terms(model, Xt, Ot, z="prior", seed=seed)
    mu, logvar = model.encode_raw(Xt, Ot)
    activity = mu.var(dim=0).cpu().numpy().astype(float) if len(mu) > 1 else np.full(model.latent_dim, np.nan)
    kl_units = kl_per_unit(mu, logvar).mean(0).cpu().numpy().astype(float)
    return {
        "n_windows": int(len(Xt)), "loss": "channels", "decoder": model.decoder_kind,
        "recon_loss": enc["nll"], "nll_encoded_mean_z": enc["nll"], "nll_encoded_sampled_z": post["nll"],
        "nll_prior_z": prior["nll"], "prior_minus_encoded_nats": prior["nll"] - post["nll"],
        "kl_per_window": float(kl_units.sum()), "kl_per_unit": kl_units.tolist(),
        "elbo_per_window": -(post["nll"] + float(kl_units.sum())),
        "activity": activity.tolist(), "n_active": int((activity > 0.01).sum()),
    }


def window_origins(table: pd.DataFrame) -> np.ndarray | None:
    """First-event positions (n, 2) km from a windows table's x_first, y_first columns; None without them."""
    if {"x_first", "y_first"} <= set(table.columns):
        return table[["x_first", "y_first"]].to_numpy(dtype=np.float32)
    return None
