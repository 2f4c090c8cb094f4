"""run_glue_mixup.py / run_boolq_mixup.py: argument handling in-process, then real runs as
subprocesses (tiny random BERT, real data from ../shared/data, one 2-process torchrun run)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from testing_utils import DATA, ENV, REPO  # noqa: F401 (test_compare and others import them from here)
RESULT_FILES = ("all_results.json", "eval_predictions.jsonl", "eval_reliability_diagram.png", "README.md")


def run_script(args: list[str], out: Path, launcher: list[str] | None = None, timeout: int = 300) -> dict:
    """Run a script to completion; return all_results.json (the output tail is in any failure)."""
    command = (launcher or [sys.executable]) + args + [
        "--output_dir", str(out), "--disable_tqdm", "true", "--log_level", "warning", "--seed", "42"]
    proc = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads((out / "all_results.json").read_text())


def check_results(results: dict, metric: str, out: Path, n_eval: int) -> None:
    """The paper's report: task metric, loss and calibration of the best epoch, all in range."""
    for key in (f"eval_{metric}", "eval_accuracy", "eval_loss", "eval_ece", "eval_mce", "eval_brier", "eval_nll",
                "best_epoch", "train_samples", "eval_samples"):
        assert key in results and math.isfinite(results[key]), key
    for key in ("eval_accuracy", "eval_ece", "eval_mce"):
        assert 0.0 <= results[key] <= 1.0, key
    assert 0.0 <= results["eval_brier"] <= 2.0 and results["eval_loss"] > 0
    assert results["eval_ece"] <= results["eval_mce"] + 1e-12
    assert -1.0 <= results[f"eval_{metric}"] <= 1.0
    assert results["best_epoch"] >= 1 and results["eval_samples"] == n_eval
    for name in RESULT_FILES:
        assert (out / name).is_file(), name
    assert (out / "eval_reliability_diagram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [json.loads(line) for line in (out / "eval_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == n_eval
    assert all(abs(sum(r["probs"]) - 1) < 1e-9 and r["prediction"] == max(range(2), key=r["probs"].__getitem__)
               for r in rows)
    hits = sum(r["prediction"] == r["label"] for r in rows)
    assert hits / n_eval == pytest.approx(results["eval_accuracy"])
    # The best epoch is the one the Trainer selected by the task metric.
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["best_metric"] == pytest.approx(results[f"eval_{metric}"], abs=1e-6)


# --------------------------------------------------------------------------------- in-process parsing
@pytest.fixture(scope="module")
def parse(tmp_path_factory):
    from mixup_trainer.cli import parse_args

    out = str(tmp_path_factory.mktemp("parse"))

    def _parse(*argv, default_task=None):
        """(model, data, training, task) arguments, as run_glue.py names them."""
        args = parse_args(["--model_name_or_path", "m", "--output_dir", out, *argv], default_task=default_task)
        return args.model, args.data, args.training, args.task

    return _parse


def test_paper_defaults_and_explicit_flags_win(parse):
    model, data, train, task = parse("--task", "cola", "--paper_defaults")
    assert (train.learning_rate, train.num_train_epochs, train.mixup_alpha) == (2e-5, 5, 0.75)
    assert (train.per_device_train_batch_size, data.max_seq_length, model.hidden_dropout_prob) == (16, 128, 0.1)
    # An explicit flag wins even when its value is the library default (5e-5, alpha 1.0).
    model, data, train, _ = parse("--task_name", "cola", "--paper_defaults", "--learning_rate", "5e-5",
                                  "--mixup_alpha", "1.0", "--max_seq_length", "64")
    assert (train.learning_rate, train.mixup_alpha, train.num_train_epochs, data.max_seq_length) == (5e-5, 1.0, 5, 64)
    # Without --paper_defaults: the libraries' defaults, the task's max length, the model's dropout.
    model, data, train, _ = parse("--task", "cola")
    assert (train.learning_rate, train.num_train_epochs, train.mixup_alpha, train.alpha) == (5e-5, 3, None, 1.0)
    assert (train.per_device_train_batch_size, data.max_seq_length, model.hidden_dropout_prob) == (8, 128, None)
    # The paper gives no learning rate for SST-2: none is invented.
    _, _, train, _ = parse("--task", "sst2", "--paper_defaults")
    assert (train.learning_rate, train.num_train_epochs) == (5e-5, 10)


def test_json_config(parse, tmp_path):
    from mixup_trainer.cli import parse_args

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"task_name": "rte", "model_name_or_path": "m", "output_dir": str(tmp_path),
                                  "paper_defaults": True, "num_train_epochs": 10, "mixup_method": "input"}))
    args = parse_args([str(config)])
    task, train = args.task, args.training
    assert task.name == "rte" and train.mixup_method == "input"
    assert (train.learning_rate, train.num_train_epochs, train.per_device_train_batch_size) == (3e-5, 10, 16)
    assert train.eval_strategy == "epoch" and train.load_best_model_at_end


def script_args(*argv):
    from mixup_trainer.cli import parse_args

    return parse_args(["--model_name_or_path", "m", "--output_dir", "unused", *argv])


def test_run_defaults(parse):
    _, data, train, _ = parse("--task", "cola", "--seed", "7")
    assert train.do_train and train.do_eval
    assert (train.eval_strategy, train.save_strategy, train.logging_strategy) == ("epoch", "epoch", "epoch")
    assert train.load_best_model_at_end and train.greater_is_better
    assert train.metric_for_best_model == "matthews_correlation"
    # Full checkpoints (exact resume), deleted once the run finishes.
    assert (train.save_total_limit, train.save_only_model) == (1, False)
    assert script_args("--task", "cola", "--seed", "7").train_sample_seed == 7  # the sample follows the seed
    args = script_args("--task", "sst2", "--save_total_limit", "3", "--train_sample_seed", "5")
    train = args.training
    assert train.metric_for_best_model == "accuracy" and train.save_total_limit == 3 and args.train_sample_seed == 5
    assert train.keep_checkpoints  # asking how many to keep keeps them
    assert not script_args("--task", "cola").training.keep_checkpoints
    # Explicit choices are kept, and defaults that would contradict them are not added.
    _, _, train, _ = parse("--task", "sst2", "--eval_strategy", "no")
    assert train.eval_strategy == "no" and not train.load_best_model_at_end
    _, _, train, _ = parse("--task", "sst2", "--eval_strategy", "steps", "--eval_steps", "7")
    assert (train.save_strategy, train.save_steps, train.load_best_model_at_end) == ("steps", 7, True)
    _, _, train, _ = parse("--task", "sst2", "--do_eval")
    assert train.do_eval and not train.do_train and not train.load_best_model_at_end


def test_boolq_script_defaults(parse):
    _, data, train, task = parse(default_task="boolq")
    assert task.name == "boolq" and data.max_seq_length == 256
    _, data, train, task = parse("--paper_defaults", default_task="boolq")
    assert (train.learning_rate, data.max_seq_length) == (2e-5, 256)
    _, data, _, task = parse("--task", "rte", default_task="boolq")
    assert task.name == "rte" and data.max_seq_length == 128


def test_padding_choice(parse):
    from mixup_trainer.data import pads_to_max_length

    assert not pads_to_max_length(*parse("--task", "sst2", "--mixup_method", "input")[1:3])
    assert pads_to_max_length(*parse("--task", "sst2", "--mixup_method", "input", "--mixup_padding", "max")[1:3])
    assert pads_to_max_length(*parse("--task", "sst2", "--pad_to_max_length")[1:3])


def test_argument_errors(parse):
    with pytest.raises(ValueError, match=r"Unknown task 'glue'.*cola, sst2.*boolq"):
        parse("--task", "glue")
    with pytest.raises(ValueError, match="required: --task"):
        parse()
    with pytest.raises(ValueError, match="mixup_layers"):
        parse("--task", "sst2", "--mixup_method", "cls", "--mixup_layers", "1,2")


def test_output_dir_rules(parse, tmp_path):
    """A folder without run_settings.json is not resumed (it may hold another task's run); a folder
    recording this run resumes its newest full checkpoint. tests/test_safety.py has the rest."""
    from mixup_trainer.cli import parse_args
    from mixup_trainer.checkpoints import checkpoint_to_resume
    from mixup_trainer.output_dir import prepare_output_dir, run_settings

    def check(*argv):
        args = parse_args(["--model_name_or_path", "m", "--task", "sst2", "--output_dir", str(out), *argv])
        settings = run_settings(args)
        prepare_output_dir(args.training, args.run.overwrite_output_dir, settings)
        return checkpoint_to_resume(args.training, args.run.overwrite_output_dir)

    out = tmp_path / "out"
    checkpoint = out / "checkpoint-5"
    checkpoint.mkdir(parents=True)
    for name in ("trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
                     "loss_state_0.json"):
        (checkpoint / name).write_text("{}")
    with pytest.raises(ValueError, match=r"no run_settings.json.*--overwrite_output_dir.*new --output_dir"):
        check()
    assert check("--overwrite_output_dir") is None and not checkpoint.exists()
    checkpoint.mkdir()
    for name in ("trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
                     "loss_state_0.json"):
        (checkpoint / name).write_text("{}")
    assert check() == str(checkpoint)  # the same run, interrupted: resume


def test_hub_off_error_from_the_script(tiny_bert, tmp_path, monkeypatch):
    from mixup_trainer import cli

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match=r"Hub access is off.*--data_dir.*--train_file"):
        cli.main(["--task", "cola", "--model_name_or_path", tiny_bert, "--output_dir", str(tmp_path)])


# ------------------------------------------------------------------------------------------ real runs
@pytest.fixture(scope="module")
def sst2_run(tiny_bert, sst2_sample_dir, tmp_path_factory):
    """A Manifold MixUp run on 48 of the first 512 SST-2 training rows, scored on the real dev file's first 60."""
    out = tmp_path_factory.mktemp("sst2")
    results = run_script(["run_glue_mixup.py", "--task", "sst2", "--data_dir", sst2_sample_dir,
                          "--model_name_or_path", tiny_bert, "--mixup_method", "manifold", "--mixup_alpha", "0.4",
                          "--max_train_samples", "48", "--max_eval_samples", "60", "--num_train_epochs", "2",
                          "--learning_rate", "1e-3", "--max_seq_length", "64"], out)
    return results, out


@pytest.mark.slow
def test_sst2_manifold_run(sst2_run):
    results, out = sst2_run
    check_results(results, "accuracy", out, n_eval=60)
    assert results["train_samples"] == 48 and results["best_epoch"] in (1.0, 2.0)
    # Predictions are the first 60 rows of the dev file, with their labels.
    rows = [json.loads(line) for line in (out / "eval_predictions.jsonl").read_text().splitlines()]
    dev = [line.rsplit("\t", 1)[1] for line in (DATA / "sst2" / "dev.tsv").read_text().splitlines()[1:61]]
    assert [r["idx"] for r in rows] == list(range(60)) and [r["label"] for r in rows] == [int(y) for y in dev]
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]


@pytest.mark.slow
def test_model_card(sst2_run):
    results, out = sst2_run
    card = (out / "README.md").read_text()
    header = card.split("---")[1]
    assert "- mixup\n" in header and "- mixup-manifold\n" in header and "- sst2\n" in header
    assert "| mixup_method | manifold |" in card and "| mixup_alpha (λ ~ Beta(α, α)) | 0.4 |" in card
    assert "| training examples | 48 of 512 (random sample, seed 42) |" in card
    assert "| evaluation examples | 60 |" in card
    table = card.split("## Evaluation and calibration")[1]
    assert f"{results['eval_ece']:.4f}" in table and f"{results['eval_accuracy']:.4f}" in table
    assert f"(epoch {results['best_epoch']:g}, 60 examples)" in table


@pytest.mark.slow
def test_cola_headerless_input_mixup_padded_to_max(tiny_bert, tmp_path):
    results = run_script(["run_glue_mixup.py", "--task_name", "cola", "--data_dir", str(DATA / "cola"),
                          "--model_name_or_path", tiny_bert, "--mixup_method", "input", "--mixup_padding", "max",
                          "--max_seq_length", "32", "--max_train_samples", "40", "--max_eval_samples", "50",
                          "--num_train_epochs", "2", "--learning_rate", "1e-3"], tmp_path)
    check_results(results, "matthews_correlation", tmp_path, n_eval=50)
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"] is not None
    assert "eval_matthews_correlation" in state["log_history"][1]


@pytest.mark.slow
def test_rte_from_a_json_config_with_paper_defaults(tiny_bert, tmp_path):
    """RTE through the config-file form: Table 6 applies (lr 3e-5, batch 16), explicit keys win."""
    config = tmp_path / "rte.json"
    out = tmp_path / "out"
    config.write_text(json.dumps({
        "task": "rte", "data_dir": str(DATA / "rte"), "model_name_or_path": tiny_bert, "mixup_method": "cls",
        "paper_defaults": True, "num_train_epochs": 1, "max_train_samples": 32, "max_eval_samples": 40,
        "max_seq_length": 64, "output_dir": str(out), "disable_tqdm": True, "log_level": "warning"}))
    proc = subprocess.run([sys.executable, "run_glue_mixup.py", str(config)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    results = json.loads((out / "all_results.json").read_text())
    check_results(results, "accuracy", out, n_eval=40)
    card = (out / "README.md").read_text()
    assert "- learning_rate: 3e-05" in card and "- train_batch_size: 16" in card and "- num_epochs: 1" in card
    assert "- mixup-cls\n" in card and "| mixup_alpha (λ ~ Beta(α, α)) | 1.0 |" in card
    assert results["best_epoch"] == 1.0 and json.loads((out / "trainer_state.json").read_text())["global_step"] == 2


@pytest.mark.slow
def test_boolq_script(tiny_bert, tmp_path):
    """BoolQ from SuperGLUE jsonl, plus --do_predict on an unlabelled test file."""
    val = (DATA / "boolq" / "val.jsonl").read_text().splitlines()
    test = [{k: v for k, v in json.loads(line).items() if k != "label"} for line in val[-5:]]
    test_file = tmp_path / "test.jsonl"
    test_file.write_text("".join(json.dumps(row) + "\n" for row in test))
    out = tmp_path / "out"
    results = run_script(["run_boolq_mixup.py", "--train_file", str(DATA / "boolq" / "train32.jsonl"),
                          "--validation_file", str(DATA / "boolq" / "val.jsonl"), "--test_file", str(test_file),
                          "--do_train", "--do_eval", "--do_predict", "--model_name_or_path", tiny_bert,
                          "--mixup_method", "manifold", "--mixup_layers", "0,3", "--max_eval_samples", "48",
                          "--num_train_epochs", "1"], out)
    check_results(results, "accuracy", out, n_eval=48)
    assert results["train_samples"] == 32
    predicted = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert [r["idx"] for r in predicted] == [r["idx"] for r in test] and {r["label"] for r in predicted} == {-1}
    assert all(r["prediction_name"] in ("False", "True") for r in predicted)
    card = (out / "README.md").read_text()
    assert "- boolq\n" in card and "| max_seq_length | 256 |" in card and "| mixup_layers | 0,3 |" in card
    assert "| training examples | 32 (all) |" in card
    assert "| levels mixed | manifold: levels 0, 3 of a 2-block encoder" in card


@pytest.mark.slow
def test_two_process_torchrun(tiny_bert, sst2_sample_dir, tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    results = run_script(["run_glue_mixup.py", "--task", "sst2", "--data_dir", sst2_sample_dir,
                          "--model_name_or_path", tiny_bert, "--mixup_method", "cls", "--max_train_samples", "32",
                          "--max_eval_samples", "30", "--per_device_train_batch_size", "8",
                          "--num_train_epochs", "1", "--max_seq_length", "64"], tmp_path, launcher=launcher)
    check_results(results, "accuracy", tmp_path, n_eval=30)
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["global_step"] == 2  # 32 examples / (2 processes x 8): both ranks trained, as one job


@pytest.mark.slow
def test_stsb_regression(tiny_bert, tmp_path):
    """STS-B is regression (one output, MSE, Pearson picks the epoch): a small file in the GLUE
    release layout built from SST-2 sentences, with made-up scores."""
    import random

    sentences = [line.split("\t")[0] for line in (DATA / "sst2" / "dev.tsv").read_text().splitlines()[1:81]]
    rng = random.Random(0)
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    for split, rows in (("train", range(0, 40)), ("dev", range(40, 80, 2))):
        lines = [f"{i}\tmain\tf\t2012\t{i}\tnone\tnone\t{sentences[i]}\t{sentences[i ^ 1]}\t{rng.uniform(0, 5):.3f}\n"
                 for i in rows]
        (tmp_path / f"{split}.tsv").write_text(header + "".join(lines))
    out = tmp_path / "out"
    results = run_script(["run_glue_mixup.py", "--task", "stsb", "--data_dir", str(tmp_path),
                          "--model_name_or_path", tiny_bert, "--mixup_method", "cls", "--num_train_epochs", "2",
                          "--max_seq_length", "64"], out)
    for key in ("eval_pearson", "eval_spearmanr", "eval_mse", "eval_loss", "best_epoch"):
        assert math.isfinite(results[key]), key
    assert -1 <= results["eval_pearson"] <= 1 and "eval_ece" not in results
    rows = [json.loads(line) for line in (out / "eval_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(isinstance(r["prediction"], float) and "probs" not in r for r in rows)
    assert json.loads((out / "config.json").read_text())["problem_type"] == "regression"
    assert not (out / "eval_reliability_diagram.png").exists()


def test_push_to_hub_keeps_the_model_card_section(tiny_bert, sst2_sample_dir, tmp_path, monkeypatch):
    """--push_to_hub goes through Trainer.push_to_hub, which re-creates README.md: the uploaded card
    must still carry the MixUp section. The Hub is a stub recording what would be uploaded."""
    import concurrent.futures
    import types

    import transformers.trainer
    from mixup_trainer import cli

    uploads = []

    class FakeHub:
        def create_repo(self, repo_id, **kwargs):
            return types.SimpleNamespace(repo_id=repo_id)

        def upload_folder(self, repo_id, folder_path, **kwargs):
            readme = Path(folder_path, "README.md")
            uploads.append((repo_id, readme.read_text() if readme.exists() else None))
            done = concurrent.futures.Future()  # checkpoint pushes run as futures
            done.set_result(None)
            return done

    monkeypatch.setattr(transformers.trainer, "hf_api", FakeHub)
    cli.main(["--task", "sst2", "--data_dir", sst2_sample_dir, "--model_name_or_path", tiny_bert,
                         "--mixup_method", "cls", "--max_train_samples", "16", "--max_eval_samples", "16",
                         "--num_train_epochs", "1", "--max_seq_length", "32", "--push_to_hub",
                         "--hub_model_id", "someone/tiny-mixup", "--output_dir", str(tmp_path), "--disable_tqdm",
                         "true", "--report_to", "none"])
    repo, card = uploads[-1]
    assert repo == "someone/tiny-mixup" and card is not None
    assert "- mixup-cls\n" in card and "## MixUp training" in card and card.count("## MixUp training") == 1
    assert "| training examples | 16 of 512 (random sample, seed 42) |" in card
    assert "ece" in card.split("## Evaluation and calibration")[1]
