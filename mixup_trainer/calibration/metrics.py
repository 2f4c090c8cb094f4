"""The calibration estimators: ECE / MCE / RMSCE (either binning), classwise ECE, smECE, overconfidence,
Brier score, NLL, and ``calibration_report`` with all of them at once.

Confidence is the top-label confidence p̂ = max_c p_c, "hit" = (argmax_c p_c == label); ties in the
argmax go to the lowest class index (``np.argmax``). Binning and norms: :mod:`.binning`; inputs:
:mod:`.inputs`. ``confidence="positive_class"`` (binary tasks only) bins P(class 1) instead of p̂ and
compares it with the observed frequency of label 1 -- the reliability curve of
``sklearn.calibration.calibration_curve`` and what
``torchmetrics.functional.classification.binary_calibration_error`` computes (despite its "top-label"
docstring). Accuracy, Brier, NLL and AURC do not depend on this choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .binning import _bin_index, _bin_sums, _check_binning, _errors, _top_label_error
from .inputs import (
    _check_confidence,
    _check_n_bins,
    _check_norm,
    _prepare,
    _probabilities,
    _read,
    _top_label,
)
from .selective import _risk_coverage

#: NLL clips P(label) from below at machine epsilon when *probabilities* are given, so a confident
#: miss (P(label) = 0) costs −log(2.2e-16) ≈ 36.04 instead of inf; this is sklearn's ``log_loss``
#: clipping for float64. From logits NLL is the exact log-softmax (no clipping), i.e. what
#: ``torch.nn.functional.cross_entropy`` returns on the same logits.
NLL_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class CalibrationReport:
    """Every calibration number for one set of predictions, plus the per-bin data for plots.

    Per-bin arrays have length ``n_bins``; ``bin_accuracy`` is the fraction of hits in the bin
    (top-label: predicted class correct; positive_class: label == 1) and ``bin_confidence`` the mean
    confidence; both are NaN for empty bins, which carry no weight.
    """

    ece: float  # norm "l1"
    mce: float  # norm "max"
    rmsce: float  # norm "l2"
    brier: float  # mean over examples of Σ_c (p_c − onehot_c)², in [0, 2]
    nll: float  # mean −log P(label)
    accuracy: float  # top-1 accuracy
    n_samples: int
    n_bins: int
    confidence: str
    bin_edges: np.ndarray
    bin_counts: np.ndarray
    bin_accuracy: np.ndarray
    bin_confidence: np.ndarray
    binning: str = "equal_width"
    overconfidence: float = float("nan")  # mean confidence − accuracy (signed; > 0: over-confident)
    aurc: float = float("nan")  # area under the top-label risk–coverage curve (selective.py), whatever ``confidence``
    augrc: float = float("nan")  # area under the generalized risk–coverage curve (selective.py), top label

    def calibration_error(self, norm: str = "l1") -> float:
        """The calibration error under ``norm`` ("l1" = ECE, "l2" = RMSCE, "max" = MCE)."""
        return {"l1": self.ece, "l2": self.rmsce, "max": self.mce}[_check_norm(norm)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (arrays as lists, NaN of empty bins as None)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                value = [None if np.isnan(v) else v for v in value.astype(float).tolist()]
                if key == "bin_counts":
                    value = [int(v) for v in value]
            out[key] = value
        return out


def calibration_report(
    predictions: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    from_logits: bool = False,
    confidence: str = "top_label",
    binning: str = "equal_width",
) -> CalibrationReport:
    """Compute ECE, MCE, RMSCE, overconfidence, Brier score, NLL, accuracy, AURC and the per-bin
    reliability data at once (``binning``: "equal_width", the default, or "equal_mass").

    One validation and one softmax serve every number, so this is cheaper than the thin functions
    called one by one.

    >>> report = calibration_report([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]], [0, 0, 1], n_bins=10)
    >>> round(report.ece, 4), round(report.mce, 4), report.accuracy, report.bin_counts[6:9].tolist()
    (0.2, 0.3, 1.0, [1, 1, 1])
    """
    n_bins, confidence, binning = _check_n_bins(n_bins), _check_confidence(confidence), _check_binning(binning)
    preds, labels_arr = _read(predictions, labels, from_logits)
    conf, hits = _top_label(preds, labels_arr, from_logits, confidence)
    probs, log_p_label = _probabilities(preds, labels_arr, from_logits)
    index, edges = _bin_index(conf, n_bins, binning)
    counts, gaps = _bin_sums(index, conf, hits, n_bins)
    sum_conf = np.bincount(index, weights=conf, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins -> NaN, by design
        bin_confidence = sum_conf / counts
        bin_accuracy = (sum_conf - gaps) / counts
    if confidence == "top_label":
        top_conf, top_hits = conf, hits
    else:  # the same numbers _top_label gives for "top_label" (the max of these probabilities, bit for bit)
        top_conf, top_hits = probs.max(axis=1), probs.argmax(axis=1) == labels_arr
    coverage, risk = _risk_coverage(top_conf, top_hits)
    return CalibrationReport(
        ece=float(_errors(counts, gaps, "l1")),
        mce=float(_errors(counts, gaps, "max")),
        rmsce=float(_errors(counts, gaps, "l2")),
        brier=_brier(probs, labels_arr),
        nll=_nll(probs, labels_arr, log_p_label),
        accuracy=float(top_hits.mean()),
        n_samples=int(len(labels_arr)),
        n_bins=n_bins,
        confidence=confidence,
        bin_edges=edges,
        bin_counts=counts,
        bin_accuracy=bin_accuracy,
        bin_confidence=bin_confidence,
        binning=binning,
        overconfidence=float(gaps.sum() / len(labels_arr)),
        aurc=float(risk.mean()),
        augrc=float((coverage * risk).mean()),
    )


def expected_calibration_error(
    predictions: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    from_logits: bool = False,
    confidence: str = "top_label",
    binning: str = "equal_width",
    classwise: bool = False,
) -> float:
    """ECE (norm "l1"; "l2" gives the RMS calibration error, "max" the MCE). Bins and norms: :mod:`.binning`.

    ``binning="equal_mass"`` gives the adaptive ECE; ``classwise=True`` the classwise ECE
    (:func:`classwise_calibration_error`), for which ``confidence`` does not apply.

    The vector that tells (lo, hi] bins from torchmetrics' [lo, hi): 0.6 = 9/15 is a bin edge, so it
    shares bin 8 with 0.59 (gaps 0.6 − 1 and 0.59 − 0 average to 0.095); [lo, hi) would give 0.495.

    >>> round(expected_calibration_error([[0.6, 0.4], [0.59, 0.41]], [0, 1]), 4)
    0.095
    >>> round(expected_calibration_error([0.4, 0.41], [0, 1]), 4)  # the same model as P(class 1)
    0.095
    """
    n_bins, norm = _check_n_bins(n_bins), _check_norm(norm)
    confidence, binning = _check_confidence(confidence), _check_binning(binning)
    if classwise:
        if confidence != "top_label":
            raise ValueError(
                "classwise=True bins every class's probability; confidence='positive_class' does not apply."
            )
        return classwise_calibration_error(
            predictions, labels, n_bins=n_bins, norm=norm, from_logits=from_logits, binning=binning
        )
    preds, labels_arr = _read(predictions, labels, from_logits)
    conf, hits = _top_label(preds, labels_arr, from_logits, confidence)
    return _top_label_error(conf, hits, n_bins, norm, binning)


def classwise_calibration_error(
    predictions: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    from_logits: bool = False,
    binning: str = "equal_width",
) -> float:
    """Classwise ECE (Kull et al., 2019): the mean over classes c of the binned calibration error of
    P(c) against the event y = c,  (1/C) Σ_c Σ_m |B_cm|/N · |freq_c(B_cm) − mean P(c)(B_cm)|.

    Every class's probability is binned over all N examples (not only where c is the top label), so
    it sees the calibration of the whole probability vector. A 1-D input is [1 − p, p].

    Class 0 below: P(0) = 0.9, 0.8, 0.3 against y = 0: 1, 1, 0 (gaps 0.1, 0.2, 0.3 in three bins: 0.2);
    class 1: P(1) = 0.1, 0.2, 0.7 against 0, 0, 1 (gaps 0.1, 0.2, 0.3: 0.2); the mean is 0.2.

    >>> round(classwise_calibration_error([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]], [0, 0, 1], n_bins=10), 4)
    0.2
    """
    n_bins, norm, binning = _check_n_bins(n_bins), _check_norm(norm), _check_binning(binning)
    probs, labels_arr, _ = _prepare(predictions, labels, from_logits)
    errors = [
        _top_label_error(np.ascontiguousarray(probs[:, c]), labels_arr == c, n_bins, norm, binning)
        for c in range(probs.shape[1])
    ]
    return float(np.mean(errors))


def maximum_calibration_error(
    predictions: Any, labels: Any, *, n_bins: int = 15, from_logits: bool = False, confidence: str = "top_label"
) -> float:
    """MCE: the largest |accuracy − confidence| over non-empty bins (torchmetrics' norm "max").

    >>> round(maximum_calibration_error([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]], [0, 0, 1], n_bins=10), 4)
    0.3
    """
    return expected_calibration_error(
        predictions, labels, n_bins=n_bins, norm="max", from_logits=from_logits, confidence=confidence
    )


def overconfidence(predictions: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Signed calibration gap: mean top-label confidence − accuracy, in [−1, 1].

    Positive: over-confident (the usual state of a fine-tuned network; MixUp and T > 1 lower it).
    Negative: under-confident (an under-trained model; MixUp pushes it further down). ECE is the
    binned version of its absolute value, so |overconfidence| <= ECE for any binning.

    >>> round(overconfidence([[0.9, 0.1], [0.6, 0.4]], [0, 1]), 4)  # mean confidence 0.75, accuracy 0.5
    0.25
    """
    preds, labels_arr = _read(predictions, labels, from_logits)
    conf, hits = _top_label(preds, labels_arr, from_logits, "top_label")
    return float(conf.mean() - hits.mean())


def smooth_ece(probs_or_logits: Any, labels: Any, *, from_logits: bool = False) -> float:
    """smECE (Błasiok & Nakkiran, 2023) of the top-label confidence, computed by ``relplot.smECE``.

    A kernel-smoothed calibration error: the residuals (conf − hit) are smoothed with a Gaussian
    kernel (reflected at 0 and 1) over the confidence axis, with the bandwidth σ chosen by relplot
    as the fixed point σ = smECE_σ; no bins to choose. Same number as
    ``relplot.smECE(*relplot.multiclass_logits_to_confidences(logits, labels))``. Pass
    ``from_logits=True`` for logits, as with every function here.
    """
    import relplot

    preds, labels_arr = _read(probs_or_logits, labels, from_logits)
    conf, hits = _top_label(preds, labels_arr, from_logits, "top_label")
    return float(relplot.smECE(conf, hits.astype(np.float64)))


def _brier(probs: np.ndarray, labels: np.ndarray) -> float:
    diff = probs.copy()
    diff[np.arange(len(labels)), labels] -= 1.0
    return float(np.einsum("ij,ij->", diff, diff) / len(labels))


def brier_score(predictions: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Multiclass Brier score: mean over examples of Σ_c (p_c − onehot(label)_c)², in [0, 2].

    This is Brier's (1950) original definition, used by Guo et al. and by
    ``sklearn.metrics.brier_score_loss(..., scale_by_half=False)``. For a binary task it is twice
    sklearn's default binary Brier score, mean (P(class 1) − label)²; a 1-D and a two-column input of
    the same model give the same value.

    >>> round(brier_score([[0.9, 0.1], [0.3, 0.7]], [0, 0]), 4)  # ((0.1² + 0.1²) + (0.7² + 0.7²)) / 2
    0.5
    """
    probs, labels_arr, _ = _prepare(predictions, labels, from_logits)
    return _brier(probs, labels_arr)


def _nll(probs: np.ndarray, labels: np.ndarray, log_p_label: np.ndarray | None) -> float:
    if log_p_label is None:
        log_p_label = np.log(np.clip(probs[np.arange(len(labels)), labels], NLL_EPS, 1.0))
    return float(-log_p_label.mean())


def negative_log_likelihood(predictions: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Mean −log P(label). From logits: the exact log-softmax (= cross-entropy loss). From
    probabilities: P(label) is clipped below at ``NLL_EPS`` (2.2e-16) so a zero gives ≈36.04, not inf.

    >>> round(negative_log_likelihood([[0.5, 0.5], [0.5, 0.5]], [0, 1]), 4)  # log 2
    0.6931
    >>> round(negative_log_likelihood([[0.0, 0.0]], [1], from_logits=True), 4)  # the same from logits
    0.6931
    """
    probs, labels_arr, log_p_label = _prepare(predictions, labels, from_logits)
    return _nll(probs, labels_arr, log_p_label)
