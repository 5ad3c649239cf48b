"""Guided decoding with the lexicographic rule (docs/method.md section 4), as a logits processor.

At each step, for each row:

1. **Safety stage.** The generating model (DiReg-patched in ``full``) proposes its nucleus: the
   smallest set of tokens whose probability reaches ``top_p`` (at most ``max_candidates``). Tokens
   that would complete one of the policy's blocked terms are removed (the hard constraint). This is
   the safe set; nothing outside it can be chosen. A prompt whose harm score exceeds the risk gate
   gives the reward model weight 0 (:func:`guidance_weights`): on risky prompts the safety model
   alone decides.
2. **Prosocial stage.** Inside the safe set only, each candidate ``v`` is scored
   ``log pi_safe(v) + (1 / beta) * log pi_r(v | alpha)``. ``log pi_r`` is normalised over the safe
   set, which differs from the full-vocabulary normalisation by a per-row constant that softmax and
   argmax ignore; so the output head of the reward model is applied to the candidates only.

Every other token gets ``-inf``, so temperature, top-p sampling, greedy decoding, stop sequences
and streaming all work on the result unchanged. The equations are the pure functions
:func:`safe_candidates` and :func:`lexicographic_scores`; :class:`ArmGuidance` wires them to the
reward model and its KV cache.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

import torch
from transformers import LogitsProcessor
from transformers.cache_utils import DynamicCache

from psa_guard.arm.config import DEFAULT_MAX_CANDIDATES
from psa_guard.arm.model import PvArm, positions_from_mask
from psa_guard.steering import DEFAULT_SAFE_TOP_P

__all__ = ["ArmGuidance", "TermVeto", "guidance_weights", "lexicographic_scores", "safe_candidates"]

NEG_INF = float("-inf")


def safe_candidates(logits: torch.Tensor, top_p: float | torch.Tensor, max_candidates: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The nucleus of the safety model, as candidate ids.

    Args:
        logits: ``(batch, vocab)`` the generating model's scores.
        top_p: nucleus mass in (0, 1], one for all rows or ``(batch,)``.
        max_candidates: at most this many candidates per row (C).

    Returns:
        ``(ids, logprobs, in_nucleus)``, each ``(batch, C)``: candidate token ids by falling
        probability, their log-probabilities under the safety model, and whether each lies in the
        nucleus (the first always does).
    """
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    top, ids = logprobs.topk(min(max_candidates, logits.shape[-1]), dim=-1)
    before = torch.cumsum(top.exp(), dim=-1) - top.exp()      # mass strictly before each token
    mass = top_p.unsqueeze(1) if isinstance(top_p, torch.Tensor) else top_p
    in_nucleus = before < mass
    in_nucleus[:, 0] = True
    return ids, top, in_nucleus


def guidance_weights(betas: Sequence[float], risks: Sequence[float | None],
                     thresholds: Sequence[float]) -> torch.Tensor:
    """The reward model's weight per row: ``1 / beta``, or 0 behind the risk gate.

    The risk gate is the safety stage's answer to a risky prompt: when the prompt's harm score
    exceeds the row's threshold, no prosocial preference may move decoding away from the safety
    model, so the reward model's weight is 0 and the safety model alone decides (its nucleus,
    minus vetoed tokens, is still the candidate set). A row with no assessed risk is guided.

    Args:
        betas: guidance temperature per row (> 0).
        risks: the prompt's harm score in [0, 1] per row, or None when it was not assessed.
        thresholds: the gate per row; a risk above it switches guidance off (1: never).

    Returns:
        ``(batch,)`` float32 weights.
    """
    weights = [0.0 if risk is not None and risk > threshold else 1.0 / beta
               for beta, risk, threshold in zip(betas, risks, thresholds, strict=True)]
    return torch.tensor(weights, dtype=torch.float32)


def lexicographic_scores(safe_logprobs: torch.Tensor, reward_logits: torch.Tensor,
                         allowed: torch.Tensor, inverse_beta: torch.Tensor) -> torch.Tensor:
    """``log pi_safe + (1/beta) log pi_r`` on allowed candidates, ``-inf`` elsewhere.

    Args:
        safe_logprobs: ``(batch, C)`` the safety model's log-probabilities of the candidates.
        reward_logits: ``(batch, C)`` the reward model's logits of the candidates.
        allowed: ``(batch, C)`` bool, the safe set (at least one True per row).
        inverse_beta: ``(batch,)`` guidance strength ``1 / beta`` per row (0 = no guidance).

    Returns:
        ``(batch, C)`` combined scores; a disallowed candidate is ``-inf`` whatever its reward.
    """
    reward = torch.log_softmax(reward_logits.float().masked_fill(~allowed, NEG_INF), dim=-1)
    reward = torch.nan_to_num(reward, neginf=0.0)  # masked entries are -inf below anyway
    combined = safe_logprobs.float() + inverse_beta.float().unsqueeze(1) * reward
    return combined.masked_fill(~allowed, NEG_INF)


class TermVeto:
    """The hard constraint: vetoes candidate tokens that would complete a blocked term.

    Terms are matched case-insensitively against the end of the reply plus the candidate's text.

    Args:
        tokenizer: decodes candidate tokens (decoded pieces are cached).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._piece = functools.lru_cache(maxsize=65536)(self._decode)

    def _decode(self, token: int) -> str:
        return str(self.tokenizer.decode([token])).lower()

    def __call__(self, replies: torch.Tensor, candidates: torch.Tensor,
                 terms: Sequence[Sequence[str]]) -> torch.Tensor:
        """``(batch, C)`` bool, True where the candidate must be vetoed.

        Args:
            replies: ``(batch, generated)`` the reply tokens so far.
            candidates: ``(batch, C)`` candidate ids.
            terms: the blocked terms of each row (an empty sequence vetoes nothing).
        """
        vetoed = torch.zeros(candidates.shape, dtype=torch.bool)
        for row, row_terms in enumerate(terms):
            lowered = [t.lower() for t in row_terms if t]
            if not lowered:
                continue
            longest = max(len(t) for t in lowered)
            tail = self.tokenizer.decode(replies[row, -longest:].tolist()).lower()[-longest:]
            for col, token in enumerate(candidates[row].tolist()):
                text = tail + self._piece(token)
                vetoed[row, col] = any(t in text and t not in tail for t in lowered)
        return vetoed


class ArmGuidance(LogitsProcessor):
    """The lexicographic rule as a ``transformers`` logits processor for one ``generate`` call.

    The base model's forward feeds ``sink`` (via :meth:`PvArm.capture`) with the hidden state
    entering the reward model's layers; each call consumes it, advances the reward model's own KV
    cache by the new tokens, and rewrites the scores.

    Args:
        arm: the reward model.
        alpha: ``(batch, k)`` preference per row.
        inverse_beta: ``(batch,)`` ``1 / beta`` per row.
        prompt_mask: ``(batch, prompt)`` the left-padded prompt's attention mask.
        sink: the capture list shared with :meth:`PvArm.capture`.
        top_p: nucleus mass of the safe set, one for all rows or ``(batch,)``.
        max_candidates: cap on the safe set's size.
        veto: the hard constraint's matcher (None: no blocked terms).
        blocked_terms: each row's blocked terms (used with ``veto``).
        eos_token_id: kept when the veto empties a row.
    """

    def __init__(self, arm: PvArm, alpha: torch.Tensor, inverse_beta: torch.Tensor,
                 prompt_mask: torch.Tensor, sink: list[torch.Tensor], *,
                 top_p: float | torch.Tensor = DEFAULT_SAFE_TOP_P,
                 max_candidates: int = DEFAULT_MAX_CANDIDATES,
                 veto: TermVeto | None = None, blocked_terms: Sequence[Sequence[str]] = (),
                 eos_token_id: int | None = None) -> None:
        self.arm = arm
        self.alpha = alpha
        self.inverse_beta = inverse_beta
        self.prompt_mask = prompt_mask
        self.sink = sink
        self.top_p = top_p
        self.max_candidates = max_candidates
        self.blocked_terms = [tuple(t) for t in blocked_terms]
        self.veto = veto if veto is not None and any(self.blocked_terms) else None
        self.eos_token_id = eos_token_id
        self.cache = DynamicCache()
        self.steps = 0

    def _reward_state(self) -> torch.Tensor:
        if not self.sink:
            raise RuntimeError("ArmGuidance got no hidden state: generate without PvArm.capture")
        hidden = torch.cat(self.sink, dim=1) if len(self.sink) > 1 else self.sink[0]
        self.sink.clear()
        batch = self.prompt_mask.shape[0]
        mask = torch.cat((self.prompt_mask, self.prompt_mask.new_ones(batch, self.steps)), dim=1)
        positions = positions_from_mask(mask)[:, -hidden.shape[1]:]
        state = self.arm.upper(hidden, self.alpha, mask, positions, self.cache)
        return state[:, -1]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        state = self._reward_state()
        self.steps += 1
        ids, logprobs, allowed = safe_candidates(scores, self.top_p, self.max_candidates)
        if self.veto is not None:
            replies = input_ids[:, self.prompt_mask.shape[1]:]
            vetoed = self.veto(replies, ids, self.blocked_terms)
            allowed = allowed & ~vetoed
            empty = ~allowed.any(dim=1)
            if empty.any():  # the whole nucleus is vetoed: widen to every non-vetoed candidate
                allowed[empty] = ~vetoed[empty]
            empty = ~allowed.any(dim=1)
            if empty.any() and self.eos_token_id is not None:  # nothing safe left: end the reply
                ids[empty, 0] = self.eos_token_id
                allowed[empty, 0] = True
        reward = torch.einsum("bd,bcd->bc", state, self.arm.head_weight[ids])
        combined = lexicographic_scores(logprobs, reward, allowed, self.inverse_beta)
        out = torch.full_like(scores, NEG_INF)
        return cast(torch.FloatTensor, out.scatter(1, ids, combined.to(scores.dtype)))
