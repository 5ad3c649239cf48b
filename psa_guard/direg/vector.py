"""The harm vector: LoRA factors of the harm model, stored in safetensors with metadata.

File layout: for each adapted module ``M`` (a base-model module name such as
``model.layers.0.self_attn.q_proj``), tensors ``M.lora_A`` (``r x d_in``) and ``M.lora_B``
(``d_out x r``); the harm delta of ``M.weight`` is ``scale * B @ A``. The safetensors metadata
(strings only) holds :data:`FORMAT`, ``scale``, ``rank``, ``alpha``, ``target_modules`` (JSON), the
base model's name and checksum, the training-data hash, the step count, and any other training
facts (JSON in ``extra``).

The base checksum is the SHA-256 of ``model.safetensors`` from the default model's manifest
(``psa-guard-manifest.json``) when the model is the embedded default, else a hash of the state dict
(:func:`state_dict_sha256`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from psa_guard.core.atomic import atomic_path
from psa_guard.core.checksums import verify_file, write_checksum
from psa_guard.errors import HarmVectorError

__all__ = [
    "FORMAT",
    "SHIPPED_VECTOR",
    "HarmVector",
    "base_checksum",
    "state_dict_sha256",
]

logger = logging.getLogger(__name__)

FORMAT = "psa-guard-harm-vector/1"
#: The committed harm vector of the default model.
SHIPPED_VECTOR = Path(__file__).resolve().parent / "artifacts" / "harm_vector.safetensors"


def state_dict_sha256(model: Any) -> str:
    """SHA-256 over every parameter and buffer of ``model`` (names, dtypes, shapes and bytes).

    Returns:
        ``"state_dict:<hex>"``.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return "state_dict:" + digest.hexdigest()


def base_checksum(loaded: Any) -> str:
    """The checksum a harm vector records for its base model.

    The embedded default model: ``"model.safetensors:<sha256 from its manifest>"``; any other model:
    :func:`state_dict_sha256` of the loaded weights.
    """
    source = getattr(loaded, "source", None)
    if source is not None and getattr(source, "is_default", False):
        from psa_guard.embedded import MANIFEST_NAME, default_model_dir

        manifest = default_model_dir() / MANIFEST_NAME
        try:
            sha = json.loads(manifest.read_text())["files"]["model.safetensors"]["sha256"]
        except (OSError, ValueError, KeyError) as exc:
            raise HarmVectorError(
                f"cannot read the default model's checksum from {manifest}: {exc}; run "
                "`psa-guard setup`") from exc
        return f"model.safetensors:{sha}"
    return state_dict_sha256(loaded.model)


@dataclass
class HarmVector:
    """LoRA factors per adapted module, their scale, and metadata (no I/O in the constructor).

    Attributes:
        factors: module name -> ``(A, B)``: A float ``(r, d_in)``, B float ``(d_out, r)``.
        scale: LoRA scale ``alpha / r``.
        base_checksum: checksum of the base model it was trained on (see :func:`base_checksum`).
        metadata: everything else (rank, alpha, target modules, data hash, steps, ...).
    """

    factors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    scale: float
    base_checksum: str
    metadata: dict[str, Any] = field(default_factory=dict)

    # ---- I/O -----------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the factors and metadata as one safetensors file (atomically), then its sha256
        beside it (``STEM.sha256``, checked by :meth:`load`)."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        for name, (a, b) in sorted(self.factors.items()):
            tensors[f"{name}.lora_A"] = a.detach().to(torch.float32).contiguous().cpu()
            tensors[f"{name}.lora_B"] = b.detach().to(torch.float32).contiguous().cpu()
        meta = {"format": FORMAT, "scale": repr(float(self.scale)),
                "base_checksum": self.base_checksum}
        meta.update({k: v if isinstance(v, str) else json.dumps(v)
                     for k, v in self.metadata.items()})
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        write_checksum(path)

    @classmethod
    def load(cls, path: Path) -> HarmVector:
        """Read a harm vector file, after checking it against its ``STEM.sha256`` (required
        for the shipped vector; a file saved without one is read with a warning).

        Raises:
            HarmVectorError: missing, unreadable, wrong format, or a module lacks A or B.
            ChecksumError: the file does not match its recorded sha256 (it is not read).
        """
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise HarmVectorError(f"harm vector {path} does not exist; train one with "
                                  "`psa-guard direg train` or use the shipped one")
        verify_file(path, kind="harm vector", required=path.resolve() == SHIPPED_VECTOR,
                    fix="reinstall psa-guard for the shipped vector, or train one with "
                        "`psa-guard direg train`")
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = dict(handle.metadata() or {})
                tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (safe_open is not iterable)
        except Exception as exc:  # safetensors raises its own unrelated types
            raise HarmVectorError(f"cannot read harm vector {path}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise HarmVectorError(f"{path} is not a harm vector (format {meta.get('format')!r}, "
                                  f"expected {FORMAT!r})")
        names = sorted({k.rsplit(".", 1)[0] for k in tensors})
        factors = {}
        for name in names:
            if f"{name}.lora_A" not in tensors or f"{name}.lora_B" not in tensors:
                raise HarmVectorError(f"{path}: module {name} lacks lora_A or lora_B")
            factors[name] = (tensors[f"{name}.lora_A"], tensors[f"{name}.lora_B"])
        metadata: dict[str, Any] = {}
        for key, value in meta.items():
            if key in {"format", "scale", "base_checksum"}:
                continue
            try:
                metadata[key] = json.loads(value)
            except ValueError:
                metadata[key] = value
        return cls(factors, float(meta["scale"]), meta["base_checksum"], metadata)

    # ---- checks --------------------------------------------------------------------------------
    def check_compatible(self, model: Any, checksum: str | None) -> dict[str, torch.nn.Parameter]:
        """Check that this vector belongs to ``model``; return the weights it patches.

        Args:
            model: the model to patch.
            checksum: the model's base checksum (:func:`base_checksum`); None skips that check.

        Raises:
            HarmVectorError: checksum mismatch, a module missing from the model, or a shape
                mismatch (the message names the module and both shapes).
        """
        if checksum is not None and checksum != self.base_checksum:
            raise HarmVectorError(
                f"this harm vector was trained on a different base model (checksum "
                f"{self.base_checksum}, this model {checksum}); train one for this model with "
                "`psa-guard direg train --model ...`")
        params: Mapping[str, torch.nn.Parameter] = dict(model.named_parameters())
        out = {}
        for name, (a, b) in self.factors.items():
            weight = params.get(f"{name}.weight")
            if weight is None:
                raise HarmVectorError(f"the model has no weight {name}.weight that this harm "
                                      "vector patches; it belongs to another architecture")
            want = (b.shape[0], a.shape[1])
            if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1] or tuple(weight.shape) != want:
                raise HarmVectorError(
                    f"shape mismatch at {name}: the model's weight is {tuple(weight.shape)}, the "
                    f"harm vector gives B {tuple(b.shape)} @ A {tuple(a.shape)}")
            out[name] = weight
        return out

    @property
    def nbytes(self) -> int:
        return sum(a.numel() * a.element_size() + b.numel() * b.element_size()
                   for a, b in self.factors.values())
