"""Estimators beyond the equal-width ECE: equal-mass (adaptive) and classwise ECE, overconfidence,
smECE, bootstrap intervals, the `evaluate` module's new options and the before/after diagram.

Oracles: hand-computed vectors; on random inputs, plain-Python loops written from the definitions,
torchmetrics' binary calibration error per class (classwise), relplot's own smECE call, and a
resample-by-resample loop over the public functions (bootstrap)."""

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error

from mixup_trainer.calibration import (
    BootstrapInterval,
    bootstrap_calibration_error,
    calibration_report,
    classwise_calibration_error,
    expected_calibration_error,
    overconfidence,
    plot_reliability_diagram,
    smooth_ece,
)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _random(seed, n=300, n_classes=None):
    rng = np.random.default_rng(seed)
    c = n_classes or int(rng.integers(2, 6))
    logits = rng.normal(size=(n, c)) * rng.uniform(0.5, 4.0)
    labels = np.where(rng.random(n) < 0.6, logits.argmax(1), rng.integers(0, c, n))
    return logits, _softmax(logits), labels


def _equal_mass_loop(conf, hits, n_bins, norm="l1"):
    """The definition, example by example: sort by confidence (stable), position j -> bin j*B//N."""
    n = len(conf)
    bins = [[] for _ in range(n_bins)]
    for j, i in enumerate(sorted(range(n), key=lambda i: conf[i])):
        bins[j * n_bins // n].append(i)
    gaps = [(abs(sum(hits[i] for i in b) - sum(conf[i] for i in b)) / len(b), len(b)) for b in bins if b]
    if norm == "l1":
        return sum(g * m / n for g, m in gaps)
    if norm == "l2":
        return math.sqrt(sum(g * g * m / n for g, m in gaps))
    return max(g for g, _ in gaps)


# --------------------------------------------------------------------------------- equal-mass binning


def test_equal_mass_hand_computed():
    # confidences 0.55, 0.6, 0.7, 0.8, 0.9, 0.95 (top label = class 0), 3 bins of two:
    # {0.55, 0.6}: hits 0, 1 -> |1 - 1.15| = 0.15; {0.7, 0.8}: hits 1, 0 -> |1 - 1.5| = 0.5;
    # {0.9, 0.95}: hits 1, 1 -> |2 - 1.85| = 0.15; ECE = (0.15 + 0.5 + 0.15) / 6
    p = np.array([0.9, 0.55, 0.8, 0.6, 0.95, 0.7])  # shuffled on purpose
    probs, labels = np.stack([p, 1 - p], 1), np.array([0, 1, 1, 0, 0, 0])
    assert expected_calibration_error(probs, labels, n_bins=3, binning="equal_mass") == pytest.approx(0.8 / 6)
    report = calibration_report(probs, labels, n_bins=3, binning="equal_mass")
    assert report.bin_counts.tolist() == [2, 2, 2] and report.binning == "equal_mass"
    assert report.bin_accuracy.tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert report.bin_confidence.tolist() == pytest.approx([0.575, 0.75, 0.925])
    assert report.bin_edges.tolist() == pytest.approx([0.55, 0.65, 0.85, 0.95])
    assert report.mce == pytest.approx(0.25)  # bin {0.7, 0.8}: |0.5 - 0.75|
    # The same data in 3 equal-width bins: {0.55, 0.6} in (1/3, 2/3] -> 0.15; the other four in
    # (2/3, 1], hits 1, 0, 1, 1 -> |3 - 3.35| = 0.35
    assert expected_calibration_error(probs, labels, n_bins=3) == pytest.approx((0.15 + 0.35) / 6)


def test_equal_mass_uneven_sizes_and_ties():
    # 5 examples, 2 bins: positions 0,1,2 -> bin 0 and 3,4 -> bin 1 (j*2//5). Ties keep input order.
    conf = np.array([0.7, 0.7, 0.7, 0.9, 0.6])
    hits = np.array([1, 0, 1, 1, 0])
    probs = np.stack([conf, 1 - conf], 1)
    labels = np.where(hits == 1, 0, 1)
    # sorted: 0.6(0) | 0.7(1) 0.7(0) -> bin 0 = {0.6, 0.7, 0.7}, hits 0+1+0; bin 1 = {0.7 (hit), 0.9 (hit)}
    expected = (abs(1 - 2.0) + abs(2 - 1.6)) / 5
    assert expected_calibration_error(probs, labels, n_bins=2, binning="equal_mass") == pytest.approx(expected)
    assert calibration_report(probs, labels, n_bins=2, binning="equal_mass").bin_counts.tolist() == [3, 2]
    # Fewer examples than bins: empty bins weigh nothing.
    assert expected_calibration_error(probs[:2], labels[:2], n_bins=15, binning="equal_mass") == pytest.approx(
        (0.3 + 0.7) / 2)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("seed", range(6))
def test_equal_mass_matches_the_definition_on_random_inputs(seed, norm):
    logits, probs, labels = _random(seed)
    conf, hits = probs.max(1), (probs.argmax(1) == labels).astype(float)
    for n_bins in (1, 4, 10, 15, 33):
        ours = expected_calibration_error(logits, labels, n_bins=n_bins, norm=norm, from_logits=True,
                                          binning="equal_mass")
        assert ours == pytest.approx(_equal_mass_loop(conf, hits, n_bins, norm), abs=1e-12), n_bins


def test_equal_width_default_is_unchanged():
    logits, probs, labels = _random(0)
    assert expected_calibration_error(probs, labels, binning="equal_width") == expected_calibration_error(probs, labels)
    with pytest.raises(ValueError, match="Unknown binning 'quantile'"):
        expected_calibration_error(probs, labels, binning="quantile")


# ------------------------------------------------------------------------------------------ classwise


def test_classwise_hand_computed():
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6]])
    labels = np.array([0, 0, 2])
    # 2 equal-width bins (0, 0.5], (0.5, 1]:
    # class 0: P = 0.7, 0.3, 0.2; y==0: 1, 1, 0 -> bin1 {0.7}: |1-0.7| = 0.3; bin0 {0.3, 0.2}: |1-0.5| = 0.5 -> 0.8/3
    # class 1: P = 0.2, 0.6, 0.2; y==1: 0, 0, 0 -> bin1 {0.6}: 0.6; bin0: 0.4 -> 1.0/3
    # class 2: P = 0.1, 0.1, 0.6; y==2: 0, 0, 1 -> bin1 {0.6}: 0.4; bin0: 0.2 -> 0.6/3
    expected = (0.8 + 1.0 + 0.6) / 9
    assert classwise_calibration_error(probs, labels, n_bins=2) == pytest.approx(expected)
    assert expected_calibration_error(probs, labels, n_bins=2, classwise=True) == pytest.approx(expected)
    with pytest.raises(ValueError, match="confidence='positive_class' does not apply"):
        expected_calibration_error(probs[:, :2] / probs[:, :2].sum(1, keepdims=True), [0, 1, 1], classwise=True,
                                   confidence="positive_class")


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("seed", range(6))
def test_classwise_matches_torchmetrics_per_class(seed, norm):
    """Equal width: per class, torchmetrics' binary_calibration_error of P(c) vs y == c (it bins
    [lo, hi) in float32, so rows with any probability near an edge are dropped first)."""
    _, probs, labels = _random(seed, n=600)
    edge = np.min([np.abs(probs * n - np.round(probs * n)) / n for n in (5, 10, 15)], axis=0).min(1)
    probs, labels = probs[edge > 1e-5], labels[edge > 1e-5]
    for n_bins in (5, 10, 15):
        oracle = np.mean([float(binary_calibration_error(torch.from_numpy(probs[:, c]),
                                                         torch.from_numpy((labels == c).astype(np.int64)),
                                                         n_bins=n_bins, norm=norm))
                          for c in range(probs.shape[1])])
        assert classwise_calibration_error(probs, labels, n_bins=n_bins, norm=norm) == pytest.approx(oracle, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_classwise_equal_mass_matches_the_definition(seed):
    logits, probs, labels = _random(seed)
    oracle = np.mean([_equal_mass_loop(probs[:, c], (labels == c).astype(float), 10) for c in range(probs.shape[1])])
    ours = classwise_calibration_error(logits, labels, n_bins=10, from_logits=True, binning="equal_mass")
    assert ours == pytest.approx(oracle, abs=1e-12)


# --------------------------------------------------------------------------- overconfidence and smECE


def test_overconfidence_sign_and_bound():
    probs, labels = np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1])
    assert overconfidence(probs, labels) == pytest.approx(0.85 - 0.5)  # over-confident: positive
    assert overconfidence(np.array([[0.6, 0.4], [0.55, 0.45]]), np.array([0, 0])) == pytest.approx(0.575 - 1.0)
    for seed in range(4):
        logits, probs, labels = _random(seed)
        gap = overconfidence(logits, labels, from_logits=True)
        assert gap == pytest.approx(probs.max(1).mean() - (probs.argmax(1) == labels).mean(), abs=1e-12)
        for binning in ("equal_width", "equal_mass"):
            report = calibration_report(probs, labels, binning=binning)
            assert report.overconfidence == pytest.approx(gap, abs=1e-12) and abs(gap) <= report.ece + 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_smooth_ece_is_relplots_own_call(seed):
    import relplot

    logits, probs, labels = _random(seed, n=500)
    oracle = relplot.smECE(*relplot.multiclass_logits_to_confidences(logits, labels))
    assert smooth_ece(logits, labels, from_logits=True) == pytest.approx(oracle, abs=1e-9)
    assert smooth_ece(probs, labels) == pytest.approx(oracle, abs=1e-9)
    with pytest.raises(ValueError, match="not probabilities"):
        smooth_ece(logits * 10, labels)


def test_smooth_ece_sees_miscalibration():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 4000)
    calibrated = (rng.random(4000) < conf).astype(int)
    probs = np.stack([conf, 1 - conf], 1)
    good = smooth_ece(probs, np.where(calibrated == 1, 0, 1))
    over = smooth_ece(probs, np.where(rng.random(4000) < 0.6, 0, 1))  # accuracy 0.6 at mean confidence 0.75
    assert good < 0.03 and over > 0.1


# ------------------------------------------------------------------------------------------ bootstrap


@pytest.mark.parametrize("binning", ["equal_width", "equal_mass"])
@pytest.mark.parametrize("norm", ["l1", "max"])
def test_bootstrap_matches_a_resample_loop(binning, norm):
    """The documented draws, replayed one resample at a time through the public function."""
    logits, probs, labels = _random(3, n=257)
    ci = bootstrap_calibration_error(logits, labels, from_logits=True, n_bins=10, binning=binning, norm=norm,
                                     n_resamples=60, seed=5, chunk_size=257 * 7)
    order = np.argsort(probs.max(1), kind="stable")
    draws = np.random.default_rng(5).integers(0, 257, size=(60, 257), dtype=np.int32)
    stats = [expected_calibration_error(logits[order[d]], labels[order[d]], from_logits=True, n_bins=10,
                                        binning=binning, norm=norm) for d in draws]
    low, high = np.quantile(stats, [0.025, 0.975])
    assert ci.low == pytest.approx(low, abs=1e-12) and ci.high == pytest.approx(high, abs=1e-12)
    assert ci.estimate == expected_calibration_error(logits, labels, from_logits=True, n_bins=10, binning=binning,
                                                     norm=norm)


def test_bootstrap_is_seeded_and_chunk_free():
    logits, _, labels = _random(1, n=400)
    a = bootstrap_calibration_error(logits, labels, from_logits=True, n_resamples=200, seed=1)
    b = bootstrap_calibration_error(logits, labels, from_logits=True, n_resamples=200, seed=1, chunk_size=400 * 3)
    c = bootstrap_calibration_error(logits, labels, from_logits=True, n_resamples=200, seed=2)
    assert isinstance(a, BootstrapInterval) and a == b and (a.low, a.high) != (c.low, c.high)
    assert a.low <= a.estimate <= a.high and a.to_dict()["n_resamples"] == 200
    narrow = bootstrap_calibration_error(*_random(1, n=4000)[::2], from_logits=True, n_resamples=200, seed=1)
    assert narrow.high - narrow.low < a.high - a.low  # 10x the data, a narrower interval


@pytest.mark.parametrize("kwargs, message", [({"n_resamples": 0}, "n_resamples must be a positive integer"),
                                             ({"confidence_level": 1.0}, r"confidence_level must lie in \(0, 1\)"),
                                             ({"binning": "x"}, "Unknown binning")])
def test_bootstrap_bad_arguments(kwargs, message):
    logits, _, labels = _random(0, n=20)
    with pytest.raises(ValueError, match=message):
        bootstrap_calibration_error(logits, labels, from_logits=True, **kwargs)


# ------------------------------------------------------------------------------ evaluate module, plot


def test_evaluate_module_binning_and_classwise(ece_module):
    logits, probs, labels = _random(2)
    default = ece_module.compute(predictions=probs, references=labels)["expected_calibration_error"]
    assert default == expected_calibration_error(probs, labels)
    for kwargs in ({"binning": "equal_mass"}, {"classwise": True}, {"classwise": True, "binning": "equal_mass"}):
        out = ece_module.compute(predictions=probs, references=labels, **kwargs)["expected_calibration_error"]
        assert out == pytest.approx(expected_calibration_error(probs, labels, **kwargs), abs=1e-12), kwargs
    detailed = ece_module.compute(predictions=probs, references=labels, detailed=True, binning="equal_mass")
    assert detailed["overconfidence"] == pytest.approx(overconfidence(probs, labels), abs=1e-12)
    assert detailed["bin_counts"] == calibration_report(probs, labels, binning="equal_mass").bin_counts.tolist()
    with pytest.raises(ValueError, match="Unknown binning"):
        ece_module.compute(predictions=probs, references=labels, binning="adaptive")


def test_before_after_diagram(tmp_path):
    logits, _, labels = _random(4, n=500)
    before = calibration_report(logits, labels, from_logits=True)
    after = calibration_report(logits / 2.5, labels, from_logits=True)
    fig = plot_reliability_diagram(before, path=tmp_path / "ts.png", overlay=after, names=("before", "after"))
    assert (tmp_path / "ts.png").read_bytes()[:4] == b"\x89PNG"
    main, hist = fig.axes
    assert f"ECE {before.ece:.4f} → {after.ece:.4f}" in main.get_title()
    assert {t.get_text() for t in main.get_legend().get_texts()} >= {"Accuracy (before)", "Accuracy (after)"}
    assert len(hist.patches) >= before.n_bins  # histogram bars, plus the overlay's outline
    old = plot_reliability_diagram(logits, labels, from_logits=True, binning="equal_mass")  # the old call, + binning
    assert "equal-mass bins" in old.axes[0].get_title()
    with pytest.raises(ValueError, match="overlay must be a CalibrationReport"):
        plot_reliability_diagram(before, overlay=logits)
