"""``benchmarks/bench_arm.py``: both reward models' memory is read at the same point."""

from __future__ import annotations

from types import ModuleType

import pytest

from ..doubles import BENCHMARKS, load_benchmark


@pytest.fixture(scope="module")
def script() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))  # it imports its sibling bench_generation
        return load_benchmark("bench_arm")


def test_each_stage_is_read_after_it_built_and_ran_the_workload(script: ModuleType) -> None:
    """Building and running both count: reading after the build alone (the old separate-model
    figure) would miss the 7 MiB its run adds."""
    memory = [1000.0]
    events: list[str] = []

    def stage(name: str, build: float, run: float) -> object:
        def go() -> str:
            memory[0] += build
            events.append(f"build {name}")
            memory[0] += run
            events.append(f"run {name}")
            return name
        return go

    def rss() -> float:
        events.append("read")
        return memory[0]

    added, built = script.added_rss(
        {"pvarm": stage("pvarm", 15.0, 5.0), "separate_model": stage("separate", 480.0, 7.0)},
        rss=rss,
    )
    assert added == {"pvarm": 20.0, "separate_model": 487.0}
    assert built == {"pvarm": "pvarm", "separate_model": "separate"}
    assert events == ["read", "build pvarm", "run pvarm", "read",
                      "build separate", "run separate", "read"]
