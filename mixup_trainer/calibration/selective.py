"""Selective prediction: the risk–coverage curve and the areas under it (AURC, AUGRC).

A model that may abstain answers only its most confident examples. Sort the N examples by top-label
confidence, most confident first; keeping the k first (k = 1..N) gives coverage k/N and risk = the
error rate of those k. AURC is the mean of the N risks (Geifman & El-Yaniv, 2017), in [0, 1], lower
is better. It asks whether the confident predictions are the right ones -- the ranking of the
confidences -- which a low ECE does not imply (ECE compares average confidence with accuracy, and
is unchanged when confidences are shuffled within a bin).

AUGRC (Traub et al., NeurIPS 2024) takes the *generalized* risk instead: the share of all N examples
that are kept and wrong, coverage × risk, so an error among the few most confident examples costs
as much as one anywhere else, rather than dominating the low-coverage end of the curve. It is the
mean of the N generalized risks, in [0, 0.5]: 0 for a classifier without errors, about
(1 − accuracy) / 2 for confidences that ignore correctness, and (1 − accuracy)² / 2 for a perfect
ranking (every error less confident than every hit), as N grows.

Ties: examples with the same confidence cannot be ranked, so within each run of tied confidences
every example counts with the run's mean error. The curve is then the expected curve over all
orders of the tied examples, and does not depend on the input order (a stable sort would rank tied
examples by their position in the input, and a shuffle of the rows would change the AURC).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .inputs import _read, _top_label


def _risk_coverage(conf: np.ndarray, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, risk) from top-label confidences and hits; ties share their run's mean error.

    Within a run of tied confidences occupying sorted positions s..t−1, the cumulative error count
    after position k is errors_before_s + (k − s) · (errors in the run) / (t − s).
    """
    n = len(conf)
    order = np.argsort(conf)[::-1]  # descending; the order inside a run of ties does not matter here
    conf, errors = conf[order], ~hits[order]
    cumulative = np.concatenate([[0.0], np.cumsum(errors, dtype=np.float64)])  # errors among the first k
    starts_run = np.empty(n, dtype=bool)
    starts_run[0] = True
    np.not_equal(conf[1:], conf[:-1], out=starts_run[1:])
    starts = np.flatnonzero(starts_run)
    ends = np.append(starts[1:], n)
    run_mean = (cumulative[ends] - cumulative[starts]) / (ends - starts)
    run = np.cumsum(starts_run) - 1  # run id of every sorted position
    k = np.arange(1, n + 1)
    errors_kept = cumulative[starts][run] + (k - starts[run]) * run_mean[run]
    return k / n, errors_kept / k


def risk_coverage_curve(predictions: Any, labels: Any, *, from_logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Risk–coverage curve of selective prediction: ``(coverage, risk)``, two float64 arrays of length N.

    Entry k−1 keeps the k most confident examples (top-label confidence, descending): coverage k/N,
    risk = their error rate. Tied confidences share their run's mean error (see the module docstring),
    so the curve does not depend on the order of the rows. Same inputs as every function here:
    ``[N, C]`` probabilities, logits with ``from_logits=True``, or ``[N]`` P(class 1) of a binary task.

    >>> coverage, risk = risk_coverage_curve([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]], [0, 0, 0, 1])
    >>> coverage.tolist(), risk.round(4).tolist()
    ([0.25, 0.5, 0.75, 1.0], [0.0, 0.5, 0.3333, 0.5])
    """
    preds, labels_arr = _read(predictions, labels, from_logits)
    conf, hits = _top_label(preds, labels_arr, from_logits, "top_label")
    return _risk_coverage(conf, hits)


def aurc(predictions: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Area under the risk–coverage curve: the mean of the N risks of :func:`risk_coverage_curve`.

    In [0, 1], lower is better; a model whose errors are all less confident than its hits reaches
    the minimum for its accuracy, and confidences that ignore correctness give about the error rate.

    >>> round(aurc([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]], [0, 0, 0, 1]), 4)  # (0 + 1/2 + 1/3 + 1/2) / 4
    0.3333
    """
    return float(risk_coverage_curve(predictions, labels, from_logits=from_logits)[1].mean())


def augrc(predictions: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Area under the generalized risk–coverage curve: the mean over k of (errors among the k most
    confident) / N, i.e. of coverage × risk of :func:`risk_coverage_curve` (ties as there).

    In [0, 0.5], lower is better (see the module docstring for its values at the extremes).

    >>> augrc([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]], [0, 0, 0, 1])  # (0 + 1 + 1 + 2) / 4 / 4
    0.25
    """
    coverage, risk = risk_coverage_curve(predictions, labels, from_logits=from_logits)
    return float((coverage * risk).mean())
