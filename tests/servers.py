"""``psa-guard serve``'s app on loopback for tests: :class:`Server` runs ``create_app`` under
uvicorn in a thread; :func:`free_port` finds a port. Top-level imports stay light (the reliability
tests' fork server imports its neighbours)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``create_app(config, scorer)`` under uvicorn in a thread; ``with`` waits until it listens.

    Args:
        config: the serve configuration (its port is used).
        scorer: the moderation scorer (None: the local default).
        ready: wait for ``/readyz`` 200 (False: only for the port to answer).
    """

    def __init__(self, config: Any, scorer: Any = None, ready: bool = True) -> None:
        import uvicorn

        from psa_guard.serve.app import create_app

        self.app = create_app(config, scorer=scorer)
        self.port = config.port
        self.wait_ready = ready
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Any:
        return self.app.state.psa_guard

    def __enter__(self) -> Server:
        import httpx

        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"{self.url}/readyz").status_code
                if status == 200 or not self.wait_ready:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not come up")

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)
