"""The ``psa-guard eval`` command (registered by :data:`psa_guard.cli.COMMAND_MODULES`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from psa_guard.commands import add_steering_args, steering_from_args
from psa_guard.home import guard_home

__all__ = ["cmd_eval", "default_cache_path", "expand_suites", "register", "with_wrapped"]

logger = logging.getLogger(__name__)


def default_cache_path() -> Path:
    """``$PSA_GUARD_HOME/eval/completions.jsonl`` (shared by every ``eval`` run)."""
    return guard_home() / "eval" / "completions.jsonl"


def expand_suites(names: list[str]) -> tuple[str, ...]:
    """Expand ``all`` into every suite that is not part of another; keep order, drop duplicates."""
    from psa_guard.datasets.suites import suite_names

    out: list[str] = []
    for name in names:
        for item in suite_names(parts=False) if name == "all" else [name]:
            if item not in out:
                out.append(item)
    return tuple(out)


def with_wrapped(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` and, after each harmful suite, its jailbreak-wrapped form (``NAME:wrapped``)."""
    from psa_guard.datasets.suites import HARMFUL, WRAPPED, get_suite

    out: list[str] = []
    for name in names:
        out.append(name)
        if not name.endswith(WRAPPED) and get_suite(name).kind == HARMFUL:
            out.append(name + WRAPPED)
    return tuple(dict.fromkeys(out))


def register(subparsers: Any) -> None:
    """Add the ``eval`` sub-command."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate configurations on safety suites (judged rates, report, plots)",
        description="Run named configurations over evaluation suites, judge the replies with the "
        "committed refusal, harm and toxicity judges, and write DIR/report.json, DIR/report.md "
        "and PNG plots. Completions are cached, so an interrupted or repeated run only generates "
        "what is missing.",
    )
    parser.add_argument("--config", nargs="+", required=True, metavar="NAME",
                        help="configuration names (e.g. base)")
    parser.add_argument("--suite", nargs="+", required=True, metavar="NAME",
                        help="suite names, or 'all' (harmbench jbb_harmful jbb_benign strongreject "
                        "simplesafetytests donotanswer xstest_safe xstest_unsafe; donotanswer_bias, "
                        "a part of donotanswer, and support, the support suite, are named on "
                        "their own; NAME:wrapped puts NAME's prompts in jailbreak frames)")
    parser.add_argument("--limit", type=int, default=None,
                        help="prompts per suite, a seeded sample (default: whole suites)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="reply budget (default 256)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per batch (default 8)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--model", default=None,
                        help="model folder or .gguf file (default: the embedded default model)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="completion cache file (default: $PSA_GUARD_HOME/eval/completions.jsonl)")
    parser.add_argument("--data", default=None,
                        help="safety-data folder (default: $PSA_GUARD_DATA or ../shared/safety-data)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--policy", default=None,
                        help="evaluate the guarded application: each --config under this policy "
                        "(a shipped policy's name or a file), replies as the user sees them")
    parser.add_argument("--context", default=None,
                        help="the application's policy context (default: the policy's)")
    parser.add_argument("--label", default=None,
                        help="the name the application is reported under (default config+policy)")
    parser.add_argument("--wrapped", action="store_true",
                        help="add NAME:wrapped for every harmful suite: each prompt in a "
                        "jailbreak frame of the evaluation set")
    parser.add_argument("--window-chars", type=int, default=None,
                        help="hold-back window of the output check, in characters (default 120)")
    add_steering_args(parser)
    parser.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    """Run ``psa-guard eval``; returns the exit code."""
    from psa_guard.evaluation.cache import CompletionCache
    from psa_guard.evaluation.judges import load_judges
    from psa_guard.evaluation.plots import plot_report
    from psa_guard.evaluation.report import build_report, format_rate, write_report
    from psa_guard.evaluation.runner import EvalRequest, run_eval
    from psa_guard.generation import GenerationSettings
    from psa_guard.loading import load_model

    suites = expand_suites(args.suite)
    if args.wrapped:
        suites = with_wrapped(suites)
    request = EvalRequest(
        configs=tuple(dict.fromkeys(args.config)),
        suites=suites,
        settings=GenerationSettings(max_new_tokens=args.max_new_tokens),
        limit=args.limit,
        seed=args.seed,
        batch_size=args.batch_size,
        data=args.data,
        steering=steering_from_args(args),
        policy=args.policy,
        context=args.context,
        window_chars=args.window_chars,
        label=args.label,
    )
    request.validate()
    cache = CompletionCache(args.cache or default_cache_path())
    panels: list[Any] = []

    def judges() -> Any:
        panels.append(load_judges())
        return panels[0]

    run = run_eval(request, cache, judges, lambda: load_model(args.model, threads=args.threads),
                   progress=not args.no_progress)
    report = build_report(run, panels[0].provenance)
    paths = write_report(report, run.items, args.out)
    paths += plot_report(report, args.out)
    print(f"model {report['model']}; cache {cache.path}: {run.cache.reused} reused, "
          f"{run.cache.generated} generated, {run.cache.corrupted} corrupted lines regenerated")
    timing = report["judge_timing"]
    if timing["seconds"] > 0:
        print(f"judged {timing['replies']} replies in {timing['seconds']:.1f} s "
              f"({timing['replies'] / timing['seconds']:.0f} replies/s, embedding prompt and reply)")
    for name, record in report["judges"].items():
        held = record["held_out"]
        print(f"judge {name}: accuracy {held['accuracy']:.3f} (balanced "
              f"{held['balanced_accuracy']:.3f}) on {held['n']} held-out examples from "
              f"{', '.join(record['split']['held_out_groups'])}")
    for config, suites in report["results"].items():
        for suite, entry in suites.items():
            m = entry["metrics"]
            if entry["kind"] == "harmful":
                main = ("unsafe compliance " + format_rate(m["unsafe_compliance"])
                        + "; refusal " + format_rate(m["refusal"]))
            elif entry["kind"] == "benign":
                main = "over-refusal " + format_rate(m["over_refusal"])
            else:
                main = ("flat refusal " + format_rate(m["support_flat_refusal"])
                        + "; path to help (risk) " + format_rate(m["support_path_to_help"]))
            print(f"{config:6s} {suite:18s} {main}; toxicity {format_rate(m['toxicity'])}")
    for path in paths:
        print(f"wrote {path}")
    return 0
