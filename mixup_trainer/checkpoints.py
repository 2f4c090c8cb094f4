"""The checkpoints of a run: which one is complete (everything resume reads), which one a rerun
resumes, and their removal once the run is finished.

Only complete checkpoints are resumed: the weights, the optimizer, the scheduler, each process's RNG
state and ``loss_state_<rank>.json`` (``run_trainer.ExactLossResume``), the fp16 scaler on a GPU, and
``trainer_state.json``, which the Trainer writes last. A checkpoint missing any of them is skipped
with a warning naming what is missing, since the Trainer would silently go on without it. A
model-only checkpoint would restart the optimizer and the learning-rate schedule, so it is resumed
only when the user names it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

TRAINER_STATE_FILE = "trainer_state.json"


def _checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


#: What resume reads besides the weights, by file name prefix: without one of them the Trainer goes
#: on silently (a fresh optimizer or schedule, other random draws, a loss restarted at 0).
TRAINING_STATE = ("optimizer", "scheduler", "rng_state", "loss_state_", "scaler")


def _training_state_files(world_size: int, scaler: bool) -> list[str]:
    """The training-state files of a full checkpoint written by ``world_size`` processes."""
    ranks = range(world_size)
    rng = ["rng_state.pth"] if world_size == 1 else [f"rng_state_{r}.pth" for r in ranks]
    return ["optimizer", "scheduler.pt", *rng, *(f"loss_state_{r}.json" for r in ranks),
            *(["scaler.pt"] if scaler else [])]


def checkpoint_problem(folder: str | os.PathLike, world_size: int = 1, scaler: bool = False) -> str | None:
    """Why ``folder`` cannot be resumed exactly (None if it can).

    A checkpoint is complete when everything resume reads is there and ``trainer_state.json`` reads:
    the Trainer writes that file after the weights, optimizer, scheduler, scaler and RNG states, so a
    kill during saving leaves it missing or truncated; a file missing beside a good
    ``trainer_state.json`` was removed since (or another process had not written it yet). A model-only
    checkpoint (no training state at all) counts as complete here: see :func:`is_model_only`.
    ``world_size`` processes each write an RNG state and a ``loss_state_<rank>.json``; ``scaler``: the
    run uses an fp16 gradient scaler."""
    folder = Path(folder)
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    weights = [n for n in names if n.startswith("pytorch_model_fsdp")
               or (n.startswith(("model", "pytorch_model", "adapter_model"))
                   and n.endswith((".safetensors", ".bin", ".index.json")))]
    if not weights:
        return "no model weights"
    for state in [TRAINER_STATE_FILE, *(n for n in names if n.startswith("loss_state_") and n.endswith(".json"))]:
        try:
            json.loads((folder / state).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return f"no {state}"
        except (ValueError, UnicodeDecodeError):
            return f"a truncated {state}"
    if is_model_only(folder):
        return None
    missing = [f for f in _training_state_files(world_size, scaler)
               if not (any(n.startswith("optimizer") or "-optimizer" in n for n in names) if f == "optimizer"
                       else f in names)]
    return f"no {', '.join(n if n != 'optimizer' else 'optimizer state' for n in missing)}" if missing else None


def required_state(training_args) -> dict:
    """``checkpoint_problem``'s keywords for this run: its processes, and an fp16 scaler on a GPU.
    DeepSpeed keeps the training state in its own folder, which is not checked here."""
    import torch

    if getattr(training_args, "deepspeed", None):
        return {"world_size": 1, "scaler": False}
    return {"world_size": training_args.world_size,
            "scaler": bool(training_args.fp16) and torch.cuda.is_available()}


def is_model_only(folder: str | os.PathLike) -> bool:
    """True for a checkpoint saved with --save_only_model: no training state at all (no optimizer,
    scheduler, RNG or loss state)."""
    return not any(p.name.startswith(TRAINING_STATE) or "-optimizer" in p.name for p in Path(folder).iterdir())


def _checkpoints(out) -> list[Path]:
    return [p for p in Path(out).glob("checkpoint-*") if p.is_dir() and _checkpoint_step(p) >= 0]


def newest_complete_checkpoint(out: str | os.PathLike, world_size: int = 1, scaler: bool = False) -> str | None:
    """The highest-numbered complete ``checkpoint-N`` in ``out``, warning about each newer one skipped
    and naming what it lacks."""
    folders = sorted(_checkpoints(out), key=_checkpoint_step, reverse=True)
    skipped = []
    for folder in folders:
        problem = checkpoint_problem(folder, world_size, scaler)
        if problem is None:
            if skipped:
                logger.warning("Skipping incomplete checkpoint(s), left by a run killed while saving (or with files "
                               "removed since): %s. Resuming from %s.", ", ".join(skipped), folder)
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
        problem = checkpoint_problem(named, **required_state(training_args))
        if problem is not None:
            raise FileNotFoundError(f"--resume_from_checkpoint {named} cannot be resumed: {problem}.")
        if is_model_only(named):
            warn_model_only_resume(named)
        return named
    out = training_args.output_dir
    if not training_args.do_train or overwrite or not os.path.isdir(out):
        return None
    last = newest_complete_checkpoint(out, **required_state(training_args))
    if last is not None:
        if is_model_only(last):
            raise model_only_refusal(last)
        logger.warning("Resuming the interrupted run from %s (same settings, see %s/run_settings.json). To start "
                       "afresh, pass --overwrite_output_dir.", last, out)
    return last
