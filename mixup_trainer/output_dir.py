"""The output folder of a run: atomic result files, the settings guard, and its checkpoints.

What the run scripts rely on so that nothing is lost and nothing is silently wrong:

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
  optimizer and the learning-rate schedule, so it is resumed only when the user names it
  (``run_trainer.ExactLossResume`` makes the resumed run's losses exact too).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

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
    remove_checkpoints(out)
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


def checkpoint_to_resume(training_args, overwrite: bool) -> str | None:
    """The checkpoint a training run continues from: the one named by --resume_from_checkpoint, else
    the newest complete full checkpoint in output_dir (after ``prepare_output_dir`` has checked that
    the folder holds this same run). A model-only checkpoint is resumed only when named, loudly."""
    named = training_args.resume_from_checkpoint
    if named is not None:
        problem = checkpoint_problem(named)
        if problem is not None:
            raise FileNotFoundError(f"--resume_from_checkpoint {named} cannot be resumed: {problem}.")
        if is_model_only(named):
            warn_model_only_resume(named)
        return named
    out = training_args.output_dir
    if not training_args.do_train or overwrite or not os.path.isdir(out):
        return None
    last = newest_complete_checkpoint(out)
    if last is not None:
        if is_model_only(last):
            raise model_only_refusal(last)
        logger.warning("Resuming the interrupted run from %s (same settings, see %s/run_settings.json). To start "
                       "afresh, pass --overwrite_output_dir.", last, out)
    return last


def finish_run(trainer, keep_checkpoints: bool, all_metrics: dict) -> None:
    """Delete the checkpoints of a finished training run (unless kept), then write all_results.json,
    last and atomically: its presence is what marks the run in output_dir as finished."""
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return
    if trainer.args.do_train and not keep_checkpoints:
        remove_checkpoints(trainer.args.output_dir)
    write_json_atomic(os.path.join(trainer.args.output_dir, ALL_RESULTS_FILE), all_metrics)
