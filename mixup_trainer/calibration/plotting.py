"""Plots of calibration results: reliability diagrams and risk–coverage curves (matplotlib only here).

Everything draws on ``matplotlib.figure.Figure`` (Agg canvas), never pyplot, so it needs no display
and leaves the global matplotlib state alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .metrics import CalibrationReport, calibration_report


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

    >>> fig = plot_reliability_diagram([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]], [0, 0, 1], n_bins=10)
    >>> len(fig.axes), fig.axes[0].get_title().splitlines()[1]
    (2, 'ECE = 0.2000  (10 bins, N = 3)')
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


#: A line of :func:`plot_risk_coverage` is thinned to about this many points: a curve has one point per
#: example, and beyond a few thousand the extra points change no pixel but cost time and file size.
MAX_CURVE_POINTS = 2000


def plot_risk_coverage(
    curves: Mapping[str, tuple[Any, Any]],
    ax: Any = None,
    path: Any = None,
    title: str | None = None,
):
    """Risk–coverage curves, one line per entry of ``curves`` (name -> ``(coverage, risk)``, as
    returned by :func:`risk_coverage_curve`), each labelled with its AURC (the mean of its risks).

    Lower is better at every coverage; the right end of each line is the model's error rate. To pool
    seeds of one method into one line, concatenate their predictions and labels before computing
    the curve. ``ax`` draws into existing axes (e.g. one panel per method); otherwise a new figure.
    Saves a PNG when ``path`` is given; returns the ``matplotlib.figure.Figure``.

    >>> from mixup_trainer.calibration import risk_coverage_curve
    >>> fig = plot_risk_coverage({"model": risk_coverage_curve([[0.9, 0.1], [0.3, 0.7]], [0, 0])})
    >>> fig.axes[0].get_legend().get_texts()[0].get_text()
    'model (AURC 0.2500)'
    """
    from matplotlib.figure import Figure

    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict {name: (coverage, risk)}, e.g. "
                         "{'baseline': risk_coverage_curve(probs, labels)}.")
    lines = {}
    for name, curve in curves.items():
        try:
            coverage, risk = (np.asarray(part, dtype=np.float64) for part in curve)
        except (TypeError, ValueError):
            coverage = risk = np.empty(0)
        if coverage.ndim != 1 or coverage.shape != risk.shape or len(coverage) == 0:
            raise ValueError(f"curves[{name!r}] must be a pair (coverage, risk) of 1-D arrays of one length, as "
                             "returned by risk_coverage_curve(predictions, labels).")
        if not (np.all((coverage > 0) & (coverage <= 1)) and np.all((risk >= 0) & (risk <= 1))):
            raise ValueError(f"curves[{name!r}] is not a risk-coverage curve: coverage must lie in (0, 1] and "
                             "risk in [0, 1]; was the pair swapped?")
        lines[name] = coverage, risk

    fig = ax.figure if ax is not None else Figure(figsize=(5.0, 4.0), layout="constrained")
    ax = ax if ax is not None else fig.subplots()
    for name, (coverage, risk) in lines.items():
        shown = np.unique(np.linspace(0, len(coverage) - 1, min(len(coverage), MAX_CURVE_POINTS)).astype(int))
        ax.plot(coverage[shown], risk[shown], linewidth=1.5, label=f"{name} (AURC {risk.mean():.4f})")
    ax.set(xlim=(0, 1), ylim=(0, None), xlabel="Coverage (most confident fraction kept)",
           ylabel="Risk (error rate of the kept examples)", title=title or "Risk–coverage")
    ax.legend(loc="upper left", fontsize="small")
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
