"""The embed and latent-maps stages: the latent space of a trained VAE (docs/design.md, *Latent space*).

``embedding`` encodes windows and describes them; ``metrics`` says whether the latent space is
meaningful; ``health`` checks the VAE on held-out windows; ``maps`` draws PCA and t-SNE maps;
``interpolation`` decodes a straight latent line. Sampling synthetic catalogs is :mod:`etasvae.sample`.
"""

from .embedding import (
    B_VALUE_MIN_EVENTS,
    DESCRIPTIVE_COLUMNS,
    ETAS_COLUMNS,
    META_COLUMNS,
    embed_windows,
    latent_columns,
    window_descriptors,
)
from .health import model_health
from .interpolation import interpolation_windows, plot_interpolation
from .maps import (
    SYNTHETIC_MAX_POINTS,
    TSNE_MAP_MAX_POINTS,
    TSNE_MAX_POINTS,
    catalog_windows,
    plot_pca,
    plot_tsne,
    synthetic_latents,
    tsne_map,
)
from .metrics import ACTIVE_THRESHOLD, SILHOUETTE_MAX_POINTS, activity_and_kl, latent_metrics

__all__ = [
    "ACTIVE_THRESHOLD",
    "B_VALUE_MIN_EVENTS",
    "DESCRIPTIVE_COLUMNS",
    "ETAS_COLUMNS",
    "META_COLUMNS",
    "SILHOUETTE_MAX_POINTS",
    "SYNTHETIC_MAX_POINTS",
    "TSNE_MAP_MAX_POINTS",
    "TSNE_MAX_POINTS",
    "activity_and_kl",
    "catalog_windows",
    "embed_windows",
    "interpolation_windows",
    "latent_columns",
    "latent_metrics",
    "model_health",
    "plot_interpolation",
    "plot_pca",
    "plot_tsne",
    "synthetic_latents",
    "tsne_map",
    "window_descriptors",
]
