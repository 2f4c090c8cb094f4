"""The command line of ``run_glue_mixup`` and ``run_boolq_mixup``: parse it (flags, a config file,
the paper's defaults), dispatch to one run (``run.main``) or a comparison (``compare.compare``), and
turn a user's mistake into one line.

Where a flag's value comes from, strongest first: the command line; a ``--config`` file (or the
single config file given alone); ``--paper_defaults`` (the task's file in ``paper_configs/``); the
task's metric for ``--metric_for_best_model``; the field defaults of ``script_args.py``. The config
files become the parser's defaults (as TRL's parser does), so a typed flag always wins.

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
A scheduler's stop signal (SIGTERM, SIGUSR1, SIGUSR2) ends training with a checkpoint at the step it
reached, prints "stopped by SIGTERM at step N: .../checkpoint-N saved; rerun the same command to
resume" and exits with 75 (``preemption.py``). Anything else is a bug and keeps its traceback.

Errors found at parse time come before any logging is set up; the argument dump is logged at debug
level only, so a one-line error is not preceded by a hundred lines of arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from transformers import HfArgumentParser

from .output_dir import is_disk_full, output_dir_lock
from .preemption import PREEMPTED_EXIT_STATUS, Preempted, PreemptionCallback
from .script_args import DATACLASS_TYPES, ScriptArgs
from .tasks import get_task, hub_is_offline

logger = logging.getLogger(__name__)

USER_ERRORS = (ValueError, OSError)
TRACEBACK_FLAG = "--traceback"
INTERRUPTED = "interrupted; rerun the same command to resume"


class UsageError(ValueError):
    """A mistake in the command line, found while parsing it: a missing or unknown flag, a bad choice,
    or a value the arguments' checks refuse. The program exits with status 2 for it (1 for a mistake
    found later, in the data or the run)."""


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
                ("training", "training (transformers TrainingArguments; the scripts' defaults in script_args.py)"))}
        self._current_group = self._groups.get(dtype.__name__, self._groups["training"])
        super()._add_dataclass_arguments(dtype)

    def _parse_dataclass_field(self, parser, field):
        """Puts each flag in its --help group; an optional bool (default None: "follow the other flags")
        is a switch like any bool flag (``--keep_checkpoints`` alone means true)."""
        if field.name.startswith("mixup_"):
            group = self._groups["mixup"]
        elif field.name == "keep_checkpoints":
            group = self._groups["RunArguments"]
        else:
            group = self._current_group
        HfArgumentParser._parse_dataclass_field(group, field)
        action = group._group_actions[-1]
        if action.required:  # --help: "(required)", not "(default: None)"
            action.default = argparse.SUPPRESS
            if not (action.help or "").startswith("(required)"):
                action.help = "(required) " + (action.help or "")
        if field.type == (bool | None):
            action.nargs, action.const = "?", True

    def error(self, message):
        raise UsageError(f"{message}{self._did_you_mean(message)} (--help lists the flags)")

    def _did_you_mean(self, message: str) -> str:
        """"; did you mean --mixup_method?" for a misspelt flag (argparse of Python < 3.14 offers nothing)."""
        import difflib

        if not message.startswith("unrecognized arguments:"):
            return ""
        flags = [a for a in self._option_string_actions if a.startswith("--")]
        guesses = [match for word in message.split(":", 1)[1].split() if word.startswith("--")
                   for match in difflib.get_close_matches(word.split("=")[0], flags, n=1)]
        return f"; did you mean {', '.join(dict.fromkeys(guesses))}?" if guesses else ""


def script_parser(default_task: str | None = None):
    """The run scripts' parser: ``--task`` is required unless the script has a default task."""
    task = "[--task TASK]" if default_task else "--task TASK"
    parser = ScriptArgumentParser(
        DATACLASS_TYPES,
        usage=f"%(prog)s {task} --model_name_or_path MODEL --output_dir DIR [--data_dir DIR] [--mixup_method METHOD] "
              "[FLAG ...]\n       %(prog)s config.yaml|config.json   (every flag as a key)",
        description="Fine-tune a sequence classifier with MixUp and report accuracy / MCC, loss and calibration "
                    "(ECE) of the best epoch. An error prints one line; --traceback (or MIXUP_DEBUG=1) shows "
                    "the full traceback.",
    )
    (action,) = [a for a in parser._actions if a.dest == "task"]
    if default_task is None:
        action.required = True
        action.help = "(required) " + action.help
    else:
        action.default = default_task
    return parser


CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


def read_config(path: str) -> dict:
    """Flag values from a JSON or YAML file (keys as the flags, without ``--``; ``task_name`` = ``task``)."""
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        values = json.loads(text)
    else:
        import yaml

        values = yaml.safe_load(text) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file holds flag names and values (a mapping), not a "
                         f"{type(values).__name__}.")
    if "task_name" in values:
        values.setdefault("task", values.pop("task_name"))
    return values


def _set_defaults(parser: ScriptArgumentParser, values: dict, source: str) -> None:
    """Make ``values`` the parser's defaults (a typed flag still wins); a flag given a value this
    way is no longer required on the command line."""
    actions = {action.dest: action for action in parser._actions}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        raise UsageError(f"{source}: unknown key(s) {', '.join(unknown)}")
    for key in values:
        actions[key].required = False
    parser.set_defaults(**values)


def parse_args(argv: list[str] | None = None, default_task: str | None = None) -> ScriptArgs:
    """The run's arguments from the command line, or from a single config file given alone, with the
    defaults described in the module docstring; checked as a whole (``ScriptArgs``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(CONFIG_SUFFIXES):
        argv = ["--config", argv[0]]
    parser = script_parser(default_task)
    config_path = _config_flag(argv)
    configured = read_config(config_path) if config_path is not None else {}
    if config_path is not None:
        _set_defaults(parser, {**configured, "config": config_path}, config_path)
    # The task and --paper_defaults decide further defaults: read them as the final parse will.
    first = parser.parse_args(argv)
    task = get_task(first.task)
    defaults = {"task": task.name, "metric_for_best_model": task.metric}
    if first.paper_defaults:
        paper = read_config(str(task.paper_config))
        if "learning_rate" not in paper:
            logger.warning("The paper gives no learning rate for %s: --learning_rate stays %s", task.name,
                           first.learning_rate)
        defaults.update({k: v for k, v in paper.items() if k not in configured})
    _set_defaults(parser, defaults, "defaults")
    model, data, calibration, run, training = parser.parse_args_into_dataclasses(argv)
    return ScriptArgs(model, data, calibration, run, training, task)


def _config_flag(argv: list[str]) -> str | None:
    """The value of ``--config PATH`` / ``--config=PATH`` (the last one given), read before parsing
    because the file's values become the parser's defaults."""
    path = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    if path is not None and not Path(path).is_file():
        raise UsageError(f"--config {path}: no such file")
    return path


def main(argv: list[str] | None = None, default_task: str | None = None, setup_logging=None) -> dict:
    """Parse ``argv`` once and run the job it names: one fine-tuning run (returns the metrics of
    all_results.json) or, with ``--compare``, the comparison (returns its report).

    ``setup_logging(training_args)`` configures the process's logging for each run (the program
    passes ``run.setup_logging``; a caller in Python keeps its own logging by passing nothing)."""
    try:
        args = parse_args(argv, default_task)
    except UsageError:
        raise
    except (ValueError, OSError) as err:  # the arguments' own checks: a command-line mistake too
        raise UsageError(_one_line(err)) from err
    guard = PreemptionCallback()  # a stop signal outside training raises Preempted (inside: see preemption.py)
    guard.install()
    try:
        if args.run.compare is not None:
            from .compare import compare

            # the comparison's top folder, shared with copies of the command; each run locks its own
            with output_dir_lock(args.training, shared=True):
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
    finally:
        guard.restore()


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


def _tell_the_launcher(line: str) -> None:
    """Under torchrun (or ``accelerate launch`` on several processes) the launcher ends with its own
    report of the failed ranks; written to the error file the launcher names, the one line becomes that
    report's "traceback" of the root cause instead of a link to the elastic docs. The file's format is
    the one torch.distributed.elastic's ``@record`` writes; an existing file (another handler's) is kept."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or os.path.exists(path):
        return
    import time

    with contextlib.suppress(OSError):
        Path(path).write_text(json.dumps({"message": {"message": line, "extraInfo": {
            "py_callstack": line, "timestamp": str(int(time.time()))}}}), encoding="utf-8")


def run(default_task: str | None = None, argv: list[str] | None = None) -> int:
    """The program: :func:`main` with the scripts' logging set up; returns the process exit status
    (0, 1, or 2 for a rejected command line) instead of raising for user errors."""
    def setup_logging(training_args):  # run.py (the trainer, datasets, models) loads after parsing, not before
        from .run import setup_logging as setup

        setup(training_args)

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
    except Preempted as err:  # SIGTERM / SIGUSR1 / SIGUSR2: a scheduler's stop; a requeue keys on the status
        print(f"{prog}: {err}", file=sys.stderr)
        return PREEMPTED_EXIT_STATUS
    except Exception as err:
        if debug or not (isinstance(err, USER_ERRORS) or is_disk_full(err)):
            raise
        if is_disk_full(err) and "no space left on device while writing" not in str(err):
            err = OSError("no space left on device (writing the run's files or a cache): free space or choose "
                          "another --output_dir")
        hint = "" if isinstance(err, UsageError) else f" (rerun with {TRACEBACK_FLAG} for the traceback)"
        line = f"{prog}: error: {_one_line(err)}{hint}"
        print(line, file=sys.stderr)
        _tell_the_launcher(line)
        return 2 if isinstance(err, UsageError) else 1
    return 0


def run_glue_mixup() -> None:
    """Console script ``run_glue_mixup``: any task of the registry; ``--task`` is required."""
    sys.exit(run())


def run_boolq_mixup() -> None:
    """Console script ``run_boolq_mixup``: ``--task boolq`` by default."""
    sys.exit(run(default_task="boolq"))
