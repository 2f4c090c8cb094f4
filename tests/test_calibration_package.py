"""The calibration package as a whole: every name the single module had stays importable from
``mixup_trainer.calibration``, each submodule says what it owns, and the ``>>>`` examples in the
docstrings run and print what they show."""

import doctest
import importlib

import pytest

import mixup_trainer
from mixup_trainer import calibration

SUBMODULES = ("inputs", "binning", "metrics", "temperature", "bootstrap", "selective", "plotting")

#: Every public name defined in mixup_trainer/calibration.py before it became a package (constants
#: included); its private helpers now live in the submodules only.
NAMES_OF_THE_SINGLE_MODULE = (
    "BINNINGS", "BootstrapInterval", "CONFIDENCES", "CalibrationReport", "HALF_PRECISION_EPS", "NLL_EPS", "NORMS",
    "ROW_SUM_TOLERANCE", "TEMPERATURE_BOUNDS", "bootstrap_calibration_error", "brier_score", "calibration_report",
    "classwise_calibration_error", "expected_calibration_error", "fit_temperature", "maximum_calibration_error",
    "negative_log_likelihood", "overconfidence", "plot_reliability_diagram", "smooth_ece",
)


def test_every_name_of_the_single_module_is_still_importable():
    missing = [name for name in NAMES_OF_THE_SINGLE_MODULE if not hasattr(calibration, name)]
    assert not missing
    assert not [name for name in vars(calibration) if name.startswith("_") and not name.startswith("__")
                and callable(getattr(calibration, name))]  # no private helper re-exported
    for name in calibration.__all__:  # the public names also at the top of the package
        assert getattr(mixup_trainer, name) is getattr(calibration, name), name
    for name in ("aurc", "risk_coverage_curve", "plot_risk_coverage"):
        assert name in calibration.__all__ and name in mixup_trainer.__all__


def test_only_plotting_uses_matplotlib():
    import inspect

    users = [name for name in SUBMODULES
             if "matplotlib" in inspect.getsource(importlib.import_module(f"mixup_trainer.calibration.{name}"))]
    assert users == ["plotting"]


@pytest.mark.parametrize("name", ("__init__",) + SUBMODULES)
def test_docstring_examples_run(name):
    module = calibration if name == "__init__" else importlib.import_module(f"mixup_trainer.calibration.{name}")
    assert module.__doc__.splitlines()[0].strip(), "the first docstring line says what the module owns"
    results = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.failed == 0
    if name not in ("inputs", "binning"):  # these two hold only private helpers
        assert results.attempted > 0, f"{name} has no >>> example"
