"""Nothing lost, nothing silently wrong (issue 12): exact resume after a kill, output folders that
belong to one run, atomic results, and bad arguments and data refused early with a clear message."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_run_scripts import ENV, REPO  # tiny_bert, sst2_sample_dir: fixtures of conftest.py

TIMING = ("runtime", "per_second")  # wall-clock figures, the only numbers two identical runs may differ in


# ------------------------------------------------------------------------------------------- kill test
def _script(tiny: str, out: Path, data: str) -> list[str]:
    """24 optimizer steps (96 examples, batch 8, 2 epochs) of Manifold MixUp with dropout 0.1, a full
    checkpoint and an evaluation every 4 steps, a log line every step."""
    return [sys.executable, "run_glue_mixup.py", "--task", "sst2", "--data_dir", data,
            "--model_name_or_path", tiny, "--mixup_method", "manifold", "--mixup_alpha", "0.4",
            "--hidden_dropout_prob", "0.1", "--max_train_samples", "96", "--max_eval_samples", "32",
            "--per_device_train_batch_size", "8", "--num_train_epochs", "2", "--learning_rate", "1e-3",
            "--max_seq_length", "48", "--save_strategy", "steps", "--save_steps", "4", "--logging_steps", "1",
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


def kill_and_rerun(command, full: Path, killed: Path, checkpoint: str, before_rerun=None):
    """Run ``command(full)`` and ``command(killed)`` side by side; SIGKILL the second once its ``checkpoint``
    is complete (before it finished), call ``before_rerun()``, rerun the same command to the end, and wait
    for the uninterrupted run: (the rerun's CompletedProcess, what ``before_rerun`` returned)."""
    env = {**ENV, "OMP_NUM_THREADS": "1"}  # two runs side by side
    with (full.parent / f"{full.name}.log").open("w") as full_log:  # a file, not a pipe nobody reads
        uninterrupted = subprocess.Popen(command(full), cwd=REPO, env=env, stdout=full_log, stderr=subprocess.STDOUT)
        victim = subprocess.Popen(command(killed), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while not _complete(killed / checkpoint):
            assert victim.poll() is None and time.monotonic() < deadline, f"the run ended before {checkpoint}"
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        assert not (killed / "all_results.json").exists()
        prepared = before_rerun() if before_rerun is not None else None
        rerun = subprocess.run(command(killed), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-4000:]
        assert uninterrupted.wait(timeout=300) == 0, (full.parent / f"{full.name}.log").read_text()[-4000:]
    return rerun, prepared


def assert_bit_equal(full: Path, killed: Path) -> list[dict]:
    """The rerun's logs, results and saved weights equal the uninterrupted run's, bit for bit (timings
    aside); returns the uninterrupted run's log history."""
    from safetensors.numpy import load_file

    logs = [json.loads((out / "trainer_state.json").read_text())["log_history"] for out in (full, killed)]
    assert [_without_timing(log) for log in logs[1]] == [_without_timing(log) for log in logs[0]]
    results = [json.loads((out / "all_results.json").read_text()) for out in (full, killed)]
    assert _without_timing(results[1]) == _without_timing(results[0])
    weights = [load_file(out / "model.safetensors") for out in (full, killed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    return logs[0]


@pytest.mark.slow
def test_rerun_after_sigkill_is_bit_equal_to_an_uninterrupted_run(tiny_bert, sst2_sample_dir, tmp_path):  # noqa: F811
    """SIGKILL once the second checkpoint is complete, add the half-written checkpoint a kill during
    saving leaves, rerun the same command: every logged loss, λ, level, learning rate and gradient
    norm, every evaluation, the final metrics and the saved model equal the uninterrupted run's."""
    full, killed = tmp_path / "full", tmp_path / "killed"

    def half_written_checkpoint():
        assert not (killed / "checkpoint-24").exists()
        saved = {int(p.name.split("-")[1]): _complete(p) for p in killed.glob("checkpoint-*")}
        newest = max(step for step, complete in saved.items() if complete)
        assert max(saved) < 24  # killed mid-run
        # What a kill during saving leaves (the kill may have made one too): weights, no trainer_state.json yet.
        half = killed / f"checkpoint-{max(saved) + 4}"
        half.mkdir()
        (half / "model.safetensors").write_bytes((killed / f"checkpoint-{newest}" / "model.safetensors").read_bytes())
        return half, newest

    rerun, (half, newest) = kill_and_rerun(lambda out: _script(tiny_bert, out, sst2_sample_dir), full, killed,
                                           "checkpoint-8", before_rerun=half_written_checkpoint)
    assert "Skipping incomplete checkpoint(s), left by a run killed while saving (or with files removed since): " in rerun.stdout
    assert f"{half.name} (no trainer_state.json)" in rerun.stdout
    assert f"Resuming from {killed / f'checkpoint-{newest}'}." in rerun.stdout

    logs = assert_bit_equal(full, killed)
    steps = [log for log in logs if "loss" in log]
    assert [log["step"] for log in steps] == list(range(1, 25))
    assert all("mixup_lambda" in log and "mixup_layer" in log for log in steps)
    assert len({log["mixup_layer"] for log in steps}) > 1  # manifold: levels drawn per batch
    results = json.loads((full / "all_results.json").read_text())
    assert {"train_loss", "eval_accuracy", "eval_ece", "eval_loss", "best_global_step"} <= set(results)
    # Finished: checkpoints deleted (only the best model remains), settings recorded.
    assert not list(killed.glob("checkpoint-*")) and not list(full.glob("checkpoint-*"))
    assert json.loads((killed / "run_settings.json").read_text())["mixup_method"] == "manifold"


# ------------------------------------------------------------------------------------ output folders
@pytest.fixture(scope="module")
def parse(tmp_path_factory):
    from mixup_trainer.cli import parse_args

    def _parse(out, *argv):
        return parse_args(["--model_name_or_path", "m", "--task", "sst2", "--output_dir", str(out), *argv])
    # (model, data, ...) below: the ScriptArgs fields, as run_glue.py names them

    return _parse


def _prepare(parse, out, *argv):
    """What main() does before loading anything: (finished results or None, checkpoint to resume)."""
    from mixup_trainer.checkpoints import checkpoint_to_resume
    from mixup_trainer.output_dir import prepare_output_dir, run_settings

    args = parse(out, *argv)
    settings = run_settings(args)
    finished = prepare_output_dir(args.training, args.run.overwrite_output_dir, settings)
    return finished, (None if finished is not None else checkpoint_to_resume(args.training, args.run.overwrite_output_dir))


def _checkpoint(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text("{}")
    return folder


FULL = ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "loss_state_0.json", "trainer_state.json")


def test_settings_recorded_and_other_settings_refused_in_one_line(parse, tmp_path):
    out = tmp_path / "run"
    assert _prepare(parse, out, "--mixup_method", "manifold", "--seed", "1") == (None, None)
    recorded = json.loads((out / "run_settings.json").read_text())
    assert (recorded["mixup_method"], recorded["seed"], recorded["task"], recorded["model_name_or_path"]) == (
        "manifold", 1, "sst2", "m")
    assert not {"output_dir", "overwrite_output_dir", "logging_steps", "report_to", "hub_token"} & set(recorded)
    checkpoint = _checkpoint(out / "checkpoint-2", *FULL)  # the run was interrupted
    with pytest.raises(ValueError) as err:
        _prepare(parse, out, "--mixup_method", "cls", "--seed", "1", "--num_train_epochs", "5")
    message = str(err.value)
    assert "\n" not in message and f"output_dir {out} holds a run with other settings" in message
    assert "mixup_method: manifold -> cls" in message and "num_train_epochs: 3.0 -> 5" in message
    assert "seed" not in message and "--overwrite_output_dir" in message and "new --output_dir" in message
    with pytest.raises(ValueError, match=r"metric_for_best_model: accuracy -> matthews_correlation; task: sst2 -> "
                                         r"cola\)"):
        from mixup_trainer.output_dir import prepare_output_dir, run_settings
        from mixup_trainer.cli import parse_args

        args = parse_args(["--model_name_or_path", "m", "--task", "cola", "--output_dir", str(out),
                           "--mixup_method", "manifold", "--seed", "1"])
        prepare_output_dir(args.training, False, run_settings(args))
    # Flags that change neither the model nor the numbers do not make another run.
    assert _prepare(parse, out, "--mixup_method", "manifold", "--seed", "1", "--logging_steps", "3",
                    "--disable_tqdm", "true", "--keep_checkpoints") == (None, str(checkpoint))


def test_a_setting_added_later_reads_as_what_older_runs_did(parse, tmp_path):
    """A run recorded before --mixup_partners existed mixed matching pairs: it resumes under the
    default, and a rerun with permutation partners is another run."""
    out = tmp_path / "run"
    _prepare(parse, out, "--mixup_method", "manifold")
    recorded = json.loads((out / "run_settings.json").read_text())
    del recorded["mixup_partners"]
    (out / "run_settings.json").write_text(json.dumps(recorded))
    checkpoint = _checkpoint(out / "checkpoint-2", *FULL)
    assert _prepare(parse, out, "--mixup_method", "manifold") == (None, str(checkpoint))
    with pytest.raises(ValueError, match="mixup_partners: matching -> permutation"):
        _prepare(parse, out, "--mixup_method", "manifold", "--mixup_partners", "permutation", "--mixup_padding", "none")


def test_identical_rerun_resumes_newest_complete_checkpoint(parse, tmp_path, caplog):
    out = tmp_path / "run"
    _prepare(parse, out)
    _checkpoint(out / "checkpoint-4", *FULL)
    _checkpoint(out / "checkpoint-8", *FULL)
    _checkpoint(out / "checkpoint-12", "model.safetensors", "optimizer.pt")  # killed before trainer_state.json
    _checkpoint(out / "checkpoint-16", "config.json")  # killed while writing the weights
    truncated = _checkpoint(out / "checkpoint-20", *FULL)
    (truncated / "trainer_state.json").write_text('{"log_history": [')
    with caplog.at_level("WARNING", logger="mixup_trainer"):
        assert _prepare(parse, out) == (None, str(out / "checkpoint-8"))
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert ("left by a run killed while saving (or with files removed since): checkpoint-20 (a truncated trainer_state.json), checkpoint-16 (no "
            f"model weights), checkpoint-12 (no trainer_state.json). Resuming from {out / 'checkpoint-8'}.") in warning


def test_model_only_checkpoint_resumed_only_when_named(parse, tmp_path, caplog):
    out = tmp_path / "run"
    _prepare(parse, out)
    model_only = _checkpoint(out / "checkpoint-6", "model.safetensors", "trainer_state.json")
    with pytest.raises(ValueError, match=r"checkpoint-6 is model-only.*restart the optimizer and learning-rate "
                                         r"schedule.*--resume_from_checkpoint .*checkpoint-6.*--overwrite_output_dir"):
        _prepare(parse, out)
    with caplog.at_level("WARNING", logger="mixup_trainer"):
        assert _prepare(parse, out, "--resume_from_checkpoint", str(model_only)) == (None, str(model_only))
    assert "MODEL-ONLY CHECKPOINT" in caplog.text and "will NOT match an uninterrupted one" in caplog.text
    with pytest.raises(FileNotFoundError, match="cannot be resumed: no trainer_state.json"):
        _prepare(parse, out, "--resume_from_checkpoint", str(_checkpoint(out / "checkpoint-9", "model.safetensors")))


def test_finished_run_is_never_overwritten_unless_asked(parse, tmp_path):
    out = tmp_path / "run"
    _prepare(parse, out)
    (out / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.75}))
    (out / "eval_results.json").write_text("{}")
    _checkpoint(out / "checkpoint-3", *FULL)
    (out / "notes.txt").write_text("mine")
    assert _prepare(parse, out) == ({"eval_accuracy": 0.75}, None)
    assert (out / "all_results.json").is_file() and (out / "checkpoint-3").is_dir()
    with pytest.raises(ValueError, match="other settings"):
        _prepare(parse, out, "--seed", "5")
    assert _prepare(parse, out, "--seed", "5", "--overwrite_output_dir") == (None, None)
    assert not (out / "all_results.json").exists() and not (out / "eval_results.json").exists()
    assert not (out / "checkpoint-3").exists() and (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "run_settings.json").read_text())["seed"] == 5


def test_finished_identical_rerun_exits_without_loading_anything(parse, tmp_path, monkeypatch):
    from mixup_trainer import cli

    out = tmp_path / "run"
    argv = ["--model_name_or_path", "no/such-model", "--task", "sst2", "--data_dir", "/no/such/folder",
            "--output_dir", str(out)]
    with pytest.raises(FileNotFoundError, match="--data_dir /no/such/folder is not a folder"):
        cli.main(argv)  # an unfinished run goes on to load the data ...
    assert not out.exists()  # (and, refused, leaves no folder behind)
    _prepare(parse, out, "--task", "sst2", "--model_name_or_path", "no/such-model", "--data_dir", "/no/such/folder")
    (out / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.5}))
    assert cli.main(argv) == {"eval_accuracy": 0.5}  # ... a finished one stops at once


def test_foreign_folder_refused(parse, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "something.txt").write_text("x")
    with pytest.raises(ValueError, match=r"not empty and has no run_settings.json.*--overwrite_output_dir.*new "
                                         r"--output_dir"):
        _prepare(parse, out)


def test_atomic_json_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    from mixup_trainer import output_dir

    path = tmp_path / "all_results.json"
    output_dir.write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}

    def crash(src, dst):
        raise KeyboardInterrupt  # a kill between writing and renaming

    monkeypatch.setattr(output_dir.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        output_dir.write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == [path.name]


# ------------------------------------------------------------------------------ defaults and arguments
def test_checkpoint_defaults(parse, tmp_path):
    args = parse(tmp_path)
    train = args.training
    assert not train.save_only_model and train.save_total_limit == 1 and not train.keep_checkpoints
    for flags in (["--keep_checkpoints"], ["--save_total_limit", "2"], ["--save_only_model", "true"]):
        assert parse(tmp_path, *flags).training.keep_checkpoints, flags
    assert not parse(tmp_path, "--save_strategy", "epoch").training.keep_checkpoints


def test_save_strategy_steps_alone_evaluates_at_the_same_steps(parse, tmp_path):
    train = parse(tmp_path, "--save_strategy", "steps").training
    assert (train.eval_strategy, train.save_strategy) == ("steps", "steps")
    assert (train.eval_steps, train.save_steps) == (500, 500)
    assert train.load_best_model_at_end
    train = parse(tmp_path, "--save_strategy", "steps", "--save_steps", "7").training
    assert (train.eval_steps, train.save_steps, train.load_best_model_at_end) == (7, 7, True)
    train = parse(tmp_path, "--save_strategy", "no").training
    assert (train.eval_strategy, train.save_strategy, train.load_best_model_at_end) == ("epoch", "no", False)


@pytest.mark.parametrize("alpha", ["inf", "-inf", "nan", "-1"])
def test_non_finite_or_negative_alpha_refused(parse, tmp_path, alpha):
    with pytest.raises(ValueError, match=f"mixup_alpha must be >= 0 and finite.*got {float(alpha)}$"):
        parse(tmp_path, "--mixup_method", "cls", f"--mixup_alpha={alpha}")


def test_mixup_layers_beyond_the_model_refused_before_any_loading(tiny_bert, tmp_path, monkeypatch):  # noqa: F811
    """Checked against the model's config before data or weights are read: --data_dir does not exist,
    so an error from anything later would be a FileNotFoundError."""
    from mixup_trainer import cli

    argv = ["--task", "sst2", "--model_name_or_path", tiny_bert, "--data_dir", "/no/such/folder",
            "--output_dir", str(tmp_path / "run"), "--mixup_method", "manifold"]
    with pytest.raises(ValueError, match=r"mixup_layers \[99\] are outside 0..3 for a model with 2 encoder layers"):
        cli.main(argv + ["--mixup_layers", "0,3,99"])
    assert not (tmp_path / "run").exists()  # refused before the output folder was touched
    with pytest.raises(FileNotFoundError, match="/no/such/folder"):
        cli.main(argv + ["--mixup_layers", "0,3"])


def test_batch_of_one_with_mixing_refused(parse, tmp_path):
    with pytest.raises(ValueError, match=r"--per_device_train_batch_size 1 with --mixup_method cls: a batch of one "
                                         r"row has no partner.*at least 2, or --mixup_method none"):
        parse(tmp_path, "--mixup_method", "cls", "--per_device_train_batch_size", "1")  # refused at parse time
    parse(tmp_path, "--per_device_train_batch_size", "1")  # ERM: fine
    parse(tmp_path, "--mixup_method", "cls", "--per_device_train_batch_size", "2")


def test_model_card_never_claims_mixup_without_a_mixed_batch():
    from types import SimpleNamespace

    from mixup_trainer.model_card import any_batch_mixed

    mixed = SimpleNamespace(log_history=[{"loss": 0.7, "mixup_lambda": 0.4, "mixup_layer": 2}, {"eval_loss": 0.6}])
    unmixed = SimpleNamespace(log_history=[{"loss": 0.7}, {"loss": 0.6}, {"eval_loss": 0.6}])
    assert any_batch_mixed(mixed) and not any_batch_mixed(unmixed)
    assert any_batch_mixed(SimpleNamespace(log_history=[]))  # nothing logged: nothing to contradict


# ------------------------------------------------------------------------------------------ bad data
@pytest.fixture
def sst2():
    from mixup_trainer.tasks import get_task

    return get_task("sst2")


@pytest.mark.parametrize("name, content, message", [
    ("train.tsv", "sentence\tlabel\n", r"train.tsv: no examples in the train file \(it has only a header\)"),
    ("dev.csv", "sentence,label\n", r"dev.csv: no examples in the validation file \(it has only a header\)"),
    ("dev.json", "[]", r"dev.json: no examples in the validation file"),
    ("dev.jsonl", "\n\n", r"dev.jsonl: no examples in the validation file"),
    ("train.tsv", "sentence\tlabel\ngood\t1\n\t0\n", r"train.tsv, line 3: column 'sentence' is empty; fill it in"),
    ("train.jsonl", '{"sentence": "  ", "label": 1}\n', r"line 1: column 'sentence' is empty"),
    ("train.jsonl", '{"sentence": "ok", "label": 1}\n{"sentence": NaN, "label": 0}\n',
     r"train.jsonl, line 2: column 'sentence' holds float nan, not text; write it as a string"),
    ("train.jsonl", '{"sentence": ["a", "b"], "label": 0}\n', r"holds list \['a', 'b'\], not text"),
    ("train.jsonl", '{"sentence": {"t": "a"}, "label": 0}\n', r"holds dict \{'t': 'a'\}, not text"),
    ("train.jsonl", '{"sentence": true, "label": 0}\n', r"holds bool True, not text"),
    ("train.json", '[{"sentence": "a", "label": 0},\n {"sentence": "b" "label": 1}]',
     r"train.json, line 2 column 19: not a valid JSON array \(Expecting ',' delimiter\)"),
])
def test_bad_files_refused_with_file_and_line(sst2, tmp_path, name, content, message):
    from mixup_trainer.data import read_local_file
    from mixup_trainer.tasks import DataFormatError

    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    split = "train" if name.startswith("train") else "validation"
    with pytest.raises(DataFormatError, match=message) as err:
        read_local_file(path, sst2, split)
    assert str(path) in str(err.value)


def test_non_utf8_file_names_file_line_and_byte(sst2, tmp_path):
    from mixup_trainer.data import read_local_file
    from mixup_trainer.tasks import DataFormatError

    path = tmp_path / "train.tsv"
    path.write_bytes("sentence\tlabel\ngood\t1\ncaf\u00e9 cr\u00e8me\t0\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=rf"{path}, line 3: byte 0xe9 is not UTF-8.*re-save the file as UTF-8"):
        read_local_file(path, sst2, "train")
    path.write_bytes("\ufeffsentence\tlabel\ncaf\u00e9\t1\n".encode("utf-8"))  # UTF-8 with a byte-order mark
    assert read_local_file(path, sst2, "train")["sentence"] == ["caf\u00e9"]


def test_regression_label_must_be_finite(tmp_path):
    from mixup_trainer.data import read_local_file
    from mixup_trainer.tasks import DataFormatError, get_task

    path = tmp_path / "train.jsonl"
    path.write_text('{"sentence1": "a", "sentence2": "b", "label": NaN}\n')
    with pytest.raises(DataFormatError, match=r"line 1: label nan is not a finite number \(task stsb"):
        read_local_file(path, get_task("stsb"), "train")


def test_header_only_dev_file_refused_before_the_model_loads(tmp_path, monkeypatch):
    from mixup_trainer import cli
    from mixup_trainer.tasks import DataFormatError

    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\n")
    with pytest.raises(DataFormatError, match=r"dev.tsv: no examples in the validation file"):
        cli.main(["--task", "sst2", "--data_dir", str(tmp_path), "--model_name_or_path", "no/such-model",
                             "--output_dir", str(tmp_path / "run")])
    # The refused run left no folder behind: a corrected command starts afresh.
    assert not (tmp_path / "run").exists()
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nfine\t1\n")
    with pytest.raises(ValueError, match="--max_eval_samples 0 leaves no validation examples"):
        cli.main(["--task", "sst2", "--data_dir", str(tmp_path), "--model_name_or_path", "no/such-model",
                             "--output_dir", str(tmp_path / "run"), "--max_eval_samples", "0"])
    with pytest.raises(ValueError, match="--mixup_method input needs at least 2 training examples to mix, got 1"):
        cli.main(["--task", "sst2", "--data_dir", str(tmp_path), "--model_name_or_path", "no/such-model",
                             "--output_dir", str(tmp_path / "run"), "--max_train_samples", "1",
                             "--mixup_method", "input"])


# --------------------------------------------------------------------------------------- ECE inputs
@pytest.mark.parametrize("references", [[0.9999, 1.0], [0, 1.7], [0, float("nan")]])
def test_ece_module_refuses_non_integer_references(ece_module, references):
    with pytest.raises(ValueError, match="labels must be integer class ids.*non-integer values such as"):
        ece_module.compute(predictions=[[0.6, 0.4], [0.3, 0.7]], references=references)
    # Integer references, as ints or as integral floats, give Guo et al.'s ECE: |1 - .6|/2 + |1 - .7|/2.
    assert ece_module.compute(predictions=[[0.6, 0.4], [0.3, 0.7]], references=[0, 1])[
        "expected_calibration_error"] == pytest.approx(0.35)
    assert ece_module.compute(predictions=[[0.6, 0.4], [0.3, 0.7]], references=[0.0, 1.0])[
        "expected_calibration_error"] == pytest.approx(0.35)


def test_ece_module_refuses_empty_input(ece_module):
    for predictions, references in (([], []), ([], [0]), ([[0.5, 0.5]], [])):
        with pytest.raises(ValueError, match="is empty: the calibration error needs at least one example"):
            ece_module.compute(predictions=predictions, references=references)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_probabilities_accepted(dtype):
    import torch
    from mixup_trainer.calibration import calibration_report

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2000, 10, generator=generator) * 4
    labels = torch.randint(0, 10, (2000,), generator=generator)
    probs = torch.softmax(logits.to(getattr(torch, dtype)), dim=1)
    worst = (probs.double().sum(1) - 1).abs().max().item()
    assert worst > 1e-4  # a float32 tolerance would refuse these real softmax outputs
    exact = calibration_report(logits, labels, from_logits=True)
    half = calibration_report(probs, labels)
    assert half.accuracy == pytest.approx(exact.accuracy, abs=0.01) and half.ece == pytest.approx(exact.ece, abs=0.01)
    if dtype == "float16":
        assert calibration_report(probs.numpy(), labels).ece == half.ece  # numpy float16 too
    off = probs.double().clone()
    off[0] = off[0] * 1.02  # 2% off is not rounding: still refused
    with pytest.raises(ValueError, match="must sum to 1"):
        calibration_report(off.to(getattr(torch, dtype)), labels)
