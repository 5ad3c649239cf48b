"""Model loading: the embedded default model, a local Hugging Face folder, or a GGUF file.

:class:`ModelSource` only *describes* a model (no I/O); :func:`load_model` reads it, once per
process: later calls with the same source and dtype return the cached :class:`LoadedModel`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psa_guard.errors import ConfigurationError, ModelLoadError, ModelNotFoundError

__all__ = ["ModelSource", "LoadedModel", "load_model", "set_threads", "clear_model_cache"]

logger = logging.getLogger(__name__)

_DEFAULT_ALIASES = {"", "default", "smollm2", "smollm2-135m-instruct"}
_cache: dict[tuple[str, str, str], LoadedModel] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from.

    Attributes:
        path: a Hugging Face model folder or a ``.gguf`` file; None for the embedded default model.
    """

    path: Path | None = None

    @classmethod
    def parse(cls, spec: str | Path | None) -> ModelSource:
        """``None``/``"default"`` -> the embedded default; anything else is a folder or GGUF path."""
        if spec is None or (isinstance(spec, str) and spec.strip().lower() in _DEFAULT_ALIASES):
            return cls(None)
        return cls(Path(spec).expanduser())

    @property
    def is_default(self) -> bool:
        return self.path is None

    @property
    def is_gguf(self) -> bool:
        return self.path is not None and self.path.suffix.lower() == ".gguf"

    @property
    def name(self) -> str:
        """Model name for metadata: ``SmolLM2-135M-Instruct`` for the default, else the path."""
        from psa_guard.embedded import DEFAULT_MODEL_NAME

        return DEFAULT_MODEL_NAME if self.path is None else str(self.path)


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer, and a lock that serialises generation on it.

    Attributes:
        model: a ``transformers`` causal LM in eval mode.
        tokenizer: its tokenizer, left-padding, with a pad token.
        name: model name for metadata.
        source: where it was loaded from.
    """

    model: Any
    tokenizer: Any
    name: str
    source: ModelSource = field(default_factory=ModelSource)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def context_window(self) -> int:
        """Maximum number of positions (prompt + response) the model accepts."""
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", 0) or 2048)


def set_threads(threads: int) -> None:
    """Set the number of torch CPU threads (process-wide)."""
    import torch

    if not isinstance(threads, int) or threads < 1:
        raise ConfigurationError(f"threads must be a positive integer, got {threads!r}")
    torch.set_num_threads(threads)


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Make a tokenizer ready for batched generation: left padding and a pad token."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _resolve_folder(source: ModelSource) -> tuple[str, dict[str, Any]]:
    """Return the folder to load and extra ``from_pretrained`` kwargs; checks existence."""
    if source.path is None:
        from psa_guard.embedded import ensure_default_model

        return str(ensure_default_model().path), {}
    path = source.path
    if not path.exists():
        what = "GGUF file" if source.is_gguf else "model folder"
        raise ModelNotFoundError(
            f"{what} {path} does not exist; pass an existing Hugging Face model folder, a .gguf "
            f"file, or 'default' for the embedded model (see `psa-guard setup`)."
        )
    if source.is_gguf:
        return str(path.parent), {"gguf_file": path.name}
    if not path.is_dir():
        raise ModelNotFoundError(f"{path} is neither a model folder nor a .gguf file")
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"{path} has no config.json; it is not a Hugging Face model folder"
        )
    if not any(path.glob("*.safetensors")):
        pickled = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth"))
        if pickled:
            raise ModelLoadError(
                f"{path} holds pickled weights ({', '.join(pickled)}) and no .safetensors; "
                "psa-guard loads safetensors only (a pickle can run code): convert them once, "
                "in a trusted environment, with model.save_pretrained(folder)"
            )
    return str(path), {}


def load_model(
    spec: str | Path | ModelSource | None = None,
    *,
    dtype: str = "float32",
    threads: int | None = 1,
) -> LoadedModel:
    """Load a model and tokenizer, once per process (cached by source and dtype).

    Args:
        spec: a :class:`ModelSource`, a path (folder or ``.gguf``), or None/"default".
        dtype: torch dtype name for the weights.
        threads: torch CPU threads to use (None leaves torch's setting alone).

    Raises:
        ModelNotFoundError: the folder or file does not exist.
        ModelLoadError: the weights are corrupted or unreadable.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = spec if isinstance(spec, ModelSource) else ModelSource.parse(spec)
    if threads is not None:
        set_threads(threads)
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ConfigurationError(f"dtype {dtype!r} is not a torch dtype (try 'float32')")
    key = (str(source.path), dtype, "")
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        folder, extra = _resolve_folder(source)
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, **extra)
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch_dtype, **extra,
                **({} if source.is_gguf else {"use_safetensors": True}))  # never a pickle
        except Exception as exc:  # safetensors, gguf and transformers raise unrelated types
            where = source.path or folder
            raise ModelLoadError(
                f"could not load the model at {where}: {type(exc).__name__}: {exc}. The weights "
                f"may be corrupted or truncated; re-download or re-export them"
                + (" (for the default model run `psa-guard setup --force`)." if source.is_default
                   else ".")
            ) from exc
        model.eval()
        loaded = LoadedModel(model, prepare_tokenizer(tokenizer), source.name, source)
        _cache[key] = loaded
        logger.info("loaded %s from %s", loaded.name, folder)
        return loaded


def clear_model_cache() -> None:
    """Forget every cached model (frees memory once no one else holds them)."""
    with _cache_lock:
        _cache.clear()
