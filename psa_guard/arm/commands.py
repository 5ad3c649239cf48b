"""``psa-guard arm train|eval`` (registered by :data:`psa_guard.cli.COMMAND_MODULES`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from psa_guard.home import guard_home

__all__ = ["default_work_dir", "register"]


def default_work_dir() -> Path:
    """``$PSA_GUARD_HOME/arm``: training data, checkpoints, adapters and reports."""
    return guard_home() / "arm"


def _format_accuracy(table: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{a} {v['accuracy']:.3f}" for a, v in table.items())


def cmd_train(args: argparse.Namespace) -> int:
    from psa_guard.arm.model import ArmConfig
    from psa_guard.arm.pipeline import TrainingRequest, run_training
    from psa_guard.arm.train import TrainSettings
    from psa_guard.loading import load_model

    settings = TrainSettings(
        steps=args.steps, pairs_per_attribute=args.pairs_per_attribute,
        max_pairs_per_attribute=args.max_pairs_per_attribute, lr=args.lr, bt_beta=args.bt_beta,
        pcgrad=not args.no_pcgrad, contrast=args.contrast, seed=args.seed,
        max_prompt_tokens=args.max_prompt_tokens,
        max_response_tokens=args.max_response_tokens,
    )
    request = TrainingRequest(
        data=args.data, out=args.out, settings=settings,
        arm=ArmConfig(layers=args.layers, r1=args.r1, r2=args.r2, seed=args.seed),
        ablation=args.ablation, heldout_limit=args.heldout_limit, grid=not args.no_grid,
    )
    report = run_training(load_model(args.model, threads=args.threads), request)
    print(f"untrained held-out accuracy: {_format_accuracy(report['untrained'])}")
    for name, run in report["runs"].items():
        print(f"{name}: held-out accuracy {_format_accuracy(run['heldout'])} "
              f"({run['train_seconds']} s, {run['mean_conflicts_per_step']} conflicting pairs/step)")
        for attribute, grid in run.get("control", {}).items():
            print(f"  control {attribute}: spearman {grid['spearman']}, margins {grid['margin']}")
    print(f"report: {args.out / 'report.json'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from psa_guard.arm.checkpoint import load_arm
    from psa_guard.arm.evaluate import control_grid, heldout_accuracy
    from psa_guard.arm.pairs import read_pairs
    from psa_guard.arm.train import LowerStates, group_pairs
    from psa_guard.core.atomic import write_atomic
    from psa_guard.direg.vector import base_checksum
    from psa_guard.loading import load_model

    loaded = load_model(args.model, threads=args.threads)
    arm = load_arm(loaded.model, args.adapter, checksum=base_checksum(loaded))
    heldout = group_pairs(read_pairs(args.data), "heldout", arm.config.attributes,
                          args.heldout_limit, args.seed)
    lower = LowerStates(arm)
    result: dict[str, Any] = {"heldout": heldout_accuracy(arm, loaded.tokenizer, heldout, lower)}
    print(f"held-out accuracy: {_format_accuracy(result['heldout'])}")
    if args.grid:
        result["control"] = control_grid(arm, loaded.tokenizer, heldout, lower)
        for attribute, grid in result["control"].items():
            print(f"control {attribute}: spearman {grid['spearman']}, margins {grid['margin']}")
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=1))
    return 0


def register(subparsers: Any) -> None:
    """Add ``arm`` and its sub-commands."""
    from psa_guard.arm.checkpoint import SHIPPED_ADAPTER

    work = default_work_dir()
    parser = subparsers.add_parser("arm", help="Pv-Arm: train and evaluate the reward model")
    sub = parser.add_subparsers(dest="arm_command", metavar="STEP")
    parser.set_defaults(func=lambda args: (parser.print_help(), 1)[1])

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", type=Path, default=guard_home() / "arm-data" / "pairs.jsonl",
                       help="preference pairs (scripts/build_arm_data.py)")
        p.add_argument("--model", default="default", help="'default' or a model folder")
        p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
        p.add_argument("--heldout-limit", type=int, default=40,
                       help="held-out pairs per attribute measured (seeded sample)")
        p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("train", help="train the PBLoRA reward model (resumable)")
    common(p)
    p.add_argument("--out", type=Path, default=work / "train", help="adapters, checkpoints, report")
    p.add_argument("--steps", type=int, default=400,
                   help="optimiser steps (the shipped adapter: 400; see docs/arm.md)")
    p.add_argument("--pairs-per-attribute", type=int, default=3, help="pairs per attribute per step")
    p.add_argument("--max-pairs-per-attribute", type=int, default=240,
                   help="training pairs kept per attribute (seeded sample)")
    p.add_argument("--lr", type=float, default=3e-3,
                   help="AdamW learning rate (PARM: 5e-4 over far more steps; see docs/arm.md)")
    p.add_argument("--bt-beta", type=float, default=0.05, help="Bradley-Terry reward scale")
    p.add_argument("--layers", type=int, default=6, help="top decoder layers the reward model owns")
    p.add_argument("--r1", type=int, default=4)
    p.add_argument("--r2", type=int, default=4)
    p.add_argument("--max-prompt-tokens", type=int, default=64)
    p.add_argument("--max-response-tokens", type=int, default=48)
    p.add_argument("--no-pcgrad", action="store_true", help="plain sum of attribute gradients")
    p.add_argument("--contrast", type=float, default=1.0,
                   help="weight of the contrast term: more weight on an attribute must rank its "
                        "pairs more strongly (shipped: 1; 0: PARM's objective alone; docs/arm.md)")
    p.add_argument("--ablation", action="store_true",
                   help="also train without PCGrad (same data, seed, steps) and report both")
    p.add_argument("--no-grid", action="store_true", help="skip the control grid")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="held-out pairwise accuracy and the control grid of an adapter")
    common(p)
    p.add_argument("--adapter", type=Path, default=SHIPPED_ADAPTER)
    p.add_argument("--grid", action="store_true", help="also measure the 11-point control grid")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.set_defaults(func=cmd_eval)
