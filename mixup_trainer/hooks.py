"""Where a model exposes the mixing levels 0..n+1, and the forward hooks that mix there.

Hooks instead of a rewritten forward: the model's own forward (attention masks, SDPA, gradient
checkpointing) stays exactly the library's, and a model without a plan is exactly the parent model.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .mixing import MixUpPlan, mix


def mixup_level_modules(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are levels 0..n+1: embeddings, each encoder block, the pooler.

    Supported: BERT-style encoders whose base model has ``embeddings``, ``encoder.layer`` and a
    ``pooler`` (BERT and its relatives that keep the pooled [CLS] head).
    """
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    embeddings = getattr(base, "embeddings", None)
    blocks = getattr(getattr(base, "encoder", None), "layer", None)
    pooler = getattr(base, "pooler", None)
    if embeddings is None or blocks is None or pooler is None:
        raise ValueError(
            f"{type(model).__name__} has no manifold-MixUp support: it needs a base model with "
            "`embeddings`, `encoder.layer` and a `pooler` (BERT-style, e.g. "
            "MixUpBertForSequenceClassification or BertForSequenceClassification). Use "
            "--mixup_method none for other architectures."
        )
    return [embeddings, *blocks, pooler]


class MixUpHooks:
    """Forward hooks on levels 0..n+1; the level named by ``plan`` is mixed, the rest pass through.

    The plan is set by the trainer before the forward pass and stays until the next one (so that
    gradient checkpointing, which re-runs blocks during backward, mixes identically); it has no
    effect in eval mode.
    """

    def __init__(self, model: nn.Module):
        self.modules = mixup_level_modules(model)
        self.plan: MixUpPlan | None = None
        self._handles = [m.register_forward_hook(partial(self._hook, level)) for level, m in enumerate(self.modules)]

    @property
    def num_levels(self) -> int:
        """n + 2: embeddings, n encoder blocks, pooler."""
        return len(self.modules)

    def _hook(self, level: int, module: nn.Module, args, output):
        plan = self.plan
        if plan is None or plan.layer != level or not module.training:
            return None
        if isinstance(output, torch.Tensor):
            return mix(output, plan)
        return (mix(output[0], plan), *output[1:])

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def get_or_attach_hooks(model: nn.Module) -> MixUpHooks:
    """The model's MixUp hooks: its own (MixUpBertForSequenceClassification) or attached now."""
    hooks = getattr(model, "mixup_hooks", None)
    if hooks is None:
        hooks = MixUpHooks(model)
        model.mixup_hooks = hooks
    return hooks
