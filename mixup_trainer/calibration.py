"""Calibration metrics in float64 numpy: ECE, MCE, RMSCE, Brier score, NLL, reliability diagrams.

Convention (Guo et al., 2017, "On Calibration of Modern Neural Networks", and their reference code):

* confidence: the top-label confidence p̂ = max_c p_c, "hit" = (argmax_c p_c == label).
  Ties in argmax go to the lowest class index (``np.argmax``).
* ``n_bins`` equal-width bins with edges m / n_bins (m = 0..n_bins); bin m holds p̂ in
  (m/n, (m+1)/n] -- closed on the right -- and p̂ = 0 goes to the first bin.
* ECE = Σ_m |B_m|/N · |acc(B_m) − conf(B_m)|  (norm "l1"); empty bins weigh 0.
  RMSCE = sqrt(Σ_m |B_m|/N · gap_m²) (norm "l2"); MCE = max_m gap_m over non-empty bins (norm "max").
  These are torchmetrics' three norms, with its own definitions.

Why not just call torchmetrics? It bins [lo, hi) (p̂ exactly on an interior edge lands one bin
higher, and p̂ = 1.0 gets an extra bin of its own) and casts the confidences to float32 (p̂ within
~1e-7 of 1 becomes 1.0). It agrees with this module everywhere else, which the tests check.

Inputs: ``predictions`` is ``[N, C]`` probabilities or logits (``from_logits=True``), or ``[N]`` for a
binary task, read as P(class 1) (or the logit of class 1). A 1-D input is turned into two columns
``[1 − p, p]`` (logits ``[0, z]``), so a binary model gives the same numbers whichever form it is
scored in. ``labels`` is ``[N]`` integer class ids.

``confidence="positive_class"`` (binary tasks only) bins P(class 1) instead of p̂ and compares it with
the observed frequency of label 1 -- the reliability curve of ``sklearn.calibration.calibration_curve``
and what ``torchmetrics.functional.classification.binary_calibration_error`` computes (despite its
"top-label" docstring). Accuracy, Brier and NLL do not depend on this choice.

Bad input raises ``ValueError`` naming the problem and the fix; nothing here returns a number for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CalibrationReport",
    "calibration_report",
    "expected_calibration_error",
    "maximum_calibration_error",
    "brier_score",
    "negative_log_likelihood",
    "plot_reliability_diagram",
]

NORMS = ("l1", "l2", "max")
CONFIDENCES = ("top_label", "positive_class")
#: Probability rows must sum to 1 within this tolerance (float32 softmax outputs sum to 1 ± ~1e-7).
ROW_SUM_TOLERANCE = 1e-4
#: Half-precision probabilities are rounded to 8 (bfloat16) or 11 (float16) significant bits, so a
#: row of them sums to 1 only within half their machine epsilon (measured: up to 0.4 eps for softmax
#: outputs of 2..1000 classes); such inputs get their dtype's epsilon as tolerance instead.
HALF_PRECISION_EPS = {"bfloat16": 2.0**-7, "float16": 2.0**-10}
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


# ----------------------------------------------------------------------------------------- inputs


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer (e.g. 15), got {n_bins!r}.")
    return int(n_bins)


def _check_norm(norm: Any) -> str:
    if norm not in NORMS:
        raise ValueError(f"Unknown norm {norm!r}: use 'l1' (ECE), 'l2' (RMS calibration error) or 'max' (MCE).")
    return norm


def _check_confidence(confidence: Any) -> str:
    if confidence not in CONFIDENCES:
        raise ValueError(f"Unknown confidence {confidence!r}: use 'top_label' or 'positive_class' (binary tasks).")
    return confidence


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """numpy view of a list / array / torch tensor (duck-typed, so torch is not imported here)."""
    if hasattr(x, "detach"):  # torch.Tensor, possibly on GPU, with grad, or in bfloat16
        x = x.detach().cpu()
        x = x.double() if x.is_floating_point() else x
        x = x.numpy()
    try:
        return np.asarray(x)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} could not be read as an array ({err}); pass a rectangular [N, C] array.") from None


def _prepare(predictions: Any, labels: Any, from_logits: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate inputs; return (probabilities [N, C] float64, labels [N] int64, log P(label) or None).

    The third item is the exact log-softmax at the label when logits were given, else None.
    """
    half_eps = HALF_PRECISION_EPS.get(str(getattr(predictions, "dtype", "")).removeprefix("torch."))
    preds = _to_numpy(predictions, "predictions")
    if preds.dtype.kind not in "biuf":
        raise ValueError(f"predictions must be numeric (floats), got dtype {preds.dtype}.")
    preds = preds.astype(np.float64, copy=False)
    if preds.ndim not in (1, 2):
        raise ValueError(
            f"predictions must be [N, C] (one row per example) or [N] (P(class 1) of a binary task), "
            f"got shape {preds.shape}."
        )
    if preds.shape[0] == 0:
        raise ValueError("predictions is empty: calibration needs at least one example.")
    if preds.ndim == 2 and preds.shape[1] < 2:
        raise ValueError(
            f"predictions has shape {preds.shape} (a single column): for a binary task pass P(class 1) as a "
            "1-D array (predictions[:, 0]); a regression output has no calibration error."
        )
    if not np.isfinite(preds).all():
        raise ValueError("predictions contain NaN or inf: remove or fix those rows before scoring.")

    labels_arr = _to_numpy(labels, "labels")
    if labels_arr.ndim != 1 or labels_arr.shape[0] != preds.shape[0]:
        raise ValueError(
            f"labels must be a 1-D array with one class id per prediction row: predictions have "
            f"{preds.shape[0]} rows, labels have shape {labels_arr.shape}."
        )
    if labels_arr.dtype.kind == "f":
        integral = np.isfinite(labels_arr) & (labels_arr == np.round(labels_arr))
        if not integral.all():
            bad = float(labels_arr[~integral][0])
            raise ValueError(f"labels must be integer class ids (0..C-1); got non-integer values such as {bad}.")
    elif labels_arr.dtype.kind not in "biu":
        raise ValueError(f"labels must be integer class ids (0..C-1), got dtype {labels_arr.dtype}.")
    labels_arr = labels_arr.astype(np.int64)

    if preds.ndim == 1:  # binary: P(class 1) -> [1 - p, p]; logit z -> [0, z]
        preds = np.stack([np.zeros_like(preds) if from_logits else 1.0 - preds, preds], axis=1)
    n_classes = preds.shape[1]
    if labels_arr.min() < 0 or labels_arr.max() >= n_classes:
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1} for {n_classes} classes; got values in "
            f"{labels_arr.min()}..{labels_arr.max()} (remap labels, or check predictions has one column per class)."
        )

    rows = np.arange(preds.shape[0])
    if from_logits:
        probs = preds - preds.max(axis=1, keepdims=True)  # max-subtraction: exp never overflows
        shifted_label = probs[rows, labels_arr]
        np.exp(probs, out=probs)  # in place: two fewer [N, C] temporaries on large inputs
        total = probs.sum(axis=1)
        probs /= total[:, None]
        return probs, labels_arr, shifted_label - np.log(total)

    if preds.min() < 0.0 or preds.max() > 1.0:
        raise ValueError(
            f"predictions are not probabilities (values in [{preds.min():.4g}, {preds.max():.4g}], outside [0, 1]); "
            "if these are logits pass from_logits=True."
        )
    row_sums = preds.sum(axis=1)
    worst = np.abs(row_sums - 1.0).max()
    tolerance = max(ROW_SUM_TOLERANCE, half_eps or 0.0)
    if worst > tolerance:
        raise ValueError(
            f"probability rows must sum to 1 (within {tolerance:.3g}); the worst row is off by {worst:.3g}. "
            "Pass from_logits=True for logits, or normalise the rows."
        )
    return preds, labels_arr, None


def _confidences(probs: np.ndarray, labels: np.ndarray, confidence: str) -> tuple[np.ndarray, np.ndarray]:
    """(confidence per example, hit per example as 0/1 float) for the chosen confidence kind."""
    if confidence == "top_label":
        predicted = probs.argmax(axis=1)
        return probs[np.arange(len(probs)), predicted], (predicted == labels).astype(np.float64)
    if probs.shape[1] != 2:
        raise ValueError(
            f"confidence='positive_class' needs a binary task (1-D or [N, 2] predictions), got {probs.shape[1]} "
            "classes; use confidence='top_label'."
        )
    return probs[:, 1], (labels == 1).astype(np.float64)


# ---------------------------------------------------------------------------------------- binning


def _bin(conf: np.ndarray, hits: np.ndarray, n_bins: int):
    """Edges, counts, and per-bin sums of confidence and hits; bin m holds conf in (m/n, (m+1)/n].

    Edges are m / n_bins (each the float64 nearest to the exact fraction), so a confidence that *is*
    an edge, e.g. 0.6 = 9/15, is compared with exactly that number.
    """
    edges = np.arange(n_bins + 1) / n_bins
    # side="left": first j with edges[j] >= conf, so edges[j-1] < conf <= edges[j] -> bin j-1; conf 0 -> bin 0.
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    sum_conf = np.bincount(index, weights=conf, minlength=n_bins)
    sum_hits = np.bincount(index, weights=hits, minlength=n_bins)
    return edges, counts, sum_conf, sum_hits


def _errors(counts: np.ndarray, sum_conf: np.ndarray, sum_hits: np.ndarray) -> dict[str, float]:
    filled = counts > 0
    weight = counts[filled] / counts.sum()
    gap = np.abs(sum_hits[filled] - sum_conf[filled]) / counts[filled]
    return {"l1": float(weight @ gap), "l2": float(np.sqrt(weight @ gap**2)), "max": float(gap.max())}


# ------------------------------------------------------------------------------------- public API


def calibration_report(
    predictions: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    from_logits: bool = False,
    confidence: str = "top_label",
) -> CalibrationReport:
    """Compute ECE, MCE, RMSCE, Brier score, NLL, accuracy and the per-bin reliability data at once."""
    n_bins, confidence = _check_n_bins(n_bins), _check_confidence(confidence)
    probs, labels_arr, log_p_label = _prepare(predictions, labels, from_logits)
    conf, hits = _confidences(probs, labels_arr, confidence)
    edges, counts, sum_conf, sum_hits = _bin(conf, hits, n_bins)
    errors = _errors(counts, sum_conf, sum_hits)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins -> NaN, by design
        bin_accuracy, bin_confidence = sum_hits / counts, sum_conf / counts
    top1 = probs.argmax(axis=1) == labels_arr
    return CalibrationReport(
        ece=errors["l1"],
        mce=errors["max"],
        rmsce=errors["l2"],
        brier=_brier(probs, labels_arr),
        nll=_nll(probs, labels_arr, log_p_label),
        accuracy=float(top1.mean()),
        n_samples=int(len(labels_arr)),
        n_bins=n_bins,
        confidence=confidence,
        bin_edges=edges,
        bin_counts=counts,
        bin_accuracy=bin_accuracy,
        bin_confidence=bin_confidence,
    )


def expected_calibration_error(
    predictions: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    from_logits: bool = False,
    confidence: str = "top_label",
) -> float:
    """ECE (norm "l1"; "l2" gives the RMS calibration error, "max" the MCE). See the module docstring."""
    n_bins, norm, confidence = _check_n_bins(n_bins), _check_norm(norm), _check_confidence(confidence)
    probs, labels_arr, _ = _prepare(predictions, labels, from_logits)
    conf, hits = _confidences(probs, labels_arr, confidence)
    _, counts, sum_conf, sum_hits = _bin(conf, hits, n_bins)
    return _errors(counts, sum_conf, sum_hits)[norm]


def maximum_calibration_error(
    predictions: Any, labels: Any, *, n_bins: int = 15, from_logits: bool = False, confidence: str = "top_label"
) -> float:
    """MCE: the largest |accuracy − confidence| over non-empty bins (torchmetrics' norm "max")."""
    return expected_calibration_error(
        predictions, labels, n_bins=n_bins, norm="max", from_logits=from_logits, confidence=confidence
    )


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
    """
    probs, labels_arr, _ = _prepare(predictions, labels, from_logits)
    return _brier(probs, labels_arr)


def _nll(probs: np.ndarray, labels: np.ndarray, log_p_label: np.ndarray | None) -> float:
    if log_p_label is None:
        log_p_label = np.log(np.clip(probs[np.arange(len(labels)), labels], NLL_EPS, 1.0))
    return float(-log_p_label.mean())


def negative_log_likelihood(predictions: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Mean −log P(label). From logits: the exact log-softmax (= cross-entropy loss). From
    probabilities: P(label) is clipped below at ``NLL_EPS`` (2.2e-16) so a zero gives ≈36.04, not inf."""
    probs, labels_arr, log_p_label = _prepare(predictions, labels, from_logits)
    return _nll(probs, labels_arr, log_p_label)


# --------------------------------------------------------------------------------------- plotting


def plot_reliability_diagram(
    report_or_predictions: Any,
    labels: Any = None,
    path: Any = None,
    title: str | None = None,
    *,
    n_bins: int = 15,
    from_logits: bool = False,
    confidence: str = "top_label",
    show_histogram: bool = True,
    axes: Any = None,
):
    """Reliability diagram: per-bin accuracy bars, the gap to mean confidence, the diagonal.

    Takes a :class:`CalibrationReport`, or predictions plus ``labels`` (then ``n_bins``,
    ``from_logits``, ``confidence`` apply). The gap of each bin is a red hatched bar from its accuracy
    to its mean confidence (above the blue bar: over-confident; below its top: under-confident).
    ``show_histogram`` adds a panel of per-bin counts, since a large gap in a bin of three examples
    means little. The title carries the ECE. Saves a PNG when ``path`` is given; returns the
    ``matplotlib.figure.Figure``. Uses ``Figure`` directly (Agg canvas), never pyplot, so it needs no
    display and leaves the global matplotlib state alone. ``axes=(ax, ax_hist)`` draws into existing
    axes instead (``ax_hist`` None: no histogram), e.g. to put several diagrams side by side.
    """
    from matplotlib.figure import Figure

    if isinstance(report_or_predictions, CalibrationReport):
        if labels is not None:
            raise ValueError("labels given together with a CalibrationReport: pass one or the other.")
        report = report_or_predictions
    else:
        if labels is None:
            raise ValueError("labels are required when plotting from predictions (or pass a CalibrationReport).")
        report = calibration_report(
            report_or_predictions, labels, n_bins=n_bins, from_logits=from_logits, confidence=confidence
        )

    left, width = report.bin_edges[:-1], 1.0 / report.n_bins
    filled = report.bin_counts > 0
    acc, conf = report.bin_accuracy[filled], report.bin_confidence[filled]

    if axes is not None:
        ax, ax_hist = axes
        fig = ax.figure
    elif show_histogram:
        fig = Figure(figsize=(5.0, 6.4), layout="constrained")
        ax, ax_hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    else:
        fig = Figure(figsize=(5.0, 5.0), layout="constrained")
        ax, ax_hist = fig.subplots(), None
    event = "Accuracy" if report.confidence == "top_label" else "Frequency of class 1"
    ax.bar(left[filled], acc, width=width, align="edge", color="tab:blue", edgecolor="black", label=event)
    ax.bar(left[filled], conf - acc, bottom=acc, width=width, align="edge", facecolor=(1.0, 0.0, 0.0, 0.2),
           edgecolor="red", linewidth=1.0, hatch="//", label="Gap to confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="Perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel=event)
    ax.set_title(
        f"{title or 'Reliability diagram'}\nECE = {report.ece:.4f}  ({report.n_bins} bins, N = {report.n_samples})"
    )
    ax.legend(loc="upper left")
    xlabel = "Confidence (max probability)" if report.confidence == "top_label" else "Predicted P(class 1)"
    if ax_hist is not None:
        ax_hist.bar(left, report.bin_counts, width=width, align="edge", color="tab:gray", edgecolor="black")
        ax_hist.set(ylabel="Count", xlabel=xlabel)
    else:
        ax.set_xlabel(xlabel)
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
