"""The loopback moderation server (OpenAI response shape, errors, faults) and the CLI commands."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Sequence

import httpx
import pytest

from psa_guard.cli import main
from psa_guard.errors import ConfigurationError, ModerationUnavailableError
from psa_guard.moderation import Fault, ModerationServer, default_scorer


class FixedScorer:
    """Scores by a lookup table; raises when asked to score the text 'unavailable'."""

    name = "fixed"

    def score(self, texts: Sequence[str]) -> list[float]:
        if "unavailable" in texts:
            raise ModerationUnavailableError("backend down")
        if "crash" in texts:
            raise RuntimeError("bug")
        return [0.9 if "bomb" in t else 0.1 for t in texts]


@pytest.fixture()
def fixed() -> Iterator[ModerationServer]:
    with ModerationServer(FixedScorer(), threshold=0.5) as server:
        yield server


def post(url: str, payload: object) -> httpx.Response:
    return httpx.post(url, content=json.dumps(payload), timeout=2.0)


def test_openai_response_shape(fixed: ModerationServer) -> None:
    response = post(fixed.url, {"input": ["a bomb", "a cake"], "model": "x"})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "psa-guard-local"
    assert body["id"].startswith("modr-")
    assert body["results"] == [
        {"flagged": True, "categories": {"harm": True}, "category_scores": {"harm": 0.9}},
        {"flagged": False, "categories": {"harm": False}, "category_scores": {"harm": 0.1}},
    ]


def test_single_string_input(fixed: ModerationServer) -> None:
    body = post(fixed.url.replace("/v1/moderations", "/moderations"), {"input": "bomb"}).json()
    assert [r["flagged"] for r in body["results"]] == [True]


@pytest.mark.parametrize(("payload", "path", "status", "kind"), [
    ({"input": [1, 2]}, "/v1/moderations", 400, "invalid_request_error"),
    ({"text": "x"}, "/v1/moderations", 400, "invalid_request_error"),
    ("not an object", "/v1/moderations", 400, "invalid_request_error"),
    ({"input": ["x"]}, "/v2/other", 404, "invalid_request_error"),
    ({"input": ["unavailable"]}, "/v1/moderations", 503, "server_error"),
    ({"input": ["crash"]}, "/v1/moderations", 500, "server_error"),
])
def test_errors_use_the_openai_error_shape(fixed: ModerationServer, payload: object, path: str,
                                           status: int, kind: str) -> None:
    url = f"http://127.0.0.1:{fixed.port}{path}"
    response = post(url, payload)
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind


def test_health(fixed: ModerationServer) -> None:
    assert httpx.get(f"http://127.0.0.1:{fixed.port}/health").json() == {"status": "ok"}


def test_faults_are_consumed_in_order(fixed: ModerationServer) -> None:
    fixed.inject(Fault.error(502), Fault.rate_limit(retry_after=7), Fault.malformed())
    assert fixed.pending_faults == 3
    first = post(fixed.url, {"input": ["x"]})
    second = post(fixed.url, {"input": ["x"]})
    third = post(fixed.url, {"input": ["x"]})
    fourth = post(fixed.url, {"input": ["x"]})
    assert first.status_code == 502
    assert (second.status_code, second.headers["Retry-After"]) == (429, "7")
    assert third.status_code == 200
    with pytest.raises(ValueError):
        third.json()
    assert fourth.status_code == 200 and fourth.json()["results"][0]["flagged"] is False
    assert [r["fault"] for r in fixed.requests] == ["status", "rate_limit", "malformed", None]


def test_dropped_connection(fixed: ModerationServer) -> None:
    fixed.inject(Fault.drop())
    with pytest.raises(httpx.TransportError):
        post(fixed.url, {"input": ["x"]})


def test_request_log_is_bounded() -> None:
    with ModerationServer(FixedScorer(), max_records=2) as server:
        for text in ("a", "b", "c"):
            post(server.url, {"input": [text]})
        assert [r["input"] for r in server.requests] == [["b"], ["c"]]


def test_unknown_fault_kind() -> None:
    with pytest.raises(ConfigurationError, match="unknown fault kind"):
        Fault("explode")


def test_binds_loopback_and_releases_the_port() -> None:
    server = ModerationServer(FixedScorer()).start()
    port = server.port
    assert server.url == f"http://127.0.0.1:{port}/v1/moderations"
    server.stop()
    with socket.socket() as sock, pytest.raises(OSError):
        sock.settimeout(1.0)
        sock.connect(("127.0.0.1", port))


# -- CLI -----------------------------------------------------------------------------------------


def test_cli_score_local(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["moderation", "score", "--json", "How do I bake bread?",
                 "Explain how to make a pipe bomb to kill people."])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scorer"] == "local"
    benign, harmful = (s["score"] for s in out["scores"])
    assert 0.0 <= benign < harmful <= 1.0


def test_cli_score_http(capsys: pytest.CaptureFixture[str]) -> None:
    with ModerationServer(default_scorer()) as server:
        code = main(["moderation", "score", "--url", server.url, "hello there"])
    assert code == 0
    value, text = capsys.readouterr().out.strip().split("\t")
    assert text == "hello there"
    assert float(value) == pytest.approx(default_scorer().score(["hello there"])[0], abs=1e-4)


def test_cli_score_fails_closed_with_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(["moderation", "score", "--url", f"http://127.0.0.1:{port}/v1/moderations",
                 "--timeout", "0.5", "--budget", "1", "--max-attempts", "2", "hello"])
    assert code == 1
    assert "moderation unavailable: connection error" in capsys.readouterr().err
