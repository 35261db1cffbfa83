"""HTML building blocks shared by the model pages and the summary: style, cells, small tables."""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .. import __version__
from ..evaluate import FLOOR_SKILL, NAIVE_SKILL
from ..fileio import to_jsonable

# The verdict's thresholds (evaluate.classify), so that table colours and verdict words agree.
SKILL_GOOD = FLOOR_SKILL
SKILL_POOR = NAIVE_SKILL

GROUP_ORDER = ("magnitudes", "time", "aftershocks", "space", "whole windows", "CSEP", "ETAS fit")

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #222;
       max-width: 1240px; margin: 0 auto; padding: 0 24px 48px; line-height: 1.45; }
h1 { font-size: 1.55em; margin: 24px 0 4px; }
h2 { font-size: 1.2em; margin-top: 32px; border-bottom: 2px solid #ddd; padding-bottom: 3px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
.sub { color: #666; margin: 0 0 16px; font-size: 0.95em; word-break: break-all; }
.verdict { display: flex; gap: 20px; align-items: center; background: #f6f7f9; border: 1px solid #dde;
           border-radius: 8px; padding: 14px 18px; }
.score { text-align: center; min-width: 120px; border-radius: 8px; padding: 8px 10px; }
.score .num { font-size: 2em; font-weight: 700; line-height: 1.1; }
.score .lbl { font-size: 0.8em; color: #444; }
table { border-collapse: collapse; font-size: 0.88em; margin: 6px 0 12px; }
th, td { border: 1px solid #d8d8d8; padding: 3px 7px; }
th { background: #f0f1f4; text-align: center; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.txt { text-align: left; }
td.verdict-cell { max-width: 560px; font-size: 0.95em; }
details { margin: 4px 0 10px; }
summary { cursor: pointer; color: #1f5fa8; }
tr.group td { background: #e9edf5; font-weight: 600; text-align: left; }
tr.best td { background: #fff8d6; }
tr.best td.skill, tr.best td.score-cell { background: inherit; }
th.ref, td.ref { border-left: 2px solid #aaa; }
.err { color: #777; font-size: 0.9em; }
.desc { color: #777; font-size: 0.85em; }
.skill { border-radius: 3px; }
td.skill, span.skill { font-weight: 600; text-align: right; }
span.skill { padding: 1px 6px; font-size: 0.88em; white-space: nowrap; }
.good { background: #c8e6c0 !important; color: #1b4d14; }
.partial { background: #fbe3a4 !important; color: #6b4a00; }
.poor { background: #f6c2bd !important; color: #7a1410; }
.na { background: #eeeeee !important; color: #777; }
.kv th { text-align: left; background: #f6f7f9; font-weight: 500; }
.warn { background: #fff4e0; border: 1px solid #e8b45a; border-left: 6px solid #d98a00; border-radius: 6px;
        padding: 8px 14px; margin: 10px 0; }
.warn li { margin: 2px 0; }
.scroll { overflow-x: auto; max-width: 100%; }
h4 { font-size: 0.95em; margin: 12px 0 4px; }
.grid2 { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { color: #444; font-size: 0.9em; margin-top: 4px; max-width: 1000px; }
.note { color: #555; font-size: 0.92em; max-width: 1000px; }
.missing { color: #a33; }
a { color: #1f5fa8; }
footer { margin-top: 40px; color: #888; font-size: 0.8em; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _as_number(value: Any) -> float | None:
    """A finite float, or None for anything that is not a number (bools excluded)."""
    if isinstance(value, (bool, np.bool_)) or _is_missing(value):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt(value: Any, digits: int = 3) -> str:
    """Short text for a table cell: NaN/None as a dash, floats to ``digits`` significant digits."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(fmt(v, digits) for v in value)
    if isinstance(value, dict):
        return json.dumps(to_jsonable(value))
    if _is_missing(value):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}".replace(",", " ") if abs(int(value)) >= 10000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if not math.isfinite(x):
            return "∞" if x > 0 else ("−∞" if x < 0 else "—")
        if x == 0:
            return "0"
        if x == int(x) and abs(x) < 1e6:
            return str(int(x))
        if abs(x) >= 1e5 or abs(x) < 1e-3:
            return f"{x:.{digits - 1}e}"
        if abs(x) >= 10 ** (digits - 1):
            return f"{x:.0f}"
        return f"{x:.{digits}g}"
    return str(value)


def skill_class(skill: Any) -> str:
    """'good' (≥ 0.75, at the floor), 'partial', 'poor' (≤ 0.25, no better than Poisson) or 'na'."""
    x = _as_number(skill)
    if x is None:
        return "na"
    if x >= SKILL_GOOD:
        return "good"
    if x > SKILL_POOR:
        return "partial"
    return "poor"


def _cell(value: Any) -> str:
    if _as_number(value) is not None or _is_missing(value):
        return f"<td class='num'>{_esc(fmt(value))}</td>"
    return f"<td class='txt'>{_esc(fmt(value))}</td>"


def _skill_cell(value: Any, extra_class: str = "") -> str:
    cls = skill_class(value)
    return f"<td class='num skill {cls} {extra_class}'>{_esc(fmt(value, 2))}</td>"


def _image_uri(path: str | os.PathLike) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"<footer>Generated by etasvae {_esc(__version__)}. Self-contained page: figures are embedded.</footer>\n"
        "</body>\n</html>\n"
    )


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, value) pairs; lists stay values."""
    if isinstance(obj, dict):
        out: list[tuple[str, Any]] = []
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            out.extend(_flatten(v, key) if isinstance(v, dict) and v else [(key, v)])
        return out
    return [(prefix, obj)]


def _kv_table(items: Iterable[tuple[str, Any]], key_header: str = "", value_header: str = "") -> str:
    rows = []
    for key, value in items:
        rows.append(f"<tr><th>{_esc(key)}</th>{_cell(value)}</tr>")
    if not rows:
        return "<p class='note'>none recorded</p>"
    head = (f"<tr><th>{_esc(key_header)}</th><th>{_esc(value_header)}</th></tr>" if key_header or value_header else "")
    return f"<table class='kv'>{head}{''.join(rows)}</table>"


def _score_badge(score: Any, label: str = "overall score", separated: bool = False) -> str:
    """The score in its colour; ``separated`` (a whole-window test tells S from H): red whatever the score."""
    cls = "poor" if separated else skill_class(score)
    label = f"{label}: separated by a whole-window test" if separated else label
    return (f"<div class='score {cls}'><div class='num'>{_esc(fmt(score, 2))}</div>"
            f"<div class='lbl'>{_esc(label)}</div></div>")


def warnings_html(warnings: Iterable[str] | None) -> str:
    """A visible box of warnings (small sets and what they mean for each test); empty without any."""
    items = [w for w in (warnings or []) if w]
    if not items:
        return ""
    return ("<div class='warn'><b>Read with care.</b><ul>" + "".join(f"<li>{_esc(w)}</li>" for w in items)
            + "</ul></div>")


def _group_order(groups: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(groups))
    known = [g for g in GROUP_ORDER if g in present]
    return known + [g for g in present if g not in GROUP_ORDER]
