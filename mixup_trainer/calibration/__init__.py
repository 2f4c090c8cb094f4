"""Calibration and selective-prediction metrics in float64, re-exported from one module per concern.

* :mod:`.inputs`      reading and validating predictions / labels / options (shared by every function)
* :mod:`.binning`     equal-width (Guo et al., 2017: bins (m/n, (m+1)/n]) and equal-mass bins, the norms
* :mod:`.metrics`     ECE, MCE, RMSCE, classwise ECE, smECE, overconfidence, Brier, NLL, ``calibration_report``
* :mod:`.temperature` ``fit_temperature`` (temperature scaling; ``mixup_trainer.temperature_scaling`` applies it in a run)
* :mod:`.bootstrap`   seeded percentile intervals of the binned errors
* :mod:`.selective`   risk–coverage curve and AURC
* :mod:`.plotting`    reliability diagrams and risk–coverage plots (the only module that imports matplotlib)

Why not just call torchmetrics? It bins [lo, hi) (p̂ exactly on an interior edge lands one bin
higher, and p̂ = 1.0 gets an extra bin of its own) and casts the confidences to float32 (p̂ within
~1e-7 of 1 becomes 1.0). It agrees with these functions everywhere else, which the tests check.
Formulas and when to use each estimator: the metric card, ``metrics/expected_calibration_error/README.md``.

Every function takes the same inputs (``[N, C]`` probabilities, logits with ``from_logits=True``, or
``[N]`` P(class 1) of a binary task; integer labels) and raises ``ValueError`` naming the problem and
the fix for bad input; nothing here returns a number for it.

>>> from mixup_trainer.calibration import calibration_report
>>> report = calibration_report([[0.6, 0.4], [0.59, 0.41]], [0, 1])
>>> round(report.ece, 4), round(report.aurc, 4)
(0.095, 0.25)
"""

# Public constants are re-exported beside the functions; private helpers stay in their modules.
from .binning import BINNINGS  # noqa: F401
from .bootstrap import BootstrapInterval, bootstrap_calibration_error
from .inputs import (  # noqa: F401
    CONFIDENCES,
    HALF_PRECISION_EPS,
    NORMS,
    ROW_SUM_TOLERANCE,
)
from .metrics import (  # noqa: F401
    NLL_EPS,
    CalibrationReport,
    brier_score,
    calibration_report,
    classwise_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    overconfidence,
    smooth_ece,
)
from .plotting import plot_reliability_diagram, plot_risk_coverage
from .selective import augrc, aurc, risk_coverage_curve
from .temperature import TEMPERATURE_BOUNDS, fit_temperature  # noqa: F401

__all__ = [
    "BootstrapInterval",
    "CalibrationReport",
    "augrc",
    "aurc",
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
    "plot_risk_coverage",
    "risk_coverage_curve",
    "smooth_ece",
]
