"""One fine-tuning run of the run scripts, top to bottom as transformers' ``run_glue.py`` reads:
output folder, data, model, the checks that need them, Trainer, train, evaluate (shifted sets,
temperature scaling), predict, model card.

It follows ``run_glue.py`` (same flags, ``all_results.json``, checkpoints, model card), with these
additions: an output folder holds one run (``output_dir.py``: a rerun of the same command resumes it
exactly, or does nothing once it has finished; another command is refused); the evaluation report is
the paper's (task metric, loss, ECE, MCE, Brier and NLL of the best epoch in ``all_results.json``,
plus a reliability diagram and per-example probabilities); and the model card records the MixUp
settings, the data (task, sample size and seed) and the calibration numbers, and is written even
without ``--push_to_hub``. The arguments come parsed and checked (``cli.parse_args``).
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
from transformers import set_seed

from .checkpoints import checkpoint_to_resume
from .collator import MixUpDataCollator
from .data import pads_to_max_length, prepare_data, tokenise
from .evaluation import TEST_PREDICTIONS_FILE, make_compute_metrics, write_eval_report, write_predictions
from .model_loading import load_model_and_tokenizer
from .preemption import Preempted
from .output_dir import (
    check_output_dir, finish_run, holds_output_dir_lock, run_settings, start_run_folder, write_json_atomic,
)
from .run_trainer import RunScriptTrainer
from .script_args import ScriptArgs
from .shift_eval import evaluate_shift_sets, temperature_scaled
from .temperature_scaling import apply_temperature_scaling, calibration_split

logger = logging.getLogger(__name__)


@holds_output_dir_lock
def main(args: ScriptArgs, progress=None) -> dict:
    """Run one fine-tuning job; returns the metrics written to all_results.json (on every process).

    ``progress`` is a ``TrainerCallback`` shown instead of the Trainer's progress bars and printed
    logs (the comparison's one line per epoch).
    """
    data_args, training_args, task, calibration = args.data, args.training, args.task, args.calibration
    logger.debug("Task %s (metric %s); training arguments %s", task.name, task.metric, training_args)
    settings, overwrite = run_settings(args), args.run.overwrite_output_dir
    finished = check_output_dir(training_args, overwrite, settings, training_args.keep_checkpoints)
    if finished is not None:
        logger.warning("%s already holds the finished results of this run (all_results.json): nothing to do. "
                       "Pass --overwrite_output_dir to run it again.", training_args.output_dir)
        return finished
    resume = checkpoint_to_resume(training_args, overwrite)
    set_seed(training_args.seed)

    raw, data_summary = prepare_data(args)
    # What needs the data, checked before the model loads: a split T cannot be fitted on is refused here.
    cal_split = calibration_split(task, calibration, raw, training_args.seed) if calibration.temperature_scaling else None
    model, tokenizer = load_model_and_tokenizer(args.model, task)
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
        script_args=args,
        data_summary=data_summary,
    )  # refuses a model MixUp cannot mix (no levels, not a sequence classifier) before the folder is touched
    start_run_folder(training_args, overwrite, settings)  # nothing refused the run: the folder becomes its
    if progress is not None:
        from transformers.trainer import DEFAULT_PROGRESS_CALLBACK  # tqdm bars, or a notebook's
        from transformers.trainer_callback import PrinterCallback  # what --disable_tqdm shows instead

        for shown in (PrinterCallback, DEFAULT_PROGRESS_CALLBACK):
            trainer.remove_callback(shown)
        trainer.add_callback(progress)

    all_metrics: dict = {}
    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=resume)
        if trainer.preempted_by:  # a complete checkpoint at the step it stopped: nothing more, and not finished
            step = trainer.preemption.stopped_at
            raise Preempted(trainer.preempted_by, os.path.join(training_args.output_dir, f"checkpoint-{step}"), step)
        trainer.save_model()  # the best epoch's weights when load_best_model_at_end
        # The whole run's mean loss, also after a resume (the Trainer's covers the resumed part only).
        metrics = {**result.metrics, "train_loss": trainer.whole_run_train_loss, "train_samples": len(raw["train"])}
        trainer.log_metrics("train", metrics)
        save_results(trainer, "train", metrics)
        trainer.save_state()
        all_metrics.update(metrics)

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
        shift_metrics, shift_logits = evaluate_shift_sets(trainer, task, raw, tokenised, data_args.shift_files)
        eval_metrics.update(shift_metrics)  # before T is folded into the model
        if cal_split is not None:  # before/after on held-out examples; saves the model with T folded in
            eval_metrics.update(apply_temperature_scaling(trainer, task, calibration, raw, tokenised,
                                                          output.predictions, cal_split))
            eval_metrics.update(temperature_scaled(trainer.compute_metrics, raw, shift_logits,
                                                   eval_metrics["temperature"]))
        trainer.log_metrics("eval", eval_metrics)
        save_results(trainer, "eval", eval_metrics)
        all_metrics.update(eval_metrics)
        trainer.eval_metrics = eval_metrics
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

    if training_args.push_to_hub:
        trainer.push_to_hub()  # writes the run's model card (RunScriptTrainer.create_model_card) and uploads
    else:
        trainer.create_model_card()
    finish_run(trainer, training_args.keep_checkpoints, all_metrics)
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


def save_results(trainer, split: str, metrics: dict) -> None:
    """``<split>_results.json``, written atomically (Trainer.save_metrics is not atomic and rewrites
    all_results.json, which must only appear once the run is finished)."""
    if trainer.is_world_process_zero():
        write_json_atomic(os.path.join(trainer.args.output_dir, f"{split}_results.json"), metrics)
