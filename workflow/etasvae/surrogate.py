"""A conditional surrogate of the ETAS simulator: a sequence VAE conditioned on ETAS parameters, and long
catalogs made by chaining windows (README, *Surrogate*; docs/design.md §8).

**Model.** ``ConditionalSequenceVAE`` is the sequence VAE of ``etasvae.seqvae`` (same decoder heads and
decoders) with three changes, none inside the decoder:

- conditioning: the standardised varied ETAS parameters c (``etasvae.conditioning``) enter the encoder
  input, q(z | x, origin, c), and the decoder, which reads u = [z, c] wherever the plain model reads z;
- history: every window comes with the L events before it in its catalog (the history), which the
  decoder reads but does not score: ``window_log_probs`` / ``sample_window`` are the decoder API
  "the events of a window given the events before it" (for the GRU decoder: the GRU first runs over the
  history, and history events are parent candidates for positions; for the MLP decoder only the latter);
- the prior is learned: p(z | c, h) = N(m(c, h), diag exp(s(c, h))), an MLP of c and the standardised
  features of the history window h (and a flag for "no history"), initialised to N(0, I). The history
  is what carries the state of the sequence (an aftershock sequence under way) from window to window.

Loss per window = -log p(x | u, history) + beta_t * free-bits KL(q || p(z | c, h)), the KL between two
diagonal Gaussians in closed form: unlike the plain sequence VAE, no auxiliary window-level heads
(``AUX_SCALE`` = 0; their NLL is still logged). They make z predict each window's mean and spread of ln dt,
sampling noise of 64 events included; chaining then redraws that noise as a real change of rate from window
to window, on top of the events' own randomness, and the catalogs' rate wanders: on the default grid the
Fano factor of 30-day counts at K = 0.1 was 3.8 with the heads against 1.5 for ETAS, and 2.1 without them,
whose validation NLL is also lower (677.9 against 678.9 nats per window). History and conditioning keep z
from collapsing without them. With probability ``HISTORY_DROPOUT`` a training
window is shown without its history, so that the model can start a chain from nothing. Sampled inter-event
times are truncated at the largest of the training windows (a draw above it is drawn again, as magnitudes
above Mmax are): a rare draw from the far tail of the log-normal mixture would otherwise leave a gap of
weeks in a catalog, which the simulator never makes at these rates.

**Chaining.** ``generate_chains`` draws a catalog of a given duration per conditioning vector: window k
draws z ~ p(z | c, window k-1) and its L events given window k-1 as history; the first
``burn_in_windows`` windows (the first started without history) are discarded and the catalog's clock
starts at the last discarded event, as the simulator's burn-in does.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .conditioning import standardise
from .decoders import ExcitationIntensity, History
from .features import FeatureTransform, _event_features, check_spec, events_above_mc
from .fileio import atomic_write, plain
from .seqvae import (CONTEXT, FREE_BITS, SequenceVAE, _below, _init_from_data, _mlp, objective,
                     optimiser_step)
from .threads import one_thread

MODEL_FORMAT = "etasvae-surrogate-1"
HISTORY_DROPOUT = 0.1
AUX_SCALE = 0.0   # weight of the auxiliary heads' NLL relative to the sequence VAE's (module docstring)
MAX_CHAIN_EVENTS = 2_000_000   # per chain: a guard against a runaway chain
_LN10 = math.log(10.0)


# ------------------------------------------------------------------------------------------- data


def sequence_features(ln_dt: np.ndarray, m: np.ndarray, xy: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Window features (n, 4L) of sequences in physical units (ln dt, m - Mc, xy km), as
    ``features._event_features`` computes them from a catalog (positions relative to the first event)."""
    rel = np.arcsinh((xy - xy[:, :1, :]) / spec["xy_scale_km"])
    X = np.stack([ln_dt / _LN10, m, rel[..., 0], rel[..., 1]], axis=-1)
    return X.reshape(len(X), -1).astype(np.float32)


def training_data(table: pd.DataFrame, catalogs: dict[tuple[str, int], pd.DataFrame], spec: dict[str, Any],
                  conditions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The windows of a pooled windows ``table`` whose config is in ``conditions`` (config id -> c), each with
    the L events before it in its catalog: arrays ``X`` (n, 4L) window features, ``Xh`` history features,
    ``origin`` (n, 2) km, ``ln_dt``, ``m`` (n, 2L: history then window; ln dt floored at min_dt_days),
    ``xy`` (n, 2L, 2) km, ``has_history`` (n,) and ``c`` (n, n_cond), plus ``role``. A window within L
    events of its catalog's start has no history (zeros, has_history 0)."""
    spec = check_spec(spec)
    L = spec["length"]
    keep = table["config_id"].isin(list(conditions)).to_numpy()
    table = table[keep]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("X", "Xh", "ln_dt", "m", "xy", "has_history", "c", "role")}
    for (cfg, rep), rows in table.groupby(["config_id", "replicate"], sort=True):
        cat = catalogs[(str(cfg), int(rep))]
        ids, t, mag, x, y = events_above_mc(cat, spec["mc"])
        starts = np.searchsorted(ids, rows["start_event"].to_numpy())
        has = starts >= L
        hstarts = np.where(has, starts - L, starts)
        prev = np.concatenate([[0.0], t[:-1]])
        ln_dt = np.log(np.maximum(t - prev, spec["min_dt_days"]))
        idx = np.concatenate([hstarts[:, None] + np.arange(L), starts[:, None] + np.arange(L)], axis=1)
        parts["X"].append(_event_features(t, mag, x, y, starts, spec))
        Xh = _event_features(t, mag, x, y, hstarts, spec)
        Xh[~has] = 0.0
        parts["Xh"].append(Xh)
        parts["ln_dt"].append(ln_dt[idx].astype(np.float32))
        parts["m"].append((mag[idx] - spec["mc"]).astype(np.float32))
        parts["xy"].append(np.stack([x[idx], y[idx]], axis=-1).astype(np.float32))
        parts["has_history"].append(has.astype(np.float32))
        parts["c"].append(np.repeat(conditions[str(cfg)][None, :], len(rows), axis=0))
        parts["role"].append(rows["role"].to_numpy())
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["origin"] = out["xy"][:, L, :].copy()
    return out


# ------------------------------------------------------------------------------------------- model


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, exp logvar_q) || N(mu_p, exp logvar_p)) per window and latent unit."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)


class ConditionalSequenceVAE(SequenceVAE):
    """SequenceVAE whose decoder reads u = [z, c] and the history, with a learned prior p(z | c, h).

    A recurrent decoder reads the history with its GRU. With ``decoder: autoregressive`` the ETAS intensity
    counts the history's events as parents too (``decoders.History``): an aftershock sequence that starts in
    one window goes on decaying in the next, and K is a function of u, so of the ETAS parameters.
    """

    kind = "conditional-sequence"

    def __init__(self, length: int, latent_dim: int, hidden: list[int], decoder: str, spec: dict[str, Any],
                 n_cond: int):
        super().__init__(length, latent_dim + n_cond, hidden, decoder, spec)
        self.z_dim, self.n_cond = latent_dim, n_cond
        if self.decoder_kind == "autoregressive":   # the background depends on the conditioning (not on z)
            self.intensity = ExcitationIntensity(latent_dim + n_cond, n_cond=n_cond)
        self.encoder = nn.Sequential(*_mlp([4 * length + 2 + n_cond, *hidden]))
        self.posterior_head = nn.Linear(hidden[-1], 2 * latent_dim)
        self.prior_net = nn.Sequential(*_mlp([4 * length + 1 + n_cond, *hidden]), nn.Linear(hidden[-1], 2 * latent_dim))
        # the largest ln dt of the training windows: sampled inter-event times above it are drawn again
        self.register_buffer("max_ln_dt", torch.tensor(math.log(10.0 ** 6)))
        with torch.no_grad():   # the prior starts as N(0, I)
            self.prior_net[-1].weight.zero_()
            self.prior_net[-1].bias.zero_()

    def architecture(self) -> dict[str, Any]:
        return {"kind": self.kind, "length": self.length, "latent_dim": self.z_dim, "hidden": self.hidden,
                "decoder": self.decoder_kind, "spec": self.spec, "n_cond": self.n_cond}

    def posterior(self, X: torch.Tensor, origin: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x, origin, c): (mu, logvar)."""
        inp = torch.cat([(X - self.feat_offset) / self.feat_scale, self.heads.region_units(origin), c], dim=1)
        return self.posterior_head(self.encoder(inp)).chunk(2, dim=1)

    def prior(self, Xh: torch.Tensor, has: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z | c, h): (mu, logvar) from c and the history window's features (zeros and has = 0: none)."""
        h = (Xh - self.feat_offset) / self.feat_scale * has[:, None]
        mu, logvar = self.prior_net(torch.cat([h, has[:, None], c], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8.0, 4.0)

    # ---- the decoder API: a window's events given the events before it -----------------------------

    def _start_input(self, n: int, dev) -> torch.Tensor:
        start = torch.zeros(n, 5, device=dev)
        start[:, 4] = 1.0
        return start

    def _event_input(self, ln_dt: torch.Tensor, m: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """GRU input that one event (or a sequence of events, ..., L) makes for the event after it."""
        mean, sd = self.ln_dt_stats[0], self.ln_dt_stats[1]
        return torch.cat([((ln_dt - mean) / sd)[..., None], m[..., None], self.heads.region_units(xy),
                          torch.zeros_like(m[..., None])], dim=-1)

    def _prime(self, u: torch.Tensor, hist: SimpleNamespace) -> tuple[torch.Tensor, torch.Tensor]:
        """GRU state at the window's start and the input of its first event, after reading the history."""
        n, dev = len(u), u.device
        h0 = torch.tanh(self.z_to_h(u))[None]
        start = self._start_input(n, dev)
        inp = torch.cat([start[:, None, :], self._event_input(hist.ln_dt, hist.m, hist.xy)[:, :-1]], dim=1)
        uu = u[:, None, :].expand(-1, inp.shape[1], -1)
        _, hH = self.rnn(torch.cat([inp, uu], dim=-1), h0)
        has = hist.has[None, :, None] > 0
        first = self._event_input(hist.ln_dt[:, -1], hist.m[:, -1], hist.xy[:, -1])
        return torch.where(has, hH, h0), torch.where(has[0], first, start)

    def window_log_probs(self, u: torch.Tensor, hist: SimpleNamespace, win: SimpleNamespace) -> torch.Tensor:
        """log p(event i | earlier events of the window, history, u) of every window event (n, L).
        ``hist`` and ``win``: ln_dt, m, xy (km) of the L history and L window events; ``hist.has`` (n,)."""
        n, L = win.m.shape
        uu = u[:, None, :].expand(-1, L, -1)
        if self.decoder_kind == "mlp":
            ctx = self.ctx_mlp(u).reshape(n, L, CONTEXT)
        else:
            h, first = self._prime(u, hist)
            inp = torch.cat([first[:, None, :], self._event_input(win.ln_dt, win.m, win.xy)[:, :-1]], dim=1)
            out, _ = self.rnn(torch.cat([inp, uu], dim=-1), h)
            ctx = self.ctx(torch.cat([out, uu], dim=-1))
        dt_d, m_d = self.heads.time_and_magnitude(ctx, uu)
        m_win = win.m.clamp_min(0.0)
        if self.decoder_kind == "autoregressive":
            # Inter-event times from the intensity with the history's events as parents (the first event's,
            # after the history's last event, from the log-normal mixture where there is no history);
            # positions by its branching probabilities.
            history = _history(hist, win.ln_dt[:, 0])
            lp_dt, log_mu, terms = self.intensity.window_log_prob(u, win.ln_dt, m_win, history)
            lp0 = torch.where(hist.has > 0, self.intensity.first_interval_log_prob(u, win.ln_dt[:, 0], history),
                              dt_d.log_prob(win.ln_dt)[:, 0])
            lp = torch.cat([lp0[:, None], lp_dt], dim=1) + m_d.log_prob(m_win)
            xy_prev = torch.cat([win.xy, hist.xy], dim=1)
            m_prev = torch.cat([m_win, hist.m.clamp_min(0.0)], dim=1)
            mix = self.heads.excited_position(ctx, uu, log_mu[:, None], terms, xy_prev[:, None], m_prev[:, None])
            return lp + mix.log_prob(win.xy)
        lp = dt_d.log_prob(win.ln_dt) + m_d.log_prob(m_win)
        t_all, m_all, xy_all, allowed = _parents(hist, win)
        Lh = hist.m.shape[1]
        mix = self.heads.position(ctx, u[:, None, :], t_all[:, Lh:], t_all[:, None, :], m_all[:, None, :],
                                  xy_all[:, None, :, :], allowed)
        return lp + mix.log_prob(win.xy)

    @torch.no_grad()
    def sample_window(self, u: torch.Tensor, hist: SimpleNamespace) -> SimpleNamespace:
        """One window of L events per row of u, given the history (draws from torch's global generator):
        ln_dt, m (above Mc), xy (km) of the new events."""
        n, L, dev = len(u), self.length, u.device
        min_ln_dt = math.log(self.spec["min_dt_days"])
        Lh = hist.m.shape[1]
        ln_dt = torch.zeros(n, L, device=dev)
        m = torch.zeros(n, L, device=dev)
        xy = torch.zeros(n, L, 2, device=dev)
        # times relative to the last history event; history times from their inter-event times
        t = torch.cat([_history_times(hist.ln_dt), torch.zeros(n, L, device=dev)], dim=1)
        m_all = torch.cat([hist.m, m], dim=1)
        xy_all = torch.cat([hist.xy, xy], dim=1)
        hist_ok = (hist.has[:, None] > 0).expand(n, Lh)
        if self.decoder_kind == "mlp":
            ctx_all = self.ctx_mlp(u).reshape(n, L, CONTEXT)
        else:
            h, inp = self._prime(u, hist)
        excited = self.decoder_kind == "autoregressive"
        if excited:   # parents: the window's events (clock from its first event), the history's, the virtual
            log_mu, log_K, t_v, lk_v = self.intensity.window_terms(u)
            t_h = _history_times(hist.ln_dt.double())
            tp = torch.cat([torch.zeros(n, L, dtype=torch.float64, device=dev), t_h, t_v], dim=1)
            lk = torch.cat([torch.zeros(n, L, dtype=torch.float64, device=dev),
                            self.intensity.log_productivity(log_K[:, None], hist.m.clamp_min(0.0)), lk_v], dim=1)
            xy_par = torch.cat([xy, hist.xy], dim=1)
            m_par = torch.cat([m, hist.m.clamp_min(0.0)], dim=1)
            par_ok = torch.cat([torch.zeros(n, L, dtype=torch.bool, device=dev), hist_ok,
                                torch.ones(n, t_v.shape[1], dtype=torch.bool, device=dev)], dim=1)
        last = torch.zeros(n, device=dev)
        for i in range(L):
            if self.decoder_kind == "mlp":
                ctx = ctx_all[:, i]
            else:
                out, h = self.rnn(torch.cat([inp, u], dim=-1)[:, None, :], h)
                ctx = self.ctx(torch.cat([out[:, 0], u], dim=-1))
            dt_d, m_d = self.heads.time_and_magnitude(ctx, u)
            if excited and i > 0:
                wait = self.intensity.sample_next(log_mu, tp[:, i - 1], tp, lk, par_ok)
                ln_dt[:, i] = torch.log(wait).float().clamp(min_ln_dt, float(self.max_ln_dt))
            elif excited:   # the first event: from the intensity of the history where there is one (its last
                # event at 0, no virtual parent), else from the mixture; then the history's clock is shifted
                # so that the first event sits at 0
                has_hist = hist.has > 0
                first_ok = torch.cat([torch.zeros(n, L, dtype=torch.bool, device=dev), hist_ok,
                                      torch.zeros(n, t_v.shape[1], dtype=torch.bool, device=dev)], dim=1)
                wait = self.intensity.sample_next(log_mu, torch.zeros(n, dtype=torch.float64, device=dev), tp, lk,
                                                  first_ok & has_hist[:, None])
                ln_mix = _below(dt_d, float(self.max_ln_dt), 0.0)
                ln_dt[:, i] = torch.where(has_hist, torch.log(wait).float(), ln_mix).clamp(min_ln_dt, float(self.max_ln_dt))
                tp[:, L:L + Lh] = tp[:, L:L + Lh] - torch.exp(ln_dt[:, i].double())[:, None]
            else:
                ln_dt[:, i] = _below(dt_d, float(self.max_ln_dt), 0.0).clamp_min(min_ln_dt)
            m[:, i] = _below(m_d, self.spec.get("mmax"), self.spec["mc"])
            if excited:
                if i > 0:   # the clock the likelihood uses: float64 sums of the stored (float32) intervals
                    tp[:, i] = tp[:, i - 1] + torch.exp(ln_dt[:, i].double())
                terms = self.intensity.log_terms(tp[:, i, None] - tp, lk, par_ok)
                m_par[:, i] = m[:, i]
                mix = self.heads.excited_position(ctx, u, log_mu, terms, xy_par, m_par)
                xy[:, i] = mix.sample()
                xy_par[:, i] = xy[:, i]
                lk[:, i] = self.intensity.log_productivity(log_K, m[:, i])
                par_ok[:, i] = True
                inp = self._event_input(ln_dt[:, i], m[:, i], xy[:, i])
                continue
            last = last + torch.exp(ln_dt[:, i])
            t[:, Lh + i] = last
            m_all[:, Lh + i] = m[:, i]
            window_ok = torch.arange(L, device=dev)[None, :].expand(n, L) < i
            allowed = torch.cat([hist_ok, window_ok], dim=1)
            mix = self.heads.position(ctx, u, t[:, Lh + i], t, m_all, xy_all, allowed)
            xy[:, i] = mix.sample()
            xy_all[:, Lh + i] = xy[:, i]
            if self.decoder_kind != "mlp":
                inp = self._event_input(ln_dt[:, i], m[:, i], xy[:, i])
        return SimpleNamespace(ln_dt=ln_dt, m=m, xy=xy)

    # ---- training terms ------------------------------------------------------------------------------

    def losses(self, d: SimpleNamespace, free_bits: float = FREE_BITS) -> tuple[torch.Tensor, ...]:
        """(mean NLL, mean aux NLL, free-bits KL term, mean plain KL) per window of a batch ``d``."""
        mu, logvar = self.posterior(d.X, d.origin, d.c)
        pmu, plogvar = self.prior(d.Xh, d.hist.has, d.c)
        z = self.reparameterise(mu, logvar)
        u = torch.cat([z, d.c], dim=1)
        nll = -self.window_log_probs(u, d.hist, d.win).sum(1)
        aux = self.aux_nll(u, d.win)
        kl = gaussian_kl(mu, logvar, pmu, plogvar)
        return nll.mean(), aux.mean(), torch.clamp(kl.mean(0), min=free_bits).sum(), kl.sum(1).mean()


def _history_times(hist_ln_dt: torch.Tensor) -> torch.Tensor:
    """Times (n, H) of the history's events from its last event (which is at 0, the others before), in the
    dtype of the log intervals (float64 for the intensity's clock)."""
    dt = torch.exp(hist_ln_dt)
    return -(torch.flip(torch.cumsum(torch.flip(dt, [1]), 1), [1]) - dt)


def _history(hist: SimpleNamespace, first_ln_dt: torch.Tensor) -> History:
    """The history as parents of a window's events: times from the window's first event, which comes
    exp(first_ln_dt) after the history's last event; events of windows without a history are not parents."""
    t = _history_times(hist.ln_dt.double()) - torch.exp(first_ln_dt.double())[:, None]
    ok = (hist.has[:, None] > 0).expand_as(hist.m)
    return History(t, hist.m.clamp_min(0.0), ok)


def _parents(hist: SimpleNamespace, win: SimpleNamespace):
    """Times (relative), magnitudes, positions of history + window events and the parent mask (n, L, 2L)."""
    n, L = win.m.shape
    Lh = hist.m.shape[1]
    ln_dt = torch.cat([hist.ln_dt, win.ln_dt], dim=1)
    t = torch.cumsum(torch.exp(ln_dt), dim=1)
    t = t - t[:, Lh:Lh + 1]
    earlier = torch.ones(L, Lh + L, dtype=torch.bool, device=t.device).tril(Lh - 1)   # [i, j]: j < Lh + i
    from_hist = torch.arange(Lh + L, device=t.device) < Lh
    allowed = earlier[None] & ~(from_hist[None, None, :] & (hist.has[:, None, None] <= 0))
    return t, torch.cat([hist.m, win.m], dim=1), torch.cat([hist.xy, win.xy], dim=1), allowed


def _batch(data: dict[str, torch.Tensor], idx, L: int, dropout: torch.Tensor | None = None) -> SimpleNamespace:
    has = data["has_history"][idx]
    if dropout is not None:
        has = has * (dropout >= HISTORY_DROPOUT).float()
    split = lambda a: (a[idx][:, :L], a[idx][:, L:])  # noqa: E731
    (hl, wl), (hm, wm), (hxy, wxy) = split(data["ln_dt"]), split(data["m"]), split(data["xy"])
    return SimpleNamespace(X=data["X"][idx], Xh=data["Xh"][idx], origin=data["origin"][idx], c=data["c"][idx],
                           hist=SimpleNamespace(ln_dt=hl, m=hm, xy=hxy, has=has),
                           win=SimpleNamespace(ln_dt=wl, m=wm, xy=wxy))


# ------------------------------------------------------------------------------------------- training


@one_thread
def train_surrogate(train: dict[str, np.ndarray], val: dict[str, np.ndarray] | None, settings: dict[str, Any],
                    spec: dict[str, Any], *, log: Callable[[str], None] = print,
                    dev: torch.device | None = None) -> tuple[ConditionalSequenceVAE, FeatureTransform, pd.DataFrame]:
    """Train a ConditionalSequenceVAE on ``training_data`` arrays (settings as ``vae_settings`` gives them);
    keep the epoch with the lowest validation loss; early stopping after ``patience`` epochs."""
    from .vae import HISTORY_COLUMNS, BestEpoch, TrainingDiverged, beta_at, history_row, log_epoch, make_optimizer, pick_device

    dev = dev or pick_device()
    spec = check_spec(spec)
    s, L = settings, spec["length"]
    torch.manual_seed(s["seed"])
    generator = torch.Generator(device="cpu").manual_seed(s["seed"])
    n_cond = train["c"].shape[1]
    model = ConditionalSequenceVAE(L, s["latent_dim"], s["hidden"], s["decoder"], spec, n_cond).to(dev)
    tensors = lambda d: {k: torch.from_numpy(np.asarray(v, dtype=np.float32)).to(dev) for k, v in d.items() if k != "role"}  # noqa: E731
    T = tensors(train)
    V = tensors(val) if val is not None and len(val["X"]) else None
    transform = FeatureTransform.fit(train["X"], kind="standard")
    _init_from_data(model, transform, T["X"], T["origin"], spec)
    model.max_ln_dt.fill_(float(T["ln_dt"][:, L:].max()))
    log(f"training the surrogate ({s['decoder']} decoder, {n_cond} conditioning values) on {dev}: "
        f"{len(T['X'])} training / {0 if V is None else len(V['X'])} validation windows of {L} events with "
        f"{L} history events, latent {s['latent_dim']}, history dropout {HISTORY_DROPOUT:g}")
    params = list(model.parameters())
    optimizer = make_optimizer(params, s)
    n = len(T["X"])
    rows, best = [], BestEpoch(s["kl_warmup_epochs"], s["patience"])
    for epoch in range(1, s["epochs"] + 1):
        beta_t = beta_at(s, epoch)
        started = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=generator).to(dev)
        drop = torch.rand(n, generator=generator).to(dev)
        sums = np.zeros(3)
        for i in range(0, n, s["batch_size"]):
            idx = perm[i:i + s["batch_size"]]
            nll, aux, kl_term, kl = model.losses(_batch(T, idx, L, drop[idx]))
            loss = objective(nll, AUX_SCALE * aux, kl_term, beta_t)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"surrogate training diverged in epoch {epoch}; lower the learning rate")
            optimiser_step(optimizer, loss, params, s["grad_clip"])
            sums += np.array([float(nll.detach()), float(aux.detach()), float(kl.detach())]) * len(idx)
        tr = sums / n
        model.eval()
        va = evaluate_terms(model, V, L, seed=epoch) if V is not None else (math.nan,) * 3
        rows.append(history_row(epoch, beta_t, tr[0], tr[2], va[0], va[2]))
        log_epoch(log, epoch, s["epochs"], beta_t, started, n,
                  f"train NLL {tr[0]:.5g} aux {tr[1]:.3g} KL {tr[2]:.3g}  val NLL {va[0]:.5g} aux {va[1]:.3g} KL {va[2]:.3g}")
        score = objective(va[0], AUX_SCALE * va[1], va[2], beta_t) if V is not None else rows[-1]["train_total"]
        if not math.isfinite(score):
            raise TrainingDiverged(f"surrogate training diverged: the validation loss is not finite after epoch {epoch}")
        if best.stop_after(epoch, score, model, log):
            break
    best.restore(model, log, "validation loss" if V is not None else "training loss")
    model.eval()
    return model, transform, pd.DataFrame(rows, columns=HISTORY_COLUMNS)


@torch.no_grad()
@one_thread
def evaluate_terms(model: ConditionalSequenceVAE, data: dict[str, torch.Tensor], L: int, seed: int = 0) -> tuple[float, float, float]:
    """Mean per window of (NLL, aux NLL, KL to the prior), z drawn from q with a seeded generator."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    tot, n = np.zeros(3), len(data["X"])
    for i in range(0, n, 512):
        idx = torch.arange(i, min(i + 512, n), device=data["X"].device)
        d = _batch(data, idx, L)
        mu, logvar = model.posterior(d.X, d.origin, d.c)
        pmu, plogvar = model.prior(d.Xh, d.hist.has, d.c)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g).to(mu.device)
        u = torch.cat([z, d.c], dim=1)
        terms = (-model.window_log_probs(u, d.hist, d.win).sum(1), model.aux_nll(u, d.win),
                 gaussian_kl(mu, logvar, pmu, plogvar).sum(1))
        tot += np.array([float(t.sum()) for t in terms])
    return tuple(tot / max(n, 1))


# ------------------------------------------------------------------------------------------- files


def save_surrogate(path, model: ConditionalSequenceVAE, settings: dict[str, Any], spec: dict[str, Any],
                   plan: dict[str, Any], history: pd.DataFrame) -> None:
    """One file, loadable with weights_only=True, written atomically (same bytes for the same model)."""
    payload = {"format": MODEL_FORMAT, "architecture": plain(model.architecture()),
               "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
               "settings": plain(settings), "spec": plain(spec), "plan": plain(plan),
               "history": {c: plain(history[c].to_numpy()) for c in history.columns}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


def load_surrogate(path, device: str | None = None) -> tuple[ConditionalSequenceVAE, dict[str, Any]]:
    """(model in eval mode, payload without the state dict) of a file written by save_surrogate."""
    from .vae import pick_device

    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not an etasvae surrogate file (format {payload.get('format')!r})")
    a = payload.pop("architecture")
    model = ConditionalSequenceVAE(a["length"], a["latent_dim"], a["hidden"], a["decoder"], a["spec"], a["n_cond"])
    model.load_state_dict(payload.pop("state_dict"))
    return model.to(pick_device(device)).eval(), payload


# ------------------------------------------------------------------------------------------- chaining


@torch.no_grad()
@one_thread
def generate_chains(model: ConditionalSequenceVAE, c: np.ndarray, duration_days: float, *, seed: int,
                    burn_in_windows: int = 4, log: Callable[[str], None] | None = None) -> list[pd.DataFrame]:
    """One catalog per row of ``c`` (standardised conditioning vectors) covering [0, duration_days): windows
    of L events drawn one after the other, each given the previous window as history and with z from
    p(z | c, previous window); the first ``burn_in_windows`` windows are discarded (the clock starts at the
    last discarded event). Columns time (days), magnitude, x, y (km). Seeded: the same model, c and seed
    give the same catalogs (on one device)."""
    dev = next(model.parameters()).device
    n, L, mc = len(c), model.length, model.spec["mc"]
    C = torch.from_numpy(np.asarray(c, dtype=np.float32)).to(dev)
    hist = SimpleNamespace(ln_dt=torch.zeros(n, L, device=dev), m=torch.zeros(n, L, device=dev),
                           xy=torch.zeros(n, L, 2, device=dev), has=torch.zeros(n, device=dev))
    Xh = torch.zeros(n, 4 * L, device=dev)
    clock = np.zeros(n)                        # float64 time of the last event, per chain
    t0 = np.zeros(n)
    out: list[list[np.ndarray]] = [[] for _ in range(n)]
    active = np.arange(n)
    devices = [dev] if dev.type == "cuda" else []
    k = 0
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        while len(active):
            a = torch.from_numpy(active).to(dev)
            h = SimpleNamespace(ln_dt=hist.ln_dt[a], m=hist.m[a], xy=hist.xy[a], has=hist.has[a])
            pmu, plogvar = model.prior(Xh[a], h.has, C[a])
            z = pmu + torch.exp(0.5 * plogvar) * torch.randn_like(pmu)
            w = model.sample_window(torch.cat([z, C[a]], dim=1), h)
            dt = np.exp(w.ln_dt.double().cpu().numpy())
            times = clock[active, None] + np.cumsum(dt, axis=1)
            mags = w.m.cpu().numpy().astype(np.float64) + mc
            xy = w.xy.cpu().numpy().astype(np.float64)
            clock[active] = times[:, -1]
            if k + 1 == burn_in_windows:
                t0[active] = clock[active]
            if k >= burn_in_windows:
                for r, chain in enumerate(active):
                    out[chain].append(np.column_stack([times[r] - t0[chain], mags[r], xy[r]]))
            hist.ln_dt[a], hist.m[a], hist.xy[a] = w.ln_dt, w.m, w.xy
            hist.has[a] = 1.0
            feats = sequence_features(w.ln_dt.cpu().numpy(), w.m.cpu().numpy(), w.xy.cpu().numpy(), model.spec)
            Xh[a] = torch.from_numpy(feats).to(dev)
            k += 1
            done = (clock[active] - t0[active] >= duration_days) & (k > burn_in_windows)
            done |= (k - burn_in_windows) * L >= MAX_CHAIN_EVENTS
            active = active[~done]
            if log and k % 50 == 0:
                log(f"window {k}: {len(active)} of {n} chains still below {duration_days:g} days")
    catalogs = []
    for chain in range(n):
        ev = np.concatenate(out[chain]) if out[chain] else np.zeros((0, 4))
        ev = ev[ev[:, 0] < duration_days]
        catalogs.append(pd.DataFrame(ev, columns=["time", "magnitude", "x", "y"]))
    return catalogs


def chain_catalog(chains: list[pd.DataFrame]) -> pd.DataFrame:
    """Chains as one table in the catalog schema: ``window`` = chain (each with its own clock from 0),
    event_id 0..N-1, parent_id and generation -1 (unknown)."""
    parts = [ch.assign(window=np.int64(i)) for i, ch in enumerate(chains)]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["time", "magnitude", "x", "y", "window"])
    df.insert(0, "event_id", np.arange(len(df), dtype=np.int64))
    df["parent_id"] = np.int64(-1)
    df["generation"] = np.int32(-1)
    df["window"] = df["window"].astype(np.int64)
    return df


def conditions_of(plan: dict[str, Any], payload: dict[str, Any], sets: list[str]) -> np.ndarray:
    """Standardised conditioning vectors of named parameter sets of ``plan`` (``conditioning.surrogate_plan``)
    for the surrogate of ``payload`` (``load_surrogate``), which must have been trained on the same
    varied parameters and ranges. Flagged points pass; others outside the trained range raise ValueError
    naming the parameter and range."""
    trained = payload["plan"]
    if trained["varied"] != plan["varied"] or trained["ranges"] != plan["ranges"]:
        raise ValueError(f"surrogate: trained on {trained['varied']} over {trained['ranges']}, asked for "
                         f"{plan['varied']} over {plan['ranges']}: retrain it")
    return np.stack([standardise(plan["sets"][s]["values"], plan["varied"], plan["ranges"],
                                 allow_extrapolation=bool(plan["sets"][s]["flags"])) for s in sets])
