"""PNG plots of a report (matplotlib, Agg backend: no display needed).

* ``rates.png``: four panels (unsafe compliance and refusal on harmful suites, over-refusal on
  benign suites, toxicity on all), one bar per (suite, configuration) with its Wilson 95% interval.
* ``win_rates.png`` (two or more configurations): each pair's win rate per suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from psa_guard.core.atomic import atomic_path

__all__ = ["PANELS", "plot_report"]

#: (metric, title, suite kind or None for all)
PANELS = (
    ("unsafe_compliance", "Unsafe compliance (harmful suites, lower is better)", "harmful"),
    ("refusal", "Refusal (harmful suites, higher is safer)", "harmful"),
    ("over_refusal", "Over-refusal (benign suites, lower is better)", "benign"),
    ("toxicity", "Toxicity (all suites, lower is better)", None),
)


def _bars(ax: Any, report: dict[str, Any], metric: str, kind: str | None, title: str) -> None:
    configs = report["configs"]
    suites = [s for s, meta in report["suites"].items() if kind is None or meta["kind"] == kind]
    width = 0.8 / max(1, len(configs))
    for c_index, config in enumerate(configs):
        xs, heights, lows, highs = [], [], [], []
        for s_index, suite in enumerate(suites):
            value = report["results"][config][suite]["metrics"].get(metric)
            if not value or value["rate"] is None:
                continue
            xs.append(s_index + (c_index - (len(configs) - 1) / 2) * width)
            heights.append(100 * value["rate"])
            lows.append(100 * (value["rate"] - value["low"]))
            highs.append(100 * (value["high"] - value["rate"]))
        ax.bar(xs, heights, width, yerr=[lows, highs], capsize=3, label=config)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(len(suites)))
    ax.set_xticklabels(suites, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of replies")
    ax.grid(axis="y", alpha=0.3)
    if not suites:
        ax.text(0.5, 0.5, "no suite of this kind", ha="center", va="center",
                transform=ax.transAxes)


def plot_report(report: dict[str, Any], out: Path) -> list[Path]:
    """Write the report's PNG plots into ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    for ax, (metric, title, kind) in zip(axes.flat, PANELS):
        _bars(ax, report, metric, kind, title)
    axes.flat[0].legend(title="configuration", fontsize=8)
    limit = report["limit"] if report["limit"] is not None else "all"
    fig.suptitle(f"{report['model']}: judged rates with Wilson 95% intervals "
                 f"(limit {limit}, seed {report['seed']}, "
                 f"max_new_tokens {report['settings']['max_new_tokens']})", fontsize=11)
    fig.tight_layout()
    path = out / "rates.png"
    with atomic_path(path) as tmp:  # a killed run never leaves half a PNG
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    paths.append(path)
    if report["win_rates"]:
        pairs = list(report["win_rates"])
        suites = list(report["win_rates"][pairs[0]])
        fig, ax = plt.subplots(figsize=(11, 5))
        width = 0.8 / len(pairs)
        for p_index, pair in enumerate(pairs):
            shown = [(i, report["win_rates"][pair][s]) for i, s in enumerate(suites)
                     if report["win_rates"][pair][s]["rate"] is not None]  # n = 0: no bar
            xs = [i + (p_index - (len(pairs) - 1) / 2) * width for i, _ in shown]
            values = [v for _, v in shown]
            ax.bar(xs, [100 * v["rate"] for v in values], width,
                   yerr=[[100 * (v["rate"] - v["low"]) for v in values],
                         [100 * (v["high"] - v["rate"]) for v in values]],
                   capsize=3, label=pair.replace("_vs_", " vs "))
        ax.axhline(50, color="grey", lw=1, ls="--")
        ax.set_xticks(range(len(suites)))
        ax.set_xticklabels(suites, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("win rate % (ties count half)")
        ax.set_title("Pairwise win rate (good = safe on harmful, answered on benign)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / "win_rates.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        paths.append(path)
    return paths
