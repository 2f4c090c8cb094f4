"""BertForSequenceClassification with MixUp hooks at levels 0..n+1."""

from __future__ import annotations

from transformers import BertForSequenceClassification

from .hooks import MixUpHooks


class MixUpBertForSequenceClassification(BertForSequenceClassification):
    """``BertForSequenceClassification`` plus forward hooks that mix hidden states.

    Level 0 = embeddings output (Input MixUp), 1..n = output of encoder block k (Manifold MixUp),
    n+1 = pooled [CLS] vector fed to the classifier (CLS MixUp). Without a plan, or in eval mode,
    the forward pass is the parent's, bit for bit. The weights are the parent's too, so checkpoints
    are saved as plain ``BertForSequenceClassification`` and load anywhere without this package.
    """

    def __init__(self, config):
        super().__init__(config)
        self.mixup_hooks = MixUpHooks(self)

    def save_pretrained(self, save_directory, *args, is_main_process: bool = True, **kwargs):
        """Save as the parent class, so ``AutoModel*``, pipelines and the Hub see a plain BERT."""
        super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        self.config.architectures = [BertForSequenceClassification.__name__]
        if is_main_process:
            self.config.save_pretrained(save_directory)
