"""Evaluation under a change of domain: the kept model scored on extra labelled files
(``--shift_eval_files NAME=PATH,...``), beside the in-domain evaluation.

Each file is read like the validation file (same formats and column rules, labels required) before
anything trains (``data.load_shift_sets``), so a missing or malformed file is refused in one line. After training the kept
model (the best epoch) predicts each file once; ``all_results.json`` gains ``NAME_accuracy``,
``NAME_loss``, ``NAME_ece``, ``NAME_aurc``, ``NAME_overconfidence`` (the signed gap) and the other
calibration metrics of ``make_compute_metrics``, and ``NAME_predictions.jsonl`` holds the
per-example probabilities. With ``--temperature_scaling`` the temperature T fitted *in-domain* is
applied unchanged (``NAME_ts_*``): a shifted domain has no labels to fit T on in practice, which is
exactly the situation Desai & Durrett (2020) measure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .evaluation import logits_of, write_predictions

#: The shifted metrics shown in the model card and the comparison, in this order.
CARD_KEYS = ("accuracy", "loss", "ece", "aurc", "overconfidence", "nll")


def evaluate_shift_sets(trainer, task, raw, tokenised, names) -> tuple[dict, dict]:
    """Predict each shifted set with the trainer's current model: (metrics ``NAME_*``, logits by
    name). Writes ``NAME_predictions.jsonl`` on the main process."""
    metrics: dict = {}
    logits = {}
    for name in names:
        output = trainer.predict(tokenised[name], metric_key_prefix=name)
        logits[name] = logits_of(output.predictions)
        metrics.update(output.metrics)
        metrics[f"{name}_samples"] = len(raw[name])
        if trainer.is_world_process_zero():
            write_predictions(str(Path(trainer.args.output_dir, f"{name}_predictions.jsonl")), raw[name],
                              logits[name], task)
    return metrics, logits


def temperature_scaled(compute_metrics, raw, logits: dict, temperature: float) -> dict:
    """``NAME_ts_*``: every shifted set scored after dividing its logits by the in-domain T."""
    out = {}
    for name, z in logits.items():
        after = compute_metrics((np.asarray(z, dtype=np.float64) / temperature, np.asarray(raw[name]["label"])))
        out.update({f"{name}_ts_{k}": v for k, v in after.items()})
    return out

