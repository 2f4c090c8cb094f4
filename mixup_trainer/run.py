"""One fine-tuning run of the run scripts, top to bottom as transformers' ``run_glue.py`` reads:
output folder, data, model, Trainer, train, evaluate (and temperature scaling), predict, model card.

It follows ``run_glue.py`` (same flags, ``all_results.json``, checkpoints, model card), with these
additions: an output folder holds one run (``output_dir.py``: a rerun of the same command resumes it
exactly, or does nothing once it has finished; another command is refused); the evaluation report is
the paper's (task metric, loss, ECE, MCE, Brier and NLL of the best epoch in ``all_results.json``,
plus a reliability diagram and per-example probabilities); and the model card records the MixUp
settings, the data (task, sample size and seed) and the calibration numbers, and is written even
without ``--push_to_hub``. The arguments come parsed and checked (``cli.parse_args``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
from transformers import set_seed

from . import temperature_scaling
from .calibration import calibration_report, plot_reliability_diagram
from .collator import MixUpDataCollator
from .data import prepare_data
from .evaluation import make_compute_metrics
from .model_loading import card_section as lora_card_section
from .model_loading import load_model_and_tokenizer
from .checkpoints import checkpoint_to_resume
from .output_dir import (
    finish_run, holds_output_dir_lock, prepare_output_dir, run_settings, write_json_atomic, write_text_atomic,
)
from .run_trainer import RunScriptTrainer
from .script_args import ScriptArgs
from .shift_eval import card_section as shift_card_section
from .shift_eval import evaluate_shift_sets, temperature_scaled
from .tasks import Task

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "eval_predictions.jsonl"
TEST_PREDICTIONS_FILE = "test_predictions.jsonl"
DIAGRAM_FILE = "eval_reliability_diagram.png"
CALIBRATION_FILE = "eval_calibration.json"




@holds_output_dir_lock
def main(args: ScriptArgs, progress=None) -> dict:
    """Run one fine-tuning job; returns the metrics written to all_results.json (on every process).

    ``progress`` is a ``TrainerCallback`` shown instead of the Trainer's progress bars and printed
    logs (the comparison's one line per epoch).
    """
    model_args, data_args, training_args, task = args.model, args.data, args.training, args.task
    calibration = args.calibration
    logger.debug("Task %s (metric %s); training arguments %s", task.name, task.metric, training_args)
    settings = run_settings(model_args, data_args, calibration, args.run, training_args)
    finished = prepare_output_dir(training_args, args.run.overwrite_output_dir, settings, args.run.keep_checkpoints)
    if finished is not None:
        logger.warning("%s already holds the finished results of this run (all_results.json): nothing to do. "
                       "Pass --overwrite_output_dir to run it again.", training_args.output_dir)
        return finished
    resume = checkpoint_to_resume(training_args, args.run.overwrite_output_dir)
    set_seed(training_args.seed)

    raw, data_summary, local = prepare_data(task, data_args, training_args, model_args, calibration.calibration_bins)
    if calibration.temperature_scaling:  # a split T cannot be fitted on is refused before anything trains
        temperature_scaling.calibration_split(task, calibration, raw["validation"], training_args.seed)

    model, tokenizer = load_model_and_tokenizer(model_args, task)
    pad_to_max = pads_to_max_length(data_args, training_args)
    tokenised, max_length = tokenise(raw, tokenizer, task, data_args, training_args, pad_to_max)
    # None: MixUpTrainer builds its dynamically padding MixUpDataCollator(tokenizer).
    collator = MixUpDataCollator(tokenizer, padding="max_length", max_length=max_length) if pad_to_max else None

    trainer = RunScriptTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenised.get("train"),
        eval_dataset=tokenised.get("validation"),
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=make_compute_metrics(task.metric, n_bins=calibration.calibration_bins),
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
        save_results(trainer, "train", metrics)
        trainer.save_state()
        all_metrics.update(metrics)

    eval_metrics = None
    if training_args.do_eval:
        logger.info("*** Evaluate ***")
        output = trainer.predict(tokenised["validation"], metric_key_prefix="eval")
        eval_metrics = {**output.metrics, "eval_samples": len(raw["validation"])}
        best = best_epoch(trainer.state)
        if best is not None:
            eval_metrics["best_epoch"] = best
            eval_metrics["best_global_step"] = trainer.state.best_global_step
        elif trainer.state.epoch is not None:
            eval_metrics["epoch"] = trainer.state.epoch
        shift_metrics, shift_logits = evaluate_shift_sets(trainer, task, raw, tokenised, data_args.shift_files,
                                                          write_predictions)  # before T is folded into the model
        eval_metrics.update(shift_metrics)
        if calibration.temperature_scaling:  # before/after on held-out examples; saves the model with T folded in
            eval_metrics.update(temperature_scaling.apply_temperature_scaling(
                trainer, task, calibration, raw["validation"], output.predictions,
                lambda r: tokenise(r, tokenizer, task, data_args, training_args, pad_to_max)[0]))
            eval_metrics.update(temperature_scaled(trainer.compute_metrics, raw, shift_logits,
                                                   eval_metrics["temperature"]))
        trainer.log_metrics("eval", eval_metrics)
        save_results(trainer, "eval", eval_metrics)
        all_metrics.update(eval_metrics)
        if trainer.is_world_process_zero():
            write_eval_report(training_args.output_dir, raw["validation"], np.asarray(output.predictions), task,
                              training_args, calibration.calibration_bins)

    if training_args.do_predict:
        logger.info("*** Predict ***")
        test = tokenised["test"].remove_columns("label")
        logits = np.asarray(trainer.predict(test, metric_key_prefix="predict").predictions)
        if trainer.is_world_process_zero():
            write_predictions(os.path.join(training_args.output_dir, TEST_PREDICTIONS_FILE), raw["test"], logits,
                              task)

    diagram = DIAGRAM_FILE if Path(training_args.output_dir, DIAGRAM_FILE).is_file() else None
    no_batch_mixed = training_args.do_train and training_args.mixup_enabled and not any_batch_mixed(trainer.state)
    if no_batch_mixed:
        logger.warning("No logged training step mixed a batch: this model was trained as ERM (--mixup_method none).")
    trainer.card_info = dict(task=task, model_name_or_path=model_args.model_name_or_path, data_summary=data_summary,
                             eval_metrics=eval_metrics, local=local, dataset_name=data_args.dataset_name,
                             diagram=diagram, no_batch_mixed=no_batch_mixed,
                             extra_section=lora_card_section(model_args)
                             + temperature_scaling.card_section(eval_metrics)
                             + shift_card_section(eval_metrics, data_args.shift_files))
    if training_args.push_to_hub:
        trainer.push_to_hub()
    else:
        trainer.create_model_card()
    finish_run(trainer, args.run.keep_checkpoints, all_metrics)
    return all_metrics


def setup_logging(training_args) -> None:
    """The process's logging, as run_glue.py sets it (info on the main process unless --log_level)."""
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




def tokenise(raw, tokenizer, task: Task, data_args, training_args, pad_to_max: bool):
    max_length = data_args.max_seq_length
    if tokenizer.model_max_length and max_length > tokenizer.model_max_length:
        logger.warning("max_seq_length %d exceeds the model's %d; using %d",
                       max_length, tokenizer.model_max_length, tokenizer.model_max_length)
        max_length = tokenizer.model_max_length

    def preprocess(batch):
        texts = [batch[column] for column in task.text_columns]
        if len(texts) == 2 and tokenizer.sep_token is None and tokenizer.eos_token is not None:
            # A decoder tokenizer has no pair template and would run the two texts together.
            texts = [[a + tokenizer.eos_token + b for a, b in zip(*texts)]]
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




def best_epoch(state) -> float | None:
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




def write_predictions(path: str, raw, logits: np.ndarray, task: Task) -> None:
    """One JSON line per example: idx, label (-1 if unknown), prediction, probs (classification)."""
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




def write_eval_report(out: str, raw_eval, logits: np.ndarray, task: Task, training_args, n_bins: int) -> None:
    """Per-example predictions, and for classification the reliability diagram and its bin data."""
    write_predictions(os.path.join(out, PREDICTIONS_FILE), raw_eval, logits, task)
    if task.is_regression:
        return
    report = calibration_report(logits, np.asarray(raw_eval["label"]), from_logits=True, n_bins=n_bins)
    write_text_atomic(Path(out, CALIBRATION_FILE), json.dumps(report.to_dict(), indent=2))
    title = f"{task.name}, mixup {training_args.mixup_method} (α={training_args.mixup_alpha})"
    plot_reliability_diagram(report, path=os.path.join(out, DIAGRAM_FILE), title=title)




def save_results(trainer, split: str, metrics: dict) -> None:
    """``<split>_results.json``, written atomically (Trainer.save_metrics is not atomic and rewrites
    all_results.json, which must only appear once the run is finished)."""
    if trainer.is_world_process_zero():
        write_json_atomic(os.path.join(trainer.args.output_dir, f"{split}_results.json"), metrics)


def _any_batch_mixed(state) -> bool:
    """False when training steps were logged but none of them mixed a batch (MixUpTrainer adds
    ``mixup_lambda`` to a training log whenever a batch since the previous log was mixed)."""
    logs = [log for log in state.log_history if "loss" in log]
    return not logs or any("mixup_lambda" in log for log in logs)


def any_batch_mixed(state) -> bool:
    """False when training steps were logged but none of them mixed a batch (MixUpTrainer adds
    ``mixup_lambda`` to a training log whenever a batch since the previous log was mixed)."""
    logs = [log for log in state.log_history if "loss" in log]
    return not logs or any("mixup_lambda" in log for log in logs)
