"""Reports: comparison figures, the self-contained model page, the run summary and JSON output.

Inputs are small but real: window sets drawn from a Poisson process and from a clustered (mainshock +
Omori aftershocks) process, and metrics tables with the columns etasvae.evaluate.compare_sets writes,
including NaNs and columns the report does not know.
"""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etasvae.report import (
    plot_comparison_figures,
    render_model_page,
    render_summary,
    skill_class,
    summary_table,
    to_jsonable,
    write_json,
)

MC = 2.5
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = {"magnitude_frequency", "interevent_times", "cumulative_counts", "omori_decay"}


# ----------------------------------------------------------------------------------- inputs


def gr_magnitudes(n: int, rng: np.random.Generator, b: float = 1.0) -> np.ndarray:
    return MC + rng.exponential(1.0 / (b * np.log(10)), n)


def poisson_window(rng: np.random.Generator, n: int = 64, rate: float = 5.0) -> pd.DataFrame:
    """n events of a homogeneous Poisson process (rate per day), uniform in a 100 km square."""
    t = np.cumsum(rng.exponential(1.0 / rate, n))
    t -= t[0]
    return pd.DataFrame({"time": t, "magnitude": gr_magnitudes(n, rng),
                         "x": rng.uniform(0, 100, n), "y": rng.uniform(0, 100, n)})


def clustered_window(rng: np.random.Generator, n: int = 64, c: float = 0.01, p: float = 1.2) -> pd.DataFrame:
    """A few mainshocks, each followed by Omori-Utsu aftershocks (inverse CDF of (t+c)^-p), n events in all."""
    n_main = 3
    starts = np.sort(rng.uniform(0, 20, n_main))
    per = rng.multinomial(n - n_main, np.full(n_main, 1 / n_main))
    times, mags, xs, ys = [starts], [MC + 1.5 + rng.exponential(0.4, n_main)], [], []
    centres = rng.uniform(10, 90, (n_main, 2))
    xs.append(centres[:, 0])
    ys.append(centres[:, 1])
    for i, k in enumerate(per):
        u = rng.uniform(0, 1 - (1 + 60.0 / c) ** (1 - p), size=k)  # truncated at 60 days
        dt = c * ((1 - u) ** (1 / (1 - p)) - 1)
        times.append(starts[i] + dt)
        mags.append(np.minimum(gr_magnitudes(k, rng), mags[0][i] - 0.1))
        xs.append(centres[i, 0] + rng.normal(0, 2, k))
        ys.append(centres[i, 1] + rng.normal(0, 2, k))
    df = pd.DataFrame({"time": np.concatenate(times), "magnitude": np.concatenate(mags),
                       "x": np.concatenate(xs), "y": np.concatenate(ys)}).sort_values("time", ignore_index=True)
    df["time"] -= df["time"].iloc[0]
    return df


@pytest.fixture(scope="module")
def window_sets() -> dict[str, list[pd.DataFrame]]:
    rng = np.random.default_rng(5)
    return {
        "S": [clustered_window(rng, p=1.5) for _ in range(30)],
        "H": [clustered_window(rng) for _ in range(30)],
        "A": [clustered_window(rng) for _ in range(60)],
        "P": [poisson_window(rng) for _ in range(30)],
    }


@pytest.fixture(scope="module")
def figures(window_sets, tmp_path_factory) -> dict[str, str]:
    outdir = tmp_path_factory.mktemp("figures")
    return plot_comparison_figures(window_sets, mc=MC, outdir=outdir, title="cfgA / vae1")


def metrics_table() -> pd.DataFrame:
    """A compare_sets-like table: one row per statistic, NaNs where a statistic is undefined, an extra
    p-value column and a group the report does not know."""
    rows = [
        ("b-value", "magnitudes", 0.98, 1.01, 1.00, 1.02, 0.03, 0.01, 0.01, np.nan),
        ("magnitude KS", "magnitudes", 0.05, np.nan, np.nan, np.nan, 0.05, 0.02, 0.04, -0.5),
        ("log inter-event time KS", "time", np.nan, np.nan, np.nan, np.nan, 0.10, 0.02, 0.40, 0.7894736842),
        ("coefficient of variation", "time", 2.1, 2.3, 2.25, 1.0, 0.2, 0.05, 1.3, 0.88),
        ("Fano factor", "time", 3.0, 4.0, 3.9, 1.0, 1.0, 0.1, 3.0, 0.6896551724),
        ("Omori p", "aftershocks", 1.3, 1.1, 1.12, np.nan, 0.2, 0.02, np.nan, np.nan),
        ("Båth gap <ΔM>", "aftershocks", 1.4, 1.2, 1.2, 0.3, 0.2, 0.0, 0.9, 0.7777777778),
        ("MMD", "whole windows", np.nan, np.nan, np.nan, np.nan, 0.08, 0.01, 0.09, 0.125),
        ("C2ST accuracy", "whole windows", 0.71, 0.5, 0.52, 0.9, 0.21, 0.02, 0.40, 0.5),
        ("number test quantile", "CSEP", 0.4, np.nan, 0.45, 0.01, 0.1, 0.05, 0.49, 0.8863636364),
        ("reconstruction MSE", "VAE health", 0.3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan),
    ]
    cols = ["statistic", "group", "value_S", "value_H", "value_A", "value_P", "d_S", "d_A", "d_P", "skill"]
    df = pd.DataFrame(rows, columns=cols)
    df.insert(2, "distance", ["|b - b_H|", "KS distance", "KS distance", "|CV - CV_H|", "|log10 F - log10 F_H|",
                              "|p - p_H|", "|gap - gap_H|", "MMD²", "|accuracy - 0.5|", "KS", np.nan])
    df["err_S"] = [0.021, np.nan, np.nan, np.nan, np.nan, 0.05, np.nan, np.nan, np.nan, np.nan, np.nan]
    df["p_S"] = [0.4] + [np.nan] * 6 + [0.01, 0.002, np.nan, np.nan]
    df["informative"] = df["skill"].notna()
    df["extra_column"] = "free text"
    return df


class Cells(HTMLParser):
    """Table rows of an HTML page as lists of (td/th classes, text)."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[tuple[str, str]]] = []
        self.row_classes: list[str] = []
        self._cell: list | None = None
        self.img_src: list[str] = []
        self.hrefs: list[str] = []
        self.links: list[tuple[str, str]] = []
        self._a: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            self.rows.append([])
            self.row_classes.append(a.get("class") or "")
        elif tag in ("td", "th"):
            self._cell = [a.get("class") or "", ""]
        elif tag == "br" and self._cell is not None:
            self._cell[1] += " "
        elif tag == "img":
            self.img_src.append(a.get("src", ""))
        elif tag == "a":
            self.hrefs.append(a.get("href", ""))
            self._a = a.get("href", "")
        for name in ("href", "src"):
            if name in a and tag not in ("a", "img"):
                self.links.append((tag, a[name]))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((self._cell[0], self._cell[1].strip()))
            self._cell = None
        elif tag == "a":
            self._a = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def parse(path: Path) -> Cells:
    parser = Cells()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# ----------------------------------------------------------------------------------- JSON


def test_write_json_converts_numpy_and_nan(tmp_path):
    obj = {"a": np.float64(np.nan), "b": np.int64(3), "c": np.array([1.5, np.inf]), "d": (np.float32(0.5), None),
           "e": {"nested": np.bool_(True)}, "f": Path("x/y.png"), 7: pd.Series({"s": 1.0})}
    path = tmp_path / "out" / "m.json"
    write_json(path, obj)
    back = json.loads(path.read_text())
    assert back == {"a": None, "b": 3, "c": [1.5, None], "d": [0.5, None], "e": {"nested": True},
                    "f": "x/y.png", "7": {"s": 1.0}}
    assert "NaN" not in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]  # no temporary file left behind
    assert to_jsonable(metrics_table())[0]["skill"] is None


# ----------------------------------------------------------------------------------- figures


def test_figures_are_valid_pngs(figures):
    from matplotlib.image import imread

    assert set(figures) == FIGURES
    for name, path in figures.items():
        path = Path(path)
        assert path.name == f"{name}.png" and path.read_bytes()[:8] == PNG_MAGIC
        image = imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 500, name
        assert image[..., :3].std() > 0.05, f"{name} is blank"


def test_figures_survive_missing_and_degenerate_sets(tmp_path):
    rng = np.random.default_rng(1)
    empty = pd.DataFrame({"time": [], "magnitude": [], "x": [], "y": []})
    one = poisson_window(rng, n=1)
    sets = {"H": [poisson_window(rng), empty, one], "P": [empty], "S": [one]}
    out = plot_comparison_figures(sets, mc=MC, outdir=tmp_path / "f", title="degenerate")
    assert all(Path(p).read_bytes()[:8] == PNG_MAGIC for p in out.values())
    with pytest.raises(ValueError, match="unknown window sets"):
        plot_comparison_figures({"X": []}, mc=MC, outdir=tmp_path / "g", title="")


# ----------------------------------------------------------------------------------- model page


@pytest.mark.parametrize("skill, expected", [
    (0.75, "good"), (1.7, "good"), (0.7499, "partial"), (0.2501, "partial"), (0.25, "poor"), (-3.0, "poor"),
    (np.nan, "na"), (None, "na"), (np.inf, "na"), ("n/a", "na"), (np.float32(0.9), "good"),
])
def test_skill_class(skill, expected):
    assert skill_class(skill) == expected


def render_page(tmp_path: Path, figures: dict[str, str], metrics: pd.DataFrame) -> Path:
    images = {**figures, "tsne": str(tmp_path / "absent.png")}
    images["loss_curves"] = next(iter(figures.values()))  # any real PNG stands in for the training curves
    path = tmp_path / "reports" / "cfgA" / "vae1.html"
    render_model_page(
        path,
        config_id="cfgA",
        vae_id="vae1",
        settings={"representation": "event", "latent_dim": 8, "hidden": [256, 128], "beta": 0.1},
        metrics=metrics,
        summary={"verdict": "The VAE reproduces magnitudes but not the <aftershock> decay.", "overall_score": 0.42,
                 "n_windows": {"S": 30, "H": 30}, "health": {"recon": 0.31, "kl": np.nan},
                 "statistics": {}, "figures": figures},
        latent_metrics={"n_active": 3, "kl_per_unit": [0.9, 0.01, np.nan, 1.2], "knn": {"accuracy": 0.77},
                        "units": [{"unit": i, "activity": a, "active": a > 0.01} for i, a in enumerate([0.5, 0.001, 0.2, 0.3])]},
        clipping={"magnitude_below_mc": 4, "time": {"negative_dt": 12}},
        images=images,
    )
    return path


def test_model_page_is_self_contained_and_complete(tmp_path, figures):
    metrics = metrics_table()
    path = render_page(tmp_path, figures, metrics)
    assert [p.name for p in path.parent.iterdir()] == ["vae1.html"]  # one file, no temporary left
    text = path.read_text(encoding="utf-8")
    page = parse(path)

    assert text.count("data:image/png;base64,") == 5  # four comparison figures + the loss-curve stand-in
    assert all(src.startswith("data:image/png;base64,") for src in page.img_src)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text
    assert "Figure not found" in text  # the absent t-SNE is reported, not silently dropped
    # The verdict, escaped; the score; every statistic and group.
    assert "The VAE reproduces magnitudes but not the &lt;aftershock&gt; decay." in text
    assert "0.42" in text
    rows = {r[0][1].split(" d = ")[0]: r for r in page.rows if r and r[0][0] == "txt"}
    for name in metrics["statistic"]:
        assert name in rows, name
    for group in ("magnitudes", "time", "aftershocks", "whole windows", "CSEP", "VAE health"):
        assert any(r and r[0][1].startswith(group) for r in page.rows), group
    # Skill cells: the last cell whose class names a skill class, coloured by the thresholds.
    for _, m in metrics.iterrows():
        skill_cells = [c for c in rows[m["statistic"]] if "skill" in c[0].split()]
        assert len(skill_cells) == 1
        assert skill_class(m["skill"]) in skill_cells[0][0].split(), m["statistic"]
        assert skill_cells[0][1] == ("—" if math.isnan(m["skill"]) else f"{m['skill']:.2g}")
    # Standard errors next to values, the distance under the name, unknown columns with their own name.
    assert "0.98 <span class='err'>± 0.021</span>" in text
    assert rows["Fano factor"][0][1] == "Fano factor d = |log10 F - log10 F_H|"
    assert "extra_column" in text and "free text" in text and "p(S)" in text
    # VAE health (held-out and latent) and clipping rendered.
    for word in ("n_active", "kl_per_unit", "knn.accuracy", "units.activity", "units.active", "health",
                 "magnitude_below_mc", "time.negative_dt", "256, 128", "recon"):
        assert word in text, word


def test_model_page_without_group_column(tmp_path, figures):
    metrics = metrics_table().drop(columns=["group", "value_H", "distance", "err_S"]).assign(note="a note")
    path = render_page(tmp_path, {"magnitude_frequency": figures["magnitude_frequency"]}, metrics)
    text = path.read_text(encoding="utf-8")
    assert "a note" in text and ">other" in text


def test_model_page_from_a_real_comparison(tmp_path, window_sets, figures):
    """The table etasvae.evaluate.compare_sets writes, on the clustered and Poisson test windows."""
    from etasvae.evaluate import compare_sets, overall_score, verdict

    s = window_sets
    metrics = compare_sets(s["S"], s["H"], s["A"], s["P"], mc=MC, rng=np.random.default_rng(0), n_permutations=20)
    path = render_page(tmp_path, figures, metrics)
    text = path.read_text(encoding="utf-8")
    for name in metrics["statistic"]:
        assert f">{name}<" in text, name
    page = parse(path)
    cells = [c for row in page.rows for c in row if "skill" in c[0].split()]
    assert [next(k for k in ("good", "partial", "poor", "na") if k in c[0].split()) for c in cells] == [
        skill_class(x) for x in metrics["skill"]]
    assert np.isfinite(overall_score(metrics)) and verdict(metrics)


# ----------------------------------------------------------------------------------- summary


def fake_summary(cfg: str, vae: str, score: float, rng: np.random.Generator) -> dict:
    metrics = metrics_table()
    metrics["skill"] = np.clip(score + rng.normal(0, 0.2, len(metrics)), -1, 1.2)
    metrics.loc[0, "skill"] = np.nan
    return {"config_id": cfg, "vae_id": vae, "overall_score": score, "verdict": f"Verdict for {vae}: score {score:.2f}. Details follow.",
            "statistics": json.loads(json.dumps(to_jsonable(metrics.set_index("statistic").to_dict(orient="index"))))}


ETAS = {"K0.1": {"mu": 5.0, "K": 0.1, "branching_ratio": 0.29}, "K0.3": {"mu": 5.0, "K": 0.3, "branching_ratio": 0.86}}
VAES = {
    "event_beta1": {"representation": "event", "latent_dim": 8, "hidden": [256, 128], "beta": 1.0, "patience": 15},
    "event_beta0.1": {"representation": "event", "latent_dim": 8, "hidden": [256, 128], "beta": 0.1, "patience": 15},
    "event_beta0.01": {"representation": "event", "latent_dim": 16, "hidden": [256, 128], "beta": 0.01, "patience": 15},
}
SCORES = {
    ("K0.1", "event_beta1"): 0.30, ("K0.1", "event_beta0.1"): 0.85, ("K0.1", "event_beta0.01"): 0.55,
    ("K0.3", "event_beta1"): 0.60, ("K0.3", "event_beta0.1"): np.nan, ("K0.3", "event_beta0.01"): 0.10,
    ("pooled", "event_beta1"): 0.20, ("pooled", "event_beta0.1"): 0.20, ("pooled", "event_beta0.01"): 0.90,
}


def test_equal_scores_rank_by_the_weakest_group():
    """Two settings at the median's ceiling: the one whose weakest group fails ranks second; equal in both,
    they share a rank."""
    rng = np.random.default_rng(0)
    summaries = [fake_summary("K0.1", v, 1.0, rng) for v in VAES]
    for s, weakest, overall in zip(summaries, (0.4, 0.9, 0.9), (0.998, 0.996, 0.996)):
        s["group_scores"] = {"time": 1.0, "ETAS fit": weakest}
        s["overall_score"] = overall   # equal at the page's two decimals
    table = summary_table(summaries, etas=ETAS, vaes=VAES)
    rank = dict(zip(table["vae_id"], table["rank"]))
    assert rank == {"event_beta0.1": 1, "event_beta0.01": 1, "event_beta1": 3}


def test_summary_ranks_links_and_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    summaries = [fake_summary(c, v, s, rng) for (c, v), s in SCORES.items()]
    html_path, csv_path = tmp_path / "reports" / "summary.html", tmp_path / "reports" / "summary.csv"
    table = render_summary(html_path, csv_path, summaries, etas=ETAS, vaes=VAES)

    assert len(table) == len(SCORES)
    rank = {(r.config_id, r.vae_id): r.rank for r in table.itertuples()}
    assert rank[("K0.1", "event_beta0.1")] == 1 and rank[("K0.1", "event_beta0.01")] == 2
    assert rank[("K0.1", "event_beta1")] == 3
    assert rank[("K0.3", "event_beta1")] == 1 and rank[("K0.3", "event_beta0.1")] == 3  # missing score last
    assert rank[("pooled", "event_beta0.01")] == 1
    assert rank[("pooled", "event_beta1")] == rank[("pooled", "event_beta0.1")] == 2  # ties share a rank
    assert {"etas_K", "etas_branching_ratio", "vae_beta", "vae_hidden", "vae_latent_dim", "verdict",
            "C2ST accuracy.skill", "C2ST accuracy.value_S", "overall_score"} <= set(table.columns)
    assert table.loc[0, "vae_hidden"] == "256x128"

    back = pd.read_csv(csv_path)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)

    text = html_path.read_text(encoding="utf-8")
    page = parse(html_path)
    assert text.count("data:image/png;base64,") == 1  # beta and latent_dim vary: the score figure
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    links = [h for h in page.hrefs if h.endswith(".html")]
    # Per config, best first: the links come in rank order.
    assert links[:3] == ["K0.1/event_beta0.1.html", "K0.1/event_beta0.01.html", "K0.1/event_beta1.html"]
    assert links[3] == "K0.3/event_beta1.html" and links[5] == "K0.3/event_beta0.1.html"
    assert links[6] == "pooled/event_beta0.01.html"
    best_rows = [r for r, cls in zip(page.rows, page.row_classes) if cls == "best"]
    assert [r[1][1] for r in best_rows] == ["event_beta0.1", "event_beta1", "event_beta0.01"]  # one per config
    assert "summary.csv" in page.hrefs
    # The ranking shows the verdict's first sentence; the CSV keeps the whole paragraph.
    assert [r[-1][1] for r in best_rows][0] == "Verdict for event_beta0.1: score 0.85."
    assert back["verdict"].str.endswith("Details follow.").all()
    for word in ("overall score", "fine-tun", "β", "latent size", "representation", "(d<sub>P</sub>"):
        assert word.lower() in text.lower(), word


def test_summary_without_varied_settings_has_no_figure(tmp_path):
    rng = np.random.default_rng(1)
    summaries = [fake_summary("K0.1", "event_beta1", 0.5, rng)]
    table = render_summary(tmp_path / "s.html", tmp_path / "s.csv", summaries, etas=ETAS, vaes=VAES)
    assert table["rank"].tolist() == [1]
    assert "data:image/png;base64," not in (tmp_path / "s.html").read_text(encoding="utf-8")
    assert summary_table([], etas={}, vaes={}).empty
