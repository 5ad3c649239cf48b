#!/usr/bin/env bash
# Proves that a plain (non-editable) install works from any folder: a fresh virtual environment in a
# temporary folder, `pip install torch==2.13.0 <this tree>`, then, from outside the checkout,
# `psa-guard setup`, a shipped policy loaded by name from the installed wheel, and the demo.
#
# The model cache ($PSA_GUARD_HOME, default ~/.cache/psa-guard) is reused, so setup finds it ready.
# The tree is copied first (tracked and untracked files git does not ignore), so the build writes
# nothing into the checkout. Run by .ci/run after the tests.
#
# Usage: scripts/check_install.sh [--no-demo]
set -euo pipefail

demo=1
if [[ "${1:-}" == "--no-demo" ]]; then demo=0; fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$SECONDS
step() { echo "check_install: [$((SECONDS - start)) s] $*"; }

step "copying the tree to $work/src"
mkdir "$work/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do [[ -e "$file" ]] && printf '%s\0' "$file"; done \
    | tar --null -T - -cf -) | tar -xf - -C "$work/src"

step "fresh virtual environment, pip install torch==2.13.0 <tree> (not editable)"
python -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q torch==2.13.0 "$work/src"
rm -rf "$work/src"  # nothing may depend on the copy: the wheel is all there is

cd "$work"
step "psa-guard setup (from $work)"
"$work/venv/bin/psa-guard" setup

step "shipped policies by name, from the installed package"
"$py" - "$repo" <<'EOF'
import sys
from pathlib import Path

from psa_guard.policy import load_policy, shipped_policy_names

repo = Path(sys.argv[1]).resolve()
names = shipped_policy_names()
assert "mental_health_support" in names, names
for name in names:
    policy = load_policy(name)
    source = Path(policy.source).resolve()
    assert repo not in source.parents, f"{name} was read from the checkout: {source}"
    print(f"  {name}: {', '.join(policy.context_names)} ({source})")
EOF
"$py" -c "from psa_guard.policy import load_policy; load_policy('mental_health_support')"

if [[ "$demo" == 1 ]]; then
    step "psa-guard demo --max-new-tokens 8"
    "$work/venv/bin/psa-guard" demo --max-new-tokens 8 | tee "$work/demo.txt"
    for name in general_assistant mental_health_support; do  # the demo's default policies
        grep -q "$name" "$work/demo.txt" || { echo "check_install: the demo did not print $name" >&2; exit 1; }
    done
fi
step "ok"
