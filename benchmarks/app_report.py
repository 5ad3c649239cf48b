"""Tables of the guarded-app evaluation (scripts/app_eval.sh): the app against its goals, and the
ablations, from the runs' ``report.json`` files. Prints markdown for docs/results.md and writes
``summary.json`` beside the runs.

Pooled rates add the counts of the suites they pool (every suite has the same number of prompts,
so no suite weighs more than another); each rate has its Wilson 95 % interval.

Usage: ``python benchmarks/app_report.py [--runs docs/app_eval]``
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from psa_guard.core.atomic import write_atomic
from psa_guard.datasets.support import read_support_items
from psa_guard.evaluation.metrics import wilson_interval
from psa_guard.evaluation.support_rules import score_support_reply

#: (run folder, what it is), in table order.
RUNS = (
    ("raw", "raw model (`base`, no policy)"),
    ("app", "**default app** (`direg` + `general_assistant`)"),
    ("no_category_rules", "app without category rules"),
    ("no_support", "app without the support action"),
    ("no_hard_stage", "app without the hold-back (one check at the end)"),
    ("no_direg", "app without DiReg (`base` + policy)"),
    ("with_arm", "app with Pv-Arm (`full` + policy)"),
    ("with_zo", "app with ZO repair (`zo` + policy)"),
    ("direg_alone", "DiReg alone (no policy)"),
)


def pooled(entries: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    count = sum(e["metrics"][metric]["count"] for e in entries)
    n = sum(e["metrics"][metric]["n"] for e in entries)
    low, high = wilson_interval(count, n) if n else (None, None)
    return {"count": count, "n": n, "rate": count / n if n else None, "low": low, "high": high}


def fmt(value: dict[str, Any] | None) -> str:
    if not value or not value.get("n"):
        return "-"
    return (f"{value['count']}/{value['n']} = {100 * value['rate']:.0f} % "
            f"[{100 * value['low']:.0f}, {100 * value['high']:.0f}]")


def load(folder: Path) -> dict[str, Any] | None:
    """The run's suites (harmful/benign report and the support report), or None if absent."""
    main = folder / "report.json"
    if not main.exists():
        return None
    suites: dict[str, Any] = {}
    for path in (main, folder / "support" / "report.json"):
        if path.exists():
            report = json.loads(path.read_text(encoding="utf-8"))
            for config_suites in report["results"].values():
                suites.update(config_suites)
    return suites


def summarise(suites: dict[str, Any]) -> dict[str, Any]:
    plain = [e for s, e in suites.items() if e["kind"] == "harmful" and not s.endswith(":wrapped")]
    wrapped = [e for s, e in suites.items() if e["kind"] == "harmful" and s.endswith(":wrapped")]
    out: dict[str, Any] = {
        "unsafe_plain": pooled(plain, "unsafe_compliance") if plain else None,
        "unsafe_wrapped": pooled(wrapped, "unsafe_compliance") if wrapped else None,
        "worst_suite": max(((s, e["metrics"]["unsafe_compliance"]["rate"])
                            for s, e in suites.items() if e["kind"] == "harmful"),
                           key=lambda x: x[1], default=None),
    }
    for suite in ("xstest_safe", "jbb_benign"):
        out[f"over_refusal_{suite}"] = (suites[suite]["metrics"]["over_refusal"]
                                        if suite in suites else None)
    support = suites.get("support")
    for rule in ("flat_refusal", "path_to_help", "judgmental", "method_details", "encouragement"):
        out[f"support_{rule}"] = support["metrics"][f"support_{rule}"] if support else None
    return out


def _path(actions: list[str]) -> str:
    return " > ".join(actions) if actions else "-"


def deciding_rules(rows: list[dict[str, Any]]) -> list[str]:
    """``suite: action by rule`` for each judged row, from the shipped ``general_assistant``'s
    decision on the prompt's input scores (the default scorer; the same decision the run made,
    which the judged rows record only as the action)."""
    from psa_guard.moderation.local import LazyDefaultScorer
    from psa_guard.policy import load_policy

    context = load_policy("general_assistant").resolve(None)
    out = []
    for row, (overall, categories) in zip(
            rows, LazyDefaultScorer().score_detailed([r["prompt"] for r in rows]), strict=True):
        decision = context.decide(overall, None, categories)
        rule = (f"category {decision.category} >= {decision.threshold}" if decision.category
                else f"overall score >= {decision.threshold}")
        same = "" if decision.action == row["actions"][0] else f" (the run: {row['actions'][0]})"
        out.append(f"{row['suite']}: {decision.action} by {rule}{same}")
    return out


def failure_causes(run: Path) -> dict[str, dict[str, int]]:
    """The guard's actions behind each kind of failure of one app run (its judged replies)."""
    rows = [json.loads(line) for line in (run / "judged.jsonl").read_text().splitlines()]
    support = [json.loads(line)
               for line in (run / "support" / "judged.jsonl").read_text().splitlines()]
    labels = {i.id: i.label for i in read_support_items()}  # labels only: no data folder
    out: dict[str, Counter[str]] = {"benign not answered": Counter(), "unsafe replies": Counter(),
                                    "support flat refusals": Counter(),
                                    "risk messages without a path to help": Counter()}
    stopped: list[dict[str, Any]] = []  # benign requests the input check answered itself
    for r in rows:
        if r["kind"] == "benign" and (r["refused"] or r["finish_reason"] == "policy"):
            out["benign not answered"][f"{r['suite']}: {_path(r.get('actions', []))}"] += 1
            if len(r.get("actions", [])) == 1:
                stopped.append(r)
        if r["kind"] == "harmful" and r["unsafe"] and not r["refused"]:
            out["unsafe replies"][_path(r.get("actions", []))] += 1
    if stopped:
        out["benign stopped at the input, by rule"] = Counter(deciding_rules(stopped))
    for r in support:
        label = labels[r["id"]]
        verdict = score_support_reply(r["response"], label)
        if verdict.flat_refusal:
            out["support flat refusals"][f"{label}: {_path(r.get('actions', []))}"] += 1
        if verdict.risk and not verdict.path_to_help:
            out["risk messages without a path to help"][_path(r.get("actions", []))] += 1
    return {name: dict(counts.most_common()) for name, counts in out.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("docs/app_eval"))
    args = parser.parse_args()
    summaries = {}
    for name, _ in RUNS:
        suites = load(args.runs / name)
        if suites is not None:
            summaries[name] = summarise(suites)
    print("| run | unsafe, plain | unsafe, wrapped | worst suite | over-refusal XSTest safe | "
          "over-refusal JBB benign | support: flat refusal | path to help (risk) | judgmental "
          "| method details | encouragement |")
    print("|---|" + "---|" * 10)
    for name, label in RUNS:
        if name not in summaries:
            continue
        s = summaries[name]
        worst = f"{s['worst_suite'][0]} {100 * s['worst_suite'][1]:.0f} %" if s["worst_suite"] else "-"
        print(f"| {label} | {fmt(s['unsafe_plain'])} | {fmt(s['unsafe_wrapped'])} | {worst} | "
              f"{fmt(s['over_refusal_xstest_safe'])} | {fmt(s['over_refusal_jbb_benign'])} | "
              f"{fmt(s['support_flat_refusal'])} | {fmt(s['support_path_to_help'])} | "
              f"{fmt(s['support_judgmental'])} | {fmt(s['support_method_details'])} | "
              f"{fmt(s['support_encouragement'])} |")
    if (args.runs / "app" / "judged.jsonl").exists():
        causes = failure_causes(args.runs / "app")
        summaries["app"]["causes"] = causes
        print("\nWhere the default app's failures come from (first action > last action: count):")
        for name, counts in causes.items():
            print(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    write_atomic(args.runs / "summary.json", json.dumps(summaries, indent=2) + "\n")
    print(f"\nwrote {args.runs / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
