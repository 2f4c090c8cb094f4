"""The checks of the run scripts' arguments that combine several of them, made when the command
line is parsed: before any data or model is loaded, and long before anything trains.

``script_args.build_args`` runs :func:`check_arguments` on every parsed ``ScriptArgs`` (a
comparison's runs included). Each refusal is one line naming the problem and the fix.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .arguments import parse_layers

if TYPE_CHECKING:  # annotations only: script_args imports this module
    from .arguments import MixUpTrainingArguments
    from .script_args import ModelArguments, ScriptArgs


def check_arguments(args: ScriptArgs) -> None:
    """Refuse, before any data or model is loaded, what would otherwise fail late or train wrongly."""
    check_what_the_run_claims(args)
    training, task = args.training, args.task
    if args.calibration.temperature_scaling:
        if task.is_regression:
            raise ValueError(f"--temperature_scaling needs a classification task; {task.name} is a regression task.")
        if not training.do_eval:
            raise ValueError("--temperature_scaling scores the evaluation set before and after scaling: add --do_eval.")
    if args.data.shift_eval_files and task.is_regression:
        raise ValueError(f"--shift_eval_files needs a classification task; {task.name} is a regression task.")
    if args.data.shift_eval_files and not training.do_eval:
        raise ValueError("--shift_eval_files scores the kept model beside the evaluation set: add --do_eval.")
    for flag, split, value in (("max_eval_samples", "validation", args.data.max_eval_samples),
                               ("max_predict_samples", "test", args.data.max_predict_samples)):
        if value is not None and value < 1:
            raise ValueError(f"--{flag} {value} leaves no {split} examples: give a positive number, or leave the "
                             "flag out.")
    if args.run.compare is not None:
        _check_comparison(args)
    if training.do_train and training.mixup_enabled and training.per_device_train_batch_size < 2:
        raise ValueError(
            f"--per_device_train_batch_size {training.per_device_train_batch_size} with --mixup_method "
            f"{training.mixup_method}: a batch of one row has no partner, so no batch would be mixed. Use a "
            "batch size of at least 2, or --mixup_method none."
        )
    if training.mixup_method == "manifold" and parse_layers(training.mixup_layers):
        _check_layers_exist(args.model, training)


def _check_comparison(args: ScriptArgs) -> None:
    training = args.training
    if "mixup_method" in args.explicit:
        raise ValueError("--mixup_method and --compare both given: --compare sets each run's method; "
                         "drop --mixup_method.")
    if "label_smoothing_factor" in args.explicit and any(m.startswith("ls") for m in args.run.compare_methods):
        raise ValueError("--label_smoothing_factor and an ls<epsilon> arm of --compare both given: the arm sets "
                         "the smoothing of its runs; drop --label_smoothing_factor.")
    if args.run.compare_seeds and "seed" in args.explicit:
        raise ValueError("--seed and --compare_seeds both given: list every seed in --compare_seeds.")
    no_eval = getattr(training.eval_strategy, "value", None) == "no"
    if not (training.do_train and training.do_eval) or no_eval:
        raise ValueError("A comparison trains and evaluates during training: drop --do_train/--do_eval-only "
                         "flags and --eval_strategy no.")


def _check_layers_exist(model_args: ModelArguments, training: MixUpTrainingArguments) -> None:
    """--mixup_layers against the depth the model's config states (MixUpTrainer checks the model
    itself when the config states none)."""
    from transformers import AutoConfig

    from .levels import num_encoder_blocks

    config = AutoConfig.from_pretrained(
        model_args.config_name or model_args.model_name_or_path, cache_dir=model_args.cache_dir,
        revision=model_args.model_revision, token=model_args.token, trust_remote_code=model_args.trust_remote_code)
    try:
        n = num_encoder_blocks(config)
    except ValueError:
        return
    training.mixup_levels(n)  # refuses levels outside 0..n+1 and permutation partners inside the encoder


# ------------------------------------------------ runs that would claim what they did not do
def check_what_the_run_claims(args: ScriptArgs) -> None:
    """Refuse, at parse time, a run whose folder, training or model would not be what the command
    says: no --output_dir (transformers 5 would write to ./trainer_output), no training at all
    (--num_train_epochs 0, --max_steps 0), MixUp with α = 0 (every λ is 0 or 1: ERM under a MixUp
    name), a local model folder that does not exist (transformers reports a Hub repo-id error), and a
    --metric_for_best_model that evaluation does not compute (the Trainer fails after the first epoch)."""
    training = args.training
    if "output_dir" not in args.explicit:
        raise ValueError("--output_dir is required: name the folder for this run's checkpoints and results "
                         "(e.g. --output_dir outputs/sst2-manifold).")
    if training.do_train and training.max_steps == 0:
        raise ValueError("--max_steps 0 trains nothing (transformers reads 0 as 'not set' and would train "
                         "--num_train_epochs): give a positive number of steps, or leave --do_train out to only evaluate.")
    if training.do_train and training.max_steps < 0 and training.num_train_epochs <= 0:
        raise ValueError(f"--num_train_epochs {training.num_train_epochs:g} trains nothing: give a positive number of "
                         "epochs (or --max_steps N), or leave --do_train out to only evaluate.")
    if training.mixup_alpha == 0 and (training.mixup_method != "none" or args.run.compare is not None):
        how = f"--compare {args.run.compare}" if args.run.compare is not None else f"--mixup_method {training.mixup_method}"
        raise ValueError(f"--mixup_alpha 0 with {how} mixes nothing (λ ~ Beta(0, 0) is always 0 or 1, so every batch "
                         "is ERM): give a positive --mixup_alpha (e.g. 0.4), or --mixup_method none.")
    for flag in ("model_name_or_path", "config_name", "tokenizer_name"):
        _check_local_folder(flag, getattr(args.model, flag))
    if "metric_for_best_model" in args.explicit and training.metric_for_best_model:
        _check_metric_for_best_model(args)


def _looks_like_a_path(name: str) -> bool:
    """A Hub id is ``name`` or ``org/name``; anything absolute, relative (./, ../, ~) or deeper is a path."""
    return os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name


def _check_local_folder(flag: str, name: str | None) -> None:
    if name and _looks_like_a_path(name) and not os.path.isdir(os.path.expanduser(name)):
        raise FileNotFoundError(f"--{flag} {name}: no such folder; give the path of a local model folder (holding "
                                "config.json), or a Hub model id such as bert-base-uncased.")


def _check_metric_for_best_model(args: ScriptArgs) -> None:
    """The metrics evaluation reports, found by evaluating two made-up examples (no list to keep in step)."""
    import numpy as np
    from transformers import EvalPrediction

    from .evaluation import make_compute_metrics

    task, wanted = args.task, args.training.metric_for_best_model
    if task.is_regression:
        dummy = EvalPrediction(predictions=np.array([[0.2], [0.9]]), label_ids=np.array([0.1, 0.8]))
    else:
        logits = np.eye(task.num_labels)[[0, 1 % task.num_labels]]
        dummy = EvalPrediction(predictions=logits, label_ids=np.array([0, 1 % task.num_labels]))
    names = {"loss", *make_compute_metrics(task.metric, n_bins=args.calibration.calibration_bins)(dummy)}
    if wanted.removeprefix("eval_") not in names:
        raise ValueError(f"--metric_for_best_model {wanted}: evaluation of {task.name} does not report it, so the "
                         f"Trainer would fail after the first evaluation; choose one of {', '.join(sorted(names))}.")
