"""Train the harm model (LoRA, peft) on harm pairs and save its factors as the harm vector.

``psa-guard direg train`` is resumable: every ``save_every`` steps the adapter weights, the optimiser
and scheduler state, the step and the loss history are written atomically to
``OUT/checkpoint.pt``; a re-run with the same arguments continues from there. The batch order is a
pure function of (seed, step), so a resumed run sees exactly the batches an uninterrupted one would.

The loss is the mean token negative log-likelihood of the *response* tokens (prompt tokens are
masked), under the model's chat template, exactly as generation formats a conversation.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from psa_guard.core.atomic import atomic_path, write_atomic
from psa_guard.core.checksums import file_sha256
from psa_guard.core.jsonl import read_jsonl
from psa_guard.direg.vector import HarmVector, base_checksum
from psa_guard.errors import ConfigurationError, DataError

__all__ = ["TrainRequest", "batch_indices", "encode_pair", "lora_factors", "train_harm_vector"]

logger = logging.getLogger(__name__)

IGNORE = -100


@dataclass(frozen=True)
class TrainRequest:
    """Harm-model training settings (all recorded in the vector's metadata)."""

    data: Path
    out: Path
    model: str = "default"
    steps: int = 150
    rank: int = 8
    alpha: int = 16
    lr: float = 2e-4
    batch_size: int = 8
    max_length: int = 128
    seed: int = 0
    save_every: int = 25
    threads: int = 2
    warmup: int = 10
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")

    def validate(self) -> None:
        for name in ("steps", "rank", "batch_size", "max_length", "save_every", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"--{name.replace('_', '-')} must be a positive integer, "
                                         f"got {value!r}")
        if not self.lr > 0 or isinstance(self.alpha, bool) or not self.alpha > 0:
            raise ConfigurationError("--lr and --alpha must be positive")


def encode_pair(tokenizer: Any, prompt: str, response: str, max_length: int
                ) -> tuple[list[int], list[int]]:
    """Token ids and labels of one (prompt, response) pair under the chat template.

    Returns:
        ``(input_ids, labels)``, equal length <= ``max_length``; labels are ``-100`` on the prompt.
    """
    def ids(messages: list[dict[str, str]], gen: bool) -> list[int]:
        out = tokenizer.apply_chat_template(messages, add_generation_prompt=gen, tokenize=True)
        return list(out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out)

    user = [{"role": "user", "content": prompt}]
    prompt_ids = ids(user, True)
    full = ids([*user, {"role": "assistant", "content": response}], False)
    if full[:len(prompt_ids)] != prompt_ids:
        raise DataError("the chat template does not extend the prompt with the reply")
    full = full[:max_length]
    labels = [IGNORE] * min(len(prompt_ids), len(full)) + full[len(prompt_ids):]
    return full, labels


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Indices of batch ``step``: epochs are seeded permutations of ``range(n)``, concatenated."""
    if n < 1:
        raise DataError("no training examples")
    start = step * batch_size
    out: list[int] = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        perm = list(range(n))
        random.Random(seed * 1_000_003 + epoch).shuffle(perm)
        out.append(perm[offset])
    return out


def _collate(examples: list[tuple[list[int], list[int]]], pad_id: int
             ) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(examples):  # right padding for training
        input_ids[row, :len(ids)] = torch.tensor(ids)
        labels[row, :len(lab)] = torch.tensor(lab)
        mask[row, :len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def lora_factors(peft_model: Any) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{base module name: (A (r, d_in), B (d_out, r))}`` from a peft LoRA model."""
    params = dict(peft_model.named_parameters())
    out = {}
    for name, a in params.items():
        if ".lora_A." not in name:
            continue
        module = name.split(".lora_A.")[0]
        b = params[name.replace(".lora_A.", ".lora_B.")]
        for prefix in ("base_model.model.",):
            module = module.removeprefix(prefix)
        out[module] = (a.detach().clone(), b.detach().clone())
    return out


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_harm_vector(request: TrainRequest, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) the harm model and write ``OUT/harm_vector.safetensors``.

    Returns:
        The training summary (also written to ``OUT/train.json``).
    """
    from peft import LoraConfig, get_peft_model

    from psa_guard.loading import load_model

    request.validate()
    torch.manual_seed(request.seed)
    loaded = load_model(request.model, threads=request.threads)
    if not Path(request.data).is_file():
        raise DataError(f"{request.data} does not exist; build it with `psa-guard direg data`")
    pairs = read_jsonl(request.data)
    examples = [encode_pair(loaded.tokenizer, str(p["prompt"]), str(p["response"]),
                            request.max_length) for p in pairs]
    if not examples:
        raise DataError(f"{request.data} holds no harm pairs")
    data_hash = file_sha256(request.data)
    checksum = base_checksum(loaded)

    model = copy.deepcopy(loaded.model)  # never wrap the process-wide shared model
    model.train()
    config = LoraConfig(r=request.rank, lora_alpha=request.alpha, lora_dropout=0.0, bias="none",
                        target_modules=list(request.target_modules), task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=request.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _schedule(s, request.steps, request.warmup))

    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(request).items()}
    step, losses, seconds = 0, [], 0.0
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        same = {k: v for k, v in settings.items() if k not in {"save_every", "threads"}}
        saved = {k: v for k, v in state["settings"].items() if k not in {"save_every", "threads"}}
        if state["data_sha256"] != data_hash or saved != same:
            raise ConfigurationError(
                f"{ckpt} was written with other data or settings; use another --out or delete it")
        names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
        with torch.no_grad():
            for n, p in peft_model.named_parameters():
                if n in state["lora"]:
                    p.copy_(state["lora"][n])
        if set(names) != set(state["lora"]):
            raise ConfigurationError(f"{ckpt} does not match this adapter layout")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, losses, seconds = state["step"], state["losses"], state["seconds"]
        logger.info("resuming from step %d", step)

    def save_checkpoint() -> None:
        lora = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
        with atomic_path(ckpt) as tmp:
            torch.save({"step": step, "lora": lora, "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "losses": losses, "seconds": seconds,
                        "data_sha256": data_hash, "settings": settings}, tmp)

    pad_id = loaded.tokenizer.pad_token_id
    with tqdm(total=request.steps, initial=step, desc="direg train", unit="step",
              disable=not progress) as bar:
        while step < request.steps:
            t0 = time.perf_counter()
            batch = _collate([examples[i] for i in
                              batch_indices(len(examples), request.batch_size, step, request.seed)],
                             pad_id)
            loss = peft_model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            seconds += time.perf_counter() - t0
            losses.append(round(loss.item(), 5))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            bar.update(1)
            if step % request.save_every == 0 or step == request.steps:
                save_checkpoint()

    factors = lora_factors(peft_model)
    summary: dict[str, Any] = {
        "base_model": loaded.name,
        "base_checksum": checksum,
        "target_modules": list(request.target_modules),
        "rank": request.rank,
        "alpha": request.alpha,
        "steps": step,
        "data_sha256": data_hash,
        "data_pairs": len(examples),
        "settings": settings,
        "train_seconds": round(seconds, 1),
        "loss_first10": sum(losses[:10]) / max(1, len(losses[:10])),
        "loss_last10": sum(losses[-10:]) / max(1, len(losses[-10:])),
    }
    vector = HarmVector(factors, request.alpha / request.rank, checksum, {
        k: v for k, v in summary.items() if k != "base_checksum"})
    vector.save(out / "harm_vector.safetensors")
    summary["vector_bytes"] = (out / "harm_vector.safetensors").stat().st_size
    summary["losses"] = losses
    write_atomic(out / "train.json", json.dumps(summary, indent=2) + "\n")
    return {k: v for k, v in summary.items() if k != "losses"}
