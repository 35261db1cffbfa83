"""The surrogate's model: the sequence VAE conditioned on ETAS parameters, with a history and a learned prior
(docs/methods/surrogate.md; the data and the chaining are ``etasvae.surrogate``).

``ConditionalSequenceVAE`` composes a ``SequenceVAE`` built with ``n_cond`` conditioning values and a history
(the same encoder, decoder heads and decoders; the standardised varied ETAS parameters c enter the encoder,
q(z | x, origin, c), and the decoder reads u = [z, c]) and adds the learned prior p(z | c, h) =
N(m(c, h), diag exp(s(c, h))): an MLP of c and the standardised features of the history window h (and a
flag for "no history"), initialised to N(0, I). The history is what carries the state of the sequence (an
aftershock sequence under way) from window to window.

Loss per window = -log p(x | u, history) + beta_t * free-bits KL(q || p(z | c, h)), the KL between two
diagonal Gaussians in closed form. Unlike the plain sequence VAE, no auxiliary window-level heads
(``AUX_WEIGHT`` = 0; their NLL is still logged): they make z predict each window's mean and spread of ln dt,
sampling noise of its events included, and chaining then redraws that noise as a real change of rate from
window to window, on top of the events' own randomness, so that the chained catalogs' rate wanders more
than the simulator's (docs/methods/surrogate.md). History and conditioning keep z from collapsing without
them. With probability ``HISTORY_DROPOUT`` a training window is shown without its history, so that the
model can start a chain from nothing.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..features import FeatureTransform, check_spec
from ..threads import one_thread
from .intensity_fit import freeze_conditional_globals
from .sequence import Batch, Events, Past, SequenceVAE
from .sequence_training import describe_terms, init_from_data, mean_terms
from .training import Trainer, fit, mlp_layers, pick_device

HISTORY_DROPOUT = 0.1
AUX_WEIGHT = 0.0   # the auxiliary heads' weight in the surrogate's loss (module docstring)


class ConditionalSequenceVAE(nn.Module):
    """A SequenceVAE with conditioning and a history (``vae``), and a learned prior p(z | c, h) (``prior_net``).

    A recurrent decoder reads the history with its GRU. With ``decoder: autoregressive`` the ETAS intensity
    counts the history's events as parents too: an aftershock sequence that starts in one window goes on
    decaying in the next, and K is a function of u, so of the ETAS parameters.
    """

    kind = "conditional-sequence"

    def __init__(self, length: int, latent_dim: int, hidden: list[int], decoder: str, spec: dict[str, Any],
                 n_cond: int, catalog_intensity: bool = False):
        super().__init__()
        # catalog_intensity: the intensity is held at the training catalogs' ETAS fit (train_surrogate's
        # intensity_fits): its chains then carry their whole past as parents (surrogate.generate_chains), and
        # each parent's productivity is its in-region share, as in the fit (SequenceVAE.parent_log_mass)
        self.vae = SequenceVAE(length, latent_dim, hidden, decoder, spec, n_cond=n_cond, history=True,
                               catalog_intensity=catalog_intensity)
        self.z_dim, self.n_cond = latent_dim, n_cond
        self.prior_net = nn.Sequential(*mlp_layers([4 * length + 1 + n_cond, *hidden]),
                                       nn.Linear(hidden[-1], 2 * latent_dim))
        with torch.no_grad():   # the prior starts as N(0, I)
            self.prior_net[-1].weight.zero_()
            self.prior_net[-1].bias.zero_()

    @property
    def catalog_intensity(self) -> bool:
        return self.vae.catalog_intensity

    @catalog_intensity.setter
    def catalog_intensity(self, value: bool) -> None:
        self.vae.catalog_intensity = bool(value)

    @property
    def length(self) -> int:
        return self.vae.length

    @property
    def spec(self) -> dict[str, Any]:
        return self.vae.spec

    def architecture(self) -> dict[str, Any]:
        v = self.vae
        return {"kind": self.kind, "length": v.length, "latent_dim": self.z_dim, "hidden": v.hidden,
                "decoder": v.decoder_kind, "spec": v.spec, "n_cond": self.n_cond,
                "catalog_intensity": self.catalog_intensity}

    @classmethod
    def from_architecture(cls, arch: dict[str, Any]) -> "ConditionalSequenceVAE":
        return cls(arch["length"], arch["latent_dim"], arch["hidden"], arch["decoder"], arch["spec"], arch["n_cond"],
                   bool(arch.get("catalog_intensity", False)))

    def prior(self, Xh: torch.Tensor, has: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z | c, h): (mu, logvar) from c and the history window's features (zeros and has = 0: none)."""
        h = (Xh - self.vae.feat_offset) / self.vae.feat_scale * has[:, None]
        mu, logvar = self.prior_net(torch.cat([h, has[:, None], c], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8.0, 4.0)

    def prior_of(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.prior(b.history.X, b.history.has, b.c)

    def window_log_probs(self, u: torch.Tensor, b: Batch) -> torch.Tensor:
        """log p(event i | earlier events of the window, history, u) of every window event (n, L)."""
        return self.vae.event_log_probs(u, b)


def surrogate_batch(data: dict[str, torch.Tensor], index: torch.Tensor, L: int,
                    dropout: torch.Tensor | None = None) -> Batch:
    """The windows ``index`` of ``training_data`` tensors, each with its history; with ``dropout`` (one
    uniform number per window) the history of those below HISTORY_DROPOUT is hidden."""
    has = data["has_history"][index]
    if dropout is not None:
        has = has * (dropout >= HISTORY_DROPOUT).float()
    ln_dt, m, xy = data["ln_dt"][index], data["m"][index], data["xy"][index]
    past = Past(Events(ln_dt[:, :L], m[:, :L], xy[:, :L]), has, data["Xh"][index])
    return Batch(data["X"][index], data["origin"][index], window=Events(ln_dt[:, L:], m[:, L:], xy[:, L:]),
                 history=past, c=data["c"][index])


def _batches(data: dict[str, torch.Tensor], L: int, size: int = 1024):
    n = len(data["X"])
    for i in range(0, n, size):
        yield surrogate_batch(data, torch.arange(i, min(i + size, n), device=data["X"].device), L)


@one_thread
def train_surrogate(train: dict[str, np.ndarray], val: dict[str, np.ndarray] | None, settings: dict[str, Any],
                    spec: dict[str, Any], *, log: Callable[[str], None] = print,
                    dev: torch.device | None = None, intensity_fits: list | None = None,
                    ) -> tuple[ConditionalSequenceVAE, FeatureTransform, pd.DataFrame]:
    """Train a ConditionalSequenceVAE on ``etasvae.surrogate.training_data`` arrays (settings as
    ``vae_settings`` gives them) with the loop of ``training.fit``. ``intensity_fits``: (c, estimates) of the
    training catalogs' ETAS fit of each trained config (``intensity_fit.fit_training_catalogs``), at which
    the autoregressive intensity and the offset kernel are held (``intensity_fit.freeze_conditional_globals``)."""
    dev = dev or pick_device()
    spec = check_spec(spec)
    s, L = settings, spec["length"]
    torch.manual_seed(s["seed"])
    generator = torch.Generator(device=dev).manual_seed(s["seed"])
    n_cond = train["c"].shape[1]
    model = ConditionalSequenceVAE(L, s["latent_dim"], s["hidden"], s["decoder"], spec, n_cond).to(dev)

    def tensors(d):
        return {k: torch.from_numpy(np.asarray(v, dtype=np.float32)).to(dev) for k, v in d.items() if k != "role"}

    T = tensors(train)
    V = tensors(val) if val is not None and len(val["X"]) else None
    transform = FeatureTransform.fit(train["X"], kind="standard")
    if intensity_fits and s["decoder"] == "autoregressive":
        freeze_conditional_globals(model.vae.intensity, intensity_fits, model.vae.heads)
        model.catalog_intensity = True
    init_from_data(model.vae, transform, T["X"], T["origin"], spec)
    model.vae.max_ln_dt.fill_(float(T["ln_dt"][:, L:].max()))
    log(f"training the surrogate ({s['decoder']} decoder, {n_cond} conditioning values) on {dev}: "
        f"{len(T['X'])} training / {0 if V is None else len(V['X'])} validation windows of {L} events with "
        f"{L} history events, latent {s['latent_dim']}, history dropout {HISTORY_DROPOUT:g}")

    def batch_loss(index, dropout, beta_t):
        b = surrogate_batch(T, index, L, dropout)
        nll, aux, kl_term, kl = model.vae.training_terms(b, prior=model.prior_of(b))
        return nll + AUX_WEIGHT * aux + beta_t * kl_term, torch.stack((nll, kl, aux))

    def validation(epoch):
        v = mean_terms(model.vae, _batches(V, L), seed=epoch, prior_of=model.prior_of)
        return [v["nll"], v["kl"], v["aux"]]

    trainer = Trainer(model, len(T["X"]), batch_loss, None if V is None else validation, describe_terms,
                      aux_weight=AUX_WEIGHT, draws_per_window=True)
    history = fit(trainer, s, generator, log=log)
    return model, transform, history
