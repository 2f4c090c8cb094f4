"""Evaluation under a change of domain: the kept model scored on extra labelled files
(``--shift_eval_files NAME=PATH,...``), beside the in-domain evaluation.

Each file is read like the validation file (same formats and column rules, labels required) before
anything trains, so a missing or malformed file is refused in one line. After training the kept
model (the best epoch) predicts each file once; ``all_results.json`` gains ``NAME_accuracy``,
``NAME_loss``, ``NAME_ece``, ``NAME_aurc``, ``NAME_overconfidence`` (the signed gap) and the other
calibration metrics of ``make_compute_metrics``, and ``NAME_predictions.jsonl`` holds the
per-example probabilities. With ``--temperature_scaling`` the temperature T fitted *in-domain* is
applied unchanged (``NAME_ts_*``): a shifted domain has no labels to fit T on in practice, which is
exactly the situation Desai & Durrett (2020) measure.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .evaluation import logits_of

#: Names a shifted set cannot take: they are the splits and metric prefixes of the run itself.
RESERVED_NAMES = ("train", "validation", "eval", "test", "predict", "calibration")
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: The shifted metrics shown in the model card and the comparison, in this order.
CARD_KEYS = ("accuracy", "loss", "ece", "aurc", "overconfidence", "nll")


def parse_shift_files(value: str | None) -> dict[str, str]:
    """'yelp=a.tsv,amazon=b.tsv' -> {'yelp': 'a.tsv', 'amazon': 'b.tsv'}, refusing malformed entries,
    reserved or repeated names and files that do not exist, each in one line."""
    if value is None:
        return {}
    files: dict[str, str] = {}
    for entry in [e.strip() for e in value.split(",")]:
        name, sep, path = (part.strip() for part in entry.partition("="))
        if not sep or not name or not path:
            raise ValueError(f"--shift_eval_files: {entry!r} is not NAME=PATH; write e.g. "
                             "--shift_eval_files yelp=data/yelp.tsv,amazon=data/amazon.tsv")
        if not NAME_PATTERN.match(name) or name.lower() in RESERVED_NAMES:
            raise ValueError(f"--shift_eval_files: {name!r} cannot name a shifted set (letters, digits and _, starting "
                             f"with a letter; not one of {', '.join(RESERVED_NAMES)}): it prefixes the metric keys.")
        if name in files:
            raise ValueError(f"--shift_eval_files: the name {name!r} is given twice; give each file its own name.")
        if not Path(path).is_file():
            raise FileNotFoundError(f"--shift_eval_files: {name}={path}: no such file.")
        files[name] = path
    return files


def load_shift_sets(task, files: dict[str, str]) -> dict:
    """{name: raw Dataset} in the uniform schema, every row labelled (read before training; a regression
    task was refused at parse time)."""
    from .data import read_local_file

    sets = {}
    for name, path in files.items():
        dataset = read_local_file(path, task, "validation")
        if (np.asarray(dataset["label"]) < 0).any():
            raise ValueError(f"--shift_eval_files {name}={path} has unlabelled rows: every shifted example needs a "
                             "label to be scored.")
        sets[name] = dataset
    return sets


def evaluate_shift_sets(trainer, task, raw, tokenised, names, write_predictions) -> tuple[dict, dict]:
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


def card_section(metrics: dict | None, names) -> str:
    """Model-card table of the shifted sets beside the in-domain evaluation ("" without any)."""
    names = list(names)
    if not metrics or not names:
        return ""
    domains = [("in-domain (eval)", "eval")] + [(name, name) for name in names]
    keys = [k for k in CARD_KEYS if all(f"{prefix}_{k}" in metrics for _, prefix in domains)]
    ts_keys = [k for k in ("ece", "nll") if all(f"{prefix}_ts_{k}" in metrics for _, prefix in domains)]
    head = ["domain", "examples", *keys, *(f"{k} after T" for k in ts_keys)]
    rows = [f"| {label} | {metrics.get(f'{prefix}_samples', '?')} | "
            + " | ".join(f"{metrics[f'{prefix}_{k}']:.4f}" for k in keys)
            + "".join(f" | {metrics[f'{prefix}_ts_{k}']:.4f}" for k in ts_keys) + " |"
            for label, prefix in domains]
    note = (" The temperature was fitted in-domain and applied unchanged to the shifted sets." if ts_keys else "")
    return "\n".join(["", "## Under a change of domain", "",
                      "The kept model scored on extra labelled sets (`--shift_eval_files`); overconfidence = mean "
                      "confidence − accuracy; AURC = area under the risk–coverage curve (lower: the confident "
                      f"predictions are the right ones).{note}", "",
                      "| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows]) + "\n"
