""":class:`ArmGenerator`: a :class:`~psa_guard.generation.ChatGenerator` guided by Pv-Arm.

Each ``generate`` call installs the capture hook on the generating model, adds one
:class:`~psa_guard.arm.guidance.ArmGuidance` processor built from the rows' steering (preference and
beta per row), and removes the hook afterwards. Batching, streaming, stop sequences, greedy decoding
and sampling are the base class's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.generation.streamers import BaseStreamer

from psa_guard.arm.guidance import ArmGuidance, TermVeto
from psa_guard.arm.model import PvArm
from psa_guard.attributes import ATTRIBUTES
from psa_guard.errors import ConfigurationError
from psa_guard.generation import ChatGenerator, GenerationSettings, Steering

__all__ = ["DEFAULT_BETA", "UNIFORM_PREFERENCE", "ArmGenerator"]

#: Guidance temperature when neither the request nor the generator sets one (weight 1/beta = 1).
DEFAULT_BETA = 1.0
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
    """

    arm: PvArm | None = None
    preference: tuple[float, ...] = UNIFORM_PREFERENCE
    beta: float = DEFAULT_BETA
    top_p: float = 0.9
    max_candidates: int = 20
    blocked_terms: tuple[str, ...] = ()
    _veto: TermVeto | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arm is None:
            raise ConfigurationError("ArmGenerator needs arm=PvArm(...); see psa_guard.arm.load_arm")
        default = Steering(self.preference, self.beta)  # validates and normalises
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
        default = Steering(self.preference, self.beta, self.top_p, self.blocked_terms)
        return [default.merged(entry) for entry in entries]

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
            1.0 / torch.tensor([r.beta for r in rows], dtype=torch.float32),
            attention_mask, sink,
            top_p=torch.tensor([r.safe_top_p for r in rows], dtype=torch.float32),
            max_candidates=self.max_candidates, veto=self._veto,
            blocked_terms=[r.blocked_terms for r in rows],
            eos_token_id=self.loaded.tokenizer.eos_token_id,
        )
        with self.arm.capture(self.loaded.model, sink):
            return super()._generate_call(input_ids, attention_mask, settings, extra_criteria,
                                          streamer, steering, [*extra_processors, guidance])
