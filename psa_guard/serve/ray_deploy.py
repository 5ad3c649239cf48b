"""The OpenAI-compatible application on Ray Serve: one replica, one process, one model.

Each replica is a Ray actor that builds :func:`~psa_guard.serve.app.create_app` for itself, loads
the weights and the moderation scorer once in its constructor (so Ray only routes to a replica
that can answer, and a model that cannot load fails the deployment instead of its requests), and
batches its own concurrent requests with the generator's micro-batcher. Ray Serve's HTTP proxy
spreads requests over the replicas (power of two choices on their queue lengths); each reply
carries the answering process in ``x-psa-guard-replica``.

Three ways in:

* :func:`run` blocks until interrupted; ``psa-guard serve --ray --replicas N`` calls it.
* :func:`start` returns a :class:`RayServer` to stop later (tests, notebooks).
* :func:`app_builder` is the ``import_path`` of ``deploy/ray_serve.yaml`` for
  ``serve run`` / ``serve deploy``: the file's ``args`` become a :class:`ServeConfig`, and its
  ``deployments`` section sets replicas, autoscaling and CPUs.

Ray is imported inside the functions only: ``psa_guard`` imports without it
(``pip install "psa-guard[serve-ray]"`` adds it). See ``docs/serving_ray.md``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from psa_guard.errors import ConfigurationError, ModelError
from psa_guard.serve.config import ServeConfig

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve import Application as RayApplication

__all__ = [
    "APP_NAME",
    "DEPLOYMENT_NAME",
    "RayServeArgs",
    "RayServer",
    "app_builder",
    "build_deployment",
    "run",
    "start",
]

logger = logging.getLogger(__name__)

APP_NAME = "psa-guard"
"""The Ray Serve application's name (``serve status``, ``serve.delete``)."""

DEPLOYMENT_NAME = "PSAGuard"
"""The deployment's name; ``deploy/ray_serve.yaml`` sets its options under this name."""

# Serve's HTTP traffic passes small objects; Ray's floor is 75 MiB.
_OBJECT_STORE_BYTES = 128 * 1024**2

# One FastAPI application per replica process (a replica is its own Ray actor process). Both the
# replica's constructor and Serve's ASGI builder ask for it, so it is built, and loads, once.
_APPS: dict[ServeConfig, FastAPI] = {}
_APPS_LOCK = threading.Lock()


def _replica_app(config: ServeConfig) -> FastAPI:
    with _APPS_LOCK:
        app = _APPS.get(config)
        if app is None:
            from psa_guard.serve.app import create_app
            from psa_guard.serve.memory import Trimmer, pin_mmap_threshold

            pin_mmap_threshold()  # a replica is a long-running server too
            Trimmer().start()
            app = _APPS[config] = create_app(config)
        return app


def _load_replica(config: ServeConfig) -> Any:
    """Build the replica's application and load its weights and scorer (seconds; once).

    Raises:
        ModelError: the model or the scorer could not be loaded (Ray then retries the replica a
            few times and marks the deployment failed, with this message).
    """
    state = _replica_app(config).state.psa_guard
    started = time.perf_counter()
    state.warm_up()
    if state.failure is not None:
        raise ModelError(f"replica {os.getpid()} could not load the model or the scorer: "
                         f"{state.failure}")
    logger.info("replica %d loaded in %.1f s", os.getpid(), time.perf_counter() - started)
    return state


def build_deployment(config: ServeConfig, replicas: int = 1,
                     autoscaling: dict[str, Any] | None = None) -> RayApplication:
    """The application as a bound Ray Serve deployment (for ``serve.run``).

    Args:
        config: what each replica serves. ``config.threads`` torch threads per replica, and as
            many CPUs reserved for it (``ray_actor_options.num_cpus``); ``host`` and ``port`` are
            Serve's (``serve.start``), not the replica's.
        replicas: a fixed number of replicas (without ``autoscaling``).
        autoscaling: Ray Serve's ``autoscaling_config`` (``min_replicas``, ``max_replicas``,
            ``target_ongoing_requests``, ...) instead of a fixed number.

    Each replica admits up to ``config.max_queue`` requests at once (``max_ongoing_requests``),
    so its micro-batcher sees them together; up to as many more wait in each Serve proxy
    (``max_queued_requests``), and beyond that the proxy answers 503 at once.

    Raises:
        ConfigurationError: bad ``replicas`` or ``autoscaling``, or an unknown configuration.
        PolicyError: a policy cannot be read (checked here, before any replica starts).
    """
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ConfigurationError(f"--replicas must be a positive integer, got {replicas!r}")
    if autoscaling is not None and replicas != 1:
        raise ConfigurationError("pass a fixed number of replicas or an autoscaling config, "
                                 "not both (autoscaling sets min_replicas and max_replicas)")
    from psa_guard.serve.apps import build_catalogue

    build_catalogue(config)  # policies and configuration name: fail here, not in every replica

    from ray import serve
    from ray.serve.config import AutoscalingConfig

    unknown = sorted(set(autoscaling or ()) - set(AutoscalingConfig.model_fields))
    if unknown:  # Serve ignores unknown keys; a typo would silently keep a default
        raise ConfigurationError(f"unknown autoscaling keys {unknown}; valid: "
                                 f"{', '.join(sorted(AutoscalingConfig.model_fields))}")

    def asgi_app() -> FastAPI:  # Serve calls it in the replica, after the constructor
        return _replica_app(config)

    @serve.ingress(asgi_app)
    class PSAGuardReplica:
        """One replica: one process, one loaded model, one micro-batcher."""

        def __init__(self) -> None:
            self._state = _load_replica(config)

        def check_health(self) -> None:
            """Serve's periodic probe: unhealthy once loading has failed."""
            if self._state.failure is not None:
                raise ModelError(f"replica {os.getpid()}: {self._state.failure}")

    options: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "ray_actor_options": {"num_cpus": config.threads},
        "max_ongoing_requests": config.max_queue,
        "max_queued_requests": config.max_queue,
    }
    if autoscaling is not None:
        options["autoscaling_config"] = dict(autoscaling)
    else:
        options["num_replicas"] = replicas
    try:
        deployment = serve.deployment(**options)(PSAGuardReplica)
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigurationError(f"invalid Ray Serve deployment options {options}: {exc}"
                                 ) from exc
    return deployment.bind()


class RayServeArgs(BaseModel):
    """The ``args`` of ``deploy/ray_serve.yaml`` (the :class:`ServeConfig` fields a replica
    uses); unknown keys are refused.

    Host, port, replicas and CPUs are not here: the file's ``http_options`` and ``deployments``
    sections set them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    policies: list[str] = Field(default_factory=lambda: ["general_assistant"], min_length=1)
    config: str = "base"
    model: str = "default"
    threads: int = Field(default=1, ge=1)
    api_keys: Path | None = None
    max_queue: int = Field(default=64, ge=1)
    timeout_s: float = Field(default=300.0, gt=0)
    max_body_bytes: int = Field(default=1_000_000, ge=1)
    default_max_tokens: int = Field(default=256, ge=1)

    def to_config(self) -> ServeConfig:
        fields = self.model_dump()
        fields["policies"] = tuple(fields["policies"])
        # Serve's proxy binds, not ServeConfig: its host check cannot see http_options.host
        # (docs/serving_ray.md: a public host needs api_keys).
        return ServeConfig(**fields)


def app_builder(args: dict[str, Any]) -> RayApplication:
    """The application of a Ray Serve config file (``import_path:
    psa_guard.serve.ray_deploy:app_builder``); Serve calls it with the file's ``args``.

    Args:
        args: ``policies`` (a list, or one name), ``config``, ``model``, ``threads``,
            ``api_keys``, ``max_queue``, ``timeout_s``, ``max_body_bytes``,
            ``default_max_tokens``; all optional.

    Raises:
        ConfigurationError: an unknown key or a bad value (named).
    """
    args = dict(args)
    if isinstance(args.get("policies"), str):
        args["policies"] = [args["policies"]]
    try:
        parsed = RayServeArgs.model_validate(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'args'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigurationError(f"invalid args for psa_guard.serve.ray_deploy:app_builder: "
                                 f"{problems} (valid keys: "
                                 f"{', '.join(RayServeArgs.model_fields)})") from exc
    return build_deployment(parsed.to_config())


@dataclasses.dataclass
class RayServer:
    """A running application on Ray Serve; :meth:`stop` (or leaving ``with``) takes it down.

    Attributes:
        url: the base URL of Serve's HTTP proxy (append ``/v1``).
        owns_ray: this process started Ray, so :meth:`stop` shuts Ray down too; otherwise it only
            deletes the application from the cluster it joined.
    """

    url: str
    owns_ray: bool
    _stopped: bool = False

    def stop(self) -> None:
        """Delete the application; with a Ray this process started, stop Serve and Ray too."""
        if self._stopped:
            return
        self._stopped = True
        import ray
        from ray import serve

        try:
            if self.owns_ray:
                serve.shutdown()
            else:
                serve.delete(APP_NAME)
        finally:
            if self.owns_ray:
                ray.shutdown()

    def __enter__(self) -> RayServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _init_ray() -> bool:
    """Join the Ray this process or ``RAY_ADDRESS`` names, or start a small local one; whether
    this process started it."""
    import ray

    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(logging_level=logging.WARNING)  # a cluster is sized by its own nodes
        return False
    ray.init(object_store_memory=_OBJECT_STORE_BYTES, include_dashboard=False,
             logging_level=logging.WARNING)
    return True


def start(config: ServeConfig, replicas: int = 1, host: str = "127.0.0.1", port: int = 8000,
          autoscaling: dict[str, Any] | None = None) -> RayServer:
    """Deploy the application on Ray Serve and return once every replica has loaded.

    Uses the Ray this process already joined; else the cluster at ``RAY_ADDRESS``; else starts a
    local Ray (a 128 MiB object store, no dashboard) that :meth:`RayServer.stop` shuts down.

    Raises:
        ConfigurationError: bad arguments, a public ``host`` without API keys (as
            :class:`ServeConfig` refuses it), or a local Ray with fewer CPUs than the replicas
            reserve (``replicas * config.threads``).
        PolicyError: a policy cannot be read.
        ModelError: a replica could not start (Ray tried each 3 times); the message is the
            replica's error, such as a missing model folder on a node.
    """
    config = dataclasses.replace(config, host=host, port=port)  # checks a public host has keys
    application = build_deployment(config, replicas, autoscaling)
    import ray
    from ray import serve

    owns_ray = _init_ray()
    server = RayServer(f"http://{host}:{port}", owns_ray)
    try:
        count = replicas if autoscaling is None else int(autoscaling.get("min_replicas", 1))
        needed = count * config.threads
        cpus = ray.cluster_resources().get("CPU", 0.0)
        if needed > cpus:
            message = (f"{count} replicas x {config.threads} threads need {needed} CPUs, "
                       f"Ray has {cpus:g}")
            if owns_ray:
                raise ConfigurationError(f"{message}: lower --replicas or --threads, or join a "
                                         f"larger Ray cluster with RAY_ADDRESS")
            logger.warning("%s; replicas wait until the cluster has room", message)
        started = time.perf_counter()
        serve.start(http_options={"host": host, "port": port})
        try:
            serve.run(application, name=APP_NAME, route_prefix="/", blocking=False)
        except RuntimeError as exc:  # Ray's says "failed to update"; the replica's error says why
            raise ModelError(f"Ray Serve could not start the replicas: {_deploy_failure(exc)}"
                             ) from exc
        logger.info("psa-guard on Ray Serve: %s replica(s) ready on %s/v1 in %.1f s",
                    replicas if autoscaling is None else "autoscaled", server.url,
                    time.perf_counter() - started)
    except BaseException:
        server.stop()
        raise
    return server


def _deploy_failure(exc: Exception) -> str:
    """The last line of each failed deployment's error (the replica's exception), else ``exc``."""
    from ray import serve

    try:
        deployments = serve.status().applications[APP_NAME].deployments
    except Exception:  # Serve itself is gone: Ray's own message is all there is
        return str(exc)
    reasons = [lines[-1] for d in deployments.values() if d.message
               for lines in [[line for line in d.message.splitlines() if line.strip()]]]
    return "; ".join(reasons) or str(exc)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(config: ServeConfig, replicas: int = 1, host: str = "127.0.0.1",
        port: int = 8000) -> None:
    """Serve on Ray until interrupted (Ctrl-C or SIGTERM), then take the application down.

    What ``psa-guard serve --ray --replicas N`` calls; the errors are :func:`start`'s.
    """
    with start(config, replicas, host, port):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            logger.info("interrupted: stopping the Ray Serve application")
