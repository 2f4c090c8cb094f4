"""Reading and validating the inputs of every calibration function: predictions, labels, options.

``predictions`` is ``[N, C]`` probabilities or logits (``from_logits=True``), or ``[N]`` for a binary
task, read as P(class 1) (or the logit of class 1). A 1-D input is turned into two columns
``[1 − p, p]`` (logits ``[0, z]``), so a binary model gives the same numbers whichever form it is
scored in. ``labels`` is ``[N]`` integer class ids. Lists, numpy arrays and torch tensors (on any
device, with grad, in any float dtype) are accepted; everything is computed in float64.

Probability rows must sum to 1 within ``ROW_SUM_TOLERANCE``, except half-precision ones: a bf16 or
fp16 tensor/array gets its dtype's epsilon, and so does a *list* whose values are all exactly
representable in bf16 (or fp16) -- the dtype is lost in a list (``evaluate`` and JSON hand over
lists), but the values still show it. Such rows are renormalised, a change below that epsilon.

Bad input raises ``ValueError`` naming the problem and the fix; nothing here returns a number for it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

NORMS = ("l1", "l2", "max")
CONFIDENCES = ("top_label", "positive_class")
#: Probability rows must sum to 1 within this tolerance (float32 softmax outputs sum to 1 ± ~1e-7).
ROW_SUM_TOLERANCE = 1e-4
#: Half-precision probabilities are rounded to 8 (bfloat16) or 11 (float16) significant bits, so a
#: row of them sums to 1 only within half their machine epsilon (measured: up to 0.4 eps for softmax
#: outputs of 2..1000 classes); such inputs get their dtype's epsilon as tolerance instead.
HALF_PRECISION_EPS = {"bfloat16": 2.0**-7, "float16": 2.0**-10}
_warned = set()  # the kinds of input already warned about (once per process, like transformers' warning_once)


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


def _half_precision_of_list(preds: np.ndarray) -> str | None:
    """"bfloat16" or "float16" when every value of a list input is exactly representable in that
    dtype (bfloat16: a float32 whose low 16 bits are zero), else None: a list has no dtype, but
    half-precision values keep their shape through float64 and JSON."""
    with np.errstate(over="ignore"):
        single = preds.astype(np.float32)
        if (single == preds).all() and not (single.view(np.uint32) & 0xFFFF).any():
            return "bfloat16"
        if (preds.astype(np.float16) == preds).all():
            return "float16"
    return None


def _renormalise_half_precision(predictions: Any, preds: np.ndarray) -> np.ndarray:
    """Rows of bf16/fp16 probabilities sum to 1 only within their dtype's epsilon: check them
    against it and renormalise (a change below that epsilon) so that the float64 checks downstream
    hold. A tensor or array says so by its dtype (always renormalised); a list is read as half
    precision only when its rows miss the float tolerance and its values fit bf16 or fp16 exactly
    (warned once). Anything else is returned unchanged, for the strict check in :func:`_top_label`.
    """
    name = str(getattr(predictions, "dtype", "")).removeprefix("torch.")
    if name not in HALF_PRECISION_EPS and not isinstance(predictions, (list, tuple)):
        return preds
    row_sums = preds.sum(axis=1, keepdims=True)
    worst = float(np.abs(row_sums - 1.0).max())
    if name not in HALF_PRECISION_EPS:  # a list: guess from the values, only when the rows need it
        if not worst > ROW_SUM_TOLERANCE:  # (also NaN: left to the NaN check)
            return preds
        name = _half_precision_of_list(preds)
        if name is None:
            return preds
        if worst <= HALF_PRECISION_EPS[name] and name not in _warned:
            _warned.add(name)
            warnings.warn(
                f"Probability rows given as a list sum to 1 only within {name} rounding (worst off by {worst:.3g}); "
                f"they are read as {name} probabilities and renormalised. Pass the tensor itself (its dtype says "
                "so) or float32 probabilities to avoid this guess. (Shown once.)",
                UserWarning,
                stacklevel=4,
            )
    eps = HALF_PRECISION_EPS[name]
    if worst > eps:
        raise ValueError(f"probability rows must sum to 1 (within {eps:.3g} for {name}); the worst row is off by "
                         f"{worst:.3g}. Pass from_logits=True for logits.")
    return preds / row_sums


def _read(predictions: Any, labels: Any, from_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shape, dtype and label checks; return (predictions [N, C] float64, labels [N] int64).

    A 1-D input becomes two columns: P(class 1) p -> [1 − p, p], a logit z -> [0, z]. Values are not
    checked here (see :func:`_top_label`), so a float64 input is returned without a copy.
    """
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
    if not from_logits and preds.ndim == 2:
        preds = _renormalise_half_precision(predictions, preds)

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
