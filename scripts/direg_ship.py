"""Copy a trained harm vector into psa_guard/direg/artifacts with its provenance JSON.

Usage (after ``psa-guard direg data`` and ``psa-guard direg train``)::

    python scripts/direg_ship.py --work ~/.cache/psa-guard/direg

Writes ``harm_vector.safetensors``, ``harm_vector.json`` (provenance: data counts, overlap
removal, selection rule, training settings, loss, checksums, the reproducing commands) and
``harm_vector.sha256``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from psa_guard.core.atomic import atomic_path, write_atomic
from psa_guard.core.checksums import file_sha256
from psa_guard.direg.vector import SHIPPED_VECTOR, HarmVector
from psa_guard.home import guard_home

COMMANDS = [
    "psa-guard -v direg data",
    "psa-guard -v direg train --threads 2 --steps 80 --lr 5e-4",
    "python scripts/direg_ship.py",
    "(all steps: scripts/direg_reproduce.sh)",
]


def _judge_sha() -> str:
    """The refusal head used by the data filter (data.json of older runs did not record it)."""
    from psa_guard.evaluation.judges import ARTIFACTS_DIR

    return file_sha256(ARTIFACTS_DIR / "refusal.safetensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=guard_home() / "direg")
    args = parser.parse_args()
    data = json.loads((args.work / "data" / "data.json").read_text())
    train = json.loads((args.work / "train" / "train.json").read_text())
    source = args.work / "train" / "harm_vector.safetensors"
    vector = HarmVector.load(source)
    if vector.metadata["data_sha256"] != data["harm_pairs_sha256"]:
        raise SystemExit("the vector was not trained on the current harm_pairs.jsonl")
    SHIPPED_VECTOR.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(SHIPPED_VECTOR) as tmp:
        shutil.copyfile(source, tmp)
    digest = file_sha256(SHIPPED_VECTOR)
    train.pop("losses", None)
    provenance = {
        "artifact": SHIPPED_VECTOR.name,
        "sha256": digest,
        "bytes": SHIPPED_VECTOR.stat().st_size,
        "what": "DiReg harm vector of SmolLM2-135M-Instruct: LoRA factors (A, B) of a harm model "
                "fine-tuned on harmful request -> compliant response pairs; tau = scale * B @ A",
        "base_checksum": vector.base_checksum,
        "scale": vector.scale,
        "data": {k: data[k] for k in ("prompts", "completions", "pairs", "jbb_judged_included",
                                      "harm_pairs_sha256", "selection", "request")},
        "refusal_judge_sha256": data.get("refusal_judge_sha256") or _judge_sha(),
        "training": train,
        "reproduce": COMMANDS,
        "licences": "training prompts: harmful_train.json (refusal_direction, Apache-2.0, mix of "
                    "AdvBench/TDC/HarmBench-derived items, MIT), AdvBench (MIT), HarmfulQA, CatQA, "
                    "DangerousQA (declare-lab/red-instruct, Apache-2.0); responses: sampled from "
                    "SmolLM2-135M-Instruct (Apache-2.0)",
    }
    out = SHIPPED_VECTOR.with_suffix(".json")
    write_atomic(out, json.dumps(provenance, indent=2) + "\n")
    write_atomic(SHIPPED_VECTOR.with_suffix(".sha256"), f"{digest}  {SHIPPED_VECTOR.name}\n")
    print(f"shipped {SHIPPED_VECTOR} ({provenance['bytes']} bytes), provenance {out}")


if __name__ == "__main__":
    main()
