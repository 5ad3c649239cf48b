from __future__ import annotations

from typing import Any

import pytest

from psa_guard.errors import ConfigurationError
from psa_guard.generation import GenerationSettings


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": -5}, "max_new_tokens"),
        ({"max_new_tokens": 10**9}, "max_new_tokens"),
        ({"max_new_tokens": 2.5}, "max_new_tokens"),
        ({"max_new_tokens": True}, "max_new_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 1e6}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"stop": ("",)}, "stop"),
        ({"stop": (3,)}, "stop"),
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        GenerationSettings(**kwargs)


def test_greedy_and_sampling_kwargs() -> None:
    assert GenerationSettings().generate_kwargs()["do_sample"] is False
    sampled = GenerationSettings(temperature=0.7, top_p=0.9).generate_kwargs()
    assert sampled["do_sample"] is True and sampled["temperature"] == 0.7 and sampled["top_p"] == 0.9


def test_stop_string_is_wrapped_and_settings_are_hashable() -> None:
    settings = GenerationSettings(stop="###")  # type: ignore[arg-type]
    assert settings.stop == ("###",)
    assert hash(settings) == hash(GenerationSettings(stop=("###",)))
