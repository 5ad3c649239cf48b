"""``psa-guard arm train``: train the shipped adapter, measure it, and run the PCGrad ablation.

One process, one frozen lower-state cache shared by every run (the runs differ only in the
trainable top), so the ablation costs only its own steps. Writes, under ``out``:
``pcgrad/pvarm.safetensors`` (``no_pcgrad/`` with ``--no-pcgrad``; both with ``--ablation``),
their checkpoints and logs, and ``report.json`` with held-out accuracies (untrained, each run)
and the control grid of the first run.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psa_guard.arm.checkpoint import save_arm
from psa_guard.arm.evaluate import control_grid, heldout_accuracy
from psa_guard.arm.model import ArmConfig, PvArm
from psa_guard.arm.pairs import manifest_path, read_pairs
from psa_guard.arm.train import LowerStates, TrainSettings, group_pairs, train_arm
from psa_guard.core.atomic import write_atomic
from psa_guard.direg.vector import base_checksum
from psa_guard.loading import LoadedModel

__all__ = ["TrainingRequest", "planned_runs", "run_training"]


@dataclass(frozen=True)
class TrainingRequest:
    """What ``psa-guard arm train`` does.

    Attributes:
        data: the pairs file (``scripts/build_arm_data.py``).
        out: output folder.
        settings: training hyper-parameters.
        arm: the reward model's shape.
        ablation: also train the other way (without PCGrad, or with it under ``--no-pcgrad``)
            and report both.
        heldout_limit: held-out pairs per attribute used for the measurements.
        grid: also measure the control grid (first run only).
    """

    data: Path
    out: Path
    settings: TrainSettings
    arm: ArmConfig
    ablation: bool = False
    heldout_limit: int = 40
    grid: bool = True


def planned_runs(pcgrad: bool, ablation: bool) -> list[tuple[str, bool]]:
    """The runs to train, as ``(folder name, PCGrad on)``: the one the settings ask for first."""
    runs = [("pcgrad", True), ("no_pcgrad", False)]
    if not pcgrad:
        runs.reverse()
    return runs if ablation else runs[:1]


def run_training(loaded: LoadedModel, request: TrainingRequest) -> dict[str, Any]:
    """Train, save and measure (see the module docstring); returns the report."""
    loaded.model.requires_grad_(False)
    host, tokenizer = loaded.model, loaded.tokenizer
    pairs = read_pairs(request.data)
    attributes = request.arm.attributes
    train = group_pairs(pairs, "train", attributes, request.settings.max_pairs_per_attribute,
                        request.settings.seed)
    heldout = group_pairs(pairs, "heldout", attributes, request.heldout_limit,
                          request.settings.seed)
    lower = LowerStates(PvArm(host, request.arm))
    limits: dict[str, Any] = {"max_prompt": request.settings.max_prompt_tokens,
              "max_response": request.settings.max_response_tokens}
    checksum = base_checksum(loaded)
    # the frozen lower states depend only on the base model and the split point: reuse them
    states_file, states_key = request.out / "lower_states.pt", f"{checksum}|split={lower.arm.split}"
    lower.load(states_file, states_key)
    report: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in ["psa-guard", *sys.argv[1:]]),
        "data": str(request.data), "base_checksum": checksum,
        "arm": request.arm.to_dict(), "settings": dataclasses.asdict(request.settings),
        "train_pairs": {a: len(v) for a, v in train.items()},
        "heldout_pairs": {a: len(v) for a, v in heldout.items()},
        "untrained": heldout_accuracy(PvArm(host, request.arm), tokenizer, heldout, lower,
                                      **limits),
        "runs": {},
    }
    manifest = manifest_path(request.data)
    if manifest.is_file():
        report["data_manifest"] = json.loads(manifest.read_text())
    runs = planned_runs(request.settings.pcgrad, request.ablation)
    for index, (name, project) in enumerate(runs):
        settings = dataclasses.replace(request.settings, pcgrad=project)
        arm = PvArm(host, request.arm)
        started = time.perf_counter()
        log = train_arm(arm, tokenizer, train, settings,
                        checkpoint=request.out / name / "checkpoint.pt", lower=lower)
        if index == 0:
            lower.save(states_file, states_key)
        run: dict[str, Any] = {
            "pcgrad": project, "train_seconds": round(time.perf_counter() - started, 1),
            "mean_conflicts_per_step": round(sum(log["conflicts"]) / max(1, len(log["conflicts"])), 3),
            "heldout": heldout_accuracy(arm, tokenizer, heldout, lower, **limits),
        }
        if request.grid and index == 0:
            run["control"] = control_grid(arm, tokenizer, heldout, lower, **limits)
        provenance = {"command": report["command"], "run": name,
                      "settings": dataclasses.asdict(settings),
                      "train_pairs": report["train_pairs"], "heldout": run["heldout"],
                      "data_sha256": report.get("data_manifest", {}).get("sha256")}
        save_arm(arm, request.out / name / "pvarm.safetensors", base_checksum=checksum,
                 provenance=provenance)
        report["runs"][name] = run
        write_atomic(request.out / "report.json", json.dumps(report, indent=1))
    return report
