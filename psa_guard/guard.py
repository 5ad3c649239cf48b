"""The policy guard: a policy's input and output checks around one generation.

Flow for one request (``context`` picks the policy context; ``None`` is the policy's default)::

    messages --input check--> allow | steer (a system instruction is added) | answer with the
                              policy's message (refuse, refuse_with_resources, block, escalate)
             --generate-->    reply
             --output check-> allow | steer (regenerate once with the instruction) | replace the
                              reply with the policy's message

Scores come from a :class:`~psa_guard.moderation.base.ModerationScorer`. When the scorer cannot
answer, the guard fails closed: the context's ``on_unavailable`` action applies and the reason is
reported. Every check is recorded as a :class:`GuardStep`, so callers can report the actions taken.
The guard is framework-free; the LangChain chat model and middleware wire it in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from psa_guard.errors import ModerationUnavailableError
from psa_guard.generation import Completion, StreamChunk
from psa_guard.messages import Message, last_user_text, normalize_messages
from psa_guard.policy import Policy
from psa_guard.policy.routing import Decision, ResolvedContext

if TYPE_CHECKING:
    from psa_guard.moderation.base import ModerationScorer
    from psa_guard.zo.optimizer import RepairResult

#: Regenerates a flagged reply: (messages, flagged completion, its score, the score to get
#: below) -> result.
Repairer = Callable[[list[Message], Completion, float, float], "RepairResult"]

__all__ = [
    "GuardStep", "GuardedReply", "PolicyGuard", "Repairer", "last_user_text", "with_steer",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuardStep:
    """One check and what it decided.

    Attributes:
        stage: ``"input"`` or ``"output"``.
        action: the action taken (``allow``, ``steer``, ``refuse``, ...).
        score: the moderation harm score, or None when the scorer was unavailable.
        reason: why the scorer was unavailable, else None.
    """

    stage: str
    action: str
    score: float | None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GuardedReply:
    """The outcome of a guarded request.

    Attributes:
        text: what the user sees.
        context: the policy context used.
        steps: every check, in order.
        completion: the model's last generation (None when the input check answered alone).
    """

    text: str
    context: str
    steps: tuple[GuardStep, ...]
    completion: Completion | None = None

    @property
    def actions(self) -> list[str]:
        return [step.action for step in self.steps]

    def metadata(self) -> dict[str, Any]:
        """What to report (``response_metadata["psa_guard"]`` and output lines)."""
        return {"context": self.context, "actions": [s.as_dict() for s in self.steps],
                "generated": self.completion is not None}


def with_steer(messages: Sequence[Message], instruction: str | None) -> list[Message]:
    """Add a steering instruction to the system turn (creating one if needed)."""
    if not instruction:
        return list(messages)
    steered = [dict(m) for m in messages]
    if steered and steered[0]["role"] == "system":
        steered[0]["content"] = f"{steered[0]['content']}\n\n{instruction}"
    else:
        steered.insert(0, {"role": "system", "content": instruction})
    return steered


@dataclass
class PolicyGuard:
    """Applies one policy's checks.

    Args:
        policy: the loaded policy.
        scorer: the moderation scorer; None uses the local default scorer (loaded on first use).
        locale: the user's locale, to pick resources (None shows all).
    """

    policy: Policy
    scorer: ModerationScorer | None = None
    locale: str | None = None

    def get_scorer(self) -> ModerationScorer:
        """The scorer (the local default scorer is loaded on first use)."""
        if self.scorer is None:
            from psa_guard.moderation import default_scorer

            self.scorer = default_scorer()
        return self.scorer

    def resolve(self, context: str | None) -> ResolvedContext:
        """The context's settings (PolicyError listing valid contexts if unknown)."""
        return self.policy.resolve(context)

    def check(
        self, resolved: ResolvedContext, stage: str, text: str, locale: str | None = None
    ) -> tuple[Decision, GuardStep]:
        """Score ``text`` and decide; fails closed if the scorer cannot answer."""
        locale = locale or self.locale
        try:
            score = float(self.get_scorer().score([text])[0])
        except ModerationUnavailableError as exc:
            logger.warning("moderation unavailable at %s check: %s", stage, exc.reason)
            decision = resolved.unavailable(exc.reason, locale)
            return decision, GuardStep(stage, decision.action, None, exc.reason)
        decision = resolved.decide(min(max(score, 0.0), 1.0), locale)
        return decision, GuardStep(stage, decision.action, round(score, 4))

    def screen_input(
        self, messages: Sequence[Message] | str, context: str | None, locale: str | None = None
    ) -> tuple[ResolvedContext, Decision, GuardStep, list[Message]]:
        """Check the last user turn; returns the messages to generate from (steered if needed)."""
        normalized = normalize_messages(messages)
        resolved = self.resolve(context)
        decision, step = self.check(resolved, "input", last_user_text(normalized), locale)
        steered = with_steer(normalized, decision.message if decision.action == "steer" else None)
        return resolved, decision, step, steered

    def run(
        self,
        messages: Sequence[Message] | str,
        context: str | None,
        generate: Callable[[list[Message]], Completion],
        locale: str | None = None,
        repair: Repairer | None = None,
    ) -> GuardedReply:
        """Input check, generation, output check (with at most one steered regeneration).

        Args:
            messages: the conversation.
            context: the policy context (None: the default).
            generate: produces a completion for a message list.
            locale: the user's locale for resources (None: the guard's).
            repair: runs embedding optimisation for the ``repair`` action (None: the policy's
                fallback message is used at once).
        """
        return self.run_batch(
            [(messages, context)], lambda batch: [generate(m) for m in batch], locale, repair
        )[0]

    def run_batch(
        self,
        requests: Sequence[tuple[Sequence[Message] | str, str | None]],
        generate: Callable[[list[list[Message]]], list[Completion]],
        locale: str | None = None,
        repair: Repairer | None = None,
    ) -> list[GuardedReply]:
        """:meth:`run` for many ``(messages, context)`` requests, generating in batches.

        Requests answered by the input check are not generated; the rest are generated in one
        call, checked, and those whose output check says ``steer`` (and were not steered yet) are
        regenerated together once with the instruction.
        """
        replies: list[GuardedReply | None] = [None] * len(requests)
        pending: list[tuple[int, ResolvedContext, list[GuardStep], list[Message], bool]] = []
        for index, (messages, context) in enumerate(requests):
            resolved, decision, step, prepared = self.screen_input(messages, context, locale)
            if decision.produces_response or decision.action == "repair":  # repair: at output
                pending.append((index, resolved, [step], prepared, decision.action == "steer"))
            else:
                replies[index] = GuardedReply(decision.render(), resolved.name, (step,))
        for attempt in range(2):
            if not pending:
                break
            completions = generate([prepared for _, _, _, prepared, _ in pending])
            retry = []
            for (index, resolved, steps, prepared, steered), completion in zip(
                pending, completions
            ):
                decision, step = self.check(resolved, "output", completion.text, locale)
                steps = [*steps, step]
                if decision.action == "steer" and not steered and attempt == 0:
                    retry.append((index, resolved, steps, with_steer(prepared, decision.message),
                                  True))
                    continue
                if decision.action == "repair":
                    text, repair_steps = self._repair(resolved, prepared, completion, decision,
                                                      step, locale, repair)
                    steps.extend(repair_steps)
                else:
                    text = completion.text if decision.produces_response else decision.render()
                replies[index] = GuardedReply(text, resolved.name, tuple(steps), completion)
            pending = retry
        return [reply for reply in replies if reply is not None]

    def _repair(
        self,
        resolved: ResolvedContext,
        prepared: list[Message],
        completion: Completion,
        decision: Decision,
        step: GuardStep,
        locale: str | None,
        repair: Repairer | None,
    ) -> tuple[str, list[GuardStep]]:
        """The ``repair`` action: optimise and regenerate, else the policy's fallback message.

        The fallback is also used when the repaired reply is degenerate (empty or repetitive):
        it is not flagged, but it is no answer either.
        """
        if repair is None or step.score is None:
            return decision.render(), [GuardStep("repair", "repair", None, "no repairer")]
        threshold = decision.threshold if decision.threshold is not None else 0.5
        result = repair(prepared, completion, step.score, threshold)
        after = resolved.decide(min(max(result.score, 0.0), 1.0), locale)
        reason = (f"{result.iterations} iterations, {result.scorer_calls} scorer calls, "
                  f"{result.seconds:.1f} s")
        if after.produces_response and result.degenerate:  # not flagged, but no answer
            reason += "; degenerate reply (empty or repetitive): fallback message"
            after = decision
        repair_step = GuardStep("repair", after.action, round(result.score, 4), reason)
        if after.produces_response:
            return result.text, [repair_step]
        return (decision.render() if after.action == "repair" else after.render()), [repair_step]

    def stream(
        self,
        messages: Sequence[Message] | str,
        context: str | None,
        start: Callable[[list[Message]], Iterator[StreamChunk]],
        locale: str | None = None,
        window_chars: int = 80,
    ) -> Iterator[tuple[str, GuardedReply | None]]:
        """Streaming counterpart of :meth:`run`: yields ``(text, None)`` pieces, then ``("", reply)``.

        Text is released only after the reply so far passed the output check, which runs every
        ``window_chars`` characters and at the end, so flagged text is never shown. When a check
        flags the reply, generation stops and the policy's message follows what was already
        shown. An output-stage ``steer`` cannot regenerate text already shown: it is delivered;
        likewise ``repair`` cannot rewrite shown text, so its fallback message is used.
        """
        resolved, decision, step, prepared = self.screen_input(messages, context, locale)
        if not decision.produces_response:
            text = decision.render()
            yield text, None
            yield "", GuardedReply(text, resolved.name, (step,))
            return
        approved, pending = "", ""
        out_step: GuardStep | None = None
        pieces = start(prepared)
        try:
            for piece in pieces:
                pending += piece.text
                if piece.completion is None and len(pending) < window_chars:
                    continue
                out_decision, out_step = self.check(resolved, "output", approved + pending, locale)
                if not out_decision.produces_response:
                    message = out_decision.render()
                    shown = f"\n\n{message}" if approved else message
                    yield shown, None
                    yield "", GuardedReply(approved + shown, resolved.name, (step, out_step))
                    return
                if pending:
                    yield pending, None
                approved, pending = approved + pending, ""
                if piece.completion is not None:
                    steps = (step, out_step)
                    yield "", GuardedReply(approved, resolved.name, steps, piece.completion)
                    return
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()
