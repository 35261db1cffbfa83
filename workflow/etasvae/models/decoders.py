"""Likelihoods of one event of an event window, channel by channel, as torch.distributions objects.

The decoder of a sequence VAE (``etasvae.models.sequence``) gives each event i of a window a context vector; the
heads here turn it into the distribution of that event's channels, given the events before it:

    channel          density                                                    sample
    ln dt (days)     mixture of ``N_DT`` normals on ln dt, i.e. a mixture of        .sample() of the same
                     log-normals on dt (Shchur et al. 2020, intensity-free TPP)     MixtureSameFamily
    m - Mc           one exponential (Gutenberg-Richter) with a context-free        likewise (the
                     rate: a global one started at the training windows' Aki-      sequence VAE redraws
                     Utsu estimate, plus in a conditional model a linear            above mmax)
                     function of the conditioning values
    (x, y) km        ETAS placement: background uniform over the region, or a      PositionMixture.sample
                     window cluster (an isotropic Gaussian whose centre and
                     spread come from z), or a parent j < i chosen with weight
                     exp(a + alpha (m_j - Mc)) / (t_i - t_j + c)^p (Omori-Utsu
                     times productivity, as ETAS gives the probability that j
                     triggered i) and offset by the ETAS power-law kernel
                     f(r | m_j) = (q-1)/(pi s) (1 + r^2/s)^-q, s = D exp(gamma (m_j - Mc))

Every density is normalised (the position mixture over the plane; events of the data always lie in the
region, and the sampler keeps drawing until a draw lands inside the region, so sampled windows never leave it).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Exponential, MixtureSameFamily, Normal, constraints
from torch.nn import functional as F

N_DT = 8       # log-normal components of the inter-event time
# The magnitude law is one exponential whose rate no context reads: in ETAS magnitudes are independent
# Gutenberg-Richter draws. A mixture of ``N_MAG`` exponentials with rates from the context (the earlier
# decoder) made the mlp's large magnitudes 15-25 % too frequent: a mixture of exponentials is heavier-tailed
# than one exponential of its mean, and z-dependent rates over-dispersed the windows' mean magnitudes
# (docs/generator-diagnosis.md, finding 5).
N_MAG = 1
LOG_SCALE_MIN, LOG_SCALE_MAX = -6.0, 3.0
NEG_INF = -1e30
MAX_REJECTIONS = 50   # position draws outside the region are redrawn this often, then drawn uniformly
INIT_STEPS = 60        # Adam steps of the starting fits (ExcitationIntensity.init_from_data, EventHeads.init_position_from_data)
INIT_WINDOWS = 128     # at most this many training windows (evenly spaced) in those fits (8,192 events)
CLUSTER_FLOOR_SHARE = 0.25   # the cluster's spread floor as a share of its fitted starting spread
POSITION_INIT_STEPS = 150   # Adam steps of the position fit: the mlp's levels and parent weights need ~120


class PowerLawKernel(Distribution):
    """Isotropic ETAS spatial kernel on offsets (dx, dy) in km: f(r) = (q-1)/(pi s) (1 + r^2/s)^-q.

    ``s`` (km^2) and ``q`` > 1 broadcast together; event shape (2,). The radius has the closed-form CDF
    F(r) = 1 - (1 + r^2/s)^(1-q), which ``sample`` inverts (angle uniform).
    """

    arg_constraints = {"s": constraints.positive, "q": constraints.greater_than(1.0)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, s: torch.Tensor, q: torch.Tensor, validate_args: bool | None = None):
        self.s, self.q = torch.broadcast_tensors(torch.as_tensor(s), torch.as_tensor(q))
        super().__init__(batch_shape=self.s.shape, event_shape=torch.Size([2]), validate_args=validate_args)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        r2 = value.pow(2).sum(-1)
        return torch.log(self.q - 1.0) - math.log(math.pi) - torch.log(self.s) - self.q * torch.log1p(r2 / self.s)

    def radius_cdf(self, r: torch.Tensor) -> torch.Tensor:
        return 1.0 - torch.pow(1.0 + r * r / self.s, 1.0 - self.q)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)[:-1]
        u = torch.rand(shape, dtype=self.s.dtype, device=self.s.device)
        angle = 2.0 * math.pi * torch.rand(shape, dtype=self.s.dtype, device=self.s.device)
        r = torch.sqrt(self.s * (torch.pow(1.0 - u, -1.0 / (self.q - 1.0)) - 1.0))
        return torch.stack((r * torch.cos(angle), r * torch.sin(angle)), dim=-1)


def dt_distribution(params: torch.Tensor) -> MixtureSameFamily:
    """Mixture of normals on ln dt from (..., 3 N_DT) raw outputs: logits, locations, log scales."""
    logits, loc, log_scale = params.chunk(3, dim=-1)
    scale = torch.exp(log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))
    return MixtureSameFamily(Categorical(logits=logits), Normal(loc, scale))


def draw_component(log_w: torch.Tensor) -> torch.Tensor:
    """One component index per batch element with probabilities softmax(log_w) over the last dim, by the
    inverse CDF: the first index whose float64 cumulative weight reaches u = (1 - U) total, in (0, total] (so
    its own weight is positive): Categorical's law, several times cheaper for a chain's thousands of parents."""
    w = torch.softmax(log_w.double(), dim=-1)
    cdf = w.cumsum(dim=-1)
    u = (1.0 - torch.rand(cdf.shape[:-1] + (1,), dtype=cdf.dtype, device=cdf.device)) * cdf[..., -1:]
    return torch.searchsorted(cdf, u).squeeze(-1).clamp_max(log_w.shape[-1] - 1)


def sample_above(dist: MixtureSameFamily, x0: torch.Tensor) -> torch.Tensor:
    """A draw of a mixture of normals (the ln dt channel) given X > x0 (same batch shape): a component by its
    weight times its mass above x0, then its normal truncated at x0 by the inverse CDF of the upper tail
    (float64; beyond the tail's float64 range, x0 + Exp(1) / a, the tail's asymptotic law). Draws use
    torch's global generator."""
    comp = dist.component_distribution
    loc, scale = comp.loc.double(), comp.scale.double()
    a = (x0.double()[..., None] - loc) / scale
    logits = dist.mixture_distribution.logits.double() + torch.special.log_ndtr(-a)
    k = Categorical(logits=logits).sample()[..., None]
    ak, lk, sk = (v.gather(-1, k)[..., 0] for v in (a, loc, scale))
    tail = torch.special.ndtr(-ak)
    u = torch.rand_like(ak).clamp_min(1e-300)
    z = -torch.special.ndtri(u * tail)
    far = ak + torch.empty_like(ak).exponential_() / ak.clamp_min(1.0)
    z = torch.where(tail > 1e-300, torch.maximum(z, ak), far)
    return (lk + sk * z).to(comp.loc.dtype)


def magnitude_distribution(params: torch.Tensor) -> MixtureSameFamily:
    """Mixture of exponentials on m - Mc from (..., 2 k) raw values: k logits, k log rates (the heads use k =
    N_MAG = 1: one Gutenberg-Richter law)."""
    logits, log_rate = params.chunk(2, dim=-1)
    return MixtureSameFamily(Categorical(logits=logits), Exponential(torch.exp(log_rate.clamp(-1.0, 4.0))))


def log_survival(dist: MixtureSameFamily, x: torch.Tensor) -> torch.Tensor:
    """log P(X > x) of a mixture of normals (the ln dt channel) or of exponentials (the magnitude channel),
    summed over the components in log space (the far tail keeps its precision)."""
    comp = dist.component_distribution
    log_w = torch.log_softmax(dist.mixture_distribution.logits, dim=-1)
    x = x[..., None]
    if isinstance(comp, Normal):
        tail = torch.special.log_ndtr((comp.loc - x) / comp.scale)
    elif isinstance(comp, Exponential):
        tail = -comp.rate * x.clamp_min(0.0)
    else:
        raise TypeError(f"log_survival: a mixture of {type(comp).__name__} components")
    return torch.logsumexp(log_w + tail, dim=-1)


def interval_log_prob(dist: MixtureSameFamily, lo: torch.Tensor, width: float) -> torch.Tensor:
    """log P(lo <= X < lo + width) of a mixture of exponentials (the magnitude channel; lo >= 0):
    log sum_k w_k exp(-r_k lo) (1 - exp(-r_k width))."""
    rate = dist.component_distribution.rate
    log_w = torch.log_softmax(dist.mixture_distribution.logits, dim=-1)
    lo = lo[..., None].clamp_min(0.0)
    return torch.logsumexp(log_w - rate * lo + torch.log(-torch.expm1(-rate * width)), dim=-1)


def polygon_mass(centre: torch.Tensor, radius_cdf, polygon) -> torch.Tensor:
    """The mass inside ``polygon`` (vertices km, numpy) of radial densities centred at ``centre`` (..., 2) km with
    radial CDF ``radius_cdf(r^2)`` (a tensor function broadcasting against centre[..., 0]), by the edge
    quadrature of the ETAS fit (``inversion_geometry.polygon_quadrature``), float64."""
    from ..inversion_geometry import polygon_quadrature

    c = centre.detach().double()
    flat = c.reshape(-1, 2).cpu().numpy()
    (rho2, w), (const, _) = polygon_quadrature(flat[:, 0], flat[:, 1], polygon, None)
    rho2 = torch.from_numpy(rho2).to(c.device).reshape(*c.shape[:-1], -1)
    w = torch.from_numpy(w).to(c.device).reshape(*c.shape[:-1], -1)
    const = torch.from_numpy(const).to(c.device).reshape(c.shape[:-1])
    return (w * radius_cdf(rho2)).sum(-1) + const


class PositionMixture:
    """Distribution of the position of event i (km, region frame) given the earlier events of its window.

    Components (log-weights before normalisation): background ``log_w_bg`` with density 1/area over the
    region; window cluster ``log_w_cl``: isotropic normal at ``centre`` with standard deviation
    ``cl_sd``; parent j: ``log_w_par[..., j]`` (NEG_INF for j that may not be a parent) with the power-law
    kernel at (x_j, y_j), scale ``s_par[..., j]``. Leading dims are batch dims; the parent dim is last.
    """

    def __init__(self, region: torch.Tensor, log_w_bg, log_w_cl, centre, cl_sd, log_w_par, parent_xy, s_par, q):
        self.region = region
        self.area = float((region[1] - region[0]) * (region[3] - region[2]))
        shape = log_w_par.shape[:-1]
        self.log_w = torch.cat([log_w_bg.expand(shape)[..., None], log_w_cl.expand(shape)[..., None], log_w_par], dim=-1)
        self.log_w = self.log_w - torch.logsumexp(self.log_w, dim=-1, keepdim=True)
        self.centre, self.cl_sd = centre, cl_sd
        self.parent_xy, self.s_par, self.q = parent_xy, s_par, q

    def log_prob(self, xy: torch.Tensor) -> torch.Tensor:
        """log density at xy (..., 2)."""
        bg = torch.full_like(xy[..., 0], -math.log(self.area))
        d2 = (xy - self.centre).pow(2).sum(-1)
        cl = -math.log(2.0 * math.pi) - 2.0 * torch.log(self.cl_sd) - 0.5 * d2 / self.cl_sd.pow(2)
        par = PowerLawKernel(self.s_par, self.q).log_prob(xy[..., None, :] - self.parent_xy)
        comp = torch.cat([bg[..., None], cl[..., None], par], dim=-1)
        return torch.logsumexp(self.log_w + comp, dim=-1)

    def log_mass_inside(self, polygon) -> torch.Tensor:
        """log of the mixture's mass inside ``polygon`` (vertices km, within the region's rectangle), float64:
        the uniform background's share area(polygon) / area(rectangle), the cluster's and each parent kernel's
        mass by the edge quadrature (``polygon_mass``)."""
        from ..inversion_geometry import polygon_area

        log_w = self.log_w.double()
        bg = torch.full_like(log_w[..., 0], math.log(min(polygon_area(polygon) / self.area, 1.0)))
        sd2 = self.cl_sd.double().pow(2)
        cl = polygon_mass(self.centre.expand(*sd2.shape, 2), lambda r2: -torch.expm1(-0.5 * r2 / sd2[..., None]), polygon)
        s = self.s_par.double()
        q = torch.as_tensor(self.q).double()
        xy = self.parent_xy.expand(*s.shape, 2)
        par = polygon_mass(xy, lambda r2: 1.0 - torch.pow(1.0 + r2 / s[..., None], 1.0 - q), polygon)
        comp = torch.cat([bg[..., None], torch.log(cl.clamp_min(1e-300)).expand_as(bg)[..., None],
                          torch.log(par.clamp_min(1e-300)).expand(*log_w.shape[:-1], par.shape[-1])], dim=-1)
        return torch.logsumexp(log_w + comp, dim=-1)

    def _draw(self) -> torch.Tensor:
        k = draw_component(self.log_w)
        lo = self.region[[0, 2]]
        width = self.region[[1, 3]] - lo
        bg = lo + width * torch.rand(k.shape + (2,), dtype=lo.dtype, device=lo.device)
        cl = self.centre + self.cl_sd[..., None] * torch.randn(k.shape + (2,), dtype=lo.dtype, device=lo.device)
        j = (k - 2).clamp_min(0)
        pick = lambda a: a.gather(-1, j[..., None]).squeeze(-1)  # noqa: E731
        parent = torch.stack((pick(self.parent_xy[..., 0]), pick(self.parent_xy[..., 1])), dim=-1)
        par = parent + PowerLawKernel(pick(self.s_par), self.q).sample()
        return torch.where((k == 0)[..., None], bg, torch.where((k == 1)[..., None], cl, par))

    def inside(self, xy: torch.Tensor) -> torch.Tensor:
        r = self.region
        return (xy[..., 0] >= r[0]) & (xy[..., 0] <= r[1]) & (xy[..., 1] >= r[2]) & (xy[..., 1] <= r[3])

    def sample(self) -> torch.Tensor:
        """One draw per batch element, inside the region (draws outside are redrawn)."""
        xy = self._draw()
        for _ in range(MAX_REJECTIONS):
            bad = ~self.inside(xy)
            if not bad.any():
                return xy
            xy = torch.where(bad[..., None], self._draw(), xy)
        lo = self.region[[0, 2]]
        uniform = lo + (self.region[[1, 3]] - lo) * torch.rand_like(xy)
        return torch.where((~self.inside(xy))[..., None], uniform, xy)


class EventHeads(nn.Module):
    """Context vector of event i (and z, and the earlier events) -> the distributions of its channels.

    Global ETAS-like parameters (learned): the productivity exponent alpha, Omori c and p of the parent
    weights, D, gamma, q of the spatial kernel, and the magnitude law's rate beta (b ln 10; with ``n_cond``
    conditioning values, the last n_cond entries of z, log beta is also a linear function of them, zero at
    the start). The cluster centre and spread come from z alone.
    """

    def __init__(self, ctx_dim: int, latent_dim: int, region: list[float], n_cond: int = 0):
        super().__init__()
        self.n_cond = n_cond
        self.dt_head = nn.Linear(ctx_dim, 3 * N_DT)
        self.dt_shift = nn.Linear(latent_dim, 1)     # z sets the window's time scale directly
        self.log_mag_rate = nn.Parameter(torch.tensor(math.log(math.log(10.0))))   # beta = b ln 10, b = 1
        if n_cond:
            self.magnitude_head = nn.Linear(n_cond, 1)
            nn.init.zeros_(self.magnitude_head.weight)
            nn.init.zeros_(self.magnitude_head.bias)
        self.pos_head = nn.Linear(ctx_dim, 3)        # log-weights: background, cluster, parent level a
        self.cluster_head = nn.Linear(latent_dim, 3)  # centre (2, region units) and log spread
        self.raw_alpha = nn.Parameter(torch.tensor(1.0))
        self.log_c = nn.Parameter(torch.tensor(math.log(0.01)))
        self.raw_p = nn.Parameter(torch.tensor(-2.0))      # p = 1 + softplus
        self.log_D = nn.Parameter(torch.tensor(0.0))       # D in km^2
        self.raw_gamma = nn.Parameter(torch.tensor(0.0))
        self.raw_q = nn.Parameter(torch.tensor(-0.5))      # q = 1 + softplus
        self.register_buffer("region", torch.tensor([float(v) for v in region]))
        # The window cluster's standard deviation is exp(raw) + this floor (km): CLUSTER_FLOOR_SHARE of the
        # spread of the starting fit (init_position_from_data), so that training cannot shrink the cluster onto
        # a few events (it did: 1-2 km against the 30 km over which ETAS places a window's inherited aftershocks).
        self.register_buffer("cluster_floor", torch.tensor(0.1))

    @torch.no_grad()
    def init_from_data(self, ln_dt: torch.Tensor, dmag: torch.Tensor) -> None:
        """Start the time mixture and the magnitude law where the training data are: dt components spread over
        the quantiles of ln dt; the magnitude rate at the Aki-Utsu estimate 1 / mean(m - Mc), the maximum-
        likelihood rate of the training magnitudes (training then keeps it there: one number that lr-sized
        steps move little)."""
        q = torch.quantile(ln_dt.flatten(), torch.linspace(0.05, 0.95, N_DT, device=ln_dt.device))
        self.dt_head.bias[N_DT:2 * N_DT] = q
        self.dt_head.bias[2 * N_DT:] = math.log(max(float(ln_dt.std()) / N_DT * 2.0, 0.1))
        self.log_mag_rate.fill_(-math.log(max(float(dmag.clamp_min(0.0).mean()), 1e-3)))

    def region_units(self, xy: torch.Tensor) -> torch.Tensor:
        """km -> [-1, 1] over the region."""
        r = self.region
        centre = torch.stack(((r[0] + r[1]) / 2, (r[2] + r[3]) / 2))
        half = torch.stack(((r[1] - r[0]) / 2, (r[3] - r[2]) / 2))
        return (xy - centre) / half

    def from_region_units(self, u: torch.Tensor) -> torch.Tensor:
        r = self.region
        centre = torch.stack(((r[0] + r[1]) / 2, (r[2] + r[3]) / 2))
        half = torch.stack(((r[1] - r[0]) / 2, (r[3] - r[2]) / 2))
        return centre + half * u

    def time_and_magnitude(self, ctx: torch.Tensor, z: torch.Tensor) -> tuple[MixtureSameFamily, MixtureSameFamily]:
        """Distributions of ln dt and of m - Mc; ctx (..., C), z (..., latent) broadcast over events."""
        p = self.dt_head(ctx)
        shift = self.dt_shift(z)
        while shift.dim() < p.dim():
            shift = shift.unsqueeze(-2)
        p = torch.cat([p[..., :N_DT], p[..., N_DT:2 * N_DT] + shift, p[..., 2 * N_DT:]], dim=-1)
        return dt_distribution(p), self.magnitude_law(z, p.shape[:-1])

    def magnitude_law(self, z: torch.Tensor, shape: torch.Size) -> MixtureSameFamily:
        """The magnitude law of events of batch shape ``shape``: one exponential on m - Mc at rate beta (global;
        in a conditional model times exp(linear function of the conditioning values in z))."""
        log_rate = self.log_mag_rate.expand(shape)
        if self.n_cond:
            shift = self.magnitude_head(z[..., -self.n_cond:])[..., 0]
            while shift.dim() < len(shape):
                shift = shift.unsqueeze(-1)
            log_rate = log_rate + shift
        return magnitude_distribution(torch.stack([torch.zeros_like(log_rate), log_rate], dim=-1))

    def init_position_from_data(self, t: torch.Tensor, m: torch.Tensor, xy: torch.Tensor,
                                log_mu: torch.Tensor | None = None, terms: torch.Tensor | None = None,
                                steps: int = POSITION_INIT_STEPS) -> None:
        """Start the position globals at their maximum-likelihood fit on the training windows t (B, L) days from
        the first event, m (B, L) above Mc, xy (B, L, 2) km (the caller passes at most INIT_WINDOWS of them):
        the kernel's log D, gamma and raw q, the mixture's levels (``pos_head.bias``) and the cluster's log
        spread, and without ``terms`` (mlp and gru decoders: ``position``) the parent weights' alpha, c and p;
        with ``terms`` (the autoregressive decoder: ``excited_position``) the parent weights are the intensity's
        log mu (B,) and terms (B, L, L + V) of ``ExcitationIntensity.window_log_prob``. The contexts' weights
        on the levels (``pos_head.weight``) and z's on the cluster spread are set to zero first and the fit
        places the cluster at each window's median event (z places it in training); ``steps`` Adam steps at
        lr 0.1. Without it these globals, one number each, would end near their starting values (the VAE's
        training moves each by about its lr per step: D, gamma, q stayed at 1, 0, 1.5 against 0.5, 1, 1.5).
        Then the cluster's spread floor becomes CLUSTER_FLOOR_SHARE of the fitted spread, the spread unchanged."""
        with torch.no_grad():
            self.pos_head.weight.zero_()
            self.cluster_head.weight[2].zero_()
            self.cluster_floor.fill_(0.1)
        B, L = t.shape
        ctx = torch.zeros(B, L, self.pos_head.in_features, device=t.device)
        z = torch.zeros(B, self.cluster_head.in_features, device=t.device)
        centre = xy.median(dim=1).values[:, None, :]
        m = m.clamp_min(0.0)
        params = [self.log_D, self.raw_gamma, self.raw_q, self.pos_head.bias, self.cluster_head.bias]
        if terms is None:
            params += [self.raw_alpha, self.log_c, self.raw_p]
        params = [q for q in params if q.requires_grad]   # a kernel frozen at a catalog fit stays (intensity_fit)
        optimizer = torch.optim.Adam(params, lr=0.1)
        for _ in range(steps):
            with torch.enable_grad():   # the caller may hold no_grad
                if terms is None:
                    lp = self.position_log_prob(ctx, z, t, m, xy, centre=centre)
                else:
                    mix = self.excited_position(ctx, z[:, None, :], log_mu[:, None], terms, xy[:, None, :, :],
                                                m[:, None, :], centre=centre)
                    lp = mix.log_prob(xy)
                loss = -lp[:, 1:].sum(1).mean()   # the first event has no parent: background or cluster only
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            optimizer.step()
        for q in self.parameters():
            q.grad = None
        with torch.no_grad():
            sd = float(torch.exp(self.cluster_head.bias[2].clamp(-2.0, 4.0))) + float(self.cluster_floor)
            self.cluster_floor.fill_(CLUSTER_FLOOR_SHARE * sd)
            self.cluster_head.bias[2] = math.log((1.0 - CLUSTER_FLOOR_SHARE) * sd)

    def cluster(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cluster_head(z)
        centre = self.from_region_units(torch.tanh(c[..., :2]))
        sd = torch.exp(c[..., 2].clamp(-2.0, 4.0)) + self.cluster_floor
        return centre, sd

    def position(self, ctx: torch.Tensor, z: torch.Tensor, t_i: torch.Tensor, t_prev: torch.Tensor,
                 m_prev: torch.Tensor, xy_prev: torch.Tensor, allowed: torch.Tensor,
                 centre: torch.Tensor | None = None) -> PositionMixture:
        """Position distribution of events with context ctx (B, C) at times t_i (B,), given candidate parents
        at t_prev (B, J), magnitudes above Mc m_prev (B, J), positions xy_prev (B, J, 2) where ``allowed``;
        the cluster's centre from z unless ``centre`` is given."""
        w = self.pos_head(ctx)
        alpha = F.softplus(self.raw_alpha)
        c = torch.exp(self.log_c)
        p = 1.0 + F.softplus(self.raw_p)
        lag = (t_i[..., None] - t_prev).clamp_min(0.0)
        log_par = w[..., 2:3] + alpha * m_prev - p * torch.log(lag + c)
        log_par = torch.where(allowed, log_par, torch.full_like(log_par, NEG_INF))
        s = torch.exp(self.log_D + self.raw_gamma * m_prev).clamp(1e-4, 1e6)
        q = 1.0 + F.softplus(self.raw_q) + 1e-3
        z_centre, sd = self.cluster(z)
        centre = z_centre if centre is None else centre
        return PositionMixture(self.region, w[..., 0], w[..., 1], centre, sd, log_par, xy_prev, s, q)

    def kernel_log_mass(self, xy: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """log (float64) of the offset kernel's mass inside the region's rectangle for parents at xy (..., 2) km
        with magnitudes above Mc m (...), the share of their offspring inside, by the fit's edge quadrature."""
        s = torch.exp(self.log_D + self.raw_gamma * m.clamp_min(0.0)).clamp(1e-4, 1e6).detach().double()
        q = (1.0 + F.softplus(self.raw_q) + 1e-3).detach().double()
        x0, x1, y0, y1 = (float(v) for v in self.region)
        rectangle = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        mass = polygon_mass(xy, lambda r2: -torch.expm1((1.0 - q) * torch.log1p(r2 / s[..., None])), rectangle)
        return torch.log(mass.clamp(1e-300, 1.0))

    def excited_position(self, ctx: torch.Tensor, z: torch.Tensor, log_mu: torch.Tensor, terms: torch.Tensor,
                         xy_prev: torch.Tensor, m_prev: torch.Tensor, centre: torch.Tensor | None = None
                         ) -> PositionMixture:
        """Position distribution with the ETAS branching probabilities of an ``ExcitationIntensity`` as weights:
        parent j with kappa_j g(t_i - t_j) / lambda(t_i), the background share mu / lambda split between the
        uniform background and the window cluster (``pos_head``), the virtual parents' share to the cluster
        (their events lie where the window's past activity was). ctx (..., C), log mu (...), terms (..., L + V)
        = log kappa_j g(t_i - t_j) (window events first), xy_prev (..., L, 2), m_prev (..., L); the cluster's
        centre from z unless ``centre`` is given."""
        L = xy_prev.shape[-2]
        w = F.log_softmax(self.pos_head(ctx)[..., :2], dim=-1)
        log_mu = log_mu.float().detach()
        terms = terms.float().detach()
        log_cl = torch.logaddexp(log_mu + w[..., 1], torch.logsumexp(terms[..., L:], dim=-1))
        s = torch.exp(self.log_D + self.raw_gamma * m_prev).clamp(1e-4, 1e6)
        q = 1.0 + F.softplus(self.raw_q) + 1e-3
        z_centre, sd = self.cluster(z)
        centre = z_centre if centre is None else centre
        return PositionMixture(self.region, log_mu + w[..., 0], log_cl, centre, sd, terms[..., :L], xy_prev, s, q)

    def position_log_prob(self, ctx: torch.Tensor, z: torch.Tensor, t: torch.Tensor, m: torch.Tensor,
                          xy: torch.Tensor, history: "History | None" = None, polygon=None,
                          centre: torch.Tensor | None = None):
        """log density of every event's position (B, L) given the earlier events of its window and those of
        its ``history`` (with positions; None: none), at once: ctx (B, L, C), t (B, L) days from the first
        event, m (B, L) above Mc, xy (B, L, 2) km; the cluster's centre (B, 1, 2) from z unless given. With a
        ``polygon`` (vertices km) also the log of each position distribution's mass inside it: (log density,
        log mass)."""
        L = t.shape[1]
        allowed = torch.ones(L, L, dtype=torch.bool, device=t.device).tril(-1)   # [i, j]: j < i
        # Parents broadcast over events i (dim 1): per-parent terms are computed once per window. Events in
        # blocks of ROW_BLOCK, each block with the parents before its end only (the later ones are none).
        out, mass = [], []
        for r0, r1 in row_blocks(L):
            t_par, m_par, xy_par = t[:, None, :r1], m[:, None, :r1], xy[:, None, :r1, :]
            ok = allowed[r0:r1, :r1]
            if history is not None:   # the history's events after the window's, parents of every event
                t_par = torch.cat([t_par, history.t.to(t.dtype)[:, None, :]], dim=-1)
                m_par = torch.cat([m_par, history.m[:, None, :]], dim=-1)
                xy_par = torch.cat([xy_par, history.xy[:, None, :, :]], dim=-2)
                ok = torch.cat([ok[None].expand(len(t), -1, -1), history.ok[:, None, :].expand(-1, r1 - r0, -1)],
                               dim=-1)
            mix = self.position(ctx[:, r0:r1], z[:, None, :], t[:, r0:r1], t_par, m_par, xy_par, ok, centre)
            out.append(mix.log_prob(xy[:, r0:r1]))
            if polygon is not None:
                mass.append(mix.log_mass_inside(polygon))
        return torch.cat(out, dim=1) if polygon is None else (torch.cat(out, dim=1), torch.cat(mass, dim=1))


# ------------------------------------------------------------------------------ ETAS-intensity time channel

N_VIRTUAL = 1          # z-placed parents before the window: the activity of the window's unseen past
ROW_BLOCK = 16         # events per block of the pairwise (event, parent) terms of a window's likelihood
MAX_THINNING = 2000    # candidate draws per event before the thinning sampler gives up (then the last candidate)


class History(NamedTuple):
    """Events before a window, as parents of its events: times t (B, H) in days from the window's first event
    (negative), magnitudes above Mc m (B, H), ok (B, H) bool (False: no event there) and, for the position
    channel, positions xy (B, H, 2) km."""

    t: torch.Tensor
    m: torch.Tensor
    ok: torch.Tensor
    xy: torch.Tensor | None = None


def init_subset(n: int, device) -> torch.Tensor:
    """Indices of the (at most INIT_WINDOWS, evenly spaced) training windows of the starting fits."""
    return torch.linspace(0, n - 1, min(n, INIT_WINDOWS), device=device).round().long()


def row_blocks(L: int) -> list[tuple[int, int]]:
    """(start, stop) of the blocks of ROW_BLOCK events that the pairwise terms are computed in: the events of
    a block have no parent among the window's events after the block, so only earlier columns are needed."""
    return [(r0, min(r0 + ROW_BLOCK, L)) for r0 in range(0, L, ROW_BLOCK)]


def omori_log_density(lag: torch.Tensor, c: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """log g(lag) of the normalised Omori-Utsu kernel g(s) = (p-1)/c (1 + s/c)^-p (integral 1 over s > 0)."""
    return torch.log(p - 1.0) - torch.log(c) - p * torch.log1p(lag / c)


def omori_mass(start: torch.Tensor, width: torch.Tensor, c: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Integral of g over [start, start + width]: (1 + start/c)^(1-p) (1 - (1 + width/(start + c))^(1-p)),
    written with log1p/expm1 so that a short interval far from its parent keeps its precision."""
    return torch.exp((1.0 - p) * torch.log1p(start / c)) * -torch.expm1((1.0 - p) * torch.log1p(width / (start + c)))


class ExcitationIntensity(nn.Module):
    """The conditional intensity of event times within a window (events per day, t in days from its first event):

        lambda(t) = mu + sum_{j: t_j < t} kappa_j g(t - t_j),   kappa_j = K exp(alpha (m_j - Mc)),

    over the window's earlier events j and ``N_VIRTUAL`` virtual parents before the window (time -s_v < 0,
    productivity kappa_v: the activity the window inherits from its unseen past). kappa_v and s_v come from
    z, and so does a factor on K (log K = global + a linear function of z, zero at the start: the configs of
    a pooled model differ in productivity). The background mu (a linear function of the conditioning values
    alone in a conditional model, ``n_cond`` > 0: the last n_cond entries of its z), alpha and the Omori c
    and p are global: in ETAS the background is one number per config, and a per-window mu(z) let z carry
    each window's count fluctuation, so that windows drawn from the prior would be over-dispersed in their
    counts (docs/design.md §5).
    mu is constant over the window, so lambda never increases between events: the intensity just after the last event bounds it
    until the next (thinning).
    """

    def __init__(self, latent_dim: int, n_cond: int = 0):
        super().__init__()
        self.n_cond = n_cond
        self.log_mu = nn.Parameter(torch.tensor(0.0))             # background, events per day
        if n_cond:   # a conditional model: log mu also a linear function of the conditioning (the last n_cond
            self.background_head = nn.Linear(n_cond, 1)           # entries of z), zero at the start
            nn.init.zeros_(self.background_head.weight)
            nn.init.zeros_(self.background_head.bias)
        self.log_K = nn.Parameter(torch.tensor(math.log(0.2)))
        self.productivity_head = nn.Linear(latent_dim, 1)         # log K offset from z, zero at the start
        nn.init.zeros_(self.productivity_head.weight)
        nn.init.zeros_(self.productivity_head.bias)
        self.virtual_head = nn.Linear(latent_dim, 2 * N_VIRTUAL)  # log kappa_v, log s_v
        self.raw_alpha = nn.Parameter(torch.tensor(0.55))         # alpha = softplus: 1.0 at the start
        self.log_c = nn.Parameter(torch.tensor(math.log(0.01)))
        self.raw_p = nn.Parameter(torch.tensor(-1.5))             # p = 1 + softplus: 1.2 at the start

    def init_from_data(self, ln_dt: torch.Tensor, m: torch.Tensor, steps: int = INIT_STEPS) -> None:
        """Start where the training windows are: the maximum-likelihood fit of the globals (mu, K, alpha, c, p,
        the virtual parent) with z = 0 on at most INIT_WINDOWS windows, ``steps`` Adam steps (lr 0.1) from mu
        at half the mean rate, K 0.2, alpha 1, c 0.01 days, p 1.2. Without it the globals, one number each,
        move about lr per step of the VAE's training and would end near where they start. Globals frozen
        at a whole-catalog fit (``intensity_fit.freeze_globals``) keep their values: only the virtual parent
        is fitted then."""
        with torch.no_grad():
            rate = 1.0 / max(float(torch.exp(ln_dt[:, 1:]).mean()), 1e-6)
            if self.log_mu.requires_grad:
                self.log_mu.fill_(math.log(0.5 * rate))
            self.virtual_head.bias.zero_()
        keep = init_subset(len(ln_dt), ln_dt.device)
        ln_dt, m = ln_dt[keep], m[keep]
        params = [q for q in (self.log_mu, self.log_K, self.raw_alpha, self.log_c, self.raw_p, self.virtual_head.bias)
                  if q.requires_grad]
        optimizer = torch.optim.Adam(params, lr=0.1)
        z = torch.zeros(len(ln_dt), self.virtual_head.in_features, device=ln_dt.device)
        for _ in range(steps):
            with torch.enable_grad():   # the caller may hold no_grad
                loss = -self.window_log_prob(z, ln_dt, m.clamp_min(0.0))[0].sum(1).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            optimizer.step()
        for q in self.parameters():
            q.grad = None

    def globals(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(alpha, c, p) in float64."""
        alpha = F.softplus(self.raw_alpha).double()
        c = torch.exp(self.log_c.clamp(-12.0, 3.0)).double()
        p = 1.0 + F.softplus(self.raw_p).double() + 1e-3
        return alpha, c, p

    def window_terms(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per window (float64): log mu (B,), log K (B,), virtual parents' times (B, V) < 0 and log kappa (B, V)."""
        v = self.virtual_head(z).double()
        log_K = (self.log_K + self.productivity_head(z)[..., 0]).double().clamp(-12.0, 6.0)
        log_mu = self.log_mu.double().expand(log_K.shape)
        if self.n_cond:
            log_mu = log_mu + self.background_head(z[..., -self.n_cond:])[..., 0].double()
        log_mu = log_mu.clamp(-12.0, 12.0)
        t_virtual = -torch.exp(v[..., N_VIRTUAL:].clamp(-12.0, 8.0))
        return log_mu, log_K, t_virtual, v[..., :N_VIRTUAL].clamp(-12.0, 12.0)

    def log_productivity(self, log_K: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """log kappa = log K + alpha (m - Mc) (float64); log_K broadcasts against m (above Mc)."""
        return log_K + self.globals()[0] * m.double()

    def parents(self, z: torch.Tensor, t: torch.Tensor, m: torch.Tensor, history: History | None = None,
                log_mass: tuple[torch.Tensor, torch.Tensor | None] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log mu (B,) and the parents of a window: times (B, L + H + V) (its events t (B, L), the history's
        events, then the virtual parents) and log productivities (B, L + H + V) from the magnitudes above Mc
        m (B, L) and the history's (H = 0 without one); with ``log_mass`` (the window's (B, L) and the
        history's (B, H) or None: ``EventHeads.kernel_log_mass``) each productivity is its in-region share."""
        log_mu, log_K, t_virtual, log_kappa_virtual = self.window_terms(z)
        log_kappa = self.log_productivity(log_K[:, None], m)
        if log_mass is not None:
            log_kappa = log_kappa + log_mass[0]
        times, kappas = [t.double()], [log_kappa]
        if history is not None:
            times.append(history.t.double())
            h_kappa = self.log_productivity(log_K[:, None], history.m.clamp_min(0.0))
            kappas.append(h_kappa if log_mass is None or log_mass[1] is None else h_kappa + log_mass[1])
        return log_mu, torch.cat([*times, t_virtual], dim=1), torch.cat([*kappas, log_kappa_virtual], dim=1)

    def log_terms(self, lag: torch.Tensor, log_kappa: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """log kappa_j g(lag_j) where ``allowed`` (parent before the time), NEG_INF elsewhere."""
        _, c, p = self.globals()
        out = log_kappa + omori_log_density(lag.clamp_min(0.0), c, p)
        return torch.where(allowed, out, torch.full_like(out, NEG_INF))

    def interval_mass(self, lag_start: torch.Tensor, width: torch.Tensor, log_kappa: torch.Tensor,
                      allowed: torch.Tensor) -> torch.Tensor:
        """sum over allowed parents of kappa_j times the Omori mass of [lag_start_j, lag_start_j + width]."""
        _, c, p = self.globals()
        mass = torch.exp(log_kappa) * omori_mass(lag_start.clamp_min(0.0), width[..., None], c, p)
        return torch.where(allowed, mass, torch.zeros_like(mass)).sum(-1)

    def window_log_prob(self, z: torch.Tensor, ln_dt: torch.Tensor, m: torch.Tensor, history: History | None = None,
                        with_compensator: bool = False,
                        log_mass: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> tuple[torch.Tensor, ...]:
        """Teacher-forced time channel of windows (B, L) of ln dt (days) and m - Mc, optionally after a history
        of H earlier events (``History``: their times before the window's first event and magnitudes; events
        with ``ok`` False are not parents).

        Returns (log p(ln dt_i | earlier events, z) for i >= 1 (B, L-1): log lambda(t_i) - (compensator from
        t_{i-1} to t_i) + ln dt_i; log mu (B,); log kappa_j g(t_i - t_j) (B, L, L + H + V), NEG_INF where j is
        not a parent of i): the last two give the ETAS probability that j triggered i (the position parents).
        ``with_compensator``: also the compensator from t_{i-1} to t_i (B, L-1) float64 (minus the log
        survival of the interval). ``log_mass``: the parents' in-region shares (``parents``)."""
        B, L = ln_dt.shape
        dt = torch.exp(ln_dt.double())
        t = torch.cumsum(torch.cat([torch.zeros_like(dt[:, :1]), dt[:, 1:]], dim=1), dim=1)
        log_mu, parent_t, log_kappa = self.parents(z, t, m, history, log_mass)
        _, c, p = self.globals()
        log_norm = torch.log(p - 1.0) - torch.log(c)
        # Parents outside the window (history, then virtual) come before every event; ``rest_ok`` says which
        # are parents at all (absent history events are not).
        rest_ok = torch.ones(B, parent_t.shape[1] - L, dtype=torch.bool, device=t.device)
        if history is not None:
            rest_ok[:, :history.t.shape[1]] = history.ok
        tri = torch.ones(L, L, dtype=torch.bool, device=t.device).tril(-1)                 # [i, j]: j before i
        terms_rows, log_sum_rows, mass_rows = [], [], []
        # Rows (events) in blocks of ROW_BLOCK: a block's events have no parent among the window's later events,
        # so only the columns before its end are computed (fewer pairs than the full square).
        for r0, r1 in row_blocks(L):
            a0 = max(r0 - 1, 0)                                   # rows a0..r1-1: the block and the row before it
            cols = torch.cat([parent_t[:, :r1], parent_t[:, L:]], dim=1)
            log_kappa_cols = torch.cat([log_kappa[:, :r1], log_kappa[:, L:]], dim=1)
            allowed = torch.cat([tri[a0:r1, :r1][None].expand(B, -1, -1),
                                 rest_ok[:, None, :].expand(-1, r1 - a0, -1)], dim=2)
            # log(1 + lag / c) of every pair, once: the Omori density at t_i and the mass since t_{i-1} share it.
            A = torch.log1p((t[:, a0:r1, None] - cols[:, None, :]).clamp_min(0.0) / c)
            out = log_kappa_cols[:, None, :] + log_norm - p * A
            terms = torch.where(allowed, out, torch.full_like(out, NEG_INF))[:, r0 - a0:]
            log_sum_rows.append(torch.logsumexp(terms, dim=-1))
            pad = torch.full((B, r1 - r0, L - r1), NEG_INF, dtype=terms.dtype, device=t.device)
            terms_rows.append(torch.cat([terms[:, :, :r1], pad, terms[:, :, r1:]], dim=2))
            # kappa_j times the Omori mass of [t_{i-1}, t_i]: (1 + lag_{i-1}/c)^(1-p) (1 - ((c + lag_i) /
            # (c + lag_{i-1}))^(1-p)) (``omori_mass``, with log1p(width / (start + c)) = A_i - A_{i-1}).
            A_prev, A_cur = A[:, :-1], A[:, 1:]
            mass = torch.exp(log_kappa_cols[:, None, :] + (1.0 - p) * A_prev) * -torch.expm1((1.0 - p) * (A_cur - A_prev))
            mass_rows.append(torch.where(allowed[:, 1:], mass, torch.zeros_like(mass)).sum(-1))
        terms = torch.cat(terms_rows, dim=1)                                                  # (B, L, L + H + V)
        log_lam = torch.logaddexp(log_mu[:, None], torch.cat(log_sum_rows, dim=1))           # (B, L)
        comp = torch.exp(log_mu)[:, None] * dt[:, 1:] + torch.cat(mass_rows, dim=1)
        lp = log_lam[:, 1:] - comp + ln_dt[:, 1:].double()
        return (lp.float(), log_mu, terms, comp) if with_compensator else (lp.float(), log_mu, terms)

    def first_interval_log_prob(self, z: torch.Tensor, ln_dt0: torch.Tensor, history: History,
                                with_compensator: bool = False, history_log_mass: torch.Tensor | None = None):
        """log p(ln dt_0 | history, z) (B,) of a window's first event, dt_0 after the history's last event (which
        sits at -dt_0 in ``history.t``): the intensity mu + the history's events (no virtual parent: the history
        is the window's past here), log lambda(0) - its integral over [-dt_0, 0] + ln dt_0, exact;
        ``with_compensator``: and that integral (B,) float64. ``history_log_mass``: the history's in-region
        shares (``parents``)."""
        log_mu, log_K, _, _ = self.window_terms(z)
        dt0 = torch.exp(ln_dt0.double())
        log_kappa = self.log_productivity(log_K[:, None], history.m)
        if history_log_mass is not None:
            log_kappa = log_kappa + history_log_mass
        log_lam = self.log_rate(log_mu, -history.t.double(), log_kappa, history.ok)
        comp = torch.exp(log_mu) * dt0 + self.interval_mass(-dt0[:, None] - history.t.double(), dt0, log_kappa, history.ok)
        lp = (log_lam - comp + ln_dt0.double()).float()
        return (lp, comp) if with_compensator else lp

    def log_rate(self, log_mu: torch.Tensor, lag: torch.Tensor, log_kappa: torch.Tensor,
                 allowed: torch.Tensor) -> torch.Tensor:
        """log lambda at lags (B, J) from the parents, log mu (B,)."""
        terms = self.log_terms(lag, log_kappa, allowed)
        return torch.logaddexp(log_mu, torch.logsumexp(terms, dim=-1))

    @torch.no_grad()
    def sample_next(self, log_mu: torch.Tensor, t_last: torch.Tensor, parent_t: torch.Tensor, log_kappa: torch.Tensor,
                    allowed: torch.Tensor) -> torch.Tensor:
        """Waiting time (B,) float64 from t_last (B,) to the next event, by thinning (Ogata 1981): the intensity
        does not increase between events, so its value at the current candidate bounds it from there on.
        Draws use torch's global generator. The terms kappa_j g(t - t_j) are summed in float32 from float64
        lags (the rate to ~1e-7 of itself): over a chain's thousands of parents this is most of its cost."""
        _, c, p = self.globals()
        a = torch.where(allowed, log_kappa + torch.log(p - 1.0) - torch.log(c), torch.full_like(log_kappa, NEG_INF)).float()
        mu, p32, inv_c = torch.exp(log_mu), p.float(), 1.0 / c

        def rate(at: torch.Tensor) -> torch.Tensor:
            x = ((at[:, None] - parent_t).clamp_min(0.0) * inv_c).float()
            return mu + torch.exp(a - p32 * torch.log1p(x)).sum(-1).double()

        cur, wait, done = torch.zeros_like(t_last), torch.zeros_like(t_last), torch.zeros_like(t_last, dtype=torch.bool)
        bound = rate(t_last)
        for _ in range(MAX_THINNING):
            cand = cur + torch.empty_like(cur).exponential_() / bound
            lam = rate(t_last + cand)
            accept = ~done & (torch.rand_like(cur) * bound <= lam)
            wait = torch.where(accept, cand, wait)
            done = done | accept
            if bool(done.all()):
                return wait
            cur = torch.where(done, cur, cand)
            bound = torch.where(done, bound, lam)
        return torch.where(done, wait, cur)
