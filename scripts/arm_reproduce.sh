#!/usr/bin/env bash
# Rebuild the shipped Pv-Arm adapter and its measurements, end to end (CPU; about two hours on
# 2 cores, one torch thread). Training is resumable: re-run after an interruption.
# The shipped files came from two commands, `psa-guard arm train --steps 400` and
# `psa-guard arm train --steps 400 --no-pcgrad --no-grid` (docs/arm_train_report.json and
# docs/arm_train_report_no_pcgrad.json); `--ablation` below trains both (same data, seed and
# settings) in one process and writes both into one report.json.
# In this project each heavy job runs under the shared CPU lock:
#   bash scripts/arm_reproduce.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${PSA_GUARD_HOME:-$HOME/.cache/psa-guard}/arm/train"
python scripts/build_arm_data.py                      # pairs.jsonl (+ RLCD generations, cached)
psa-guard arm train --ablation --out "$OUT"           # 400 steps: PCGrad (shipped) + no-PCGrad
cp "$OUT/pcgrad/pvarm.safetensors" psa_guard/arm/artifacts/pvarm.safetensors
cp "$OUT/report.json" docs/arm_train_report.json
python benchmarks/bench_arm.py --repeats 3 --json docs/arm_bench.json
python benchmarks/arm_control.py --out docs/arm_control
psa-guard eval --config base direg arm full --suite harmbench jbb_harmful jbb_benign \
    --limit 40 --max-new-tokens 64 --batch-size 8 --seed 0 --out docs/eval/arm
python benchmarks/arm_gate.py --judged docs/eval/arm/judged.jsonl --json docs/arm_gate.json
