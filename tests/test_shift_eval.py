"""Calibration under a change of domain (``--shift_eval_files``), the label-smoothing arm of
``--compare`` and the temperature-scaling split, checked before training: a tiny random BERT trained
on real SST-2 and scored on the real Yelp and Amazon sentences of ../shared/data/sentiment-shift."""

import json

import numpy as np
import pytest
from test_run_scripts import DATA, run_script

from mixup_trainer.calibration import aurc, expected_calibration_error, negative_log_likelihood

SHIFT = DATA / "sentiment-shift"
SHIFT_FILES = f"yelp={SHIFT / 'yelp.tsv'},amazon={SHIFT / 'amazon.tsv'}"


def base_args(model, data_dir):
    return ["run_glue_mixup.py", "--task", "sst2", "--data_dir", str(data_dir), "--model_name_or_path", model,
            "--max_train_samples", "64", "--max_eval_samples", "80", "--num_train_epochs", "1",
            "--learning_rate", "1e-3", "--max_seq_length", "48", "--per_device_eval_batch_size", "128"]


@pytest.fixture(scope="module")
def shifted_run(tiny_bert, sst2_sample_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("shift")
    results = run_script([*base_args(tiny_bert, sst2_sample_dir), "--mixup_method", "manifold", "--temperature_scaling",
                          "--shift_eval_files", SHIFT_FILES], out)
    return out, results


def read_predictions(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return np.asarray([r["probs"] for r in rows]), np.asarray([r["label"] for r in rows])


@pytest.mark.slow
def test_every_shifted_key_is_written_and_equals_its_predictions_file(shifted_run):
    out, results = shifted_run
    for name in ("yelp", "amazon"):
        for key in ("accuracy", "loss", "ece", "aurc", "overconfidence", "nll", "ts_ece", "ts_nll"):
            assert np.isfinite(results[f"{name}_{key}"]), (name, key)
        assert results[f"{name}_samples"] == 1000
        probs, labels = read_predictions(out / f"{name}_predictions.jsonl")
        assert len(labels) == 1000 and (labels == np.asarray([0, 1])[:, None]).any(axis=1).all()
        assert results[f"{name}_accuracy"] == pytest.approx(float((probs.argmax(1) == labels).mean()), abs=1e-12)
        assert results[f"{name}_aurc"] == pytest.approx(aurc(probs, labels), abs=1e-9)
        assert results[f"{name}_ece"] == pytest.approx(expected_calibration_error(probs, labels), abs=1e-6)
        # T is the in-domain one, applied unchanged: softmax(log p / T) = softmax(z / T)
        scaled = np.log(probs) / results["temperature"]
        assert results[f"{name}_ts_nll"] == pytest.approx(negative_log_likelihood(scaled, labels, from_logits=True),
                                                          abs=1e-6)
        assert results[f"{name}_ts_accuracy"] == results[f"{name}_accuracy"]  # T never changes the argmax
    card = (out / "README.md").read_text()
    assert "## Under a change of domain" in card and "| yelp | 1000 |" in card and "| amazon | 1000 |" in card


@pytest.mark.parametrize("value, message", [
    ("yelp", "is not NAME=PATH"),
    ("eval={yelp}", "cannot name a shifted set"),
    ("1yelp={yelp}", "cannot name a shifted set"),
    ("yelp={yelp},yelp={amazon}", "given twice"),
    ("yelp=/no/such/file.tsv", "no such file"),
])
def test_bad_shift_files_refused_at_parse_time_in_one_line(value, message, tmp_path, capsys):
    from mixup_trainer.cli import run

    value = value.format(yelp=SHIFT / "yelp.tsv", amazon=SHIFT / "amazon.tsv")
    argv = ["--task", "sst2", "--model_name_or_path", "no/such-model", "--output_dir", str(tmp_path / "run"),
            "--shift_eval_files", value]
    assert run(argv=argv) == 2  # a command-line mistake
    (line,) = capsys.readouterr().err.splitlines()
    assert "--shift_eval_files" in line and message in line
    assert not (tmp_path / "run").exists()


def test_malformed_shift_file_refused_before_the_model_loads(tmp_path):
    """The file exists but has no label column: refused while the data is read, before any model loads
    (the model name does not exist, so getting further would raise another error)."""
    from mixup_trainer import cli
    from mixup_trainer.tasks import DataFormatError

    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tstars\ngood\t5\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv: missing column\(s\).*label"):
        cli.main(["--task", "sst2", "--data_dir", str(DATA / "sst2"), "--model_name_or_path", "no/such-model",
                  "--max_train_samples", "8", "--output_dir", str(tmp_path / "run"), "--shift_eval_files",
                  f"other={bad}"])


def test_temperature_split_with_one_class_refused_before_training(tmp_path):
    """A calibration split holding one class cannot fit T: refused once the data is read, before the model
    loads (so before training), not after the training it would have wasted."""
    from mixup_trainer import cli

    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nfine\t1\ngreat\t1\nawful\t0\n")
    with pytest.raises(ValueError, match=r"calibration split .* holds only class [01]: a temperature"):
        cli.main(["--task", "sst2", "--data_dir", str(tmp_path), "--model_name_or_path", "no/such-model",
                  "--output_dir", str(tmp_path / "run"), "--temperature_scaling", "--calibration_fraction", "0.34",
                  "--calibration_seed", "0"])


def test_label_smoothing_arm(tmp_path):
    from mixup_trainer.cli import parse_args
    from mixup_trainer.compare import run_args

    base = ["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path)]
    args = parse_args([*base, "--compare", "manifold,ls0.1"])
    assert args.run.compare_methods == ["none", "manifold", "ls0.1"]
    smoothed = run_args(args, "ls0.1", 3, tmp_path / "ls0.1-seed3").training
    assert (smoothed.mixup_method, smoothed.label_smoothing_factor) == ("none", 0.1)
    mixed = run_args(args, "manifold", 3, tmp_path / "manifold-seed3").training
    assert (mixed.mixup_method, mixed.label_smoothing_factor) == ("manifold", 0.0)
    for bad, match in ((["--compare", "ls1.5"], "unknown arm"), (["--compare", "lsx"], "unknown arm"),
                       (["--compare", "ls0.1", "--label_smoothing_factor", "0.2"], "--label_smoothing_factor")):
        with pytest.raises(ValueError, match=match):
            parse_args([*base, *bad])


@pytest.mark.slow
def test_comparison_reports_label_smoothing_and_the_shifted_sets(tiny_bert, sst2_sample_dir, tmp_path):
    from mixup_trainer import cli

    out = tmp_path / "cmp"
    dev = (DATA / "sst2" / "dev.tsv").read_text().splitlines()
    (tmp_path / "cal.tsv").write_text("\n".join([dev[0], *dev[101:301]]) + "\n")  # not among the 80 scored
    cli.main([*base_args(tiny_bert, sst2_sample_dir)[1:], "--compare", "ls0.1", "--shift_eval_files", f"yelp={SHIFT / 'yelp.tsv'}",
              "--compare_seeds", "1,2", "--output_dir", str(out), "--disable_tqdm", "true",
              "--temperature_scaling", "--calibration_file", str(tmp_path / "cal.tsv")])
    report = json.loads((out / "comparison.json").read_text())
    assert report["methods"] == ["none", "ls0.1"]
    runs = {(r["method"], r["seed"]): r["best"] for r in report["runs"]}
    diffs = [runs["ls0.1", s]["yelp_ece"] - runs["none", s]["yelp_ece"] for s in (1, 2)]
    paired = report["summary"]["shift_yelp"]["paired"]["ls0.1"]["yelp_ece"]
    assert paired["mean"] == pytest.approx(np.mean(diffs)) and paired["n"] == 2
    assert report["summary"]["best"]["mean"]["none"]["eval_aurc"]["n"] == 2
    text = (out / "comparison.md").read_text()
    assert "## Under shift: yelp (1000 examples, best epoch)" in text and "| ls0.1 − none | 2 |" in text
    assert (out / "risk_coverage.png").read_bytes()[:4] == b"\x89PNG"
    assert "pool the seeds' predictions" in text
    # the seeds' ensemble, with its own T fitted on the mean calibration probabilities, in-domain and under shift
    from ensemble_oracle import hand_ensemble, is_nll_minimum

    for method in ("none", "ls0.1"):
        folders = [out / f"{method}-seed{s}" for s in (1, 2)]
        got = report["summary"]["ensemble"][method]
        t, cal = got["temperature"], "calibration_predictions.jsonl"
        assert is_nll_minimum(folders, t, cal)
        for prefix, file, temperature in (("eval_", "eval_predictions.jsonl", 1.0), ("eval_ts_", "eval_predictions.jsonl", t),
                                          ("yelp_", "yelp_predictions.jsonl", 1.0), ("yelp_ts_", "yelp_predictions.jsonl", t)):
            for key, value in hand_ensemble(folders, file, temperature=temperature).items():
                assert got[prefix + key] == pytest.approx(value, abs=1e-9), (method, prefix, key)
    assert "### After temperature scaling" in text and "### Under shift: yelp (1000 examples)" in text
    assert not [k for k in report["summary"]["ensemble"]["none"] if k.startswith("calibration_")]  # not a shifted set
