"""The run scripts' arguments: the dataclasses behind the flags, and every check that can be made
before any data or model is loaded.

Five dataclasses make the flags (one flat command line, or one flat JSON config):
``ModelArguments`` and ``DataTrainingArguments`` as in transformers' ``run_glue.py``;
``CalibrationArguments`` (what evaluation reports, temperature scaling); ``RunArguments`` (the output
folder, the paper's defaults, comparison mode); and the engine's ``MixUpTrainingArguments``.
Each checks its own fields in ``__post_init__``; :func:`check_arguments` checks the combinations.
``cli.parse_args`` reads the command line once (adding the scripts' defaults) into a
:class:`ScriptArgs`; a comparison builds each of its runs from those same values
(:meth:`ScriptArgs.for_run`), so nothing is parsed twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from .arguments import MixUpTrainingArguments
from .mixing import MIXUP_METHODS
from .script_checks import check_arguments
from .shift_eval import parse_shift_files
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
        metadata={"help": "Comma-separated module names LoRA adapts (e.g. q_proj,v_proj), or all-linear. Default: "
                  "peft's choice for the model family."},
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
    keep_checkpoints: bool = field(
        default=False,
        metadata={"help": "Keep the checkpoint-* folders when training finishes (default: delete them, keeping only "
                  "the final model; also kept when --save_total_limit or --save_only_model is given)."},
    )
    paper_defaults: bool = field(
        default=False,
        metadata={"help": "Use the paper's Table 6 values for the task (learning rate, epochs, batch size 16, "
                  "alpha, max length, dropout 0.1); flags you give explicitly win."},
    )
    compare: str | None = field(
        default=None,
        metadata={"help": "Comparison mode: train these arms (comma-separated MixUp methods, e.g. manifold or "
                  "cls,manifold, and ls<epsilon> for label smoothing without mixing, e.g. ls0.1) and the baseline none "
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
        unknown = sorted(m for m in methods if m not in MIXUP_METHODS and not _label_smoothing(m))
        if unknown:
            raise ValueError(f"--compare {self.compare}: unknown arm(s) {unknown}; choose from {MIXUP_METHODS} or "
                             "ls<epsilon> for label smoothing (e.g. ls0.1).")
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


def arm_overrides(arm: str) -> dict:
    """The arguments one arm of a comparison sets: a MixUp method, or ``ls<ε>``: no mixing and the
    Trainer's ``label_smoothing_factor`` ε (Szegedy et al., 2016)."""
    epsilon = _label_smoothing(arm)
    if epsilon is not None:
        return {"mixup_method": BASELINE, "label_smoothing_factor": epsilon}
    return {"mixup_method": arm}


def parse_list(text: str, what: str, cast=str) -> list:
    """'a, b,a' -> ['a', 'b'] (cast, de-duplicated), with a one-line error for an empty or bad list."""
    try:
        items = [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        items = []
    if not items:
        raise ValueError(f"--{what} {text!r}: give a comma-separated list, e.g. --compare manifold "
                         "or --compare_seeds 42,43,44.")
    return list(dict.fromkeys(items))


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


DATACLASS_TYPES = (ModelArguments, DataTrainingArguments, CalibrationArguments, RunArguments, MixUpTrainingArguments)


@dataclass
class ScriptArgs:
    """One run's parsed arguments, and the values they were built from (for a comparison's runs)."""

    model: ModelArguments
    data: DataTrainingArguments
    calibration: CalibrationArguments
    run: RunArguments
    training: MixUpTrainingArguments
    task: Task
    values: dict = field(repr=False)
    explicit: frozenset = field(repr=False)

    def for_run(self, **overrides) -> "ScriptArgs":
        """The same arguments with ``overrides`` given explicitly (a comparison's method, seed, folder)."""
        return build_args({**self.values, **overrides}, self.explicit | set(overrides), self.task)


def build_args(values: dict, explicit: frozenset, task: Task) -> ScriptArgs:
    """The dataclasses from parsed values (defaults already added), checked by :func:`check_arguments`."""
    model, data, calibration, run, training = HfArgumentParser(DATACLASS_TYPES).parse_dict(values)
    if data.max_seq_length is None:
        data.max_seq_length = task.max_seq_length
    if data.train_sample_seed is None:
        data.train_sample_seed = training.seed
    args = ScriptArgs(model, data, calibration, run, training, task, values, explicit)
    check_arguments(args)
    return args
