"""The ensemble of a comparison's seeds (mixup_trainer/ensemble.py) on hand-made run folders: which
examples it scores, where its temperature comes from, and what it refuses. The ensemble rows of real
comparisons: tests/test_compare.py and tests/test_shift_eval.py."""

import json

import numpy as np
import pytest
from ensemble_oracle import hand_ensemble, is_nll_minimum, nll_at

from mixup_trainer.ensemble import ensemble_metrics
from mixup_trainer.tasks import get_task

N = 60


def write_run(folder, probs, labels, idx=None, file="eval_predictions.jsonl"):
    folder.mkdir(exist_ok=True)
    idx = list(range(len(labels))) if idx is None else idx
    (folder / file).write_text("".join(json.dumps({"idx": i, "label": int(y), "probs": p.tolist()}) + "\n"
                                       for i, y, p in zip(idx, labels, probs)))


def random_probs(rng, labels, classes=2):
    """Over-confident members that are right more often than not: T has a finite optimum."""
    z = rng.normal(scale=3.0, size=(len(labels), classes))
    z[np.arange(len(labels)), labels] += 2.0
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, N)
    folders = [tmp_path / f"manifold-seed{s}" for s in range(3)]
    for folder in folders:
        write_run(folder, random_probs(rng, labels), labels)
    return folders, labels


def test_without_temperature_every_example_is_scored(runs):
    folders, _ = runs
    got = ensemble_metrics(folders, get_task("sst2"), n_bins=15)
    assert got["members"] == 3 and got["eval_samples"] == N and "temperature" not in got
    for key, value in hand_ensemble(folders).items():
        assert got[f"eval_{key}"] == pytest.approx(value, abs=1e-9), key


def test_a_calibration_split_fits_t_on_its_rows_and_scores_the_others(runs):
    """The first seed's split: T minimises the ensemble's NLL on its calibration rows, and every number,
    before and after T, is taken on its scored rows (as a run's are)."""
    folders, _ = runs
    cal, scored = list(range(0, N, 2)), list(range(1, N, 2))
    (folders[0] / "eval_temperature_scaling.json").write_text(json.dumps(
        {"calibration_source": "random 0.5 of the evaluation set", "calibration_idx": cal, "scored_idx": scored}))
    got = ensemble_metrics(folders, get_task("sst2"), n_bins=15)
    t = got["temperature"]
    file = "eval_predictions.jsonl"
    assert nll_at(folders, t, file, cal) < min(nll_at(folders, t * 0.99, file, cal), nll_at(folders, t * 1.01, file, cal))
    assert got["eval_samples"] == len(scored)
    for key, value in hand_ensemble(folders, rows=scored).items():
        assert got[f"eval_{key}"] == pytest.approx(value, abs=1e-9), key
    for key, value in hand_ensemble(folders, rows=scored, temperature=t).items():
        assert got[f"eval_ts_{key}"] == pytest.approx(value, abs=1e-9), key


def test_a_calibration_file_fits_t_on_the_members_calibration_predictions(runs):
    folders, labels = runs
    rng = np.random.default_rng(1)
    cal_labels = rng.integers(0, 2, 40)
    for folder in folders:
        write_run(folder, random_probs(rng, cal_labels), cal_labels, idx=list(range(40)), file="calibration_predictions.jsonl")
        (folder / "eval_temperature_scaling.json").write_text(json.dumps(
            {"calibration_source": "file cal.tsv (40 examples)", "calibration_idx": list(range(40)),
             "scored_idx": list(range(N))}))
    got = ensemble_metrics(folders, get_task("sst2"), n_bins=15)
    t, file = got["temperature"], "calibration_predictions.jsonl"
    assert nll_at(folders, t, file) < min(nll_at(folders, t * 0.99, file), nll_at(folders, t * 1.01, file))
    assert got["eval_samples"] == N
    for key, value in hand_ensemble(folders, temperature=t).items():
        assert got[f"eval_ts_{key}"] == pytest.approx(value, abs=1e-9), key
    (folders[1] / file).unlink()  # a run written before the file existed: no after-T numbers
    got = ensemble_metrics(folders, get_task("sst2"), n_bins=15)
    assert "temperature" not in got and not any(k.startswith("eval_ts_") for k in got) and got["eval_samples"] == N


def test_members_that_scored_other_examples_are_refused(runs):
    folders, labels = runs
    write_run(folders[2], random_probs(np.random.default_rng(2), labels), labels, idx=list(range(1, N + 1)))
    with pytest.raises(ValueError, match="lists other examples .* an ensemble averages the same examples"):
        ensemble_metrics(folders, get_task("sst2"), n_bins=15)


def test_a_probability_every_member_rounded_to_zero_stays_finite(tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    probs = np.array([[1.0, 0.0], [0.3, 0.7], [0.6, 0.4]])
    for folder in folders:
        write_run(folder, probs, np.array([0, 1, 1]))
    got = ensemble_metrics(folders, get_task("sst2"), n_bins=15)
    assert np.isfinite(got["eval_nll"]) and got["eval_accuracy"] == pytest.approx(2 / 3)
