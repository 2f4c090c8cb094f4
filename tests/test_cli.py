"""The command-line programs: entry points, ``--help``, one-line errors, the logged MixUp arguments,
and the model card (built with huggingface_hub) of a real run. The wheel itself is checked by
benchmarks/check_wheel.sh (a fresh virtualenv outside the source tree)."""

import configparser
import importlib
import json
import subprocess
import sys

import pytest

from testing_utils import DATA, ENV, REPO

ENV = {k: v for k, v in ENV.items() if k != "MIXUP_DEBUG"}


def cli(*args, cwd, module="mixup_trainer.run_glue_mixup", env=None):
    """Run ``python -m module args`` from ``cwd`` (outside the checkout, as an installed tool runs)."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env or ENV, capture_output=True,
                          text=True, timeout=300)


def assert_one_line_error(proc, *needles, status=1):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert lines[0].startswith("run_glue_mixup: error: ")
    for needle in needles:
        assert needle in lines[0]


def test_console_scripts_are_declared_and_importable():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    scripts = dict(line.split(" = ") for line in config["options.entry_points"]["console_scripts"].split("\n") if line)
    assert set(scripts) == {"run_glue_mixup", "run_boolq_mixup"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))
    assert "huggingface_hub" in config["options"]["install_requires"]


def test_missing_task_is_one_line(tmp_path):
    proc = cli("--model_name_or_path", "m", "--output_dir", str(tmp_path / "out"), cwd=tmp_path)
    assert_one_line_error(proc, "required: --task", status=2)
    assert not (tmp_path / "out").exists()


def test_missing_file_is_one_line_and_traceback_on_request(tiny_bert, tmp_path):
    args = ["--task", "sst2", "--train_file", str(tmp_path / "nope.tsv"), "--validation_file",
            str(DATA / "sst2" / "dev.tsv"), "--model_name_or_path", tiny_bert, "--output_dir", str(tmp_path / "out")]
    assert_one_line_error(cli(*args, cwd=tmp_path), f"train file {tmp_path / 'nope.tsv'} does not exist", "--traceback")
    for proc in (cli(*args, "--traceback", cwd=tmp_path), cli(*args, cwd=tmp_path, env={**ENV, "MIXUP_DEBUG": "1"})):
        assert proc.returncode == 1 and "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr


def test_hub_off_and_unknown_task_are_one_line(tiny_bert, tmp_path):
    proc = cli("--task", "cola", "--model_name_or_path", tiny_bert, "--output_dir", str(tmp_path / "a"), cwd=tmp_path)
    assert_one_line_error(proc, "Hub access is off", "--data_dir")
    proc = cli("--task", "glue", "--model_name_or_path", tiny_bert, "--output_dir", str(tmp_path / "b"), cwd=tmp_path)
    assert_one_line_error(proc, "Unknown task 'glue'", "sst2", status=2)  # a command-line mistake


def test_bug_keeps_its_traceback(monkeypatch, capsys):
    """Only user errors become one line: anything else is a bug and is raised as it is."""
    from mixup_trainer import cli as cli_module

    def broken(argv, default_task=None, setup_logging=None):
        raise KeyError("a bug")

    monkeypatch.setattr(cli_module, "main", broken)
    with pytest.raises(KeyError):
        cli_module.run(argv=["--task", "sst2"])
    monkeypatch.setattr(cli_module, "main", lambda argv, default_task=None, setup_logging=None: {})
    assert cli_module.run(argv=["--task", "sst2"]) == 0 and capsys.readouterr().err == ""


def test_help_lists_mixup_and_data_flags_first(tmp_path):
    glue = cli("--help", cwd=tmp_path)
    assert glue.returncode == 0
    text = glue.stdout
    assert text.startswith("usage: run_glue_mixup") and "--task TASK --model_name_or_path MODEL" in text
    order = [text.index(heading) for heading in ("MixUp (MixUpTrainingArguments):", "data:", "calibration:",
                                                  "output folder and comparison:", "model (as in run_glue.py):",
                                                  "training (transformers")]
    assert order == sorted(order)
    mixup = text[order[0]:order[1]]
    for flag in ("--mixup_method {none,cls,input,manifold}", "--mixup_padding {pair,max,none}",
                 "--mixup_pad_token {sep,pad,unused0}", "--mixup_alpha", "--mixup_layers", "--mixup_start"):
        assert flag in mixup
    assert "(required) Task name" in text[order[1]:order[2]]
    assert "--temperature_scaling" in text[order[2]:order[3]] and "--compare " in text[order[3]:order[4]]
    assert "--learning_rate" in text[order[5]:] and "--learning_rate" not in text[:order[5]]

    boolq = cli("--help", cwd=tmp_path, module="mixup_trainer.run_boolq_mixup")
    assert boolq.returncode == 0 and "[--task TASK]" in boolq.stdout and "(required) Task name" not in boolq.stdout


def test_fsdp_without_gpus_is_refused(tmp_path):
    import torch

    if torch.accelerator.is_available():
        pytest.skip("a GPU machine runs FSDP")
    proc = cli("--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path), "--fsdp", cwd=tmp_path)
    assert_one_line_error(proc, "FSDP needs GPUs", "DDP", status=2)


def test_logged_arguments_show_mixup_pad_token_but_hide_secrets():
    from mixup_trainer import MixUpTrainingArguments

    args = MixUpTrainingArguments(output_dir="out", mixup_pad_token="unused0", hub_token="SECRET", report_to=[])
    for text in (str(args), repr(args), json.dumps(args.to_dict()), json.dumps(args.to_sanitized_dict())):
        assert "unused0" in text and "SECRET" not in text
    assert "mixup_pad_token=unused0," in str(args) and args.to_dict()["hub_token"] == "<HUB_TOKEN>"


# ------------------------------------------------------------------------------------ model card
@pytest.fixture(scope="module")
def card_run(tiny_bert, tmp_path_factory):
    """A small SST-2 run through the module entry point, from a folder outside the checkout."""
    out = tmp_path_factory.mktemp("card") / "sst2-cls"
    proc = cli("--task", "sst2", "--data_dir", str(DATA / "sst2"), "--model_name_or_path", tiny_bert,
               "--mixup_method", "cls", "--mixup_alpha", "0.4", "--max_train_samples", "24", "--max_eval_samples", "30",
               "--num_train_epochs", "1", "--max_seq_length", "48", "--output_dir", str(out), "--disable_tqdm", "true",
               "--log_level", "debug", "--report_to", "none", cwd=out.parent)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc


@pytest.mark.slow
def test_model_card_loads_with_huggingface_hub(card_run):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard import metadata_load

    out, _ = card_run
    results = json.loads((out / "all_results.json").read_text())
    card = ModelCard.load(out / "README.md")
    assert card.data.to_dict() == metadata_load(out / "README.md")
    assert card.data.base_model is None and "huggingface.co//" not in card.content  # a local folder has no Hub page
    assert set(card.data.tags) >= {"mixup", "mixup-cls", "sst2"} and card.data.pipeline_tag == "text-classification"
    (entry,) = metadata_load(out / "README.md")["model-index"]
    assert entry["name"] == "sst2-cls"
    (result,) = entry["results"]
    assert result["task"]["type"] == "text-classification" and result["dataset"]["type"] == "sst2"
    metrics = {m["type"]: m["value"] for m in result["metrics"]}
    assert set(metrics) == {"accuracy", "loss", "ece", "mce", "brier", "nll"}
    assert metrics == {k: results[f"eval_{k}"] for k in metrics}  # the very numbers of all_results.json
    assert [r.metric_type for r in card.data.eval_results] == list(metrics)
    assert "![Reliability diagram](eval_reliability_diagram.png)" in card.text
    assert (out / "eval_reliability_diagram.png").is_file()
    assert "| mixup_method | cls |" in card.text and "| mixup_alpha (λ ~ Beta(α, α)) | 0.4 |" in card.text


@pytest.mark.slow
def test_the_run_log_shows_mixup_pad_token(card_run):
    """The argument dump is a debug message (an error is not preceded by a hundred lines of arguments)."""
    _, proc = card_run
    assert "mixup_pad_token=sep," in proc.stdout + proc.stderr
    assert "<MIXUP_PAD_TOKEN>" not in proc.stdout + proc.stderr


def test_model_card_of_a_hub_model_links_its_base_model(tiny_bert, tmp_path, tokenizer):
    """A Hub id becomes base_model and a working link; Hub data gives the dataset's id, config and split."""
    from huggingface_hub import ModelCard
    from transformers import AutoModelForSequenceClassification

    from mixup_trainer import MixUpTrainer, MixUpTrainingArguments
    from mixup_trainer.model_card import build_model_card, hub_base_model
    from mixup_trainer.tasks import get_task

    assert hub_base_model("bert-base-uncased") == "bert-base-uncased" and hub_base_model(tiny_bert) is None
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    args = MixUpTrainingArguments(output_dir=str(tmp_path / "cola-manifold"), mixup_method="manifold",
                                  mixup_layers="0,2", report_to=[])
    trainer = MixUpTrainer(model=model, args=args, processing_class=tokenizer)
    metrics = {"eval_matthews_correlation": 0.25, "eval_accuracy": 0.7, "eval_loss": 0.61, "eval_ece": 0.05,
               "eval_samples": 1043, "best_epoch": 3.0}
    from mixup_trainer.cli import parse_args

    run_args = parse_args(["--task", "cola", "--model_name_or_path", "bert-base-uncased", "--output_dir", args.output_dir])
    card = build_model_card(trainer, run_args, {"calibration bins": 10}, metrics)
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.base_model == "bert-base-uncased" and loaded.data.datasets == ["nyu-mll/glue"]
    assert "[bert-base-uncased](https://huggingface.co/bert-base-uncased)" in loaded.text
    results = loaded.data.eval_results
    assert [(r.metric_type, r.metric_value) for r in results] == [
        ("matthews_correlation", 0.25), ("accuracy", 0.7), ("loss", 0.61), ("ece", 0.05)]
    assert {(r.dataset_type, r.dataset_config, r.dataset_split) for r in results} == {("nyu-mll/glue", "cola", "validation")}
    assert results[3].metric_config == "10 equal-width bins, top-label confidence"
    assert "| mixup_layers | 0,2 |" in loaded.text and "epoch 3, 1043 examples" in loaded.text
    # the trained class (the checkpoint's config names BertModel) and the levels the hooks found
    assert "| architecture | BertForSequenceClassification |" in loaded.text
    assert ("| levels mixed | manifold: levels 0, 2 of a 2-block encoder (0 = input of block 1, 1..2 = block "
            "outputs, 3 = input of the final projection) |") in loaded.text
    assert "No logged training step mixed a batch" not in loaded.text
    import accelerate
    import torch
    import transformers

    import mixup_trainer

    # the versions that can move the numbers; PEFT only for an adapter
    assert (f"- mixup-trainer {mixup_trainer.__version__}\n- Transformers {transformers.__version__}\n"
            f"- Pytorch {torch.__version__}") in loaded.text
    assert f"- Accelerate {accelerate.__version__}" in loaded.text and "- PEFT" not in loaded.text
    args.do_train = True  # a training run whose logged steps mixed no batch
    trainer.state.log_history = [{"loss": 0.7, "step": 1}]
    unmixed = build_model_card(trainer, run_args, {}, metrics)
    assert "**No logged training step mixed a batch**" in unmixed.text
