"""A VAE over event windows whose decoder generates earthquake sequences (loss ``channels``), optionally
conditioned on values c and optionally reading the events before each window (its history).

The encoder reads a window's standardised features (as the MLP VAE does), the position of its first event
in the region (``x_first``, ``y_first`` of the windows table; the region is ``spec["region_km"]``) and c
when conditioned, and gives q(z|x) = N(mu, diag exp(logvar)). The decoder reads u = [z, c] (u = z without
conditioning) and gives every event i a context vector; ``decoders.EventHeads`` turns it into the
distribution of its inter-event time, magnitude and position given the earlier events (mixture of
log-normals, one context-free exponential, ETAS placement):

    decoder          context of event i
    autoregressive   a GRU over the earlier events of the window, started from u and fed u at every step;
                     the inter-event times (after the first) come from an ETAS conditional intensity instead
                     (``decoders.ExcitationIntensity``: background mu, a u-placed virtual parent before the
                     window, K e^{alpha (m_j - Mc)} times normalised Omori-Utsu for each earlier event), and
                     the position parents are weighted by its branching probabilities
    gru_lognormal    the same GRU with the log-normal mixture for every inter-event time
    mlp              an MLP of u alone (one context per event position); events still see their earlier
                     events through the parent choice of their position

With a history (``history=True``, the surrogate's model: ``etasvae.models.conditional``) every window comes
with the L events before it, which the decoder reads but does not score: the GRU first runs over them, they
are parent candidates of positions and, with the autoregressive decoder, of the ETAS intensity, and the
first event's interval is the intensity's wait after the history's last event. ``event_log_probs`` and
``generate`` are the one decoder: a window's events given the events before it (none without a history).

Against posterior collapse (an autoregressive decoder can model a window without reading z):
- auxiliary heads predict window-level quantities from u alone (mean and spread of ln dt, the largest
  magnitude, the mean position, the first event's position), a Gaussian likelihood term weighted by
  ``AUX_WEIGHT`` (``sequence_training``);
- the window's time scale enters the dt mixture directly from u (``EventHeads.dt_shift``) and the window
  cluster's centre and spread come from u alone;
- free bits (Kingma et al. 2016): the optimised KL term is sum_j max(FREE_BITS, mean over the batch of
  KL_j), so units below FREE_BITS nats cost nothing to use.
The first event of a window without history has no earlier events, so its position is background or cluster.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..features import FeatureTransform, check_spec
from .decoders import EventHeads, ExcitationIntensity, History, log_survival, sample_above
from .training import DECODERS, mlp_layers

RECURRENT = ("autoregressive", "gru_lognormal")
RNN_HIDDEN = 64
CONTEXT = 64
FREE_BITS = 0.5      # nats per latent unit
AUX_NAMES = ("mean_ln_dt", "std_ln_dt", "max_magnitude", "mean_x", "mean_y", "x_first", "y_first")
EVAL_BATCH = 1024
MAX_REDRAWS = 50     # magnitudes above mmax are drawn again this often, then set to mmax
MAX_LN_DT = math.log(10.0 ** 6)   # sampled inter-event times are capped at a million days
# Chained sampling (an intensity held at a catalog fit, ``sample_chained_features``, and the surrogate's chains):
# the most recent events of a chain that are parents of its next window (about 1.5 years of the default grid's
# K = 0.3; with p = 1.1 a parent still has a third of its aftershocks to come after two years, so the cap is
# far, not near), the chains drawn together and the windows discarded at each chain's start.
CHAIN_PARENTS = 16384
SAMPLE_CHAINS = 50
SAMPLE_BURN_IN = 12
LN10 = math.log(10.0)


class Events(NamedTuple):
    """Events of windows in physical units: ln dt (n, L) days, m - Mc (n, L), xy (n, L, 2) km."""

    ln_dt: torch.Tensor
    m: torch.Tensor
    xy: torch.Tensor


class Past(NamedTuple):
    """The history of windows: its events, ``has`` (n,) 1 where there is one (0: zeros, not events) and its
    window features X (n, 4L), which the surrogate's prior reads."""

    events: Events
    has: torch.Tensor
    X: torch.Tensor


class EventTerms(NamedTuple):
    """The channels of every window event (n, L) given the earlier events (``SequenceVAE.event_terms``):
    log p(ln dt_i), log p(m_i - Mc), their sum, log p(xy_i) (1/km^2, normalised over the plane), log P(ln dt >
    ln dt_i) (or None), the magnitude distribution (batch (n, L)) and the log mass of the position
    distribution inside a polygon (or None)."""

    time: torch.Tensor
    magnitude: torch.Tensor
    time_and_magnitude: torch.Tensor
    position: torch.Tensor
    survival: torch.Tensor | None
    magnitude_distribution: torch.distributions.Distribution
    position_mass: torch.Tensor | None


def events_of_features(X: torch.Tensor, origin: torch.Tensor, spec: dict[str, Any]) -> Events:
    """The events of raw feature windows (n, 4L) with first-event positions (n, 2) km."""
    V = X.reshape(X.shape[0], -1, 4)
    xy = origin[:, None, :] + spec["xy_scale_km"] * torch.sinh(V[..., 2:4])
    return Events(V[..., 0] * LN10, V[..., 1], xy)


def features_of_events(events: Events, spec: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(raw features (n, 4L), first-event positions (n, 2) km) of events: the inverse of events_of_features."""
    origin = events.xy[:, 0].clone()
    rel = torch.asinh((events.xy - origin[:, None, :]) / spec["xy_scale_km"])
    n = len(origin)
    X = torch.stack([events.ln_dt / LN10, events.m, rel[..., 0], rel[..., 1]], dim=-1).reshape(n, -1)
    return X, origin


def window_times(ln_dt: torch.Tensor) -> torch.Tensor:
    """Times (n, L) in days from each window's first event."""
    dt = torch.exp(ln_dt)
    return torch.cumsum(torch.cat([torch.zeros_like(dt[:, :1]), dt[:, 1:]], dim=1), dim=1)


def history_times(ln_dt: torch.Tensor) -> torch.Tensor:
    """Times (n, H) of a history's events from its last event (at 0, the others before), in the dtype of the
    log intervals (float64 for the intensity's clock)."""
    dt = torch.exp(ln_dt)
    return -(torch.flip(torch.cumsum(torch.flip(dt, [1]), 1), [1]) - dt)


def history_parents(past: Past, first_ln_dt: torch.Tensor) -> History:
    """The history as parents of a window's events: times from the window's first event, which comes
    exp(first_ln_dt) after the history's last event; the events of windows without a history are no parents."""
    t = history_times(past.events.ln_dt.double()) - torch.exp(first_ln_dt.double())[:, None]
    ok = (past.has[:, None] > 0).expand_as(past.events.m)
    return History(t, past.events.m.clamp_min(0.0), ok, past.events.xy)


class Batch:
    """Windows as the model reads them: raw features X (n, 4L), first-event positions (n, 2) km, their
    events (from the features unless given), window times ``t`` from the first event, and optionally the
    conditioning values c (n, n_cond) and the history (``Past``)."""

    def __init__(self, X: torch.Tensor, origin: torch.Tensor, spec: dict[str, Any] | None = None, *,
                 window: Events | None = None, history: Past | None = None, c: torch.Tensor | None = None):
        self.X, self.origin, self.history, self.c = X, origin, history, c
        self.window = window if window is not None else events_of_features(X, origin, spec)
        self.t = window_times(self.window.ln_dt)
        self.n = len(X)


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per window and latent unit."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, exp logvar_q) || N(mu_p, exp logvar_p)) per window and latent unit."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)


def free_bits_kl(kl: torch.Tensor, free_bits: float = FREE_BITS) -> torch.Tensor:
    """The KL term that is optimised: sum over units of max(free_bits, batch-mean KL of the unit)."""
    return torch.clamp(kl.mean(dim=0), min=free_bits).sum()


class SequenceVAE(nn.Module):
    """Encoder MLP -> z; decoder (GRU or MLP) of u = [z, c] -> per-event context -> EventHeads."""

    kind = "sequence"
    # Files written before the fitted sampling prior lack these buffers: they load with N(0, I).
    DEFAULTED_BUFFERS = ("prior_loc", "prior_tril")

    def __init__(self, length: int, latent_dim: int, hidden: list[int], decoder: str, spec: dict[str, Any],
                 n_cond: int = 0, history: bool = False, catalog_intensity: bool = False):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"SequenceVAE: decoder must be one of {DECODERS}, got {decoder!r}")
        spec = check_spec(spec)
        if "region_km" not in spec:
            raise ValueError("SequenceVAE: the window spec has no 'region_km' (the region the decoder places events in)")
        self.length, self.latent_dim, self.hidden, self.decoder_kind = length, latent_dim, list(hidden), decoder
        self.n_features, self.loss, self.spec = 4 * length, "channels", spec
        self.n_cond, self.has_history = n_cond, history
        # True when the intensity and kernel are held at the training catalogs' ETAS fit (models.intensity_fit):
        # windows are then drawn as consecutive windows of chains (``sample_chained_features``), and each
        # parent's productivity is its in-region share, as in the fit (``parent_log_mass``)
        self.catalog_intensity = catalog_intensity
        u_dim = latent_dim + n_cond
        self.encoder = nn.Sequential(*mlp_layers([4 * length + 2 + n_cond, *hidden]))
        self.posterior_head = nn.Linear(hidden[-1], 2 * latent_dim)
        self.heads = EventHeads(CONTEXT, u_dim, spec["region_km"], n_cond=n_cond)
        if decoder == "autoregressive":
            self.intensity = ExcitationIntensity(u_dim, n_cond=n_cond)
        if decoder in RECURRENT:
            self.z_to_h = nn.Linear(u_dim, RNN_HIDDEN)
            self.rnn = nn.GRU(5 + u_dim, RNN_HIDDEN, batch_first=True)
            self.ctx = nn.Sequential(nn.Linear(RNN_HIDDEN + u_dim, CONTEXT), nn.Tanh())
        else:
            back = list(reversed(hidden))
            self.ctx_mlp = nn.Sequential(*mlp_layers([u_dim, *back]), nn.Linear(back[-1], length * CONTEXT), nn.Tanh())
        self.aux = nn.Sequential(nn.Linear(u_dim, 64), nn.ReLU(), nn.Linear(64, 2 * len(AUX_NAMES)))
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
        if history:
            # Sampled inter-event times above the largest of the training windows are drawn again (as
            # magnitudes above Mmax are): a chain of windows would otherwise keep the rare draw from the
            # mixture's far tail as a gap of weeks, which the simulator does not make at these rates.
            self.register_buffer("max_ln_dt", torch.tensor(MAX_LN_DT))

    def architecture(self) -> dict[str, Any]:
        arch = {"kind": self.kind, "length": self.length, "latent_dim": self.latent_dim, "hidden": self.hidden,
                "decoder": self.decoder_kind, "spec": self.spec, "loss": self.loss}
        if self.n_cond or self.has_history:
            arch.update(n_cond=self.n_cond, history=self.has_history)
        if self.catalog_intensity:
            arch["catalog_intensity"] = True
        return arch

    @classmethod
    def from_architecture(cls, arch: dict[str, Any]) -> "SequenceVAE":
        return cls(arch["length"], arch["latent_dim"], arch["hidden"], arch["decoder"], arch["spec"],
                   n_cond=arch.get("n_cond", 0), history=arch.get("history", False),
                   catalog_intensity=bool(arch.get("catalog_intensity", False)))

    # ------------------------------------------------------------------------------------ encoder

    def default_origin(self, n: int, device) -> torch.Tensor:
        """The region's centre, for windows whose first-event position is unknown."""
        return self.heads.from_region_units(torch.zeros(n, 2, device=device))

    def encoder_input(self, X: torch.Tensor, origin: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        parts = [(X - self.feat_offset) / self.feat_scale, self.heads.region_units(origin)]
        return torch.cat(parts if c is None else [*parts, c], dim=1)

    def encode_raw(self, X: torch.Tensor, origin: torch.Tensor | None = None,
                   c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x, origin[, c]) of raw feature windows: (mu, logvar)."""
        if origin is None:
            origin = self.default_origin(len(X), X.device)
        return self.posterior_head(self.encoder(self.encoder_input(X, origin, c))).chunk(2, dim=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) of windows in the model's standardised feature space (as VAE.encode; origin unknown)."""
        return self.encode_raw(x * self.feat_scale + self.feat_offset)

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
        parts = [self.encode_raw(X[i:i + EVAL_BATCH], origin[i:i + EVAL_BATCH]) for i in range(0, len(X), EVAL_BATCH)]
        mu = torch.cat([q[0] for q in parts]).double()
        var = torch.exp(torch.cat([q[1] for q in parts]).double())
        loc = mu.mean(0)
        cov = (mu - loc).T @ (mu - loc) / len(mu) + torch.diag(var.mean(0))
        self.prior_loc.copy_(loc.float())
        self.prior_tril.copy_(torch.linalg.cholesky(cov).float())

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * noise, noise ~ N(0, I)."""
        if noise is None:
            noise = torch.randn_like(mu)
        return mu + torch.exp(0.5 * logvar) * noise

    @staticmethod
    def decoder_input(z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """u = [z, c], or z without conditioning."""
        return z if c is None else torch.cat([z, c], dim=1)

    # ------------------------------------------------------------------------------------ decoder

    def event_inputs(self, ln_dt: torch.Tensor, m: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """GRU input that an event (shapes (n,) or (n, L)) makes for the event after it: standardised ln dt,
        m - Mc, position in region units and a start flag of 0."""
        mean, sd = self.ln_dt_stats[0], self.ln_dt_stats[1]
        return torch.cat([((ln_dt - mean) / sd)[..., None], m[..., None], self.heads.region_units(xy),
                          torch.zeros_like(m[..., None])], dim=-1)

    def recurrent_start(self, u: torch.Tensor, past: Past | None) -> tuple[torch.Tensor, torch.Tensor]:
        """GRU state at the window's start and the input of its first event: from u alone with the start flag,
        or after the GRU has read the history (where there is one)."""
        n = len(u)
        h0 = torch.tanh(self.z_to_h(u))[None]
        start = torch.zeros(n, 5, device=u.device)
        start[:, 4] = 1.0
        if past is None:
            return h0, start
        ev = past.events
        inp = torch.cat([start[:, None, :], self.event_inputs(ev.ln_dt, ev.m, ev.xy)[:, :-1]], dim=1)
        u_steps = u[:, None, :].expand(-1, inp.shape[1], -1)
        _, h_history = self.rnn(torch.cat([inp, u_steps], dim=-1), h0)
        has = past.has[None, :, None] > 0
        first = self.event_inputs(ev.ln_dt[:, -1], ev.m[:, -1], ev.xy[:, -1])
        return torch.where(has, h_history, h0), torch.where(has[0], first, start)

    def contexts(self, u: torch.Tensor, b: Batch) -> torch.Tensor:
        """(n, L, CONTEXT): the decoder's context of every event of the windows in b (teacher forcing)."""
        if self.decoder_kind == "mlp":
            return self.ctx_mlp(u).reshape(len(u), self.length, CONTEXT)
        # u_steps before the GRU's start state: the order in which autograd adds u's gradients (see
        # training_terms).
        u_steps = u[:, None, :].expand(-1, self.length, -1)
        h, first = self.recurrent_start(u, b.history)
        w = b.window
        inp = torch.cat([first[:, None, :], self.event_inputs(w.ln_dt, w.m, w.xy)[:, :-1]], dim=1)
        out, _ = self.rnn(torch.cat([inp, u_steps], dim=-1), h)
        return self.ctx(torch.cat([out, u_steps], dim=-1))

    def parent_log_mass(self, xy: torch.Tensor, m: torch.Tensor) -> torch.Tensor | None:
        """log of the in-region share of the offspring of parents at xy (..., 2) with magnitudes above Mc m
        (...), float64, for an intensity held at a catalog fit (``EventHeads.kernel_log_mass``); None otherwise.
        The fit's likelihood counts kappa_j times the kernel's mass inside the region as parent j's expected
        in-region offspring (its compensator's region integral), so its K and mu describe the in-region process
        with these shares: without them the intensity would count the offspring that fall outside too, and a
        chain would be the more productive the larger n (docs/generator-diagnosis.md, *In-region
        productivity*)."""
        return self.heads.kernel_log_mass(xy, m) if self.in_region else None

    @property
    def in_region(self) -> bool:
        """True where each parent's productivity is its in-region share (``parent_log_mass``)."""
        return bool(self.catalog_intensity) and self.decoder_kind == "autoregressive"

    def event_log_probs(self, u: torch.Tensor, b: Batch) -> torch.Tensor:
        """log p(event i | earlier events of the window, its history, u) of every window event (n, L):
        ln dt, m - Mc and position terms (history events are read, not scored)."""
        terms = self.event_terms(u, b)
        return terms.time_and_magnitude + terms.position

    def event_terms(self, u: torch.Tensor, b: Batch, *, survival: bool = False, polygon=None) -> "EventTerms":
        """The channels of ``event_log_probs`` one by one (``EventTerms``), each event given the earlier events
        of its window, its history and u; with ``survival`` also log P(ln dt > ln dt_i | ...), with a
        ``polygon`` (vertices km) the log of each position distribution's mass inside it."""
        ctx = self.contexts(u, b)
        w = b.window
        dt_d, m_d = self.heads.time_and_magnitude(ctx, u[:, None, :])
        m = w.m.clamp_min(0.0)
        parents = None if b.history is None else history_parents(b.history, w.ln_dt[:, 0])
        if self.decoder_kind != "autoregressive":
            lp_time, lp_m = dt_d.log_prob(w.ln_dt), m_d.log_prob(m)
            lp = lp_time + lp_m
            pos = self.heads.position_log_prob(ctx, u, b.t, w.m, w.xy, parents, polygon)
            pos, mass = pos if polygon is not None else (pos, None)
            surv = log_survival(dt_d, w.ln_dt) if survival else None
            return EventTerms(lp_time, lp_m, lp, pos, surv, m_d, mass)
        # The first event's dt from the log-normal mixture (or, after a history, from the intensity of the
        # history's events), the others from the intensity; positions with its branching probabilities.
        # With a catalog fit's intensity the productivities count the in-region offspring (the time channel);
        # the position weights stay kappa_j g (the kernel's mass inside is the share of its draws kept).
        mass = self.parent_log_mass(w.xy, m)
        h_mass = None if mass is None or parents is None else self.parent_log_mass(parents.xy, parents.m)
        lp_dt, log_mu, terms, comp = self.intensity.window_log_prob(
            u, w.ln_dt, m, parents, with_compensator=True, log_mass=None if mass is None else (mass, h_mass))
        if mass is not None:
            V = terms.shape[-1] - mass.shape[1] - (0 if h_mass is None else h_mass.shape[1])
            cols = [mass] + ([] if h_mass is None else [h_mass]) + [torch.zeros_like(mass[:, :1]).expand(-1, V)]
            terms = terms - torch.cat(cols, dim=1)[:, None, :]
        lp_first = dt_d.log_prob(w.ln_dt)[:, :1]
        surv_first = log_survival(dt_d, w.ln_dt)[:, :1] if survival else None
        xy_prev, m_prev = w.xy, m
        if parents is not None:
            after_history, comp0 = self.intensity.first_interval_log_prob(u, w.ln_dt[:, 0], parents,
                                                                          with_compensator=True,
                                                                          history_log_mass=h_mass)
            lp_first = torch.where(b.history.has[:, None] > 0, after_history[:, None], lp_first)
            if survival:
                surv_first = torch.where(b.history.has[:, None] > 0, -comp0[:, None].float(), surv_first)
            xy_prev, m_prev = torch.cat([w.xy, parents.xy], dim=1), torch.cat([m, parents.m], dim=1)
        lp_time, lp_m = torch.cat([lp_first, lp_dt], dim=1), m_d.log_prob(m)
        lp = lp_time + lp_m
        mix = self.heads.excited_position(ctx, u[:, None, :], log_mu[:, None], terms, xy_prev[:, None, :, :],
                                          m_prev[:, None, :])
        pos = mix.log_prob(w.xy)
        surv = torch.cat([surv_first, -comp.float()], dim=1) if survival else None
        return EventTerms(lp_time, lp_m, lp, pos, surv, m_d, None if polygon is None else mix.log_mass_inside(polygon))

    def aux_targets(self, w: Events) -> torch.Tensor:
        units = self.heads.region_units(w.xy)
        t = torch.stack([w.ln_dt[:, 1:].mean(1), w.ln_dt[:, 1:].std(1), w.m.max(1).values,
                         units[..., 0].mean(1), units[..., 1].mean(1), units[:, 0, 0], units[:, 0, 1]], dim=1)
        return (t - self.aux_offset) / self.aux_scale

    def aux_nll(self, u: torch.Tensor, w: Events) -> torch.Tensor:
        """Gaussian NLL per window of the window-level quantities predicted from u alone."""
        mean, logvar = self.aux(u).chunk(2, dim=1)
        logvar = logvar.clamp(-6.0, 6.0)
        return 0.5 * (logvar + (self.aux_targets(w) - mean).pow(2) * torch.exp(-logvar) + math.log(2 * math.pi)).sum(1)

    def training_terms(self, b: Batch, prior: tuple[torch.Tensor, torch.Tensor] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per batch: (mean NLL, mean aux NLL, free-bits KL term, mean plain KL) per window, z drawn from q;
        the KL to N(0, I), or to the Gaussian ``prior`` (mu, logvar) of each window."""
        mu, logvar = self.encode_raw(b.X, b.origin, b.c)
        u = self.decoder_input(self.reparameterise(mu, logvar), b.c)
        # In this order (the NLL, the aux term, then the KL): autograd adds the gradients that reach z and mu
        # in the order the terms were built, and a model's bytes depend on that order.
        nll = -self.event_log_probs(u, b).sum(dim=1).mean()
        aux = self.aux_nll(u, b.window).mean()
        kl = kl_per_unit(mu, logvar) if prior is None else gaussian_kl(mu, logvar, *prior)
        return nll, aux, free_bits_kl(kl), kl.sum(1).mean()

    # ------------------------------------------------------------------------------------ sampling

    def interval_cap(self) -> float:
        return float(self.max_ln_dt) if self.has_history else MAX_LN_DT

    def _draw_interval(self, dist: torch.distributions.Distribution, min_ln_dt: float, cap: float,
                       after: torch.Tensor | None = None) -> torch.Tensor:
        if after is not None:   # given ln dt > after
            return sample_above(dist, after).clamp(min_ln_dt, cap)
        if self.has_history:
            return _below(dist, cap, 0.0).clamp(min_ln_dt, cap)
        return dist.sample().clamp(min_ln_dt, cap)

    @torch.no_grad()
    def generate(self, u: torch.Tensor, past: Past | None = None, after: torch.Tensor | None = None,
                 older: Events | None = None, older_log_mass: torch.Tensor | None = None) -> Events:
        """One window of L events per row of u, event by event, given its history (None: none) and, with
        ``after`` (n,), given that the first event's ln dt exceeds it (no event in that time after the
        history's last: the mixture truncated, or the intensity's wait started there). ``older``: events
        before the history (a chain's earlier windows, the interval to the history's first event in the
        history's ln dt; without a history the window's first interval is from older's last event), parents
        of the times and positions like the history's but not read by the GRU; with them the virtual parent
        is off (the window's past is there); ``older_log_mass``: their ``parent_log_mass`` where the caller
        keeps it (computed here otherwise). Draws use torch's global generator (seed it, or use
        ``sample_features``)."""
        n, L, dev = len(u), self.length, u.device
        min_ln_dt, cap = math.log(self.spec["min_dt_days"]), self.interval_cap()
        ln_dt, m = torch.zeros(n, L, device=dev), torch.zeros(n, L, device=dev)
        xy, t = torch.zeros(n, L, 2, device=dev), torch.zeros(n, L, device=dev)
        # The history's events as parents after the window's: none (zero columns) without a history; times
        # from its last event until the first window event is drawn, then from that one.
        if past is None:
            has = torch.zeros(n, dtype=torch.bool, device=dev)
            h_ln_dt, h_m = torch.zeros(n, 0, device=dev), torch.zeros(n, 0, device=dev)
            h_xy = torch.zeros(n, 0, 2, device=dev)
        else:
            has = past.has > 0
            h_ln_dt, h_m, h_xy = past.events.ln_dt, past.events.m.clamp_min(0.0), past.events.xy
        if older is not None:
            h_ln_dt, h_m = torch.cat([older.ln_dt, h_ln_dt], 1), torch.cat([older.m.clamp_min(0.0), h_m], 1)
            h_xy = torch.cat([older.xy, h_xy], 1)
            has = has | (past is None)
        H = h_m.shape[1]
        h_ok = has[:, None].expand(n, H)
        h_t = history_times(h_ln_dt)
        earlier = torch.ones(L, L, dtype=torch.bool, device=dev).tril(-1)   # [i, j]: j < i
        if self.decoder_kind == "mlp":
            ctx_all = self.ctx_mlp(u).reshape(n, L, CONTEXT)
        else:
            state, inp = self.recurrent_start(u, past)
        excited = self.decoder_kind == "autoregressive"
        if excited:   # parents: the window's events (clock from its first event), the history's, the virtual
            log_mu, log_K, t_virtual, log_kappa_virtual = self.intensity.window_terms(u)
            V = t_virtual.shape[1]
            f64 = dict(dtype=torch.float64, device=dev)
            parent_t = torch.cat([torch.zeros(n, L, **f64), history_times(h_ln_dt.double()), t_virtual], dim=1)
            h_log_kappa = self.intensity.log_productivity(log_K[:, None], h_m)
            # in-region shares (a catalog fit's intensity): added to the productivities of the time channel,
            # taken off again for the position weights (``parent_log_mass``)
            in_region = self.in_region
            parent_log_mass = torch.zeros(n, L + H + V, **f64)
            if in_region and H:
                parent_log_mass[:, L:L + H] = self._history_log_mass(past, older, older_log_mass)
                h_log_kappa = h_log_kappa + parent_log_mass[:, L:L + H]
            parent_log_kappa = torch.cat([torch.zeros(n, L, **f64), h_log_kappa, log_kappa_virtual], dim=1)
            parent_ok = torch.cat([torch.zeros(n, L, dtype=torch.bool, device=dev), h_ok,
                                   torch.full((n, V), older is None, dtype=torch.bool, device=dev)], dim=1)
        for i in range(L):
            if self.decoder_kind == "mlp":
                ctx = ctx_all[:, i]
            else:
                out, state = self.rnn(torch.cat([inp, u], dim=-1)[:, None, :], state)
                ctx = self.ctx(torch.cat([out[:, 0], u], dim=-1))
            dt_d, m_d = self.heads.time_and_magnitude(ctx, u)
            if excited and i > 0:
                wait = self.intensity.sample_next(log_mu, parent_t[:, i - 1], parent_t, parent_log_kappa, parent_ok)
                ln_dt[:, i] = torch.log(wait).float().clamp(min_ln_dt, cap)
            elif excited and (past is not None or older is not None):   # the first event: the wait after the history's last
                first_ok = parent_ok.clone()
                first_ok[:, L + H:] = False
                t_from = torch.zeros(n, **f64) if after is None else torch.exp(after.double())
                wait = t_from + self.intensity.sample_next(log_mu, t_from, parent_t, parent_log_kappa,
                                                           first_ok & has[:, None])
                from_mixture = self._draw_interval(dt_d, min_ln_dt, cap, after)
                ln_dt[:, i] = torch.where(has, torch.log(wait).float().clamp(min_ln_dt, cap), from_mixture)
            else:
                ln_dt[:, i] = self._draw_interval(dt_d, min_ln_dt, cap, after if i == 0 else None)
            if i == 0 and H:   # the history's clocks from the window's first event
                h_t = h_t - torch.exp(ln_dt[:, 0])[:, None]
                if excited:
                    parent_t[:, L:L + H] = parent_t[:, L:L + H] - torch.exp(ln_dt[:, 0].double())[:, None]
            m[:, i] = _below(m_d, self.spec.get("mmax"), self.spec["mc"])
            if i > 0:
                t[:, i] = t[:, i - 1] + torch.exp(ln_dt[:, i])
            xy_prev, m_prev = torch.cat([xy, h_xy], dim=1), torch.cat([m, h_m], dim=1)
            if excited:
                if i > 0:   # the clock the likelihood uses: float64 sums of the stored (float32) intervals
                    parent_t[:, i] = parent_t[:, i - 1] + torch.exp(ln_dt[:, i].double())
                terms = self.intensity.log_terms(parent_t[:, i, None] - parent_t, parent_log_kappa, parent_ok)
                mix = self.heads.excited_position(ctx, u, log_mu, terms - parent_log_mass, xy_prev, m_prev)
            else:
                allowed = torch.cat([earlier[i].expand(n, -1), h_ok], dim=1)
                mix = self.heads.position(ctx, u, t[:, i], torch.cat([t, h_t], dim=1), m_prev, xy_prev, allowed)
            xy[:, i] = mix.sample()
            if excited:
                parent_log_kappa[:, i] = self.intensity.log_productivity(log_K, m[:, i])
                if in_region:
                    parent_log_mass[:, i] = self.parent_log_mass(xy[:, i], m[:, i])
                    parent_log_kappa[:, i] += parent_log_mass[:, i]
                parent_ok[:, i] = True
            if self.decoder_kind in RECURRENT:
                inp = self.event_inputs(ln_dt[:, i], m[:, i], xy[:, i])
        return Events(ln_dt, m, xy)

    def _history_log_mass(self, past: Past | None, older: Events | None, older_log_mass: torch.Tensor | None
                          ) -> torch.Tensor:
        """``parent_log_mass`` of generate's earlier events, older first (``older_log_mass`` where given)."""
        parts = [] if older is None else [older_log_mass if older_log_mass is not None
                                          else self.parent_log_mass(older.xy, older.m)]
        if past is not None:
            parts.append(self.parent_log_mass(past.events.xy, past.events.m))
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def sample_features(self, n: int, seed: int, z: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n windows drawn with z from the sampling prior (or the given z) from the decoder likelihood, seeded:
        raw features (n, 4L) float32, first-event positions (n, 2) and the z used (n, latent_dim). The same
        seed gives the same windows (on one device)."""
        dev = next(self.parameters()).device
        devices = [dev] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed))
            if z is None:
                z = self.prior_draw(torch.randn(n, self.latent_dim, device=dev))
            parts = [features_of_events(self.generate(z[i:i + EVAL_BATCH]), self.spec) for i in range(0, n, EVAL_BATCH)]
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

    # --- the interface of etasvae.models.files: raw windows in, raw windows out

    def encode_windows(self, X: np.ndarray, origin: np.ndarray | None,
                       transform: FeatureTransform) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of raw windows X with first-event positions ``origin`` (the region's centre where None);
        the model standardises the features itself."""
        dev = self.feat_offset.device
        O = None if origin is None else torch.from_numpy(np.asarray(origin, dtype=np.float32)).to(dev)
        return self.encode_raw(torch.from_numpy(np.asarray(X, dtype=np.float32)).to(dev), O)

    def sample_windows(self, n: int, seed: int, mode: str, transform: FeatureTransform) -> tuple[np.ndarray, np.ndarray]:
        """n raw windows drawn event by event (whatever ``mode``: a sequence has no useful mean) and the z:
        consecutive windows of chains where the intensity is held at a catalog fit, else independent ones."""
        chained = self.catalog_intensity and self.decoder_kind == "autoregressive" and not self.has_history
        X, _, z = (self.sample_chained_features if chained else self.sample_features)(int(n), seed=int(seed))
        return X, z

    @torch.no_grad()
    def sample_chained_features(self, n: int, seed: int, chains: int = SAMPLE_CHAINS,
                                burn_in: int = SAMPLE_BURN_IN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``sample_features`` for an intensity held at a catalog fit: n windows cut from ``chains`` chains
        drawn together, window after window, each with z from the sampling prior and the chain's earlier
        events (the last CHAIN_PARENTS) as parents of its times and positions (``generate(older=...)``); a
        chain's first window has the virtual parent instead, and its first ``burn_in`` windows are dropped.
        The windows of one step come together, steps in order. Seeded like ``sample_features``."""
        dev = next(self.parameters()).device
        devices = [dev] if dev.type == "cuda" else []
        steps = burn_in + math.ceil(n / max(chains, 1))
        earlier: list[Events] = []
        masses: list[torch.Tensor] = []   # their parent_log_mass, computed once per window
        keep = CHAIN_PARENTS // self.length + 1
        X, O, Z = [], [], []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed))
            for k in range(steps if n else 0):
                z = self.prior_draw(torch.randn(chains, self.latent_dim, device=dev))
                w = self.generate(z, older=chain_parents(earlier), older_log_mass=chain_log_mass(masses))
                earlier = (earlier + [w])[-keep:]
                if self.in_region:
                    masses = (masses + [self.parent_log_mass(w.xy, w.m)])[-keep:]
                if k >= burn_in:
                    x, o = features_of_events(w, self.spec)
                    X.append(x), O.append(o), Z.append(z)
        if not X:
            return self.sample_features(0, seed)
        return (torch.cat(X)[:n].cpu().numpy().astype(np.float32), torch.cat(O)[:n].cpu().numpy(),
                torch.cat(Z)[:n].cpu().numpy().astype(np.float32))


def chain_parents(windows: list[Events], rows: torch.Tensor | None = None) -> Events | None:
    """A chain's earlier windows (oldest first) as one ``Events`` of its last CHAIN_PARENTS events, of the
    chains ``rows`` (all: None); None without any window."""
    if not windows:
        return None
    return Events(*(_chain_tail([getattr(w, f) for w in windows], rows) for f in Events._fields))


def chain_log_mass(masses: list[torch.Tensor], rows: torch.Tensor | None = None) -> torch.Tensor | None:
    """``chain_parents`` for the windows' ``parent_log_mass`` (each (chains, L)); None without any."""
    return _chain_tail(masses, rows) if masses else None


def _chain_tail(parts: list[torch.Tensor], rows: torch.Tensor | None) -> torch.Tensor:
    """The windows' tensors joined along the event dim, rows ``rows`` (all: None), the last CHAIN_PARENTS events."""
    joined = torch.cat(parts, dim=1)
    return (joined if rows is None else joined[rows])[:, -CHAIN_PARENTS:]


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


def window_origins(table: pd.DataFrame) -> np.ndarray | None:
    """First-event positions (n, 2) km from a windows table's x_first, y_first columns; None without them."""
    if {"x_first", "y_first"} <= set(table.columns):
        return table[["x_first", "y_first"]].to_numpy(dtype=np.float32)
    return None
