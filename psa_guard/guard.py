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

from psa_guard.generation import Completion, StreamChunk
from psa_guard.holdback import DEFAULT_WINDOW_CHARS, checkpoints, next_checkpoint, rolled_back
from psa_guard.messages import Message, last_user_text, normalize_messages
from psa_guard.moderation.base import ModerationScorer, Scores, score_detailed
from psa_guard.moderation.local import LazyDefaultScorer
from psa_guard.policy import Policy
from psa_guard.policy.routing import Decision, ResolvedContext

if TYPE_CHECKING:
    from psa_guard.zo.optimizer import RepairResult

#: Regenerates a flagged reply: (messages, flagged completion, its score, the score to get
#: below) -> result.
Repairer = Callable[[list[Message], Completion, float, float], "RepairResult"]

__all__ = [
    "GuardStep", "GuardedReply", "PolicyGuard", "Repairer", "Screen", "last_user_text",
    "with_steer",
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
        category: the category whose rule decided the action (None: the overall score did).
        categories: the scores of the categories the context's rules read (None: it has none).
    """

    stage: str
    action: str
    score: float | None
    reason: str | None = None
    category: str | None = None
    categories: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The step as reported; the category fields only when categories were read."""
        out = asdict(self)
        for key in ("category", "categories"):
            if out[key] is None:
                del out[key]
        return out


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
    def delivered(self) -> bool:
        """Whether the user sees the model's reply as it was generated (not a policy message)."""
        return self.completion is not None and self.text == self.completion.text

    @property
    def actions(self) -> list[str]:
        return [step.action for step in self.steps]

    def metadata(self) -> dict[str, Any]:
        """What to report (``response_metadata["psa_guard"]`` and output lines)."""
        return {"context": self.context, "actions": [s.as_dict() for s in self.steps],
                "generated": self.completion is not None}


@dataclass(frozen=True)
class Screen:
    """A request after its input check: what the rest of the request is built on.

    Attributes:
        resolved: the policy context's settings.
        decision: the input check's decision.
        step: the input check, as reported.
        prepared: the messages to generate from (with the steer instruction when it says so).
        locale: the user's locale.
        score: the input's harm score, unrounded (None: the scorer could not answer).
    """

    resolved: ResolvedContext
    decision: Decision
    step: GuardStep
    prepared: list[Message]
    locale: str | None = None
    score: float | None = None

    @property
    def generates(self) -> bool:
        """Whether the model is asked (``allow``, ``steer``, and ``repair``, which acts at the
        output check); otherwise the policy's message answers alone."""
        return self.decision.produces_response or self.decision.action == "repair"

    def answer(self) -> GuardedReply:
        """The reply when the input check answers alone."""
        return GuardedReply(self.decision.render(), self.resolved.name, (self.step,))


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
        window_chars: the hold-back window of the output check (:mod:`psa_guard.holdback`).
    """

    policy: Policy
    scorer: ModerationScorer | None = None
    locale: str | None = None
    window_chars: int = DEFAULT_WINDOW_CHARS

    def get_scorer(self) -> ModerationScorer:
        """The scorer (None given: the local default scorer, loaded on its first score)."""
        if self.scorer is None:
            self.scorer = LazyDefaultScorer()
        return self.scorer

    def resolve(self, context: str | None) -> ResolvedContext:
        """The context's settings (PolicyError listing valid contexts if unknown)."""
        return self.policy.resolve(context)

    def check(
        self, resolved: ResolvedContext, stage: str, text: str, locale: str | None = None
    ) -> tuple[Decision, GuardStep]:
        """Score ``text`` and decide; fails closed if the scorer cannot answer."""
        return self.decide(resolved, stage, *self.score([text]), locale)

    def score(self, texts: Sequence[str]) -> tuple[list[Scores | None], str | None]:
        """Score texts in one call, with categories where the scorer has them; None (with the
        reason) when the scorer cannot answer or returns something that is not a probability
        (NaN, out of range, missing)."""
        return score_detailed(self.get_scorer(), texts)

    def decide(
        self, resolved: ResolvedContext, stage: str, scores: Sequence[Scores | None],
        reason: str | None, locale: str | None = None,
    ) -> tuple[Decision, GuardStep]:
        """The decision on one text's scores (a one-element ``scores``); fails closed on None
        and when the context's category rules need a category the scorer did not score."""
        (score,) = scores
        locale = locale or self.locale
        needed = resolved.needs_categories
        if score is not None and needed:
            missing = [c for c in needed if score.categories is None or c not in score.categories]
            if missing:
                score, reason = None, (f"the scorer gave no score for {', '.join(missing)}, which "
                                       f"the rules of context {resolved.name!r} read")
        if score is None:
            reason = reason or "no score"
            logger.warning("moderation unavailable at %s check: %s", stage, reason)
            decision = resolved.unavailable(reason, locale)
            return decision, GuardStep(stage, decision.action, None, reason)
        decision = resolved.decide(score.overall, locale, score.categories)
        read = ({c: round(float(score.categories[c]), 4) for c in needed}
                if needed and score.categories is not None else None)
        return decision, GuardStep(stage, decision.action, round(score.overall, 4),
                                   category=decision.category, categories=read)

    def screen(
        self, requests: Sequence[tuple[Sequence[Message] | str, str | None]],
        locale: str | None = None, locales: Sequence[str | None] | None = None,
    ) -> list[Screen]:
        """The input checks of many ``(messages, context)`` requests, with one scorer call.

        Each context is resolved and each last user turn scored once; the score is in each
        :class:`Screen`'s step, where the risk gate of guided decoding reads it too.

        Args:
            requests: ``(messages, context)`` pairs.
            locale: the locale of every request (None: the guard's).
            locales: one locale per request (wins over ``locale``).
        """
        normalized = [normalize_messages(messages) for messages, _ in requests]
        contexts = [self.resolve(context) for _, context in requests]
        each = list(locales) if locales is not None else [locale] * len(requests)
        scores, reason = self.score([last_user_text(m) for m in normalized])
        screens = []
        for messages, resolved, score, where in zip(normalized, contexts, scores, each,
                                                    strict=True):
            where = where or self.locale
            decision, step = self.decide(resolved, "input", [score], reason, where)
            steer = decision.message if decision.action == "steer" else None
            screens.append(Screen(resolved, decision, step, with_steer(messages, steer), where,
                                  None if score is None else score.overall))
        return screens

    def screen_input(
        self, messages: Sequence[Message] | str, context: str | None, locale: str | None = None
    ) -> tuple[ResolvedContext, Decision, GuardStep, list[Message]]:
        """Check the last user turn; returns the messages to generate from (steered if needed)."""
        screen = self.screen([(messages, context)], locale)[0]
        return screen.resolved, screen.decision, screen.step, screen.prepared

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
        """:meth:`run` for many ``(messages, context)`` requests, generating in batches."""
        return self.complete(self.screen(requests, locale),
                             lambda rows: generate([messages for _, messages in rows]),
                             locale, repair)

    def complete(
        self,
        screens: Sequence[Screen],
        generate: Callable[[list[tuple[int, list[Message]]]], list[Completion]],
        locale: str | None = None,
        repair: Repairer | None = None,
        regenerate: bool = True,
    ) -> list[GuardedReply]:
        """Generate and check the screened requests.

        Requests answered by the input check are not generated; the rest are generated in one
        call (``generate`` gets ``(index of the request, messages)`` rows), checked, and those
        whose output check says ``steer`` (and were not steered yet) are regenerated together
        once with the instruction (with ``regenerate`` False, as when the caller generates
        elsewhere and cannot be asked again, an output ``steer`` is delivered as it is).

        Raises:
            RuntimeError: ``generate`` returned a different number of completions than rows.
        """
        replies: list[GuardedReply | None] = [None] * len(screens)
        pending: list[tuple[int, ResolvedContext, list[GuardStep], list[Message], bool]] = []
        for index, screen in enumerate(screens):
            if screen.generates:
                pending.append((index, screen.resolved, [screen.step], screen.prepared,
                                screen.decision.action == "steer" or not regenerate))
            else:
                replies[index] = screen.answer()
        for attempt in range(2):
            if not pending:
                break
            completions = generate([(index, prepared) for index, _, _, prepared, _ in pending])
            if len(completions) != len(pending):
                raise RuntimeError(f"generate returned {len(completions)} completions for "
                                   f"{len(pending)} requests")
            # every reply is checked on its prefixes at the release points, all in one call
            points = [checkpoints(len(c.text), self.window_chars) for c in completions]
            flat, reason = self.score([c.text[:p] for c, ps in zip(completions, points)
                                       for p in ps])
            retry = []
            cursor = 0
            for (index, resolved, steps, prepared, steered), completion, ps in zip(
                pending, completions, points, strict=True
            ):
                where = screens[index].locale or locale
                scores = flat[cursor:cursor + len(ps)]
                cursor += len(ps)
                decision, step, released = self._walk(resolved, ps, scores, reason, where,
                                                      restart=not steered and attempt == 0)
                steps = [*steps, step]
                if decision.action == "steer" and released == 0:
                    retry.append((index, resolved, steps, with_steer(prepared, decision.message),
                                  True))
                    continue
                if released is None:
                    text = completion.text
                elif decision.action == "repair" and released == 0:
                    text, repair_steps = self._repair(resolved, prepared, completion, decision,
                                                      step, where, repair)
                    steps.extend(repair_steps)
                else:
                    text = rolled_back(completion.text, released, decision.render())
                replies[index] = GuardedReply(text, resolved.name, tuple(steps), completion)
            pending = retry
        missing = [i for i, reply in enumerate(replies) if reply is None]
        if missing:
            raise RuntimeError(f"no reply for requests {missing}")
        return [reply for reply in replies if reply is not None]

    def _walk(
        self,
        resolved: ResolvedContext,
        points: Sequence[int],
        scores: Sequence[Scores | None],
        reason: str | None,
        locale: str | None,
        restart: bool,
    ) -> tuple[Decision, GuardStep, int | None]:
        """The output check of one reply over its release points (:mod:`psa_guard.holdback`).

        Returns the deciding check and the release point to roll back to: None when every
        prefix passed (the reply is delivered; the step is the whole reply's), else the last
        point that passed (0: nothing released). A ``steer`` passes, except on the first window
        when ``restart`` allows regenerating with its instruction (then the point is 0).
        """
        previous = 0
        decision: Decision | None = None
        step: GuardStep | None = None
        for point, score in zip(points, scores, strict=True):
            decision, step = self.decide(resolved, "output", [score], reason, locale)
            if not decision.produces_response:
                return decision, step, previous
            if decision.action == "steer" and previous == 0 and restart:
                return decision, step, 0
            previous = point
        if decision is None or step is None:
            raise RuntimeError("a reply has no release point")
        return decision, step, None

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
        if resolved.needs_categories:  # the repaired reply's categories are needed too
            after, _ = self.check(resolved, "repair", result.text, locale)
        else:
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
        window_chars: int | None = None,
        repair: Repairer | None = None,
    ) -> Iterator[tuple[str, GuardedReply | None]]:
        """Streaming counterpart of :meth:`run` (see :meth:`stream_screened`)."""
        yield from self.stream_screened(self.screen([(messages, context)], locale)[0], start,
                                        locale, window_chars, repair)

    def stream_screened(
        self,
        screen: Screen,
        start: Callable[[list[Message]], Iterator[StreamChunk]],
        locale: str | None = None,
        window_chars: int | None = None,
        repair: Repairer | None = None,
    ) -> Iterator[tuple[str, GuardedReply | None]]:
        """Streaming counterpart of :meth:`complete`: yields ``(text, None)`` pieces, then
        ``("", reply)``.

        The reply is held back and checked at the release points of :mod:`psa_guard.holdback`
        (every ``window_chars`` characters, default the guard's, and at the end); text is shown
        only once the prefix ending at its point passed. On a flag generation stops, rolls back
        to the last release point and the context's action follows. A ``steer`` or ``repair``
        on the first window (nothing shown yet) regenerates as :meth:`complete` does; later,
        ``steer`` passes and ``repair`` uses its fallback message, as there. Given the same
        generated text, the shown text and the steps equal :meth:`complete`'s.
        """
        window = window_chars if window_chars is not None else self.window_chars
        resolved, decision, step = screen.resolved, screen.decision, screen.step
        where = screen.locale or locale
        if not decision.produces_response and decision.action != "repair":
            text = decision.render()
            yield text, None
            yield "", GuardedReply(text, resolved.name, (step,))
            return
        steps = [step]
        messages = screen.prepared
        steered = decision.action == "steer"
        for attempt in range(2):
            pieces = start(messages)
            text, released, completion = "", 0, None
            restart = False
            try:
                for piece in pieces:
                    text += piece.text
                    completion = piece.completion or completion
                    finished = completion is not None
                    while (point := next_checkpoint(released, len(text), finished,
                                                    window)) is not None:
                        out_decision, out_step = self.check(resolved, "output", text[:point],
                                                            where)
                        passes = out_decision.produces_response
                        if (out_decision.action == "steer" and released == 0 and not steered
                                and attempt == 0):
                            steps.append(out_step)
                            messages = with_steer(messages, out_decision.message)
                            steered = restart = True
                            break
                        if not passes and out_decision.action == "repair" and released == 0:
                            for rest in pieces:  # the repair needs the whole flagged reply
                                text += rest.text
                                completion = rest.completion or completion
                            whole = completion or Completion(text, 0, 0, "stop", 0.0)
                            shown, more = self._repair(resolved, messages, whole, out_decision,
                                                       out_step, where, repair)
                            yield shown, None
                            yield "", GuardedReply(shown, resolved.name,
                                                   (*steps, out_step, *more), whole)
                            return
                        if not passes:
                            shown = rolled_back(text, released, out_decision.render())
                            yield shown[released:], None
                            yield "", GuardedReply(shown, resolved.name, (*steps, out_step),
                                                   completion)
                            return
                        if point > released:
                            yield text[released:point], None
                        released = point
                        if finished and point == len(text):
                            yield "", GuardedReply(text, resolved.name, (*steps, out_step),
                                                   completion)
                            return
                    if restart:
                        break
            finally:
                close = getattr(pieces, "close", None)
                if close:
                    close()
            if not restart:
                break
        raise RuntimeError("the generator ended without a final chunk")
