"""The model card (README.md) the run scripts write, rendered in this one module from the run's arguments,
data summary and metrics: a ``huggingface_hub.ModelCard`` the Hub can render.

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

import logging
import os
from pathlib import Path

from .shift_eval import CARD_KEYS

logger = logging.getLogger(__name__)

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


def objective(a) -> str:
    """The loss, as the card states it: MixUp's, or RegMixup's with its η."""
    return f"regmix (CE(clean) + {a.mixup_reg_weight:g} · MixUp loss)" if a.mixup_objective == "regmix" else "mix"


def kernel(a) -> str:
    return (f"τ_max = {a.mixup_kernel_tau_max:g}, τ_std = {a.mixup_kernel_tau_std:g}"
            if a.mixup_similarity_kernel else "off")


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


def build_model_card(trainer, args, data_summary: dict, eval_metrics: dict | None, model_name: str | None = None,
                     tags: list[str] | None = None):
    """A ``huggingface_hub.ModelCard`` for a finished run of ``trainer`` (a MixUpTrainer) with the
    run's parsed arguments ``args`` (``script_args.ScriptArgs``), its data summary and its evaluation
    metrics (None without evaluation).

    When mixing was asked for but no logged training step mixed a batch, the card says the model
    was in effect trained without MixUp."""
    from huggingface_hub import ModelCard, ModelCardData
    from transformers.modelcard import extract_hyperparameters_from_trainer, make_markdown_table, parse_log_history

    from .data import local_sources
    from .evaluation import DIAGRAM_FILE

    a, task, model_name_or_path, dataset_name = trainer.args, args.task, args.model.model_name_or_path, args.data.dataset_name
    local = local_sources(args.data)
    diagram = DIAGRAM_FILE if Path(a.output_dir, DIAGRAM_FILE).is_file() else None
    no_batch_mixed = a.do_train and a.mixup_enabled and not any_batch_mixed(trainer.state)
    if no_batch_mixed:
        logger.warning("No logged training step mixed a batch: this model was trained as ERM (--mixup_method none).")
    extra_section = (lora_section(args.model) + temperature_section(eval_metrics)
                     + shift_section(eval_metrics, args.data.shift_files))
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
        f"| mixup_alpha (λ ~ Beta(α, α)) | {a.alpha} |",
        f"| mixup_objective | {objective(a)} |",
        f"| similarity kernel (λ warped per pair) | {kernel(a)} |",
        f"| mixup_layers | {layers if a.mixup_method == 'manifold' else '-'} |",
        f"| levels mixed | {mixed_levels(trainer)} |",
        f"| mixup_padding / mixup_pad_token | {a.mixup_padding} / {a.mixup_pad_token} |",
        f"| mixup_partners | {a.mixup_partners} |",
        f"| precision | {precision(trainer)} |",
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
    lines += ["", "### Framework versions", "", *framework_versions(args.model.use_peft)]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def framework_versions(use_peft: bool) -> list[str]:
    """The card's version lines: every library whose version can move the numbers. A run repeated with
    other versions of these (or of the model's files) may differ in the last digits, enough for a
    few-hundred-step run to take another path; seeds and flags alone do not pin it."""
    import accelerate
    import datasets
    import torch
    import transformers

    from . import __version__

    libraries = {"mixup-trainer": __version__, "Transformers": transformers.__version__,
                 "Pytorch": torch.__version__, "Datasets": datasets.__version__,
                 "Accelerate": accelerate.__version__}
    if use_peft:
        import peft

        libraries["PEFT"] = peft.__version__
    return [f"- {name} {version}" for name, version in libraries.items()]


def precision(trainer) -> str:
    """The card's precision row: how the run computed and in which dtype the saved weights are. --bf16 and
    --fp16 are autocast mixed precision: the weights (and optimizer) stay float32 and are saved in float32,
    the MixUp soft-label loss is taken in float32 from the logits."""
    from .levels import unwrap_model

    a = trainer.args
    saved = next(unwrap_model(trainer.model).parameters()).dtype
    saved = str(saved).removeprefix("torch.")
    if not (a.bf16 or a.fp16):
        return f"full precision; weights saved in {saved}"
    mode = "bf16" if a.bf16 else "fp16 (with loss scaling)"
    return (f"{mode} mixed precision (autocast), MixUp loss in float32 from the logits; "
            f"weights kept and saved in {saved}" + (" (as in full precision)" if saved == "float32" else ""))


def lora_section(model_args) -> str:
    """Model-card paragraph for a LoRA run: what the folder holds and how to load it ("" otherwise)."""
    if not model_args.use_peft:
        return ""
    return "\n".join([
        "", "## LoRA adapter", "",
        f"This folder holds a LoRA adapter (peft), not a full model: base model `{model_args.model_name_or_path}`, "
        f"rank {model_args.lora_r}, alpha {model_args.lora_alpha}, dropout {model_args.lora_dropout}, target modules "
        f"{model_args.lora_target_modules or 'peft default'}; the classification head is trained in full and saved "
        "with the adapter. Load it with `peft.AutoPeftModelForSequenceClassification.from_pretrained(<this folder>)`."
    ]) + "\n"


def temperature_section(eval_metrics: dict | None) -> str:
    """Model-card paragraph for a temperature-scaled model ("" without temperature scaling)."""
    if not eval_metrics or "temperature" not in eval_metrics:
        return ""
    keys = ("accuracy", "ece", "adaptive_ece", "smece", "overconfidence", "nll", "brier")
    rows = [f"| {k} | {eval_metrics[f'eval_{k}']:.4f} | {eval_metrics[f'eval_ts_{k}']:.4f} |"
            for k in keys if f"eval_{k}" in eval_metrics and f"eval_ts_{k}" in eval_metrics]
    return "\n".join([
        "",
        "## Temperature scaling",
        "",
        f"A temperature T = {eval_metrics['temperature']:.4f} was fitted (minimum NLL, Guo et al., 2017) on the "
        f"calibration examples: {eval_metrics['calibration_source']}. T is folded into the saved weights (the "
        "classifier's final projection divided by T), so this checkpoint loads as a plain model and its "
        "probabilities, e.g. from `pipeline(...)`, are the calibrated ones. Before/after, on the "
        f"{eval_metrics['eval_samples']} scored examples:",
        "",
        "| metric | before | after |",
        "|---|---|---|",
        *rows,
    ]) + "\n"


def shift_section(metrics: dict | None, names) -> str:
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


def any_batch_mixed(state) -> bool:
    """False when training steps were logged but none of them mixed a batch (MixUpTrainer adds
    ``mixup_lambda`` to a training log whenever a batch since the previous log was mixed)."""
    logs = [log for log in state.log_history if "loss" in log]
    return not logs or any("mixup_lambda" in log for log in logs)
