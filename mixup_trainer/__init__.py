"""mixup-trainer: MixUp (CLS, Input, Manifold) for Hugging Face Trainer, plus calibration metrics."""

import os

# Before torch loads its OpenMP runtime: idle OpenMP threads sleep instead of spinning. GNU OpenMP spins
# by default, which on a busy machine (a laptop, a shared box, two runs side by side) burns several times
# the CPU time for the same work. An explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: Public name -> the module that defines it. Imported on first use (PEP 562), so that the run scripts
#: parse their command line, and refuse a mistyped one, before the trainer, datasets and models load.
_EXPORTS = {
    "MixUpTrainingArguments": "arguments",
    **dict.fromkeys(("BootstrapInterval", "CalibrationReport", "augrc", "aurc", "bootstrap_calibration_error",
                     "brier_score", "calibration_report", "classwise_calibration_error", "expected_calibration_error",
                     "fit_temperature", "maximum_calibration_error", "negative_log_likelihood", "overconfidence",
                     "plot_reliability_diagram", "plot_risk_coverage", "risk_coverage_curve", "smooth_ece"),
                    "calibration"),
    "MixUpDataCollator": "collator",
    "MixUpHooks": "hooks", "get_or_attach_hooks": "hooks",
    **dict.fromkeys(("MixUpPlan", "SimilarityKernel", "align_for_mixing", "draw_plan", "mix", "pad_for_mixing",
                     "regmix_plan", "soft_targets"), "mixing"),
    "ECE_METRIC_PATH": "evaluation", "load_ece": "evaluation", "make_compute_metrics": "evaluation",
    "MixUpBertForSequenceClassification": "modeling",
    "MixUpTrainer": "trainer",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__version__ = "0.1.0"

__all__ = [
    "BootstrapInterval",
    "CalibrationReport",
    "augrc",
    "aurc",
    "bootstrap_calibration_error",
    "classwise_calibration_error",
    "fit_temperature",
    "overconfidence",
    "smooth_ece",
    "ECE_METRIC_PATH",
    "brier_score",
    "calibration_report",
    "expected_calibration_error",
    "load_ece",
    "make_compute_metrics",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "plot_reliability_diagram",
    "plot_risk_coverage",
    "risk_coverage_curve",
    "MixUpBertForSequenceClassification",
    "MixUpDataCollator",
    "MixUpHooks",
    "MixUpPlan",
    "MixUpTrainer",
    "MixUpTrainingArguments",
    "align_for_mixing",
    "draw_plan",
    "get_or_attach_hooks",
    "mix",
    "pad_for_mixing",
    "soft_targets",
]
