"""psa-guard serve on Ray Serve: two replicas of the app on a local Ray, on a free loopback port.

The tiny model folder keeps loading fast; the local moderation scorer is the real one. Skipped
without ``ray[serve]`` (``pip install "psa-guard[serve-ray]"``); run alone with ``-m ray``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from psa_guard.policy import load_policy
from psa_guard.serve.apps import model_id
from psa_guard.serve.config import ServeConfig

pytestmark = pytest.mark.ray

ray = pytest.importorskip(
    "ray", reason="ray is not installed: pip install 'psa-guard[serve-ray]' to run the Ray tests")
serve = pytest.importorskip(
    "ray.serve", reason="ray[serve] is not installed: pip install 'psa-guard[serve-ray]'")

from psa_guard.serve.ray_deploy import (  # noqa: E402  (after the skip: imports ray inside)
    APP_NAME,
    DEPLOYMENT_NAME,
    RayServer,
    app_builder,
    start,
)

POLICIES = ("general_assistant", "kids_tutor")
REPLICAS = 2
CONCURRENT = 8
CONFIG_FILE = Path(__file__).resolve().parents[2] / "deploy" / "ray_serve.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[RayServer]:
    """Two replicas on a local Ray of 2 CPUs (one each), shut down even when a test fails."""
    ray.init(num_cpus=REPLICAS, object_store_memory=100 * 1024**2, include_dashboard=False,
             logging_level="warning")
    try:
        config = ServeConfig(policies=POLICIES, model=str(tiny_model_dir), threads=1)
        with start(config, replicas=REPLICAS, port=_free_port()) as running:
            yield running
    finally:
        serve.shutdown()
        ray.shutdown()


def test_models_lists_every_application(server: RayServer) -> None:
    expected = sorted(model_id(policy, name) for policy in map(load_policy, POLICIES)
                      for name in policy.context_names)
    response = httpx.get(f"{server.url}/v1/models", timeout=30)
    assert response.status_code == 200
    assert sorted(m["id"] for m in response.json()["data"]) == expected
    assert httpx.get(f"{server.url}/readyz", timeout=30).json() == {"ready": True}


def test_concurrent_completions_are_spread_over_both_replicas(server: RayServer) -> None:
    barrier = threading.Barrier(CONCURRENT)
    results: list[Any] = [None] * CONCURRENT

    def ask(i: int) -> None:
        body = {"model": POLICIES[i % 2], "max_tokens": 16,
                "messages": [{"role": "user", "content": f"Say something kind, number {i}."}]}
        barrier.wait()
        try:
            results[i] = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)
        except Exception as exc:  # reported below, with the others
            results[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)

    failures = [r if isinstance(r, Exception) else (r.status_code, r.text) for r in results
                if not isinstance(r, httpx.Response) or r.status_code != 200]
    assert not failures
    for i, response in enumerate(results):
        body = response.json()
        assert body["model"] == POLICIES[i % 2]
        assert body["choices"][0]["message"]["role"] == "assistant"
    replicas = {response.headers["x-psa-guard-replica"] for response in results}
    assert len(replicas) == REPLICAS, f"all {CONCURRENT} answered by one process: {replicas}"
    assert str(os.getpid()) not in replicas  # answered in the replicas, not in this process
    status = serve.status().applications[APP_NAME]
    assert status.status == "RUNNING"
    assert status.deployments[DEPLOYMENT_NAME].replica_states.get("RUNNING") == REPLICAS


def test_config_file_parses_and_builds() -> None:
    """deploy/ray_serve.yaml is a valid Serve config whose args the builder accepts."""
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG_FILE.read_text()))
    (application,) = schema.applications
    assert application.import_path == "psa_guard.serve.ray_deploy:app_builder"
    (deployment,) = application.deployments
    assert deployment.name == DEPLOYMENT_NAME
    assert deployment.ray_actor_options.num_cpus == application.args.get("threads", 1)
    built = app_builder(application.args)
    assert type(built).__name__ == "Application"


@pytest.mark.parametrize(("autoscaling", "match"), [
    ({"min_replica": 1, "max_replicas": 2}, "unknown autoscaling keys"),   # a typo: refused
    ({"min_replicas": 3, "max_replicas": 2}, "max_replicas"),              # Serve's own check
])
def test_bad_autoscaling_is_refused(autoscaling: dict[str, Any], match: str) -> None:
    from psa_guard.errors import ConfigurationError
    from psa_guard.serve.ray_deploy import build_deployment

    with pytest.raises(ConfigurationError, match=match):
        build_deployment(ServeConfig(), autoscaling=autoscaling)
