"""The ensemble of a method's seeds, scored like one run, from the files the runs already wrote.

A comparison trains k seeds of each method; averaging their kept models' probabilities is the
calibration baseline practitioners weigh MixUp against, and costs no training. For each method with
two or more seeds:

* the members' probabilities are read from each run's ``eval_predictions.jsonl`` (the kept model, i.e.
  the best epoch, on every evaluation example, before any temperature) and averaged per example. Every
  member must list the same examples with the same labels in the same order: the runs of a comparison
  read the same evaluation file with the same ``--max_eval_samples``, and anything else is refused;
* the mean probabilities are scored with the metrics of a single run (``make_compute_metrics``: accuracy
  or MCC, NLL, ECE, signed gap, AURC and the other estimators); their log is the ensemble's logits, so
  ``eval_loss`` is their cross-entropy, ``eval_nll``;
* with ``--temperature_scaling`` one T is fitted on the ensemble's calibration logits (the log of the
  mean probabilities) and every number is taken on the scored examples, before (``eval_*``) and after
  (``eval_ts_*``) T, as a run does. The examples are those of the first seed's split (its
  ``eval_temperature_scaling.json``); with ``--calibration_file`` or a fixed ``--calibration_seed``
  every seed has that split. With ``--calibration_file`` the members' ``calibration_predictions.jsonl``
  are averaged; a run written before that file existed gets no after-T numbers;
* shifted sets (``--shift_eval_files``) likewise from ``NAME_predictions.jsonl``, after T with the
  in-domain ensemble T (``NAME_ts_*``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .evaluation import CALIBRATION_PREDICTIONS_FILE, PREDICTIONS_FILE, make_compute_metrics
from .temperature_scaling import TEMPERATURE_FILE


def read_predictions(folder: Path, file: str) -> tuple[list, np.ndarray, np.ndarray]:
    """(idx, probabilities [n, C], labels) of one prediction file."""
    rows = [json.loads(line) for line in (folder / file).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["idx"] for row in rows], np.asarray([row["probs"] for row in rows], dtype=np.float64), \
        np.asarray([row["label"] for row in rows])


def mean_probabilities(folders: list[Path], file: str) -> tuple[list, np.ndarray, np.ndarray]:
    """(idx, the members' mean probabilities, labels); refuses members that scored other examples."""
    members = [read_predictions(folder, file) for folder in folders]
    idx, _, labels = members[0]
    for folder, (other_idx, _, other_labels) in zip(folders[1:], members[1:]):
        if other_idx != idx or not np.array_equal(other_labels, labels):
            raise ValueError(f"{folder / file} lists other examples (or labels) than {folders[0] / file}: an "
                             "ensemble averages the same examples; rerun the comparison's runs with the same data")
    return idx, np.mean([probs for _, probs, _ in members], axis=0), labels


def ensemble_logits(probs: np.ndarray) -> np.ndarray:
    """The log of the mean probabilities (softmax of it gives them back); a probability that underflowed
    to 0 in every member becomes the smallest positive float rather than -inf."""
    return np.log(np.clip(probs, np.finfo(np.float64).tiny, None))


def ensemble_metrics(folders: list[Path], task, n_bins: int, shift_names: list[str] = ()) -> dict:
    """The ensemble of the runs in ``folders`` scored like one run: the keys of a run's all_results.json
    (``eval_*``, ``eval_ts_*`` and ``temperature`` with temperature scaling, ``NAME_*`` per shifted set)
    and ``members``."""
    compute = make_compute_metrics(task.metric, n_bins=n_bins)
    idx, probs, labels = mean_probabilities(folders, PREDICTIONS_FILE)
    logits = ensemble_logits(probs)
    temperature, scored = _ensemble_temperature(folders, idx, logits, labels)

    def score(prefix: str, z: np.ndarray, y: np.ndarray) -> dict:  # as a run: NAME_*, NAME_loss, NAME_ts_*
        before = compute((z, y))
        out = {**{f"{prefix}_{k}": v for k, v in before.items()}, f"{prefix}_loss": before["nll"]}
        if temperature is not None:
            out.update({f"{prefix}_ts_{k}": v for k, v in compute((z / temperature, y)).items()})
        return out

    out = {"members": len(folders), **score("eval", logits[scored], labels[scored]), "eval_samples": len(scored)}
    if temperature is not None:
        out["temperature"] = temperature
    for name in shift_names:
        _, shift_probs, shift_labels = mean_probabilities(folders, f"{name}_predictions.jsonl")
        out.update(score(name, ensemble_logits(shift_probs), shift_labels))
    return out


def _ensemble_temperature(folders: list[Path], idx: list, logits: np.ndarray, labels: np.ndarray):
    """(the ensemble's T or None, the positions of the scored examples), from the first seed's
    temperature-scaling record: its split's calibration rows, or the members' calibration-file
    predictions (None when a member lacks them)."""
    from .calibration import fit_temperature

    record = folders[0] / TEMPERATURE_FILE
    if not record.exists():
        return None, np.arange(len(idx))
    split = json.loads(record.read_text(encoding="utf-8"))
    position = {i: p for p, i in enumerate(idx)}
    scored = np.asarray([position[i] for i in split["scored_idx"]])
    if not split["calibration_source"].startswith("file"):
        rows = np.asarray([position[i] for i in split["calibration_idx"]])
        return fit_temperature(logits[rows], labels[rows]), scored
    if not all((folder / CALIBRATION_PREDICTIONS_FILE).exists() for folder in folders):
        return None, scored
    _, cal_probs, cal_labels = mean_probabilities(folders, CALIBRATION_PREDICTIONS_FILE)
    return fit_temperature(ensemble_logits(cal_probs), cal_labels), scored
