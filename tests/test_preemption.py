"""A scheduler's stop signal (SIGTERM, SIGUSR1, SIGUSR2; mixup_trainer/preemption.py): the run stops at
a step boundary with a complete checkpoint, is never taken as finished, and the same command rerun
ends bit-equal to an uninterrupted run. The signals are sent by tests/signal_at.py from inside the run
at exact points (a step, a checkpoint save, an evaluation), through the real handlers."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from test_run_scripts import ENV, REPO
from test_safety import _complete, assert_bit_equal

STATUS = 75  # preemption.PREEMPTED_EXIT_STATUS


def args(tiny, data, out) -> list[str]:
    """24 optimizer steps (96 examples, batch 8, 2 epochs of 12) of Manifold MixUp with dropout; a
    checkpoint and an evaluation at each epoch's end only, a log line every step."""
    return ["--task", "sst2", "--data_dir", str(data), "--model_name_or_path", tiny, "--mixup_method", "manifold",
            "--mixup_alpha", "0.4", "--hidden_dropout_prob", "0.1", "--max_train_samples", "96",
            "--max_eval_samples", "32", "--per_device_train_batch_size", "8", "--num_train_epochs", "2",
            "--learning_rate", "1e-3", "--max_seq_length", "48", "--logging_strategy", "steps", "--logging_steps", "1",
            "--seed", "42", "--disable_tqdm", "true", "--log_level", "warning", "--report_to", "none",
            "--output_dir", str(out)]


def run(command, launcher=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**ENV, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*(launcher or [sys.executable]), *command], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def signalled(when, signals, argv, launcher=None):
    return run(["tests/signal_at.py", when, signals, "--", *argv], launcher)


def trained_steps(stdout: str) -> int:
    """Optimizer steps a process logged (one loss line a step): the steps it computed."""
    return len(re.findall(r"\{'loss': ", stdout))


@pytest.fixture(scope="module")
def uninterrupted_run(tiny_bert, sst2_sample_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted_run") / "run"
    proc = run(["run_glue_mixup.py", *args(tiny_bert, sst2_sample_dir, out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert trained_steps(proc.stdout) == 24
    return out


def assert_stopped(proc, out, step: int | None, signal_name: str):
    """Status 75, one last line naming the checkpoint and the rerun, a complete checkpoint there, and
    nothing a rerun would take as finished."""
    assert proc.returncode == STATUS, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    if step is not None:
        assert last == (f"run_glue_mixup: stopped by {signal_name} at step {step}: {out / f'checkpoint-{step}'} "
                        "saved; rerun the same command to resume")
        assert _complete(out / f"checkpoint-{step}") and (out / f"checkpoint-{step}" / "loss_state_0.json").is_file()
    assert "rerun the same command to resume" in last
    # stopped in training: no final model, results or card; after it (step None): not finished
    for finished in ("all_results.json", "README.md", *(("model.safetensors", "eval_results.json") if step else ())):
        assert not (out / finished).exists(), finished


def rerun_bit_equal(uninterrupted_run, argv, out, trains: int):
    proc = run(["run_glue_mixup.py", *argv])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert trained_steps(proc.stdout) == trains  # 0 optimizer steps computed twice
    assert_bit_equal(uninterrupted_run, out)
    return proc


#: Where the signal arrives: (signal_at.py's WHEN, the signal, the step of the checkpoint the run stops
#: with (None: after training, where the final checkpoint is already there), steps the rerun trains).
STAGES = {
    "mid-epoch-SIGTERM": ("step=5", "SIGTERM", 5, 19),  # between the epoch checkpoints: none exists yet
    "mid-epoch-SIGUSR1": ("step=5", "SIGUSR1", 5, 19),
    "during-a-checkpoint-save": ("save=12", "SIGUSR2", 12, 12),
    "during-an-epoch-evaluation": ("train_eval=1", "SIGTERM", 12, 12),
    "during-the-final-evaluation": ("final_eval", "SIGTERM", None, 0),
}


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_signal_stops_at_a_step_boundary_and_the_rerun_is_bit_equal(uninterrupted_run, tiny_bert, sst2_sample_dir,
                                                                        tmp_path, stage):
    when, signal_name, step, trains = STAGES[stage]
    out = tmp_path / "run"
    argv = args(tiny_bert, sst2_sample_dir, out)
    proc = signalled(when, signal_name[3:], argv)
    assert_stopped(proc, out, step, signal_name)
    if stage.startswith("mid-epoch"):
        assert trained_steps(proc.stdout) == 5 and [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-5"]
        assert "eval_loss" not in proc.stdout  # no evaluation of a partial epoch
    if stage == "during-an-epoch-evaluation":
        history = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())["log_history"]
        assert history[-1]["epoch"] == 1.0 and "eval_loss" in history[-1]  # the evaluation it interrupted, whole
    if step is None:
        assert proc.stderr.strip().splitlines()[-1] == ("run_glue_mixup: stopped by SIGTERM before the run finished; "
                                                        "rerun the same command to resume")
        assert _complete(out / "checkpoint-24")  # the final checkpoint: the rerun trains nothing
    rerun_bit_equal(uninterrupted_run, argv, out, trains=trains)


@pytest.mark.slow
def test_a_second_signal_during_the_save_leaves_a_folder_that_resumes(uninterrupted_run, tiny_bert, sst2_sample_dir,
                                                                      tmp_path):
    """The first signal at step 17 asks for checkpoint-17; a second one while it is written stops at once:
    checkpoint-17 has no trainer_state.json, so the rerun skips it and resumes from checkpoint-12."""
    out = tmp_path / "run"
    argv = args(tiny_bert, sst2_sample_dir, out)
    proc = signalled("step=17", "TERM,TERM", argv)
    assert_stopped(proc, out, None, "SIGTERM")
    assert "again while stopping" in proc.stderr.strip().splitlines()[-1]
    assert _complete(out / "checkpoint-12") and (out / "checkpoint-17").is_dir() and not _complete(out / "checkpoint-17")
    rerun = rerun_bit_equal(uninterrupted_run, argv, out, trains=12)
    assert "checkpoint-17 (no trainer_state.json)" in rerun.stdout + rerun.stderr


@pytest.mark.slow
def test_enable_jit_checkpoint_run_stops_at_the_step_and_is_not_finished(uninterrupted_run, tiny_bert, sst2_sample_dir,
                                                                         tmp_path):
    """The reported case: --enable_jit_checkpoint and SIGTERM at step 12. transformers' own JIT checkpoint
    let the script evaluate and write all_results.json of a run trained 12 of 24 steps; here the run
    stops with checkpoint-12, status 75, and the rerun finishes it bit-equal."""
    from transformers import TrainingArguments

    if not hasattr(TrainingArguments, "enable_jit_checkpoint"):
        pytest.skip("this transformers has no enable_jit_checkpoint (added after 5.18)")
    out = tmp_path / "run"
    argv = [*args(tiny_bert, sst2_sample_dir, out), "--enable_jit_checkpoint", "true"]
    assert_stopped(signalled("step=12", "TERM", argv), out, 12, "SIGTERM")
    rerun_bit_equal(uninterrupted_run, argv, out, trains=12)


@pytest.mark.slow
def test_a_signal_in_a_comparisons_second_run_stops_the_comparison_and_the_rerun_finishes_it(tiny_bert,
                                                                                            sst2_sample_dir, tmp_path):
    def compare(out):
        flags = args(tiny_bert, sst2_sample_dir, out)[:-2]
        del flags[flags.index("--mixup_method"):flags.index("--mixup_method") + 2]
        return ["run_glue_mixup.py", *flags, "--compare", "manifold",
                "--compare_seeds", "1", "--output_dir", str(out)]

    full, stopped = tmp_path / "full", tmp_path / "stopped"
    assert run(compare(full)).returncode == 0
    proc = signalled("run=2,step=5", "TERM", compare(stopped)[1:])
    assert proc.returncode == STATUS and "stopped by SIGTERM at step 5" in proc.stderr.strip().splitlines()[-1]
    assert (stopped / "none-seed1" / "all_results.json").is_file() and not (stopped / "comparison.md").exists()
    assert _complete(stopped / "manifold-seed1" / "checkpoint-5")
    assert not (stopped / "manifold-seed1" / "all_results.json").exists()
    rerun = run(compare(stopped))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "1 of 2 runs already finished" in rerun.stdout
    for name in ("none-seed1", "manifold-seed1"):
        assert_bit_equal(full / name, stopped / name)
    summaries = [json.loads((out / "comparison.json").read_text())["summary"] for out in (full, stopped)]
    assert summaries[0] == summaries[1]


@pytest.mark.slow
def test_data_parallel_signal_to_one_rank_or_the_launcher_stops_every_rank_at_one_step(tiny_bert, sst2_sample_dir,
                                                                                      tmp_path):
    """Two ranks (torchrun, gloo): SIGUSR1 to rank 1 alone at step 3 stops both ranks there (agreed at the
    step boundary) with one complete checkpoint; SIGTERM to the launcher (which passes it to
    both) while step 3 runs does the same. Each rerun ends bit-equal to an uninterrupted two-rank run."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    full, one_rank, launched = tmp_path / "full", tmp_path / "one-rank", tmp_path / "launcher"
    proc = run(["run_glue_mixup.py", *args(tiny_bert, sst2_sample_dir, full)], launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]

    proc = signalled("step=3,rank=1", "USR1", args(tiny_bert, sst2_sample_dir, one_rank), launcher)
    assert "exitcode  : 75" in proc.stderr, proc.stderr[-3000:]
    assert [p.name for p in one_rank.glob("checkpoint-*")] == ["checkpoint-3"] and _complete(one_rank / "checkpoint-3")
    assert {p.name for p in (one_rank / "checkpoint-3").glob("*_state_*")} >= {
        "rng_state_0.pth", "rng_state_1.pth", "loss_state_0.json", "loss_state_1.json"}
    assert not (one_rank / "all_results.json").exists()
    assert run(["run_glue_mixup.py", *args(tiny_bert, sst2_sample_dir, one_rank)], launcher).returncode == 0
    assert_bit_equal(full, one_rank)

    marker = tmp_path / "paused"
    env = {**ENV, "OMP_NUM_THREADS": "1", "SIGNAL_AT_MARKER": str(marker)}
    command = [*launcher, "tests/signal_at.py", "pause=3", "TERM", "--", *args(tiny_bert, sst2_sample_dir, launched)]
    torchrun = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists():  # rank 0 is in step 3, paused: training is under way
        assert torchrun.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    torchrun.send_signal(signal.SIGTERM)
    stderr = torchrun.communicate(timeout=120)[1]
    assert torchrun.returncode != 0 and not (launched / "all_results.json").exists(), stderr[-3000:]
    assert "stopped by SIGTERM" in stderr
    assert [p.name for p in launched.glob("checkpoint-*")] == ["checkpoint-3"] and _complete(launched / "checkpoint-3")
    assert run(["run_glue_mixup.py", *args(tiny_bert, sst2_sample_dir, launched)], launcher).returncode == 0
    assert_bit_equal(full, launched)
    shutil.rmtree(tmp_path / "full")


def test_mixup_trainer_with_enable_jit_checkpoint_stops_at_the_step_and_resumes_exactly(tokenizer, sst2_small,
                                                                                        tmp_path):
    """From Python: enable_jit_checkpoint=True gives MixUpTrainer the same stop (transformers' own saves
    before the optimizer step); train() returns at the step boundary with a complete checkpoint, the
    previous SIGTERM handler is back, and resuming from it ends with the uninterrupted run's weights."""
    import torch
    from transformers import TrainerCallback, TrainingArguments, set_seed

    from mixup_trainer import MixUpBertForSequenceClassification, MixUpTrainer, MixUpTrainingArguments
    from testing_utils import make_tiny_config

    if not hasattr(TrainingArguments, "enable_jit_checkpoint"):
        pytest.skip("this transformers has no enable_jit_checkpoint (added after 5.18)")

    class SignalAtStep3(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 2:
                os.kill(os.getpid(), signal.SIGTERM)

    def trainer(out, callbacks=()):
        set_seed(0)
        model = MixUpBertForSequenceClassification(make_tiny_config(tokenizer, dropout=0.1))
        targs = MixUpTrainingArguments(output_dir=str(out), mixup_method="manifold", per_device_train_batch_size=8,
                                       num_train_epochs=2, learning_rate=1e-3, save_strategy="no", report_to=[],
                                       seed=0, use_cpu=True, disable_tqdm=True, enable_jit_checkpoint=True)
        return MixUpTrainer(model=model, args=targs, train_dataset=sst2_small, processing_class=tokenizer,
                            callbacks=list(callbacks))

    before = signal.getsignal(signal.SIGTERM)
    full = trainer(tmp_path / "full")
    full.train()
    assert full.preempted_by is None and full.state.global_step == 8
    stopped = trainer(tmp_path / "stopped", [SignalAtStep3()])
    stopped.train()
    assert stopped.preempted_by == "SIGTERM" and stopped.state.global_step == 3
    assert signal.getsignal(signal.SIGTERM) is before
    checkpoint = tmp_path / "stopped" / "checkpoint-3"
    assert _complete(checkpoint) and (checkpoint / "optimizer.pt").is_file() and (checkpoint / "rng_state.pth").is_file()
    resumed = trainer(tmp_path / "stopped")  # a new trainer, as in a requeued job
    resumed.train(resume_from_checkpoint=str(checkpoint))
    stopped.train(resume_from_checkpoint=str(checkpoint))  # the same trainer, as the warning suggests
    for again in (resumed, stopped):
        assert again.state.global_step == 8 and again.preempted_by is None
        for (name, a), b in zip(full.model.state_dict().items(), again.model.state_dict().values()):
            assert torch.equal(a, b), name
