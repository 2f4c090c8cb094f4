"""MixUpTrainer: a transformers.Trainer whose training loss is MixUp's soft-label loss."""

from __future__ import annotations

import logging
import signal

import numpy as np
import torch
from transformers import Trainer

from .arguments import MixUpTrainingArguments
from .collator import MixUpDataCollator
from .hooks import get_or_attach_hooks
from .levels import unwrap_model
from .preemption import STOP_SIGNALS, PreemptionCallback
from .mixing import (
    MixUpPlan,
    align_for_mixing,
    check_read_rows,
    draw_plan,
    mixup_per_example_loss,
    pad_for_mixing,
    regmix_plan,
    resolve_pad_token_id,
)

logger = logging.getLogger(__name__)


def _per_row(value, batch_size: int) -> bool:
    """Whether a batch entry holds one row per example (input_ids, masks ...), to be repeated for RegMixup."""
    return torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == batch_size


class MixUpTrainer(Trainer):
    """Fine-tunes a sequence classifier with CLS, Input or Manifold MixUp in one forward pass.

    ``MixUpTrainer(model=..., args=MixUpTrainingArguments(...), train_dataset=...,
    processing_class=tokenizer)`` is all it takes: without a ``data_collator`` it builds a
    ``MixUpDataCollator`` from the tokenizer. Each training batch gets a plan (partners, λ, level)
    drawn from a generator keyed by (seed, process index, optimizer step, micro-batch), so a run
    resumed from a checkpoint mixes exactly like an uninterrupted one and each data-parallel rank
    draws its own plans. Evaluation and prediction run on clean inputs with the model's own loss.

    Decoder classifiers (Llama, Qwen, Mistral, Gemma, Phi, GPT-2 ...; see ``levels.py``) need
    ``model.config.pad_token_id`` (they read each row at its last non-pad token) and may pad on
    either side; for levels 0..n each batch is re-padded by ``align_for_mixing`` so that both rows
    of a pair are read at one position. A batch with a row made only of the pad token (pad = eos and
    an empty text) cannot be aligned: with levels 0..n among the mixed ones it is refused, naming the
    row; ``mixup_method="cls"`` mixes it where the model reads it.

    ``mixup_objective="regmix"`` (RegMixup) forwards the batch and its mixed copy as one batch of 2B
    rows (``mixing.regmix_plan``) and trains on CE(clean) + η · the MixUp loss; the clean half's logits
    are what ``compute_loss`` returns. ``mixup_similarity_kernel=True`` lets the hooks warp each pair's
    λ from the pair's distance at the drawn level (``mixing.SimilarityKernel``); the targets are mixed
    with the warped λ (``MixUpHooks.applied_plan``).
    """

    def __init__(self, model=None, args: MixUpTrainingArguments | None = None, data_collator=None, **kwargs):
        if args is None:
            args = MixUpTrainingArguments(output_dir="trainer_output")
        if not isinstance(args, MixUpTrainingArguments):
            raise TypeError(
                f"MixUpTrainer needs MixUpTrainingArguments (got {type(args).__name__}): build the "
                "arguments with mixup_trainer.MixUpTrainingArguments(..., mixup_method=...)."
            )
        processing_class = kwargs.get("processing_class")
        if data_collator is None and hasattr(processing_class, "pad"):
            data_collator = MixUpDataCollator(processing_class)
        handlers = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        super().__init__(model=model, args=args, data_collator=data_collator, **kwargs)
        #: Stops training at a step boundary with a complete checkpoint on SIGTERM / SIGUSR1 / SIGUSR2
        #: (preemption.py): with enable_jit_checkpoint=True here, always in the run scripts.
        self.preemption: PreemptionCallback | None = None
        if getattr(args, "enable_jit_checkpoint", False):
            # transformers' JIT checkpoint saves before the optimizer step: ours at the step boundary
            from transformers.trainer_jit_checkpoint import JITCheckpointCallback

            self.remove_callback(JITCheckpointCallback)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            self.stop_on_preemption_signals()
        self.mixup_hooks = None
        self._sequence_classifier = True
        self.mixup_levels: tuple[int, ...] = ()
        self.mixup_pad_token_id: int | None = None
        self.mixup_read_pad_token_id: int | None = None  # decoders: the pad id the model reads past
        self._mixup_log: list[tuple[float, int]] = []
        self._kernel_shifts: list[float] = []  # similarity kernel: mean |λ' − λ| of each batch since the last log
        self._plan_key = (-1, -1)  # (optimizer step, micro-batch) of the last plan
        self._warned_single_row = False
        if self.model is not None:
            self._setup_mixup(self.model)

    def stop_on_preemption_signals(self) -> None:
        """From the next ``train()`` on, SIGTERM / SIGUSR1 / SIGUSR2 end training after the optimizer step
        under way, with a complete checkpoint at that step (see ``mixup_trainer.preemption``)."""
        if self.preemption is None:
            self.preemption = PreemptionCallback()
            self.add_callback(self.preemption)

    @property
    def preempted_by(self) -> str | None:
        """The name of the signal that stopped the last ``train()`` early, else None."""
        return signal.Signals(self.preemption.received).name if self.preemption and self.preemption.received else None

    # ----------------------------------------------------------------------------------- setup
    def _setup_mixup(self, model) -> None:
        """Validate the MixUp settings against the model and tokenizer before any training."""
        args = self.args
        base = unwrap_model(model)
        # MixUp mixes one target per sequence; other heads (per token, per choice, spans) would get a
        # loss computed on the wrong axes. Without mixing they keep the model's own loss.
        self._sequence_classifier = type(base).__name__.endswith("ForSequenceClassification")
        if not args.mixup_enabled:
            return
        if not self._sequence_classifier:
            raise ValueError(
                f"MixUp mixes one label per sequence, and {type(base).__name__} is not a sequence "
                "classifier (token classification, multiple choice and span heads are not supported). Load "
                "the model with AutoModelForSequenceClassification, or train it with mixup_method='none'."
            )
        self.mixup_hooks = get_or_attach_hooks(model)
        n = self.mixup_hooks.levels.num_blocks
        self.mixup_levels = args.mixup_levels(n)
        if self.mixup_hooks.levels.per_position_head:
            self._setup_decoder(base, n)
        elif args.mixup_padding != "none" and min(self.mixup_levels) <= n:
            self.mixup_pad_token_id = resolve_pad_token_id(self.processing_class, args.mixup_pad_token)
            if getattr(self.processing_class, "padding_side", "right") == "left":
                raise ValueError(
                    f"mixup_padding={args.mixup_padding!r} extends each row after its last token, and this "
                    "tokenizer pads on the left. Set tokenizer.padding_side = 'right' (encoders are trained "
                    "with right padding), or use mixup_padding='none' or mixup_method='cls'."
                )
        if hasattr(base, "add_model_tags"):
            base.add_model_tags(list(self.mixup_tags))

    def _setup_decoder(self, base, n: int) -> None:
        """A decoder classifier reads row i at its last token that is not config.pad_token_id: that
        id must exist and be the one the tokenizer pads with, or the model (and MixUp) would read
        padding. Either padding side works; levels 0..n re-pad with a filler (sep = eos here)."""
        pad_id = base.config.get_text_config().pad_token_id
        tokenizer = self.processing_class
        fix = ("set tokenizer.pad_token = tokenizer.eos_token (if it has none) and "
               "model.config.pad_token_id = tokenizer.pad_token_id")
        tokenizer_pad = getattr(tokenizer, "pad_token_id", pad_id) if tokenizer is not None else pad_id
        if pad_id is None or tokenizer_pad is None:
            lacking = "model.config.pad_token_id is None" if pad_id is None else "the tokenizer has no pad token"
            raise ValueError(f"{type(base).__name__} reads each row at its last non-pad token, and {lacking}: {fix}.")
        if tokenizer_pad != pad_id:
            raise ValueError(f"The tokenizer pads with token id {tokenizer_pad} but model.config.pad_token_id is "
                             f"{pad_id}, so {type(base).__name__} would read padding as the last token: {fix}.")
        self.mixup_read_pad_token_id = int(pad_id)
        if self.args.mixup_padding != "none" and min(self.mixup_levels) <= n:
            self.mixup_pad_token_id = resolve_pad_token_id(tokenizer, self.args.mixup_pad_token, decoder=True)

    def _problem_type(self, model) -> str:
        config = unwrap_model(model).config
        if config.problem_type:
            return config.problem_type
        return "regression" if config.num_labels == 1 else "single_label_classification"

    # ------------------------------------------------------------------------------------ plan
    def _draw_plan(self, batch_size: int) -> MixUpPlan | None:
        """The plan of this micro-batch, or None when it trains unmixed."""
        args = self.args
        if not args.mixup_enabled or self.state.global_step < args.mixup_start * self.state.max_steps:
            return None
        if batch_size < 2:
            if not self._warned_single_row:
                logger.warning("MixUp: a training batch of one row has no partner; it trains unmixed.")
                self._warned_single_row = True
            return None
        step = self.state.global_step
        micro = self._plan_key[1] + 1 if self._plan_key[0] == step else 0
        self._plan_key = (step, micro)
        rng = np.random.default_rng([args.seed, args.process_index, step, micro])
        plan = draw_plan(batch_size, args.alpha, self.mixup_levels, rng, args.mixup_partners, args.similarity_kernel)
        self._mixup_log.append((plan.lam, plan.layer))
        return plan

    # ------------------------------------------------------------------------------------ loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            # Evaluation / prediction: clean inputs, the model's own (unsmoothed) loss.
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss
        if not self._sequence_classifier:  # ERM on another head (mixing was refused at construction)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        if labels is None:
            raise ValueError(
                "MixUpTrainer: a training batch has no `labels`. MixUp mixes targets, so every "
                "training example needs a label (a `label` or `labels` column in the dataset)."
            )
        batch_size = labels.shape[0]
        plan = self._draw_plan(batch_size)
        regmix = plan is not None and self.args.mixup_objective == "regmix"
        # the rows the similarity kernel warps (a partner other than themselves), known on the host before
        # the plan moves to the device, so that logging the kernel's shift of λ costs no synchronisation
        kernel_rows = None
        if plan is not None and plan.kernel is not None:
            kernel_rows = plan.partner != torch.arange(batch_size)
        if plan is not None:
            plan = plan.to(labels.device)
            mixed = self._inputs_to_mix(inputs, plan)
            if regmix:  # RegMixup: the batch as given and its mixed copy, one forward pass of 2B rows
                inputs = {k: torch.cat([v, mixed[k]]) if _per_row(v, batch_size) else v for k, v in inputs.items()}
                labels = torch.cat([labels, labels])
                plan = regmix_plan(plan)
            else:
                inputs = mixed
        if self.mixup_hooks is not None:
            self.mixup_hooks.plan = plan
        outputs = model(**inputs)
        if plan is not None:
            self.mixup_hooks.check_mixed(outputs.logits)
            plan = self.mixup_hooks.applied_plan  # the similarity kernel's per-row λ, for the targets
            if kernel_rows is not None and plan.row_lam is not None and kernel_rows.any():
                warped = plan.row_lam[-batch_size:][kernel_rows]  # RegMixup: its mixed half
                self._kernel_shifts.append(float((warped - plan.lam).abs().mean()))
        if outputs.logits.dim() != 2 or outputs.logits.shape[0] != labels.shape[0]:
            raise ValueError(
                f"MixUpTrainer expects sequence-classification logits [batch, num_labels], got "
                f"{tuple(outputs.logits.shape)} for {labels.shape[0]} labels."
            )
        per_example = mixup_per_example_loss(
            outputs.logits, labels, plan, self._problem_type(model), self.args.label_smoothing_factor
        )
        if regmix:  # CE(clean) + η · MixUp loss, per example of the batch
            per_example = per_example[:batch_size] + self.args.mixup_reg_weight * per_example[batch_size:]
            labels = labels[:batch_size]
            outputs["logits"] = outputs.logits[:batch_size]  # the clean half: the model's own forward
        if num_items_in_batch is not None:
            # The Trainer counted the examples of the whole accumulation window (over all ranks when
            # average_tokens_across_devices); it then skips its own division by the accumulation steps.
            examples = num_items_in_batch / (labels[0].numel() if labels.dim() > 1 else 1)
            loss = per_example.sum() / examples
            if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients over ranks
        else:
            loss = per_example.mean()
        return (loss, outputs) if return_outputs else loss

    def _inputs_to_mix(self, inputs: dict, plan: MixUpPlan) -> dict:
        """The batch as the plan mixes it: re-padded so that the rows of each pair share a length
        (encoders, ``pad_for_mixing``) or a read position (decoders, ``align_for_mixing``) when the drawn
        level is below the head; unchanged at the head."""
        head = self.mixup_hooks.num_levels - 1
        below_head = plan.layer < head
        if below_head and self.mixup_read_pad_token_id is not None:  # refuses a row of pad tokens only
            return align_for_mixing(inputs, plan.partner, self.args.mixup_padding, self.mixup_pad_token_id,
                                    self.mixup_read_pad_token_id)
        if below_head and self.mixup_pad_token_id is not None:
            return pad_for_mixing(inputs, plan.partner, self.args.mixup_padding, self.mixup_pad_token_id)
        if self.mixup_read_pad_token_id is not None and min(self.mixup_levels) < head and "input_ids" in inputs:
            # The head was drawn, but levels that realign are eligible: a decoder row of pad tokens only is
            # refused all the same, so the refusal does not depend on the level a batch drew.
            check_read_rows(inputs["input_ids"], self.mixup_read_pad_token_id)
        return inputs

    def training_step(self, model, inputs, num_items_in_batch=None):
        try:
            return super().training_step(model, inputs, num_items_in_batch)
        finally:
            if self.mixup_hooks is not None:
                self.mixup_hooks.plan = None  # kept through backward (gradient checkpointing re-runs blocks)

    # --------------------------------------------------------------------------------- logging
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training logs gain the mean drawn λ and the last mixed level since the previous log, and with the
        similarity kernel the mean |λ' − λ| over its warped pairs (how much the kernel changed the mixing)."""
        if self._mixup_log and "loss" in logs:
            lams, levels = zip(*self._mixup_log)
            logs["mixup_lambda"] = round(float(np.mean(lams)), 4)
            logs["mixup_layer"] = levels[-1]
            self._mixup_log.clear()
            if self._kernel_shifts:
                logs["mixup_kernel_shift"] = round(float(np.mean(self._kernel_shifts)), 4)
                self._kernel_shifts.clear()
        super().log(logs, start_time)

    @property
    def mixup_tags(self) -> tuple[str, str]:
        """The Hub tags of a model trained here (model card, ``add_model_tags``): mixup, mixup-<method>."""
        return ("mixup", f"mixup-{self.args.mixup_method}")

    def create_model_card(self, *args, tags=None, **kwargs):
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        for tag in self.mixup_tags:
            if tag not in tags:
                tags.append(tag)
        return super().create_model_card(*args, tags=tags, **kwargs)
