"""Small catalog files in the ComCat CSV format, written by the tests from the real ETAS simulator."""

import numpy as np
import pandas as pd

from etasvae.params import ETASParams
from etasvae.realdata import unproject
from etasvae.simulate import simulate_etas

COMCAT_HEADER = ("time,latitude,longitude,depth,mag,magType,nst,gap,dmin,rms,net,id,updated,place,type,"
                 "horizontalError,depthError,magError,magNst,status,locationSource,magSource")
# Centre and span of the test region: 0.5 degree boxes about (-117.5 E, 35.7 N), about 45 x 55 km.
LON0, LAT0 = -117.5, 35.7
BBOX = [-117.75, -117.25, 35.45, 35.95]
ORIGIN = pd.Timestamp("2020-01-01T00:00:00Z")


def etas_events(seed: int = 1, duration: float = 120.0, mu: float = 4.0, K: float = 0.25) -> pd.DataFrame:
    """(time UTC, longitude, latitude, depth km, magnitude to 0.1) of an ETAS catalog in a 40 km square about
    the test centre; magnitudes simulated from 1.95 and rounded to 0.1, as a network reports them."""
    params = ETASParams(mu=mu, K=K, alpha=1.5, c=0.01, p=1.2, D=0.5, q=1.5, gamma=1.0, b=1.0, mc=1.95)
    cat = simulate_etas(params, duration=duration, region=(-20.0, 20.0, -20.0, 20.0),
                        rng=np.random.default_rng(seed), burn_in=10.0, margin=5.0)
    lon, lat = unproject(cat["x"].to_numpy(), cat["y"].to_numpy(), LON0, LAT0)
    rng = np.random.default_rng(seed + 1000)
    return pd.DataFrame({
        "time": ORIGIN + pd.to_timedelta(cat["time"].to_numpy(), unit="D"),
        "longitude": np.round(lon, 5),
        "latitude": np.round(lat, 5),
        "depth": np.round(rng.uniform(2.0, 15.0, len(cat)), 2),
        "magnitude": np.round(cat["magnitude"].to_numpy(), 1),
    })


def comcat_text(events: pd.DataFrame) -> str:
    """``events`` as the ComCat event service writes them (format=csv)."""
    lines = [COMCAT_HEADER]
    for i, e in enumerate(events.itertuples(index=False)):
        t = e.time if isinstance(e.time, str) else e.time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        lines.append(f"{t},{e.latitude},{e.longitude},{e.depth},{e.magnitude},ml,20,50,0.05,0.2,ci,ci{i:08d},"
                     f"{t},\"10km NNE of Somewhere, CA\",earthquake,0.3,0.5,0.1,12,reviewed,ci,ci")
    return "\n".join(lines) + "\n"


def write_comcat_csv(path, events: pd.DataFrame | None = None) -> None:
    path.write_text(comcat_text(etas_events() if events is None else events))


def dataset_config(path: str, **overrides) -> dict:
    """A dataset entry for ``path``: 120 days split 60 / 20 / 40 (training / validation / held-out)."""
    ds = {
        "source": "comcat_csv",
        "path": str(path),
        "region": {"bbox": list(BBOX)},
        "start": "2020-01-01",
        "end": "2020-04-30",
        "split": {"validation_start": "2020-03-01", "heldout_start": "2020-03-21"},
        "min_magnitude": 1.5,
        "mc": "maxc",
    }
    ds.update(overrides)
    return ds
