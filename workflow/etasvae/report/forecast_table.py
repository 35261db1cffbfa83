"""The "Forecast of the held-out period" table of a dataset's model pages and of the summary, and its summary
columns, from the scores file of the rule ``forecast_dataset`` (etasvae.dataset_forecast).

Every forecaster of ``scores["forecasters"]`` gets a row (Poisson and the ETAS fit first, then the rest as
they come, e.g. ``vae:<setting id>``), with its TLL, SLL and MLL per event and its gap to the reference
forecaster (``scores["reference"]``, the ETAS fit): positive means it gives the held-out events a higher
likelihood than the ETAS fit does; then its CSEP pass rates (the entry's ``csep``: pyCSEP's N, M, S and PL
tests over the held-out period's horizons, catalogs simulated given the history), as passed / valid horizons.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .cells import _as_number, _esc

SCORES = ("tll", "sll", "mll")
SCORE_LABEL = {"tll": "TLL (time)", "sll": "SLL (space)", "mll": "MLL (magnitude)"}
FIRST = ("poisson", "etas")
VAE_PREFIX = "vae:"
NAMES = {"poisson": "Poisson", "etas": "ETAS fit"}  # where a scores file gives no label
CSEP_TESTS = {"number": "N", "magnitude": "M", "spatial": "S", "pseudolikelihood": "PL"}


def _ordered(forecasters: dict[str, dict]) -> list[str]:
    return [k for k in FIRST if k in forecasters] + [k for k in forecasters if k not in FIRST]


def _value(entry: dict | None, key: str) -> float:
    x = _as_number((entry or {}).get(key))
    return math.nan if x is None else x


def gaps(scores: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{forecaster: {score: forecaster's - reference's}} (NaN where either is missing)."""
    forecasters = scores.get("forecasters") or {}
    ref = forecasters.get(scores.get("reference", "etas"))
    return {name: {k: _value(entry, k) - _value(ref, k) for k in SCORES} for name, entry in forecasters.items()}


def with_vae_scores(scores: dict[str, Any] | None, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The scores file of a dataset with its VAE settings' entries (the rule ``forecast_vae``'s files, each
    with its ``vae_id``) joined as forecasters ``vae:<setting id>``, in the order given."""
    if scores is None:
        return None
    forecasters = dict(scores.get("forecasters") or {})
    for entry in entries:
        forecasters[f"{VAE_PREFIX}{entry['vae_id']}"] = entry
    return {**scores, "forecasters": forecasters}


def flags(entry: dict) -> list[str]:
    """A forecaster's flags: not a forecaster, not scored, not fitted, not usable, parameters at a bound."""
    out = []
    if "not_forecaster" in entry:
        out.append(str(entry["not_forecaster"]))
    elif "not_scored" in entry:
        out.append(f"not scored: {entry['not_scored']}")
    elif "error" in entry:
        out.append("not fitted")
    elif entry.get("usable") is False:
        out.append("not usable")
    if entry.get("at_bound"):
        out.append("at bound: " + ", ".join(entry["at_bound"]))
    return out


def csep_rates(entry: dict | None) -> dict[str, float]:
    """{test: pass rate} of a forecaster's ``csep`` entry (NaN where not run or no valid horizon)."""
    rates = ((entry or {}).get("csep") or {}).get("pass_rate") or {}
    return {k: _value(rates, k) for k in CSEP_TESTS}


def _csep_cells(entry: dict) -> str:
    csep = entry.get("csep") or {}
    cells = []
    for k in CSEP_TESTS:
        n = (csep.get("n_valid") or {}).get(k)
        rate = _as_number((csep.get("pass_rate") or {}).get(k))
        if not n or rate is None or not math.isfinite(rate):
            cells.append("<td class='num'>—</td>")
        else:
            cells.append(f"<td class='num' title='pass rate {rate:.2f}'>{round(rate * n)}/{n}</td>")
    return "".join(cells)


def _csep_note(forecasters: dict[str, dict]) -> str:
    runs = [(f.get("csep") or {}) for f in forecasters.values() if (f or {}).get("csep")]
    done = [c for c in runs if "pass_rate" in c]
    if not runs:
        return ""
    if not done:
        return f" CSEP tests not run: {_esc(runs[0].get('not_run', '?'))}."
    c = done[0]
    return (f" <b>CSEP</b>: pyCSEP's number (N), magnitude (M), spatial (S) and pseudo-likelihood (PL) tests over "
            f"{c.get('n_horizons')} consecutive horizons of {c.get('horizon_days', math.nan):g} days of the held-out "
            f"period, each against {c.get('n_catalogs')} catalogs the forecaster simulates given every event before "
            "the horizon (the Poisson model ignores it; the ETAS fit's cascades; the VAE's windows chained from the "
            f"preceding window, docs/methods/forecast.md), cells of {c.get('cell_km', math.nan):g} km; a cell gives "
            "the horizons that pass at the 0.05 level over those with a valid test (a horizon without events has "
            "no M, S or PL test). With a few horizons a pass rate is coarse: one horizon of six is 0.17.")


def _num(x: float, signed: bool = False) -> str:
    if not np.isfinite(x):
        return "<td class='num'>—</td>"
    return f"<td class='num'>{x:+.3f}</td>" if signed else f"<td class='num'>{x:.3f}</td>"


def _label(name: str, entry: dict) -> str:
    if entry.get("label"):
        return str(entry["label"])
    return f"VAE setting {name[len(VAE_PREFIX):]}" if name.startswith(VAE_PREFIX) else NAMES.get(name, name)


def forecast_html(scores: dict[str, Any] | None, *, vae_id: str | None = None, heading: str = "h2") -> str:
    """HTML fragment: the table of every forecaster's scores, gaps and flags, and a note on what they mean.
    ``vae_id``: the page's own VAE setting, whose row (``vae:<vae_id>``) is highlighted."""
    if not scores:
        return ""
    forecasters = scores.get("forecasters") or {}
    ref = scores.get("reference", "etas")
    ref_label = "ETAS" if ref == "etas" else ref
    gap = gaps(scores)
    head = ("<tr><th>forecaster</th>" + "".join(f"<th>{SCORE_LABEL[k]}</th>" for k in SCORES)
            + "".join(f"<th class='ref'>{k.upper()} − {_esc(ref_label)}</th>" if i == 0 else f"<th>{k.upper()} − {_esc(ref_label)}</th>"
                      for i, k in enumerate(SCORES))
            + "".join(f"<th>CSEP {t}</th>" for t in CSEP_TESTS.values())
            + "<th>flags</th></tr>")
    rows = [head]
    notes = []
    for name in _ordered(forecasters):
        entry = forecasters[name] or {}
        own = vae_id is not None and name == f"{VAE_PREFIX}{vae_id}"
        cells = [f"<td class='txt'>{_esc(_label(name, entry))}{' (this page)' if own else ''}</td>"]
        cells += [_num(_value(entry, k)) for k in SCORES]
        # the reference's gaps to itself are no information: a dash
        cells += [_num(math.nan if name == ref else gap[name][k], signed=True).replace(
                  "<td class='", "<td class='ref " if i == 0 else "<td class='", 1) for i, k in enumerate(SCORES)]
        cells.append(_csep_cells(entry))
        found = flags(entry)
        cells.append("<td class='txt'>" + " ".join(f"<span class='skill poor'>{_esc(f)}</span>" for f in found) + "</td>")
        rows.append(f"<tr{' class=best' if own else ''}>{''.join(cells)}</tr>")
        if entry.get("problems"):
            notes.append(f"{_esc(_label(name, entry))}: " + _esc("; ".join(entry["problems"])))
        not_run = (entry.get("csep") or {}).get("not_run")
        if not_run and not any(k in entry for k in ("not_forecaster", "not_scored", "error")):
            notes.append(f"{_esc(_label(name, entry))}: CSEP tests not run: {_esc(not_run)}")
    period = scores.get("period") or {}
    test, train, aux = (period.get(f"{k}_days") for k in ("test", "training", "auxiliary"))
    utc = [str(t)[:16].replace("T", " ") for t in period.get("test_utc") or []]
    when = (f"the held-out period, days {test[0]:g} to {test[1]:g}" + (f" ({utc[0]} to {utc[1]} UTC)" if len(utc) == 2 else "")
            if test else "the held-out period")
    fitted = (f"fitted to the training period (days {train[0]:g} to {train[1]:g}"
              + (f", the auxiliary period days {aux[0]:g} to {aux[1]:g} as history only" if aux and aux[1] > aux[0] else "")
              + ")" if train else "fitted to the training period")
    etas = forecasters.get("etas") or {}
    model = (f" The ETAS fit is the {etas['model']} model (taper {etas.get('taper')}, {etas.get('background')} "
             f"background), branching ratio {etas['branching_ratio']:.3g}, from {etas.get('n_training_events')} "
             "training events." if "model" in etas and _as_number(etas.get("branching_ratio")) is not None else "")
    vae = ("" if not any(k.startswith(VAE_PREFIX) for k in forecasters) else
           " A VAE setting is scored by its decoder, window after window of its L events, each event given the "
           "earlier ones, z the posterior mean of the window before (docs/methods/forecast.md); its TLL, SLL and "
           "MLL are in the same units. A setting whose model gives no event's density given the past is marked "
           "<i>not a forecaster</i>.")
    return "\n".join([
        f"<{heading}>Forecast of the held-out period</{heading}>",
        f"<p class='note'>Each forecaster gives the {scores.get('n_events', '?')} events above Mc = "
        f"{scores.get('mc', float('nan')):g} of {_esc(when)} a likelihood, event by event, every earlier event "
        "of the catalog as history (the EarthquakeNPP protocol; docs/methods/real-catalogs.md). Per event, in nats: "
        "<b>TLL</b> the log of the rate of events at the event's time minus the expected number of events over "
        "the period per event (log 1/day), <b>SLL</b> the log density of its location (log 1/km²), <b>MLL</b> the "
        "log density of its magnitude; higher is better. The Poisson and ETAS models are "
        f"{_esc(fitted)}; the Poisson model has the training period's rate, uniform in the region (its SLL is −log "
        f"of the area, {scores.get('area_km2', float('nan')):,.0f} km²). Gaps are the forecaster's score minus the "
        f"ETAS fit's: positive is better than ETAS.{_esc(model)} A fit marked <i>not usable</i> (a parameter at "
        f"a bound, or supercritical) is scored all the same: read its scores with care.{vae}{_csep_note(forecasters)}</p>",
        f"<table class='metrics'>{''.join(rows)}</table>",
        ("<p class='note'>" + "<br>".join(notes) + "</p>") if notes else "",
    ])


def forecast_columns(scores: dict[str, Any] | None, *, vae_id: str | None = None) -> dict[str, Any]:
    """Summary columns of one dataset x VAE setting: forecast_n_events, forecast_{tll,sll,mll}_{name},
    forecast_{score}_gap_{name} (name - ETAS) and the CSEP pass rates forecast_csep_{n,m,s,pl}_{name} for
    Poisson, the ETAS fit and the row's own VAE setting (``vae:<vae_id>``, named ``vae``),
    forecast_etas_usable and forecast_etas_at_bound."""
    if not scores:
        return {}
    forecasters = scores.get("forecasters") or {}
    gap = gaps(scores)
    names = {k: k for k in FIRST if k in forecasters}
    if vae_id is not None and f"{VAE_PREFIX}{vae_id}" in forecasters:
        names[f"{VAE_PREFIX}{vae_id}"] = "vae"
    out: dict[str, Any] = {"forecast_n_events": scores.get("n_events", math.nan)}
    for key, col in names.items():
        for k in SCORES:
            out[f"forecast_{k}_{col}"] = _value(forecasters[key], k)
    for key, col in names.items():
        if key != scores.get("reference", "etas"):
            for k in SCORES:
                out[f"forecast_{k}_gap_{col}"] = gap[key][k]
    for key, col in names.items():
        for test, rate in csep_rates(forecasters[key]).items():
            out[f"forecast_csep_{CSEP_TESTS[test].lower()}_{col}"] = rate
    etas = forecasters.get("etas") or {}
    out["forecast_etas_usable"] = bool(etas.get("usable", False))
    out["forecast_etas_at_bound"] = " ".join(etas.get("at_bound") or []) or np.nan
    return out

