"""Tests for mixup_trainer.calibration and the bundled `evaluate` ECE module.

Oracles: torchmetrics on random inputs kept away from the two places where it differs by design
((lo, hi] vs [lo, hi) binning, float32 confidences), hand-computed vectors for those places,
scikit-learn for Brier and NLL.
"""

import math
import os

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from mixup_trainer.calibration import (
    NLL_EPS,
    CalibrationReport,
    brier_score,
    calibration_report,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    plot_reliability_diagram,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BIN_COUNTS = (1, 2, 3, 5, 7, 10, 15, 20, 33)
MARGIN = 1e-5  # keep confidences this far from every bin edge (incl. 0 and 1): float32 moves them < 1e-7
SEEDS = range(12)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """On tiny tensors torch's 2-thread pool costs ~1 ms per op here (x10 the op); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- random inputs, made safe


def _edge_distance(conf):
    """Distance of each confidence to the nearest edge m/n over every n in BIN_COUNTS (0 and 1 included)."""
    return np.min([np.abs(conf * n - np.round(conf * n)) / n for n in BIN_COUNTS], axis=0)


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _random_multiclass(seed, n=400):
    """Logits, probabilities and labels whose top-label confidences are safe for torchmetrics."""
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 8))
    logits = rng.normal(size=(n, n_classes)) * rng.uniform(0.3, 5.0) + rng.normal(size=n_classes)
    probs = _softmax(logits)
    top2 = np.sort(probs, axis=1)[:, -2:]
    keep = (_edge_distance(top2[:, 1]) > MARGIN) & (top2[:, 1] - top2[:, 0] > MARGIN)  # no argmax near-ties
    logits, probs = logits[keep], probs[keep]
    # labels: the argmax 60% of the time, else uniform -> a mix of correct and wrong in most bins
    labels = np.where(rng.random(len(probs)) < 0.6, probs.argmax(1), rng.integers(0, n_classes, len(probs)))
    # the generator's guarantees, checked rather than assumed
    conf = probs.max(axis=1)
    assert len(probs) > n // 2 and _edge_distance(conf).min() > MARGIN
    assert (logits < 0).any() or (logits > 1).any()  # torchmetrics only softmaxes inputs outside [0, 1]
    return logits, probs, labels


def _random_binary(seed, n=400):
    """P(class 1) in (0, 1) away from every edge; labels drawn from a miscalibrated P."""
    rng = np.random.default_rng(1000 + seed)
    p = rng.beta(*rng.uniform(0.3, 3.0, size=2), size=n)
    p = p[(_edge_distance(p) > MARGIN) & (_edge_distance(np.maximum(p, 1 - p)) > MARGIN) & (np.abs(2 * p - 1) > MARGIN)]
    labels = (rng.random(len(p)) < p ** rng.uniform(0.5, 2.0)).astype(np.int64)
    assert len(p) > n // 2 and _edge_distance(p).min() > MARGIN
    return p, labels


def _tm_multiclass(preds, labels, n_bins, norm):
    preds = torch.from_numpy(np.asarray(preds, dtype=np.float64))
    out = multiclass_calibration_error(preds, torch.from_numpy(labels), preds.shape[1], n_bins=n_bins, norm=norm)
    return float(out)


# ------------------------------------------------------------------------------ agreement with torchmetrics


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("form", ["probs", "logits"])
@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_matches_torchmetrics(seed, form, norm):
    logits, probs, labels = _random_multiclass(seed)
    preds = probs if form == "probs" else logits
    for n_bins in BIN_COUNTS:
        ours = expected_calibration_error(preds, labels, n_bins=n_bins, norm=norm, from_logits=form == "logits")
        assert ours == pytest.approx(_tm_multiclass(preds, labels, n_bins, norm), abs=1e-6), n_bins


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("form", ["probs", "logits"])
@pytest.mark.parametrize("seed", SEEDS)
def test_binary_matches_torchmetrics(seed, form, norm):
    """1-D input: top-label ECE = torchmetrics multiclass on [1-p, p]; positive-class ECE = binary_calibration_error."""
    p, labels = _random_binary(seed)
    preds = p if form == "probs" else np.log(p) - np.log1p(-p)  # logit of P(class 1)
    kw = dict(norm=norm, from_logits=form == "logits")
    for n_bins in BIN_COUNTS:
        top = expected_calibration_error(preds, labels, n_bins=n_bins, **kw)
        assert top == pytest.approx(_tm_multiclass(np.stack([1 - p, p], 1), labels, n_bins, norm), abs=1e-6)
        positive = expected_calibration_error(preds, labels, n_bins=n_bins, confidence="positive_class", **kw)
        oracle = binary_calibration_error(torch.from_numpy(preds), torch.from_numpy(labels), n_bins=n_bins, norm=norm)
        assert positive == pytest.approx(float(oracle), abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_one_dimensional_and_two_column_inputs_agree(seed):
    p, labels = _random_binary(seed)
    logit = np.log(p) - np.log1p(-p)
    one_col = calibration_report(p, labels)
    forms = [(np.stack([1 - p, p], 1), False), (logit, True), (np.stack([-logit / 2, logit / 2], 1), True)]
    for preds, from_logits in forms:
        other = calibration_report(preds, labels, from_logits=from_logits)
        for field in ("ece", "mce", "rmsce", "brier", "nll", "accuracy"):
            assert getattr(other, field) == pytest.approx(getattr(one_col, field), abs=1e-12), field
        np.testing.assert_array_equal(other.bin_counts, one_col.bin_counts)


def test_report_is_consistent_with_thin_functions():
    logits, probs, labels = _random_multiclass(0)
    r = calibration_report(probs, labels, n_bins=10)
    assert isinstance(r, CalibrationReport) and r.bin_counts.sum() == len(labels) == r.n_samples
    assert r.ece == expected_calibration_error(probs, labels, n_bins=10)
    assert r.mce == maximum_calibration_error(probs, labels, n_bins=10)
    assert r.rmsce == expected_calibration_error(probs, labels, n_bins=10, norm="l2")
    assert r.brier == brier_score(probs, labels) and r.nll == negative_log_likelihood(probs, labels)
    assert r.calibration_error("max") == r.mce and r.ece <= r.rmsce <= r.mce
    filled = r.bin_counts > 0
    assert np.isnan(r.bin_accuracy[~filled]).all() and not np.isnan(r.bin_accuracy[filled]).any()
    assert (r.bin_confidence[filled] > r.bin_edges[:-1][filled]).all()
    assert (r.bin_confidence[filled] <= r.bin_edges[1:][filled]).all()
    d = r.to_dict()
    assert d["bin_accuracy"][int(np.argmin(filled))] is None and d["bin_counts"] == r.bin_counts.tolist()


# ------------------------------------------------------------------------------- hand-computed vectors


def test_design_discriminating_vector():
    probs, labels = np.array([[0.6, 0.4], [0.59, 0.41]]), np.array([0, 1])
    # (lo, hi]: 0.6 = 9/15 is the right edge of bin 8 = (8/15, 9/15], where 0.59 also lies.
    # bin 8: accuracy (1 + 0)/2 = 0.5, confidence (0.6 + 0.59)/2 = 0.595 -> ECE = 1.0 * 0.095
    assert expected_calibration_error(probs, labels) == pytest.approx(0.095, abs=1e-12)
    assert calibration_report(probs, labels).bin_counts[8] == 2
    # torchmetrics, [lo, hi): 0.6 in bin 9 alone: 0.5 * |1 - 0.6| = 0.2; 0.59 in bin 8: 0.5 * |0 - 0.59| = 0.295
    assert _tm_multiclass(probs, labels, 15, "l1") == pytest.approx(0.495, abs=1e-6)


def test_confidence_on_an_interior_edge():
    probs, labels = np.array([[0.75, 0.25], [0.7, 0.3]]), np.array([0, 1])
    # 4 bins; 0.75 is the right edge of bin 2 = (0.5, 0.75], with 0.7:
    # accuracy 0.5, confidence 0.725 -> ECE = 0.225
    r = calibration_report(probs, labels, n_bins=4)
    assert r.ece == pytest.approx(0.225, abs=1e-12) and r.bin_counts.tolist() == [0, 0, 2, 0]
    # [lo, hi): 0.75 alone in bin 3: 0.5 * 0.25 = 0.125; 0.7 (wrong) in bin 2: 0.5 * 0.7 = 0.35 -> 0.475
    assert _tm_multiclass(probs, labels, 4, "l1") == pytest.approx(0.475, abs=1e-6)


def test_confidence_exactly_one_is_in_the_last_bin():
    probs, labels = np.array([[1.0, 0.0], [0.95, 0.05]]), np.array([1, 0])
    # 10 bins; 1.0 and 0.95 both in bin 9 = (0.9, 1.0]; hits: wrong, right -> accuracy 0.5,
    # confidence 0.975 -> ECE = 0.475
    r = calibration_report(probs, labels, n_bins=10)
    assert r.ece == pytest.approx(0.475, abs=1e-12) and r.bin_counts[9] == 2 and len(r.bin_counts) == 10
    # torchmetrics gives 1.0 an 11th bin: 0.5 * |0 - 1| = 0.5, plus 0.5 * |1 - 0.95| = 0.025 -> 0.525
    assert _tm_multiclass(probs, labels, 10, "l1") == pytest.approx(0.525, abs=1e-6)


def test_confidence_within_float32_rounding_of_one():
    probs, labels = np.array([[1 - 1e-8, 1e-8], [0.95, 0.05]]), np.array([1, 0])
    # float64 keeps 1 - 1e-8 in bin 9 with 0.95: |0.5 - (1 - 1e-8 + 0.95)/2| = 0.475 - 5e-9
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.475 - 5e-9, abs=1e-15)
    # torchmetrics' float32 rounds it to 1.0 -> its extra bin -> 0.525 as above
    assert _tm_multiclass(probs, labels, 10, "l1") == pytest.approx(0.525, abs=1e-6)


def test_all_correct():
    probs, labels = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), np.array([0, 0, 1])
    r = calibration_report(probs, labels, n_bins=10)
    # confidences 0.9, 0.8, 0.7 are right edges: bins 8, 7, 6, one example each, accuracy 1
    assert r.bin_counts.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0]
    assert r.ece == pytest.approx((0.1 + 0.2 + 0.3) / 3, abs=1e-12)  # 0.2
    assert r.mce == pytest.approx(0.3, abs=1e-12)
    assert r.rmsce == pytest.approx(math.sqrt((0.01 + 0.04 + 0.09) / 3), abs=1e-12)  # 0.21602...
    assert r.accuracy == 1.0
    # Brier per example: 2 * 0.1^2 = 0.02, 2 * 0.2^2 = 0.08, 2 * 0.3^2 = 0.18 -> mean 0.28 / 3
    assert r.brier == pytest.approx(0.28 / 3, abs=1e-12)
    assert r.nll == pytest.approx(-(math.log(0.9) + math.log(0.8) + math.log(0.7)) / 3, abs=1e-12)


def test_all_wrong():
    probs, labels = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 1, 0])
    r = calibration_report(probs, labels, n_bins=10)
    assert r.ece == pytest.approx((0.9 + 0.8 + 0.7) / 3, abs=1e-12)  # 0.8
    assert r.mce == pytest.approx(0.9, abs=1e-12) and r.accuracy == 0.0
    # Brier per example: 0.9^2 + 0.9^2 = 1.62, 2 * 0.8^2 = 1.28, 2 * 0.7^2 = 0.98 -> 3.88 / 3
    assert r.brier == pytest.approx(3.88 / 3, abs=1e-12)


def test_one_example():
    r = calibration_report([[0.2, 0.5, 0.3]], [2])
    # predicts class 1 with 0.5, wrong: ECE = MCE = RMSCE = 0.5
    assert r.ece == pytest.approx(0.5) and r.mce == pytest.approx(0.5) and r.rmsce == pytest.approx(0.5)
    assert r.bin_counts.sum() == 1 and r.bin_counts[7] == 1  # 0.5 in (7/15, 8/15]
    assert r.brier == pytest.approx(0.2**2 + 0.5**2 + 0.7**2, abs=1e-12)  # 0.78
    assert r.nll == pytest.approx(-math.log(0.3), abs=1e-12)


def test_one_bin():
    probs = np.array([[0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 1])
    # one bin: hits T, F, T, T -> accuracy 0.75; mean confidence (0.6 + 0.7 + 0.9 + 0.55)/4 = 0.6875
    r = calibration_report(probs, labels, n_bins=1)
    assert r.ece == pytest.approx(0.0625, abs=1e-12) and r.mce == pytest.approx(0.0625, abs=1e-12)
    assert r.bin_edges.tolist() == [0.0, 1.0] and r.bin_counts.tolist() == [4]


def test_binary_one_dimensional_hand_values():
    p, labels = np.array([0.5, 0.0, 1.0, 0.8]), np.array([1, 0, 0, 1])
    # top-label on [1-p, p]: P = 0.5 is a tie -> class 0 (lowest index), confidence 0.5, wrong;
    # P = 0 -> class 0 with 1.0, right; P = 1 -> class 1 with 1.0, wrong; P = 0.8 -> class 1 with 0.8, right.
    # 10 bins: bin 4 (0.4, 0.5]: 0.25 * |0 - 0.5|; bin 9: 0.5 * |0.5 - 1|; bin 7: 0.25 * |1 - 0.8|
    # -> 0.125 + 0.25 + 0.05 = 0.425
    top = calibration_report(p, labels, n_bins=10)
    assert top.ece == pytest.approx(0.425, abs=1e-12) and top.accuracy == 0.5
    assert top.bin_counts.tolist() == [0, 0, 0, 0, 1, 0, 0, 1, 0, 2]
    # positive class: P itself against "label == 1"; P = 0 goes to the first bin.
    # bin 0: |0 - 0| = 0; bin 4: 0.25 * |1 - 0.5|; bin 7: 0.25 * |1 - 0.8|; bin 9: 0.25 * |0 - 1|
    # -> 0 + 0.125 + 0.05 + 0.25 = 0.425 (the same total here; the bins differ)
    pos = calibration_report(p, labels, n_bins=10, confidence="positive_class")
    assert pos.ece == pytest.approx(0.425, abs=1e-12) and pos.mce == pytest.approx(1.0)
    assert pos.bin_counts.tolist() == [1, 0, 0, 0, 1, 0, 0, 1, 0, 1]
    # Brier (multiclass form) = 2 * mean (p - y)^2 = 2 * (0.25 + 0 + 1 + 0.04) / 4 = 0.645
    assert top.brier == pytest.approx(0.645, abs=1e-12) == pos.brier


def test_positive_class_edge_binning():
    # 5 bins: 0.4 is the right edge of bin 1 = (0.2, 0.4], where 0.3 also lies:
    # frequency of class 1 = 0.5, mean P = 0.35 -> 0.15. torchmetrics ([lo, hi)): 0.5*0.6 + 0.5*0.3 = 0.45
    p, labels = np.array([0.4, 0.3]), np.array([1, 0])
    assert expected_calibration_error(p, labels, n_bins=5, confidence="positive_class") == pytest.approx(0.15)
    assert float(binary_calibration_error(torch.tensor(p), torch.tensor(labels), n_bins=5)) == pytest.approx(0.45)


def test_logits_softmax_is_stable():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    r = calibration_report(logits, [0, 2], n_bins=3, from_logits=True)
    # row 1: confidence 1.0 right; row 2: uniform 1/3 (ties -> class 0), wrong
    # bin 2 (2/3, 1]: |1 - 1| = 0; bin 0 (0, 1/3]: 0.5 * 1/3 -> ECE 1/6
    assert r.ece == pytest.approx(1 / 6, abs=1e-12) and np.isfinite(r.nll)
    assert r.nll == pytest.approx((0.0 + math.log(3)) / 2, abs=1e-12)


# ----------------------------------------------------------------------------------------- Brier, NLL


@pytest.mark.parametrize("seed", range(3))
def test_brier_and_nll_match_sklearn(seed):
    logits, probs, labels = _random_multiclass(seed)
    classes = list(range(probs.shape[1]))
    assert brier_score(probs, labels) == pytest.approx(
        brier_score_loss(labels, probs, labels=classes, scale_by_half=False), abs=1e-12
    )
    assert negative_log_likelihood(probs, labels) == pytest.approx(log_loss(labels, probs, labels=classes), abs=1e-10)
    torch_ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))
    assert negative_log_likelihood(logits, labels, from_logits=True) == pytest.approx(float(torch_ce), abs=1e-12)
    p, y = _random_binary(seed)
    assert brier_score(p, y) == pytest.approx(2 * brier_score_loss(y, p), abs=1e-12)
    assert negative_log_likelihood(p, y) == pytest.approx(log_loss(y, p), abs=1e-10)


def test_nll_clips_zero_probability():
    # P(label) = 0 -> clipped to machine epsilon: -log(2.220446e-16) = 36.04365...
    assert negative_log_likelihood([[1.0, 0.0]], [1]) == pytest.approx(-math.log(NLL_EPS))
    assert negative_log_likelihood([[1.0, 0.0]], [1]) == pytest.approx(36.04365338911715)
    # from logits there is no clipping: -log softmax = 50 + log(1 + e^-50)
    assert negative_log_likelihood([[50.0, 0.0]], [1], from_logits=True) == pytest.approx(50.0, abs=1e-12)


# ----------------------------------------------------------------------------------------- bad inputs

GOOD = np.array([[0.7, 0.3], [0.2, 0.8]])


@pytest.mark.parametrize(
    "preds, labels, kwargs, message",
    [
        (GOOD, [0, 1, 1], {}, "one class id per prediction row"),
        (GOOD, [[0], [1]], {}, "1-D array"),
        (np.zeros((2, 2, 2)), [0, 1], {}, r"must be \[N, C\]"),
        (np.ones((2, 1)), [0, 1], {}, "single column"),
        (np.zeros((0, 2)), [], {}, "empty"),
        ([[1.2, -0.2], [0.5, 0.5]], [0, 1], {}, "not probabilities.*from_logits=True"),
        ([[0.5, 0.4], [0.5, 0.5]], [0, 1], {}, "sum to 1"),
        ([1.5, 0.5], [0, 1], {}, "not probabilities"),
        ([[np.nan, 1.0], [0.5, 0.5]], [0, 1], {}, "NaN or inf"),
        ([[np.inf, 1.0], [0.5, 0.5]], [0, 1], {"from_logits": True}, "NaN or inf"),
        (GOOD, [0, 2], {}, r"labels must lie in 0\.\.1"),
        (GOOD, [-1, 1], {}, r"labels must lie in 0\.\.1"),
        (GOOD, [0.5, 1], {}, "integer class ids"),
        (GOOD, [np.nan, 1], {}, "integer class ids"),
        (GOOD, ["a", "b"], {}, "integer class ids"),
        ([[0.5, 0.5], [1.0]], [0, 1], {}, "rectangular"),
        ([["a", "b"], ["c", "d"]], [0, 1], {}, "numeric"),
        (GOOD, [0, 1], {"n_bins": 0}, "n_bins must be a positive integer"),
        (GOOD, [0, 1], {"n_bins": -3}, "n_bins must be a positive integer"),
        (GOOD, [0, 1], {"n_bins": 2.5}, "n_bins must be a positive integer"),
        (GOOD, [0, 1], {"n_bins": "15"}, "n_bins must be a positive integer"),
        (GOOD, [0, 1], {"n_bins": True}, "n_bins must be a positive integer"),
        (GOOD, [0, 1], {"norm": "l3"}, "Unknown norm 'l3'"),
        (GOOD, [0, 1], {"confidence": "top"}, "Unknown confidence"),
        (np.full((2, 3), 1 / 3), [0, 1], {"confidence": "positive_class"}, "needs a binary task"),
    ],
)
def test_bad_input_raises_value_error(preds, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(preds, labels, **kwargs)
    if "norm" not in kwargs:
        with pytest.raises(ValueError, match=message):
            calibration_report(preds, labels, **kwargs)


def test_torch_tensors_are_accepted():
    logits, probs, labels = _random_multiclass(1)
    t = torch.from_numpy(logits).float().requires_grad_()
    ours = expected_calibration_error(t, torch.from_numpy(labels), from_logits=True)
    assert ours == pytest.approx(expected_calibration_error(t.detach().double().numpy(), labels, from_logits=True))


def test_large_input_is_fast():
    import time

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1_000_000, 10)) * 3
    labels = rng.integers(0, 10, 1_000_000)
    start = time.perf_counter()
    expected_calibration_error(logits, labels, from_logits=True)
    assert time.perf_counter() - start < 2.0  # ~0.25 s on a 2-core CPU; generous for loaded CI machines


# ----------------------------------------------------------------------------------- reliability diagram


def test_reliability_diagram_png(tmp_path):
    logits, probs, labels = _random_multiclass(2)
    report = calibration_report(probs, labels, n_bins=10)
    path = tmp_path / "reliability.png"
    fig = plot_reliability_diagram(report, path=path, title="Random model")
    assert path.stat().st_size > 5000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    title = fig.axes[0].get_title()
    assert "Random model" in title and f"ECE = {report.ece:.4f}" in title
    assert len(fig.axes) == 2  # diagram + count histogram
    # from predictions directly, no histogram, no file
    fig2 = plot_reliability_diagram(logits, labels, from_logits=True, n_bins=10, show_histogram=False)
    assert len(fig2.axes) == 1 and f"{report.ece:.4f}" in fig2.axes[0].get_title()
    with pytest.raises(ValueError, match="labels are required"):
        plot_reliability_diagram(probs)
    with pytest.raises(ValueError, match="one or the other"):
        plot_reliability_diagram(report, labels)


# ---------------------------------------------------------------------------------- the evaluate module


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_evaluate_module_matches_calibration(ece_module, norm):
    logits, probs, labels = _random_multiclass(3)
    for preds, from_logits in [(probs, False), (logits, True)]:
        got = ece_module.compute(predictions=preds, references=labels, norm=norm, n_bins=10, from_logits=from_logits)
        want = expected_calibration_error(preds, labels, norm=norm, n_bins=10, from_logits=from_logits)
        assert got == {"expected_calibration_error": pytest.approx(want, abs=1e-12)}
    assert ece_module.compute(predictions=[[0.6, 0.4], [0.59, 0.41]], references=[0, 1])[
        "expected_calibration_error"
    ] == pytest.approx(0.095)


def test_evaluate_module_one_float_per_example(ece_module):
    p, labels = _random_binary(0)
    for confidence in ("top_label", "positive_class"):
        got = ece_module.compute(predictions=p.tolist(), references=labels.tolist(), confidence=confidence)
        assert got["expected_calibration_error"] == pytest.approx(
            expected_calibration_error(p, labels, confidence=confidence), abs=1e-12
        )
    # [0.4, 0.41] as P(class 1) is the DESIGN vector in one-column form
    out = ece_module.compute(predictions=[0.4, 0.41], references=[0, 1])
    assert out["expected_calibration_error"] == pytest.approx(0.095)


def test_evaluate_module_detailed_and_bad_input(ece_module):
    probs, labels = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]], [0, 0, 1]
    out = ece_module.compute(predictions=probs, references=labels, n_bins=10, detailed=True)
    assert out["expected_calibration_error"] == pytest.approx(0.2)
    assert out["maximum_calibration_error"] == pytest.approx(0.3)
    assert out["brier_score"] == pytest.approx(0.28 / 3) and out["accuracy"] == 1.0
    assert out["bin_counts"] == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0] and out["bin_accuracy"][0] is None
    with pytest.raises(ValueError, match="not probabilities"):
        ece_module.compute(predictions=[[2.0, -1.0]], references=[0])
    with pytest.raises(ValueError, match="Unknown norm"):
        ece_module.compute(predictions=[[0.5, 0.5]], references=[0], norm="l3")
    with pytest.raises(ValueError, match="different lengths"):
        ece_module.compute(predictions=[[0.5, 0.5], [1.0]], references=[0, 0])


def test_load_ece_and_combine():
    import evaluate

    from mixup_trainer.evaluation import load_ece

    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 0, 1, 1])
    combined = evaluate.combine({"ece": load_ece(n_bins=10), "mce": load_ece(n_bins=10, norm="max")})
    combined.add_batch(predictions=probs[:2], references=labels[:2])
    combined.add_batch(predictions=probs[2:], references=labels[2:])
    out = combined.compute()
    assert out == {
        "ece_expected_calibration_error": pytest.approx(expected_calibration_error(probs, labels, n_bins=10)),
        "mce_expected_calibration_error": pytest.approx(maximum_calibration_error(probs, labels, n_bins=10)),
    }
    # bins 8, 7, 6 right (gaps 0.1, 0.2, 0.3), bin 5 = (0.5, 0.6] wrong (gap 0.6): ECE 1.2/4, MCE 0.6
    assert out["ece_expected_calibration_error"] == pytest.approx(0.3)
    assert out["mce_expected_calibration_error"] == pytest.approx(0.6)
