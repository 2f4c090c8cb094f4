"""mixup-trainer: MixUp (CLS, Input, Manifold) for Hugging Face Trainer, plus calibration metrics."""

from .arguments import MixUpTrainingArguments
from .collator import MixUpDataCollator
from .hooks import MixUpHooks, get_or_attach_hooks
from .mixing import MixUpPlan, draw_plan, mix, pad_for_mixing, soft_targets
from .modeling import MixUpBertForSequenceClassification
from .trainer import MixUpTrainer

__version__ = "0.1.0"

__all__ = [
    "MixUpBertForSequenceClassification",
    "MixUpDataCollator",
    "MixUpHooks",
    "MixUpPlan",
    "MixUpTrainer",
    "MixUpTrainingArguments",
    "draw_plan",
    "get_or_attach_hooks",
    "mix",
    "pad_for_mixing",
    "soft_targets",
]
