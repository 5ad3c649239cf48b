""":class:`ArmGenerator`: a :class:`~psa_guard.generation.ChatGenerator` guided by Pv-Arm.

Each ``generate`` call first assesses the rows' risk (the risk gate: the moderation scorer on each
last user turn, unless the request brings its score), installs the capture hook on the generating
model, adds one :class:`~psa_guard.arm.guidance.ArmGuidance` processor built from the rows' steering
(preference, beta and gate per row), and removes the hook afterwards. Batching, streaming, stop
sequences, greedy decoding and sampling are the base class's. Each completion's ``extra["arm"]``
records the row's risk and whether it was guided.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from transformers.generation.streamers import BaseStreamer

from psa_guard.arm.guidance import ArmGuidance, TermVeto, guidance_weights
from psa_guard.arm.model import PvArm
from psa_guard.attributes import ATTRIBUTES
from psa_guard.errors import ConfigurationError, ModerationUnavailableError
from psa_guard.generation import (
    ChatGenerator,
    Completion,
    Conversation,
    GenerationSettings,
    Steering,
    StreamChunk,
)
from psa_guard.messages import last_user_text, normalize_messages

if TYPE_CHECKING:
    from psa_guard.moderation.base import ModerationScorer

__all__ = ["DEFAULT_BETA", "DEFAULT_RISK_THRESHOLD", "UNIFORM_PREFERENCE", "ArmGenerator"]

logger = logging.getLogger(__name__)

#: Guidance temperature when neither the request nor the generator sets one (weight 1/beta = 1).
DEFAULT_BETA = 1.0
#: The risk gate's default: the local moderation scorer's own decision threshold (chosen with its
#: training-side data, see ``docs/moderation.md``), not tuned on any evaluation suite.
DEFAULT_RISK_THRESHOLD = 0.5
UNIFORM_PREFERENCE: tuple[float, ...] = tuple(1.0 / len(ATTRIBUTES) for _ in ATTRIBUTES)


@dataclass
class ArmGenerator(ChatGenerator):
    """Generates with the lexicographic rule: the model's safe set first, Pv-Arm inside it.

    Args:
        arm: the reward model, built on the same architecture as ``loaded.model`` (the generating
            model may be a DiReg-patched copy of the reward model's host).
        preference: default weights in ``ATTRIBUTES`` order (normalised; a request's
            :class:`~psa_guard.generation.Steering` overrides it).
        beta: default guidance temperature (> 0).
        top_p: nucleus mass of the safe set.
        max_candidates: the most candidates Pv-Arm re-ranks per step.
        blocked_terms: the hard constraint's blocked strings.
        risk_scorer: scores each prompt's last user turn for the risk gate (None: no gate unless a
            request brings its own ``Steering.risk``). If it cannot answer, the row is treated as
            risky (fail closed: unguided) and the reason is reported in ``extra["arm"]``.
        risk_threshold: default gate; guidance is off for a prompt scored above it (1: never).
    """

    arm: PvArm | None = None
    preference: tuple[float, ...] = UNIFORM_PREFERENCE
    beta: float = DEFAULT_BETA
    top_p: float = 0.9
    max_candidates: int = 20
    blocked_terms: tuple[str, ...] = ()
    risk_scorer: ModerationScorer | None = None
    risk_threshold: float = DEFAULT_RISK_THRESHOLD
    _veto: TermVeto | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arm is None:
            raise ConfigurationError("ArmGenerator needs arm=PvArm(...); see psa_guard.arm.load_arm")
        default = Steering(self.preference, self.beta, risk_threshold=self.risk_threshold)
        # (constructing it validates beta and the threshold and normalises the preference)
        self.preference = default.preference or UNIFORM_PREFERENCE
        if len(self.preference) != len(self.arm.config.attributes):
            raise ConfigurationError(
                f"preference has {len(self.preference)} weights; the reward model has "
                f"{len(self.arm.config.attributes)} attributes ({', '.join(self.arm.config.attributes)})"
            )
        if not 0 < self.top_p <= 1:
            raise ConfigurationError(f"top_p must be in (0, 1]; got {self.top_p}")
        if self.max_candidates < 1:
            raise ConfigurationError(f"max_candidates must be >= 1; got {self.max_candidates}")
        self._veto = TermVeto(self.loaded.tokenizer)

    @property
    def name(self) -> str:
        return f"{self.loaded.name}+pvarm"

    def row_steering(self, rows: int, steering: Sequence[Steering | None] | None
                     ) -> list[Steering]:
        """Each row's complete steering: the request's fields over the generator's defaults."""
        entries = list(steering) if steering is not None else [None] * rows
        if len(entries) != rows:
            raise ConfigurationError(f"got {len(entries)} steering entries for {rows} rows")
        default = Steering(self.preference, self.beta, self.top_p, self.blocked_terms,
                           self.risk_threshold)
        return [default.merged(entry) for entry in entries]

    def assess(self, conversations: Sequence[Conversation],
               steering: Sequence[Steering | None] | None = None
               ) -> tuple[list[Steering], list[dict[str, Any]]]:
        """Each row's steering with its risk filled in, and what to report about it.

        Rows that bring a risk keep it; with a risk scorer, the others' last user turns are scored
        in one call (rows whose gate is 1 are not scored). If the scorer cannot answer, those rows
        get risk 1 (unguided) and the reason.

        Returns:
            The rows' steering and, per row, ``{"risk", "guided"}`` (plus ``"unavailable"``).
        """
        rows = self.row_steering(len(conversations), steering)
        todo = [i for i, row in enumerate(rows) if row.risk is None and self.risk_scorer is not None
                and row.risk_threshold is not None and row.risk_threshold < 1]
        reason = None
        if todo:
            assert self.risk_scorer is not None
            texts = [last_user_text(normalize_messages(conversations[i])) for i in todo]
            try:
                scores = self.risk_scorer.score(texts)
            except ModerationUnavailableError as exc:
                logger.warning("risk gate: moderation unavailable (%s); guidance off", exc.reason)
                reason, scores = exc.reason, [1.0] * len(todo)
            for i, score in zip(todo, scores, strict=True):
                rows[i] = dataclasses.replace(rows[i], risk=float(score))
        weights = _weights(rows)
        notes: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            note: dict[str, Any] = {"risk": None if row.risk is None else round(row.risk, 4),
                                    "guided": bool(weights[i] > 0)}
            if reason is not None and i in todo:
                note["unavailable"] = reason
            notes.append(note)
        return rows, notes

    def generate(
        self, conversations: Sequence[Conversation], settings: GenerationSettings,
        steering: Sequence[Steering | None] | None = None,
    ) -> list[Completion]:
        rows, notes = self.assess(conversations, steering)
        completions = super().generate(conversations, settings, rows)
        return [_noted(c, note) for c, note in zip(completions, notes, strict=True)]

    def stream(self, conversation: Conversation, settings: GenerationSettings,
               steering: Steering | None = None) -> Iterator[StreamChunk]:
        rows, notes = self.assess([conversation], [steering])
        with contextlib.closing(super().stream(conversation, settings, rows[0])) as chunks:
            for chunk in chunks:
                if chunk.completion is not None:
                    chunk = StreamChunk(chunk.text, _noted(chunk.completion, notes[0]))
                yield chunk

    def _generate_call(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        settings: GenerationSettings,
        extra_criteria: Sequence[Any] = (),
        streamer: BaseStreamer | None = None,
        steering: Sequence[Steering | None] | None = None,
        extra_processors: Sequence[Any] = (),
    ) -> torch.Tensor:
        assert self.arm is not None  # checked in __post_init__
        rows = self.row_steering(input_ids.shape[0], steering)
        sink: list[torch.Tensor] = []
        guidance = ArmGuidance(
            self.arm,
            torch.tensor([r.preference for r in rows], dtype=self.arm.head_weight.dtype),
            _weights(rows),
            attention_mask, sink,
            top_p=torch.tensor([r.safe_top_p for r in rows], dtype=torch.float32),
            max_candidates=self.max_candidates, veto=self._veto,
            blocked_terms=[r.blocked_terms for r in rows],
            eos_token_id=self.loaded.tokenizer.eos_token_id,
        )
        with self.arm.capture(self.loaded.model, sink):
            return super()._generate_call(input_ids, attention_mask, settings, extra_criteria,
                                          streamer, steering, [*extra_processors, guidance])


def _weights(rows: Sequence[Steering]) -> torch.Tensor:
    """:func:`guidance_weights` of complete rows (see :meth:`ArmGenerator.row_steering`)."""
    return guidance_weights(
        [DEFAULT_BETA if r.beta is None else r.beta for r in rows], [r.risk for r in rows],
        [DEFAULT_RISK_THRESHOLD if r.risk_threshold is None else r.risk_threshold for r in rows])


def _noted(completion: Completion, note: dict[str, Any]) -> Completion:
    return dataclasses.replace(completion, extra={**completion.extra, "arm": note})
