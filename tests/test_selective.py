"""Tests for selective prediction: risk_coverage_curve, aurc, CalibrationReport.aurc, plot_risk_coverage.

Oracles: a plain-Python loop over the definition (sort by confidence, count errors among the k most
confident) on inputs without ties; hand-computed vectors; for ties, the average of the loop over
every order of the tied rows.
"""

import itertools
import math

import numpy as np
import pytest
from scipy.special import softmax

from mixup_trainer.calibration import (
    aurc,
    calibration_report,
    plot_risk_coverage,
    risk_coverage_curve,
)


def _loop(probs, labels):
    """The definition, one example at a time: coverage k/n and the error rate of the k most confident."""
    rows = [list(map(float, row)) for row in probs]
    confidence = [max(row) for row in rows]
    wrong = [row.index(max(row)) != int(label) for row, label in zip(rows, labels)]
    order = sorted(range(len(rows)), key=lambda i: -confidence[i])  # Python's sort is stable
    coverage, risk, errors = [], [], 0
    for k, i in enumerate(order, start=1):
        errors += wrong[i]
        coverage.append(k / len(rows))
        risk.append(errors / k)
    return coverage, risk


def _random(seed, n=200):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 6))
    logits = rng.normal(size=(n, c)) * rng.uniform(0.5, 4.0)
    labels = np.where(rng.random(n) < 0.6, logits.argmax(1), rng.integers(0, c, n))
    return logits, softmax(logits, axis=1), labels


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_definition_without_ties(seed):
    logits, probs, labels = _random(seed)
    assert len(np.unique(probs.max(1))) == len(labels)  # no ties: the loop's order is the only order
    want_coverage, want_risk = _loop(probs, labels)
    for preds, from_logits in ((probs, False), (logits, True)):
        coverage, risk = risk_coverage_curve(preds, labels, from_logits=from_logits)
        assert coverage.dtype == risk.dtype == np.float64 and coverage.shape == risk.shape == (len(labels),)
        np.testing.assert_allclose(coverage, want_coverage, rtol=0, atol=1e-9)
        np.testing.assert_allclose(risk, want_risk, rtol=0, atol=1e-9)
        assert aurc(preds, labels, from_logits=from_logits) == pytest.approx(np.mean(want_risk), abs=1e-9)


def test_binary_one_dimensional_input():
    rng = np.random.default_rng(7)
    p, labels = rng.random(150), rng.integers(0, 2, 150)
    two_columns = np.stack([1 - p, p], axis=1)
    want_risk = _loop(two_columns, labels)[1]
    risk = risk_coverage_curve(p, labels)[1]
    np.testing.assert_allclose(risk, want_risk, rtol=0, atol=1e-9)
    assert aurc(p, labels) == pytest.approx(np.mean(want_risk), abs=1e-9)
    z = np.log(p) - np.log1p(-p)  # the logit of class 1: the same model, the same curve
    np.testing.assert_allclose(risk_coverage_curve(z, labels, from_logits=True)[1], want_risk, atol=1e-9)


def test_hand_computed():
    # Confidences 0.6 (wrong: predicts 0, label 1), 0.95 (right), 0.7 (wrong: predicts 1), 0.8 (right),
    # 0.55 (right). Most confident first: 0.95 R, 0.8 R, 0.7 W, 0.6 W, 0.55 R.
    # Errors among the first k: 0, 0, 1, 2, 2 -> risks 0/1, 0/2, 1/3, 2/4, 2/5 = 0, 0, 0.3333, 0.5, 0.4.
    # AURC = (0 + 0 + 1/3 + 1/2 + 2/5) / 5 = (10/30 + 15/30 + 12/30) / 5 = 37/150 = 0.24666...
    probs = [[0.6, 0.4], [0.05, 0.95], [0.3, 0.7], [0.8, 0.2], [0.45, 0.55]]
    labels = [1, 1, 0, 0, 1]
    coverage, risk = risk_coverage_curve(probs, labels)
    assert coverage.tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert risk.tolist() == pytest.approx([0.0, 0.0, 1 / 3, 0.5, 0.4], abs=1e-12)
    assert aurc(probs, labels) == pytest.approx(37 / 150, abs=1e-12)
    assert risk[-1] == pytest.approx(1 - calibration_report(probs, labels).accuracy)  # full coverage: error rate


def test_ties_share_their_runs_mean_error_whatever_the_row_order():
    # Two rows tie at confidence 0.9, one right and one wrong; then 0.5 right. Each tied row counts
    # with the run's mean error 1/2: errors among the first k = 0.5, 1.0, 1.0 -> risks 0.5, 0.5, 1/3;
    # AURC = (1/2 + 1/2 + 1/3) / 3 = 4/9. A stable sort would give risks 0, 0.5, 1/3 or 1, 0.5, 1/3.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.5, 0.5]])
    for labels, rows in (([0, 1, 0], [0, 1, 2]), ([1, 0, 0], [1, 0, 2]), ([0, 1, 0], [2, 1, 0])):
        risk = risk_coverage_curve(probs[rows], np.array(labels)[rows])[1]
        assert risk.tolist() == pytest.approx([0.5, 0.5, 1 / 3], abs=1e-12)
        assert aurc(probs[rows], np.array(labels)[rows]) == pytest.approx(4 / 9, abs=1e-12)


def test_ties_give_the_mean_curve_over_every_order_of_the_tied_rows():
    # Confidences from three values only, so runs of ties; every permutation of the rows, scored by the
    # stable loop, breaks the ties in another order: the documented curve is the mean of all of them.
    rng = np.random.default_rng(3)
    confidence = rng.choice([0.6, 0.7, 0.9], size=7)
    probs = np.stack([confidence, 1 - confidence], axis=1)
    labels = rng.integers(0, 2, 7)
    curves = [_loop(probs[list(p)], labels[list(p)])[1] for p in itertools.permutations(range(7))]
    np.testing.assert_allclose(risk_coverage_curve(probs, labels)[1], np.mean(curves, axis=0), rtol=0, atol=1e-12)
    shuffled = rng.permutation(7)
    assert aurc(probs[shuffled], labels[shuffled]) == pytest.approx(aurc(probs, labels), abs=1e-15)


def test_extremes():
    assert aurc([[0.9, 0.1], [0.6, 0.4]], [0, 0]) == 0.0  # all right
    assert aurc([[0.9, 0.1], [0.6, 0.4]], [1, 1]) == 1.0  # all wrong
    # errors less confident than every hit: the risk rises only at the end (the best order for this accuracy)
    assert aurc([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]], [0, 0, 1]) == pytest.approx((0 + 0 + 1 / 3) / 3)
    assert aurc([[0.5, 0.5]], [0]) == 0.0 and aurc([[0.5, 0.5]], [1]) == 1.0  # argmax ties go to class 0


def test_report_carries_aurc():
    logits, probs, labels = _random(11)
    want = aurc(logits, labels, from_logits=True)
    assert calibration_report(logits, labels, from_logits=True).aurc == pytest.approx(want, abs=1e-12)
    assert calibration_report(probs, labels, binning="equal_mass").aurc == pytest.approx(want, abs=1e-12)
    p, y = probs[:, 1] / probs[:, :2].sum(1), labels % 2  # binary: top-label AURC whatever `confidence`
    assert calibration_report(p, y, confidence="positive_class").aurc == pytest.approx(aurc(p, y), abs=1e-12)
    assert calibration_report(p, y).to_dict()["aurc"] == pytest.approx(aurc(p, y), abs=1e-12)


GOOD = np.array([[0.7, 0.3], [0.2, 0.8]])


@pytest.mark.parametrize("preds, labels, kwargs, message", [
    (GOOD, [0, 1, 1], {}, "one class id per prediction row"),
    (np.zeros((0, 2)), [], {}, "empty"),
    ([[1.2, -0.2], [0.5, 0.5]], [0, 1], {}, "not probabilities.*from_logits=True"),
    ([[0.5, 0.4], [0.5, 0.5]], [0, 1], {}, "sum to 1"),
    ([[np.nan, 1.0], [0.5, 0.5]], [0, 1], {}, "NaN or inf"),
    ([[np.inf, 1.0], [0.5, 0.5]], [0, 1], {"from_logits": True}, "NaN or inf"),
    (GOOD, [0, 2], {}, r"labels must lie in 0\.\.1"),
    (GOOD, [0.5, 1], {}, "integer class ids"),
    (np.ones((2, 1)), [0, 1], {}, "single column"),
])
def test_bad_input_is_refused_like_the_other_functions(preds, labels, kwargs, message):
    for function in (risk_coverage_curve, aurc):
        with pytest.raises(ValueError, match=message):
            function(preds, labels, **kwargs)


def test_plot_risk_coverage(tmp_path):
    from matplotlib.figure import Figure

    logits, _, labels = _random(5, n=5000)
    curves = {"sharp": risk_coverage_curve(logits, labels, from_logits=True),
              "soft": risk_coverage_curve(logits / 4, labels, from_logits=True)}
    path = tmp_path / "rc.png"
    fig = plot_risk_coverage(curves, path=path, title="Two temperatures")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[0]
    assert ax.get_title() == "Two temperatures"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f"{name} (AURC {aurc(z, labels, from_logits=True):.4f})"
                     for name, z in (("sharp", logits), ("soft", logits / 4))]
    for line, (coverage, risk) in zip(ax.get_lines(), curves.values()):
        x, y = line.get_data()
        assert len(x) <= 2000 and x[0] == coverage[0] and x[-1] == 1.0 and y[-1] == risk[-1]  # thinned, ends kept
    panels = Figure().subplots(1, 2)  # one panel per method, drawn into given axes
    assert plot_risk_coverage({"sharp": curves["sharp"]}, ax=panels[1]) is panels[1].figure
    assert len(panels[1].get_lines()) == 1 and not panels[0].get_lines()


@pytest.mark.parametrize("curves, message", [
    ([(np.array([0.5, 1.0]), np.array([0.0, 0.5]))], "non-empty dict"),
    ({}, "non-empty dict"),
    ({"a": (np.array([0.5, 1.0]), np.array([0.0]))}, "pair .* of one length"),
    ({"a": (np.array([0.0, 0.5]), np.array([0.5, 1.0]))}, "swapped"),
    ({"a": np.array([0.5, 1.0])}, "pair"),
])
def test_plot_risk_coverage_bad_input(curves, message):
    with pytest.raises(ValueError, match=message):
        plot_risk_coverage(curves)


def test_aurc_is_not_the_ece():
    # Same ECE, different rankings: swapping which rows are right changes the AURC only.
    probs = [[0.9, 0.1], [0.7, 0.3]]
    good, bad = calibration_report(probs, [0, 1], n_bins=1), calibration_report(probs, [1, 0], n_bins=1)
    assert good.ece == pytest.approx(bad.ece) and math.isclose(good.aurc, 0.25) and math.isclose(bad.aurc, 0.75)


# ------------------------------------------------------------------------------------------- AUGRC
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augrc_is_the_mean_generalized_risk_of_the_definition(seed):
    """AUGRC = mean over k of (errors among the k most confident) / n, from the plain loop."""
    from mixup_trainer.calibration import augrc

    rng = np.random.default_rng(seed)
    probs, labels = softmax(rng.normal(size=(40, 3)), axis=1), rng.integers(0, 3, 40)
    coverage, risk = _loop(probs, labels)
    expected = sum(c * r for c, r in zip(coverage, risk)) / len(labels)
    assert augrc(probs, labels) == pytest.approx(expected, abs=1e-12)
    assert calibration_report(probs, labels).augrc == pytest.approx(expected, abs=1e-12)


def test_augrc_hand_computed():
    """Confidences 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (wrong): errors among the top k are 0, 1, 1, 2;
    generalized risks 0/4, 1/4, 1/4, 2/4, mean 0.25."""
    from mixup_trainer.calibration import augrc

    probs = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]
    assert augrc(probs, [0, 0, 0, 0]) == pytest.approx(0.25, abs=1e-15)


def test_augrc_known_values_perfect_random_and_perfect_ranking():
    """0 without errors; about (1 − acc) / 2 when the confidence ignores correctness; (1 − acc)² / 2 when
    every error is less confident than every hit (Traub et al., 2024)."""
    from mixup_trainer.calibration import augrc

    rng = np.random.default_rng(0)
    n, error_rate = 20_000, 0.3
    wrong = rng.random(n) < error_rate
    conf = rng.uniform(0.5, 1.0, n)  # independent of correctness
    probs = np.stack([conf, 1 - conf], axis=1)
    labels = np.where(wrong, 1, 0)
    assert augrc(probs, np.zeros(n, dtype=int)) == 0.0
    e = wrong.mean()
    assert augrc(probs, labels) == pytest.approx(e / 2, abs=0.01)
    ranked = np.where(wrong, 0.5 + 0.2 * conf - 0.1, 0.8 + 0.2 * (conf - 0.5))  # every error below every hit
    ranked_probs = np.stack([ranked, 1 - ranked], axis=1)
    assert augrc(ranked_probs, labels) == pytest.approx(e ** 2 / 2, abs=1e-3)
