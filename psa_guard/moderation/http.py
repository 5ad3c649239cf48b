"""A moderation scorer that asks an HTTP server speaking the OpenAI moderation shape.

Request (``POST``, JSON)::

    {"input": ["text 1", "text 2"], "model": "omni-moderation-latest"}

Response (JSON)::

    {"results": [{"flagged": false, "category_scores": {"violence": 0.01, ...}}, ...]}

The harm score of a text is the maximum of its ``category_scores`` (clipped to ``[0, 1]``).

Failure handling (tenacity):

* retried: HTTP 5xx, HTTP 429, timeouts, connection errors (refused, reset, dropped), and replies
  that are not the expected JSON shape; waits grow exponentially with random jitter;
* a 429 with ``Retry-After`` (seconds or an HTTP date) waits that long instead; when that wait would
  not fit in the remaining budget, the scorer gives up at once rather than sleep in vain;
* not retried: other 4xx (bad key, bad request): the same request would fail again;
* every ``score()`` call has an overall time budget: each attempt's timeout is capped by what is
  left of it, and no retry starts that could not finish inside it;
* when it gives up it raises :class:`~psa_guard.errors.ModerationUnavailableError` with a reason
  such as ``"HTTP 500 after 3 attempts"``. It never returns a guessed score; failing closed is the
  caller's decision.

Configuration from the environment (read when the scorer is built, not at import):
``PSA_GUARD_MODERATION_URL`` (the endpoint), ``PSA_GUARD_MODERATION_API_KEY`` or else
``OPENAI_API_KEY`` (sent as ``Authorization: Bearer``).
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timezone
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential_jitter,
)
from typing_extensions import Self

from psa_guard.categories import CATEGORIES
from psa_guard.errors import ConfigurationError, ModerationUnavailableError
from psa_guard.moderation.base import check_texts

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_MODEL",
    "URL_ENV",
    "HTTPModerationScorer",
    "harm_score",
    "categories_of",
    "parse_moderation_details",
    "parse_moderation_response",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

URL_ENV = "PSA_GUARD_MODERATION_URL"
#: Checked in order; the first one set is used.
API_KEY_ENV = ("PSA_GUARD_MODERATION_API_KEY", "OPENAI_API_KEY")
DEFAULT_MODEL = "omni-moderation-latest"
#: An attempt is not started with less than this many seconds of budget left.
MIN_ATTEMPT_SECONDS = 0.05


class _RetryableFailure(Exception):
    """One failed attempt that may succeed if repeated.

    Attributes:
        reason: short text for the final error (``"HTTP 500"``, ``"timeout"``, ...).
        retry_after: seconds the server asked us to wait (429), if it said.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


class _FatalFailure(Exception):
    """One failed attempt that would fail again (401, 400, ...)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date).

    Returns ``None`` when the header is absent or unreadable; never negative.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = now if now is not None else time.time()
        seconds = when.timestamp() - current
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def harm_score(result: Any) -> float:
    """The harm score of one ``results`` entry: the max of its ``category_scores``.

    Raises:
        ValueError: the entry is not an object with a non-empty ``category_scores`` object of
            finite numbers.
    """
    if not isinstance(result, dict):
        raise ValueError("a result is not a JSON object")  # noqa: TRY004  # one error type for every malformed reply
    scores = result.get("category_scores")
    if not isinstance(scores, dict) or not scores:
        raise ValueError("a result has no category_scores object")
    values = []
    for name, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"category_scores[{name!r}] is not a finite number: {value!r}")
        values.append(float(value))
    return min(1.0, max(0.0, max(values)))


def _category_key(name: str) -> str | None:
    """Our name for a response's category key (``self-harm/intent``, ``self_harm_intent`` and
    ``self-harm-intent`` all mean one category); None for a category we do not know."""
    key = name.strip().lower().replace("_", "-")
    for category in CATEGORIES:
        if key in (category, category.replace("/", "-"), category.replace("_", "-")):
            return category
    return None


def categories_of(result: dict[str, Any]) -> dict[str, float]:
    """The categories of one (already checked) ``results`` entry, under our names, in [0, 1].

    The thirteen OpenAI moderation categories keep their names; categories this library does not
    know are left out here (they still count in the overall harm score).
    """
    out: dict[str, float] = {}
    for name, value in result["category_scores"].items():
        category = _category_key(str(name))
        if category is not None:
            out[category] = min(1.0, max(0.0, float(value)))
    return out


def parse_moderation_details(body: bytes, expected: int) -> list[tuple[float, dict[str, float]]]:
    """Harm scores and category scores from an OpenAI-shaped moderation response body.

    Raises:
        ValueError: the body is not JSON of the expected shape, or has the wrong number of results.
    """
    results = _results(body, expected)
    return [(harm_score(r), categories_of(r)) for r in results]


def parse_moderation_response(body: bytes, expected: int) -> list[float]:
    """Harm scores from an OpenAI-shaped moderation response body.

    Raises:
        ValueError: the body is not JSON of the expected shape, or has the wrong number of results.
    """
    return [overall for overall, _ in parse_moderation_details(body, expected)]


def _results(body: bytes, expected: int) -> list[Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"response is not JSON ({exc})") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise ValueError("response has no 'results' list")  # noqa: TRY004  # as above
    results = payload["results"]
    if len(results) != expected:
        raise ValueError(f"response has {len(results)} results for {expected} inputs")
    return list(results)


class HTTPModerationScorer:
    """Scores texts with a remote moderation endpoint (OpenAI request/response shape).

    The constructor does no I/O; the HTTP client is created on first use and reused (close it
    with :meth:`close`, or use the scorer as a context manager).

    Args:
        url: the endpoint (e.g. ``https://api.openai.com/v1/moderations``); default
            ``$PSA_GUARD_MODERATION_URL``.
        api_key: bearer token; default ``$PSA_GUARD_MODERATION_API_KEY``, else ``$OPENAI_API_KEY``,
            else none (no ``Authorization`` header).
        model: the ``model`` field of the request.
        timeout: seconds per attempt (connect, read and write each), capped by the budget left.
        max_attempts: attempts per request, the first included.
        budget: seconds for one :meth:`score` call, every attempt and wait included.
        backoff_initial: first retry wait in seconds (then doubled each retry).
        backoff_max: the longest exponential wait in seconds.
        jitter: up to this many random seconds added to each exponential wait.
        batch_size: texts per request (longer inputs are sent in several requests).
        name: the scorer name.
        sleep: the sleep function between attempts (tests may pass a recorder).
    """

    def __init__(self, url: str | None = None, api_key: str | None = None,
                 model: str = DEFAULT_MODEL, timeout: float = 10.0, max_attempts: int = 3,
                 budget: float = 30.0, backoff_initial: float = 0.5, backoff_max: float = 8.0,
                 jitter: float = 0.5, batch_size: int = 32, name: str = "http",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        url = url or os.environ.get(URL_ENV)
        if not url:
            raise ConfigurationError(
                f"no moderation URL: pass url=... or set {URL_ENV} "
                "(for example http://127.0.0.1:8088/v1/moderations)"
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"moderation URL {url!r} must start with http:// or https://")
        for label, value in (("timeout", timeout), ("budget", budget),
                             ("backoff_initial", backoff_initial), ("backoff_max", backoff_max)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigurationError(f"{label} must be a positive number of seconds, got {value!r}")
        if not (isinstance(jitter, (int, float)) and math.isfinite(jitter) and jitter >= 0):
            raise ConfigurationError(f"jitter must be >= 0 seconds, got {jitter!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if api_key is None:
            api_key = next((os.environ[v] for v in API_KEY_ENV if os.environ.get(v)), None)
        self.url = url
        self.model = model
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self.budget = float(budget)
        self.batch_size = batch_size
        self.name = name
        self._api_key = api_key
        self._backoff = wait_exponential_jitter(initial=backoff_initial, max=backoff_max,
                                                jitter=jitter)
        self._sleep = sleep
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    # -- public ----------------------------------------------------------------------------------

    def score(self, texts: Sequence[str]) -> list[float]:
        """One harm probability in ``[0, 1]`` per text, in order.

        Raises:
            ConfigurationError: ``texts`` is not a sequence of strings.
            ModerationUnavailableError: no valid answer within the attempts and the budget;
                ``reason`` says why (e.g. ``"HTTP 500 after 3 attempts"``).
        """
        return [overall for overall, _ in self.score_detailed(texts)]

    def score_detailed(self, texts: Sequence[str]) -> list[tuple[float, dict[str, float]]]:
        """Per text, the harm score and the category scores mapped to this library's names
        (:data:`~psa_guard.categories.CATEGORIES`); raises as :meth:`score` does."""
        items = check_texts(texts)
        deadline = time.monotonic() + self.budget
        out: list[tuple[float, dict[str, float]]] = []
        for start in range(0, len(items), self.batch_size):
            out.extend(self._score_batch(items[start:start + self.batch_size], deadline))
        return out

    def close(self) -> None:
        """Close the HTTP client (a later :meth:`score` opens a new one)."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (f"HTTPModerationScorer(url={self.url!r}, model={self.model!r}, "
                f"timeout={self.timeout}, max_attempts={self.max_attempts}, budget={self.budget}, "
                f"api_key={key})")

    # -- internals -------------------------------------------------------------------------------

    def _get_client(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(follow_redirects=False)
            return self._client

    def _redact(self, text: str) -> str:
        """``text`` without the API key (a provider may echo it in an error body)."""
        return text.replace(self._api_key, "[api key]") if self._api_key else text

    def _unavailable(self, reason: str) -> ModerationUnavailableError:
        """The error for ``reason``: where (the URL) and what to do about it."""
        if reason.startswith("malformed response"):
            advice = ('the endpoint must answer {"results": [{"category_scores": {"<category>": '
                      '<number in [0, 1]>, ...}}, ...]}, one result per input, in order; check '
                      'the URL')
        elif reason.startswith("HTTP 3"):
            advice = "use the final URL"
        elif reason.startswith("HTTP 4") and not reason.startswith("HTTP 429"):
            advice = "check the URL and the API key"
        else:
            advice = "the reply is withheld (fail closed) until the endpoint answers; check it is up"
        return ModerationUnavailableError(
            reason, f"moderation unavailable at {self.url}: {reason}; {advice}")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _attempt(self, batch: list[str], deadline: float) -> list[tuple[float, dict[str, float]]]:
        """One POST; returns scores or raises _RetryableFailure / _FatalFailure."""
        remaining = deadline - time.monotonic()
        if remaining < MIN_ATTEMPT_SECONDS:
            raise _RetryableFailure("time budget exhausted")
        timeout = httpx.Timeout(min(self.timeout, remaining))
        try:
            response = self._get_client().post(
                self.url, json={"input": batch, "model": self.model}, headers=self._headers(),
                timeout=timeout,
            )
        except httpx.TimeoutException as exc:
            raise _RetryableFailure(f"timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _RetryableFailure(f"connection error ({type(exc).__name__}: {exc})") from exc
        status = response.status_code
        if status == 429:
            raise _RetryableFailure(
                "HTTP 429", retry_after=parse_retry_after(response.headers.get("Retry-After"))
            )
        if status >= 500:
            raise _RetryableFailure(f"HTTP {status}")
        if status >= 400:
            raise _FatalFailure(f"HTTP {status} ({self._redact(_error_message(response))})")
        if 300 <= status < 400:
            raise _FatalFailure(f"HTTP {status} (redirects are not followed; use the final URL)")
        if status != 200:
            raise _RetryableFailure(f"unexpected HTTP {status}")
        try:
            return parse_moderation_details(response.content, len(batch))
        except ValueError as exc:
            raise _RetryableFailure(f"malformed response ({self._redact(str(exc))})") from exc

    def _score_batch(self, batch: list[str], deadline: float
                     ) -> list[tuple[float, dict[str, float]]]:
        give_up: dict[str, str] = {}

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _RetryableFailure) and exc.retry_after is not None:
                return exc.retry_after
            return float(self._backoff(state))

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.max_attempts:
                return True
            remaining = deadline - time.monotonic()
            if state.upcoming_sleep + MIN_ATTEMPT_SECONDS > remaining:
                exc = state.outcome.exception() if state.outcome else None
                if isinstance(exc, _RetryableFailure) and exc.retry_after is not None:
                    give_up["why"] = (f"Retry-After {exc.retry_after:g}s exceeds the remaining "
                                      f"budget of {max(0.0, remaining):.2f}s")
                else:
                    give_up["why"] = f"time budget of {self.budget:g}s exhausted"
                return True
            return False

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.warning("moderation request to %s failed (%s, attempt %d/%d); retrying in %.2fs",
                           self.url, getattr(exc, "reason", exc), state.attempt_number,
                           self.max_attempts, state.upcoming_sleep)

        retrying = Retrying(
            retry=retry_if_exception_type(_RetryableFailure), wait=wait, stop=stop,
            before_sleep=log_retry, sleep=self._sleep, reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return self._attempt(batch, deadline)
        except _FatalFailure as exc:
            reason = f"{exc.reason}, not retried"
            logger.error("moderation unavailable: %s", reason)
            raise self._unavailable(reason) from exc
        except _RetryableFailure as exc:
            plural = "attempt" if attempts == 1 else "attempts"
            reason = f"{exc.reason} after {attempts} {plural}"
            if "why" in give_up:
                reason += f" ({give_up['why']})"
            logger.error("moderation unavailable: %s", reason)
            raise self._unavailable(reason) from exc
        raise ModerationUnavailableError("no attempt was made")  # unreachable: Retrying yields


def _error_message(response: httpx.Response) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the start of the body."""
    try:
        payload = response.json()
        message = payload["error"]["message"]
        if isinstance(message, str):
            return message[:200]
    except (ValueError, KeyError, TypeError):
        pass
    return response.text[:200] or "no body"
