"""Reference catalogs simulated for the evaluation only (``evaluate.reference_replicates``).

For an ETAS config the reference process is known, so the evaluation need not make do with the one
held-out replicate: it simulates more catalogs at the config's parameters. Reference catalog k is seeded
from (master seed, "<config id>/reference", k), a seed sequence apart from every training and held-out
replicate's (config id, replicate), so adding replicates or reference catalogs changes no other catalog and
no reference catalog can coincide with one the model was trained on. Reference catalogs are never cut into
training windows: only the evaluation reads them.

Their windows are cut with the model's window spec. Even k extend the held-out set H; odd k form the
floor's second set (the set A of the skill): two independent samples of the process, each of them of
roughly half the reference catalogs. In the window tables a reference catalog k has replicate
``reference_replicate(k)`` = -(k + 1), a number no simulation replicate takes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..catalog import read_catalog
from ..config import catalog_seed
from ..features import build_windows
from ..params import ETASParams
from ..simulate import catalog_metadata, simulate_etas

REFERENCE_ROLES = ("heldout", "floor")
"""Role of reference catalog k in the evaluation: REFERENCE_ROLES[k % 2] (H, or the floor's set)."""


def reference_seed(master_seed: int, cfg_id: str, k: int) -> int:
    """Seed of reference catalog ``k`` of a config: the seed sequence of (master seed, "<cfg>/reference", k)."""
    return catalog_seed(master_seed, f"{cfg_id}/reference", int(k))


def reference_replicate(k: int) -> int:
    """The replicate number of reference catalog ``k`` in window tables and catalog metadata: -(k + 1)."""
    return -(int(k) + 1)


def simulate_reference_catalogs(cfg_id: str, etas: dict[str, Any], simulation: dict[str, Any],
                                seeds: list[int]) -> Iterator[tuple[pd.DataFrame, dict[str, Any], float]]:
    """(catalog, metadata, mc) of each reference catalog, one seed each, simulated like a replicate."""
    params = ETASParams.from_dict({k: v for k, v in etas.items() if k != "branching_ratio"})
    for k, seed in enumerate(seeds):
        catalog = simulate_etas(
            params,
            duration=simulation["duration_days"],
            region=tuple(simulation["region_km"]),
            rng=np.random.default_rng(int(seed)),
            burn_in=simulation["burn_in_days"],
            margin=simulation["margin_km"],
            max_events=simulation["max_events"],
        )
        metadata = catalog_metadata(cfg_id, reference_replicate(k), int(seed), etas, params, simulation)
        metadata["role"] = "reference"
        yield catalog, metadata, params.mc


def reference_table(catalogs: Mapping[tuple[str, int], pd.DataFrame | str | os.PathLike], spec: dict[str, Any],
                    duration_days: float, pooled: bool = False) -> pd.DataFrame:
    """The windows table of the reference catalogs ({(config id, reference_replicate(k)): catalog or file}),
    cut with ``spec``; role "heldout" for even k, "floor" for odd k; a ``config_id`` column when ``pooled``.

    Catalogs are read one at a time; the window features are not kept.
    """
    tables = []
    for (cfg, rep), source in catalogs.items():
        events = source if isinstance(source, pd.DataFrame) else read_catalog(source)[0]
        table, _ = build_windows([(int(rep), events)], spec, heldout_replicates=[int(rep)], validation_fraction=0.0,
                                 durations={int(rep): float(duration_days)})
        k = -int(rep) - 1
        table["role"] = REFERENCE_ROLES[k % 2]
        if pooled:
            table.insert(0, "config_id", str(cfg))
        tables.append(table.drop(columns="window_id"))
    if not tables:
        return pd.DataFrame()
    return pd.concat(tables, ignore_index=True)
