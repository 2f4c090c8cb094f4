"""Preemption: a cluster's stop signal ends a run at a step boundary with a complete checkpoint, and
nothing that looks finished.

Schedulers stop jobs with a signal before the kill: SLURM sends SIGTERM at the time limit (or the
signal of ``--signal``, often SIGUSR1, minutes before), Kubernetes and spot reclaims SIGTERM with a
grace period. :class:`PreemptionCallback` catches SIGTERM, SIGUSR1 and SIGUSR2:

* during training, the optimizer step under way finishes; then the step's own logging and evaluation
  happen as they would in an uninterrupted run, a checkpoint is written at that step by the Trainer's
  own ``_save_checkpoint`` (so it holds what every checkpoint holds, and the completeness rule of
  ``checkpoints.py`` applies), and training stops. A signal during an evaluation inside training stops
  after it, with a checkpoint at that step. At the last step of an epoch the epoch's evaluation runs
  first, so a resumed run never misses it. Under data parallelism the ranks agree on the stop at every
  step boundary (one small all-reduce), so a signal that reaches one rank stops them all at one step;
* outside training (loading, the final evaluation, temperature scaling, shifted sets, the report) the
  signal raises :class:`Preempted` at once: the run stops before ``all_results.json``, which is what
  marks a run finished, so a rerun resumes (from the final checkpoint: zero steps) and finishes it;
* a second signal while the first is being handled (e.g. during that checkpoint's save) raises
  :class:`Preempted` at once: a checkpoint cut short has no ``trainer_state.json`` and a rerun skips it.

The run scripts turn :class:`Preempted` into one line naming the checkpoint and the command to resume,
and exit status :data:`PREEMPTED_EXIT_STATUS` (75, ``EX_TEMPFAIL``: "try again later"), which a
requeue script can key on. ``MixUpTrainer`` uses the same callback when ``enable_jit_checkpoint=True``
(transformers' own JIT checkpoint saves before the optimizer step, mid-step, which a resume cannot
continue exactly); ``train()`` then returns early and ``trainer.preempted_by`` names the signal.
"""

from __future__ import annotations

import logging
import signal
import threading

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGUSR2") if hasattr(signal, name))
#: The exit status of a run stopped by a stop signal (sysexits.h EX_TEMPFAIL): rerun the same command.
PREEMPTED_EXIT_STATUS = 75


class Preempted(Exception):
    """A stop signal ended the run before it finished; ``checkpoint`` is where a rerun resumes (None
    when the run stopped before training or holds no complete checkpoint yet)."""

    def __init__(self, signal_name: str, checkpoint: str | None = None, step: int | None = None, when: str = ""):
        self.signal_name, self.checkpoint, self.step = signal_name, checkpoint, step
        where = f" at step {step}: {checkpoint} saved" if checkpoint else f" {when}".rstrip()
        super().__init__(f"stopped by {signal_name}{where}; rerun the same command to resume")


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class PreemptionCallback(TrainerCallback):
    """Turns a stop signal into a checkpoint at the next step boundary and the end of training (see the
    module docstring). ``install()`` / ``restore()`` put the signal handlers in place and back; between
    ``on_train_begin`` and ``on_train_end`` a signal is deferred to a step boundary, outside it raises
    :class:`Preempted` at once."""

    def __init__(self):
        self.received: int | None = None  # the first stop signal, once agreed across ranks
        self.stopped_at: int | None = None  # the step training stopped at
        self._local: int | None = None  # a signal this process received
        self._in_training = False
        self._saved_step: int | None = None
        self._previous: dict = {}
        self._flag_group = False  # no agreement (one process, or before training); see _setup_agreement

    # ------------------------------------------------------------------------------- handlers
    def install(self) -> None:
        if self._previous or threading.current_thread() is not threading.main_thread():
            return  # installed already, or signals cannot be caught here (Python's rule: main thread only)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        if not self._in_training or self._local is not None:
            self._local = self._local or signum
            raise Preempted(signal_name(signum), when="before the run finished" if not self._in_training
                            else "again while stopping (the checkpoint being written is skipped on resume)")
        self._local = signum
        logger.warning("%s received: training stops after this optimizer step, with a checkpoint.", signal_name(signum))

    # ------------------------------------------------------------------------------ callbacks
    def _agreed(self, args) -> int | None:
        """The stop signal if any rank received one (every rank calls this at the same points)."""
        if self.received is None:
            local = self._local or 0
            if self._flag_group is not False:
                import torch
                import torch.distributed as dist

                flag = torch.tensor([local], dtype=torch.int64)  # on the CPU: no GPU synchronisation a step
                dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._flag_group)
                local = int(flag.item())
            self.received = local or None
        return self.received

    def _setup_agreement(self, args) -> None:
        """Under data parallelism, the process group the stop flag is agreed in: a CPU (gloo) group, so
        that the per-step all-reduce of one integer never waits on a GPU stream (None: the default group,
        already gloo). It stays False for one process."""
        import torch.distributed as dist

        if args.world_size > 1 and dist.is_available() and dist.is_initialized() and self._flag_group is False:
            self._flag_group = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None  # None: default

    def _stop(self, state, control, save: bool) -> None:
        control.should_training_stop = True
        if save and self._saved_step != state.global_step:
            control.should_save = True
        self.stopped_at = state.global_step

    def on_train_begin(self, args, state, control, **kwargs):
        # a new train() (e.g. the resume of a stopped one on the same trainer) starts with no stop pending
        self.received = self.stopped_at = self._local = self._saved_step = None
        self._setup_agreement(args)  # every rank calls this: a new process group is collective
        self.install()
        self._in_training = True

    def on_step_end(self, args, state, control, **kwargs):
        if self._agreed(args):
            # at an epoch's last step the epoch's evaluation and save come first (on_epoch_end)
            self._stop(state, control, save=not float(state.epoch).is_integer())

    def on_evaluate(self, args, state, control, **kwargs):
        if self._agreed(args):
            self._stop(state, control, save=True)

    def on_save(self, args, state, control, **kwargs):
        self._saved_step = state.global_step
        if self._agreed(args):  # e.g. received while this checkpoint was written: it is the stop's checkpoint
            self._stop(state, control, save=False)

    def on_epoch_end(self, args, state, control, **kwargs):
        if not self._agreed(args):
            return
        if float(state.epoch).is_integer():  # a whole epoch: its evaluation as scheduled, then a checkpoint
            self._stop(state, control, save=True)
        else:  # stopped mid-epoch: the checkpoint is written; no evaluation or save of a partial epoch
            control.should_evaluate = control.should_log = control.should_save = False
            self._stop(state, control, save=False)

    def on_train_end(self, args, state, control, **kwargs):
        self._in_training = False
        self.restore()
        if self.received:
            logger.warning("Training stopped by %s at step %d, with a complete checkpoint there (checkpoint-%d): "
                           "train(resume_from_checkpoint=True) continues it exactly.", signal_name(self.received),
                           self.stopped_at, self.stopped_at)
