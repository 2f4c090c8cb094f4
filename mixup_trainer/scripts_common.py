"""What ``run_glue_mixup.py`` and ``run_boolq_mixup.py`` share: arguments, defaults, the run itself.

The scripts follow transformers' ``examples/pytorch/text-classification/run_glue.py`` (same flags,
``all_results.json``, checkpoints, model card), with five additions:

* ``--paper_defaults`` fills in the paper's Table 6 values for the task; any flag the user gave
  (on the command line or in the JSON config) wins over them.
* Without ``--do_train/--do_eval/--do_predict`` a run trains and evaluates. Training with an
  evaluation set evaluates every epoch and ends on the best epoch by the task's metric
  (``load_best_model_at_end``), keeping one full checkpoint besides the best one, and deletes the
  checkpoints once the run has finished; each of these defaults gives way to an explicit flag.
* An output folder holds one run (``run_safety.py``): a rerun of the same command resumes it
  exactly, or does nothing once it has finished; another command is refused.
* The evaluation report is the paper's: task metric, loss, ECE, MCE, Brier and NLL of the best
  epoch in ``all_results.json``, plus a reliability diagram and per-example probabilities.
* The model card records the MixUp settings, the data (task, sample size and seed) and the
  calibration numbers, and is written even without ``--push_to_hub``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import temperature
from .tasks import Task, get_task, load_raw_datasets, sample_rows

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "eval_predictions.jsonl"
TEST_PREDICTIONS_FILE = "test_predictions.jsonl"
DIAGRAM_FILE = "eval_reliability_diagram.png"
CALIBRATION_FILE = "eval_calibration.json"


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
    calibration_bins: int = field(default=15, metadata={"help": "Equal-width bins of ECE/MCE and the diagram."})
    temperature_scaling: bool = field(
        default=False,
        metadata={"help": "Fit a temperature T on calibration examples, report eval_ts_* beside eval_* on the same "
                  "scored examples, and save the model with T folded into its classifier (see temperature.py)."},
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
    compare: str | None = field(
        default=None,
        metadata={"help": "Comparison mode: train these MixUp methods (comma-separated, e.g. manifold or cls,manifold) "
                  "and the baseline none on the same data and seeds, one run per folder in --output_dir, and write "
                  "a side-by-side report there (comparison.md, comparison.json, plots). See mixup_trainer/compare.py."},
    )
    compare_seeds: str | None = field(
        default=None, metadata={"help": "Seeds of the comparison, comma-separated (e.g. 42,43,44). Default: --seed."}
    )


# ------------------------------------------------------------------------------------ arguments
def _dataclass_types():
    from .arguments import MixUpTrainingArguments

    return ModelArguments, DataTrainingArguments, MixUpTrainingArguments


def _field_defaults(types) -> dict:
    values = {}
    for dtype in types:
        for f in dataclasses.fields(dtype):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                values[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()
    return values


def explicit_keys(argv: list[str]) -> set[str]:
    """Names of the arguments given on the command line (abbreviations and aliases included).

    Parses ``argv`` with every default replaced by a sentinel: whatever is not the sentinel
    afterwards was typed by the user. Comparing values with the defaults would miss a flag given
    with its default value (``--learning_rate 5e-5`` must still beat ``--paper_defaults``).
    """
    from transformers import HfArgumentParser

    unset = object()
    parser = HfArgumentParser(_dataclass_types())
    parser.set_defaults(**{action.dest: unset for action in parser._actions if action.dest != "help"})
    return {key for key, value in vars(parser.parse_args(argv)).items() if value is not unset}


def _strategy(values: dict, key: str) -> str:
    value = values.get(key)
    return str(getattr(value, "value", value))


def run_defaults(task: Task, values: dict, explicit: set[str]) -> dict:
    """The scripts' defaults (see the module docstring) for the arguments the user did not give.

    Checkpoints are full (optimizer, scheduler and RNG state), so that a rerun after a crash resumes
    exactly; the finished run deletes them unless the user asked for checkpoints to be kept.
    """
    out = {}
    if not any(values.get(k) for k in ("do_train", "do_eval", "do_predict")):
        out.update(do_train=True, do_eval=True)
    if "keep_checkpoints" not in explicit and explicit & {"save_total_limit", "save_only_model"}:
        out["keep_checkpoints"] = True
    if not (out.get("do_train", values.get("do_train")) and out.get("do_eval", values.get("do_eval"))):
        return out
    # Evaluate as often as the user asked to evaluate, else as often as they asked to save, else per epoch.
    if "eval_strategy" in explicit:
        strategy = _strategy(values, "eval_strategy")
    elif "save_strategy" in explicit and _strategy(values, "save_strategy") in ("steps", "epoch"):
        strategy = _strategy(values, "save_strategy")
    else:
        strategy = "epoch"
    candidates = {"eval_strategy": strategy}
    saves = not ("save_strategy" in explicit and _strategy(values, "save_strategy") == "no")
    if strategy != "no" and saves:
        candidates.update(
            save_strategy=strategy,
            load_best_model_at_end=True,
            metric_for_best_model=task.metric,
            greater_is_better=True,
            save_total_limit=1,
        )
    if strategy == "epoch":
        candidates["logging_strategy"] = "epoch"
    if strategy == "steps" and "eval_steps" in explicit:
        candidates["save_steps"] = values["eval_steps"]
    elif strategy == "steps" and "save_steps" in explicit:
        candidates["eval_steps"] = values["save_steps"]
    out.update({k: v for k, v in candidates.items() if k not in explicit})
    return out


class UsageError(ValueError):
    """A command line the parser rejects (missing ``--task``, unknown flag, bad choice)."""


def _script_parser_class():
    from transformers import HfArgumentParser

    class ScriptArgumentParser(HfArgumentParser):
        """HfArgumentParser whose ``--help`` lists the MixUp flags first, then the data and model flags,
        then the long TrainingArguments list; a rejected command line raises UsageError (one line)
        instead of printing the whole usage block and exiting."""

        def _add_dataclass_arguments(self, dtype):
            if not hasattr(self, "_groups"):  # created once, in the order --help shows them
                self._groups = {name: self.add_argument_group(title) for name, title in (
                    ("mixup", "MixUp (MixUpTrainingArguments)"),
                    ("DataTrainingArguments", "data and run"),
                    ("ModelArguments", "model (as in run_glue.py)"),
                    ("training", "training (transformers TrainingArguments)"))}
            self._current_group = self._groups.get(dtype.__name__, self._groups["training"])
            super()._add_dataclass_arguments(dtype)

        def _parse_dataclass_field(self, parser, field):
            group = self._groups["mixup"] if field.name.startswith("mixup_") else self._current_group
            HfArgumentParser._parse_dataclass_field(group, field)

        def error(self, message):
            raise UsageError(f"{message} (--help lists the flags)")

    return ScriptArgumentParser


def script_parser(default_task: str | None = None):
    """The run scripts' parser: ``--task`` is required unless the script has a default task."""
    task = "[--task TASK]" if default_task else "--task TASK"
    parser = _script_parser_class()(
        _dataclass_types(),
        usage=f"%(prog)s {task} --model_name_or_path MODEL [--data_dir DIR] [--mixup_method METHOD] [FLAG ...]\n"
              "       %(prog)s config.json   (every flag as a JSON key)",
        description="Fine-tune a sequence classifier with MixUp and report accuracy / MCC, loss and calibration "
                    "(ECE) of the best epoch. An error prints one line; --traceback (or MIXUP_DEBUG=1) shows "
                    "the full traceback.",
    )
    if default_task is None:
        (action,) = [a for a in parser._actions if a.dest == "task"]
        action.required = True
        action.help = "(required) " + action.help
    return parser


def _multi_process_without_accelerator() -> bool:
    """True under torchrun / accelerate launch with several processes on a machine with no GPU.

    There TrainingArguments needs ``use_cpu=True`` to set up gloo data parallelism; without it each
    process trains alone, believes it is rank 0 and writes the same files.
    """
    import torch

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.accelerator.is_available()


def fsdp_values(values: dict, explicit: set[str]) -> dict:
    """FSDP (``--fsdp`` or ``accelerate launch --use_fsdp``) needs GPUs here: accelerate applies its FSDP
    plugin only to GPU-type processes and on CPU silently trains with DDP, so the request is refused
    rather than ignored. On GPUs the checkpoints keep their optimizer state, because the Trainer cannot
    reload the best model from model-only checkpoints under FSDP."""
    if not (values.get("fsdp") or os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true"):
        return {}
    import torch

    if not torch.accelerator.is_available():
        raise ValueError("FSDP needs GPUs: on CPU accelerate ignores its FSDP plugin and would train with plain "
                         "DDP. Drop --fsdp / --use_fsdp (torchrun or accelerate launch --multi_gpu give CPU data "
                         "parallelism), or run on GPUs as the README's FSDP section shows.")
    return {} if "save_only_model" in explicit else {"save_only_model": False}


def parse_args(argv: list[str] | None = None, default_task: str | None = None):
    """(model_args, data_args, training_args, task) from argv or a single JSON config file."""
    argv = sys.argv[1:] if argv is None else list(argv)
    types = _dataclass_types()
    parser = script_parser(default_task)
    if len(argv) == 1 and argv[0].endswith(".json"):
        given = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        if "task_name" in given:
            given.setdefault("task", given.pop("task_name"))
        explicit = set(given)
        values = {**_field_defaults(types), **given}
    else:
        values = vars(parser.parse_args(argv))
        explicit = explicit_keys(argv)
    if default_task and "task" not in explicit:
        values["task"] = default_task
    task = get_task(values.get("task"))
    values["task"] = task.name
    if values.get("paper_defaults"):
        values.update({k: v for k, v in task.paper_defaults().items() if k not in explicit})
        if task.learning_rate is None and "learning_rate" not in explicit:
            logger.warning("The paper gives no learning rate for %s: keeping --learning_rate %s",
                           task.name, values.get("learning_rate"))
    values.update(run_defaults(task, values, explicit))
    values.update(fsdp_values(values, explicit))
    if "use_cpu" not in explicit and _multi_process_without_accelerator():
        values["use_cpu"] = True
    model_args, data_args, training_args = parser.parse_dict(values)
    if data_args.max_seq_length is None:
        data_args.max_seq_length = task.max_seq_length
    if data_args.train_sample_seed is None:
        data_args.train_sample_seed = training_args.seed
    return model_args, data_args, training_args, task


# ------------------------------------------------------------------------------------------ run
def _setup_logging(training_args) -> None:
    import datasets
    import transformers

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()  # the default of run_glue.py: info on the main process
    log_level = training_args.get_process_log_level()
    logging.getLogger("mixup_trainer").setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.warning(
        "Process rank: %s, device: %s, n_gpu: %s, distributed training: %s",
        training_args.process_index, training_args.device, training_args.n_gpu,
        training_args.parallel_mode.value == "distributed",
    )


def _checkpoint_to_resume(training_args, data_args) -> str | None:
    """The checkpoint a training run continues from: the one named by --resume_from_checkpoint, else
    the newest complete full checkpoint in output_dir (after ``prepare_output_dir`` has checked that
    the folder holds this same run). A model-only checkpoint is resumed only when named, loudly."""
    from .run_safety import checkpoint_problem, is_model_only, model_only_refusal, newest_complete_checkpoint
    from .run_safety import warn_model_only_resume

    named = training_args.resume_from_checkpoint
    if named is not None:
        problem = checkpoint_problem(named)
        if problem is not None:
            raise FileNotFoundError(f"--resume_from_checkpoint {named} cannot be resumed: {problem}.")
        if is_model_only(named):
            warn_model_only_resume(named)
        return named
    out = training_args.output_dir
    if not training_args.do_train or data_args.overwrite_output_dir or not os.path.isdir(out):
        return None
    last = newest_complete_checkpoint(out)
    if last is not None:
        if is_model_only(last):
            raise model_only_refusal(last)
        logger.warning("Resuming the interrupted run from %s (same settings, see %s/run_settings.json). To start "
                       "afresh, pass --overwrite_output_dir.", last, out)
    return last


def _load_model_and_tokenizer(model_args, task: Task):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from .modeling import MixUpBertForSequenceClassification

    hub = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision, "token": model_args.token,
           "trust_remote_code": model_args.trust_remote_code}
    config = AutoConfig.from_pretrained(model_args.config_name or model_args.model_name_or_path,
                                        num_labels=task.num_labels, finetuning_task=task.name, **hub)
    if task.is_regression:
        config.problem_type = "regression"
    else:
        config.problem_type = "single_label_classification"
        config.id2label = dict(enumerate(task.label_names))
        config.label2id = {name: i for i, name in enumerate(task.label_names)}
    if model_args.hidden_dropout_prob is not None:
        if hasattr(config, "hidden_dropout_prob"):
            config.hidden_dropout_prob = model_args.hidden_dropout_prob
        else:  # e.g. DistilBERT calls it `dropout`; --paper_defaults must not break such models
            logger.warning("hidden_dropout_prob=%s ignored: %s configs have no such field",
                           model_args.hidden_dropout_prob, config.model_type)
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path, **hub)
    # BERT gets the hooked subclass; other models load as usual and MixUpTrainer says if it cannot mix them.
    model_class = MixUpBertForSequenceClassification if config.model_type == "bert" else AutoModelForSequenceClassification
    model = model_class.from_pretrained(model_args.model_name_or_path, config=config,
                                        ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, **hub)
    return model, tokenizer


def _tokenise(raw, tokenizer, task: Task, data_args, training_args, pad_to_max: bool):
    max_length = data_args.max_seq_length
    if tokenizer.model_max_length and max_length > tokenizer.model_max_length:
        logger.warning("max_seq_length %d exceeds the model's %d; using %d",
                       max_length, tokenizer.model_max_length, tokenizer.model_max_length)
        max_length = tokenizer.model_max_length

    def preprocess(batch):
        texts = [batch[column] for column in task.text_columns]
        return tokenizer(*texts, padding="max_length" if pad_to_max else False, max_length=max_length,
                         truncation=True)

    with training_args.main_process_first(desc="dataset map pre-processing"):
        return raw.map(preprocess, batched=True, num_proc=data_args.preprocessing_num_workers,
                       remove_columns=list(task.text_columns) + ["idx"],
                       load_from_cache_file=not data_args.overwrite_cache, desc="Tokenising"), max_length


def pads_to_max_length(data_args, training_args) -> bool:
    """Pad every example to max_seq_length? Asked for directly, or by ``--mixup_padding max``, whose
    meaning (mixed sequences attend the full padded length) only matches the paper's "max" padding
    when that length is max_seq_length rather than each batch's longest sentence."""
    return data_args.pad_to_max_length or training_args.mixup_padding == "max"


def _best_epoch(state) -> float | None:
    """Epoch of the checkpoint that load_best_model_at_end restored (None without selection)."""
    step = state.best_global_step
    if step is None and state.best_model_checkpoint:
        step = int(state.best_model_checkpoint.rstrip("/").rsplit("-", 1)[-1])
    if step is None:
        return None
    for log in state.log_history:
        if log.get("step") == step and any(k.startswith("eval_") for k in log):
            return log.get("epoch")
    return None


def _write_predictions(path: str, raw, logits: np.ndarray, task: Task) -> None:
    """One JSON line per example: idx, label (-1 if unknown), prediction, probs (classification)."""
    from .run_safety import write_text_atomic

    lines = []
    if task.is_regression:
        for row, value in zip(raw, logits.reshape(-1)):
            lines.append(json.dumps({"idx": row["idx"], "label": row["label"], "prediction": float(value)}))
    else:
        import torch

        probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
        for row, p in zip(raw, probs):
            pred = int(p.argmax())
            lines.append(json.dumps({"idx": row["idx"], "label": row["label"], "prediction": pred,
                                     "prediction_name": task.label_names[pred], "probs": [float(x) for x in p]}))
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def prepare_data(task: Task, data_args, training_args, model_args):
    """(raw DatasetDict of the splits the run needs, data summary for the model card, local sources).

    The training set is a seeded random sample when --max_train_samples is given; evaluation and
    test sets are cut to their first N rows, as in run_glue.py.
    """
    splits = [s for s, on in (("train", training_args.do_train), ("validation", training_args.do_eval),
                              ("test", training_args.do_predict)) if on]
    local = {k: v for k, v in (("data_dir", data_args.data_dir), ("train_file", data_args.train_file),
                               ("validation_file", data_args.validation_file), ("test_file", data_args.test_file)) if v}
    raw = load_raw_datasets(task, splits, data_args.data_dir, data_args.train_file, data_args.validation_file,
                            data_args.test_file, data_args.dataset_name, data_args.dataset_config_name,
                            model_args.cache_dir)
    summary = {"task": f"{task.name} (best epoch by {task.metric})",
               "source": ", ".join(f"{k} {v}" for k, v in local.items()) if local
               else f"Hub: {data_args.dataset_name or task.hub_path}"}
    if "train" in raw:
        n_all = len(raw["train"])
        raw["train"] = sample_rows(raw["train"], data_args.max_train_samples, data_args.train_sample_seed)
        summary["training examples"] = (
            f"{len(raw['train'])} of {n_all} (random sample, seed {data_args.train_sample_seed})"
            if len(raw["train"]) < n_all else f"{n_all} (all)")
        logger.info("Training on %s examples", summary["training examples"])
    for split, limit in (("validation", data_args.max_eval_samples), ("test", data_args.max_predict_samples)):
        if split in raw and limit is not None:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
    if "train" in raw and training_args.mixup_enabled and len(raw["train"]) < 2:
        raise ValueError(f"--mixup_method {training_args.mixup_method} needs at least 2 training examples to mix, "
                         f"got {len(raw['train'])}: give more data, or --mixup_method none.")
    for split, flag in (("validation", "--max_eval_samples"), ("test", "--max_predict_samples")):
        if split in raw and len(raw[split]) == 0:
            raise ValueError(f"{flag} 0 leaves no {split} examples: give a positive number, or leave the flag out.")
    if "validation" in raw:
        summary["evaluation examples"] = len(raw["validation"])
    summary["max_seq_length"] = data_args.max_seq_length
    summary["calibration bins"] = data_args.calibration_bins
    return raw, summary, local


def write_eval_report(out: str, raw_eval, logits: np.ndarray, task: Task, training_args, n_bins: int) -> None:
    """Per-example predictions, and for classification the reliability diagram and its bin data."""
    _write_predictions(os.path.join(out, PREDICTIONS_FILE), raw_eval, logits, task)
    if task.is_regression:
        return
    from .calibration import calibration_report, plot_reliability_diagram

    report = calibration_report(logits, np.asarray(raw_eval["label"]), from_logits=True, n_bins=n_bins)
    from .run_safety import write_text_atomic

    write_text_atomic(Path(out, CALIBRATION_FILE), json.dumps(report.to_dict(), indent=2))
    title = f"{task.name}, mixup {training_args.mixup_method} (α={training_args.mixup_alpha})"
    plot_reliability_diagram(report, path=os.path.join(out, DIAGRAM_FILE), title=title)


def _trainer_class():
    from .run_safety import ExactLossResume
    from .trainer import MixUpTrainer

    class RunScriptTrainer(ExactLossResume, MixUpTrainer):
        """MixUpTrainer that resumes its loss state exactly (``ExactLossResume``) and whose model card is
        the run's (``model_card.build_model_card``) once ``card_info`` is set. ``push_to_hub`` re-creates
        the card through ``create_model_card``, so the card is built there rather than after it."""

        card_info: dict | None = None

        def create_model_card(self, *args, model_name=None, tags=None, **kwargs):
            if self.card_info is None:
                return super().create_model_card(*args, model_name=model_name, tags=tags, **kwargs)
            if self.is_world_process_zero():
                from .model_card import build_model_card

                tags = [tags] if isinstance(tags, str) else tags
                card = build_model_card(self, model_name=model_name, tags=tags, **self.card_info)
                card.save(os.path.join(self.args.output_dir, "README.md"))

    return RunScriptTrainer


def main(argv: list[str] | None = None, default_task: str | None = None, progress=None) -> dict:
    """Run one fine-tuning job; returns the metrics written to all_results.json (on every process).

    With ``--compare`` it runs the whole comparison instead (``mixup_trainer.compare``) and returns its
    report. ``progress`` is a ``TrainerCallback`` shown instead of the Trainer's progress bars and
    printed logs (the comparison's one line per epoch).
    """
    from transformers import set_seed

    from .collator import MixUpDataCollator
    from .evaluation import make_compute_metrics

    from .run_safety import check_run_arguments, prepare_output_dir, run_settings

    model_args, data_args, training_args, task = parse_args(argv, default_task)
    temperature.check_arguments(data_args, task, training_args)
    if data_args.compare:
        from .compare import compare

        return compare(sys.argv[1:] if argv is None else list(argv), default_task)
    _setup_logging(training_args)
    logger.info("Task %s (metric %s); training arguments %s", task.name, task.metric, training_args)
    check_run_arguments(model_args, data_args, training_args)
    finished = prepare_output_dir(training_args, data_args.overwrite_output_dir,
                                  run_settings(model_args, data_args, training_args))
    if finished is not None:
        logger.warning("%s already holds the finished results of this run (all_results.json): nothing to do. "
                       "Pass --overwrite_output_dir to run it again.", training_args.output_dir)
        return finished
    resume = _checkpoint_to_resume(training_args, data_args)
    set_seed(training_args.seed)

    raw, data_summary, local = prepare_data(task, data_args, training_args, model_args)

    model, tokenizer = _load_model_and_tokenizer(model_args, task)
    pad_to_max = pads_to_max_length(data_args, training_args)
    tokenised, max_length = _tokenise(raw, tokenizer, task, data_args, training_args, pad_to_max)
    # None: MixUpTrainer builds its dynamically padding MixUpDataCollator(tokenizer).
    collator = MixUpDataCollator(tokenizer, padding="max_length", max_length=max_length) if pad_to_max else None

    trainer = _trainer_class()(
        model=model,
        args=training_args,
        train_dataset=tokenised.get("train"),
        eval_dataset=tokenised.get("validation"),
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=make_compute_metrics(task.metric, n_bins=data_args.calibration_bins),
    )
    if progress is not None:
        from transformers.trainer import DEFAULT_PROGRESS_CALLBACK  # tqdm bars, or a notebook's
        from transformers.trainer_callback import PrinterCallback  # what --disable_tqdm shows instead

        for shown in (PrinterCallback, DEFAULT_PROGRESS_CALLBACK):
            trainer.remove_callback(shown)
        trainer.add_callback(progress)

    all_metrics: dict = {}
    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=resume)
        trainer.save_model()  # the best epoch's weights when load_best_model_at_end
        # The whole run's mean loss, also after a resume (the Trainer's covers the resumed part only).
        metrics = {**result.metrics, "train_loss": trainer.whole_run_train_loss, "train_samples": len(raw["train"])}
        trainer.log_metrics("train", metrics)
        _save_results(trainer, "train", metrics)
        trainer.save_state()
        all_metrics.update(metrics)

    eval_metrics = None
    if training_args.do_eval:
        logger.info("*** Evaluate ***")
        output = trainer.predict(tokenised["validation"], metric_key_prefix="eval")
        eval_metrics = {**output.metrics, "eval_samples": len(raw["validation"])}
        best = _best_epoch(trainer.state)
        if best is not None:
            eval_metrics["best_epoch"] = best
            eval_metrics["best_global_step"] = trainer.state.best_global_step
        elif trainer.state.epoch is not None:
            eval_metrics["epoch"] = trainer.state.epoch
        if data_args.temperature_scaling:  # before/after on held-out examples; saves the model with T folded in
            eval_metrics.update(temperature.apply_temperature_scaling(
                trainer, task, data_args, raw["validation"], output.predictions,
                lambda r: _tokenise(r, tokenizer, task, data_args, training_args, pad_to_max)[0]))
        trainer.log_metrics("eval", eval_metrics)
        _save_results(trainer, "eval", eval_metrics)
        all_metrics.update(eval_metrics)
        if trainer.is_world_process_zero():
            write_eval_report(training_args.output_dir, raw["validation"], np.asarray(output.predictions), task,
                              training_args, data_args.calibration_bins)

    if training_args.do_predict:
        logger.info("*** Predict ***")
        test = tokenised["test"].remove_columns("label")
        logits = np.asarray(trainer.predict(test, metric_key_prefix="predict").predictions)
        if trainer.is_world_process_zero():
            _write_predictions(os.path.join(training_args.output_dir, TEST_PREDICTIONS_FILE), raw["test"], logits,
                               task)

    diagram = DIAGRAM_FILE if Path(training_args.output_dir, DIAGRAM_FILE).is_file() else None
    no_batch_mixed = training_args.do_train and training_args.mixup_enabled and not _any_batch_mixed(trainer.state)
    if no_batch_mixed:
        logger.warning("No logged training step mixed a batch: this model was trained as ERM (--mixup_method none).")
    trainer.card_info = dict(task=task, model_name_or_path=model_args.model_name_or_path, data_summary=data_summary,
                             eval_metrics=eval_metrics, local=local, dataset_name=data_args.dataset_name,
                             diagram=diagram, no_batch_mixed=no_batch_mixed,
                             extra_section=temperature.card_section(eval_metrics))
    if training_args.push_to_hub:
        trainer.push_to_hub()
    else:
        trainer.create_model_card()
    _finish_run(trainer, data_args, all_metrics)
    return all_metrics


def _save_results(trainer, split: str, metrics: dict) -> None:
    """``<split>_results.json``, written atomically (Trainer.save_metrics is not atomic and rewrites
    all_results.json, which must only appear once the run is finished)."""
    from .run_safety import write_json_atomic

    if trainer.is_world_process_zero():
        write_json_atomic(os.path.join(trainer.args.output_dir, f"{split}_results.json"), metrics)


def _any_batch_mixed(state) -> bool:
    """False when training steps were logged but none of them mixed a batch (MixUpTrainer adds
    ``mixup_lambda`` to a training log whenever a batch since the previous log was mixed)."""
    logs = [log for log in state.log_history if "loss" in log]
    return not logs or any("mixup_lambda" in log for log in logs)


def _finish_run(trainer, data_args, all_metrics: dict) -> None:
    """Delete the checkpoints of a finished training run (unless kept), then write all_results.json,
    last and atomically: its presence is what marks the run in output_dir as finished."""
    from .run_safety import ALL_RESULTS_FILE, remove_checkpoints, write_json_atomic

    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return
    if trainer.args.do_train and not data_args.keep_checkpoints:
        remove_checkpoints(trainer.args.output_dir)
    write_json_atomic(os.path.join(trainer.args.output_dir, ALL_RESULTS_FILE), all_metrics)


if __name__ == "__main__":
    sys.exit("mixup_trainer.scripts_common is the run scripts' shared code, not a script: run "
             "`run_glue_mixup --help` or `python -m mixup_trainer.run_glue_mixup --help` (BoolQ: run_boolq_mixup).")
