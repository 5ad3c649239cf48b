"""Load (issue 19, item 4), the CI-sized checks; the 5-minute run is ``benchmarks/load_serve.py``.

* 16 concurrent ``ainvoke`` on one ``ChatPSAGuard``: the micro-batcher puts them in shared
  batches, and under greedy decoding every reply equals the same prompt's solo reply (rows of a
  batch are isolated: padding and neighbours change nothing).
* 32 concurrent clients against ``psa-guard serve`` with a small queue: every answer is a 200 or
  the designed 429 with ``Retry-After``, the queue drains to zero, and the metrics count what the
  clients saw.
* The server pins glibc's mmap threshold (unless the environment chose one) and trims its heaps
  every few seconds (``psa_guard.serve.memory``), which keeps its resident memory flat under
  load (measured in the benchmark).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_psa_guard import ChatPSAGuard
from psa_guard.loading import load_model
from psa_guard.serve.config import ServeConfig
from tests.doubles import POLICY, ScriptedScorer
from tests.servers import Server, free_port

# different lengths (so different left padding), topics and one that the policy steers
PROMPTS = [f"Tell me about topic {i}." + " Please add detail." * (i % 5) for i in range(15)] + [
    "I feel a bit sad today, what could help?"]


def test_16_concurrent_ainvoke_equal_their_solo_replies(tiny_model_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "app.yaml"
    policy.write_text(POLICY)
    llm = ChatPSAGuard(model=str(tiny_model_dir), policy=str(policy), scorer=ScriptedScorer(),
                       max_tokens=12, temperature=0)
    solo = [llm.invoke(prompt) for prompt in PROMPTS]
    model = load_model(str(tiny_model_dir), threads=1).model
    rows: list[int] = []
    generate = model.generate

    def counting(*args: Any, **kwargs: Any) -> Any:
        rows.append(int(kwargs["input_ids"].shape[0]))
        return generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counting)

    async def together() -> list[Any]:
        return await asyncio.gather(*(llm.ainvoke(prompt) for prompt in PROMPTS))

    batched = asyncio.run(together())
    assert max(rows) > 1  # they did share batches
    assert [m.content for m in batched] == [m.content for m in solo]
    assert [m.response_metadata["psa_guard"] for m in batched] == [
        m.response_metadata["psa_guard"] for m in solo]
    assert "steer" in str(solo[-1].response_metadata["psa_guard"])  # the sad one was steered


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    policy = tmp_path_factory.mktemp("load") / "test_app.yaml"
    policy.write_text(POLICY)
    config = ServeConfig(policies=(str(policy),), model=str(tiny_model_dir), port=free_port(),
                         max_queue=8)
    with Server(config, ScriptedScorer()) as running:
        yield running


def _count(metrics: str, status: str) -> float:
    prefix = f'psa_guard_requests_total{{app="test_app",status="{status}"}} '
    return sum(float(line[len(prefix):]) for line in metrics.splitlines()
               if line.startswith(prefix))


def test_32_concurrent_clients_get_answers_or_the_designed_429(server: Server) -> None:
    before = httpx.get(f"{server.url}/metrics").text
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for turn in range(4):
                reply = http.post("/v1/chat/completions", json={
                    "model": "test_app", "max_tokens": 6,
                    "messages": [{"role": "user", "content": f"hello {index} {turn}"}]})
                with lock:
                    statuses[reply.status_code] += 1
                    if reply.status_code == 429 and reply.headers.get("retry-after") != "1":
                        bad.append("429 without Retry-After")
                    elif reply.status_code == 200 and not reply.json()["choices"][0]["message"]:
                        bad.append("200 without a message")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert set(statuses) <= {200, 429} and not bad, (statuses, bad)
    assert sum(statuses.values()) == 128 and statuses[200] > 0
    assert server.state.inflight == 0  # the queue drained
    after = httpx.get(f"{server.url}/metrics").text
    assert _count(after, "200") - _count(before, "200") == statuses[200]
    assert _count(after, "429") - _count(before, "429") == statuses[429]


CHECK_MEMORY = """
import json, os, sys, time
from psa_guard.serve.memory import Trimmer, pin_mmap_threshold
os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
kept = pin_mmap_threshold()  # the environment's choice stands
del os.environ["MALLOC_MMAP_THRESHOLD_"]
tuned = pin_mmap_threshold()
trimmer = Trimmer(every=0.02).start()
time.sleep(0.2)
trimmer.stop()
print(json.dumps({"kept": kept, "tuned": tuned, "trims": trimmer.trims,
                  "alive": trimmer._thread is not None and trimmer._thread.is_alive()}))
"""


def test_the_server_keeps_its_heap_small_pin_and_trim() -> None:
    """In a fresh process, as ``psa-guard serve`` does it (the settings are process-wide)."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", CHECK_MEMORY], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    result = json.loads(out)
    glibc = sys.platform.startswith("linux")
    assert result["kept"] is False and result["tuned"] is glibc
    assert (result["trims"] > 0) is glibc and result["alive"] is False
