"""Temperature scaling (Guo et al., 2017): fitting the one T > 0 that minimises the NLL of softmax(z / T).

``mixup_trainer.temperature_scaling`` applies the fitted T in the run scripts (and folds it into the saved head).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .inputs import _read

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

    Below, 3 of 4 predictions are right, each with logit margin 4 (P = 0.982: over-confident); the
    NLL is lowest where σ(4 / T) = 3/4, i.e. T = 4 / log 3 ≈ 3.641.

    >>> round(fit_temperature([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 0.0]], [0, 0, 1, 1]), 3)
    3.641
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
