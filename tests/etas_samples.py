"""Small ETAS catalogs from the real simulator, for tests that need clustered seismicity."""

import numpy as np
import pandas as pd

from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas

MC = 2.5
# A binned-window spec the feature and VAE tests share: 10-day windows, 5 time bins, 3 magnitude bands.
BINNED_SPEC = {"representation": "binned", "mc": MC, "duration_days": 10.0, "stride_days": 5.0, "time_bins": 5,
               "magnitude_bands": [2.5, 3.0, 4.0]}


def clustered_catalog(seed: int, duration: float = 200.0, mu: float = 2.0, K: float = 0.3, alpha: float = 1.0,
                      c: float = 0.01, p: float = 1.5) -> pd.DataFrame:
    """An ETAS catalog (b = 1, so n = K*beta/(beta-alpha): about 0.53 for K = 0.3, 0.8 for K = 0.45) in a
    100 km square with a 10 km margin and a 20-day burn-in; p = 1.5 keeps the Omori tail short."""
    params = ETASParams(mu=mu, K=K, alpha=alpha, c=c, p=p, D=1.0, q=1.5, gamma=0.5, b=1.0, mc=MC)
    return simulate_etas(params, duration=duration, region=(0.0, 100.0, 0.0, 100.0),
                         rng=np.random.default_rng(seed), burn_in=20.0, margin=10.0)
