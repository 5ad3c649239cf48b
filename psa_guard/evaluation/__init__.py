"""Evaluation: suites, judges, metrics, the completion cache, reports and plots (``psa-guard eval``).

Judges are logistic-regression heads on frozen all-MiniLM-L6-v2 embeddings, trained by
``scripts/train_judges.py`` on training-side data only and validated on held-out models; suites are
evaluation-only. See ``docs/evaluation.md``.
"""

from __future__ import annotations

from psa_guard.datasets.suites import SuitePrompt, load_suite, suite_names
from psa_guard.evaluation.judges import JudgePanel, Verdict, load_judges
from psa_guard.evaluation.metrics import (
    MeanValue,
    Rate,
    WinRate,
    mip,
    pareto_front,
    rate,
    simplex_grid,
    wilson_interval,
    win_rate,
)

__all__ = [
    "JudgePanel",
    "MeanValue",
    "Rate",
    "SuitePrompt",
    "Verdict",
    "WinRate",
    "load_judges",
    "load_suite",
    "mip",
    "pareto_front",
    "rate",
    "simplex_grid",
    "suite_names",
    "wilson_interval",
    "win_rate",
]
