"""Nothing lost, nothing silently wrong (issue 12): exact resume after a kill, output folders that
belong to one run, atomic results, and bad arguments and data refused early with a clear message."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_run_scripts import DATA, ENV, REPO, tiny_bert  # noqa: F401  (tiny_bert is a fixture)

TIMING = ("runtime", "per_second")  # wall-clock figures, the only numbers two identical runs may differ in


# ------------------------------------------------------------------------------------------- kill test
def _script(tiny: str, out: Path) -> list[str]:
    """40 optimizer steps (160 examples, batch 8, 2 epochs) of Manifold MixUp with dropout 0.1, a full
    checkpoint and an evaluation every 5 steps, a log line every step."""
    return [sys.executable, "run_glue_mixup.py", "--task", "sst2", "--data_dir", str(DATA / "sst2"),
            "--model_name_or_path", tiny, "--mixup_method", "manifold", "--mixup_alpha", "0.4",
            "--hidden_dropout_prob", "0.1", "--max_train_samples", "160", "--max_eval_samples", "48",
            "--per_device_train_batch_size", "8", "--num_train_epochs", "2", "--learning_rate", "1e-3",
            "--max_seq_length", "48", "--save_strategy", "steps", "--save_steps", "5", "--logging_steps", "1",
            "--output_dir", str(out), "--seed", "42", "--disable_tqdm", "true", "--log_level", "warning",
            "--report_to", "none"]


def _complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def _without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if not any(t in k for t in TIMING)}


@pytest.mark.slow
def test_rerun_after_sigkill_is_bit_equal_to_an_uninterrupted_run(tiny_bert, tmp_path):  # noqa: F811
    """SIGKILL once the second checkpoint is complete, add the half-written checkpoint a kill during
    saving leaves, rerun the same command: every logged loss, λ, level, learning rate and gradient
    norm, every evaluation, the final metrics and the saved model equal the uninterrupted run's."""
    from safetensors.numpy import load_file

    full, killed = tmp_path / "full", tmp_path / "killed"
    uninterrupted = subprocess.Popen(_script(tiny_bert, full), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(_script(tiny_bert, killed), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not _complete(killed / "checkpoint-10"):
        assert victim.poll() is None and time.monotonic() < deadline, "the run ended before its second checkpoint"
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (killed / "all_results.json").exists() and not (killed / "checkpoint-40").exists()
    newest = max(int(p.name.split("-")[1]) for p in killed.glob("checkpoint-*"))
    assert newest < 40  # killed mid-run
    # What a kill during saving leaves: weights written, trainer_state.json not yet.
    half = killed / f"checkpoint-{newest + 5}"
    half.mkdir()
    (half / "model.safetensors").write_bytes((killed / f"checkpoint-{newest}" / "model.safetensors").read_bytes())

    rerun = subprocess.run(_script(tiny_bert, killed), cwd=REPO, env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert f"Skipping incomplete checkpoint(s) checkpoint-{newest + 5} (no trainer_state.json)" in rerun.stdout
    assert f"resuming from {killed / f'checkpoint-{newest}'}" in rerun.stdout
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()[-4000:]

    logs = [json.loads((out / "trainer_state.json").read_text())["log_history"] for out in (full, killed)]
    steps = [log for log in logs[0] if "loss" in log]
    assert [log["step"] for log in steps] == list(range(1, 41))
    assert all("mixup_lambda" in log and "mixup_layer" in log for log in steps)
    assert len({log["mixup_layer"] for log in steps}) > 1  # manifold: levels drawn per batch
    assert [_without_timing(log) for log in logs[1]] == [_without_timing(log) for log in logs[0]]
    results = [json.loads((out / "all_results.json").read_text()) for out in (full, killed)]
    assert _without_timing(results[1]) == _without_timing(results[0])
    assert {"train_loss", "eval_accuracy", "eval_ece", "eval_loss", "best_global_step"} <= set(results[0])
    weights = [load_file(out / "model.safetensors") for out in (full, killed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    # Finished: checkpoints deleted (only the best model remains), settings recorded.
    assert not list(killed.glob("checkpoint-*")) and not list(full.glob("checkpoint-*"))
    assert json.loads((killed / "run_settings.json").read_text())["mixup_method"] == "manifold"
