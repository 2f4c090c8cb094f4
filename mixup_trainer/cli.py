"""Entry points of the console scripts ``run_glue_mixup`` and ``run_boolq_mixup``.

A mistake on the user's side (a missing or unknown task, a missing file, a bad column, a model or
dataset the Hub cannot serve, or the Hub switched off) ends the run with one line on stderr and a
non-zero exit status, rather than a traceback that hides the message (under ``accelerate launch``,
inside a second traceback). ``--traceback`` or ``MIXUP_DEBUG=1`` re-raises with the full traceback.

Only the error classes that such mistakes raise are caught: ``ValueError`` (the readers' and the
arguments' checks, including ``DataFormatError`` and the parser's ``UsageError``) and ``OSError``
(missing files and folders; transformers' "not a model folder / cannot reach the Hub"; every
``huggingface_hub`` error: ``OfflineModeIsEnabled``, ``HfHubHTTPError``, ``LocalEntryNotFoundError``).
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys

USER_ERRORS = (ValueError, OSError)
TRACEBACK_FLAG = "--traceback"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def run(default_task: str | None = None, argv: list[str] | None = None) -> int:
    """Run one job like ``scripts_common.main``; return the process exit status (0, 1, or 2 for a
    rejected command line) instead of raising for user errors."""
    from .scripts_common import UsageError, main

    argv = sys.argv[1:] if argv is None else list(argv)
    prog = os.path.basename(sys.argv[0]).removesuffix(".py")
    debug = TRACEBACK_FLAG in argv or os.environ.get("MIXUP_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != TRACEBACK_FLAG]
    try:
        main(argv, default_task=default_task)
    except USER_ERRORS as err:
        if debug:
            raise
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
