"""The evaluate stage: comparing sets of windows, i.e. what "good" means (docs/design.md, *Evaluation*).

Sets: S synthetic (the VAE), H held-out ETAS (the reference), A the floor set (the noise floor: a second
sample of the same process; reference catalogs simulated for the evaluation only when there are any, see
``reference``, else the training windows), P the naive baseline (Poisson times at A's rate, no clustering,
magnitudes from a normal distribution: no Gutenberg–Richter tail).
Every statistic is a distance d_X of set X to H, for X in S, A, P, and

    skill = (d_P - d_S) / (d_P - d_A)

is 1 when S is as close to H as ETAS itself, 0 when it is no closer than a process without aftershocks.
Skill is NaN for a statistic that does not separate P from H beyond sampling noise (see
:func:`compare_sets`).

Modules: ``reference`` simulates and cuts the reference catalogs; ``sets`` builds S, H, A, P from a model's files; ``stacking`` holds a window set as flat arrays
(and each window's largest event and the events after it); ``summaries`` describes each window;
``baseline`` draws P; ``statistics`` and ``window_tests`` compute one :class:`Comparison` per statistic;
``compare`` assembles them into the comparison table with the skill; ``verdict`` words it;
``figures`` draws the comparison figures; ``run`` is the stage end to end (table, figures, metrics.json).
"""

from .baseline import poisson_baseline
from .compare import GROUPS, INFORMATIVE_RATIO, MAGNITUDE_STATISTICS, add_skill, compare_sets
from .run import evaluate_model, evaluation_summary
from .sets import catalog_windows, evaluation_sets, split_windows
from .stacking import Stacked, stack_windows, window_duration
from .statistics import Comparison
from .summaries import SUMMARY_FEATURES, window_summaries
from .verdict import FLOOR_SKILL, NAIVE_SKILL, classify, group_scores, overall_score, verdict, weakest_group

__all__ = [
    "FLOOR_SKILL",
    "GROUPS",
    "INFORMATIVE_RATIO",
    "MAGNITUDE_STATISTICS",
    "NAIVE_SKILL",
    "SUMMARY_FEATURES",
    "Comparison",
    "Stacked",
    "add_skill",
    "classify",
    "compare_sets",
    "catalog_windows",
    "evaluate_model",
    "evaluation_summary",
    "evaluation_sets",
    "overall_score",
    "group_scores",
    "weakest_group",
    "poisson_baseline",
    "split_windows",
    "stack_windows",
    "verdict",
    "window_duration",
    "window_summaries",
]
