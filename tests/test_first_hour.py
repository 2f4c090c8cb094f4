"""A new user's first hour: one exit status per kind of mistake, "did you mean" for a misspelt flag,
output-folder errors that name the folder and the fix, --help that names the required flags, and model
files that follow the umask."""

import os
import subprocess
import sys

import pytest

from testing_utils import ENV, REPO, make_tiny_config


def run_cli(capsys, *argv) -> tuple[int, str]:
    from mixup_trainer import cli

    status = cli.run(argv=list(argv))
    err = capsys.readouterr().err.strip()
    return status, err


@pytest.mark.parametrize("flags, message", [
    (["--mixup_method", "cls", "--mixup_alpha", "-1"], "mixup_alpha must be >= 0"),
    (["--mixup_method", "manifold", "--mixup_layers", "99"], "mixup_layers [99] are outside 0..3"),
    (["--mixup_metod", "manifold"], "unrecognized arguments: --mixup_metod manifold; did you mean --mixup_method?"),
    (["--calibration_file", "/no/such.tsv", "--temperature_scaling"], "--calibration_file /no/such.tsv does not exist"),
])
def test_every_command_line_mistake_exits_2_in_one_line(capsys, tiny_bert, tmp_path, flags, message):
    status, err = run_cli(capsys, "--task", "sst2", "--model_name_or_path", tiny_bert, "--output_dir",
                          str(tmp_path / "run"), *flags)
    assert status == 2 and "\n" not in err and message in err, err
    assert not (tmp_path / "run").exists()


def test_a_data_mistake_exits_1(capsys, tiny_bert, tmp_path):
    status, err = run_cli(capsys, "--task", "sst2", "--model_name_or_path", tiny_bert, "--data_dir", "/no/such/dir",
                          "--output_dir", str(tmp_path / "run"))
    assert status == 1 and "\n" not in err and "--data_dir /no/such/dir is not a folder" in err


def test_output_dir_that_is_a_file_or_cannot_be_created_is_one_line(capsys, tiny_bert, tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine")
    status, err = run_cli(capsys, "--task", "sst2", "--model_name_or_path", tiny_bert, "--output_dir", str(a_file))
    assert status == 1 and "\n" not in err
    assert f"--output_dir {a_file} is a file, not a folder: choose another --output_dir" in err
    assert a_file.read_text() == "mine"
    unwritable = "/proc/mixup-trainer/run"  # no one, root included, can create a folder there
    status, err = run_cli(capsys, "--task", "sst2", "--model_name_or_path", tiny_bert, "--output_dir", unwritable)
    assert status == 1 and "\n" not in err and f"--output_dir {unwritable}: cannot create the folder (" in err
    assert "choose a folder you can write to" in err


def test_help_usage_names_the_required_flags():
    proc = subprocess.run([sys.executable, "-m", "mixup_trainer.run_glue_mixup", "--help"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)
    usage = proc.stdout.split("\n\n")[0]
    assert "--task TASK --model_name_or_path MODEL --output_dir DIR" in usage
    block = proc.stdout[proc.stdout.index("--model_name_or_path MODEL_NAME_OR_PATH"):]
    block = block[:block.index("\n  --", 1)]
    assert "(required)" in block and "(default: None)" not in block


def test_saved_model_files_follow_the_umask(tmp_path, tokenizer):
    from mixup_trainer import MixUpTrainingArguments
    from mixup_trainer.modeling import MixUpBertForSequenceClassification
    from mixup_trainer.run_trainer import RunScriptTrainer

    args = MixUpTrainingArguments(output_dir=str(tmp_path / "run"), report_to=[], use_cpu=True)
    trainer = RunScriptTrainer(model=MixUpBertForSequenceClassification(make_tiny_config(tokenizer)), args=args,
                               processing_class=tokenizer)
    old = os.umask(0o022)
    try:
        trainer.save_model()
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert modes["model.safetensors"] == 0o644 and set(modes.values()) == {0o644}, modes


def test_omp_threads_sleep_rather_than_spin_unless_set():
    code = "import os, mixup_trainer; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in ENV.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "ACTIVE"


def _launch(launcher: list[str], tmp_path) -> subprocess.CompletedProcess:
    flags = ["--task", "sst2", "--mixup_alpha", "-1", "--model_name_or_path", "unused", "--output_dir", str(tmp_path)]
    return subprocess.run([*launcher, "run_glue_mixup.py", *flags], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=300)


LINE = "run_glue_mixup: error: mixup_alpha must be >= 0 and finite"


def test_under_torchrun_the_launchers_report_names_the_one_line(tmp_path):
    """torchrun ends with its own report and exit status 1; the rank's line is that report's root cause
    (written to the launcher's error file), not a link to the elastic docs."""
    proc = _launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"], tmp_path)
    assert proc.returncode == 1
    report = proc.stderr[proc.stderr.index("Root Cause (first observed failure)"):]
    assert "exitcode  : 2" in report and f"traceback : {LINE}" in report


def test_under_accelerate_launch_quiet_the_one_line_is_last(tmp_path):
    proc = _launch([sys.executable, "-m", "accelerate.commands.launch", "-q", "--cpu", "--num_processes", "1"], tmp_path)
    assert proc.returncode == 1  # accelerate's own status for a failed process
    assert proc.stderr.strip().splitlines()[-1].startswith(LINE)


def test_a_parse_time_mistake_is_refused_before_the_trainer_datasets_and_models_load():
    """The run scripts parse before they import run.py: a mistyped command costs the import of
    TrainingArguments (which transformers ties to torch and peft), not of the whole training stack."""
    code = ("import sys; from mixup_trainer.cli import run\n"
            "status = run(argv=['--task', 'sst2', '--mixup_metod', 'cls', '--model_name_or_path', 'm', '--output_dir', 'o'])\n"
            "heavy = [m for m in ('mixup_trainer.run', 'mixup_trainer.trainer', 'mixup_trainer.modeling', 'datasets')"
            " if m in sys.modules]\n"
            "print(status, heavy)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "2 []", proc.stdout + proc.stderr
    assert "did you mean --mixup_method" in proc.stderr
