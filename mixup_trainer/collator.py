"""MixUpDataCollator: dynamic padding that keeps what MixUp's pair padding relies on."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import DataCollatorWithPadding


@dataclass
class MixUpDataCollator(DataCollatorWithPadding):
    """``DataCollatorWithPadding`` for MixUp training; built like it: ``MixUpDataCollator(tokenizer)``.

    Pair padding extends each row to the longer sentence of its pair, which needs right padding
    (real tokens first) and row lengths readable from ``attention_mask``; this collator checks
    both. The mixing plan itself is drawn by ``MixUpTrainer`` per optimizer step rather than here:
    a collator cannot tell which step a batch belongs to (dataloader workers, prefetching, and the
    batches skipped when resuming from a checkpoint), and the plan must be a function of the step
    for a resumed run to mix exactly like an uninterrupted one.
    """

    def __post_init__(self):
        if getattr(self.tokenizer, "padding_side", "right") != "right":
            raise ValueError(
                f"MixUpDataCollator needs tokenizer.padding_side='right' (got "
                f"{self.tokenizer.padding_side!r}): pair padding extends each row after its last token."
            )

    def __call__(self, features):
        if features and "label" in features[0] and any(f.get("label") is None for f in features):
            raise ValueError("A batch has examples with label None: drop unlabelled rows from the training set.")
        batch = super().__call__(features)
        if "attention_mask" not in batch:
            raise ValueError("MixUpDataCollator needs an attention_mask: tokenize with return_attention_mask=True.")
        return batch
