"""The run scripts' program with a stop signal sent to this process at a chosen point (a test helper).

    python tests/signal_at.py WHEN SIGNAL[,SIGNAL2] -- <run_glue_mixup arguments>

WHEN: ``step=N`` (as optimizer step N begins), ``save=N`` (while checkpoint-N is being written, after
its weights, before its trainer_state.json), ``train_eval=E`` (during the evaluation at the end of
epoch E), ``final_eval`` (during the evaluation after training), ``run=K,step=N`` (step N of the K-th
run of a comparison), ``pause=N`` (no signal: rank 0 touches $SIGNAL_AT_MARKER and sleeps 5 s as
step N begins, for a test to signal the launcher); add ``,rank=R`` to send it on that data-parallel rank only. SIGNAL2, if given, is sent at ``save`` of the checkpoint the first signal asks for
(a second signal while stopping). The signal goes through the real handlers, as a scheduler's would."""

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import TrainerCallback  # noqa: E402

from mixup_trainer import cli, run_trainer  # noqa: E402


def main():
    when, signals = sys.argv[1], [getattr(signal, f"SIG{name}") for name in sys.argv[2].split(",")]
    argv = sys.argv[sys.argv.index("--") + 1:]
    spec = dict(part.split("=") if "=" in part else (part, "1") for part in when.split(","))
    state = {"runs": 0, "sent": 0}

    def send():
        if spec.get("rank", os.environ.get("RANK", "0")) == os.environ.get("RANK", "0"):  # rank=R: that rank only
            os.kill(os.getpid(), signals[state["sent"]])
        state["sent"] += 1

    class Sender(TrainerCallback):
        def on_train_begin(self, args, st, control, **kwargs):
            state["runs"] += 1
            state["training"] = True

        def on_train_end(self, args, st, control, **kwargs):
            state["training"] = False

        def on_step_begin(self, args, st, control, **kwargs):
            if "pause" in spec and st.global_step + 1 == int(spec["pause"]) and os.environ.get("RANK", "0") == "0":
                Path(os.environ["SIGNAL_AT_MARKER"]).touch()  # the test signals the launcher now
                time.sleep(5)
            if ("step" in spec and st.global_step + 1 == int(spec["step"]) and state["sent"] == 0
                    and state["runs"] == int(spec.get("run", 1))):
                send()

        def on_prediction_step(self, args, st, control, **kwargs):
            if state["sent"]:
                return
            if "train_eval" in spec and state.get("training") and round(st.epoch) == int(spec["train_eval"]):
                send()
            elif "final_eval" in spec and not state.get("training") and state["runs"]:
                send()

    original_init, original_save_rng = run_trainer.RunScriptTrainer.__init__, run_trainer.RunScriptTrainer._save_rng_state

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(Sender())

    def save_rng(self, output_dir):  # mid-save: the weights are written, trainer_state.json is not
        original_save_rng(self, output_dir)
        step = int(Path(output_dir).name.rsplit("-", 1)[1])
        if ("save" in spec and step == int(spec["save"]) and state["sent"] == 0) or \
                (len(signals) > 1 and state["sent"] == 1):
            send()

    run_trainer.RunScriptTrainer.__init__, run_trainer.RunScriptTrainer._save_rng_state = init, save_rng
    sys.argv = ["run_glue_mixup.py", *argv]
    sys.exit(cli.run(argv=argv))


if __name__ == "__main__":
    main()
