"""The Ray Serve entry points' argument checks, which run before Ray is imported (no ray needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from psa_guard.errors import ConfigurationError, PolicyError
from psa_guard.serve.config import ServeConfig
from psa_guard.serve.ray_deploy import RayServeArgs, app_builder, build_deployment, start


def test_importing_the_module_does_not_import_ray() -> None:
    code = ("import sys, psa_guard.serve.ray_deploy; "
            "print(any(m == 'ray' or m.startswith('ray.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_args_default_to_servable_config() -> None:
    assert RayServeArgs().to_config() == ServeConfig()


def test_one_policy_may_be_a_string() -> None:
    with pytest.raises((ConfigurationError, PolicyError), match="no_such_policy"):  # as a list
        app_builder({"policies": "no_such_policy"})


def test_args_become_a_serve_config() -> None:
    config = RayServeArgs.model_validate({
        "policies": ["kids_tutor", "customer_service"], "config": "full", "model": "/m",
        "threads": 2, "api_keys": "/k.yaml", "max_queue": 8, "timeout_s": 30,
        "max_body_bytes": 1000, "default_max_tokens": 64}).to_config()
    assert config == ServeConfig(policies=("kids_tutor", "customer_service"), config="full",
                                 model="/m", threads=2, api_keys=Path("/k.yaml"), max_queue=8,
                                 timeout_s=30.0, max_body_bytes=1000, default_max_tokens=64)


@pytest.mark.parametrize(("args", "named"), [
    ({"policy": ["general_assistant"]}, "policy"),          # unknown key (a typo of policies)
    ({"host": "0.0.0.0"}, "host"),                          # Serve's http_options bind, not args
    ({"replicas": 2}, "replicas"),                          # the deployments section sets these
    ({"policies": []}, "policies"),
    ({"threads": 0}, "threads"),
    ({"max_queue": "many"}, "max_queue"),
    ({"timeout_s": 0}, "timeout_s"),
])
def test_bad_args_are_refused_by_name(args: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named) as caught:
        app_builder(args)
    assert "valid keys: policies" in str(caught.value)


@pytest.mark.parametrize("replicas", [0, -1, True, 1.5])
def test_replicas_must_be_a_positive_integer(replicas: Any) -> None:
    with pytest.raises(ConfigurationError, match="--replicas"):
        build_deployment(ServeConfig(), replicas=replicas)


def test_replicas_and_autoscaling_are_exclusive() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        build_deployment(ServeConfig(), replicas=2, autoscaling={"max_replicas": 4})


def test_a_public_host_without_keys_is_refused_before_ray_starts() -> None:
    with pytest.raises(ConfigurationError, match="refusing to bind 0.0.0.0"):
        start(ServeConfig(), host="0.0.0.0")
