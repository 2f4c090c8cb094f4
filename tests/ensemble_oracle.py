"""An ensemble scored by hand, independently of mixup_trainer's metric code: the test oracle of the
comparison's ensemble rows (tests/test_compare.py, tests/test_ensemble.py, tests/test_shift_eval.py)."""

import json
from pathlib import Path

import numpy as np


def read(path: Path) -> tuple[list, np.ndarray, np.ndarray]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["idx"] for r in rows], np.asarray([r["probs"] for r in rows]), np.asarray([r["label"] for r in rows])


def scores(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict:
    """accuracy, NLL, ECE (n_bins equal-width bins, closed on the right, 0 in the first), signed gap
    (mean confidence − accuracy) and AURC (mean over k of the error rate of the k most confident, ties sharing their mean error) and
    AUGRC (mean over k of coverage k/n times that error rate)."""
    n = len(labels)
    conf, hits = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(hits[inside].mean() - conf[inside].mean())
    order = np.argsort(-conf, kind="stable")
    c, errors = conf[order], (~hits[order]).astype(np.float64)
    risks = []
    for k in range(1, n + 1):  # tied confidences share their run's mean error: the order inside a tie is arbitrary
        start, stop = np.searchsorted(-c, -c[k - 1], "left"), np.searchsorted(-c, -c[k - 1], "right")
        risks.append((errors[:start].sum() + (k - start) * errors[start:stop].mean()) / k)
    return {"accuracy": hits.mean(), "nll": -np.mean(np.log(probs[np.arange(n), labels])), "ece": ece,
            "overconfidence": conf.mean() - hits.mean(),
            "aurc": np.mean(risks), "augrc": np.mean(np.asarray(risks) * np.arange(1, n + 1) / n)}


def mean_probs(folders, file: str = "eval_predictions.jsonl"):
    members = [read(Path(folder) / file) for folder in folders]
    return np.mean([probs for _, probs, _ in members], axis=0), members[0][2]


def hand_ensemble(folders, file: str = "eval_predictions.jsonl", rows=None, temperature: float = 1.0) -> dict:
    """The members' probabilities averaged per example (only ``rows`` if given), optionally divided in
    log space by a temperature, then scored."""
    probs, labels = mean_probs(folders, file)
    if rows is not None:
        probs, labels = probs[rows], labels[rows]
    if temperature != 1.0:
        scaled = np.log(probs) / temperature
        probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
    return scores(probs, labels)


def nll_at(folders, temperature: float, file: str, rows=None) -> float:
    probs, labels = mean_probs(folders, file)
    if rows is not None:
        probs, labels = probs[rows], labels[rows]
    z = np.log(probs) / temperature
    z -= z.max(axis=1, keepdims=True)
    return float(-np.mean(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(axis=1))))


def is_nll_minimum(folders, temperature: float, file: str, rows=None, bounds=(0.01, 100.0)) -> bool:
    """T minimises the ensemble's NLL on ``file`` against T ± 1 %, or sits at a bound the NLL falls towards
    (an ensemble no better than chance there: its NLL keeps falling as T grows)."""
    here = nll_at(folders, temperature, file, rows)
    lower_ok = temperature <= bounds[0] * 1.0001 or here <= nll_at(folders, temperature * 0.99, file, rows)
    upper_ok = temperature >= bounds[1] * 0.9999 or here <= nll_at(folders, temperature * 1.01, file, rows)
    return lower_ok and upper_ok
