"""Expected Calibration Error as an `evaluate` metric module.

`evaluate.load("<this folder>")` copies this file into its module cache before importing it, so the
helpers are imported absolutely from the installed `mixup_trainer` package (a relative import would
break there). All arithmetic lives in `mixup_trainer.calibration`; this file only adapts the inputs.
"""

import os

import datasets
import evaluate
import numpy as np

from mixup_trainer.calibration import calibration_report, classwise_calibration_error

_CITATION = """\
@inproceedings{guo2017calibration,
  title     = {On Calibration of Modern Neural Networks},
  author    = {Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.},
  booktitle = {Proceedings of the 34th International Conference on Machine Learning},
  pages     = {1321--1330},
  year      = {2017},
}
"""

_DESCRIPTION = """\
Expected Calibration Error (ECE): how far a classifier's confidence is from its accuracy. Predictions
are grouped into `n_bins` equal-width bins by top-label confidence p = max_c P(c); bin m holds p in
(m/n, (m+1)/n] (p = 0 in the first bin), and ECE = sum_m |B_m|/N * |accuracy(B_m) - confidence(B_m)|.
Computed in float64. norm="l2" gives the RMS calibration error, norm="max" the maximum (MCE).
binning="equal_mass" gives the adaptive ECE (bins of equal count); classwise=True the classwise ECE
(the mean over classes c of the binned error of P(c) against y = c).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one row per example, either C probabilities (or logits with `from_logits=True`),
        or one float per example: P(class 1) of a binary task (or the logit of class 1).
    references: integer class ids in 0..C-1.
    n_bins (int): number of equal-width bins, default 15.
    norm (str): "l1" (ECE, default), "l2" (RMS calibration error) or "max" (MCE).
    from_logits (bool): predictions are logits; softmax (sigmoid for one float per example) in float64.
    confidence (str): "top_label" (default) or "positive_class" (binary only: bins P(class 1) against
        the frequency of class 1, like torchmetrics' binary_calibration_error).
    binning (str): "equal_width" (default: bins (m/n, (m+1)/n]) or "equal_mass" (adaptive: sorted by
        confidence, n_bins bins of equal count).
    classwise (bool): classwise ECE (Kull et al., 2019) instead of top-label; default False.
    detailed (bool): also return MCE, RMSCE, overconfidence, Brier, NLL, accuracy, AURC and the per-bin data.
    n_bins, norm, from_logits, confidence, binning, classwise and detailed can also be given to
    `evaluate.load(...)`, which
    makes them the defaults of that instance (useful with `evaluate.combine`, which passes the same
    compute keyword arguments to every module).
Returns:
    expected_calibration_error (float): the calibration error under `norm`, in [0, 1].
    With detailed=True also: maximum_calibration_error, rms_calibration_error (top-label, with the
    chosen binning), overconfidence (mean confidence - accuracy), brier_score (multiclass
    form, in [0, 2]), negative_log_likelihood, accuracy, aurc (area under the risk-coverage curve,
    lower is better), bin_edges, bin_counts, bin_accuracy and bin_confidence (lists; None for empty bins).
Examples:
    >>> ece = evaluate.load("path/to/mixup_trainer/metrics/expected_calibration_error")
    >>> ece.compute(predictions=[[0.6, 0.4], [0.59, 0.41]], references=[0, 1])
    {'expected_calibration_error': 0.095}
"""


class ExpectedCalibrationError(evaluate.Metric):
    """Top-label ECE in float64 with (lo, hi] bins; see mixup_trainer.calibration."""

    def __init__(self, n_bins=15, norm="l1", from_logits=False, confidence="top_label", binning="equal_width",
                 classwise=False, detailed=False, **kwargs):
        super().__init__(**kwargs)
        self._defaults = dict(
            n_bins=n_bins, norm=norm, from_logits=from_logits, confidence=confidence, binning=binning,
            classwise=classwise, detailed=detailed,
        )

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # Two input forms: a row of C floats per example, or one float per example (binary P(class 1)).
            # evaluate picks the first form that encodes the first example. References are read as floats:
            # an int64 feature would truncate 0.9999 to 0 before calibration.py could refuse it.
            features=[
                datasets.Features({
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Value("float64"),
                }),
                datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}),
            ],
            reference_urls=["https://arxiv.org/abs/1706.04599"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references; an empty batch is refused here because evaluate
        infers the input form from the first example and fails with an IndexError on none. A batch
        that fails discards every pending batch (see `compute`).
        """
        try:
            for name, column in (("predictions", predictions), ("references", references)):
                if column is not None and len(column) == 0:
                    raise ValueError(f"{name} is empty: the calibration error needs at least one example.")
            return super().add_batch(predictions=predictions, references=references, **kwargs)
        except Exception as err:
            self._discard_pending(err)
            raise

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Compute the calibration error of the pending batches plus `predictions` / `references`.

        A call that raises leaves the module empty, ready for the next call. `evaluate` itself keeps
        what a failed call left behind: the writer of a batch that could not be encoded (with the
        input form inferred from it, so every later batch is refused), or the cache file and its lock
        when the arithmetic refused the data (so the next call read stale rows or failed).
        """
        try:
            return super().compute(predictions=predictions, references=references, **kwargs)
        except Exception as err:
            self._discard_pending(err)
            raise

    def _discard_pending(self, err):
        """Drop the pending batches, the writer, the cache files and their locks (idempotent)."""
        if self.writer is not None:
            self.writer.close()
        paths = [*(self.file_paths or []), *([self.cache_file_name] if self.cache_file_name else [])]
        for lock in [*(self.filelocks or []), self.filelock]:
            if lock is not None and lock.is_locked:
                lock.release()
        for path in dict.fromkeys(paths):  # keep_in_memory=False: the rows went to this file
            if os.path.exists(path):
                os.remove(path)
        self.writer = self.buf_writer = self.data = self.selected_feature_format = None
        self.cache_file_name = self.filelock = self.file_paths = self.filelocks = None
        note = "The ECE module discarded its pending batches; the next call starts empty."
        if hasattr(err, "add_note") and note not in getattr(err, "__notes__", ()):  # Python >= 3.11
            err.add_note(note)

    def _compute(self, predictions, references, **kwargs):
        unknown = set(kwargs) - set(self._defaults)
        if unknown:
            raise ValueError(f"Unknown arguments {sorted(unknown)}: expected some of {sorted(self._defaults)}.")
        options = {**self._defaults, **kwargs}
        try:
            np.asarray(predictions, dtype=np.float64)
        except ValueError:
            raise ValueError(
                "predictions rows have different lengths: give every example one value per class."
            ) from None
        # Passed on as the list evaluate returns: a list keeps no dtype, and mixup_trainer.calibration reads
        # half-precision probabilities (rows summing to 1 only within bf16/fp16 rounding) from its values.
        report = calibration_report(
            predictions,
            np.asarray(references),
            n_bins=options["n_bins"],
            from_logits=options["from_logits"],
            confidence=options["confidence"],
            binning=options["binning"],
        )
        if options["classwise"]:
            if options["confidence"] != "top_label":
                raise ValueError("classwise=True bins every class's probability; confidence does not apply.")
            value = classwise_calibration_error(
                predictions, np.asarray(references), n_bins=options["n_bins"], norm=options["norm"],
                from_logits=options["from_logits"], binning=options["binning"],
            )
        else:
            value = report.calibration_error(options["norm"])
        result = {"expected_calibration_error": value}
        if options["detailed"]:
            details = report.to_dict()
            result.update(
                maximum_calibration_error=report.mce,
                rms_calibration_error=report.rmsce,
                overconfidence=report.overconfidence,
                brier_score=report.brier,
                negative_log_likelihood=report.nll,
                accuracy=report.accuracy,
                aurc=report.aurc,
                **{key: details[key] for key in ("bin_edges", "bin_counts", "bin_accuracy", "bin_confidence")},
            )
        return result
