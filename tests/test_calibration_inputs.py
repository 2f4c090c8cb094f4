"""Input robustness: half-precision probabilities handed over as lists (the dtype lost, e.g. through
`evaluate`), and the `evaluate` ECE module after a call that failed."""

import os
import uuid
import warnings

import pytest
import torch

from mixup_trainer.calibration import (
    calibration_report,
    expected_calibration_error,
    inputs,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _warn_afresh(monkeypatch):
    """The half-precision warning is shown once per process; each test starts as a fresh process."""
    monkeypatch.setattr(inputs, "_warned", set())


def _half_softmax(dtype, n=2000, n_classes=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, n_classes, generator=generator) * 4
    labels = torch.randint(0, n_classes, (n,), generator=generator)
    probs = torch.softmax(logits.to(dtype), dim=1)
    assert (probs.double().sum(1) - 1).abs().max() > 1e-4  # the float tolerance would refuse these rows
    return probs, labels


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_rows_as_lists_are_read_like_the_tensor(dtype):
    probs, labels = _half_softmax(dtype)
    name = str(dtype).removeprefix("torch.")
    with pytest.warns(UserWarning, match=f"read as {name} probabilities and renormalised"):
        from_list = calibration_report(probs.tolist(), labels.tolist())
    from_tensor = calibration_report(probs, labels)  # the dtype says so: no guess, no warning
    for key in ("ece", "mce", "brier", "nll", "accuracy", "aurc"):
        assert getattr(from_list, key) == pytest.approx(getattr(from_tensor, key), abs=1e-12), key
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # shown once
        assert expected_calibration_error(probs.tolist(), labels.tolist()) == pytest.approx(from_tensor.ece)


def test_lists_that_are_not_half_precision_rounding_are_still_refused():
    probs, labels = _half_softmax(torch.bfloat16, n=200)
    rows = probs.tolist()
    rows[0] = [2 * v for v in rows[0]]  # bf16 values (doubling keeps them exact), but the row sums to 2
    with pytest.raises(ValueError, match=r"must sum to 1 \(within 0.00781 for bfloat16\)"):
        calibration_report(rows, labels.tolist())
    # off by 0.005 (inside bf16 rounding) but 0.3 and 0.695 are not bf16 values: not rounding, refused
    with pytest.raises(ValueError, match=r"must sum to 1 \(within 0.0001\)"):
        calibration_report([[0.3, 0.695], [0.5, 0.5]], [0, 1])
    with pytest.raises(ValueError, match="sum to 1"):  # the long-standing refusal of a list row off by 0.1
        calibration_report([[0.5, 0.4], [0.5, 0.5]], [0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rows within the float tolerance: no guess, no warning
        assert calibration_report([[0.6, 0.4], [0.59, 0.41]], [0, 1]).ece == pytest.approx(0.095)


# ---------------------------------------------------------------------------------- the evaluate module


@pytest.fixture(params=[True, False], ids=["in_memory", "cache_file"])
def fresh_ece_module(request):
    from mixup_trainer.evaluation import load_ece

    # a fresh experiment id: the check for left-over cache files sees only this test's files
    module = load_ece(keep_in_memory=request.param, experiment_id=f"robustness-{uuid.uuid4().hex}")
    yield module
    for name in os.listdir(module.data_dir):  # evaluate leaves its (empty) lock files behind
        if name.startswith(module.experiment_id):
            os.remove(os.path.join(module.data_dir, name))


def _left_over_rows(module):
    """Arrow files of this module's experiment still in the cache (a finished call removes its own)."""
    return [f for f in os.listdir(module.data_dir) if f.startswith(module.experiment_id) and f.endswith(".arrow")]


@pytest.mark.parametrize("predictions, references, message", [
    ([0.4, [0.5, 0.5]], [0, 1], "don't match the expected format"),  # the first row fixes the form, the second breaks it
    ([[0.5, 0.5], [0.5, 0.5]], [0], "Mismatch in the number"),
    ([[2.0, -1.0]], [0], "not probabilities"),  # refused by the arithmetic, after the rows were stored
    ([[0.5, 0.5]], [0.5], "integer class ids"),
    ([], [], "is empty"),
])
def test_a_failed_call_leaves_the_module_ready_for_the_next(fresh_ece_module, predictions, references, message):
    with pytest.raises(ValueError, match=message) as failure:
        fresh_ece_module.compute(predictions=predictions, references=references)
    assert "discarded its pending batches" in str(getattr(failure.value, "__notes__", ""))
    for _ in range(2):
        out = fresh_ece_module.compute(predictions=[[0.6, 0.4], [0.59, 0.41]], references=[0, 1])
        assert out["expected_calibration_error"] == pytest.approx(0.095)
    assert _left_over_rows(fresh_ece_module) == []


def test_a_failed_batch_discards_the_pending_ones(fresh_ece_module):
    fresh_ece_module.add_batch(predictions=[[0.9, 0.1]], references=[1])
    with pytest.raises(ValueError, match="don't match the expected format"):
        fresh_ece_module.add_batch(predictions=[0.4], references=[0])  # one float per row after rows of two
    assert len(fresh_ece_module) == 0
    out = fresh_ece_module.compute(predictions=[[0.6, 0.4], [0.59, 0.41]], references=[0, 1])
    assert out["expected_calibration_error"] == pytest.approx(0.095)  # the [0.9, 0.1] row is not in it


def test_half_precision_lists_through_the_module(fresh_ece_module):
    probs, labels = _half_softmax(torch.bfloat16, n=500)
    with pytest.warns(UserWarning, match="read as bfloat16"):
        out = fresh_ece_module.compute(predictions=probs.tolist(), references=labels.tolist(), detailed=True)
    report = calibration_report(probs, labels)
    assert out["expected_calibration_error"] == pytest.approx(report.ece, abs=1e-12)
    assert out["aurc"] == pytest.approx(report.aurc, abs=1e-12)
