"""Routing core: from a validated policy document to the settings of one context, and to a decision.

Framework-free and pure: nothing here reads files. The loader calls :func:`check_document` to report
cross-reference problems with line numbers; :class:`~psa_guard.policy.policy.Policy` calls
:func:`resolve_contexts` to build every :class:`ResolvedContext` once.

Inheritance (``extends``) is one level of rule: a key written in a context replaces the inherited
value as a whole; keys it does not write come from its base (recursively), then from the defaults
below. Cycles and unknown bases are errors.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from psa_guard.errors import ConfigurationError, PolicyError
from psa_guard.policy.issues import Issue
from psa_guard.policy.schema import (
    ATTRIBUTES,
    MESSAGE_ACTIONS,
    ActionName,
    Artifacts,
    HardConstraint,
    Messages,
    Moderation,
    ModerationRule,
    PolicyDocument,
    Resource,
)

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_DIREG_LAMBDA",
    "Decision",
    "ResolvedContext",
    "check_document",
    "resolve_contexts",
]

#: Shown when the scorer is unavailable and the policy has no message for its fallback action.
UNAVAILABLE_MESSAGE = "I can't answer this right now because a safety check is unavailable."

#: ``beta`` of a context (and its bases) that does not set one.
DEFAULT_BETA = 1.0
#: ``direg_lambda`` of a context (and its bases) that does not set one: DiReg off.
DEFAULT_DIREG_LAMBDA = 0.0


@dataclass(frozen=True)
class Decision:
    """What to do with a message (or a reply) given its moderation harm score.

    Attributes:
        action: one of ``allow, steer, refuse, refuse_with_resources, block, escalate``.
        message: the policy's text for this action (``None`` for ``allow`` and an unset ``steer``).
        resources: help resources to show (only for ``refuse_with_resources`` and ``escalate``),
            filtered by locale.
        score: the harm score that was decided on.
        threshold: the ``at`` of the rule that fired (``None`` when no rule did: ``allow``).
        context: the context name.
        reason: why the decision was taken without a score (the scorer was unavailable), or None.
    """

    action: ActionName
    message: str | None
    resources: tuple[Resource, ...]
    score: float | None
    threshold: float | None
    context: str
    reason: str | None = None

    @property
    def produces_response(self) -> bool:
        """True for ``allow`` and ``steer``: the model's reply is delivered (steered or not)."""
        return self.action in ("allow", "steer")

    def render(self) -> str:
        """The user-facing text: the message, then one line per resource (empty for ``allow``)."""
        lines = [self.message] if self.message and self.action != "steer" else []
        for resource in self.resources:
            line = f"- {resource.name}: {resource.contact}"
            if resource.url:
                line += f" ({resource.url})"
            lines.append(line)
        return "\n".join(lines)


@dataclass(frozen=True)
class ResolvedContext:
    """The fully inherited settings of one context.

    Attributes:
        name: the context name.
        description: its description (inherited if unset).
        preference: the normalised preference vector (sums to 1) in :data:`ATTRIBUTES` order.
        beta: reward temperature (> 0; the reward model's weight is ``1 / beta``).
        direg_lambda: DiReg scale (>= 0).
        hard_constraint: the safety stage settings.
        rules: moderation rules, ``at`` strictly increasing.
        messages: the replies per action.
        resources: all help resources (every locale).
        harm_vector_path: the DiReg harm vector file, resolved against the policy folder, or None.
        adapter_path: the Pv-Arm adapter, resolved against the policy folder, or None.
        lineage: this context, then the contexts it inherits from, nearest first.
        on_unavailable: the fail-closed action when the moderation scorer cannot answer.
    """

    name: str
    description: str
    preference: tuple[float, ...]
    beta: float
    direg_lambda: float
    hard_constraint: HardConstraint
    rules: tuple[ModerationRule, ...]
    messages: Messages
    resources: tuple[Resource, ...]
    harm_vector_path: Path | None = None
    adapter_path: Path | None = None
    lineage: tuple[str, ...] = field(default=())
    on_unavailable: ActionName = "refuse"

    @property
    def preference_map(self) -> Mapping[str, float]:
        """The normalised preference as a read-only ``{attribute: weight}`` mapping."""
        return MappingProxyType(dict(zip(ATTRIBUTES, self.preference, strict=True)))

    def resources_for(self, locale: str | None = None) -> tuple[Resource, ...]:
        """The resources that apply to ``locale`` (all of them for ``None``), in file order."""
        return tuple(resource for resource in self.resources if resource.applies_to(locale))

    def unavailable(self, reason: str, locale: str | None = None) -> Decision:
        """Fail closed: the decision when no moderation score could be obtained.

        The action is the context's ``on_unavailable`` (default ``refuse``); its message is the
        policy's text for that action, or a generic one when the policy has none.
        """
        action = self.on_unavailable
        resources = (
            self.resources_for(locale) if action in ("refuse_with_resources", "escalate") else ()
        )
        message = self.messages.for_action(action)
        if message is None and action not in ("allow", "steer"):
            message = UNAVAILABLE_MESSAGE
        return Decision(action, message, resources, None, None, self.name, reason)

    def decide(self, harm_score: float, locale: str | None = None) -> Decision:
        """Pick the action for a moderation harm score.

        The rule with the largest ``at`` that is ``<= harm_score`` fires; when the score is below
        every rule (or there are none) the action is ``allow``. A threshold is inclusive: a score
        equal to ``at`` takes that rule's action.

        Args:
            harm_score: the moderation score, a finite number in [0, 1] (1 = surely harmful).
            locale: the user's locale (``"en-GB"``) to filter resources; ``None`` keeps all.

        Returns:
            The decision, with the message and resources to show.

        Raises:
            ConfigurationError: ``harm_score`` is not a finite number in [0, 1].
        """
        if isinstance(harm_score, bool) or not isinstance(harm_score, (int, float)):
            raise ConfigurationError(
                f"harm_score must be a number in [0, 1], got {type(harm_score).__name__}"
            )
        if not math.isfinite(harm_score) or not 0.0 <= harm_score <= 1.0:
            raise ConfigurationError(
                f"harm_score must be a finite number in [0, 1], got {harm_score!r}; "
                "clip or rescale the moderation score first"
            )
        fired: ModerationRule | None = None
        for rule in self.rules:
            if rule.at <= harm_score:
                fired = rule
            else:
                break
        action: ActionName = fired.action if fired is not None else "allow"
        resources = (
            self.resources_for(locale) if action in ("refuse_with_resources", "escalate") else ()
        )
        return Decision(
            action=action,
            message=self.messages.for_action(action),
            resources=resources,
            score=float(harm_score),
            threshold=fired.at if fired is not None else None,
            context=self.name,
        )


def _lineage(document: PolicyDocument, name: str) -> tuple[tuple[str, ...], Issue | None]:
    """The chain ``name, base, base-of-base, ...`` and the first problem on the way, if any."""
    chain = [name]
    current = document.contexts[name]
    while current.extends is not None:
        base = current.extends
        if base not in document.contexts:
            valid = ", ".join(sorted(document.contexts))
            return tuple(chain), Issue(
                ("contexts", chain[-1], "extends"),
                f"context {chain[-1]!r} extends {base!r}, which is not a context of this policy",
                f"use one of: {valid} (or remove 'extends')",
            )
        if base in chain:
            members = chain[chain.index(base) :]
            start = members.index(min(members))  # the same text whichever member finds the cycle
            ring = members[start:] + members[:start]
            cycle = " -> ".join([*ring, ring[0]])
            return tuple(chain), Issue(
                ("contexts", ring[0], "extends"),
                f"inheritance cycle: {cycle}",
                "remove 'extends' from one context of the cycle",
            )
        chain.append(base)
        current = document.contexts[base]
    return tuple(chain), None


def _inherited(document: PolicyDocument, chain: tuple[str, ...], key: str) -> Any:
    """The value of ``key`` from the nearest context in ``chain`` that writes it."""
    for name in chain:
        spec = document.contexts[name]
        if key in spec.model_fields_set and getattr(spec, key) is not None:
            return getattr(spec, key)
    return None


def _where(
    document: PolicyDocument, chain: tuple[str, ...], key: str
) -> tuple[str | int, ...] | None:
    """The location of ``key`` in the nearest context of ``chain`` that writes it, if any."""
    for name in chain:
        if key in document.contexts[name].model_fields_set:
            return ("contexts", name, key)
    return None


def check_document(document: PolicyDocument) -> list[Issue]:
    """Cross-reference checks that a single pydantic model cannot make.

    Checks: ``default_context`` names a context; every ``extends`` names a context and no cycle
    exists; after inheritance each context has a ``preference``; every action a moderation rule can
    pick that needs a message has one; ``refuse_with_resources`` has at least one resource.

    Args:
        document: a structurally valid document.

    Returns:
        The problems found, in file order (empty when the document is consistent).
    """
    issues: list[Issue] = []
    seen: set[tuple[object, ...]] = set()

    def report(issue: Issue, *key: object) -> None:
        # an inherited problem (or a cycle seen from each of its members) is reported once
        if (issue.loc, *key) not in seen:
            seen.add((issue.loc, *key))
            issues.append(issue)

    if document.default_context not in document.contexts:
        report(
            Issue(
                ("default_context",),
                f"default context {document.default_context!r} is not defined under 'contexts'",
                f"use one of: {', '.join(sorted(document.contexts))}",
            )
        )
    for name in document.contexts:
        chain, problem = _lineage(document, name)
        if problem is not None:
            report(problem)
            continue
        if _inherited(document, chain, "preference") is None:
            report(
                Issue(
                    ("contexts", name),
                    f"context {name!r} has no preference vector (set none and inherit none)",
                    "add 'preference:' with weights for "
                    + ", ".join(ATTRIBUTES)
                    + " (or 'extends:' a context that has one)",
                )
            )
        moderation = _inherited(document, chain, "moderation")
        messages = _inherited(document, chain, "messages") or Messages()
        resources = _inherited(document, chain, "resources") or ()
        rules = moderation.rules if moderation is not None else ()
        sources = (_where(document, chain, "messages"), _where(document, chain, "resources"))
        for index, rule in enumerate(rules):
            rule_loc = (*(_where(document, chain, "moderation") or ()), "rules", index, "action")
            if rule.action in MESSAGE_ACTIONS and messages.for_action(rule.action) is None:
                report(
                    Issue(
                        rule_loc,
                        f"the rule at {rule.at} picks {rule.action!r}, but context {name!r} has "
                        "no message for it",
                        f"add 'messages: {{{rule.action}: ...}}' to context {name!r} "
                        "(or to the context it extends)",
                    ),
                    "message",
                    sources[0],
                )
            if rule.action == "refuse_with_resources" and not resources:
                report(
                    Issue(
                        rule_loc,
                        f"the rule at {rule.at} picks 'refuse_with_resources', but context "
                        f"{name!r} has no resources",
                        "add 'resources:' (name, contact, locales) or use action 'refuse'",
                    ),
                    "resources",
                    sources[1],
                )
    return issues


def _artifact_path(base_dir: Path | None, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = Path(os.path.normpath(base_dir / path))  # string-only: no file access
    return path


def resolve_contexts(
    document: PolicyDocument, base_dir: Path | None = None
) -> dict[str, ResolvedContext]:
    """Build the fully inherited settings of every context. Pure: touches no file.

    Args:
        document: a structurally valid document.
        base_dir: folder that relative artifact paths are joined to (the policy file's folder);
            ``None`` leaves them relative.

    Returns:
        ``{context name: ResolvedContext}`` in file order.

    Raises:
        PolicyError: :func:`check_document` found problems (the message lists them by key).
    """
    issues = check_document(document)
    if issues:
        details = "; ".join(
            f"{'.'.join(str(part) for part in issue.loc)}: {issue.message} (fix: {issue.fix})"
            for issue in issues
        )
        raise PolicyError(f"policy {document.name!r} is inconsistent: {details}", issues)
    resolved: dict[str, ResolvedContext] = {}
    for name in document.contexts:
        chain, _ = _lineage(document, name)
        artifacts: Artifacts = _inherited(document, chain, "artifacts") or Artifacts()
        moderation: Moderation = _inherited(document, chain, "moderation") or Moderation()
        beta = _inherited(document, chain, "beta")
        direg_lambda = _inherited(document, chain, "direg_lambda")
        resolved[name] = ResolvedContext(
            name=name,
            description=_inherited(document, chain, "description") or "",
            preference=_inherited(document, chain, "preference").normalised(),
            beta=float(beta) if beta is not None else DEFAULT_BETA,
            direg_lambda=float(direg_lambda) if direg_lambda is not None else DEFAULT_DIREG_LAMBDA,
            hard_constraint=_inherited(document, chain, "hard_constraint") or HardConstraint(),
            rules=moderation.rules,
            messages=_inherited(document, chain, "messages") or Messages(),
            resources=tuple(_inherited(document, chain, "resources") or ()),
            harm_vector_path=_artifact_path(base_dir, artifacts.harm_vector),
            adapter_path=_artifact_path(base_dir, artifacts.adapter),
            lineage=chain,
            on_unavailable=moderation.on_unavailable,
        )
    return resolved
