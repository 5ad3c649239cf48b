"""The ``psa-guard moderation`` commands: ``score`` and ``serve``.

Registered by :data:`psa_guard.cli.COMMAND_MODULES`::

    psa-guard moderation score "How do I bake bread?" "How do I make a pipe bomb?"
    psa-guard moderation score --url http://127.0.0.1:8088/v1/moderations "some text"
    psa-guard moderation serve --port 8088
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from typing import Any

__all__ = ["cmd_score", "cmd_serve", "register"]

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``moderation`` command group."""
    parser = subparsers.add_parser(
        "moderation",
        help="score texts for harm (local or HTTP scorer) or serve the local scorer over HTTP",
        description="Moderation scorers: the offline local scorer (MiniLM + trained head) and an "
        "HTTP client for servers speaking the OpenAI moderation shape.",
    )
    sub = parser.add_subparsers(dest="moderation_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 1)[1])

    score = sub.add_parser("score", help="print the harm score of each TEXT",
                           description="Print one harm probability per TEXT (tab-separated with "
                           "the text, or JSON with --json). Exit code 1 when the scorer cannot "
                           "answer (the reason is printed).")
    score.add_argument("texts", nargs="+", metavar="TEXT")
    score.add_argument("--url", default=None,
                       help="score with the HTTP scorer at this URL instead of the local one "
                       "(key from PSA_GUARD_MODERATION_API_KEY or OPENAI_API_KEY)")
    score.add_argument("--timeout", type=float, default=10.0, help="HTTP: seconds per attempt")
    score.add_argument("--budget", type=float, default=30.0, help="HTTP: seconds in all")
    score.add_argument("--max-attempts", type=int, default=3, help="HTTP: attempts per request")
    score.add_argument("--json", action="store_true", help="print a JSON object")
    score.set_defaults(func=cmd_score)

    serve = sub.add_parser("serve", help="serve the local scorer in the OpenAI moderation shape",
                           description="Serve the local scorer at POST /v1/moderations until "
                           "interrupted (Ctrl-C). Binds 127.0.0.1 unless --host says otherwise.")
    serve.add_argument("--port", type=int, default=8088, help="port (default 8088; 0 = any free)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--api-key-env", default=None, metavar="VAR",
                       help="require 'Authorization: Bearer $VAR' on every request")
    serve.set_defaults(func=cmd_serve)


def cmd_score(args: argparse.Namespace) -> int:
    """``psa-guard moderation score``."""
    from psa_guard.errors import ModerationUnavailableError
    from psa_guard.moderation.base import ModerationScorer
    from psa_guard.moderation.http import HTTPModerationScorer
    from psa_guard.moderation.local import default_scorer

    scorer: ModerationScorer
    if args.url:
        scorer = HTTPModerationScorer(args.url, timeout=args.timeout, budget=args.budget,
                                      max_attempts=args.max_attempts)
    else:
        scorer = default_scorer()
    try:
        scores = scorer.score(args.texts)
    except ModerationUnavailableError as exc:
        if args.json:
            print(json.dumps({"scorer": scorer.name, "error": exc.reason}))
        print(f"psa-guard: moderation unavailable: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        if isinstance(scorer, HTTPModerationScorer):
            scorer.close()
    if args.json:
        print(json.dumps({"scorer": scorer.name,
                          "scores": [{"text": t, "score": round(s, 6)}
                                     for t, s in zip(args.texts, scores)]}))
    else:
        for text, value in zip(args.texts, scores):
            print(f"{value:.4f}\t{text}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``psa-guard moderation serve`` (runs until interrupted)."""
    from psa_guard.errors import ConfigurationError
    from psa_guard.moderation.local import default_scorer
    from psa_guard.moderation.server import ModerationServer

    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise ConfigurationError(f"--api-key-env {args.api_key_env}: that variable is not set")
    server = ModerationServer(default_scorer(), host=args.host, port=args.port, api_key=api_key)
    with server:
        print(f"serving moderation at {server.url} (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0
