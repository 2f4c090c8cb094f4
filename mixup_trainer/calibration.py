"""Calibration metrics in float64: ECE, MCE, RMSCE, Brier score, NLL, reliability diagrams, and more.

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

Beyond the one ECE of the paper (formulas and when to use each: the metric card,
``metrics/expected_calibration_error/README.md``): ``binning="equal_mass"`` (adaptive ECE),
``classwise=True`` / :func:`classwise_calibration_error` (Kull et al., 2019), :func:`smooth_ece`
(relplot's smECE), :func:`overconfidence` (the signed gap, mean confidence − accuracy),
:func:`bootstrap_calibration_error` (seeded percentile intervals) and :func:`fit_temperature`
(temperature scaling; ``mixup_trainer.temperature`` applies it in the run scripts).

Bad input raises ``ValueError`` naming the problem and the fix; nothing here returns a number for it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BootstrapInterval",
    "CalibrationReport",
    "bootstrap_calibration_error",
    "brier_score",
    "calibration_report",
    "classwise_calibration_error",
    "expected_calibration_error",
    "fit_temperature",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "overconfidence",
    "plot_reliability_diagram",
    "smooth_ece",
]

NORMS = ("l1", "l2", "max")
CONFIDENCES = ("top_label", "positive_class")
BINNINGS = ("equal_width", "equal_mass")
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
    binning: str = "equal_width"
    overconfidence: float = float("nan")  # mean confidence − accuracy (signed; > 0: over-confident)

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


def _read(predictions: Any, labels: Any, from_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shape, dtype and label checks; return (predictions [N, C] float64, labels [N] int64).

    A 1-D input becomes two columns: P(class 1) p -> [1 − p, p], a logit z -> [0, z]. Values are not
    checked here (see :func:`_top_label`), so a float64 input is returned without a copy.
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
    labels_arr = labels_arr.astype(np.int64, copy=False)
    if half_eps and not from_logits and preds.ndim == 2:
        # bf16/fp16 rows sum to 1 only within their dtype's epsilon: check them against it, then
        # renormalise (a change below that epsilon) so that the float64 checks downstream hold.
        row_sums = preds.sum(axis=1, keepdims=True)
        worst = float(np.abs(row_sums - 1.0).max())
        if worst > half_eps:
            raise ValueError(f"probability rows must sum to 1 (within {half_eps:.3g} for {predictions.dtype}); "
                             f"the worst row is off by {worst:.3g}. Pass from_logits=True for logits.")
        preds = preds / row_sums

    if preds.ndim == 1:  # binary: P(class 1) -> [1 - p, p]; logit z -> [0, z]
        preds = np.stack([np.zeros_like(preds) if from_logits else 1.0 - preds, preds], axis=1)
    n_classes = preds.shape[1]
    if labels_arr.min() < 0 or labels_arr.max() >= n_classes:
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1} for {n_classes} classes; got values in "
            f"{labels_arr.min()}..{labels_arr.max()} (remap labels, or check predictions has one column per class)."
        )
    return preds, labels_arr


def _top_label(preds: np.ndarray, labels: np.ndarray, from_logits: bool, confidence: str):
    """Validate the values and return (confidence [N] float64, hit [N] bool) in one pass of reductions.

    This is the hot path of every estimator, so it reads the [N, C] input as few times as it can and
    copies it only for the exp of a softmax: one row sum (finite row sums <=> finite entries, since
    inf − inf and NaN propagate), one minimum (probabilities only), one fused max/argmax. The
    reductions run in torch on a zero-copy float64 view: numpy's row-wise max/argmax over a short
    last axis is ~5x slower. Ties in the argmax go to the lowest class index, as ``np.argmax``.
    Top-label confidence from logits is 1 / Σ_c exp(z_c − max z), bit for bit the max of the softmax
    that :func:`_probabilities` builds.
    """
    import torch

    with warnings.catch_warnings():  # torch warns about read-only arrays; nothing here writes to them
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(preds)
    # Only the [N, C] passes run in torch; everything on [N] vectors stays in numpy, because each
    # parallel torch op pays a thread hand-off that costs more than the op on a busy machine.
    row_sums = t.sum(dim=1).numpy()
    if not np.isfinite(row_sums).all() and not np.isfinite(preds).all():  # 2nd test: overflow of huge values
        raise ValueError("predictions contain NaN or inf: remove or fix those rows before scoring.")
    top, predicted = t.max(dim=1)
    if from_logits:
        exp = torch.exp(t - top[:, None])
        total = exp.sum(dim=1).numpy()
        conf = 1.0 / total if confidence == "top_label" else exp[:, 1].numpy() / total
    else:
        top = top.numpy()
        lowest, highest = float(t.amin()), float(top.max())
        if lowest < 0.0 or highest > 1.0:
            raise ValueError(
                f"predictions are not probabilities (values in [{lowest:.4g}, {highest:.4g}], outside [0, 1]); "
                "if these are logits pass from_logits=True."
            )
        worst = float(np.abs(row_sums - 1.0).max())
        if worst > ROW_SUM_TOLERANCE:
            raise ValueError(
                f"probability rows must sum to 1 (within {ROW_SUM_TOLERANCE}); the worst row is off by {worst:.3g}. "
                "Pass from_logits=True for logits, or normalise the rows."
            )
        conf = top if confidence == "top_label" else np.ascontiguousarray(preds[:, 1])
    if confidence == "top_label":
        return conf, predicted.numpy() == labels
    if preds.shape[1] != 2:
        raise ValueError(
            f"confidence='positive_class' needs a binary task (1-D or [N, 2] predictions), got {preds.shape[1]} "
            "classes; use confidence='top_label'."
        )
    return conf, labels == 1


def _probabilities(preds: np.ndarray, labels: np.ndarray, from_logits: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities [N, C] float64, exact log P(label) from logits or None); values already validated."""
    if not from_logits:
        return preds, None
    probs = preds - preds.max(axis=1, keepdims=True)  # max-subtraction: exp never overflows
    shifted_label = probs[np.arange(len(labels)), labels]
    np.exp(probs, out=probs)  # in place: two fewer [N, C] temporaries on large inputs
    total = probs.sum(axis=1)
    probs /= total[:, None]
    return probs, shifted_label - np.log(total)


def _prepare(predictions: Any, labels: Any, from_logits: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate inputs; return (probabilities [N, C] float64, labels [N] int64, log P(label) or None)."""
    preds, labels_arr = _read(predictions, labels, from_logits)
    _top_label(preds, labels_arr, from_logits, "top_label")  # validates the values
    probs, log_p_label = _probabilities(preds, labels_arr, from_logits)
    return probs, labels_arr, log_p_label


# ---------------------------------------------------------------------------------------- binning


def _check_binning(binning: Any) -> str:
    if binning not in BINNINGS:
        raise ValueError(f"Unknown binning {binning!r}: use 'equal_width' (Guo et al.) or 'equal_mass' (adaptive).")
    return binning


def _bin_index(conf: np.ndarray, n_bins: int, binning: str) -> tuple[np.ndarray, np.ndarray]:
    """(bin of each confidence, bin edges [n_bins + 1]).

    equal_width: bin m holds conf in (m/n, (m+1)/n], conf = 0 in bin 0. Edges are m / n_bins (each the
    float64 nearest to the exact fraction), so a confidence that *is* an edge, e.g. 0.6 = 9/15, is
    compared with exactly that number: ceil(conf · n) − 1 is off by at most one next to an edge, and
    one comparison with the edges on each side puts it right (no binary search over the edges).

    equal_mass: sort by confidence (stable: ties keep their input order); the example at sorted
    position j (0-based) goes to bin floor(j · n_bins / N). Bins are contiguous in confidence and hold
    ⌊N/n⌋ or ⌈N/n⌉ examples (empty ones only when N < n_bins); equal confidences may straddle a
    boundary. Edges, for plotting only: the lowest confidence, the midpoints between neighbouring
    bins, the highest confidence.
    """
    n = len(conf)
    if binning == "equal_width":
        edges = np.arange(n_bins + 1) / n_bins
        index = np.ceil(conf * n_bins).astype(np.intp)
        index -= 1
        np.clip(index, 0, n_bins - 1, out=index)
        index -= (conf <= edges[index]) & (index > 0)
        index += conf > edges[index + 1]
        return index, edges
    order = np.argsort(conf, kind="stable")
    index = np.empty(n, dtype=np.intp)
    index[order] = np.arange(n) * n_bins // n
    first = -(-np.arange(n_bins + 1) * n // n_bins)  # first sorted position of each bin: ceil(m·N/n)
    ordered = conf[order]
    inner = np.clip(first[1:-1], 1, n - 1) if n > 1 else np.zeros(n_bins - 1, dtype=np.intp)
    mids = (ordered[inner - 1] + ordered[inner]) / 2 if n > 1 else np.full(n_bins - 1, ordered[0])
    return index, np.concatenate([ordered[:1], mids, ordered[-1:]])


def _bin_sums(index: np.ndarray, conf: np.ndarray, hits: np.ndarray, n_bins: int):
    """(count, Σ (conf − hit)) per bin: all that the three norms need."""
    counts = np.bincount(index, minlength=n_bins)
    gaps = np.bincount(index, weights=conf - hits, minlength=n_bins)
    return counts, gaps


def _errors(counts: np.ndarray, gaps: np.ndarray, norm: str) -> np.ndarray | float:
    """Calibration error under ``norm`` from per-bin counts and summed gaps (last axis = bins).

    ECE = Σ_m |B_m|/N · |acc_m − conf_m| = Σ_m |Σ_{i∈B_m} (conf_i − hit_i)| / N; RMSCE and MCE divide by
    the counts of the non-empty bins. Works on one row of bins or on [R, n_bins] (bootstrap).
    """
    total = counts.sum(axis=-1)
    if norm == "l1":
        return np.abs(gaps).sum(axis=-1) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_gap = np.where(counts > 0, np.abs(gaps) / counts, 0.0)
    if norm == "l2":
        return np.sqrt((mean_gap * np.abs(gaps)).sum(axis=-1) / total)
    return mean_gap.max(axis=-1)


def _top_label_error(conf, hits, n_bins, norm, binning) -> float:
    index, _ = _bin_index(conf, n_bins, binning)
    if norm == "l1":  # the ECE needs only the gap sums: skip the counts
        return float(np.abs(np.bincount(index, weights=conf - hits, minlength=n_bins)).sum() / len(conf))
    return float(_errors(*_bin_sums(index, conf, hits, n_bins), norm))


# ------------------------------------------------------------------------------------- public API


def calibration_report(
    predictions: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    from_logits: bool = False,
    confidence: str = "top_label",
    binning: str = "equal_width",
) -> CalibrationReport:
    """Compute ECE, MCE, RMSCE, overconfidence, Brier score, NLL, accuracy and the per-bin reliability
    data at once (``binning``: "equal_width", the default, or "equal_mass")."""
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
    accuracy = hits.mean() if confidence == "top_label" else float((probs.argmax(axis=1) == labels_arr).mean())
    return CalibrationReport(
        ece=float(_errors(counts, gaps, "l1")),
        mce=float(_errors(counts, gaps, "max")),
        rmsce=float(_errors(counts, gaps, "l2")),
        brier=_brier(probs, labels_arr),
        nll=_nll(probs, labels_arr, log_p_label),
        accuracy=float(accuracy),
        n_samples=int(len(labels_arr)),
        n_bins=n_bins,
        confidence=confidence,
        bin_edges=edges,
        bin_counts=counts,
        bin_accuracy=bin_accuracy,
        bin_confidence=bin_confidence,
        binning=binning,
        overconfidence=float(gaps.sum() / len(labels_arr)),
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
    """ECE (norm "l1"; "l2" gives the RMS calibration error, "max" the MCE). See the module docstring.

    ``binning="equal_mass"`` gives the adaptive ECE; ``classwise=True`` the classwise ECE
    (:func:`classwise_calibration_error`), for which ``confidence`` does not apply.
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
    """MCE: the largest |accuracy − confidence| over non-empty bins (torchmetrics' norm "max")."""
    return expected_calibration_error(
        predictions, labels, n_bins=n_bins, norm="max", from_logits=from_logits, confidence=confidence
    )


def overconfidence(predictions: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Signed calibration gap: mean top-label confidence − accuracy, in [−1, 1].

    Positive: over-confident (the usual state of a fine-tuned network; MixUp and T > 1 lower it).
    Negative: under-confident (an under-trained model; MixUp pushes it further down). ECE is the
    binned version of its absolute value, so |overconfidence| <= ECE for any binning.
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


#: Search range of :func:`fit_temperature`. The optimum lies on a bound only when the NLL keeps
#: falling towards T → 0 (every calibration prediction correct: sharpening never costs) or T → ∞;
#: the fit then returns the bound with a warning rather than a degenerate 0 or inf.
TEMPERATURE_BOUNDS = (0.01, 100.0)


def fit_temperature(logits: Any, labels: Any, *, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """Temperature scaling (Guo et al., 2017): the T > 0 minimising the NLL of softmax(logits / T).

    Fit it on calibration examples that are *not* the ones you then score. Float64 throughout; the
    optimiser is L-BFGS-B on log T from T = 1 with the analytic gradient, so the result is
    deterministic. The NLL is convex in 1/T, so the minimum is unique. Dividing logits by T never
    changes the argmax: accuracy is unchanged, only confidence moves (T > 1 softens, T < 1 sharpens).

    ``logits`` is [N, C], or [N] logits of class 1 for a binary task (read as [0, z]). Raises
    ``ValueError`` for no examples, non-finite logits, or labels of a single class (the NLL of one
    class is minimised by T → 0 or ∞, whatever the model). If the optimum is on a bound of
    ``bounds`` it warns (``RuntimeWarning``) and returns the bound: when no calibration example has a
    class scored above its label (all correct), the NLL falls all the way to T → 0, and the lower
    bound is returned without optimising; a model worse than uniform on the split sends T → ∞.
    """
    from scipy.optimize import minimize

    if len(logits) == 0:
        raise ValueError("fit_temperature got no examples: the calibration split is empty; give it some examples.")
    preds, labels_arr = _read(logits, labels, from_logits=True)
    if not np.isfinite(preds).all():
        raise ValueError("logits contain NaN or inf: a temperature cannot be fitted; fix or drop those rows.")
    present = np.unique(labels_arr)
    if len(present) < 2:
        raise ValueError(
            f"every calibration example has label {present[0]}: a temperature fitted on one class only sends T "
            "to 0 or infinity. Use a calibration split that holds at least two classes (a larger "
            "--calibration_fraction, or a --calibration_file with every class)."
        )
    lo, hi = bounds
    if not 0 < lo < hi < np.inf:
        raise ValueError(f"bounds must satisfy 0 < low < high < inf, got {bounds!r}.")
    z = preds - preds.max(axis=1, keepdims=True)  # max 0 per row, so exp(β z) never overflows for β > 0
    z_label = z[np.arange(len(labels_arr)), labels_arr]
    if (z_label == 0).all():  # no class ever beats the label: every NLL term falls as T -> 0, no minimum
        warnings.warn(
            f"The temperature hit its bound T = {lo:g}: every one of the {len(z)} calibration predictions is "
            "correct, so the NLL keeps falling towards T -> 0. T is clipped to the bound; fit on more (or harder) "
            "examples for a meaningful temperature.",
            RuntimeWarning,
            stacklevel=2,
        )
        return float(lo)

    def nll_and_gradient(log_t: np.ndarray) -> tuple[float, np.ndarray]:
        beta = np.exp(-log_t[0])  # 1 / T
        e = np.exp(beta * z)
        total = e.sum(axis=1)
        nll = np.mean(np.log(total) - beta * z_label)
        d_beta = np.mean((e * z).sum(axis=1) / total - z_label)  # E_p[z] − z_label
        return float(nll), np.array([-beta * d_beta])  # dβ/d log T = −β

    result = minimize(nll_and_gradient, x0=np.zeros(1), jac=True, method="L-BFGS-B",
                      bounds=[(np.log(lo), np.log(hi))], options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 200})
    # Some prediction is wrong, so the NLL grows without bound as T -> 0 and has a minimum at T > 0;
    # it can still keep falling towards T -> infinity (a model worse than uniform on this split).
    temperature = float(np.exp(result.x[0]))
    if min(abs(result.x[0] - np.log(lo)), abs(result.x[0] - np.log(hi))) < 1e-6:
        correct, to_zero = int((z_label == 0).sum()), temperature <= lo * (1 + 1e-5)
        warnings.warn(
            f"The temperature hit its bound T = {temperature:g}: on the calibration examples the NLL keeps falling "
            f"towards T -> {'0' if to_zero else 'infinity'} ({correct} of {len(labels_arr)} predictions correct"
            f"{'' if to_zero else ': the model scores no better than uniform probabilities there'}). T is clipped "
            "to the bound; fit on more examples for a meaningful temperature.",
            RuntimeWarning,
            stacklevel=2,
        )
    return temperature


@dataclass(frozen=True)
class BootstrapInterval:
    """A bootstrap percentile interval: ``estimate`` on all examples, [``low``, ``high``] its
    ``confidence_level`` interval over ``n_resamples`` resamples drawn with ``seed``."""

    estimate: float
    low: float
    high: float
    confidence_level: float
    n_resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def bootstrap_calibration_error(
    predictions: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    binning: str = "equal_width",
    from_logits: bool = False,
    confidence: str = "top_label",
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    seed: int = 0,
    chunk_size: int | None = None,
) -> BootstrapInterval:
    """Percentile bootstrap interval of the ECE (or RMSCE/MCE): resample the N examples with
    replacement ``n_resamples`` times and take the (1 ± level)/2 quantiles of the recomputed error.

    Vectorised over resamples, in chunks of about ``chunk_size`` (default 2**22) drawn indices. The
    examples are sorted by confidence once; a chunk draws an [R, N] matrix of sorted positions, and
    every (resample, bin) pair gets a flat id r · n_bins + bin, so two ``np.bincount`` calls (counts,
    and gap sums weighted by conf − hit) give every resample's per-bin numbers at once, into R ·
    n_bins cells that stay in cache. Equal-width bins are a lookup per drawn example; equal-mass
    bins are fixed positions in each resample's sorted order, so the positions of each row are
    sorted first and bin j · n_bins // N applies to the j-th. Deterministic for a given ``seed``:
    resample r is row r of ``rng.integers(0, N, (R, N), dtype=np.int32)`` drawn chunk after chunk
    from ``np.random.default_rng(seed)``, as positions in confidence order (stable sort).
    """
    n_bins, norm = _check_n_bins(n_bins), _check_norm(norm)
    confidence, binning = _check_confidence(confidence), _check_binning(binning)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer (e.g. 1000), got {n_resamples!r}.")
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must lie in (0, 1) (e.g. 0.95), got {confidence_level!r}.")
    preds, labels_arr = _read(predictions, labels, from_logits)
    conf, hits = _top_label(preds, labels_arr, from_logits, confidence)
    estimate = _top_label_error(conf, hits, n_bins, norm, binning)  # exactly expected_calibration_error's
    order = np.argsort(conf, kind="stable")
    conf, hits = conf[order], hits[order]
    gap, n = conf - hits, len(conf)
    index, _ = _bin_index(conf, n_bins, binning)  # on sorted input, equal_mass gives j · n_bins // N

    rng = np.random.default_rng(seed)
    rows = max(1, min(n_resamples, (chunk_size or (1 << 22)) // n))
    stats = []
    for start in range(0, n_resamples, rows):
        r = min(rows, n_resamples - start)
        draws = rng.integers(0, n, size=(r, n), dtype=np.int32 if n < 2**31 else np.int64)
        offsets = (np.arange(r) * n_bins)[:, None]
        if binning == "equal_width":
            flat = (index[draws] + offsets).ravel()
        else:
            draws.sort(axis=1)
            flat = (index[None, :] + offsets).ravel()
        counts = np.bincount(flat, minlength=r * n_bins).reshape(r, n_bins)
        gaps = np.bincount(flat, weights=gap[draws].ravel(), minlength=r * n_bins).reshape(r, n_bins)
        stats.append(_errors(counts, gaps, norm))
    stats = np.concatenate(stats)
    low, high = np.quantile(stats, [(1 - confidence_level) / 2, (1 + confidence_level) / 2])
    return BootstrapInterval(estimate, float(low), float(high), float(confidence_level), int(n_resamples), int(seed))


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
    binning: str = "equal_width",
    overlay: CalibrationReport | None = None,
    names: tuple[str, str] = ("before", "after temperature scaling"),
    axes: Any = None,
):
    """Reliability diagram: per-bin accuracy bars, the gap to mean confidence, the diagonal, and
    under it a histogram of how many predictions fall in each confidence bin.

    Takes a :class:`CalibrationReport`, or predictions plus ``labels`` (then ``n_bins``,
    ``from_logits``, ``confidence``, ``binning`` apply). The gap of each bin is a red hatched bar from
    its accuracy to its mean confidence (above the blue bar: over-confident; below its top:
    under-confident). ``show_histogram`` adds the panel of per-bin counts, since a large gap in a bin
    of three examples means little. ``overlay`` (another report on the *same* examples, e.g. after
    temperature scaling) is drawn on top as a line through its bins' (mean confidence, accuracy) and
    as an outline in the histogram; ``names`` label the two. Equal-mass bins are drawn with their
    own widths. The title carries the ECE (both, with an overlay). Saves a PNG when ``path`` is
    given; returns the ``matplotlib.figure.Figure``. Uses ``Figure`` directly (Agg canvas), never
    pyplot, so it needs no display and leaves the global matplotlib state alone.
    ``axes=(ax, ax_hist)`` draws into existing axes instead (``ax_hist`` None: no histogram), e.g.
    to put several diagrams side by side.
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
            report_or_predictions, labels, n_bins=n_bins, from_logits=from_logits, confidence=confidence,
            binning=binning,
        )
    if overlay is not None and not isinstance(overlay, CalibrationReport):
        raise ValueError("overlay must be a CalibrationReport (e.g. calibration_report(logits / T, labels, ...)).")

    left, width = report.bin_edges[:-1], np.diff(report.bin_edges)
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
    first = f"{event} ({names[0]})" if overlay is not None else event
    ax.bar(left[filled], acc, width=width[filled], align="edge", color="tab:blue", edgecolor="black", label=first)
    ax.bar(left[filled], conf - acc, bottom=acc, width=width[filled], align="edge", facecolor=(1.0, 0.0, 0.0, 0.2),
           edgecolor="red", linewidth=1.0, hatch="//", label="Gap to confidence")
    if overlay is not None:
        shown = overlay.bin_counts > 0
        ax.plot(overlay.bin_confidence[shown], overlay.bin_accuracy[shown], marker="o", color="tab:orange",
                linewidth=2, label=f"{event} ({names[1]})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="Perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel=event)
    kind = "equal-mass " if report.binning == "equal_mass" else ""
    ece = f"ECE = {report.ece:.4f}" if overlay is None else f"ECE {report.ece:.4f} → {overlay.ece:.4f}"
    ax.set_title(f"{title or 'Reliability diagram'}\n{ece}  ({report.n_bins} {kind}bins, N = {report.n_samples})")
    ax.legend(loc="upper left", fontsize="small")
    xlabel = "Confidence (max probability)" if report.confidence == "top_label" else "Predicted P(class 1)"
    if ax_hist is not None:
        ax_hist.bar(left, report.bin_counts, width=width, align="edge", color="tab:gray", edgecolor="black",
                    label=names[0] if overlay is not None else None)
        if overlay is not None:
            ax_hist.stairs(overlay.bin_counts, overlay.bin_edges, color="tab:orange", linewidth=2, label=names[1])
            ax_hist.legend(loc="upper left", fontsize="small")
        ax_hist.set(ylabel="Count", xlabel=xlabel)
    else:
        ax.set_xlabel(xlabel)
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
