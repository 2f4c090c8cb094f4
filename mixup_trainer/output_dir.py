"""The output folder of a run: its lock, atomic result files, the settings guard, and the end of a run.

What the run scripts rely on so that nothing is lost and nothing is silently wrong:

* **One run at a time.** A run holds an ``flock`` on ``output_dir/.run.lock`` from start to end (the
  process that writes the folder: rank 0 under torchrun, so the ranks of one run never refuse each
  other); a second run on the folder is refused in one line naming the holder (pid, host, command).
  The kernel releases the lock when its holder dies, so a lock left by a killed run never blocks.
  A comparison holds its top folder's lock shared: copies of the same ``--compare`` command may work
  on one folder together (each run's folder is still locked by the one process training it), while
  a single run there is refused.
* **Atomic results.** JSON and text results are written to a temporary file in the same folder and
  moved into place with ``os.replace``, so a kill leaves either the old file or the new one, never
  half of one; they get the permissions the umask gives any new file. ``all_results.json`` is written
  once everything else is (a folder holding it holds a finished run), and only then are the
  checkpoints deleted: a rerun of a finished run whose deletion was cut short just finishes it.
* **An output folder belongs to one run.** ``run_settings.json`` records the settings that define
  the run (everything that changes the trained model or the reported numbers; not the output
  folder, logging, saving or overwrite flags). A rerun into the folder compares its own settings
  with it: different settings are refused, identical ones resume (or, once the run finished, stop
  without touching the results).
* **Resume is exact or refused** (``checkpoints.py``: only complete checkpoints; ``run_trainer.py``:
  the resumed run's losses are exact too). Training that ended but did not reach
  ``all_results.json`` resumes from its final checkpoint: zero further steps, then the same evaluation.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None

from .checkpoints import _checkpoints, remove_checkpoints
from .data import shift_files_identity

logger = logging.getLogger(__name__)

RUN_SETTINGS_FILE = "run_settings.json"
ALL_RESULTS_FILE = "all_results.json"
LOCK_FILE = ".run.lock"
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
    "torch_empty_cache_steps", "restore_callback_states_from_checkpoint", "paper_defaults", "config",
    "trackio_space_id", "trackio_bucket_id", "trackio_static_space_id",
})


# ------------------------------------------------------------------------------------ atomic files
def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (atomic on POSIX and
    Windows within one file system), so a crash never leaves a truncated file behind."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(path) from err
        raise
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; a result file is as readable as any other
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err):
            raise disk_full_error(path) from err
        raise


def current_umask() -> int:
    """The process's umask (reading it means setting it: it is put straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json_file(path: Path, fix: str):
    """A JSON file this script wrote, or a one-line error naming the file and ``fix`` (a hand-edited
    or truncated file otherwise raises a JSONDecodeError that names no file)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno} column {err.colno}: {err.msg}): {fix}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text: {fix}") from None


# ------------------------------------------------------------------------------------- a full disk
class DiskFullError(OSError):
    """No space left while writing a run's files, with the path and the way out in one line."""

    def __str__(self):
        return self.strerror  # without OSError's "[Errno 28] " prefix


def disk_full_error(path) -> DiskFullError:
    return DiskFullError(errno.ENOSPC, f"no space left on device while writing {path}: free space or choose "
                                       "another --output_dir")


def is_disk_full(err: BaseException, path=None) -> bool:
    """True when ``err`` (or what caused it) is a write that failed for lack of space.

    ``OSError`` says so by its errno; safetensors' ``SafetensorError`` and numpy only in their text;
    ``torch.save`` raises a ``RuntimeError`` from ``inline_container.cc`` ("file write failed",
    "unexpected pos") that never says why, so that one counts when ``path``'s file system is (nearly)
    full."""
    while err is not None:
        if isinstance(err, DiskFullError):
            return True
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(err)
        if "No space left on device" in text or "StorageFull" in text or "os error 28" in text:
            return True
        if "inline_container.cc" in text and ("write" in text or "unexpected pos" in text) and path is not None:
            try:
                return shutil.disk_usage(path).free < 1 << 20
            except OSError:
                return False
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def translating_disk_full(path):
    """Turn a failed write for lack of space under ``path`` into :class:`DiskFullError`."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        if is_disk_full(err, Path(path) if Path(path).exists() else Path(path).parent):
            raise disk_full_error(path) from err
        raise


# ------------------------------------------------------------------------------------ the run lock
def _holder(fd: int) -> str:
    """Who holds the lock, from what it wrote into the lock file."""
    try:
        info = json.loads(os.pread(fd, 65536, 0).decode("utf-8"))
        return (f"pid {info['pid']} on host {info['host']}, started {info['started']}, command: "
                f"{info['command']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that is just starting"


class OutputDirBusy(ValueError):
    """The output folder is locked by another process (``folder``, ``holder``: who, from the lock file)."""

    def __init__(self, folder: Path, holder: str):
        super().__init__(f"output_dir {folder} is in use by another run ({holder}): wait for it to end "
                         "(or stop it), or choose another --output_dir.")
        self.folder, self.holder = Path(folder), holder


def _acquire(path: Path, shared: bool = False) -> int | None:
    """An fd holding an flock on ``path``, exclusive or shared (None where the file system has no locks)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputDirBusy(path.parent, holder) from None
        except OSError as err:  # e.g. ENOLCK on a network file system without locks
            os.close(fd)
            logger.warning("Cannot lock %s (%s): another run on the same output_dir would not be refused.", path, err)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file between our open and flock: lock the new one
    command = " ".join([Path(sys.argv[0]).name, *map(shlex.quote, sys.argv[1:])]) if sys.argv else "python"
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(command.split())[:500]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
    return fd


@contextlib.contextmanager
def output_dir_lock(training_args, shared: bool = False):
    """Hold ``output_dir/.run.lock`` for the whole block (see the module docstring); ``shared``: beside
    other shared holders (copies of one comparison), never beside an exclusive one (a run).

    Only the process that writes the folder (``should_save``: rank 0) locks it; the other ranks of
    the run follow it through ``prepare_output_dir``. The last holder removes the lock file on the way
    out (while still holding it exclusively; a process that opened it meanwhile sees another inode and
    locks afresh), and so is an output folder that the lock alone created."""
    if fcntl is None or not training_args.should_save:
        yield
        return
    out = Path(training_args.output_dir)
    created = not out.exists()
    make_output_dir(out)
    path = out / LOCK_FILE
    fd = _acquire(path, shared)
    try:
        yield
    finally:
        if fd is not None:
            try:  # a shared holder removes the file only if it is the last one, and only its own file
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    path.unlink()
            except OSError:
                pass  # another comparison still holds it (or the file is gone already)
            os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty


def make_output_dir(out: Path) -> None:
    """Create the output folder, or say in one line why it cannot be and what to do."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output_dir {out} is a file, not a folder: choose another --output_dir.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(out) from err
        raise ValueError(f"--output_dir {out}: cannot create the folder ({err.strerror or err}): choose a folder you "
                         "can write to, e.g. one under your home directory.") from None


def holds_output_dir_lock(main):
    """Decorator of ``run.main(args, ...)``: the run holds its output folder's lock throughout."""
    @functools.wraps(main)
    def locked(args, *rest, **kwargs):
        with output_dir_lock(args.training):
            return main(args, *rest, **kwargs)
    return locked


def write_json_atomic(path: str | os.PathLike, data) -> None:
    """``json.dump`` with the Trainer's layout (indent 4, sorted keys), atomically."""
    write_text_atomic(path, json.dumps(data, indent=4, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------ run settings
def run_settings(args) -> dict:
    """The settings that define a run, from its parsed arguments (``script_args.ScriptArgs``), as JSON
    values; the training sample's seed as the run uses it."""
    values: dict = {}
    for part in (args.model, args.data, args.calibration, args.run, args.training):
        values.update(part.to_dict() if hasattr(part, "to_dict") else vars(part))
    values["train_sample_seed"] = args.train_sample_seed
    values["mixup_alpha"] = args.training.alpha  # as used: unset means the objective's default
    values["shift_eval_files"] = shift_files_identity(args.data.shift_eval_files)
    if not args.training.load_best_model_at_end:  # no epoch is selected: the selection metric changes nothing
        values.update(metric_for_best_model=None, greater_is_better=None)
    kept = {key: value for key, value in values.items() if key not in NOT_SETTINGS and not key.startswith("_")}
    return json.loads(json.dumps(kept, sort_keys=True, default=str))  # tuples -> lists, enums -> str


# Settings added after run_settings.json existed, with the value that does what runs recorded before
# them did: a recorded run without the key reads it at that value, so such a run still resumes.
ADDED_SETTINGS = {"mixup_partners": "matching", "mixup_objective": "mix", "mixup_reg_weight": 1.0,
                  "mixup_similarity_kernel": False, "mixup_kernel_tau_max": 1.0, "mixup_kernel_tau_std": 0.5}


def settings_difference(recorded: dict, current: dict) -> list[str]:
    """``name: old -> new`` for every setting that differs (a missing one reads as <unset>)."""
    unset = "<unset>"
    recorded = {**ADDED_SETTINGS, **recorded}
    if isinstance(recorded.get("shift_eval_files"), str):  # recorded as typed before the files' identity was
        try:
            recorded["shift_eval_files"] = shift_files_identity(recorded["shift_eval_files"])
        except (OSError, ValueError):
            pass  # a file that is gone differs from any current one
    return [f"{key}: {recorded.get(key, unset)} -> {current.get(key, unset)}"
            for key in sorted(set(recorded) | set(current)) if recorded.get(key, unset) != current.get(key, unset)]


#: What a run writes into its folder besides checkpoints (the model or adapter, its tokenizer and card,
#: results, predictions, calibration files and plots): what ``--overwrite_output_dir`` removes, so that
#: no file of the replaced run is left for a loader (or a reader) to pick up beside the new run's.
RUN_OUTPUT_PATTERNS = (
    "*_results.json", RUN_SETTINGS_FILE, "README.md", "config.json", "generation_config.json",
    "model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json", "pytorch_model*.bin",
    "adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "training_args.bin",
    "trainer_state.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "*_predictions.jsonl",
    "eval_calibration.json", "eval_temperature_scaling.json", "*.png", "comparison.md", "comparison.json",
)


def _remove_run_outputs(out: Path) -> None:
    """What ``--overwrite_output_dir`` deletes: the replaced run's checkpoints and every file of
    :data:`RUN_OUTPUT_PATTERNS`, named in one warning (other files are left alone)."""
    remove_checkpoints(out)
    removed = sorted({p for pattern in RUN_OUTPUT_PATTERNS for p in out.glob(pattern) if p.is_file()})
    for old in removed:
        old.unlink(missing_ok=True)
    if removed:
        logger.warning("--overwrite_output_dir: removed the replaced run's files from %s: %s", out,
                       ", ".join(p.name for p in removed))


def check_output_dir(training_args, overwrite: bool, settings: dict, keep_checkpoints: bool = True) -> dict | None:
    """Check ``output_dir`` against this run before anything is loaded, changing nothing in it but
    the checkpoints a finished run's kill left behind.

    Returns the results of a finished identical run (``all_results.json``), in which case there is
    nothing to do but delete the checkpoints a kill left while the finished run deleted them (unless
    ``keep_checkpoints``), else None. Raises ValueError, naming the way out, when the folder holds
    another run or files this script did not write. Run on every process.
    """
    out = Path(training_args.output_dir)
    if overwrite or not out.is_dir() or not any(p.name not in (RUN_SETTINGS_FILE, LOCK_FILE) for p in out.iterdir()):
        return None  # (a folder holding nothing but the settings of a run that stopped before training is free)
    recorded_file = out / RUN_SETTINGS_FILE
    if not recorded_file.is_file():
        if training_args.resume_from_checkpoint is None:
            raise ValueError(
                f"output_dir {out} is not empty and has no {RUN_SETTINGS_FILE}, so it was not written by "
                "this script (or by an older version): pass --overwrite_output_dir to reuse it (the files a run "
                "writes there are deleted), or choose a new --output_dir."
            )
        return None
    recorded = read_json_file(recorded_file, "restore it as the run wrote it, or pass --overwrite_output_dir "
                              "to start the run afresh (or choose a new --output_dir)")
    if not isinstance(recorded, dict):
        raise ValueError(f"{recorded_file} holds a JSON {type(recorded).__name__}, not the run's settings: "
                         "pass --overwrite_output_dir to start the run afresh, or choose a new --output_dir.")
    differences = settings_difference(recorded, settings)
    if differences:
        raise ValueError(
            f"output_dir {out} holds a run with other settings ({'; '.join(differences)}): pass "
            "--overwrite_output_dir to replace that run, or choose a new --output_dir."
        )
    if not (out / ALL_RESULTS_FILE).is_file():
        return None
    finished = read_json_file(out / ALL_RESULTS_FILE, "delete it to redo the end of the run (from its "
                              "last checkpoint), or pass --overwrite_output_dir to run it afresh")
    with training_args.main_process_first(desc="checking output_dir"):
        if training_args.should_save and training_args.do_train and not keep_checkpoints and _checkpoints(out):
            logger.warning("Deleting the checkpoints the finished run in %s left behind.", out)
            remove_checkpoints(out)
    return finished


def start_run_folder(training_args, overwrite: bool, settings: dict) -> None:
    """Make ``output_dir`` this run's, once everything that could refuse the run has passed: with
    ``--overwrite_output_dir`` remove the replaced run's files, then record this run's settings.
    Run on every process; only the main one writes."""
    out = Path(training_args.output_dir)
    with training_args.main_process_first(desc="preparing output_dir"):
        if training_args.should_save:
            if overwrite and out.is_dir():
                _remove_run_outputs(out)
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out / RUN_SETTINGS_FILE, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def prepare_output_dir(training_args, overwrite: bool, settings: dict, keep_checkpoints: bool = True) -> dict | None:
    """:func:`check_output_dir`, then (unless the run is finished) :func:`start_run_folder`."""
    finished = check_output_dir(training_args, overwrite, settings, keep_checkpoints)
    if finished is None:
        start_run_folder(training_args, overwrite, settings)
    return finished


def finish_run(trainer, keep_checkpoints: bool, all_metrics: dict) -> None:
    """Write all_results.json (atomically: its presence is what marks the run in output_dir as
    finished), then delete the checkpoints of the training run unless kept.

    In that order the run is safe at every moment: killed before all_results.json, a rerun resumes
    from the final checkpoint (zero further steps) and evaluates again; killed while deleting, a
    rerun finds the run finished and deletes what is left (``prepare_output_dir``)."""
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return
    write_json_atomic(os.path.join(trainer.args.output_dir, ALL_RESULTS_FILE), all_metrics)
    if trainer.args.do_train and not keep_checkpoints:
        remove_checkpoints(trainer.args.output_dir)
