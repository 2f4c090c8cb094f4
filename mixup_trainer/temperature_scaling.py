"""Temperature scaling as a step of a run: fit T on calibration examples, score before and after on
other examples, fold T into the classifier so the saved model is a plain, calibrated model.

The maths (the NLL fit of T) is ``calibration.fit_temperature``; this module is the run's use of it.

Which examples each number covers (written to ``all_results.json`` as ``calibration_source``):

* ``--calibration_file F``: T is fitted on the examples of F; the evaluation set is scored whole,
  so every ``eval_*`` number is the usual one and ``eval_ts_*`` is the same set after scaling.
* otherwise a seeded split of the evaluation set (``--calibration_fraction``, default 0.5, and
  ``--calibration_seed``, default ``--seed``): T is fitted on that fraction, and *every* ``eval_*``
  and ``eval_ts_*`` number is recomputed on the remaining examples only (``eval_samples`` is their
  count; ``eval_loss`` becomes their cross-entropy, = ``eval_nll``). So ``eval_ece`` and
  ``eval_ts_ece`` always describe the same examples, none of which T has seen. The best epoch was
  still chosen on the whole evaluation set, as without temperature scaling.

The fitted T is folded into the classifier's final projection (the last ``nn.Linear`` whose
``out_features`` is the number of labels): W ← W / T, b ← b / T, since (W h + b) / T = (W/T) h + b/T.
The model saved afterwards is a plain checkpoint whose ``pipeline(...)`` probabilities are the
calibrated ones, and ``--do_predict`` (which runs after evaluation) writes calibrated probabilities.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluation import CALIBRATION_PREDICTIONS_FILE, logits_of, write_predictions
from .levels import final_projection
from .output_dir import write_text_atomic

logger = logging.getLogger(__name__)

TEMPERATURE_FILE = "eval_temperature_scaling.json"
TS_DIAGRAM_FILE = "eval_ts_reliability_diagram.png"


def fold_temperature(model, temperature: float) -> None:
    """Divide the final projection's weight and bias by T in place: logits become logits / T.

    The quotient is taken in float64 and rounded once into the parameters' own dtype (float32 after a --bf16
    or --fp16 run, whose weights stay float32; bf16 for a model held in bf16), so the saved weights are the
    exact W/T and b/T of that dtype (dividing a float32 tensor by T rounds T to float32 first)."""
    import torch

    layer = final_projection(model)[1]  # the module whose input is MixUp's level n+1
    with torch.no_grad():
        for param in (layer.weight, layer.bias):
            if param is not None:
                param.copy_(param.double() / temperature)


def split_evaluation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration rows, scored rows): a seeded random ``fraction`` of range(n) and the rest, each sorted."""
    n_cal = int(round(fraction * n))
    if not 1 <= n_cal <= n - 1:
        raise ValueError(
            f"--calibration_fraction {fraction} of {n} evaluation examples leaves {n_cal} for calibration and "
            f"{n - n_cal} to score; both need at least one (use more evaluation examples or another fraction)."
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:n_cal]), np.sort(perm[n_cal:])


@dataclass(frozen=True)
class CalibrationSplit:
    """Which examples T is fitted on and which are scored: the calibration rows of the evaluation set
    (None with a ``--calibration_file``, whose examples are ``raw["calibration"]``), the scored rows
    of the evaluation set, and a sentence saying which."""

    calibration_rows: np.ndarray | None
    scored_rows: np.ndarray
    source: str


def calibration_split(task, cal_args, raw, run_seed: int) -> CalibrationSplit:
    """The run's :class:`CalibrationSplit`, checked: computed once, right after the data is read and
    before the model loads, so that a split T cannot be fitted on (nothing to score, one class only,
    unlabelled calibration rows) is refused before anything trains. The split's seed is
    --calibration_seed, else the run's --seed."""
    raw_eval = raw["validation"]
    if cal_args.calibration_file is not None:
        labels = np.asarray(raw["calibration"]["label"])
        if (labels < 0).any():
            raise ValueError(f"--calibration_file {cal_args.calibration_file} has unlabelled rows (label -1); "
                             "temperature scaling needs a label for every calibration example.")
        _check_classes(labels, f"--calibration_file {cal_args.calibration_file}")
        source = f"file {cal_args.calibration_file} ({len(labels)} examples); all evaluation examples scored"
        return CalibrationSplit(None, np.arange(len(raw_eval)), source)
    seed = run_seed if cal_args.calibration_seed is None else cal_args.calibration_seed
    cal_rows, scored = split_evaluation(len(raw_eval), cal_args.calibration_fraction, seed)
    _check_classes(np.asarray(raw_eval["label"])[cal_rows],
                   f"the calibration split (--calibration_fraction {cal_args.calibration_fraction:g}, seed {seed})")
    source = (f"random {cal_args.calibration_fraction:g} of the evaluation set (seed {seed}, "
              f"{len(cal_rows)} examples); the other {len(scored)} scored")
    return CalibrationSplit(cal_rows, scored, source)


def _check_classes(labels: np.ndarray, what: str) -> None:
    if len(np.unique(labels)) < 2:
        raise ValueError(f"{what} holds only class {labels[0] if len(labels) else '-'}: a temperature fitted on one "
                         "class only grows without bound. Use more evaluation examples, another --calibration_seed "
                         "or --calibration_fraction, or a --calibration_file with both classes.")


def apply_temperature_scaling(trainer, task, cal_args, raw, tokenised, eval_logits: np.ndarray,
                              split: CalibrationSplit) -> dict:
    """Fit T, score before/after, fold T into the model and save it; return the metrics to merge into
    the evaluation's (``eval_*`` of the scored examples, ``eval_ts_*``, ``temperature``, ...).

    Runs on every process (``predict`` is collective); only the main process writes files.
    """
    from .calibration import calibration_report, fit_temperature, plot_reliability_diagram
    from .evaluation import make_compute_metrics

    args = trainer.args
    raw_eval = raw["validation"]
    eval_logits = logits_of(eval_logits).astype(np.float64)
    eval_labels, eval_ids = np.asarray(raw_eval["label"]), np.asarray(raw_eval["idx"])
    scored, source = split.scored_rows, split.source
    if split.calibration_rows is None:  # a --calibration_file
        cal_labels = np.asarray(raw["calibration"]["label"])
        cal_logits = logits_of(trainer.predict(tokenised["calibration"], metric_key_prefix="calibration").predictions)
        cal_logits = cal_logits.astype(np.float64)
        cal_ids = [int(i) for i in raw["calibration"]["idx"]]
    else:
        cal_rows = split.calibration_rows
        cal_logits, cal_labels = eval_logits[cal_rows], eval_labels[cal_rows]
        cal_ids = eval_ids[cal_rows].tolist()

    temperature = fit_temperature(cal_logits, cal_labels)
    logger.info("Temperature scaling: T = %.4f fitted on %s", temperature, source)
    compute = make_compute_metrics(task.metric, n_bins=cal_args.calibration_bins)
    logits, labels = eval_logits[scored], eval_labels[scored]
    before = compute((logits, labels))
    after = compute((logits / temperature, labels))
    out = {f"eval_{k}": v for k, v in before.items()}
    out.update({f"eval_ts_{k}": v for k, v in after.items()})
    if cal_args.calibration_file is None:  # eval_loss of the scored rows: the cross-entropy of their logits
        out["eval_loss"] = before["nll"]
    out.update(temperature=temperature, calibration_source=source, calibration_samples=len(cal_labels),
               eval_samples=len(scored))

    fold_temperature(trainer.model, temperature)
    trainer.save_model()  # the plain model, now with T folded into its classifier
    if trainer.is_world_process_zero():
        n_bins = cal_args.calibration_bins
        reports = [calibration_report(x, labels, n_bins=n_bins, from_logits=True)
                   for x in (logits, logits / temperature)]
        plot_reliability_diagram(reports[0], path=os.path.join(args.output_dir, TS_DIAGRAM_FILE), overlay=reports[1],
                                 names=("before", f"after temperature scaling, T = {temperature:.3g}"),
                                 title=f"{task.name}, mixup {args.mixup_method}, {len(scored)} scored examples")
        record = {"temperature": temperature, "calibration_source": source, "calibration_idx": cal_ids,
                  "scored_idx": eval_ids[scored].tolist(), "folded_into":
                  "weight and bias of the last nn.Linear with out_features == num_labels", "before": before,
                  "after": after}
        write_text_atomic(Path(args.output_dir, TEMPERATURE_FILE), json.dumps(record, indent=2))
        if split.calibration_rows is None:  # the calibration-file rows are in no other prediction file
            write_predictions(os.path.join(args.output_dir, CALIBRATION_PREDICTIONS_FILE), raw["calibration"],
                              cal_logits, task)
    return out

