"""The model card (README.md) the run scripts write: a ``huggingface_hub.ModelCard`` the Hub can render.

The generic Trainer card does not fit a MixUp run: it links a local model folder as
``https://huggingface.co//abs/path``, its ``model-index`` stays empty because it cannot map our
metrics to a dataset, and it knows nothing of MixUp or calibration. Here the metadata is built with
``huggingface_hub``'s ``ModelCardData`` / ``EvalResult`` (so it round-trips through ``ModelCard.load``
and ``metadata_load``), and the text reuses transformers' own hyperparameter list and per-epoch table.

* ``base_model`` is the Hub id the model was loaded from, and is left out for a local folder.
* ``model-index`` holds one entry per evaluated metric (task metric, accuracy, loss, ECE, MCE, Brier,
  NLL; Pearson/Spearman/MSE for regression), with the values written to ``all_results.json``.
"""

from __future__ import annotations

import os
from pathlib import Path

# all_results.json key (without "eval_") -> name shown on the Hub
METRIC_NAMES = {
    "matthews_correlation": "Matthews correlation (MCC)",
    "f1": "F1",
    "pearson": "Pearson correlation",
    "spearmanr": "Spearman correlation",
    "mse": "Mean squared error",
    "accuracy": "Accuracy",
    "loss": "Loss (cross-entropy)",
    "ece": "Expected calibration error (ECE)",
    "mce": "Maximum calibration error (MCE)",
    "brier": "Brier score",
    "nll": "Negative log-likelihood",
    "ts_ece": "ECE after temperature scaling",
    "ts_nll": "Negative log-likelihood after temperature scaling",
    "ts_brier": "Brier score after temperature scaling",
}
CALIBRATION_METRICS = ("ece", "mce", "ts_ece")


def hub_base_model(model_name_or_path: str) -> str | None:
    """The Hub id the model came from, or None for a local folder (which the Hub cannot link to)."""
    return None if os.path.isdir(model_name_or_path) else model_name_or_path


def card_metrics(task, eval_metrics: dict | None) -> dict[str, float]:
    """{metric: value} for the model-index, in display order: the task's metric first."""
    if not eval_metrics:
        return {}
    order = dict.fromkeys([task.metric, *METRIC_NAMES])
    return {k: float(eval_metrics[f"eval_{k}"]) for k in order if f"eval_{k}" in eval_metrics}


def _eval_results(task, metrics: dict, local: dict, dataset_name: str | None, n_bins: int):
    from huggingface_hub import EvalResult

    if local:  # files on the user's disk: no Hub dataset id to claim
        dataset = {"dataset_type": task.name, "dataset_name": f"{task.name} (local files)",
                   "dataset_split": "validation"}
    else:
        hub_path = dataset_name or task.hub_path
        dataset = {"dataset_type": hub_path, "dataset_name": f"{hub_path} {task.hub_config or ''}".strip(),
                   "dataset_config": None if dataset_name else task.hub_config,
                   "dataset_split": task.hub_split("validation")}
    return [
        EvalResult(task_type="text-classification", task_name="Text Classification", **dataset,
                   metric_type=key, metric_name=METRIC_NAMES.get(key, key), metric_value=value,
                   metric_config=f"{n_bins} equal-width bins, top-label confidence" if key in CALIBRATION_METRICS
                   else None)
        for key, value in metrics.items()
    ]


def architecture(trainer) -> str:
    """The class a user loads the saved model as (e.g. ``BertForSequenceClassification``), under any
    PEFT / DDP wrapper: what ``save_pretrained`` writes to config.json's ``architectures``. A model may
    save itself as its parent class (``MixUpBertForSequenceClassification`` saves as
    ``BertForSequenceClassification``, so that it loads without this package); such a class names what
    it saves as in ``saved_architecture``. Not ``config.architectures`` itself: a loaded checkpoint's
    config still names the class it was saved from (often a pre-training head) until the fine-tuned
    model is saved."""
    from .levels import unwrap_model

    model = unwrap_model(trainer.model)
    return getattr(model, "saved_architecture", None) or _saved_class(type(model)).__name__


def _saved_class(cls: type) -> type:
    """The class whose name ``save_pretrained`` records: ``cls``, or the transformers class it saves as
    when it overrides ``save_pretrained`` outside transformers (as the MixUp BERT does)."""
    if "save_pretrained" in vars(cls) and not cls.__module__.startswith("transformers."):
        parents = [base for base in cls.__mro__[1:] if base.__module__.startswith("transformers.models.")]
        if parents:
            return parents[0]
    return cls


#: Folder names that say nothing about which model a folder holds.
GENERIC_FOLDERS = {"model", "models", "final", "best", "output", "outputs", "hf", "weights", "pretrained",
                   "snapshots", "main", "checkpoint", "checkpoints", "tmp", "temp", "."}


def local_model_name(path: str) -> str:
    """A name for a local model folder that says which model it is: its last path part, with the
    parts above it while that part is generic (``model``, ``checkpoint-500``, a Hub snapshot hash ...),
    e.g. ``all-MiniLM-L6-v2/model``. Never the full path (the card may be published)."""
    parts = [p for p in Path(os.path.abspath(os.path.expanduser(path))).parts if p not in ("/", "\\")]
    if not parts:
        return path
    kept = [parts.pop()]
    while parts and _generic(kept[0]):
        kept.insert(0, parts.pop())
    return "/".join(kept)


def _generic(name: str) -> bool:
    import re

    lowered = name.lower()
    return (lowered in GENERIC_FOLDERS or re.fullmatch(r"(checkpoint|step|epoch)[-_]?\d+", lowered) is not None
            or re.fullmatch(r"[0-9a-f]{40}", lowered) is not None)


def _level_range(levels) -> str:
    levels = sorted(levels)
    if len(levels) > 2 and levels == list(range(levels[0], levels[-1] + 1)):
        return f"{levels[0]}..{levels[-1]}"
    return ", ".join(map(str, levels))


def mixed_levels(trainer) -> str:
    """Where MixUp mixed, in the trainer's own level numbering (``trainer.mixup_levels`` of the
    ``trainer.mixup_hooks.levels.num_blocks``-block encoder the hooks found), or ``-`` without mixing."""
    if trainer.mixup_hooks is None or not trainer.mixup_levels:
        return "-"
    n = trainer.mixup_hooks.levels.num_blocks
    levels = trainer.mixup_levels
    return (f"{trainer.args.mixup_method}: level{'s' if len(levels) > 1 else ''} {_level_range(levels)} of a "
            f"{n}-block encoder (0 = input of block 1, 1..{n} = block outputs, {n + 1} = input of the final "
            "projection)")


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def build_model_card(trainer, task, model_name_or_path: str, data_summary: dict, eval_metrics: dict | None,
                     local: dict, dataset_name: str | None = None, diagram: str | None = None,
                     model_name: str | None = None, tags: list[str] | None = None, no_batch_mixed: bool = False,
                     extra_section: str = ""):
    """A ``huggingface_hub.ModelCard`` for a finished run of ``trainer`` (a MixUpTrainer).

    ``no_batch_mixed``: mixing was asked for but no logged training step mixed a batch; the card says
    the model was in effect trained without MixUp. ``extra_section``: markdown added after the MixUp
    and data tables (the temperature-scaling paragraph)."""
    from huggingface_hub import ModelCard, ModelCardData
    from transformers.modelcard import extract_hyperparameters_from_trainer, make_markdown_table, parse_log_history

    a = trainer.args
    model_name = model_name or a.hub_model_id or Path(a.output_dir).resolve().name
    base_model = hub_base_model(model_name_or_path)
    n_bins = int(data_summary.get("calibration bins", 15))
    metrics = card_metrics(task, eval_metrics)
    tags = list(dict.fromkeys([*trainer.mixup_tags, task.name, *(tags or [])]))
    data = ModelCardData(
        base_model=base_model, library_name="transformers", pipeline_tag="text-classification", tags=tags,
        datasets=None if local else [dataset_name or task.hub_path], model_name=model_name,
        eval_results=_eval_results(task, metrics, local, dataset_name, n_bins) or None,
    )
    source = (f"[{base_model}](https://huggingface.co/{base_model})" if base_model
              else f"a local model (`{local_model_name(model_name_or_path)}`)")
    lines = [
        f"# {model_name}", "",
        f"A sequence classifier for {task.name} fine-tuned from {source} with "
        f"{'no mixing (ERM)' if a.mixup_method == 'none' else a.mixup_method + ' MixUp'} by mixup-trainer, after "
        "Zhang & Vaidya (2021), *MixUp Training Leads to Reduced Overfitting and Improved Calibration for the "
        "Transformer Architecture*. It is a plain transformers model: `pipeline(\"text-classification\", "
        "model=...)` loads it without mixup-trainer.",
    ]
    if eval_metrics:
        epoch = eval_metrics.get("best_epoch", eval_metrics.get("epoch", 0))
        lines += [
            "", f"## Evaluation and calibration (epoch {epoch:g}, {eval_metrics.get('eval_samples')} examples)", "",
            f"ECE and MCE use the top-label confidence in {n_bins} equal-width bins (Guo et al., 2017).", "",
            "| " + " | ".join(metrics) + " |", "|" + "---|" * len(metrics),
            "| " + " | ".join(_fmt(v) for v in metrics.values()) + " |",
        ]
        if diagram:
            lines += ["", f"![Reliability diagram]({diagram})", "", f"Reliability diagram: [{diagram}]({diagram})."]
    layers = a.mixup_layers or "all of 0..n+1"
    lines += [
        "", "## MixUp training", "",
        "| setting | value |", "|---|---|",
        f"| architecture | {architecture(trainer)} |",
        f"| mixup_method | {a.mixup_method} |",
        f"| mixup_alpha (λ ~ Beta(α, α)) | {a.mixup_alpha} |",
        f"| mixup_layers | {layers if a.mixup_method == 'manifold' else '-'} |",
        f"| levels mixed | {mixed_levels(trainer)} |",
        f"| mixup_padding / mixup_pad_token | {a.mixup_padding} / {a.mixup_pad_token} |",
        f"| mixup_partners | {a.mixup_partners} |",
        f"| mixup_start (fraction of training) | {a.mixup_start} |",
        *(["", "**No logged training step mixed a batch**: despite the settings above, this model was trained "
            "without MixUp."] if no_batch_mixed else []),
        "", "## Data", "", "| | |", "|---|---|",
        *(f"| {key} | {value} |" for key, value in data_summary.items()),
        *([extra_section.rstrip("\n")] if extra_section else []),
        "", "## Training hyperparameters", "",
        *(f"- {name}: {value}" for name, value in extract_hyperparameters_from_trainer(trainer).items()),
    ]
    _, eval_lines, _ = parse_log_history(trainer.state.log_history)
    if eval_lines:
        lines += ["", "### Training results", "", make_markdown_table(eval_lines).rstrip("\n")]
    import datasets
    import torch
    import transformers

    lines += ["", "### Framework versions", "", f"- Transformers {transformers.__version__}",
              f"- Pytorch {torch.__version__}", f"- Datasets {datasets.__version__}"]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")
