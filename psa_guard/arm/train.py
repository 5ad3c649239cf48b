"""Training Pv-Arm: Bradley-Terry per attribute, ``alpha ~ Dirichlet(0.5)`` per step, PCGrad.

Each step samples one preference ``alpha`` and, for every attribute ``i`` with a weight worth the
compute (``alpha_i >= min_weight``), a batch of that attribute's training pairs; it computes the
attribute's gradient of ``alpha_i * L_i`` on the PBLoRA parameters, combines the gradients (PCGrad
projection or plain sum, see :mod:`psa_guard.arm.objectives`), clips and takes one AdamW step on a
cosine schedule with warm-up.

With ``contrast > 0`` (ours, beyond PARM) one attribute per step, drawn in proportion to its
weight, also gets a contrast term: its pairs are scored under ``alpha`` and under ``alpha`` without
that attribute (:func:`~psa_guard.arm.objectives.without_attribute`) in the same forward, and
:func:`~psa_guard.arm.objectives.bradley_terry_loss` asks the first margin to exceed the second.
PARM's objective only asks each preference to rank its own attributes' pairs; nothing in it stops
the other cores from ranking them just as well, and then the attribute's weight changes nothing.

Only the reward model's own top layers are trained; the bottom layers are the frozen base model, so
their output (:meth:`PvArm.lower`) is computed once per sequence and kept in memory
(:class:`LowerStates`). Training is seeded and resumable (a checkpoint every
``checkpoint_every`` steps).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from psa_guard.arm.model import PvArm
from psa_guard.arm.objectives import bradley_terry_loss, combine, conflicts, without_attribute
from psa_guard.arm.pairs import PreferencePair
from psa_guard.core.atomic import atomic_path, write_atomic
from psa_guard.errors import ConfigurationError, DataError

__all__ = ["EncodedPair", "LowerStates", "TrainSettings", "encode_pair", "group_pairs",
           "pair_logprobs", "train_arm"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of ``psa-guard arm train`` (cosine schedule as PARM; a higher lr, short run).

    Attributes:
        steps: optimiser steps.
        pairs_per_attribute: pairs per attribute per step.
        max_pairs_per_attribute: training pairs kept per attribute (a seeded sample).
        lr: AdamW learning rate.
        warmup: linear warm-up steps before the cosine decay.
        bt_beta: Bradley-Terry reward scale ``beta_i``.
        dirichlet: concentration of ``alpha ~ Dirichlet``.
        min_weight: attributes with ``alpha_i`` below this are skipped in a step (their term is
            negligible).
        pcgrad: project conflicting attribute gradients.
        contrast: weight of the contrast term (0: PARM's objective alone; see the module
            docstring).
        max_prompt_tokens: prompt tokens kept (the end of the prompt).
        max_response_tokens: response tokens scored.
        clip: gradient-norm clip.
        seed: seeds sampling and the adapter initialisation.
        checkpoint_every: steps between checkpoints.
    """

    steps: int = 400
    pairs_per_attribute: int = 3
    max_pairs_per_attribute: int = 300
    lr: float = 3e-3
    warmup: int = 10
    bt_beta: float = 0.05
    dirichlet: float = 0.5
    min_weight: float = 0.02
    pcgrad: bool = True
    contrast: float = 0.0
    max_prompt_tokens: int = 64
    max_response_tokens: int = 48
    clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 25

    def __post_init__(self) -> None:
        for name in ("steps", "pairs_per_attribute", "max_pairs_per_attribute",
                     "max_prompt_tokens", "max_response_tokens", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"TrainSettings.{name} must be >= 1; got {getattr(self, name)}")
        if not (self.lr > 0 and self.bt_beta > 0 and self.dirichlet > 0):
            raise ConfigurationError("TrainSettings lr, bt_beta and dirichlet must be > 0")
        if self.contrast < 0:
            raise ConfigurationError(f"TrainSettings.contrast must be >= 0; got {self.contrast}")


@dataclass(frozen=True)
class EncodedPair:
    """One pair as token ids: ``prompt + chosen`` and ``prompt + rejected``.

    Attributes:
        prompt: prompt ids (chat template, ending with the assistant header).
        chosen: the preferred response's ids (with the end-of-turn token unless truncated).
        rejected: the other response's ids.
    """

    prompt: tuple[int, ...]
    chosen: tuple[int, ...]
    rejected: tuple[int, ...]


def encode_pair(tokenizer: Any, pair: PreferencePair, max_prompt: int, max_response: int
                ) -> EncodedPair:
    """Tokenise a pair with the chat template (the prompt is the user turn)."""
    encoded = tokenizer.apply_chat_template([{"role": "user", "content": pair.prompt}],
                                            add_generation_prompt=True, tokenize=True)
    prompt = list(encoded["input_ids"] if isinstance(encoded, Mapping) else encoded)[-max_prompt:]
    end = tokenizer.eos_token_id

    def response(text: str) -> tuple[int, ...]:
        ids = list(tokenizer.encode(text, add_special_tokens=False))
        return tuple(ids[:max_response]) if len(ids) >= max_response else (*ids, end)

    return EncodedPair(tuple(prompt), response(pair.chosen), response(pair.rejected))


def group_pairs(pairs: Sequence[PreferencePair], split: str, attributes: Sequence[str],
                limit: int | None = None, seed: int = 0) -> dict[str, list[PreferencePair]]:
    """The pairs of one split by attribute, each list a seeded sample of at most ``limit``.

    Raises:
        DataError: an attribute has no pair in this split.
    """
    grouped: dict[str, list[PreferencePair]] = {a: [] for a in attributes}
    for pair in pairs:
        if pair.split == split and pair.attribute in grouped:
            grouped[pair.attribute].append(pair)
    rng = np.random.default_rng(seed)
    for attribute, items in grouped.items():
        if not items:
            raise DataError(f"no {split} pairs for attribute {attribute!r}; rebuild the data with "
                            "scripts/build_arm_data.py")
        if limit is not None and len(items) > limit:
            keep = sorted(rng.choice(len(items), size=limit, replace=False).tolist())
            grouped[attribute] = [items[i] for i in keep]
    return grouped


class LowerStates:
    """The frozen bottom of the reward model, computed once per sequence and kept in memory.

    Args:
        arm: the reward model.
        batch_size: sequences per forward when filling.
    """

    def __init__(self, arm: PvArm, batch_size: int = 16) -> None:
        self.arm = arm
        self.batch_size = batch_size
        self._states: dict[tuple[int, ...], torch.Tensor] = {}

    def fill(self, sequences: Sequence[tuple[int, ...]], description: str | None = None) -> None:
        """Compute the states of every sequence not yet known (longest first, right-padded).

        A progress bar is shown when ``description`` is given.
        """
        todo = sorted({s for s in sequences if s not in self._states}, key=len, reverse=True)
        if not todo:
            return
        with torch.no_grad(), tqdm(total=len(todo), desc=description, unit="seq",
                                   disable=description is None) as bar:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start:start + self.batch_size]
                ids, mask = _pad(chunk)
                hidden = self.arm.lower(ids, mask)
                for row, seq in enumerate(chunk):
                    self._states[seq] = hidden[row, : len(seq)].clone()
                bar.update(len(chunk))

    def save(self, path: Path, key: str) -> None:
        """Write the known states to ``path`` (atomic), tagged with ``key`` (model and split)."""
        with atomic_path(path) as tmp:
            torch.save({"key": key, "states": self._states}, tmp)

    def load(self, path: Path, key: str) -> int:
        """Add the states saved at ``path`` if its ``key`` matches; returns how many were added."""
        if not path.is_file():
            return 0
        saved = torch.load(path, weights_only=True)  # tensors and plain data only: no code runs
        if saved.get("key") != key:
            logger.info("ignoring %s: written for another model or reward-model depth", path)
            return 0
        before = len(self._states)
        self._states.update(saved["states"])
        return len(self._states) - before

    def __len__(self) -> int:
        return len(self._states)

    def batch(self, sequences: Sequence[tuple[int, ...]]) -> torch.Tensor:
        """``(rows, longest, hidden)`` right-padded states of known sequences."""
        longest = max(len(s) for s in sequences)
        first = self._states[sequences[0]]
        out = first.new_zeros(len(sequences), longest, first.shape[-1])
        for row, seq in enumerate(sequences):
            out[row, : len(seq)] = self._states[seq]
        return out


def _pad(sequences: Sequence[tuple[int, ...]], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask


def _sequences(encoded: Sequence[EncodedPair]) -> tuple[list[tuple[int, ...]], list[int]]:
    seqs = [p.prompt + p.chosen for p in encoded] + [p.prompt + p.rejected for p in encoded]
    prompts = [len(p.prompt) for p in encoded] * 2
    return seqs, prompts


def pair_logprobs(arm: PvArm, lower: LowerStates, encoded: Sequence[EncodedPair],
                  alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed response log-probs of the chosen and the rejected responses, ``(pairs,)`` each.

    Args:
        alpha: ``(k,)`` one preference for every row, or ``(2 * pairs, k)``.
    """
    seqs, prompts = _sequences(encoded)
    lower.fill(seqs)
    ids, mask = _pad(seqs)
    response = mask.clone()
    for row, length in enumerate(prompts):
        response[row, :length] = 0
    rows = alpha.expand(len(seqs), -1) if alpha.dim() == 1 else alpha
    logprobs = arm.sequence_logprobs(lower.batch(seqs), ids, mask, response, rows)
    n = len(encoded)
    return logprobs[:n], logprobs[n:]


def _lr_factor(step: int, settings: TrainSettings) -> float:
    if step < settings.warmup:
        return (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train_arm(arm: PvArm, tokenizer: Any, train: Mapping[str, Sequence[PreferencePair]],
              settings: TrainSettings, *, checkpoint: Path | None = None,
              lower: LowerStates | None = None) -> dict[str, Any]:
    """Train the PBLoRA adapters of ``arm`` in place.

    Args:
        arm: the reward model (its host frozen by the caller).
        tokenizer: the host's tokenizer.
        train: training pairs by attribute (every attribute of ``arm.config.attributes``).
        settings: hyper-parameters.
        checkpoint: resume from / save to this file (None: no checkpoints).
        lower: a shared cache of lower states (a new one if None).

    Returns:
        A log: per-step losses, conflict counts, the steps run, seconds.
    """
    attributes = list(arm.config.attributes)
    missing = [a for a in attributes if not train.get(a)]
    if missing:
        raise DataError(f"no training pairs for {', '.join(missing)}")
    encoded = {a: [encode_pair(tokenizer, p, settings.max_prompt_tokens,
                               settings.max_response_tokens) for p in train[a]]
               for a in attributes}
    lower = lower if lower is not None else LowerStates(arm)
    lower.fill([s for a in attributes for s in _sequences(encoded[a])[0]],
               description="lower layers (frozen, once)")
    params = arm.adapter_parameters()
    for param in params:
        param.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    rng = np.random.default_rng(settings.seed)
    log: dict[str, Any] = {"settings": asdict(settings), "loss": [], "conflicts": [],
                           "attributes_per_step": []}
    start_step = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)  # no code runs
        if state["settings"] != asdict(settings):
            raise ConfigurationError(
                f"checkpoint {checkpoint} was written with other settings; delete it or train "
                "with the same options"
            )
        with torch.no_grad():
            for param, saved in zip(params, state["params"]):
                param.copy_(saved)
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        log = state["log"]
        start_step = state["step"]
        logger.info("resuming Pv-Arm training at step %d from %s", start_step, checkpoint)
    started = time.perf_counter()
    arm.train()
    with tqdm(total=settings.steps, initial=start_step, desc="Pv-Arm train", unit="step") as bar:
        for step in range(start_step, settings.steps):
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * _lr_factor(step, settings)
            alpha = rng.dirichlet([settings.dirichlet] * len(attributes))
            alpha_t = torch.tensor(alpha, dtype=params[0].dtype)
            contrasted = _contrasted(alpha, settings, rng)
            gradients, losses, contrast_losses = [], {}, {}
            for index, attribute in enumerate(attributes):
                pick = rng.choice(len(encoded[attribute]), size=min(
                    settings.pairs_per_attribute, len(encoded[attribute])), replace=False)
                if alpha[index] < settings.min_weight:
                    continue
                batch = [encoded[attribute][i] for i in pick]
                if index != contrasted:
                    chosen, rejected = pair_logprobs(arm, lower, batch, alpha_t)
                    loss = bradley_terry_loss(chosen, rejected, settings.bt_beta)
                    objective = float(alpha[index]) * loss
                else:
                    n = len(batch)
                    other = torch.tensor(without_attribute(alpha, index), dtype=alpha_t.dtype)
                    rows = torch.cat([alpha_t.expand(n, -1), other.expand(n, -1)]).repeat(2, 1)
                    chosen, rejected = pair_logprobs(arm, lower, batch + batch, rows)
                    margins = chosen - rejected
                    loss = bradley_terry_loss(chosen[:n], rejected[:n], settings.bt_beta)
                    contrast = bradley_terry_loss(margins[:n], margins[n:], settings.bt_beta)
                    objective = float(alpha[index]) * loss + settings.contrast * contrast
                    contrast_losses[attribute] = round(contrast.item(), 4)
                grads = torch.autograd.grad(objective, params)
                gradients.append(torch.cat([g.reshape(-1) for g in grads]))
                losses[attribute] = round(loss.item(), 4)
            direction = combine(gradients, settings.pcgrad, rng)
            offset = 0
            for param in params:
                param.grad = direction[offset: offset + param.numel()].view_as(param).clone()
                offset += param.numel()
            torch.nn.utils.clip_grad_norm_(params, settings.clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            log["loss"].append(losses)
            if settings.contrast > 0:
                log.setdefault("contrast", []).append(contrast_losses)
            log["conflicts"].append(conflicts(torch.stack(gradients)) if len(gradients) > 1 else 0)
            log["attributes_per_step"].append(len(gradients))
            bar.set_postfix(loss=round(sum(losses.values()) / max(1, len(losses)), 3))
            bar.update(1)
            done = step + 1
            if checkpoint is not None and (done % settings.checkpoint_every == 0
                                           or done == settings.steps):
                _save_checkpoint(checkpoint, params, optimizer, rng, log, done, settings)
    arm.eval()
    for param in params:
        param.requires_grad_(False)
    log["seconds"] = round(log.get("seconds", 0.0) + time.perf_counter() - started, 1)
    log["steps"] = settings.steps
    return log


def _contrasted(alpha: np.ndarray, settings: TrainSettings, rng: np.random.Generator) -> int | None:
    """The attribute that gets the contrast term this step (drawn in proportion to its weight
    among the attributes the step trains), or None when the term is off."""
    if settings.contrast <= 0 or len(alpha) < 2:
        return None
    weights = np.where(alpha >= settings.min_weight, alpha, 0.0)
    if weights.sum() <= 0:
        return None
    return int(rng.choice(len(alpha), p=weights / weights.sum()))


def _save_checkpoint(path: Path, params: Sequence[torch.Tensor], optimizer: torch.optim.Optimizer,
                     rng: np.random.Generator, log: dict[str, Any], step: int,
                     settings: TrainSettings) -> None:
    with atomic_path(path) as tmp:
        torch.save({"params": [p.detach().clone() for p in params],
                    "optimizer": optimizer.state_dict(), "rng": rng.bit_generator.state,
                    "log": log, "step": step, "settings": asdict(settings)}, tmp)
    logger.info("checkpoint at step %d: %s", step, path)
    write_atomic(path.parent / "train_log.json", json.dumps(log, indent=1))
