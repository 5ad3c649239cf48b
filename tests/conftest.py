"""Shared fixtures: a tiny random Llama on the real tokenizer, and the embedded default model.

The tiny model runs every unit test in milliseconds; the real tokenizer comes from the embedded
default model's folder, which the session makes sure exists (``psa-guard setup`` on first use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from psa_guard.embedded import ensure_default_model
from psa_guard.generation import ChatGenerator
from psa_guard.loading import LoadedModel, prepare_tokenizer


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The converted default model folder (set up once if missing)."""
    return ensure_default_model().path


@pytest.fixture(scope="session")
def tokenizer(default_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return prepare_tokenizer(AutoTokenizer.from_pretrained(default_model_dir))


def make_tiny_model(tokenizer: Any, max_positions: int = 256, seed: int = 0) -> Any:
    """A 2-layer random Llama with the real tokenizer's vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_positions,
        tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


@pytest.fixture(scope="session")
def tiny_loaded(tokenizer: Any) -> LoadedModel:
    return LoadedModel(make_tiny_model(tokenizer), tokenizer, "tiny-llama")


@pytest.fixture()
def tiny_generator(tiny_loaded: LoadedModel) -> ChatGenerator:
    return ChatGenerator(tiny_loaded)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """The tiny model saved as a Hugging Face folder (safetensors + tokenizer)."""
    folder = tmp_path_factory.mktemp("tiny-model")
    make_tiny_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
