"""The ``zo`` configuration: generate, then repair flagged replies by embedding optimisation.

Rows the moderation scorer does not flag are returned exactly as the base model wrote them; a
flagged row is replaced by the best reply the optimisation found (even if still flagged: the
configuration measures the optimisation itself, with no fallback message). The flagged rows of
one call share a scorer-call budget (``ZOSettings.budget_iterations``): calls one row leaves
unspent go to the next, so the mean per flagged row stays within it. Each completion's
``extra["zo"]`` records the initial and final score, iterations, scorer calls, seconds and the
source of the reply (``step``, an accepted ``perturbation``, or ``initial`` if nothing beat it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from psa_guard.generation import ChatGenerator, Completion, Conversation, GenerationSettings
from psa_guard.moderation.local import LazyDefaultScorer
from psa_guard.steering import Steering
from psa_guard.zo.config import ZOSettings
from psa_guard.zo.optimizer import EmbeddingOptimizer, RepairResult, model_responder

if TYPE_CHECKING:
    from psa_guard.moderation.base import ModerationScorer

__all__ = ["ZOGenerator"]


@dataclass
class ZOGenerator(ChatGenerator):
    """A generator whose flagged replies are repaired (see the module docstring).

    Args:
        scorer: the moderation scorer (None: the local default scorer, loaded on first use).
        zo_settings: optimisation hyper-parameters; ``threshold`` decides what is flagged.
    """

    scorer: ModerationScorer | None = None
    zo_settings: ZOSettings = field(default_factory=ZOSettings)
    #: A streamed reply cannot be repaired after its text was shown: the request pipeline
    #: generates the whole (repaired) reply and then releases it.
    streams: ClassVar[bool] = False

    def _scorer(self) -> ModerationScorer:
        if self.scorer is None:
            self.scorer = LazyDefaultScorer()
        return self.scorer

    def repair(
        self, conversations: Sequence[Conversation], completions: Sequence[Completion],
        settings: GenerationSettings,
    ) -> list[tuple[float, RepairResult | None]]:
        """Score each base completion and repair the flagged ones, in order, within the batch's
        call budget (each flagged row may spend its share plus what earlier rows left unspent).

        Returns:
            One ``(score, result)`` per row; ``result`` is None for rows not flagged.
        """
        scores = self._scorer().score([c.text for c in completions])
        optimizer = EmbeddingOptimizer(model_responder(self, settings), self._scorer(),
                                       self.zo_settings)
        share, saved = self.zo_settings.call_budget, 0
        out: list[tuple[float, RepairResult | None]] = []
        for conversation, completion, score in zip(conversations, completions, scores):
            if score < self.zo_settings.threshold:
                out.append((float(score), None))
                continue
            allowance = None if share is None else share + saved
            result = optimizer.repair_prompt(self, conversation,
                                             initial=(completion.text, float(score)),
                                             max_calls=allowance)
            if allowance is not None:
                saved = allowance - result.scorer_calls
            out.append((float(score), result))
        return out

    @staticmethod
    def apply(
        completions: Sequence[Completion], repairs: Sequence[tuple[float, RepairResult | None]],
    ) -> list[Completion]:
        """The completions with flagged rows replaced by their repairs and ``extra["zo"]`` set."""
        results = []
        for completion, (score, repaired) in zip(completions, repairs):
            if repaired is None:
                results.append(dataclasses.replace(
                    completion, extra={**completion.extra, "zo": {"flagged": False,
                                                                  "score": round(score, 4)}}))
                continue
            info: dict[str, Any] = {
                "flagged": True, "initial_score": round(score, 4),
                "score": round(repaired.score, 4), "iterations": repaired.iterations,
                "scorer_calls": repaired.scorer_calls, "seconds": round(repaired.seconds, 2),
                "neutralised": repaired.neutralised, "source": repaired.source,
                "degenerate": repaired.degenerate,
            }
            results.append(dataclasses.replace(
                completion, text=repaired.text, seconds=completion.seconds + repaired.seconds,
                extra={**completion.extra, "zo": info}))
        return results

    def generate(
        self, conversations: Sequence[Conversation], settings: GenerationSettings,
        steering: Sequence[Steering | None] | None = None,
    ) -> list[Completion]:
        completions = super().generate(conversations, settings, steering)
        return self.apply(completions, self.repair(conversations, completions, settings))
