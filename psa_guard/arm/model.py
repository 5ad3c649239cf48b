"""The Pv-Arm reward model: the host model's top layers, adapted by PBLoRA, sharing every weight.

``pi_r`` (docs/method.md section 3) is built on the base model itself. The bottom ``n - L`` decoder
layers are *not* adapted, so the reward model's hidden state entering layer ``n - L`` is exactly the
base model's: it is computed once, by the base model's own forward, and handed over. Pv-Arm then
runs only its own ``L`` layers (shallow copies of the host's top layers whose q/k/v projections are
wrapped in :class:`~psa_guard.arm.pblora.PBLoRALinear`), the host's final norm and the tied output
head. With ``B = 0`` at initialisation ``pi_r`` equals the base model, as in PARM/GenARM.

Nothing is copied: the copies share the host's parameter tensors, so the reward model adds only its
adapters to memory. It keeps its own KV cache for its ``L`` layers (see
:mod:`psa_guard.arm.guidance`).

Training (:mod:`psa_guard.arm.train`) calls :meth:`PvArm.lower` once per sequence (frozen, no
gradient) and :meth:`PvArm.sequence_logprobs` on the result; decoding captures the lower hidden
state from the base model's forward with :meth:`PvArm.capture`.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers.cache_utils import DynamicCache
from transformers.masking_utils import create_causal_mask

from psa_guard.arm.pblora import PBLoRALinear
from psa_guard.attributes import ATTRIBUTES
from psa_guard.errors import ConfigurationError

__all__ = ["ArmConfig", "PvArm", "positions_from_mask"]


@dataclass(frozen=True)
class ArmConfig:
    """Shape of the reward model.

    Attributes:
        layers: how many top decoder layers the reward model owns (``L``); the rest are shared
            with the base model's forward.
        r1: rank of the shared PBLoRA block.
        r2: rank of the preference block.
        lora_alpha: PBLoRA scale numerator (``s = lora_alpha / r2``).
        targets: the adapted projections of each owned layer.
        attributes: the preference axes, in order.
        seed: seeds the adapter initialisation.
        core_init_std: spread of the preference cores ``Z_i`` around the identity at
            initialisation; distinct cores make ``W2(alpha)`` depend on ``alpha`` from the first
            step (``B = 0``, so the initial model is the base model whatever this is).
    """

    layers: int = 6
    r1: int = 4
    r2: int = 4
    lora_alpha: float = 8.0
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")
    attributes: tuple[str, ...] = field(default=ATTRIBUTES)
    seed: int = 0
    core_init_std: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.layers, "r1": self.r1, "r2": self.r2, "lora_alpha": self.lora_alpha,
                "targets": list(self.targets), "attributes": list(self.attributes),
                "seed": self.seed, "core_init_std": self.core_init_std}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArmConfig:
        return cls(layers=int(data["layers"]), r1=int(data["r1"]), r2=int(data["r2"]),
                   lora_alpha=float(data["lora_alpha"]), targets=tuple(data["targets"]),
                   attributes=tuple(data["attributes"]), seed=int(data.get("seed", 0)),
                   core_init_std=float(data.get("core_init_std", 0.01)))


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded batch, as ``generate`` computes them.

    Args:
        attention_mask: ``(batch, tokens)`` 1 for real tokens, 0 for padding.

    Returns:
        ``(batch, tokens)`` long: ``cumsum - 1`` on real tokens, 1 on padding.
    """
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 1)


def _shallow_copy(module: nn.Module) -> nn.Module:
    """A new module object sharing ``module``'s parameters, with its own child/hook tables."""
    clone = copy.copy(module)
    for name, value in vars(module).items():
        if isinstance(value, dict):
            clone.__dict__[name] = type(value)(value)
    return clone


class PvArm(nn.Module):
    """The preference-conditioned autoregressive reward model on a host causal LM.

    The constructor only wires modules (no I/O); load trained adapters with
    :func:`psa_guard.arm.checkpoint.load_arm`.

    Args:
        host: a Llama-style ``*ForCausalLM`` (``host.model.layers``, ``host.model.norm``,
            ``host.lm_head``), already loaded. It is not modified.
        config: the reward model's shape.

    Raises:
        ConfigurationError: the host has no decoder layers where expected, or ``config.layers`` is
            out of range.
    """

    def __init__(self, host: Any, config: ArmConfig | None = None) -> None:
        super().__init__()
        self.config = config or ArmConfig()
        decoder = getattr(host, "model", None)
        layers = getattr(decoder, "layers", None)
        if layers is None or not hasattr(host, "lm_head"):
            raise ConfigurationError(
                f"Pv-Arm needs a Llama-style causal LM (model.layers, model.norm, lm_head); got "
                f"{type(host).__name__}"
            )
        n = len(layers)
        if not 1 <= self.config.layers <= n:
            raise ConfigurationError(
                f"ArmConfig.layers must be in 1..{n} for this model (it has {n} decoder layers); "
                f"got {self.config.layers}"
            )
        self.split = n - self.config.layers
        self._host = (host,)  # a tuple: not registered, so state_dict holds adapters only
        generator = torch.Generator().manual_seed(self.config.seed)
        owned = []
        for index, layer in enumerate(layers[self.split:]):
            clone = _shallow_copy(layer)
            attention: Any = _shallow_copy(layer.self_attn)
            attention.layer_idx = index  # its slot in the reward model's own cache
            for target in self.config.targets:
                base = getattr(layer.self_attn, target, None)
                if not isinstance(base, nn.Linear):
                    raise ConfigurationError(f"layer {self.split + index} has no linear {target!r}")
                attention._modules[target] = PBLoRALinear(
                    base, len(self.config.attributes), self.config.r1, self.config.r2,
                    self.config.lora_alpha, generator=generator,
                    core_init_std=self.config.core_init_std,
                )
            clone._modules["self_attn"] = attention
            owned.append(clone)
        self.layers = nn.ModuleList(owned)

    # ---- structure -----------------------------------------------------------------------------
    @property
    def host(self) -> Any:
        return self._host[0]

    def adapters(self) -> list[PBLoRALinear]:
        return [m for m in self.layers.modules() if isinstance(m, PBLoRALinear)]

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """Only the PBLoRA parameters (what an artifact stores), by qualified name."""
        return {name: param for name, param in self.named_parameters() if ".lora_" in name}

    def adapter_parameters(self) -> list[nn.Parameter]:
        return [param for name, param in self.named_parameters() if ".lora_" in name]

    @property
    def head_weight(self) -> torch.Tensor:
        """``(vocab, hidden)`` the host's output head."""
        return self.host.lm_head.weight

    @contextlib.contextmanager
    def preference(self, alpha: torch.Tensor) -> Iterator[None]:
        """Set ``alpha`` (``(batch, k)``) on every adapter for the duration of the block."""
        if alpha.dim() != 2 or alpha.shape[1] != len(self.config.attributes):
            raise ValueError(
                f"alpha must have shape (batch, {len(self.config.attributes)}); got {tuple(alpha.shape)}"
            )
        adapters = self.adapters()
        for adapter in adapters:
            adapter.alpha = alpha
        try:
            yield
        finally:
            for adapter in adapters:
                adapter.alpha = None

    # ---- forward pieces ------------------------------------------------------------------------
    def _run(self, layers: Any, hidden: torch.Tensor, attention_mask: torch.Tensor,
             position_ids: torch.Tensor, cache: DynamicCache | None) -> torch.Tensor:
        decoder = self.host.model
        mask = create_causal_mask(config=self.host.config, inputs_embeds=hidden,
                                  attention_mask=attention_mask, past_key_values=cache,
                                  position_ids=position_ids)
        embeddings = decoder.rotary_emb(hidden, position_ids=position_ids)
        for layer in layers:
            hidden = layer(hidden, attention_mask=mask, position_embeddings=embeddings,
                           position_ids=position_ids, past_key_values=cache,
                           use_cache=cache is not None)
        return hidden

    def lower(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The shared, frozen part: embeddings and the host's bottom ``n - L`` layers.

        Args:
            input_ids: ``(batch, tokens)`` long.
            attention_mask: ``(batch, tokens)`` 1 for real tokens.

        Returns:
            ``(batch, tokens, hidden)``: the hidden state entering layer ``n - L``.
        """
        decoder = self.host.model
        hidden = decoder.embed_tokens(input_ids)
        return self._run(decoder.layers[: self.split], hidden, attention_mask,
                         positions_from_mask(attention_mask), None)

    def upper(self, hidden: torch.Tensor, alpha: torch.Tensor, attention_mask: torch.Tensor,
              position_ids: torch.Tensor, cache: DynamicCache | None = None) -> torch.Tensor:
        """The reward model's own layers and the final norm.

        Args:
            hidden: ``(batch, new_tokens, hidden)`` from :meth:`lower` (or captured from the host).
            alpha: ``(batch, k)`` preference per row.
            attention_mask: ``(batch, past + new_tokens)``.
            position_ids: ``(batch, new_tokens)``.
            cache: the reward model's KV cache (None: no cache).

        Returns:
            ``(batch, new_tokens, hidden)`` normalised hidden states, ready for the head.
        """
        with self.preference(alpha):
            hidden = self._run(self.layers, hidden, attention_mask, position_ids, cache)
        return self.host.model.norm(hidden)

    def sequence_logprobs(self, hidden_low: torch.Tensor, input_ids: torch.Tensor,
                          attention_mask: torch.Tensor, response_mask: torch.Tensor,
                          alpha: torch.Tensor) -> torch.Tensor:
        """``sum_t log pi_r(y_t | x, y_<t; alpha)`` over the response tokens of each row.

        Args:
            hidden_low: ``(batch, tokens, hidden)`` from :meth:`lower`.
            input_ids: ``(batch, tokens)`` prompt and response (right-padded).
            attention_mask: ``(batch, tokens)``.
            response_mask: ``(batch, tokens)`` 1 on response tokens (the ones scored).
            alpha: ``(batch, k)``.

        Returns:
            ``(batch,)`` summed log-probabilities.
        """
        hidden = self.upper(hidden_low, alpha, attention_mask, positions_from_mask(attention_mask))
        targets = input_ids[:, 1:]
        scored = response_mask[:, 1:].bool()
        states = hidden[:, :-1][scored]                      # (n_scored, hidden)
        logits = states @ self.head_weight.t()
        picked = logits.gather(1, targets[scored].unsqueeze(1)).squeeze(1)
        logprobs = picked - torch.logsumexp(logits, dim=-1)
        rows = torch.arange(input_ids.shape[0]).unsqueeze(1).expand_as(targets)[scored]
        return torch.zeros(input_ids.shape[0], dtype=logprobs.dtype).index_add(0, rows, logprobs)

    # ---- decoding ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def capture(self, model: Any, sink: list[torch.Tensor]) -> Iterator[None]:
        """Append to ``sink`` the hidden state entering layer ``n - L`` of every forward of ``model``.

        ``model`` is the generating model (the host, or a DiReg-patched copy of it with the same
        architecture). The hook is removed when the block exits.
        """
        layer = model.model.layers[self.split]

        def hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            sink.append(args[0] if args else kwargs["hidden_states"])

        handle = layer.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()
