"""The invert rules' catalog check on large catalogs: the whole-catalog fit is cut at a number of events."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from etasvae.inversion_report import fit_heldout_catalog
from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas

REGION = (0.0, 50.0, 0.0, 50.0)


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_the_whole_catalog_fit_stops_after_max_events():
    """A catalog with more target events than ``max_events`` is fitted over its first part: exactly
    ``max_events`` target events (above Mc, after the history days), the window's end between the last
    of them and the next, and the fit says it was cut; without a cap the whole window is fitted."""
    params = ETASParams(mu=3.0, K=0.2, alpha=1.0, c=0.01, p=1.3, D=0.1, q=2.0, gamma=0.5, b=1.0, mc=2.5, mmax=7.0)
    catalog = simulate_etas(params, duration=120.0, region=REGION, rng=np.random.default_rng(5))
    meta = {"region_km": list(REGION), "duration_days": 120.0}
    aux = 10.0
    target = np.sort(catalog["time"].to_numpy()[catalog["time"].to_numpy() >= aux])
    assert len(target) > 300
    cut = fit_heldout_catalog(catalog, meta, mc=2.5, aux_days=aux, n_starts=1, max_events=150)
    assert cut["cut_at_max_events"] and cut["n_target"] == 150
    assert target[149] < cut["t_end"] < target[150]
    whole = fit_heldout_catalog(catalog, meta, mc=2.5, aux_days=aux, n_starts=1, max_events=len(target))
    assert not whole["cut_at_max_events"] and whole["t_end"] == 120.0 and whole["n_target"] == len(target)
