"""The wheel's package list in pyproject.toml: every package of the tree, and the shipped policies.

The list is written out (not found) because the shipped policies in ``policies/`` install as
``psa_guard.shipped_policies``; this test catches a new package that was not added to it.
``scripts/check_install.sh`` proves the installed wheel itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


def _setuptools_table() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["tool"]["setuptools"]


def test_every_package_of_the_tree_is_listed() -> None:
    from setuptools import find_packages

    found = set(find_packages(str(ROOT), include=["psa_guard", "psa_guard.*"]))
    found |= set(find_packages(str(ROOT / "integrations"), include=["langchain_psa_guard*"]))
    assert set(_setuptools_table()["packages"]) == found | {"psa_guard.shipped_policies"}


def test_shipped_policies_are_package_data_of_their_own_package() -> None:
    table = _setuptools_table()
    assert table["package-dir"]["psa_guard.shipped_policies"] == "policies"
    patterns = table["package-data"]["psa_guard.shipped_policies"]
    assert "*.yaml" in patterns and "policy.schema.json" in patterns
    assert (ROOT / "policies" / "__init__.py").is_file()
