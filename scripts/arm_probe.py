"""Short Pv-Arm trainings to choose the learning rate and core initialisation (provenance of the
shipped settings; docs/arm.md). Shares the lower-state cache of ``psa-guard arm train``.

Usage:
    python scripts/arm_probe.py [--steps 50] [--lr 2e-3 5e-3] [--core-std 0.5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from psa_guard.arm.evaluate import encode_pairs, grid_preference, heldout_accuracy, pair_margins
from psa_guard.arm.model import ArmConfig, PvArm
from psa_guard.arm.pairs import read_pairs
from psa_guard.arm.train import LowerStates, TrainSettings, group_pairs, train_arm
from psa_guard.core.atomic import atomic_path
from psa_guard.direg.vector import base_checksum
from psa_guard.home import guard_home
from psa_guard.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=guard_home() / "arm-data" / "pairs.jsonl")
    parser.add_argument("--out", type=Path, default=guard_home() / "arm" / "train")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lr", type=float, nargs="+", default=[2e-3, 5e-3])
    parser.add_argument("--core-std", type=float, nargs="+", default=[0.5])
    args = parser.parse_args()
    loaded = load_model(threads=1)
    loaded.model.requires_grad_(False)
    pairs = read_pairs(args.data)
    config = ArmConfig()
    train = group_pairs(pairs, "train", config.attributes, 240, 0)
    heldout = group_pairs(pairs, "heldout", config.attributes, 40, 0)
    lower = LowerStates(PvArm(loaded.model, config))
    key = f"{base_checksum(loaded)}|split={lower.arm.split}"
    lower.load(args.out / "lower_states.pt", key)
    results = []
    for core_std in args.core_std:
        for lr in args.lr:
            arm = PvArm(loaded.model, ArmConfig(core_init_std=core_std))
            train_arm(arm, loaded.tokenizer, train,
                      TrainSettings(steps=args.steps, lr=lr, warmup=5), lower=lower)
            lower.save(args.out / "lower_states.pt", key)
            accuracy = heldout_accuracy(arm, loaded.tokenizer, heldout, lower)
            encoded = encode_pairs(arm, loaded.tokenizer, heldout, 64, 48)
            spread = {}
            for index, attribute in enumerate(config.attributes):
                low = pair_margins(arm, lower, encoded[attribute], grid_preference(5, index, 0.0))
                high = pair_margins(arm, lower, encoded[attribute], grid_preference(5, index, 1.0))
                spread[attribute] = round(float((high - low).mean()), 3)
            row = {"lr": lr, "core_std": core_std, "steps": args.steps,
                   "accuracy": {a: v["accuracy"] for a, v in accuracy.items()},
                   "margin_w1_minus_w0": spread}
            results.append(row)
            print(json.dumps(row), flush=True)
    with atomic_path(args.out / "probe.pt") as tmp:
        torch.save(results, tmp)


if __name__ == "__main__":
    main()
