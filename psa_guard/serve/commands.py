"""``psa-guard serve``: run the OpenAI-compatible endpoint (uvicorn, or Ray Serve with ``--ray``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from psa_guard.serve.config import ServeConfig

__all__ = ["register"]

logger = logging.getLogger(__name__)


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The :class:`ServeConfig` of the command line (checked before anything loads)."""
    from psa_guard.registry import get_config

    get_config(args.config)  # an unknown name lists the valid ones
    return ServeConfig(
        policies=tuple(args.policy or ("general_assistant",)), config=args.config,
        model=args.model, threads=args.threads, api_keys=args.api_keys,
        max_queue=args.max_queue, timeout_s=args.timeout, max_body_bytes=args.max_body_bytes,
        host=args.host, port=args.port,
        allow_public_without_keys=args.allow_public_without_keys)


def cmd_serve(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.ray:
        from psa_guard.serve.ray_deploy import run

        run(config, replicas=args.replicas, host=config.host, port=config.port)
        return 0
    import uvicorn

    from psa_guard.serve.app import create_app
    from psa_guard.serve.memory import Trimmer, pin_mmap_threshold

    pin_mmap_threshold()  # before the weights load: resident memory stays flat under load
    app = create_app(config)
    print(f"psa-guard serve: {len(app.state.psa_guard.apps)} models on "
          f"http://{config.host}:{config.port}/v1 (configuration '{config.config}')")
    trimmer = Trimmer().start()
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning",
                    access_log=False)  # access lines carry no keys, but stay quiet by default
    finally:
        trimmer.stop()
    return 0


def register(subparsers: Any) -> None:
    """Add ``serve`` to the ``psa-guard`` parser."""
    p = subparsers.add_parser("serve", help="an OpenAI-compatible guarded endpoint")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default loopback; others need --api-keys)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--policy", action="append", default=None, metavar="NAME_OR_FILE",
                   help="a shipped policy's name or a policy file; repeatable; each context is "
                   "one model id (default: general_assistant)")
    p.add_argument("--config", default="base", help="guard configuration (psa-guard info)")
    p.add_argument("--model", default="default", help="'default', a model folder or a .gguf")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--api-keys", type=Path, default=None, metavar="FILE",
                   help="YAML file of keys and the models each may use (docs/serving.md)")
    p.add_argument("--max-queue", type=int, default=64,
                   help="most requests in the server at once; more get 429")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per request (504)")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000, help="request size cap (413)")
    p.add_argument("--allow-public-without-keys", action="store_true",
                   help="bind a non-loopback address without API keys (not recommended)")
    p.add_argument("--ray", action="store_true", help="deploy on Ray Serve instead of uvicorn")
    p.add_argument("--replicas", type=int, default=1, help="Ray Serve replicas (with --ray)")
    p.set_defaults(func=cmd_serve)
