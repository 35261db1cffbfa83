"""A dataset's generators side by side: the VAE setting's synthetic windows and the ETAS fit of the training
period simulated over the held-out period (etasvae.dataset_simulation), both against the held-out windows H,
with the Poisson baseline P; for the model page (``generators_html``), the summary (``simulated_line``) and
the summary's CSV (``simulated_columns``). A missing simulated set is shown with its reason."""

from __future__ import annotations

from typing import Any

from ..dataset_simulation import LABEL
from .cells import _as_number, _cell, _esc, _group_order, _skill_cell, fmt

HELP = (
    "<p class='note'>A third generator: the ETAS model fitted to the training period (the forecast's fit), "
    "simulated over the held-out period from the catalog's own history (every earlier event), independent "
    "continuations cut into windows exactly as the held-out windows are, as many as the VAE's synthetic set. "
    "Its windows are evaluated against H with the same statistics, classifier, MMD and verdict as the VAE's "
    "(skill against the same floor, the training period, and the same Poisson baseline P). It tells "
    "what the model seismologists use reaches on the same test: a VAE at or above it is as good as ETAS here. "
    "The <i>ETAS fit</i> rows (a refit of each set's windows) are the VAE's only. H and P, and the deterministic "
    "statistics of H, are those of the VAE's table; the randomised ones (classifier, MMD, permutation p-values) "
    "draw their own folds and permutations in each evaluation.</p>"
)


def _overall_cells(doc: dict[str, Any]) -> str:
    separated = doc.get("verdict_class") == "separated"
    score = _skill_cell(doc.get("overall_score"))
    if separated:
        score = score.replace("skill good", "skill poor").replace("skill partial", "skill poor")
    return score + _cell(doc.get("verdict_class"))


def _absent(doc: dict[str, Any] | None) -> str:
    why = (doc or {}).get("reason") or "the simulated set was not computed"
    return f"<p class='missing'><b>{_esc(LABEL)}: no column.</b> {_esc(why)}.</p>"


def generators_html(vae: dict[str, Any], simulated: dict[str, Any] | None, vae_id: str = "") -> str:
    """The side-by-side section of a dataset's model page: overall score, verdict class and windows of the
    VAE setting (``vae``: its metrics.json) and of the ETAS fit simulated (``simulated``: its metrics.json),
    then per statistic H, P, each generator's value and skill; the reason where the simulated set is missing."""
    head = "<h2>Generators side by side: the VAE and the ETAS fit (simulated)</h2>" + HELP
    if not simulated or not simulated.get("available"):
        return head + _absent(simulated)
    names = [f"VAE {vae_id}".strip(), LABEL]
    docs = [vae, simulated]
    n_s = [(d.get("n_windows") or {}).get("S") for d in docs]
    top = ("<table class='generators'><tr><th>generator</th><th>overall score</th><th>verdict class</th>"
           "<th>windows S</th><th>verdict</th></tr>")
    for name, d, n in zip(names, docs, n_s):
        top += (f"<tr><td class='txt'>{_esc(name)}</td>{_overall_cells(d)}{_cell(n)}"
                f"<td class='txt verdict-cell'>{_esc(d.get('verdict') or '')}</td></tr>")
    top += "</table>"
    note = simulated.get("simulation", {}).get("note")
    info = simulated.get("simulation", {})
    facts = (f"<p class='note'>{_esc(LABEL)}: {fmt(info.get('n_windows'))} windows from "
             f"{fmt(info.get('n_continuations'))} simulated held-out periods ({fmt(info.get('n_events'))} events in "
             f"windows, seed {fmt(info.get('seed'))}; fit branching ratio {fmt((info.get('fit') or {}).get('branching_ratio'))})"
             f"{'. ' + _esc(note) if note else ''}.</p>")
    return head + top + facts + _statistics_table(names, docs)


def _statistics_table(names: list[str], docs: list[dict[str, Any]]) -> str:
    stats = [d.get("statistics") or {} for d in docs]
    order: list[str] = list(dict.fromkeys([*stats[0], *stats[1]]))
    groups = {n: (stats[0].get(n) or stats[1].get(n) or {}).get("group") or "other" for n in order}
    head = ("<tr><th>statistic</th><th>H held-out</th><th>P Poisson</th>"
            + "".join(f"<th class='ref'>{_esc(n)}</th><th>skill</th>" for n in names) + "</tr>")
    rows = [head]
    for group in _group_order(groups[n] for n in order):
        rows.append(f"<tr class='group'><td colspan='{3 + 2 * len(names)}'>{_esc(group)}</td></tr>")
        for n in (n for n in order if groups[n] == group):
            ref = stats[0].get(n) or stats[1].get(n) or {}
            cells = [f"<td class='txt'>{_esc(n)}</td>", _cell(_as_number(ref.get("value_H"))),
                     _cell(_as_number(ref.get("value_P")))]
            for s in stats:
                e = s.get(n) or {}
                cells.append(_cell(_as_number(e.get("value_S"))).replace("<td class='", "<td class='ref ", 1))
                cells.append(_skill_cell(e.get("skill")))
            rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table class='metrics'>{''.join(rows)}</table>"


def simulated_columns(simulated: dict[str, Any] | None) -> dict[str, Any]:
    """The summary CSV's columns of a dataset row for the ETAS fit simulated (in the row's representation):
    overall score, verdict class, classifier accuracy, or the reason it is missing."""
    if simulated is None:
        return {}
    if not simulated.get("available"):
        return {"etas_simulated_overall_score": float("nan"), "etas_simulated_verdict_class": "missing",
                "etas_simulated_reason": simulated.get("reason", "")}
    c2st = ((simulated.get("statistics") or {}).get("c2st") or {}).get("value_S")
    return {"etas_simulated_overall_score": simulated.get("overall_score"),
            "etas_simulated_verdict_class": simulated.get("verdict_class"),
            "etas_simulated_c2st": float("nan") if _as_number(c2st) is None else float(c2st)}


def simulated_line(simulated: dict[str, dict[str, Any]] | None) -> str:
    """The summary's line of a dataset: the ETAS fit simulated, per representation, beside the ranking of the
    VAE settings (overall score, verdict class, first sentence of the verdict) or why it is missing."""
    if not simulated:
        return ""
    rows = []
    for rep, doc in simulated.items():
        if not doc.get("available"):
            rows.append(f"<tr><td class='txt'>{_esc(LABEL)}</td><td class='txt'>{_esc(rep)}</td>"
                        f"<td colspan='3' class='txt missing'>no set: {_esc(doc.get('reason', ''))}</td></tr>")
            continue
        verdict = str(doc.get("verdict") or "").split(". ")[0]
        rows.append(f"<tr><td class='txt'>{_esc(LABEL)}</td><td class='txt'>{_esc(rep)}</td>{_overall_cells(doc)}"
                    f"<td class='txt verdict-cell'>{_esc(verdict)}</td></tr>")
    return ("<table class='generators'><tr><th>generator</th><th>representation</th><th>overall score</th>"
            "<th>verdict class</th><th>verdict</th></tr>" + "".join(rows) + "</table>")
