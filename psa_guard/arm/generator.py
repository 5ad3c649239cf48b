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
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers.generation.streamers import BaseStreamer

from psa_guard.arm.checkpoint import SHIPPED_ADAPTER, load_arm
from psa_guard.arm.config import ArmSettings
from psa_guard.arm.guidance import ArmGuidance, TermVeto, guidance_weights
from psa_guard.arm.model import PvArm
from psa_guard.direg.vector import base_checksum
from psa_guard.errors import ConfigurationError
from psa_guard.generation import (
    ChatGenerator,
    Completion,
    Conversation,
    GenerationSettings,
    StreamChunk,
)
from psa_guard.loading import LoadedModel
from psa_guard.messages import last_user_text, normalize_messages
from psa_guard.moderation.base import score_texts
from psa_guard.steering import DEFAULT_BETA, DEFAULT_RISK_THRESHOLD, Steering

if TYPE_CHECKING:
    from psa_guard.moderation.base import ModerationScorer

__all__ = ["ArmGenerator", "arm_generator", "shared_arm"]

logger = logging.getLogger(__name__)


@dataclass
class ArmGenerator(ChatGenerator):
    """Generates with the lexicographic rule: the model's safe set first, Pv-Arm inside it.

    Args:
        arm: the reward model, built on the same architecture as ``loaded.model`` (the generating
            model may be a DiReg-patched copy of the reward model's host).
        settings: the defaults each request's :class:`~psa_guard.steering.Steering` is merged
            over (preference, beta, safe-set nucleus, risk gate) and the candidate cap.
        risk_scorer: scores each prompt's last user turn for the risk gate when a request does not
            bring its own ``Steering.risk`` (the request pipeline always does; None: no gate). If
            it cannot answer, or answers with a value that is not a probability, the row is
            treated as risky (fail closed: unguided) and the reason is reported in
            ``extra["arm"]``.
    """

    arm: PvArm | None = None
    settings: ArmSettings = field(default_factory=ArmSettings)
    risk_scorer: ModerationScorer | None = None
    _veto: TermVeto | None = field(default=None, init=False, repr=False)
    _default: Steering = field(default_factory=Steering, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arm is None:
            raise ConfigurationError("ArmGenerator needs arm=PvArm(...); see psa_guard.arm.load_arm")
        self._default = self.settings.steering()
        preference = self._default.preference or ()
        if len(preference) != len(self.arm.config.attributes):
            raise ConfigurationError(
                f"preference has {len(preference)} weights; the reward model has "
                f"{len(self.arm.config.attributes)} attributes ({', '.join(self.arm.config.attributes)})"
            )
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
        return [self._default.merged(entry) for entry in entries]

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
        if todo and self.risk_scorer is not None:
            texts = [last_user_text(normalize_messages(conversations[i])) for i in todo]
            scores, reason = score_texts(self.risk_scorer, texts)
            if reason is not None:
                logger.warning("risk gate: %s; guidance off", reason)
            for i, score in zip(todo, scores, strict=True):
                rows[i] = dataclasses.replace(rows[i], risk=1.0 if score is None else score)
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
               steering: Steering | None = None, cancel: threading.Event | None = None
               ) -> Generator[StreamChunk, None, None]:
        rows, notes = self.assess([conversation], [steering])
        with contextlib.closing(super().stream(conversation, settings, rows[0],
                                               cancel)) as chunks:
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
        # generate() and stream() pass the rows assess() completed: used as they are
        rows = [row if row is not None else self._default
                for row in (steering if steering is not None else [None] * input_ids.shape[0])]
        sink: list[torch.Tensor] = []
        guidance = ArmGuidance(
            self.arm,
            torch.tensor([r.preference for r in rows], dtype=self.arm.head_weight.dtype),
            _weights(rows),
            attention_mask, sink,
            top_p=torch.tensor([r.safe_top_p for r in rows], dtype=torch.float32),
            max_candidates=self.settings.max_candidates, veto=self._veto,
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


_cache: dict[tuple[int, str], tuple[LoadedModel, PvArm]] = {}
_lock = threading.Lock()


def shared_arm(loaded: LoadedModel, adapter: Path | None = None) -> PvArm:
    """The reward model on ``loaded`` with ``adapter`` (default: shipped), loaded once and cached."""
    path = Path(adapter) if adapter is not None else SHIPPED_ADAPTER
    key = (id(loaded.model), str(path.resolve()))
    with _lock:
        if key not in _cache:
            _cache[key] = (loaded, load_arm(loaded.model, path, checksum=base_checksum(loaded)))
        return _cache[key][1]


def arm_generator(loaded: LoadedModel, arm_host: LoadedModel | None = None,
                  settings: ArmSettings | None = None,
                  risk_scorer: ModerationScorer | None = None) -> ArmGenerator:
    """A Pv-Arm-guided generator.

    Args:
        loaded: the generating model (for ``full``, the DiReg-patched copy).
        arm_host: the unpatched model the reward model is built on (None: ``loaded``); its own
            layers keep the weights it was trained on.
        settings: decoding defaults and the adapter (None: :class:`ArmSettings` defaults).
        risk_scorer: the risk gate's scorer for requests that bring no risk (None: no gate).
    """
    settings = settings or ArmSettings()
    arm = shared_arm(arm_host or loaded, settings.adapter)
    return ArmGenerator(loaded, arm=arm, settings=settings, risk_scorer=risk_scorer)
