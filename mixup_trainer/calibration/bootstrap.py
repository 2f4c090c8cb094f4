"""Bootstrap percentile intervals of the binned calibration errors, vectorised over resamples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .binning import _bin_index, _check_binning, _errors, _top_label_error
from .inputs import _check_confidence, _check_n_bins, _check_norm, _read, _top_label


@dataclass(frozen=True)
class BootstrapInterval:
    """A bootstrap percentile interval: ``estimate`` on all examples, [``low``, ``high``] its
    ``confidence_level`` interval over ``n_resamples`` resamples drawn with ``seed``."""

    estimate: float
    low: float
    high: float
    confidence_level: float
    n_resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def bootstrap_calibration_error(
    predictions: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    binning: str = "equal_width",
    from_logits: bool = False,
    confidence: str = "top_label",
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    seed: int = 0,
    chunk_size: int | None = None,
) -> BootstrapInterval:
    """Percentile bootstrap interval of the ECE (or RMSCE/MCE): resample the N examples with
    replacement ``n_resamples`` times and take the (1 ± level)/2 quantiles of the recomputed error.

    Vectorised over resamples, in chunks of about ``chunk_size`` (default 2**22) drawn indices. The
    examples are sorted by confidence once; a chunk draws an [R, N] matrix of sorted positions, and
    every (resample, bin) pair gets a flat id r · n_bins + bin, so two ``np.bincount`` calls (counts,
    and gap sums weighted by conf − hit) give every resample's per-bin numbers at once, into R ·
    n_bins cells that stay in cache. Equal-width bins are a lookup per drawn example; equal-mass
    bins are fixed positions in each resample's sorted order, so the positions of each row are
    sorted first and bin j · n_bins // N applies to the j-th. Deterministic for a given ``seed``:
    resample r is row r of ``rng.integers(0, N, (R, N), dtype=np.int32)`` drawn chunk after chunk
    from ``np.random.default_rng(seed)``, as positions in confidence order (stable sort).

    >>> interval = bootstrap_calibration_error([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], [0, 0, 1, 1],
    ...                                        n_bins=10, n_resamples=200, seed=0)
    >>> round(interval.estimate, 4), interval.low <= interval.estimate <= interval.high
    (0.3, True)
    """
    n_bins, norm = _check_n_bins(n_bins), _check_norm(norm)
    confidence, binning = _check_confidence(confidence), _check_binning(binning)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer (e.g. 1000), got {n_resamples!r}.")
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must lie in (0, 1) (e.g. 0.95), got {confidence_level!r}.")
    preds, labels_arr = _read(predictions, labels, from_logits)
    conf, hits = _top_label(preds, labels_arr, from_logits, confidence)
    estimate = _top_label_error(conf, hits, n_bins, norm, binning)  # exactly expected_calibration_error's
    order = np.argsort(conf, kind="stable")
    conf, hits = conf[order], hits[order]
    gap, n = conf - hits, len(conf)
    index, _ = _bin_index(conf, n_bins, binning)  # on sorted input, equal_mass gives j · n_bins // N

    rng = np.random.default_rng(seed)
    rows = max(1, min(n_resamples, (chunk_size or (1 << 22)) // n))
    stats = []
    for start in range(0, n_resamples, rows):
        r = min(rows, n_resamples - start)
        draws = rng.integers(0, n, size=(r, n), dtype=np.int32 if n < 2**31 else np.int64)
        offsets = (np.arange(r) * n_bins)[:, None]
        if binning == "equal_width":
            flat = (index[draws] + offsets).ravel()
        else:
            draws.sort(axis=1)
            flat = (index[None, :] + offsets).ravel()
        counts = np.bincount(flat, minlength=r * n_bins).reshape(r, n_bins)
        gaps = np.bincount(flat, weights=gap[draws].ravel(), minlength=r * n_bins).reshape(r, n_bins)
        stats.append(_errors(counts, gaps, norm))
    stats = np.concatenate(stats)
    low, high = np.quantile(stats, [(1 - confidence_level) / 2, (1 + confidence_level) / 2])
    return BootstrapInterval(estimate, float(low), float(high), float(confidence_level), int(n_resamples), int(seed))
