"""The report stage: one self-contained HTML page per config x VAE setting, and the run summary.

``cells`` holds the shared HTML building blocks, ``model_page`` the page of one model, ``summary`` the
ranking of every model. The comparison figures a page shows are drawn by the evaluate stage
(:mod:`etasvae.evaluate.figures`); JSON files are read and written with :mod:`etasvae.fileio`.
"""

from ..evaluate.figures import PLOT_ORDER, SET_LABEL, SET_STYLE, SETS, plot_comparison_figures
from ..fileio import to_jsonable, write_json
from .cells import CSS, GROUP_ORDER, SKILL_GOOD, SKILL_POOR, fmt, skill_class
from .model_page import (
    FIGURE_CAPTION,
    FIGURE_ORDER,
    FIGURE_TITLE,
    METRIC_COLUMNS,
    SKILL_LEGEND,
    health_html,
    metrics_table_html,
    render_model_page,
)
from .summary import render_summary, summary_table

__all__ = [
    "CSS",
    "FIGURE_CAPTION",
    "FIGURE_ORDER",
    "FIGURE_TITLE",
    "GROUP_ORDER",
    "METRIC_COLUMNS",
    "PLOT_ORDER",
    "SETS",
    "SET_LABEL",
    "SET_STYLE",
    "SKILL_GOOD",
    "SKILL_LEGEND",
    "SKILL_POOR",
    "fmt",
    "health_html",
    "metrics_table_html",
    "plot_comparison_figures",
    "render_model_page",
    "render_summary",
    "skill_class",
    "summary_table",
    "to_jsonable",
    "write_json",
]
