"""What the tests share: paths, the subprocess environment, real SST-2 rows, and the tiny random BERT
(the fixtures built from these live in conftest.py)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MIXUP_DATA_DIR", REPO.parent / "shared" / "data"))
#: The environment of every subprocess a test starts: offline, no tokenizer threads, this checkout first.
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}
#: The tiny random BERT of the unit tests: 2 layers, hidden 32 (about 30 ms a training step here).
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                 max_position_embeddings=128)


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


def make_tiny_config(tokenizer=None, dropout: float = 0.0, **overrides):
    """A BertConfig of TINY_BERT with the tokenizer's vocabulary (100 tokens without one), 2 labels."""
    from transformers import BertConfig

    kwargs = dict(TINY_BERT, vocab_size=len(tokenizer) if tokenizer is not None else 100, num_labels=2,
                  hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    kwargs.update(overrides)
    return BertConfig(**kwargs)


def tokenized_dataset(tokenizer, n: int = 32, max_length: int = 40, label_fn=None):
    from datasets import Dataset

    texts, labels = read_sst2("train", limit=n)
    if label_fn is not None:
        labels = [label_fn(i, y) for i, y in enumerate(labels)]
    ds = Dataset.from_dict({"sentence": texts, "label": labels})
    return ds.map(lambda b: tokenizer(b["sentence"], truncation=True, max_length=max_length),
                  batched=True, remove_columns=["sentence"])


#: A process that holds an output folder's lock (as a run does) until it is killed.
LOCK_HOLDER = """
import sys, time
from types import SimpleNamespace
from mixup_trainer.output_dir import output_dir_lock
with output_dir_lock(SimpleNamespace(output_dir=sys.argv[1], should_save=True)):
    print("locked", flush=True)
    time.sleep(600)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock (its command line ends in ``--my-flag``); kill it to let go."""
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(folder), "--my-flag"], cwd=REPO, env=ENV,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder
