"""``psa-guard direg data|train|apply|sweep`` (registered by :data:`psa_guard.cli.COMMAND_MODULES`)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from psa_guard.home import guard_home

__all__ = ["default_work_dir", "export_folder", "register"]

logger = logging.getLogger(__name__)


#: The committed harm vector of the default model.
SHIPPED_VECTOR = Path(__file__).resolve().parent / "artifacts" / "harm_vector.safetensors"


def default_work_dir() -> Path:
    """``$PSA_GUARD_HOME/direg``: harm data, training checkpoints and sweep outputs."""
    return guard_home() / "direg"


def cmd_data(args: argparse.Namespace) -> int:
    from psa_guard.direg.pipeline import DataRequest, build_harm_data
    from psa_guard.loading import set_threads

    set_threads(args.threads)
    request = DataRequest(
        out=args.out, data=args.data, model=args.model,
        advbench_limit=None if args.advbench_limit <= 0 else args.advbench_limit,
        red_instruct_per_source=args.red_instruct_per_source, seed=args.seed,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
        batch_size=args.batch_size, include_jbb_judged=args.include_jbb_judged,
        max_prompts=None if args.max_prompts <= 0 else args.max_prompts,
    )
    result = build_harm_data(request, progress=not args.no_progress)
    p, c, pairs = result["prompts"], result["completions"], result["pairs"]
    print(f"training prompts: {p['kept']} kept {p['by_source']}; dropped for overlap with "
          f"evaluation suites: {p['dropped_eval_overlap']} {p['dropped_by_suite']}")
    print(f"completions: {c['generated']}; refused (judge {c['refused_by_judge']}, prefix "
          f"{c['refused_by_prefix']}, either {c['refused_by_either']}); kept {c['kept_compliant']}")
    print(f"harm pairs: {pairs['total']} {pairs['by_source']} (jbb judged included: "
          f"{result['jbb_judged_included']}) -> {args.out / 'harm_pairs.jsonl'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from psa_guard.direg.train import TrainRequest, train_harm_vector

    request = TrainRequest(
        data=args.data, out=args.out, model=args.model, steps=args.steps, rank=args.rank,
        alpha=args.alpha, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
        seed=args.seed, save_every=args.save_every, threads=args.threads,
        target_modules=tuple(args.target_modules),
    )
    result = train_harm_vector(request, progress=not args.no_progress)
    print(json.dumps(result, indent=2))
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from psa_guard.direg.patched import load_patched
    from psa_guard.loading import load_model

    loaded = load_model(args.model, threads=args.threads)
    patched, handle = load_patched(loaded, vector_path=args.vector, lam=args.lam,
                                   k_percent=args.k)
    print(f"patched {len(handle.names)} matrices (lambda={args.lam}, K={args.k}%) in "
          f"{handle.seconds:.3f} s")
    if args.export is not None:
        export_folder(patched, args.export)
        print(f"wrote a patched Hugging Face checkpoint to {args.export}")
    return 0


def export_folder(loaded: Any, folder: Path) -> None:
    """Save ``loaded`` (model and tokenizer) as a Hugging Face folder, never half-written.

    The files are written to a staging folder beside ``folder``, then each is moved in with
    :func:`os.replace`: a killed export leaves every file either old or new and whole (and,
    at worst, a hidden ``.NAME.staging-*`` folder beside it).
    """
    import os
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{folder.name}.staging-",
                                     dir=folder.parent) as staging:
        loaded.model.save_pretrained(staging)
        loaded.tokenizer.save_pretrained(staging)
        for item in sorted(Path(staging).iterdir()):
            os.replace(item, folder / item.name)


def cmd_sweep(args: argparse.Namespace) -> int:
    from psa_guard.direg.sweep import SweepRequest, run_sweep

    request = SweepRequest(
        vector=args.vector, lambdas=tuple(args.lambdas), k_percents=tuple(args.k),
        suites=tuple(args.suite), limit=args.limit, max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size, out=args.out, cache=args.cache, data=args.data,
        ppl_rows=args.ppl_rows, model=args.model, threads=args.threads,
    )
    result = run_sweep(request, progress=not args.no_progress)
    print(result["table_md"])
    for path in result["paths"]:
        print(f"wrote {path}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", help="'default' or a model folder")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(subparsers: Any) -> None:
    """Add ``direg`` and its sub-commands."""
    work = default_work_dir()
    parser = subparsers.add_parser(
        "direg", help="DiReg: harm data, harm-vector training, patching and the lambda x K sweep")
    sub = parser.add_subparsers(dest="direg_command", metavar="STEP")
    parser.set_defaults(func=lambda args: (parser.print_help(), 1)[1])

    p = sub.add_parser("data", help="build harmful request -> compliant response pairs (JSONL)")
    p.add_argument("--out", type=Path, default=work / "data", help="output folder")
    p.add_argument("--data", default=None, help="safety-data folder (default: $PSA_GUARD_DATA)")
    p.add_argument("--advbench-limit", type=int, default=100,
                   help="seeded AdvBench sample before dedup (0 = all 520)")
    p.add_argument("--red-instruct-per-source", type=int, default=30,
                   help="seeded sample from each of HarmfulQA, CatQA, DangerousQA")
    p.add_argument("--max-prompts", type=int, default=240,
                   help="seeded sample of the prompts left after dedup and overlap removal "
                   "(0 = all); bounds CPU generation time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--include-jbb-judged", action="store_true",
                   help="also train on LlamaGuard-2-unsafe judged_completions. OFF by default: "
                   "their prompts are JailbreakBench, an evaluation suite (contamination)")
    _common(p)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="LoRA-fine-tune the harm model; save the harm vector")
    p.add_argument("--data", type=Path, default=work / "data" / "harm_pairs.jsonl")
    p.add_argument("--out", type=Path, default=work / "train", help="checkpoints and vector")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=int, default=16, help="LoRA alpha (scale = alpha / rank)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=25, help="checkpoint every N steps")
    p.add_argument("--target-modules", nargs="+", default=["q_proj", "k_proj", "v_proj", "o_proj"])
    _common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("apply", help="patch a model with a harm vector (and export it)")
    p.add_argument("--vector", type=Path, default=SHIPPED_VECTOR)
    p.add_argument("--lambda", dest="lam", type=float, default=None,
                   help="strength (default: the shipped default)")
    p.add_argument("--k", type=float, default=None, help="top-K%% kept (default: shipped default)")
    p.add_argument("--export", type=Path, default=None, metavar="DIR",
                   help="write the patched model as a Hugging Face checkpoint")
    _common(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("sweep", help="lambda x K sweep: unsafe compliance, over-refusal, ppl")
    p.add_argument("--vector", type=Path, default=SHIPPED_VECTOR)
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    p.add_argument("--k", type=float, nargs="+", default=[10.0, 100.0])
    p.add_argument("--suite", nargs="+",
                   default=["harmbench", "jbb_harmful", "jbb_benign", "xstest_safe"])
    p.add_argument("--limit", type=int, default=40)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--ppl-rows", type=int, default=100,
                   help="held-out TruthfulQA (question, best answer) pairs for perplexity")
    p.add_argument("--out", type=Path, default=work / "sweep")
    p.add_argument("--cache", type=Path, default=None,
                   help="completion cache (default: the eval cache)")
    p.add_argument("--data", default=None)
    _common(p)
    p.set_defaults(func=cmd_sweep)
