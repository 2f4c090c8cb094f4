"""The run scripts' Trainer: MixUpTrainer that resumes its loss state exactly, keeps its final
checkpoint until the run is finished, reports a full disk in one line, and writes the run's model card.

This module is the one home of every use of a private ``transformers.Trainer`` member (the engine,
``trainer.py``, overrides public methods only). Each is listed in :data:`PRIVATE_TRAINER_MEMBERS`
with what it is relied on for, and ``tests/test_trainer_internals.py`` checks each against the
installed transformers, so a release that renames or changes one fails a named test.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from transformers import TrainerCallback

from .output_dir import current_umask, translating_disk_full, write_json_atomic
from .trainer import MixUpTrainer

logger = logging.getLogger(__name__)

#: Private Trainer members this module relies on, and for what.
PRIVATE_TRAINER_MEMBERS = {
    "_save_rng_state": "called by every process while it saves a full checkpoint, before trainer_state.json: "
                       "where the loss state is written (ExactLossResume)",
    "_tr_loss": "the loss summed since the last log (a tensor), reset by train(): saved and restored",
    "_total_loss_scalar": "the loss summed over the whole train() call (a float): saved and restored",
    "_globalstep_last_logged": "the step of the last log (an int): saved and restored",
    "_finalize_training": "where train() deletes non-best checkpoints under save_total_limit=1 (FinalCheckpointKept)",
    "_save_checkpoint": "the one place a checkpoint is written (DiskFullSaves)",
}


class ExactLossResume:
    """Trainer mixin that keeps the running training loss across a resume, which the Trainer itself
    starts again at 0.

    The Trainer sums the training loss between logging steps (``_tr_loss``) and over the whole call
    (``_total_loss_scalar``), and resets both when ``train(resume_from_checkpoint=...)`` starts. A
    resumed run then logs a first loss averaged over fewer steps than its window claims, and a
    ``train_loss`` of the resumed part only. MixUpTrainer's own log window (the λ and levels drawn since
    the last log, whose mean it logs as ``mixup_lambda``) is lost the same way. This mixin saves the four
    values in each full
    checkpoint (one file per process, since each process sums its own losses, written before
    ``trainer_state.json`` so a complete checkpoint has it) and puts them back when training resumes
    from it. ``whole_run_train_loss`` is the whole run's mean loss per optimizer step: for an
    uninterrupted run exactly the Trainer's ``train_loss``, for a resumed one the same number.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.whole_run_train_loss: float | None = None
        self._resumed_from: str | None = None
        self.add_callback(_LossStateCallback(self))

    @staticmethod
    def loss_state_file(process_index: int) -> str:
        return f"loss_state_{process_index}.json"

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        if resume_from_checkpoint is True:
            from transformers.trainer_utils import get_last_checkpoint

            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
        self._resumed_from = resume_from_checkpoint or None
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _save_rng_state(self, output_dir):
        """Called by every process while it saves a full checkpoint, before trainer_state.json."""
        super()._save_rng_state(output_dir)
        write_json_atomic(Path(output_dir, self.loss_state_file(self.args.process_index)), {
            "tr_loss": float(self._tr_loss.item()), "total_loss": self._total_loss_scalar,
            "last_logged_step": self._globalstep_last_logged,
            "mixup_log": [[lam, level] for lam, level in self._mixup_log]})


class _LossStateCallback(TrainerCallback):
    """Restores ExactLossResume's values once the Trainer has reset its own, and computes the
    whole run's train_loss once training ends (the Trainer logs its final metrics before)."""

    def __init__(self, trainer: ExactLossResume):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        t = self.trainer
        if t._resumed_from is None:
            return
        path = Path(t._resumed_from, t.loss_state_file(args.process_index))
        if not path.is_file():
            logger.warning("%s has no %s: the first logged loss and train_loss cover only the resumed steps.",
                           t._resumed_from, path.name)
            return
        import torch

        saved = json.loads(path.read_text(encoding="utf-8"))
        t._tr_loss = torch.tensor(saved["tr_loss"], device=t._tr_loss.device, dtype=t._tr_loss.dtype)
        t._total_loss_scalar = saved["total_loss"]
        t._globalstep_last_logged = saved["last_logged_step"]
        t._mixup_log = [(lam, level) for lam, level in saved.get("mixup_log", [])]

    def on_train_end(self, args, state, control, **kwargs):
        t = self.trainer
        t.whole_run_train_loss = t._total_loss_scalar / max(state.global_step, 0.001)
        if state.log_history and "train_loss" in state.log_history[-1]:
            state.log_history[-1]["train_loss"] = t.whole_run_train_loss


class FinalCheckpointKept:
    """Trainer mixin that keeps the final checkpoint when training ends, which the Trainer deletes
    under ``save_total_limit=1`` (the scripts' default) when it is not the best one.

    Between ``train()`` returning and ``all_results.json`` (evaluation, temperature scaling, the model
    card), that final checkpoint is what lets a rerun after a kill skip training: resuming it runs zero
    further steps, reloads the best model and evaluates, with the uninterrupted run's results. From the
    best checkpoint instead, the rerun would train the last epochs again. ``output_dir.finish_run``
    deletes it with the others once the run is finished (unless checkpoints are kept)."""

    def _finalize_training(self, *args, **kwargs):
        limit = self.args.save_total_limit
        if limit == 1:
            self.args.save_total_limit = None  # the Trainer deletes non-best checkpoints here only under limit 1
        try:
            return super()._finalize_training(*args, **kwargs)
        finally:
            self.args.save_total_limit = limit


def follow_umask(folder) -> None:
    """Give the files of a saved model the permissions the umask gives any new file (safetensors writes
    its weights with mode 0600, so another user of a shared results folder could not read them)."""
    mask = current_umask()
    for path in Path(folder).iterdir() if Path(folder).is_dir() else ():
        try:
            if path.is_file() and (path.stat().st_mode & 0o777) == 0o600:
                path.chmod(0o666 & ~mask)
        except FileNotFoundError:  # a temporary file renamed meanwhile
            pass


class DiskFullSaves:
    """Trainer mixin: a save that fails for lack of space raises ``output_dir.DiskFullError`` naming the
    folder being written ("no space left on device while writing <path>: ..."), where safetensors
    raises a ``SafetensorError`` and ``torch.save`` an ``inline_container.cc`` RuntimeError that name
    neither the cause nor the file; the saved files follow the umask (:func:`follow_umask`)."""

    def save_model(self, output_dir=None, *args, **kwargs):
        folder = output_dir or self.args.output_dir
        with translating_disk_full(folder):
            result = super().save_model(output_dir, *args, **kwargs)
        if self.args.should_save:  # the process that wrote the files (rank 0 under DDP)
            follow_umask(folder)
        return result

    def _save_checkpoint(self, model, trial):
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        folder = Path(self.args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        with translating_disk_full(folder):
            return super()._save_checkpoint(model, trial)


class RunScriptTrainer(FinalCheckpointKept, DiskFullSaves, ExactLossResume, MixUpTrainer):
    """MixUpTrainer that resumes its loss state exactly (``ExactLossResume``), keeps its final checkpoint
    until the run is finished (``FinalCheckpointKept``), names the file a full disk stopped
    (``DiskFullSaves``), and whose model card is the run's (``model_card.build_model_card``, from the
    run's arguments ``script_args``, its ``data_summary`` and, once evaluated, its ``eval_metrics``).
    ``push_to_hub`` re-creates the card through ``create_model_card``, so the card is built there."""

    def __init__(self, *args, script_args=None, data_summary: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop_on_preemption_signals()  # on by default in the run scripts (--enable_jit_checkpoint: the same)
        self.script_args = script_args
        self.data_summary = data_summary or {}
        self.eval_metrics: dict | None = None

    def create_model_card(self, *args, model_name=None, tags=None, **kwargs):
        if self.script_args is None:
            return super().create_model_card(*args, model_name=model_name, tags=tags, **kwargs)
        if self.is_world_process_zero():
            from .model_card import build_model_card

            tags = [tags] if isinstance(tags, str) else tags
            card = build_model_card(self, self.script_args, self.data_summary, self.eval_metrics,
                                    model_name=model_name, tags=tags)
            card.save(os.path.join(self.args.output_dir, "README.md"))
