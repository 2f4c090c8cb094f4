"""Every private ``transformers.Trainer`` member the run scripts rely on (``run_trainer.PRIVATE_TRAINER_MEMBERS``),
checked against the installed transformers: a release that renames one, changes its signature, or changes
what it does for us fails the test named after it."""

import inspect
import json
from pathlib import Path

import pytest
import torch
from transformers import Trainer, TrainerCallback

from mixup_trainer import MixUpTrainingArguments
from mixup_trainer.modeling import MixUpBertForSequenceClassification
from mixup_trainer.run_trainer import PRIVATE_TRAINER_MEMBERS, RunScriptTrainer


def test_the_list_is_complete():
    """Every private Trainer member named in run_trainer.py is in the list (and so checked below)."""
    import re

    import mixup_trainer.run_trainer as module

    source = Path(module.__file__).read_text()
    used = {name for name in re.findall(r"\b(?:self|t|super\(\))\.(_[a-z]\w*)", source) if hasattr(Trainer, name)
            or name in ("_tr_loss", "_total_loss_scalar", "_globalstep_last_logged")}
    assert used == set(PRIVATE_TRAINER_MEMBERS)


@pytest.mark.parametrize("name, parameters", [
    ("_save_rng_state", ["self", "output_dir"]),
    ("_finalize_training", None),
    ("_save_checkpoint", ["self", "model", "trial"]),
])
def test_private_methods_exist_with_the_signature_we_call(name, parameters):
    method = getattr(Trainer, name, None)
    assert callable(method), f"transformers.Trainer.{name} is gone"
    if parameters is not None:
        assert list(inspect.signature(method).parameters)[:len(parameters)] == parameters


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tokenizer, tiny_config, sst2_small):
    """A 2-epoch run of RunScriptTrainer (eval and save every epoch, best model kept, limit 1) that records
    what the private members hold and in which order the checkpoint's files appear."""
    out = tmp_path_factory.mktemp("internals")
    seen = {"values": [], "state_file_before_rng": [], "checkpoint_calls": 0}

    class Probe(RunScriptTrainer):
        def _save_rng_state(self, output_dir):
            seen["state_file_before_rng"].append(Path(output_dir, "trainer_state.json").exists())
            return super()._save_rng_state(output_dir)

        def _save_checkpoint(self, model, trial):
            seen["checkpoint_calls"] += 1
            return super()._save_checkpoint(model, trial)

    class Values(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen["values"].append((trainer._tr_loss, trainer._total_loss_scalar, trainer._globalstep_last_logged))

    torch.manual_seed(0)
    model = MixUpBertForSequenceClassification(tiny_config)
    args = MixUpTrainingArguments(
        output_dir=str(out), mixup_method="cls", num_train_epochs=2, per_device_train_batch_size=8,
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch", load_best_model_at_end=True,
        metric_for_best_model="loss", greater_is_better=True,  # "best" = highest loss: the first epoch, not the last
        save_total_limit=1, report_to=[], disable_tqdm=True, use_cpu=True)
    trainer = Probe(model=model, args=args, train_dataset=sst2_small, eval_dataset=sst2_small.select(range(8)),
                    processing_class=tokenizer, callbacks=[Values()])
    trainer.train()
    return trainer, seen, out


def test_tr_loss_total_loss_scalar_and_globalstep_last_logged_hold_the_loss_state(trained):
    trainer, seen, _ = trained
    tr_loss, total, last_logged = seen["values"][-1]
    assert isinstance(tr_loss, torch.Tensor) and tr_loss.numel() == 1
    assert isinstance(total, float) and isinstance(last_logged, int)
    assert trainer.whole_run_train_loss == pytest.approx(trainer._total_loss_scalar / trainer.state.global_step)


def test_save_rng_state_runs_in_every_checkpoint_before_trainer_state(trained):
    _, seen, out = trained
    assert seen["state_file_before_rng"] == [False, False]  # called once per checkpoint, before trainer_state.json
    for checkpoint in out.glob("checkpoint-*"):
        saved = json.loads((checkpoint / "loss_state_0.json").read_text())
        assert set(saved) == {"tr_loss", "total_loss", "last_logged_step", "mixup_log"}


def test_save_checkpoint_is_where_every_checkpoint_is_written(trained):
    trainer, seen, _ = trained
    assert trainer.state.global_step == 8 and seen["checkpoint_calls"] == 2  # one per epoch


def test_finalize_training_is_where_the_final_checkpoint_would_be_deleted(trained, tokenizer, tiny_config,
                                                                           sst2_small, tmp_path):
    """Under save_total_limit=1 the Trainer deletes the final checkpoint when it is not the best one, in
    _finalize_training; FinalCheckpointKept keeps it there (and only there)."""
    _, _, out = trained
    kept = sorted(p.name for p in out.glob("checkpoint-*"))
    assert kept == ["checkpoint-4", "checkpoint-8"]  # the best (epoch 1) and the final one

    torch.manual_seed(0)
    args = MixUpTrainingArguments(
        output_dir=str(tmp_path), mixup_method="cls", num_train_epochs=2, per_device_train_batch_size=8,
        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="loss",
        greater_is_better=True, save_total_limit=1, report_to=[], disable_tqdm=True, use_cpu=True)
    plain = Trainer(model=MixUpBertForSequenceClassification(tiny_config), args=args, train_dataset=sst2_small,
                    eval_dataset=sst2_small.select(range(8)), processing_class=tokenizer)
    plain.train()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-4"]  # the final one deleted
