"""Evaluation helpers for `transformers.Trainer`: the bundled ECE metric, a `compute_metrics` factory, and
the files a run writes of its predictions (per-example probabilities, calibration data, reliability diagram).

Hub metrics (`evaluate.load("accuracy")`) need the network, so the task metrics here come from
scikit-learn / scipy and the calibration metrics from `mixup_trainer.calibration`; everything works
offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .calibration import calibration_report, expected_calibration_error, plot_reliability_diagram, smooth_ece
from .output_dir import write_text_atomic
from .tasks import Task

__all__ = ["ECE_METRIC_PATH", "CLASSIFICATION_METRICS", "load_ece", "make_compute_metrics"]

#: Folder of the `evaluate` module, shipped as package data; `evaluate.load(str(ECE_METRIC_PATH))` works anywhere.
ECE_METRIC_PATH = Path(__file__).resolve().parent / "metrics" / "expected_calibration_error"
CLASSIFICATION_METRICS = ("accuracy", "matthews_correlation", "f1")


def load_ece(**kwargs: Any):
    """`evaluate.load` of the bundled ECE module.

    Keyword arguments go to `evaluate.load` (e.g. `experiment_id`, `keep_in_memory`) or become the
    instance's defaults (`n_bins`, `norm`, `from_logits`, `confidence`, `detailed`), e.g.
    `load_ece(norm="max", from_logits=True)`.
    """
    import evaluate  # imported here: `evaluate` pulls in `datasets`, a few seconds on first import

    return evaluate.load(str(ECE_METRIC_PATH), **kwargs)


def logits_of(predictions: Any) -> np.ndarray:
    """The logits of ``Trainer.predict`` output: the first element when the model also returned hidden
    states or attentions (a tuple), else the predictions themselves."""
    return np.asarray(predictions[0] if isinstance(predictions, (tuple, list)) else predictions)


def make_compute_metrics(metric: str = "accuracy", n_bins: int = 15) -> Callable[[Any], dict[str, float]]:
    """Build a `compute_metrics` for `Trainer`; the Trainer prefixes the keys (`eval_ece`, ...).

    Classification (predictions `[N, C]` logits, C >= 2): `accuracy` always, plus `metric` when it is
    `"matthews_correlation"` or `"f1"` (binary F1 of class 1 for C = 2, macro F1 otherwise), plus
    `ece`, `mce`, `brier`, `nll` from the logits (see `mixup_trainer.calibration`; `nll` equals the
    cross-entropy eval loss of an unmixed model), and the estimators beyond the paper's one ECE:
    `adaptive_ece` (equal-mass bins), `classwise_ece`, `smece` (relplot's smooth ECE) and
    `overconfidence` (mean confidence − accuracy: > 0 over-confident, < 0 under-confident), all with
    `n_bins` bins where they bin; and `aurc`, the area under the risk–coverage curve of selective
    prediction (lower is better: are the confident predictions the right ones?), and `augrc`, the area
    under the generalized risk–coverage curve (Traub et al., 2024; see `calibration.selective`).

    Regression (predictions `[N]` or `[N, 1]`: a `num_labels=1` head): `pearson`, `spearmanr`, `mse`,
    whatever `metric` says, and no calibration metrics.

    Tuple predictions (models that also return hidden states) use their first element, the logits.
    """
    if metric not in CLASSIFICATION_METRICS + ("pearson", "spearmanr", "mse"):
        raise ValueError(
            f"Unknown metric {metric!r}: use one of {CLASSIFICATION_METRICS} for classification, or "
            "'pearson' / 'spearmanr' / 'mse' for regression."
        )

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        if hasattr(eval_pred, "predictions"):
            predictions, labels = eval_pred.predictions, eval_pred.label_ids
        else:
            predictions, labels = eval_pred
        predictions, labels = logits_of(predictions), np.asarray(labels)

        if predictions.ndim == 1 or predictions.shape[-1] == 1:
            return _regression_metrics(predictions.reshape(-1), labels.reshape(-1))
        if metric not in CLASSIFICATION_METRICS:
            raise ValueError(
                f"metric={metric!r} is a regression metric but the predictions have shape {predictions.shape} "
                "(classification logits); choose one of " + ", ".join(CLASSIFICATION_METRICS) + "."
            )
        return _classification_metrics(predictions, labels, metric, n_bins)

    return compute_metrics


def _classification_metrics(logits: np.ndarray, labels: np.ndarray, metric: str, n_bins: int) -> dict[str, float]:
    from sklearn.metrics import f1_score, matthews_corrcoef

    report = calibration_report(logits, labels, n_bins=n_bins, from_logits=True)
    adaptive = expected_calibration_error(logits, labels, n_bins=n_bins, from_logits=True, binning="equal_mass")
    classwise = expected_calibration_error(logits, labels, n_bins=n_bins, from_logits=True, classwise=True)
    predicted = logits.argmax(axis=-1)
    out = {"accuracy": report.accuracy}
    if metric == "matthews_correlation":
        out[metric] = float(matthews_corrcoef(labels, predicted))
    elif metric == "f1":
        binary = logits.shape[-1] == 2
        out[metric] = float(f1_score(labels, predicted, average="binary" if binary else "macro"))
    out.update(ece=report.ece, mce=report.mce, brier=report.brier, nll=report.nll, adaptive_ece=adaptive,
               classwise_ece=classwise, smece=smooth_ece(logits, labels, from_logits=True),
               overconfidence=report.overconfidence, aurc=report.aurc, augrc=report.augrc)
    return out


def _regression_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    predictions, labels = predictions.astype(np.float64), labels.astype(np.float64)
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels.")
    return {
        "pearson": float(pearsonr(predictions, labels)[0]),
        "spearmanr": float(spearmanr(predictions, labels)[0]),
        "mse": float(np.mean((predictions - labels) ** 2)),
    }


# ------------------------------------------------------------------------------ prediction files
PREDICTIONS_FILE = "eval_predictions.jsonl"
TEST_PREDICTIONS_FILE = "test_predictions.jsonl"
#: With --temperature_scaling --calibration_file: the kept model's probabilities on the calibration file,
#: before T (what the comparison's ensemble fits its own T on).
CALIBRATION_PREDICTIONS_FILE = "calibration_predictions.jsonl"
DIAGRAM_FILE = "eval_reliability_diagram.png"
CALIBRATION_FILE = "eval_calibration.json"


def write_predictions(path: str, raw, logits: np.ndarray, task: Task) -> None:
    """One JSON line per example: idx, label (-1 if unknown), prediction, probs (classification)."""
    lines = []
    if task.is_regression:
        for row, value in zip(raw, logits.reshape(-1)):
            lines.append(json.dumps({"idx": row["idx"], "label": row["label"], "prediction": float(value)}))
    else:
        import torch

        probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
        for row, p in zip(raw, probs):
            pred = int(p.argmax())
            lines.append(json.dumps({"idx": row["idx"], "label": row["label"], "prediction": pred,
                                     "prediction_name": task.label_names[pred], "probs": [float(x) for x in p]}))
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def write_eval_report(out: str, raw_eval, logits: np.ndarray, task: Task, training_args, n_bins: int) -> None:
    """Per-example predictions, and for classification the reliability diagram and its bin data."""
    write_predictions(os.path.join(out, PREDICTIONS_FILE), raw_eval, logits, task)
    if task.is_regression:
        return
    report = calibration_report(logits, np.asarray(raw_eval["label"]), from_logits=True, n_bins=n_bins)
    write_text_atomic(Path(out, CALIBRATION_FILE), json.dumps(report.to_dict(), indent=2))
    title = f"{task.name}, mixup {training_args.mixup_method} (α={training_args.alpha})"
    plot_reliability_diagram(report, path=os.path.join(out, DIAGRAM_FILE), title=title)
