"""What the run scripts rely on so that nothing is lost and nothing is silently wrong.

* **Atomic results.** JSON and text results are written to a temporary file in the same folder and
  moved into place with ``os.replace``, so a kill leaves either the old file or the new one, never
  half of one. ``all_results.json`` is written last: a folder holding it holds a finished run.
* **An output folder belongs to one run.** ``run_settings.json`` records the settings that define
  the run (everything that changes the trained model or the reported numbers; not the output
  folder, logging, saving or overwrite flags). A rerun into the folder compares its own settings
  with it: different settings are refused, identical ones resume (or, once the run finished, stop
  without touching the results).
* **Resume is exact or refused.** Only complete checkpoints are resumed (weights and
  ``trainer_state.json``, which the Trainer writes last); a model-only checkpoint would restart the
  optimizer and the learning-rate schedule, so it is resumed only when the user names it.
  :class:`ExactLossResume` keeps the running training loss in each checkpoint, which the Trainer
  itself drops, so a resumed run logs the same losses and ``train_loss`` as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

RUN_SETTINGS_FILE = "run_settings.json"
ALL_RESULTS_FILE = "all_results.json"
TRAINER_STATE_FILE = "trainer_state.json"
#: Arguments that do not change the trained model or the reported numbers (where files go, what is
#: logged, how often and how much is saved, caches, workers, credentials). Every other argument
#: defines the run. ``paper_defaults`` is left out because the values it sets are compared instead.
NOT_SETTINGS = frozenset({
    "output_dir", "overwrite_output_dir", "keep_checkpoints", "resume_from_checkpoint", "run_name", "project",
    "report_to", "disable_tqdm", "log_level", "log_level_replica", "log_on_each_node", "logging_dir",
    "logging_strategy", "logging_steps", "logging_first_step", "logging_nan_inf_filter", "skip_memory_metrics",
    "save_strategy", "save_steps", "save_total_limit", "save_only_model", "save_on_each_node",
    "push_to_hub", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo", "hub_always_push",
    "hub_revision", "token", "cache_dir", "overwrite_cache", "preprocessing_num_workers",
    "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers",
    "dataloader_prefetch_factor", "dataloader_multiprocessing_context", "local_rank", "ddp_timeout",
    "torch_empty_cache_steps", "restore_callback_states_from_checkpoint", "paper_defaults",
    "trackio_space_id", "trackio_bucket_id", "trackio_static_space_id",
})


# ------------------------------------------------------------------------------------ atomic files
def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (atomic on POSIX and
    Windows within one file system), so a crash never leaves a truncated file behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, data) -> None:
    """``json.dump`` with the Trainer's layout (indent 4, sorted keys), atomically."""
    write_text_atomic(path, json.dumps(data, indent=4, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------ run settings
def run_settings(*argument_objects) -> dict:
    """The settings that define a run, from the parsed argument dataclasses, as JSON values."""
    values: dict = {}
    for args in argument_objects:
        values.update(args.to_dict() if hasattr(args, "to_dict") else vars(args))
    kept = {key: value for key, value in values.items() if key not in NOT_SETTINGS and not key.startswith("_")}
    return json.loads(json.dumps(kept, sort_keys=True, default=str))  # tuples -> lists, enums -> str


# Settings added after run_settings.json existed, with the value that does what runs recorded before
# them did: a recorded run without the key reads it at that value, so such a run still resumes.
ADDED_SETTINGS = {"mixup_partners": "matching"}


def settings_difference(recorded: dict, current: dict) -> list[str]:
    """``name: old -> new`` for every setting that differs (a missing one reads as <unset>)."""
    unset = "<unset>"
    recorded = {**ADDED_SETTINGS, **recorded}
    return [f"{key}: {recorded.get(key, unset)} -> {current.get(key, unset)}"
            for key in sorted(set(recorded) | set(current)) if recorded.get(key, unset) != current.get(key, unset)]


def _remove_run_outputs(out: Path) -> None:
    """What ``--overwrite_output_dir`` deletes: checkpoints, results and the recorded settings (the
    rest of the folder is overwritten by the new run, other files are left alone)."""
    for old in out.glob("checkpoint-*"):
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    for old in [*out.glob("*_results.json"), out / RUN_SETTINGS_FILE]:
        old.unlink(missing_ok=True)


def prepare_output_dir(training_args, overwrite: bool, settings: dict) -> dict | None:
    """Check ``output_dir`` against this run before anything is loaded; record the run's settings.

    Returns the results of a finished identical run (``all_results.json``), in which case there is
    nothing to do, else None. Raises ValueError, naming the way out, when the folder holds another
    run or files this script did not write. Run on every process; only the main one writes.
    """
    out = Path(training_args.output_dir)
    with training_args.main_process_first(desc="checking output_dir"):
        writes = training_args.should_save
        if overwrite:
            if writes and out.is_dir():
                _remove_run_outputs(out)
        elif out.is_dir() and any(p.name != RUN_SETTINGS_FILE for p in out.iterdir()):
            # (A folder holding nothing but the settings of a run that stopped before training is free.)
            recorded_file = out / RUN_SETTINGS_FILE
            if recorded_file.is_file():
                recorded = json.loads(recorded_file.read_text(encoding="utf-8"))
                differences = settings_difference(recorded, settings)
                if differences:
                    raise ValueError(
                        f"output_dir {out} holds a run with other settings ({'; '.join(differences)}): pass "
                        "--overwrite_output_dir to replace that run, or choose a new --output_dir."
                    )
                if (out / ALL_RESULTS_FILE).is_file():
                    return json.loads((out / ALL_RESULTS_FILE).read_text(encoding="utf-8"))
            elif training_args.resume_from_checkpoint is None:
                raise ValueError(
                    f"output_dir {out} is not empty and has no {RUN_SETTINGS_FILE}, so it was not written by "
                    "this script (or by an older version): pass --overwrite_output_dir to reuse it (its "
                    "checkpoint-* folders and *_results.json files are deleted), or choose a new --output_dir."
                )
        if writes:
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out / RUN_SETTINGS_FILE, json.dumps(settings, indent=2, sort_keys=True) + "\n")
    return None


# ------------------------------------------------------------------------------------- checkpoints
def _checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` cannot be resumed (None if it can). A checkpoint is complete once its
    ``trainer_state.json`` reads: the Trainer writes that file after the weights, optimizer,
    scheduler and RNG states, so a kill during saving leaves it missing or truncated."""
    folder = Path(folder)
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    weights = [n for n in names if n.startswith("pytorch_model_fsdp")
               or (n.startswith(("model", "pytorch_model", "adapter_model"))
                   and n.endswith((".safetensors", ".bin", ".index.json")))]
    if not weights:
        return "no model weights"
    try:
        json.loads((folder / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {TRAINER_STATE_FILE}"
    except (ValueError, UnicodeDecodeError):
        return f"a truncated {TRAINER_STATE_FILE}"
    return None


def is_model_only(folder: str | os.PathLike) -> bool:
    """True for a checkpoint saved with --save_only_model: no optimizer or scheduler state."""
    return not any(p.name.startswith("optimizer") or "-optimizer" in p.name for p in Path(folder).iterdir())


def newest_complete_checkpoint(out: str | os.PathLike) -> str | None:
    """The highest-numbered complete ``checkpoint-N`` in ``out``, warning about each newer one skipped."""
    folders = sorted((p for p in Path(out).glob("checkpoint-*") if p.is_dir() and _checkpoint_step(p) >= 0),
                     key=_checkpoint_step, reverse=True)
    skipped = []
    for folder in folders:
        problem = checkpoint_problem(folder)
        if problem is None:
            if skipped:
                logger.warning("Skipping incomplete checkpoint(s), left by a run killed while saving: %s. Resuming "
                               "from %s.", ", ".join(skipped), folder)
            return str(folder)
        skipped.append(f"{folder.name} ({problem})")
    if skipped:
        logger.warning("No complete checkpoint in %s (skipped %s): training starts from the beginning.",
                       out, ", ".join(skipped))
    return None


def warn_model_only_resume(checkpoint: str) -> None:
    logger.warning(
        "RESUMING FROM A MODEL-ONLY CHECKPOINT %s: it has no optimizer, scheduler or RNG state, so the "
        "optimizer restarts from zero and the learning-rate schedule from its start. The rest of this run "
        "will NOT match an uninterrupted one.", checkpoint)


def model_only_refusal(checkpoint: str) -> ValueError:
    return ValueError(
        f"The newest checkpoint {checkpoint} is model-only (saved with --save_only_model): resuming it would "
        "restart the optimizer and learning-rate schedule, and the run would not match an uninterrupted one. "
        f"Pass --resume_from_checkpoint {checkpoint} to resume it anyway, or --overwrite_output_dir to start afresh."
    )


def remove_checkpoints(out: str | os.PathLike) -> None:
    """Delete the ``checkpoint-*`` folders of a finished run (its final model is in ``out`` itself)."""
    for folder in Path(out).glob("checkpoint-*"):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------- exact loss resume
class ExactLossResume:
    """Trainer mixin that keeps the running training loss across a resume, which the Trainer itself
    starts again at 0.

    The Trainer sums the training loss between logging steps (``_tr_loss``) and over the whole call
    (``_total_loss_scalar``), and resets both when ``train(resume_from_checkpoint=...)`` starts. A
    resumed run then logs a first loss averaged over fewer steps than its window claims, and a
    ``train_loss`` of the resumed part only. This mixin saves the three values in each full
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
            "last_logged_step": self._globalstep_last_logged})


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

    def on_train_end(self, args, state, control, **kwargs):
        t = self.trainer
        t.whole_run_train_loss = t._total_loss_scalar / max(state.global_step, 0.001)
        if state.log_history and "train_loss" in state.log_history[-1]:
            state.log_history[-1]["train_loss"] = t.whole_run_train_loss


# --------------------------------------------------------------------------------- early argument checks
def check_run_arguments(model_args, data_args, training_args) -> None:
    """Refuse, before any data or model is loaded, what would otherwise fail late or train wrongly."""
    from .arguments import parse_layers

    if training_args.do_train and training_args.mixup_enabled and training_args.per_device_train_batch_size < 2:
        raise ValueError(
            f"--per_device_train_batch_size {training_args.per_device_train_batch_size} with --mixup_method "
            f"{training_args.mixup_method}: a batch of one row has no partner, so no batch would be mixed. Use a "
            "batch size of at least 2, or --mixup_method none."
        )
    layers = parse_layers(training_args.mixup_layers)
    if layers and training_args.mixup_method == "manifold":
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(
            model_args.config_name or model_args.model_name_or_path, cache_dir=model_args.cache_dir,
            revision=model_args.model_revision, token=model_args.token, trust_remote_code=model_args.trust_remote_code)
        from .levels import num_encoder_blocks

        try:
            n = num_encoder_blocks(config)
        except ValueError:  # no depth in the config: MixUpTrainer checks the levels on the model itself
            n = None
        bad = [k for k in layers if n is not None and k > n + 1]
        if bad:
            raise ValueError(
                f"--mixup_layers {training_args.mixup_layers}: level(s) {bad} do not exist in "
                f"{model_args.model_name_or_path}, which has {n} encoder layers (levels 0..{n + 1}: 0 = input "
                f"embeddings, 1..{n} = encoder blocks, {n + 1} = the classifier's input)."
            )
        if n is not None:
            training_args.check_partners_padding([k for k in layers if 1 <= k <= n])
