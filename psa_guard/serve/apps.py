"""The applications a server offers: one model id per (policy, context)."""

from __future__ import annotations

from dataclasses import dataclass

from psa_guard.moderation.base import ModerationScorer
from psa_guard.pipeline import RequestPipeline
from psa_guard.policy import Policy, ResolvedContext, load_policy
from psa_guard.serve.config import ServeConfig

__all__ = ["Application", "build_catalogue", "model_id"]


@dataclass(frozen=True)
class Application:
    """One model id: a policy's context, and the pipeline that serves it.

    Attributes:
        id: the ``model`` a request names.
        policy: the policy's name.
        context: the context's settings.
        pipeline: the request pipeline (one per policy; all share one generator per process).
    """

    id: str
    policy: str
    context: ResolvedContext
    pipeline: RequestPipeline


def model_id(policy: Policy, context: str) -> str:
    """``general_assistant`` for a policy's default context, ``NAME/SHORT`` for the others
    (``mental_health_support/youth`` for the context ``mental_health_support_youth``)."""
    if context == policy.default_context:
        return policy.name
    prefix = f"{policy.name}_"
    return f"{policy.name}/{context[len(prefix):] if context.startswith(prefix) else context}"


def build_catalogue(config: ServeConfig, scorer: ModerationScorer | None = None
                    ) -> dict[str, Application]:
    """Read the policies (small YAML files; no weights) and name every application.

    Raises:
        PolicyError: a policy cannot be read, or two give the same model id.
    """
    from psa_guard.errors import PolicyError

    apps: dict[str, Application] = {}
    for source in config.policies:
        policy = load_policy(source)
        pipeline = RequestPipeline(config.config, model=config.model, threads=config.threads,
                                   policy=policy, scorer=scorer)
        for name in policy.context_names:
            ident = model_id(policy, name)
            if ident in apps:
                raise PolicyError(f"two served contexts are both named {ident!r} (from policies "
                                  f"{apps[ident].policy!r} and {policy.name!r}); serve one of them")
            apps[ident] = Application(ident, policy.name, policy.resolve(name), pipeline)
    return apps
