"""Binning of confidences and the binned calibration errors (the three norms) computed from the bins.

Convention (Guo et al., 2017, "On Calibration of Modern Neural Networks", and their reference code):
``n_bins`` equal-width bins with edges m / n_bins (m = 0..n_bins); bin m holds p̂ in (m/n, (m+1)/n]
-- closed on the right -- and p̂ = 0 goes to the first bin. ECE = Σ_m |B_m|/N · |acc(B_m) − conf(B_m)|
(norm "l1"); empty bins weigh 0. RMSCE = sqrt(Σ_m |B_m|/N · gap_m²) (norm "l2"); MCE = max_m gap_m
over non-empty bins (norm "max"). These are torchmetrics' three norms, with its own definitions.
``binning="equal_mass"`` (adaptive ECE) sorts by confidence and cuts bins of (nearly) equal count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINNINGS = ("equal_width", "equal_mass")


def _check_binning(binning: Any) -> str:
    if binning not in BINNINGS:
        raise ValueError(f"Unknown binning {binning!r}: use 'equal_width' (Guo et al.) or 'equal_mass' (adaptive).")
    return binning


def _bin_index(conf: np.ndarray, n_bins: int, binning: str) -> tuple[np.ndarray, np.ndarray]:
    """(bin of each confidence, bin edges [n_bins + 1]).

    equal_width: bin m holds conf in (m/n, (m+1)/n], conf = 0 in bin 0. Edges are m / n_bins (each the
    float64 nearest to the exact fraction), so a confidence that *is* an edge, e.g. 0.6 = 9/15, is
    compared with exactly that number: ceil(conf · n) − 1 is off by at most one next to an edge, and
    one comparison with the edges on each side puts it right (no binary search over the edges).

    equal_mass: sort by confidence (stable: ties keep their input order); the example at sorted
    position j (0-based) goes to bin floor(j · n_bins / N). Bins are contiguous in confidence and hold
    ⌊N/n⌋ or ⌈N/n⌉ examples (empty ones only when N < n_bins); equal confidences may straddle a
    boundary. Edges, for plotting only: the lowest confidence, the midpoints between neighbouring
    bins, the highest confidence.
    """
    n = len(conf)
    if binning == "equal_width":
        edges = np.arange(n_bins + 1) / n_bins
        index = np.ceil(conf * n_bins).astype(np.intp)
        index -= 1
        np.clip(index, 0, n_bins - 1, out=index)
        index -= (conf <= edges[index]) & (index > 0)
        index += conf > edges[index + 1]
        return index, edges
    order = np.argsort(conf, kind="stable")
    index = np.empty(n, dtype=np.intp)
    index[order] = np.arange(n) * n_bins // n
    first = -(-np.arange(n_bins + 1) * n // n_bins)  # first sorted position of each bin: ceil(m·N/n)
    ordered = conf[order]
    inner = np.clip(first[1:-1], 1, n - 1) if n > 1 else np.zeros(n_bins - 1, dtype=np.intp)
    mids = (ordered[inner - 1] + ordered[inner]) / 2 if n > 1 else np.full(n_bins - 1, ordered[0])
    return index, np.concatenate([ordered[:1], mids, ordered[-1:]])


def _bin_sums(index: np.ndarray, conf: np.ndarray, hits: np.ndarray, n_bins: int):
    """(count, Σ (conf − hit)) per bin: all that the three norms need."""
    counts = np.bincount(index, minlength=n_bins)
    gaps = np.bincount(index, weights=conf - hits, minlength=n_bins)
    return counts, gaps


def _errors(counts: np.ndarray, gaps: np.ndarray, norm: str) -> np.ndarray | float:
    """Calibration error under ``norm`` from per-bin counts and summed gaps (last axis = bins).

    ECE = Σ_m |B_m|/N · |acc_m − conf_m| = Σ_m |Σ_{i∈B_m} (conf_i − hit_i)| / N; RMSCE and MCE divide by
    the counts of the non-empty bins. Works on one row of bins or on [R, n_bins] (bootstrap).
    """
    total = counts.sum(axis=-1)
    if norm == "l1":
        return np.abs(gaps).sum(axis=-1) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_gap = np.where(counts > 0, np.abs(gaps) / counts, 0.0)
    if norm == "l2":
        return np.sqrt((mean_gap * np.abs(gaps)).sum(axis=-1) / total)
    return mean_gap.max(axis=-1)


def _top_label_error(conf, hits, n_bins, norm, binning) -> float:
    index, _ = _bin_index(conf, n_bins, binning)
    if norm == "l1":  # the ECE needs only the gap sums: skip the counts
        return float(np.abs(np.bincount(index, weights=conf - hits, minlength=n_bins)).sum() / len(conf))
    return float(_errors(*_bin_sums(index, conf, hits, n_bins), norm))
