"""The shipped policies, installed as the package ``psa_guard.shipped_policies``.

This folder holds data, not code: ``pyproject.toml`` maps the package to it so that the wheel carries
the ``*.yaml`` files; load them by name with :func:`psa_guard.policy.load_policy`.
"""
