"""MixUpDataCollator: dynamic padding that keeps what MixUp's pair padding relies on."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import DataCollatorWithPadding


@dataclass
class MixUpDataCollator(DataCollatorWithPadding):
    """``DataCollatorWithPadding`` for MixUp training; built like it: ``MixUpDataCollator(tokenizer)``.

    Pair padding extends each row to the longer sentence of its pair, which needs row lengths
    readable from ``attention_mask`` (checked here) and, for encoders, right padding (checked by
    ``MixUpTrainer`` for the methods that re-pad; ``none`` and ``cls`` work with left padding too).
    Decoder classifiers take either side: their pairs are aligned at the end. The mixing plan
    itself is drawn by ``MixUpTrainer`` per optimizer step rather than here:
    a collator cannot tell which step a batch belongs to (dataloader workers, prefetching, and the
    batches skipped when resuming from a checkpoint), and the plan must be a function of the step
    for a resumed run to mix exactly like an uninterrupted one.
    """

    def __call__(self, features):
        if features and "label" in features[0] and any(f.get("label") is None for f in features):
            raise ValueError("A batch has examples with label None: drop unlabelled rows from the training set.")
        batch = super().__call__(features)
        if "attention_mask" not in batch:
            raise ValueError("MixUpDataCollator needs an attention_mask: tokenize with return_attention_mask=True.")
        return batch
