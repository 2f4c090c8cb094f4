"""The command line of ``run_glue_mixup`` and ``run_boolq_mixup``: parse it once (flags, JSON
config, the scripts' defaults), dispatch to one run (``run.main``) or a comparison
(``compare.compare``), and turn a user's mistake into one line.

Defaults the scripts add on top of the user's flags (an explicit flag always wins):

* ``--paper_defaults``: the paper's Table 6 values for the task;
* :func:`run_defaults`: without ``--do_train/--do_eval/--do_predict`` a run trains and evaluates;
  training with an evaluation set evaluates every epoch and ends on the best epoch by the task's
  metric (``load_best_model_at_end``), keeping one full checkpoint besides the best one.

A mistake on the user's side (a missing or unknown task, a missing file, a bad column, a model or
dataset the Hub cannot serve, or the Hub switched off) ends the run with one line on stderr and a
non-zero exit status, rather than a traceback that hides the message (under ``accelerate launch``,
inside a second traceback). ``--traceback`` or ``MIXUP_DEBUG=1`` re-raises with the full traceback.
Only the error classes that such mistakes raise are caught: ``ValueError`` (the readers' and the
arguments' checks, including ``DataFormatError`` and the parser's ``UsageError``) and ``OSError``
(missing files and folders; transformers' "not a model folder / cannot reach the Hub"; every
``huggingface_hub`` error), plus two things that are not bugs: a full disk, whatever raised it
(safetensors and ``torch.save`` do not raise ``OSError``), and Ctrl-C, which prints "interrupted;
rerun the same command to resume" and exits with 130 (a rerun resumes from the last checkpoint).
Anything else is a bug and keeps its traceback.

Errors found at parse time come before any logging is set up; the argument dump is logged at debug
level only, so a one-line error is not preceded by a hundred lines of arguments.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from transformers import HfArgumentParser

from .output_dir import is_disk_full, output_dir_lock
from .script_args import DATACLASS_TYPES, ScriptArgs, build_args
from .tasks import Task, get_task, hub_is_offline

logger = logging.getLogger(__name__)

USER_ERRORS = (ValueError, OSError)
TRACEBACK_FLAG = "--traceback"
INTERRUPTED = "interrupted; rerun the same command to resume"


class UsageError(ValueError):
    """A command line the parser rejects (missing ``--task``, unknown flag, bad choice)."""


class ScriptArgumentParser(HfArgumentParser):
    """HfArgumentParser whose ``--help`` lists the MixUp flags first, then the data and model flags,
    then the long TrainingArguments list; a rejected command line raises UsageError (one line)
    instead of printing the whole usage block and exiting."""

    def _add_dataclass_arguments(self, dtype):
        if not hasattr(self, "_groups"):  # created once, in the order --help shows them
            self._groups = {name: self.add_argument_group(title) for name, title in (
                ("mixup", "MixUp (MixUpTrainingArguments)"),
                ("DataTrainingArguments", "data"),
                ("CalibrationArguments", "calibration"),
                ("RunArguments", "output folder and comparison"),
                ("ModelArguments", "model (as in run_glue.py)"),
                ("training", "training (transformers TrainingArguments)"))}
        self._current_group = self._groups.get(dtype.__name__, self._groups["training"])
        super()._add_dataclass_arguments(dtype)

    def _parse_dataclass_field(self, parser, field):
        group = self._groups["mixup"] if field.name.startswith("mixup_") else self._current_group
        HfArgumentParser._parse_dataclass_field(group, field)

    def error(self, message):
        raise UsageError(f"{message} (--help lists the flags)")


def script_parser(default_task: str | None = None):
    """The run scripts' parser: ``--task`` is required unless the script has a default task."""
    task = "[--task TASK]" if default_task else "--task TASK"
    parser = ScriptArgumentParser(
        DATACLASS_TYPES,
        usage=f"%(prog)s {task} --model_name_or_path MODEL [--data_dir DIR] [--mixup_method METHOD] [FLAG ...]\n"
              "       %(prog)s config.json   (every flag as a JSON key)",
        description="Fine-tune a sequence classifier with MixUp and report accuracy / MCC, loss and calibration "
                    "(ECE) of the best epoch. An error prints one line; --traceback (or MIXUP_DEBUG=1) shows "
                    "the full traceback.",
    )
    if default_task is None:
        (action,) = [a for a in parser._actions if a.dest == "task"]
        action.required = True
        action.help = "(required) " + action.help
    return parser


def _field_defaults(types) -> dict:
    values = {}
    for dtype in types:
        for f in dataclasses.fields(dtype):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                values[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()
    return values


def explicit_keys(argv: list[str]) -> set[str]:
    """Names of the arguments given on the command line (abbreviations and aliases included).

    Parses ``argv`` with every default replaced by a sentinel: whatever is not the sentinel
    afterwards was typed by the user. Comparing values with the defaults would miss a flag given
    with its default value (``--learning_rate 5e-5`` must still beat ``--paper_defaults``).
    """
    unset = object()
    parser = HfArgumentParser(DATACLASS_TYPES)
    parser.set_defaults(**{action.dest: unset for action in parser._actions if action.dest != "help"})
    return {key for key, value in vars(parser.parse_args(argv)).items() if value is not unset}


def _strategy(values: dict, key: str) -> str:
    value = values.get(key)
    return str(getattr(value, "value", value))


def run_defaults(task: Task, values: dict, explicit: set[str]) -> dict:
    """The scripts' defaults (see the module docstring) for the arguments the user did not give.

    Checkpoints are full (optimizer, scheduler and RNG state), so that a rerun after a crash resumes
    exactly; the finished run deletes them unless the user asked for checkpoints to be kept.
    """
    out = {}
    if not any(values.get(k) for k in ("do_train", "do_eval", "do_predict")):
        out.update(do_train=True, do_eval=True)
    if "keep_checkpoints" not in explicit and explicit & {"save_total_limit", "save_only_model"}:
        out["keep_checkpoints"] = True
    if not (out.get("do_train", values.get("do_train")) and out.get("do_eval", values.get("do_eval"))):
        return out
    # Evaluate as often as the user asked to evaluate, else as often as they asked to save, else per epoch.
    if "eval_strategy" in explicit:
        strategy = _strategy(values, "eval_strategy")
    elif "save_strategy" in explicit and _strategy(values, "save_strategy") in ("steps", "epoch"):
        strategy = _strategy(values, "save_strategy")
    else:
        strategy = "epoch"
    candidates = {"eval_strategy": strategy}
    saves = not ("save_strategy" in explicit and _strategy(values, "save_strategy") == "no")
    if strategy != "no" and saves:
        candidates.update(
            save_strategy=strategy,
            load_best_model_at_end=True,
            metric_for_best_model=task.metric,
            greater_is_better=True,
            save_total_limit=1,
        )
    if strategy == "epoch":
        candidates["logging_strategy"] = "epoch"
    if strategy == "steps" and "eval_steps" in explicit:
        candidates["save_steps"] = values["eval_steps"]
    elif strategy == "steps" and "save_steps" in explicit:
        candidates["eval_steps"] = values["save_steps"]
    out.update({k: v for k, v in candidates.items() if k not in explicit})
    return out


def _multi_process_without_accelerator() -> bool:
    """True under torchrun / accelerate launch with several processes on a machine with no GPU.

    There TrainingArguments needs ``use_cpu=True`` to set up gloo data parallelism; without it each
    process trains alone, believes it is rank 0 and writes the same files.
    """
    import torch

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.accelerator.is_available()


def fsdp_values(values: dict, explicit: set[str]) -> dict:
    """FSDP (``--fsdp`` or ``accelerate launch --use_fsdp``) needs GPUs here: accelerate applies its FSDP
    plugin only to GPU-type processes and on CPU silently trains with DDP, so the request is refused
    rather than ignored. On GPUs the checkpoints keep their optimizer state, because the Trainer cannot
    reload the best model from model-only checkpoints under FSDP."""
    if not (values.get("fsdp") or os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true"):
        return {}
    import torch

    if not torch.accelerator.is_available():
        raise ValueError("FSDP needs GPUs: on CPU accelerate ignores its FSDP plugin and would train with plain "
                         "DDP. Drop --fsdp / --use_fsdp (torchrun or accelerate launch --multi_gpu give CPU data "
                         "parallelism), or run on GPUs as the README's FSDP section shows.")
    return {} if "save_only_model" in explicit else {"save_only_model": False}


def parse_args(argv: list[str] | None = None, default_task: str | None = None) -> ScriptArgs:
    """The run's arguments, from argv or a single JSON config file, with the scripts' defaults added
    and every check of :func:`check_arguments` passed."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = script_parser(default_task)
    if len(argv) == 1 and argv[0].endswith(".json"):
        given = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        if "task_name" in given:
            given.setdefault("task", given.pop("task_name"))
        explicit = set(given)
        values = {**_field_defaults(DATACLASS_TYPES), **given}
    else:
        values = vars(parser.parse_args(argv))
        explicit = explicit_keys(argv)
    if default_task and "task" not in explicit:
        values["task"] = default_task
    task = get_task(values.get("task"))
    values["task"] = task.name
    if values.get("paper_defaults"):
        values.update({k: v for k, v in task.paper_defaults().items() if k not in explicit})
        if task.learning_rate is None and "learning_rate" not in explicit:
            logger.warning("The paper gives no learning rate for %s: keeping --learning_rate %s",
                           task.name, values.get("learning_rate"))
    values.update(run_defaults(task, values, explicit))
    values.update(fsdp_values(values, explicit))
    if "use_cpu" not in explicit and _multi_process_without_accelerator():
        values["use_cpu"] = True
    return build_args(values, frozenset(explicit), task)


def main(argv: list[str] | None = None, default_task: str | None = None, setup_logging=None) -> dict:
    """Parse ``argv`` once and run the job it names: one fine-tuning run (returns the metrics of
    all_results.json) or, with ``--compare``, the comparison (returns its report).

    ``setup_logging(training_args)`` configures the process's logging for each run (the program
    passes ``run.setup_logging``; a caller in Python keeps its own logging by passing nothing)."""
    args = parse_args(argv, default_task)
    try:
        if args.run.compare is not None:
            from .compare import compare

            with output_dir_lock(args.training):  # the comparison's top folder; each run locks its own
                return compare(args, setup_logging=setup_logging)
        from .run import main as run_main

        if setup_logging is not None:
            setup_logging(args.training)
        return run_main(args)
    except OSError as err:
        clearer = _hub_off_model_error(err, args)
        if clearer is None:
            raise
        raise clearer from err


def _hub_off_model_error(err: OSError, args: ScriptArgs) -> OSError | None:
    """With Hub access off, transformers says "We couldn't connect to 'https://huggingface.co' ... Check
    your internet connection" for a model that is neither a local folder nor cached: say what is wrong."""
    if "couldn't connect to" not in str(err) or not hub_is_offline():
        return None
    m = args.model
    names = [(flag, name) for flag, name in (("model_name_or_path", m.model_name_or_path), ("config_name", m.config_name),
                                             ("tokenizer_name", m.tokenizer_name)) if name and not os.path.isdir(name)]
    if not names:
        return None
    flag, name = names[0]
    return OSError(f"--{flag} {name}: Hub access is off (HF_HUB_OFFLINE=1) and {name} is not in the local cache: pass "
                   "a local model folder, or allow Hub access to download it once.")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def run(default_task: str | None = None, argv: list[str] | None = None) -> int:
    """The program: :func:`main` with the scripts' logging set up; returns the process exit status
    (0, 1, or 2 for a rejected command line) instead of raising for user errors."""
    from .run import setup_logging

    argv = sys.argv[1:] if argv is None else list(argv)
    prog = os.path.basename(sys.argv[0]).removesuffix(".py")
    debug = TRACEBACK_FLAG in argv or os.environ.get("MIXUP_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != TRACEBACK_FLAG]
    try:
        main(argv, default_task=default_task, setup_logging=setup_logging)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: {INTERRUPTED}", file=sys.stderr)
        return 130  # the shell's status for a process ended by SIGINT
    except Exception as err:
        if debug or not (isinstance(err, USER_ERRORS) or is_disk_full(err)):
            raise
        if is_disk_full(err) and "no space left on device while writing" not in str(err):
            err = OSError("no space left on device (writing the run's files or a cache): free space or choose "
                          "another --output_dir")
        hint = "" if isinstance(err, UsageError) else f" (rerun with {TRACEBACK_FLAG} for the traceback)"
        print(f"{prog}: error: {_one_line(err)}{hint}", file=sys.stderr)
        return 2 if isinstance(err, UsageError) else 1
    return 0


def run_glue_mixup() -> None:
    """Console script ``run_glue_mixup``: any task of the registry; ``--task`` is required."""
    sys.exit(run())


def run_boolq_mixup() -> None:
    """Console script ``run_boolq_mixup``: ``--task boolq`` by default."""
    sys.exit(run(default_task="boolq"))
