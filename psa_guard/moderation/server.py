"""A loopback HTTP server that serves any moderation scorer in the OpenAI moderation shape.

``POST /v1/moderations`` (also ``/moderations``) with ``{"input": str | [str, ...], "model": ...}``
answers::

    {"id": "modr-...", "model": "...", "results": [
        {"flagged": true, "categories": {"harm": true}, "category_scores": {"harm": 0.93}}, ...]}

``GET /health`` answers ``{"status": "ok"}``. Errors use OpenAI's error shape
(``{"error": {"message": ..., "type": ...}}``): 400 bad request, 401 wrong key (when the server has
one), 404 unknown path, 503 the scorer could not answer.

For tests, :meth:`ModerationServer.inject` queues :class:`Fault` s; each request consumes the next
one: an HTTP error status, 429 with ``Retry-After``, a delay before answering, a malformed body, or
a dropped connection. The server runs in a background thread of a
``http.server.ThreadingHTTPServer``; :meth:`ModerationServer.stop` also interrupts any request
that is sleeping in a delay fault, so nothing hangs.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import Self

from psa_guard.errors import ConfigurationError, ModerationUnavailableError
from psa_guard.moderation.base import ModerationScorer

__all__ = ["CATEGORY", "Fault", "ModerationServer"]

logger = logging.getLogger(__name__)

#: The one category the served scores are reported under.
CATEGORY = "harm"
MAX_BODY_BYTES = 4 << 20
PATHS = ("/v1/moderations", "/moderations")


@dataclass(frozen=True)
class Fault:
    """One injected failure, consumed by one request.

    Attributes:
        kind: ``"status"`` (answer ``status`` with an error body), ``"rate_limit"`` (429 with
            ``Retry-After: retry_after`` when given), ``"delay"`` (sleep ``seconds``, then answer
            normally), ``"malformed"`` (200 with a body that is not JSON), ``"drop"`` (close the
            connection without answering).
        status: the HTTP status of a ``"status"`` fault.
        retry_after: the ``Retry-After`` header value of a ``"rate_limit"`` fault.
        seconds: the delay of a ``"delay"`` fault.
    """

    kind: str
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0

    KINDS = ("status", "rate_limit", "delay", "malformed", "drop")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ConfigurationError(f"unknown fault kind {self.kind!r}; valid: {', '.join(self.KINDS)}")

    @classmethod
    def error(cls, status: int = 500) -> Fault:
        return cls("status", status=status)

    @classmethod
    def rate_limit(cls, retry_after: float | str | None = None) -> Fault:
        value = None if retry_after is None else (
            retry_after if isinstance(retry_after, str) else f"{retry_after:g}")
        return cls("rate_limit", status=429, retry_after=value)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls("delay", seconds=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        return cls("malformed")

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")


class ModerationServer:
    """Serves a :class:`~psa_guard.moderation.base.ModerationScorer` over HTTP on loopback.

    Nothing is bound until :meth:`start` (or ``with ModerationServer(...) as server:``).

    Args:
        scorer: the scorer that answers.
        host: the address to bind (loopback by default).
        port: the port; 0 picks a free one (see :attr:`port` after start).
        api_key: when set, requests must send ``Authorization: Bearer <api_key>``.
        model: the ``model`` reported in responses.
        threshold: ``flagged`` is ``score >= threshold``.
        max_records: how many request records :attr:`requests` keeps (the oldest go first).

    Attributes:
        requests: one record per request received (``path``, ``authorization``, ``input``,
            ``fault``), for tests to check what the client sent and how often.
    """

    def __init__(self, scorer: ModerationScorer, host: str = "127.0.0.1", port: int = 0,
                 api_key: str | None = None, model: str = "psa-guard-local",
                 threshold: float = 0.5, max_records: int = 1000) -> None:
        self.scorer = scorer
        self.host = host
        self._requested_port = port
        self.api_key = api_key
        self.model = model
        self.threshold = threshold
        self.max_records = max_records
        self.requests: list[dict[str, Any]] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = ThreadingHTTPServer((self.host, self._requested_port), _handler_class(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"moderation-server:{self.port}", daemon=True)
        self._thread.start()
        logger.info("moderation server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, release the port, and wake any request sleeping in a delay fault."""
        self._stopping.set()
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (raises ``RuntimeError`` before :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("the moderation server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The moderation endpoint, e.g. ``http://127.0.0.1:43121/v1/moderations``."""
        return f"http://{self.host}:{self.port}{PATHS[0]}"

    # -- faults ----------------------------------------------------------------------------------

    def inject(self, *faults: Fault | Iterable[Fault]) -> None:
        """Queue faults; each later request consumes the next one (then requests succeed)."""
        with self._lock:
            for item in faults:
                if isinstance(item, Fault):
                    self._faults.append(item)
                else:
                    self._faults.extend(item)

    def clear(self) -> None:
        """Drop queued faults and the request log."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(record)
            if len(self.requests) > self.max_records:
                del self.requests[: len(self.requests) - self.max_records]

    # -- the response body -----------------------------------------------------------------------

    def moderation_body(self, texts: list[str]) -> dict[str, Any]:
        """The OpenAI-shaped response for ``texts`` (raises ModerationUnavailableError)."""
        scores = self.scorer.score(texts)
        return {
            "id": f"modr-{uuid.uuid4().hex[:24]}",
            "model": self.model,
            "results": [
                {"flagged": s >= self.threshold, "categories": {CATEGORY: s >= self.threshold},
                 "category_scores": {CATEGORY: s}}
                for s in scores
            ],
        }


def _handler_class(server: ModerationServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "psa-guard-moderation"

        def log_message(self, format: str, *args: Any) -> None:  # stdlib signature (shadows format)
            logger.debug("%s " + format, self.address_string(), *args)

        def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                       raw: bytes | None = None) -> None:
            body = raw if raw is not None else json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (e.g. timed out during a delay fault)
                self.close_connection = True

        def _error(self, status: int, message: str, kind: str,
                   headers: dict[str, str] | None = None) -> None:
            self._send_json(status, {"error": {"message": message, "type": kind}}, headers)

        def do_GET(self) -> None:  # stdlib naming
            if self.path == "/health":
                self._send_json(200, {"status": "ok"})
            else:
                self._error(404, f"no route {self.path}", "invalid_request_error")

        def do_POST(self) -> None:  # stdlib naming
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                self._error(413, "request body too large", "invalid_request_error")
                return
            raw = self.rfile.read(length) if length else b""
            fault = server._next_fault()
            texts: Any = None
            try:
                payload = json.loads(raw or b"null")
                texts = payload.get("input") if isinstance(payload, dict) else None
            except ValueError:
                payload = None
            server._record({"path": self.path, "authorization": self.headers.get("Authorization"),
                            "input": texts, "fault": fault.kind if fault else None})
            if fault is not None and self._apply(fault):
                return
            if self.path not in PATHS:
                self._error(404, f"no route {self.path}; POST {PATHS[0]}", "invalid_request_error")
                return
            if server.api_key is not None and \
                    self.headers.get("Authorization") != f"Bearer {server.api_key}":
                self._error(401, "invalid or missing API key", "invalid_request_error")
                return
            if isinstance(texts, str):
                texts = [texts]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                self._error(400, "'input' must be a string or a list of strings",
                            "invalid_request_error")
                return
            try:
                body = server.moderation_body(texts)
            except ModerationUnavailableError as exc:
                self._error(503, f"scorer unavailable: {exc.reason}", "server_error")
                return
            except Exception as exc:  # any scorer failure is the server's, reported as 500
                logger.exception("moderation scorer failed")
                self._error(500, f"scorer failed: {type(exc).__name__}", "server_error")
                return
            self._send_json(200, body)

        def _apply(self, fault: Fault) -> bool:
            """Act out a fault; True when the request is finished."""
            if fault.kind == "status":
                self._error(fault.status, f"injected HTTP {fault.status}", "server_error")
            elif fault.kind == "rate_limit":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                self._error(429, "injected rate limit", "rate_limit_error", headers)
            elif fault.kind == "malformed":
                self._send_json(200, None, raw=b'{"results": [{"flagged": tru')
            elif fault.kind == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            elif fault.kind == "delay":
                if server._stopping.wait(fault.seconds):
                    self.close_connection = True
                    return True
                return False
            return True

    return Handler
