"""The run scripts' arguments, their defaults, and every check that can be made before any data or
model is loaded.

Five dataclasses make the flags (one flat command line, or one flat JSON/YAML config file), in the
shape of TRL's ``*_config.py``: ``ModelArguments`` and ``DataTrainingArguments`` as in transformers'
``run_glue.py``; ``CalibrationArguments`` (what evaluation reports, temperature scaling);
``RunArguments`` (the output folder's reuse, the paper's defaults, comparison mode); and
:class:`ScriptTrainingArguments`, the engine's ``MixUpTrainingArguments`` with the scripts' defaults.
Every default is a field default, or is resolved by the one rule of
:meth:`ScriptTrainingArguments.resolve_defaults`; each dataclass checks its own fields in
``__post_init__``, and :class:`ScriptArgs` checks the combinations when it is built (so a
comparison's runs, ``dataclasses.replace`` of the parsed arguments, are checked too).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .arguments import MixUpTrainingArguments, parse_layers
from .data import parse_shift_files
from .mixing import MIXUP_METHODS
from .tasks import Task

BASELINE = "none"


@dataclass
class ModelArguments:
    """Which model to fine-tune (as in run_glue.py), plus the dropout of the paper's Table 6."""

    model_name_or_path: str = field(metadata={"help": "Hub model id or local folder, e.g. bert-base-uncased."})
    config_name: str | None = field(default=None, metadata={"help": "Config name or path if not the model's."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer name or path if not the model's."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache Hub downloads."})
    model_revision: str = field(default="main", metadata={"help": "Model revision (branch, tag or commit)."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models or data."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom code from the Hub."})
    hidden_dropout_prob: float | None = field(
        default=None, metadata={"help": "Override the model's hidden dropout (the paper: 0.1). Default: keep it."}
    )
    ignore_mismatched_sizes: bool = field(
        default=False, metadata={"help": "Load a checkpoint whose classifier head has another number of labels."}
    )
    use_peft: bool = field(
        default=False,
        metadata={"help": "Train a LoRA adapter (peft) instead of every weight; the classification head is trained "
                  "in full. The output folder then holds the adapter (adapter_config.json), not a full model."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (with --use_peft)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha: the update is scaled by alpha / r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: str | None = field(
        default=None,
        metadata={"help": "Comma-separated names of the model's Linear layers LoRA adapts (e.g. q_proj,v_proj in Llama-"
                  "style decoders, query,value in BERT), or all-linear. Default: peft's choice for the model family."},
    )

    def __post_init__(self):
        lora = {k: getattr(self, k) for k in ("lora_r", "lora_alpha", "lora_dropout")}
        if self.lora_r < 1 or self.lora_alpha <= 0 or not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"LoRA settings {lora}: --lora_r and --lora_alpha must be positive and --lora_dropout "
                             "in [0, 1).")
        if self.use_peft:
            try:
                import peft  # noqa: F401
            except ImportError:
                raise ValueError("--use_peft needs the peft package: pip install 'mixup-trainer[peft]' "
                                 "(or pip install peft).") from None

    @property
    def target_modules(self) -> list[str] | str | None:
        """--lora_target_modules as peft takes it: a list of names, 'all-linear', or None (peft's default)."""
        value = self.lora_target_modules
        if value is None or value.strip() == "all-linear":
            return None if value is None else "all-linear"
        return [name.strip() for name in value.split(",") if name.strip()]


@dataclass
class DataTrainingArguments:
    """Which data, how much of it, and how it is tokenised."""

    task: str | None = field(
        default=None,
        metadata={"aliases": ["--task_name"], "help": "Task name: cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, "
                  "wnli, imdb, ag_news, boolq."},
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub dataset to use instead of the task's default (e.g. google/boolq)."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Config of --dataset_name."})
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder in the original release layout (GLUE: train.tsv, dev.tsv, optional test.tsv; "
                  "MNLI: dev_matched.tsv; BoolQ: train.jsonl, val.jsonl)."},
    )
    train_file: str | None = field(default=None, metadata={"help": "Training data: csv, tsv, json or jsonl."})
    validation_file: str | None = field(default=None, metadata={"help": "Evaluation data: csv, tsv, json or jsonl."})
    test_file: str | None = field(default=None, metadata={"help": "Prediction data (labels optional)."})
    max_seq_length: int | None = field(
        default=None, metadata={"help": "Longer inputs are truncated. Default: the task's (128; BoolQ 256)."}
    )
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every example to max_seq_length (else pad each batch to its longest)."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on a random sample of this many examples (low-resource runs)."}
    )
    train_sample_seed: int | None = field(
        default=None, metadata={"help": "Seed of the --max_train_samples sample. Default: --seed."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on the first N examples."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Predict on the first N examples."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Re-run tokenisation of cached Hub datasets."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenisation."})
    shift_eval_files: str | None = field(
        default=None,
        metadata={"help": "Also score the kept model on these labelled files, a change of domain: NAME=PATH[,NAME=PATH"
                  "...] (same formats as --validation_file). all_results.json gains NAME_accuracy, NAME_loss, "
                  "NAME_ece, NAME_aurc, ... and, with --temperature_scaling, NAME_ts_* under the in-domain T."},
    )

    def __post_init__(self):
        self.shift_files  # noqa: B018 (refuses a malformed entry or a missing file at parse time)

    @property
    def shift_files(self) -> dict[str, str]:
        """{NAME: PATH} of --shift_eval_files (empty without it)."""
        return parse_shift_files(self.shift_eval_files)


@dataclass
class RunArguments:
    """What happens to the output folder, and comparison mode (see ``compare.py``)."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start afresh in a non-empty output_dir (deletes its checkpoint-* folders, *_results.json "
                  "and run_settings.json) instead of resuming the run recorded there, or refusing another run."},
    )
    config: str | None = field(
        default=None,
        metadata={"help": "A YAML or JSON file of flag values (keys as the flags, without --), used as defaults: "
                  "a flag typed on the command line wins over the file."},
    )
    paper_defaults: bool = field(
        default=False,
        metadata={"help": "Start from the paper's Table 6 values for the task (learning rate, epochs, batch size 16, "
                  "alpha, max length, dropout 0.1), the file mixup_trainer/paper_configs/<task>.yaml: a config file "
                  "and typed flags win over it."},
    )
    compare: str | None = field(
        default=None,
        metadata={"help": "Comparison mode: train these arms (comma-separated MixUp methods, e.g. manifold or "
                  "cls,manifold; <method>+reg, <method>+sk or <method>+reg+sk for RegMixup and/or the similarity kernel, e.g. "
                  "manifold+reg; any of these with its own alpha, <arm>@<alpha>, e.g. manifold@0.4; and ls<epsilon> for "
                  "label smoothing without mixing, e.g. ls0.1) and the baseline none "
                  "on the same data and seeds, one run per folder in --output_dir, and write a side-by-side report "
                  "there (comparison.md, comparison.json, plots). See mixup_trainer/compare.py."},
    )
    compare_seeds: str | None = field(
        default=None, metadata={"help": "Seeds of the comparison, comma-separated (e.g. 42,43,44). Default: --seed."}
    )

    def __post_init__(self):
        self.compare_methods, self.compare_seed_list  # noqa: B018 (validated at parse time)

    @property
    def compare_seed_list(self) -> list[int] | None:
        return parse_list(self.compare_seeds, "compare_seeds", int) if self.compare_seeds else None

    @property
    def compare_methods(self) -> list[str] | None:
        """The compared arms, the baseline first (None outside comparison mode): MixUp methods, and
        ``ls<ε>`` for label smoothing ε without mixing (see :func:`arm_overrides`)."""
        if self.compare is None:
            return None
        methods = parse_list(self.compare, "compare")
        unknown = sorted(m for m in methods if _arm(m) is None)
        if unknown:
            raise ValueError(f"--compare {self.compare}: unknown arm(s) {unknown}; choose from {MIXUP_METHODS}, a "
                             "method with RegMixup and/or the similarity kernel (<method>+reg, <method>+sk, "
                             "<method>+reg+sk, e.g. manifold+reg), any of these with its own alpha (<arm>@<alpha>, e.g. "
                             "manifold@0.4), or ls<epsilon> for label smoothing (e.g. ls0.1).")
        methods = [BASELINE] + [m for m in methods if m != BASELINE]
        if len(methods) == 1:
            raise ValueError(f"--compare {self.compare}: name a MixUp method to compare with the baseline, e.g. "
                             "--compare manifold (the baseline none is always included).")
        return methods


def _label_smoothing(arm: str) -> float | None:
    """ε of a label-smoothing arm 'ls0.1' (None for anything else); ε must lie in (0, 1)."""
    if not arm.startswith("ls"):
        return None
    try:
        epsilon = float(arm[2:])
    except ValueError:
        return None
    return epsilon if 0.0 < epsilon < 1.0 else None


#: The variants an arm may add to a MixUp method, in this order: <method>+reg, <method>+sk, <method>+reg+sk.
ARM_VARIANTS = {"reg": {"mixup_objective": "regmix"}, "sk": {"mixup_similarity_kernel": True}}


def _arm(arm: str) -> dict | None:
    """The arguments an arm sets, or None for a name that is not an arm."""
    epsilon = _label_smoothing(arm)
    if epsilon is not None:
        return {"mixup_method": BASELINE, "label_smoothing_factor": epsilon}
    arm, own_alpha, alpha_text = arm.partition("@")
    method, *variants = arm.split("+")
    if method not in MIXUP_METHODS or (variants and method == BASELINE):
        return None
    if variants not in ([], ["reg"], ["sk"], ["reg", "sk"]):
        return None
    overrides = {"mixup_method": method, **{k: v for name in variants for k, v in ARM_VARIANTS[name].items()}}
    if own_alpha:  # <arm>@<α>: this arm's own Beta(α, α), whatever --mixup_alpha says
        try:
            alpha = float(alpha_text)
        except ValueError:
            return None
        if method == BASELINE or not 0.0 < alpha < math.inf:
            return None
        overrides["mixup_alpha"] = alpha
    return overrides


def arm_overrides(arm: str) -> dict:
    """The arguments one arm of a comparison sets: a MixUp method, the method with RegMixup
    (``<method>+reg``: ``mixup_objective="regmix"``, with RegMixup's own α unless --mixup_alpha is
    given), with the similarity kernel (``<method>+sk``) or both (``<method>+reg+sk``), or ``ls<ε>``: no
    mixing and the Trainer's ``label_smoothing_factor`` ε (Szegedy et al., 2016). A mixing arm may end
    in ``@<α>`` (``manifold@0.4``, ``manifold+reg@1``): its own α, over --mixup_alpha and the objective's
    default, so that one comparison can set α apart from the method or objective."""
    overrides = _arm(arm)
    if overrides is None:
        raise ValueError(f"{arm!r} is not a comparison arm (see --compare)")
    return overrides


def parse_list(text: str, what: str, cast=str) -> list:
    """'a, b' -> ['a', 'b'] (cast), with a one-line error for an empty or bad list, or one that names
    an item twice (a comparison would otherwise quietly run it once)."""
    try:
        items = [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        items = []
    if not items:
        raise ValueError(f"--{what} {text!r}: give a comma-separated list, e.g. --compare manifold "
                         "or --compare_seeds 42,43,44.")
    repeated = sorted({str(x) for x in items if items.count(x) > 1})
    if repeated:
        raise ValueError(f"--{what} {text!r} names {', '.join(repeated)} more than once: list each once.")
    return items


@dataclass
class CalibrationArguments:
    """What the evaluation reports beyond the task metric: binning, and temperature scaling."""

    calibration_bins: int = field(default=15, metadata={"help": "Equal-width bins of ECE/MCE and the diagram."})
    temperature_scaling: bool = field(
        default=False,
        metadata={"help": "Fit a temperature T on calibration examples, report eval_ts_* beside eval_* on the same "
                  "scored examples, and save the model with T folded into its classifier (see temperature_scaling.py)."},
    )
    calibration_file: str | None = field(
        default=None,
        metadata={"help": "Calibration examples for --temperature_scaling (csv, tsv, json or jsonl, labelled); the "
                  "whole evaluation set is then scored. Default: split the evaluation set."},
    )
    calibration_fraction: float = field(
        default=0.5, metadata={"help": "Without --calibration_file: the random fraction of the evaluation set that T "
                               "is fitted on; every eval_* number then covers the other examples only."}
    )
    calibration_seed: int | None = field(
        default=None, metadata={"help": "Seed of the --calibration_fraction split. Default: --seed."}
    )

    def __post_init__(self):
        if self.calibration_bins < 1:
            raise ValueError(f"--calibration_bins must be a positive number of bins (e.g. 15), got {self.calibration_bins}.")
        if not self.temperature_scaling:
            if self.calibration_file is not None:
                raise ValueError(
                    "--calibration_file is only used with --temperature_scaling: add that flag, or drop the file.")
            return
        fraction = self.calibration_fraction
        if self.calibration_file is None and not 0.0 < fraction < 1.0:
            raise ValueError(f"--calibration_fraction must lie strictly between 0 and 1 (e.g. 0.5), got {fraction}.")
        if self.calibration_file is not None and not Path(self.calibration_file).is_file():
            raise FileNotFoundError(f"--calibration_file {self.calibration_file} does not exist.")


@dataclass
class ScriptTrainingArguments(MixUpTrainingArguments):
    """``MixUpTrainingArguments`` with the run scripts' defaults: train and evaluate, evaluate and save
    every epoch, end on the best epoch by the task's metric, keep one full checkpoint besides it, and
    delete the checkpoints once the run is finished.

    The fields below whose default is ``None`` follow the flags the user gave, by the one rule of
    :meth:`resolve_defaults` (the defaults table in docs/run-scripts/flags.md lists it); any value given explicitly is kept.
    The task's metric is the parser's default for ``--metric_for_best_model`` (``cli.parse_args``).
    """

    output_dir: str = field(metadata={"help": "Folder of this run's checkpoints, results and model."})
    eval_strategy: str | None = field(
        default=None, metadata={"help": "When to evaluate: no, steps or epoch. Default: as --save_strategy when that is "
                                "steps or epoch, else epoch (no when the run does not both train and evaluate)."})
    save_strategy: str | None = field(
        default=None, metadata={"help": "When to save a checkpoint: no, steps, epoch or best. Default: as "
                                "--eval_strategy (steps when the run does not both train and evaluate)."})
    save_steps: float | None = field(
        default=None, metadata={"help": "Steps between checkpoints under --save_strategy steps. Default: "
                                "--eval_steps, else 500."})
    logging_strategy: str | None = field(
        default=None, metadata={"help": "When to log: no, steps or epoch. Default: epoch when evaluating every "
                                "epoch, else steps."})
    load_best_model_at_end: bool | None = field(
        default=None, metadata={"help": "End on the best evaluated checkpoint (by --metric_for_best_model). Default: "
                                "true when the run evaluates and saves during training."})
    save_total_limit: int | None = field(
        default=None, metadata={"help": "Checkpoints kept besides the best one. Default: 1 when the run ends on the "
                                "best epoch (unlimited otherwise)."})
    keep_checkpoints: bool | None = field(
        default=None,
        metadata={"help": "Keep the checkpoint-* folders when training finishes. Default: delete them, keeping only "
                  "the final model, unless --save_total_limit or --save_only_model is given."},
    )

    def __post_init__(self):
        self.resolve_defaults()
        _refuse_fsdp_without_gpus(self)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not self.use_cpu:
            import torch

            # gloo data parallelism needs use_cpu; without it each process would train alone as rank 0
            self.use_cpu = not torch.accelerator.is_available()
        super().__post_init__()

    def resolve_defaults(self) -> None:
        """The scripts' defaults for the fields left at ``None`` (idempotent: a second call, as in
        ``dataclasses.replace``, changes nothing).

        * Without ``--do_train/--do_eval/--do_predict`` a run trains and evaluates.
        * A run that trains and evaluates evaluates as often as asked (``--eval_strategy``), else as
          often as it saves (``--save_strategy steps|epoch``), else every epoch; it saves at the same
          moments, ends on the best of them and keeps one checkpoint besides it, unless saving is off.
          With steps, ``--eval_steps`` and ``--save_steps`` follow each other when only one is given.
        * Checkpoints are full (optimizer, scheduler, RNG: a rerun after a crash resumes exactly) and
          are deleted when the run is finished, unless ``--keep_checkpoints``, ``--save_total_limit``
          or ``--save_only_model`` asks for checkpoints.
        """
        if not (self.do_train or self.do_eval or self.do_predict):
            self.do_train = self.do_eval = True
        if self.keep_checkpoints is None:
            self.keep_checkpoints = self.save_total_limit is not None or bool(self.save_only_model)
        save = _strategy(self.save_strategy)
        if self.do_train and self.do_eval:
            if self.eval_strategy is None:
                self.eval_strategy = save if save in ("steps", "epoch") else "epoch"
            evaluate = _strategy(self.eval_strategy)
            best = evaluate != "no" and save != "no"
            if self.save_strategy is None:
                self.save_strategy = evaluate if best else "steps"
            if self.load_best_model_at_end is None:
                self.load_best_model_at_end = best
            if best and self.save_total_limit is None:
                self.save_total_limit = 1
            if evaluate == "steps" and self.eval_steps is None and self.save_steps is not None:
                self.eval_steps = self.save_steps
            if self.save_steps is None and evaluate == "steps" and self.eval_steps is not None:
                self.save_steps = self.eval_steps
            logging = "epoch" if evaluate == "epoch" else "steps"
        else:
            logging = "steps"
        self.eval_strategy = "no" if self.eval_strategy is None else self.eval_strategy
        self.save_strategy = "steps" if self.save_strategy is None else self.save_strategy
        self.save_steps = 500 if self.save_steps is None else self.save_steps
        self.logging_strategy = logging if self.logging_strategy is None else self.logging_strategy
        self.load_best_model_at_end = bool(self.load_best_model_at_end)


def _strategy(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _refuse_fsdp_without_gpus(training) -> None:
    """FSDP (``--fsdp`` or ``accelerate launch --use_fsdp``) needs GPUs here: accelerate applies its FSDP
    plugin only to GPU-type processes and on CPU silently trains with DDP, so the request is refused
    rather than ignored."""
    if not (training.fsdp or os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true"):
        return
    import torch

    if not torch.accelerator.is_available():
        raise ValueError("FSDP needs GPUs: on CPU accelerate ignores its FSDP plugin and would train with plain "
                         "DDP. Drop --fsdp / --use_fsdp (torchrun or accelerate launch --multi_gpu give CPU data "
                         "parallelism), or run on GPUs as docs/run-scripts/index.md (FSDP) shows.")


DATACLASS_TYPES = (ModelArguments, DataTrainingArguments, CalibrationArguments, RunArguments, ScriptTrainingArguments)


@dataclass
class ScriptArgs:
    """One run's parsed arguments, checked as a whole when built (see :func:`check_arguments`).

    A comparison's runs are ``dataclasses.replace`` of the comparison's own ``ScriptArgs``
    (``compare.run_args``), so they are built and checked the same way as a typed command."""

    model: ModelArguments
    data: DataTrainingArguments
    calibration: CalibrationArguments
    run: RunArguments
    training: ScriptTrainingArguments
    task: Task

    def __post_init__(self):
        if self.data.max_seq_length is None:
            self.data.max_seq_length = self.task.max_seq_length
        check_arguments(self)

    def replace(self, **values) -> "ScriptArgs":
        """These arguments with some values changed, each in the dataclass that has it (a comparison's
        arm, seed and folder), built and checked anew like a typed command."""
        parts = {"model": self.model, "data": self.data, "calibration": self.calibration, "run": self.run,
                 "training": self.training}
        changed = {name: {k: values.pop(k) for k in list(values) if k in _init_fields(part)}
                   for name, part in parts.items()}
        if values:
            raise ValueError(f"unknown argument(s) {', '.join(sorted(values))}: use the run scripts' flag names")
        return dataclasses.replace(self, **{name: dataclasses.replace(parts[name], **v) if v else parts[name]
                                            for name, v in changed.items()})

    @property
    def train_sample_seed(self) -> int:
        """Seed of the ``--max_train_samples`` sample: ``--train_sample_seed``, else the run's ``--seed``."""
        seed = self.data.train_sample_seed
        return self.training.seed if seed is None else seed


def _init_fields(part) -> set[str]:
    return {f.name for f in dataclasses.fields(part) if f.init}


# ---------------------------------------------------------------------- checks of the combinations
def check_arguments(args: ScriptArgs) -> None:
    """Refuse, before any data or model is loaded, what would otherwise fail late or train wrongly.
    Each refusal is one line naming the problem and the fix."""
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
    if training.mixup_method != BASELINE:
        raise ValueError("--mixup_method and --compare both given: --compare sets each run's method; "
                         "drop --mixup_method.")
    if training.label_smoothing_factor and any(_label_smoothing(m) is not None for m in args.run.compare_methods):
        raise ValueError("--label_smoothing_factor and an ls<epsilon> arm of --compare both given: the arm sets "
                         "the smoothing of its runs; drop --label_smoothing_factor.")
    if args.run.compare_seeds and training.seed != _DEFAULT_SEED:  # (a --seed equal to the default goes unseen)
        raise ValueError("--seed and --compare_seeds both given: list every seed in --compare_seeds.")
    if not (training.do_train and training.do_eval) or _strategy(training.eval_strategy) == "no":
        raise ValueError("A comparison trains and evaluates during training: drop --do_train/--do_eval-only "
                         "flags and --eval_strategy no.")


_DEFAULT_SEED = MixUpTrainingArguments.__dataclass_fields__["seed"].default


def _check_layers_exist(model_args: ModelArguments, training: MixUpTrainingArguments) -> None:
    """--mixup_layers against the depth the model's config states (MixUpTrainer checks the model
    itself when the config states none). Reads config.json only, not the weights."""
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


def check_what_the_run_claims(args: ScriptArgs) -> None:
    """Refuse a run whose training or model would not be what the command says: no training at all
    (--num_train_epochs 0, --max_steps 0), MixUp with α = 0 (every λ is 0 or 1: ERM under a MixUp
    name), a local model folder that does not exist (transformers reports a Hub repo-id error), and a
    --metric_for_best_model that evaluation does not compute (the Trainer fails after the first epoch)."""
    training = args.training
    if training.do_train and training.max_steps == 0:
        raise ValueError("--max_steps 0 trains nothing (transformers reads 0 as 'not set' and would train "
                         "--num_train_epochs): give a positive number of steps, or leave --do_train out to only evaluate.")
    if training.do_train and training.max_steps < 0 and training.num_train_epochs <= 0:
        raise ValueError(f"--num_train_epochs {training.num_train_epochs:g} trains nothing: give a positive number of "
                         "epochs (or --max_steps N), or leave --do_train out to only evaluate.")
    if training.alpha == 0 and (training.mixup_method != "none" or args.run.compare is not None):
        how = f"--compare {args.run.compare}" if args.run.compare is not None else f"--mixup_method {training.mixup_method}"
        raise ValueError(f"--mixup_alpha 0 with {how} mixes nothing (λ ~ Beta(0, 0) is always 0 or 1, so every batch "
                         "is ERM): give a positive --mixup_alpha (e.g. 0.4), or --mixup_method none.")
    for flag in ("model_name_or_path", "config_name", "tokenizer_name"):
        _check_local_folder(flag, getattr(args.model, flag))
    wanted = training.metric_for_best_model
    if wanted and wanted.removeprefix("eval_") not in (args.task.metric, "loss"):
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
