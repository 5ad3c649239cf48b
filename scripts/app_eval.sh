#!/usr/bin/env bash
# The guarded application, measured end to end (issue 17): the raw model, the default guarded app
# (direg + general_assistant) and its ablations, on the same prompts and the same cached
# generations. Greedy decoding, 96 tokens, 15 prompts per harmful/benign suite (seed 0) plain and
# jailbreak-wrapped, the whole support suite (evaluation half). Results: docs/app_eval/*/report.*
# and docs/results.md. Runs one after another (2 cores); about 1-2 hours on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/app_eval}
LIMIT=${LIMIT:-15}
TOKENS=96
SUITES="harmbench jbb_harmful strongreject simplesafetytests donotanswer xstest_unsafe xstest_safe jbb_benign"
# one heavy job at a time on a shared machine: each step takes the lock (no-op elsewhere)
LOCK=${PSA_LOCK:-/tmp/psa-heavy.lock}
common() { flock "$LOCK" psa-guard eval --no-progress --max-new-tokens "$TOKENS" "$@"; }
run() {  # NAME ARGS...: the harmful/benign suites (limited) and the support suite (whole)
  local name=$1; shift
  if [[ -n "${SKIP_DONE:-}" && -f "$OUT/$name/support/report.json" ]]; then
    echo "skip $name (done; unset SKIP_DONE to run it again)"; return; fi
  common "$@" --suite $SUITES --wrapped --limit "$LIMIT" --out "$OUT/$name"
  common "$@" --suite support --out "$OUT/$name/support"
}
python scripts/app_ablation_policies.py --out "$OUT/policies"
run raw --config base
run app --config direg --policy general_assistant
run no_category_rules --config direg --policy "$OUT/policies/no_category_rules.yaml" --label app-no_category_rules
run no_support --config direg --policy "$OUT/policies/no_support.yaml" --label app-no_support
run no_hard_stage --config direg --policy general_assistant --window-chars 100000 --label app-no_hard_stage
run no_direg --config base --policy general_assistant --label app-no_direg
run with_arm --config full --policy general_assistant --label app-with_arm
run with_zo --config zo --policy general_assistant --label app-with_zo
run direg_alone --config direg
