"""The policy package imports no torch: policies load in processes that never generate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psa_guard.policy as policy_package

# The top-level ``psa_guard/__init__.py`` is replaced by an empty package of the same folder, so
# that only the policy package's own imports count.
PROBE = """
import importlib, pkgutil, sys, types
package = types.ModuleType("psa_guard")
package.__path__ = [{root!r}]
sys.modules["psa_guard"] = package
import psa_guard.policy
for module in pkgutil.iter_modules(psa_guard.policy.__path__, "psa_guard.policy."):
    importlib.import_module(module.name)
psa_guard.policy.load_policy("mental_health_support")
heavy = sorted(name for name in ("torch", "transformers", "langchain_core") if name in sys.modules)
print("heavy:", ",".join(heavy))
"""


def test_policy_package_imports_no_torch() -> None:
    root = str(Path(policy_package.__file__).resolve().parents[1])
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(root=root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy:", result.stdout
