"""The ``zo`` configuration: generate, then repair flagged replies by embedding optimisation.

Rows the moderation scorer does not flag are returned exactly as the base model wrote them; a
flagged row is replaced by the reply at the optimised embeddings (even if still flagged: the
configuration measures the optimisation itself, with no fallback message). Each completion's
``extra["zo"]`` records the initial and final score, iterations, scorer calls and seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psa_guard.generation import (
    ChatGenerator,
    Completion,
    Conversation,
    GenerationSettings,
    Steering,
)
from psa_guard.loading import LoadedModel
from psa_guard.zo.optimizer import EmbeddingOptimizer, ZOSettings, model_responder

if TYPE_CHECKING:
    from psa_guard.moderation.base import ModerationScorer

__all__ = ["ZOGenerator", "build_zo"]


@dataclass
class ZOGenerator(ChatGenerator):
    """A generator whose flagged replies are repaired (see the module docstring).

    Args:
        scorer: the moderation scorer (None: the local default scorer, loaded on first use).
        zo_settings: optimisation hyper-parameters; ``threshold`` decides what is flagged.
    """

    scorer: ModerationScorer | None = None
    zo_settings: ZOSettings = field(default_factory=ZOSettings)

    def _scorer(self) -> ModerationScorer:
        if self.scorer is None:
            from psa_guard.moderation import default_scorer

            self.scorer = default_scorer()
        return self.scorer

    def generate(
        self, conversations: Sequence[Conversation], settings: GenerationSettings,
        steering: Sequence[Steering | None] | None = None,
    ) -> list[Completion]:
        completions = super().generate(conversations, settings, steering)
        scores = self._scorer().score([c.text for c in completions])
        optimizer = EmbeddingOptimizer(model_responder(self, settings), self._scorer(),
                                       self.zo_settings)
        results = []
        for conversation, completion, score in zip(conversations, completions, scores):
            if score < self.zo_settings.threshold:
                results.append(dataclasses.replace(
                    completion, extra={**completion.extra, "zo": {"flagged": False,
                                                                  "score": round(score, 4)}}))
                continue
            repaired = optimizer.repair_prompt(self, conversation, initial=(completion.text,
                                                                           score))
            info: dict[str, Any] = {
                "flagged": True, "initial_score": round(score, 4),
                "score": round(repaired.score, 4), "iterations": repaired.iterations,
                "scorer_calls": repaired.scorer_calls, "seconds": round(repaired.seconds, 2),
                "neutralised": repaired.neutralised,
            }
            results.append(dataclasses.replace(
                completion, text=repaired.text, seconds=completion.seconds + repaired.seconds,
                extra={**completion.extra, "zo": info}))
        return results


def build_zo(loaded: LoadedModel) -> ChatGenerator:
    """The ``zo`` configuration's generator on ``loaded``."""
    return ZOGenerator(loaded)
