"""The HTTP moderation client against a real loopback server that serves the local scorer.

Every fault is acted out by the server (``ModerationServer.inject``): HTTP 500, 429 with
Retry-After, a delay past the client's timeout, malformed JSON, a dropped connection, plus a
closed port (connection refused). Timeouts and budgets are small, so each test takes at most a
few seconds; elapsed times are asserted as upper bounds (nothing hangs) and, for Retry-After, as
a lower bound (the wait was honoured).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest

from psa_guard.errors import ConfigurationError, ModerationUnavailableError
from psa_guard.moderation import (
    Fault,
    HTTPModerationScorer,
    ModerationScorer,
    ModerationServer,
    default_scorer,
)
from psa_guard.moderation.http import parse_moderation_response, parse_retry_after

TEXTS = ["How do I bake sourdough bread at home?",
         "Give me step-by-step instructions to build a pipe bomb."]


@pytest.fixture(scope="module")
def server() -> Iterator[ModerationServer]:
    with ModerationServer(default_scorer()) as running:
        yield running


@pytest.fixture()
def srv(server: ModerationServer) -> Iterator[ModerationServer]:
    server.clear()
    yield server
    server.clear()


def client(url: str, **overrides: object) -> HTTPModerationScorer:
    settings: dict[str, object] = {
        "timeout": 1.0, "max_attempts": 3, "budget": 4.0, "backoff_initial": 0.02,
        "backoff_max": 0.1, "jitter": 0.01}
    settings.update(overrides)
    return HTTPModerationScorer(url, **settings)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- success -------------------------------------------------------------------------------------


def test_scores_match_the_served_local_scorer(srv: ModerationServer) -> None:
    with client(srv.url, api_key="secret") as scorer:
        assert isinstance(scorer, ModerationScorer)
        scores = scorer.score(TEXTS)
    expected = default_scorer().score(TEXTS)
    assert scores == pytest.approx(expected, abs=1e-6)  # scorer quality: test_moderation_local
    assert len(srv.requests) == 1
    assert srv.requests[0]["input"] == TEXTS
    assert srv.requests[0]["authorization"] == "Bearer secret"


def test_empty_input_sends_nothing(srv: ModerationServer) -> None:
    assert client(srv.url).score([]) == []
    assert srv.requests == []


def test_long_inputs_are_sent_in_batches_in_order(srv: ModerationServer) -> None:
    texts = [TEXTS[i % 2] + f" ({i})" for i in range(5)]
    scores = client(srv.url, batch_size=2).score(texts)
    assert [len(r["input"]) for r in srv.requests] == [2, 2, 1]
    assert scores == pytest.approx(default_scorer().score(texts), abs=1e-6)


def test_key_and_url_come_from_the_environment(srv: ModerationServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSA_GUARD_MODERATION_URL", srv.url)
    monkeypatch.delenv("PSA_GUARD_MODERATION_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai-var")
    HTTPModerationScorer(timeout=1.0, budget=2.0).score(TEXTS[:1])
    monkeypatch.setenv("PSA_GUARD_MODERATION_API_KEY", "from-psa-var")
    scorer = HTTPModerationScorer(timeout=1.0, budget=2.0)
    scorer.score(TEXTS[:1])
    assert [r["authorization"] for r in srv.requests] == ["Bearer from-openai-var",
                                                         "Bearer from-psa-var"]
    assert "from-psa-var" not in repr(scorer)


def test_missing_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PSA_GUARD_MODERATION_URL", raising=False)
    with pytest.raises(ConfigurationError, match="PSA_GUARD_MODERATION_URL"):
        HTTPModerationScorer()


@pytest.mark.parametrize("kwargs", [
    {"url": "ftp://127.0.0.1/x"}, {"timeout": 0}, {"budget": -1}, {"max_attempts": 0},
    {"batch_size": 0}, {"jitter": -0.1}, {"backoff_initial": float("nan")},
])
def test_invalid_settings_are_rejected(kwargs: dict[str, object]) -> None:
    settings: dict[str, object] = {"url": "http://127.0.0.1:9/v1/moderations"}
    settings.update(kwargs)
    with pytest.raises(ConfigurationError):
        HTTPModerationScorer(**settings)  # type: ignore[arg-type]


# -- faults that clear: retries then succeeds ---------------------------------------------------


@pytest.mark.parametrize("fault", [
    Fault.error(500), Fault.error(503), Fault.malformed(), Fault.drop(), Fault.rate_limit(),
    Fault.delay(10.0),
], ids=["500", "503", "malformed", "drop", "429", "timeout"])
def test_one_fault_then_success(srv: ModerationServer, fault: Fault) -> None:
    srv.inject(fault)
    start = time.monotonic()
    scores = client(srv.url, timeout=0.5).score(TEXTS)
    elapsed = time.monotonic() - start
    assert scores == pytest.approx(default_scorer().score(TEXTS), abs=1e-6)
    assert [r["fault"] for r in srv.requests] == [fault.kind, None]
    assert elapsed < 3.0  # generous for a loaded CPU; the delay fault alone would take 10 s


def test_retry_after_is_honoured(srv: ModerationServer) -> None:
    srv.inject(Fault.rate_limit(retry_after=1))
    start = time.monotonic()
    client(srv.url).score(TEXTS)
    elapsed = time.monotonic() - start
    assert len(srv.requests) == 2
    assert 0.95 <= elapsed < 3.0  # the exponential wait alone would be ~0.02 s


def test_retry_after_as_http_date_is_honoured(srv: ModerationServer) -> None:
    srv.inject(Fault.rate_limit(retry_after=formatdate(time.time() + 2, usegmt=True)))
    start = time.monotonic()
    client(srv.url).score(TEXTS)
    elapsed = time.monotonic() - start
    assert len(srv.requests) == 2
    assert 0.5 <= elapsed < 3.5  # HTTP dates have 1 s resolution


def test_backoff_grows_exponentially_with_bounded_jitter(srv: ModerationServer) -> None:
    srv.inject(Fault.error(500), Fault.error(500), Fault.error(500))
    waits: list[float] = []
    scorer = client(srv.url, max_attempts=4, backoff_initial=0.1, backoff_max=10.0, jitter=0.05,
                    sleep=waits.append)
    scorer.score(TEXTS)
    assert len(waits) == 3
    for k, wait in enumerate(waits):
        assert 0.1 * 2**k <= wait <= 0.1 * 2**k + 0.05


# -- faults that persist: gives up within budget, fails closed ------------------------------------


def test_redirects_are_not_followed_or_retried(srv: ModerationServer) -> None:
    srv.inject(Fault.error(301))
    with pytest.raises(ModerationUnavailableError) as info:
        client(srv.url).score(TEXTS)
    assert info.value.reason.startswith("HTTP 301")
    assert len(srv.requests) == 1


@pytest.mark.parametrize(("fault", "reason"), [
    (Fault.error(500), "HTTP 500 after 3 attempts"),
    (Fault.malformed(), "malformed response"),
    (Fault.drop(), "connection error"),
    (Fault.rate_limit(), "HTTP 429 after 3 attempts"),
    (Fault.delay(5.0), "timeout"),
], ids=["500", "malformed", "drop", "429", "timeout"])
def test_persistent_fault_raises_with_reason(srv: ModerationServer, fault: Fault,
                                             reason: str) -> None:
    srv.inject([fault] * 3)
    start = time.monotonic()
    with pytest.raises(ModerationUnavailableError) as info:
        client(srv.url, timeout=0.3).score(TEXTS)
    elapsed = time.monotonic() - start
    assert reason in info.value.reason
    assert len(srv.requests) == 3
    assert elapsed < 2.0


def test_budget_bounds_the_whole_call(srv: ModerationServer) -> None:
    srv.inject([Fault.delay(5.0)] * 20)
    start = time.monotonic()
    with pytest.raises(ModerationUnavailableError) as info:
        client(srv.url, timeout=0.4, max_attempts=20, budget=1.0).score(TEXTS)
    elapsed = time.monotonic() - start
    assert elapsed < 1.5
    assert "timeout" in info.value.reason
    assert 2 <= len(srv.requests) <= 4


def test_retry_after_beyond_the_budget_gives_up_at_once(srv: ModerationServer) -> None:
    srv.inject(Fault.rate_limit(retry_after=30))
    start = time.monotonic()
    with pytest.raises(ModerationUnavailableError) as info:
        client(srv.url, budget=2.0).score(TEXTS)
    assert time.monotonic() - start < 1.0
    assert "Retry-After 30s exceeds the remaining budget" in info.value.reason
    assert len(srv.requests) == 1


def test_client_errors_are_not_retried() -> None:
    with ModerationServer(default_scorer(), api_key="right") as locked:
        with pytest.raises(ModerationUnavailableError) as info:
            client(locked.url, api_key="wrong").score(TEXTS)
        assert info.value.reason.startswith("HTTP 401")
        assert "not retried" in info.value.reason
        assert len(locked.requests) == 1
        assert client(locked.url, api_key="right").score(TEXTS[:1])[0] >= 0.0


def test_connection_refused_fails_closed_quickly() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1/moderations"
    start = time.monotonic()
    with pytest.raises(ModerationUnavailableError) as info:
        client(url).score(TEXTS)
    assert time.monotonic() - start < 2.0
    assert info.value.reason.startswith("connection error (ConnectError")
    assert info.value.reason.endswith("after 3 attempts")


def test_stopping_the_server_wakes_a_delayed_request() -> None:
    running = ModerationServer(default_scorer()).start()
    running.inject(Fault.delay(60.0))
    with pytest.raises(ModerationUnavailableError):
        client(running.url, timeout=0.2, max_attempts=1).score(TEXTS)
    start = time.monotonic()
    running.stop()
    assert time.monotonic() - start < 2.0
    with pytest.raises(RuntimeError):
        running.port  # noqa: B018  # the property raises once stopped


# -- parsing (table-driven) -----------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("3", 3.0), ("0", 0.0), ("1.5", 1.5), ("-4", 0.0), ("soon", None),
    ("inf", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_future_date() -> None:
    value = parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    assert value == pytest.approx(10.0)


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"results": {}}', b'{"results": []}', b'{"results": [1]}',
    b'{"results": [{"flagged": true}]}', b'{"results": [{"category_scores": {}}]}',
    b'{"results": [{"category_scores": {"hate": "high"}}]}',
    b'{"results": [{"category_scores": {"hate": true}}]}',
    b'{"results": [{"category_scores": {"hate": NaN}}]}',
])
def test_malformed_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_moderation_response(body, 1)


def test_harm_score_is_the_max_category_score_clipped() -> None:
    body = (b'{"results": [{"flagged": false, "category_scores": {"hate": 0.2, "violence": 0.7}},'
            b' {"flagged": true, "category_scores": {"self-harm": 1.3, "sexual": 0}}]}')
    assert parse_moderation_response(body, 2) == [0.7, 1.0]
