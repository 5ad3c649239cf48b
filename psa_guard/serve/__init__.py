"""``psa-guard serve``: the guarded model behind an OpenAI-compatible HTTP endpoint.

* :class:`~psa_guard.serve.config.ServeConfig`: what to serve and the server's limits.
* :func:`~psa_guard.serve.app.create_app`: the FastAPI application (one more thin caller of the
  request pipeline).
* :mod:`~psa_guard.serve.ray_deploy`: the same application as a Ray Serve deployment.

See ``docs/serving.md``.
"""

from __future__ import annotations

from psa_guard.serve.config import ServeConfig

__all__ = ["ServeConfig"]
