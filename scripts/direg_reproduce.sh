#!/usr/bin/env bash
# Rebuild the shipped DiReg harm vector and its sweep, end to end (CPU; about an hour on 2 cores).
# Every step is resumable: re-run the script after an interruption.
# In this project each heavy job runs under the shared CPU lock:
#   bash scripts/direg_reproduce.sh
set -euo pipefail
cd "$(dirname "$0")/.."
psa-guard -v direg data                                   # 240 prompts -> harm_pairs.jsonl
psa-guard -v direg train --threads 2 --steps 80 --lr 5e-4 # LoRA r=8 on q/k/v/o -> harm vector
python scripts/direg_ship.py                              # -> psa_guard/direg/artifacts/
psa-guard -v direg sweep --vector psa_guard/direg/artifacts/harm_vector.safetensors \
    --lambdas 1 2 4 --k 100 10 --limit 40 --max-new-tokens 64 \
    --suite harmbench jbb_harmful jbb_benign xstest_safe --out docs/direg_sweep
