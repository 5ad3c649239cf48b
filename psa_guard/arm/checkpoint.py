"""Saving and loading Pv-Arm adapters: one safetensors file with the PBLoRA weights and metadata.

The metadata records the :class:`~psa_guard.arm.model.ArmConfig`, the base model's checksum (an
adapter is refused on another base model), and the provenance (data manifest, steps, seed, the
reproducing command, held-out accuracies).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from psa_guard.arm.model import ArmConfig, PvArm
from psa_guard.core.atomic import atomic_path
from psa_guard.core.checksums import verify_file, write_checksum
from psa_guard.errors import ArmAdapterError, ConfigurationError

__all__ = ["SHIPPED_ADAPTER", "load_arm", "read_metadata", "save_arm"]

#: The trained adapter for the embedded default model (see docs/arm.md for its provenance).
SHIPPED_ADAPTER = Path(__file__).resolve().parent / "artifacts" / "pvarm.safetensors"


def save_arm(arm: PvArm, path: Path, *, base_checksum: str, provenance: dict[str, Any]) -> None:
    """Write the adapters of ``arm`` to ``path`` atomically (temp file, then rename), then its
    sha256 beside it (``STEM.sha256``, checked by :func:`load_arm`)."""
    tensors = {name: t.detach().contiguous().cpu() for name, t in arm.adapter_state().items()}
    meta = {"format": "psa-guard-pvarm/1", "config": json.dumps(arm.config.to_dict()),
            "base_checksum": base_checksum, "provenance": json.dumps(provenance, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    write_checksum(path)


def read_metadata(path: Path) -> dict[str, Any]:
    """The adapter's metadata: ``config`` (dict), ``base_checksum`` and ``provenance`` (dict).

    Raises:
        ArmAdapterError: the file is missing, unreadable or not a Pv-Arm adapter.
    """
    path = Path(path)
    if not path.is_file():
        raise ArmAdapterError(
            f"no Pv-Arm adapter at {path}; train one with `psa-guard arm train` or use the shipped "
            f"adapter ({SHIPPED_ADAPTER})"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        if meta.get("format") != "psa-guard-pvarm/1":
            raise ArmAdapterError(f"{path} is not a Pv-Arm adapter (format {meta.get('format')!r})")
        return {"config": json.loads(meta["config"]), "base_checksum": meta["base_checksum"],
                "provenance": json.loads(meta.get("provenance", "{}"))}
    except ArmAdapterError:
        raise
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise ArmAdapterError(f"cannot read the Pv-Arm adapter {path}: {exc}") from exc


def load_arm(host: Any, path: Path | None = None, *, checksum: str | None = None) -> PvArm:
    """Build a :class:`PvArm` on ``host`` and load the adapter at ``path`` (default: shipped),
    after checking it against its ``STEM.sha256`` (required for the shipped adapter; a file saved
    without one is read with a warning).

    Args:
        host: the loaded causal LM the adapter was trained on.
        path: the adapter file.
        checksum: the host's base checksum; refused if it differs from the adapter's (None skips).

    Raises:
        ArmAdapterError: missing/damaged file, another base model, or mismatched shapes.
        ChecksumError: the file does not match its recorded sha256 (it is not read).
    """
    path = Path(path) if path is not None else SHIPPED_ADAPTER
    if path.is_file():
        verify_file(path, kind="Pv-Arm adapter", required=path.resolve() == SHIPPED_ADAPTER,
                    fix="reinstall psa-guard for the shipped adapter, or train one with "
                        "`psa-guard arm train`")
    meta = read_metadata(path)
    if checksum is not None and meta["base_checksum"] != checksum:
        raise ArmAdapterError(
            f"the Pv-Arm adapter {path} was trained on base model {meta['base_checksum']}, not "
            f"{checksum}; train one for this model with `psa-guard arm train`"
        )
    try:
        arm = PvArm(host, ArmConfig.from_dict(meta["config"]))
    except ConfigurationError as exc:
        raise ArmAdapterError(f"{path} does not fit this model: {exc}") from exc
    expected = arm.adapter_state()
    with safe_open(str(path), framework="pt") as handle:
        names = set(handle.keys())
        if names != set(expected):
            raise ArmAdapterError(
                f"{path} does not fit this model: {len(names ^ set(expected))} adapter tensors "
                f"differ by name (was it trained on another architecture?)"
            )
        with torch.no_grad():
            for name, param in expected.items():
                tensor = handle.get_tensor(name)
                if tensor.shape != param.shape:
                    raise ArmAdapterError(
                        f"{path}: {name} has shape {tuple(tensor.shape)}, the model needs "
                        f"{tuple(param.shape)}"
                    )
                param.copy_(tensor.to(param.dtype))
    arm.requires_grad_(False)
    arm.eval()
    return arm
