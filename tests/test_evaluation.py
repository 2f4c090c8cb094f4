"""Tests for mixup_trainer.evaluation: the compute_metrics factory, and one real Trainer.evaluate()."""

import math
import os

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import f1_score, matthews_corrcoef

from mixup_trainer.calibration import augrc, aurc, calibration_report, expected_calibration_error, smooth_ece
from mixup_trainer.evaluation import ECE_METRIC_PATH, make_compute_metrics

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class _EvalPrediction:
    """Stand-in for transformers.EvalPrediction (same attribute names), to keep these tests import-light."""

    def __init__(self, predictions, label_ids):
        self.predictions, self.label_ids = predictions, label_ids


def _logits(n=64, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, n_classes)) * 2).astype(np.float32), rng.integers(0, n_classes, n)


@pytest.mark.parametrize("metric", ["accuracy", "matthews_correlation", "f1"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_metrics(metric, n_classes):
    logits, labels = _logits(n_classes=n_classes)
    out = make_compute_metrics(metric, n_bins=10)(_EvalPrediction(logits, labels))
    report = calibration_report(logits, labels, n_bins=10, from_logits=True)
    predicted = logits.argmax(-1)
    expected = {"accuracy": float((predicted == labels).mean()), "ece": report.ece, "mce": report.mce,
                "brier": report.brier, "nll": report.nll,
                "adaptive_ece": expected_calibration_error(logits, labels, n_bins=10, from_logits=True,
                                                           binning="equal_mass"),
                "classwise_ece": expected_calibration_error(logits, labels, n_bins=10, from_logits=True,
                                                            classwise=True),
                "smece": smooth_ece(logits, labels, from_logits=True),
                "aurc": aurc(logits, labels, from_logits=True), "augrc": augrc(logits, labels, from_logits=True)}
    # the signed gap, from an independent softmax: mean top-label confidence − accuracy
    expected["overconfidence"] = softmax(logits.astype(np.float64), axis=-1).max(-1).mean() - expected["accuracy"]
    if metric == "matthews_correlation":
        expected[metric] = matthews_corrcoef(labels, predicted)
    if metric == "f1":
        expected[metric] = f1_score(labels, predicted, average="binary" if n_classes == 2 else "macro")
    assert out == pytest.approx(expected) and set(out) == set(expected)


def test_tuple_predictions_and_plain_tuples():
    logits, labels = _logits()
    compute = make_compute_metrics()
    plain = compute(_EvalPrediction(logits, labels))
    assert compute(_EvalPrediction((logits, np.zeros((64, 5, 8))), labels)) == plain
    assert compute((logits, labels)) == plain


def test_regression_metrics():
    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 5, 50).astype(np.float32)
    preds = labels + rng.normal(size=50).astype(np.float32)
    for shaped in (preds[:, None], preds):
        out = make_compute_metrics("pearson")(_EvalPrediction(shaped, labels))
        assert set(out) == {"pearson", "spearmanr", "mse"}
        assert out["pearson"] == pytest.approx(np.corrcoef(preds, labels)[0, 1], abs=1e-6)
        assert out["mse"] == pytest.approx(np.mean((preds.astype(float) - labels) ** 2))
        assert 0.5 < out["spearmanr"] <= 1


def test_bad_metric_arguments():
    with pytest.raises(ValueError, match="Unknown metric 'bleu'"):
        make_compute_metrics("bleu")
    logits, labels = _logits()
    with pytest.raises(ValueError, match="regression metric"):
        make_compute_metrics("pearson")(_EvalPrediction(logits, labels))


def test_metric_folder_ships_module_and_card():
    assert (ECE_METRIC_PATH / "expected_calibration_error.py").is_file()
    card = (ECE_METRIC_PATH / "README.md").read_text()
    assert card.startswith("---\n") and "(lo, hi]" in card


@pytest.mark.slow
def test_trainer_evaluate_reports_calibration(tmp_path):
    """A real Trainer.evaluate() on a tiny random BERT: the eval_ keys exist, lie in range, and NLL = eval_loss."""
    import datasets
    import torch
    from testing_utils import make_tiny_config
    from transformers import BertForSequenceClassification, Trainer, TrainingArguments

    torch.manual_seed(0)
    model = BertForSequenceClassification(make_tiny_config(num_labels=3, hidden_dropout_prob=0.1,
                                                           attention_probs_dropout_prob=0.1))
    with torch.no_grad():  # a random model is near-uniform; a larger head spreads confidences over bins
        model.classifier.weight.mul_(30.0)
    rng = np.random.default_rng(0)
    n, length = 40, 12  # 40 rows at batch 16: the last batch is short, which must not skew the means
    data = datasets.Dataset.from_dict({
        "input_ids": rng.integers(1, 100, (n, length)).tolist(),
        "attention_mask": np.ones((n, length), dtype=int).tolist(),
        "labels": rng.integers(0, 3, n).tolist(),
    })
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=16, report_to=[], use_cpu=True)
    trainer = Trainer(model=model, args=args, eval_dataset=data, compute_metrics=make_compute_metrics("f1"))
    metrics = trainer.evaluate()

    for key in ("eval_accuracy", "eval_f1", "eval_ece", "eval_mce", "eval_aurc"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["eval_ece"] <= metrics["eval_mce"]
    assert 0.0 <= metrics["eval_brier"] <= 2.0
    # nll is the mean cross-entropy in float64; eval_loss the model's float32 per-batch mean, batch-weighted
    assert metrics["eval_nll"] == pytest.approx(metrics["eval_loss"], abs=1e-5)
    assert math.isfinite(metrics["eval_nll"]) and metrics["eval_nll"] > 0
