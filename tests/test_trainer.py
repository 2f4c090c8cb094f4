"""MixUpTrainer end to end on tiny random BERTs: ERM equivalence, accumulation, resume, saving, errors."""

import json
import logging
import subprocess
import sys

import pytest
import torch
from transformers import BertForSequenceClassification, HfArgumentParser, Trainer, TrainingArguments

from testing_utils import make_tiny_config, tokenized_dataset
from mixup_trainer import MixUpBertForSequenceClassification, MixUpTrainer, MixUpTrainingArguments

COMMON = dict(report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True, use_cpu=True, learning_rate=1e-3)


def fresh_model(config, cls=MixUpBertForSequenceClassification, seed=0):
    torch.manual_seed(seed)
    return cls(config)


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def train(tmp_path, tokenizer, dataset, config, model_cls=MixUpBertForSequenceClassification, **kwargs):
    args = MixUpTrainingArguments(output_dir=str(tmp_path), **{**COMMON, **kwargs})
    trainer = MixUpTrainer(model=fresh_model(config, model_cls), args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    return trainer


def test_none_is_erm_same_parameters_as_the_plain_trainer(tmp_path, tokenizer, tiny_config, sst2_small):
    kw = dict(per_device_train_batch_size=8, num_train_epochs=1, seed=3)
    plain = Trainer(
        model=fresh_model(tiny_config, BertForSequenceClassification),
        args=TrainingArguments(output_dir=str(tmp_path / "plain"), **COMMON, **kw),
        train_dataset=sst2_small, processing_class=tokenizer,
    )
    plain.train()
    ours = train(tmp_path / "ours", tokenizer, sst2_small, tiny_config, mixup_method="none", **kw)
    zero_alpha = train(tmp_path / "a0", tokenizer, sst2_small, tiny_config, mixup_method="manifold", mixup_alpha=0.0, **kw)
    mixed = train(tmp_path / "mix", tokenizer, sst2_small, tiny_config, mixup_method="manifold", **kw)
    torch.testing.assert_close(params(ours.model), params(plain.model), rtol=0, atol=1e-6)
    torch.testing.assert_close(params(zero_alpha.model), params(plain.model), rtol=0, atol=1e-6)
    assert (params(mixed.model) - params(plain.model)).abs().max() > 1e-4  # mixing does change training
    losses = lambda t: [h["loss"] for h in t.state.log_history if "loss" in h]  # noqa: E731
    assert losses(ours) == pytest.approx(losses(plain), abs=1e-6)


def test_gradient_accumulation_2x8_equals_1x16(tmp_path, tokenizer, tiny_config, sst2_small):
    kw = dict(num_train_epochs=1, seed=5, mixup_method="none", max_grad_norm=1e9, optim="sgd", learning_rate=0.5)
    big = train(tmp_path / "big", tokenizer, sst2_small, tiny_config, per_device_train_batch_size=16, **kw)
    acc = train(tmp_path / "acc", tokenizer, sst2_small, tiny_config, per_device_train_batch_size=8,
                gradient_accumulation_steps=2, **kw)
    assert big.state.global_step == acc.state.global_step == 2
    torch.testing.assert_close(params(acc.model), params(big.model), rtol=0, atol=1e-6)
    logged = lambda t: [h["loss"] for h in t.state.log_history if "loss" in h]  # noqa: E731
    assert logged(acc) == pytest.approx(logged(big), rel=1e-5)  # the true mean loss, not x2


def test_gradient_accumulation_with_mixing_logs_the_mean_loss(tmp_path, tokenizer, tiny_config, sst2_small):
    t = train(tmp_path, tokenizer, sst2_small, tiny_config, per_device_train_batch_size=8,
              gradient_accumulation_steps=2, num_train_epochs=1, mixup_method="cls")
    first = next(h for h in t.state.log_history if "loss" in h)
    # an untrained 2-class head has loss ~ln 2 per example; a sum over micro-batches would be ~2 ln 2
    assert 0.5 < first["loss"] < 0.9
    assert 0.0 <= first["mixup_lambda"] <= 1.0 and first["mixup_layer"] == 3


def test_resume_from_checkpoint_reproduces_the_uninterrupted_run(tmp_path, tokenizer, sst2_small):
    config = make_tiny_config(tokenizer, dropout=0.1)
    kw = dict(per_device_train_batch_size=8, max_steps=6, seed=11, mixup_method="manifold",
              mixup_padding="pair", save_strategy="steps", save_steps=3)
    full = train(tmp_path / "full", tokenizer, sst2_small, config, **kw)
    args = MixUpTrainingArguments(output_dir=str(tmp_path / "full"), **{**COMMON, **kw})
    resumed = MixUpTrainer(model=fresh_model(config, seed=99), args=args, train_dataset=sst2_small, processing_class=tokenizer)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-3"))
    torch.testing.assert_close(params(resumed.model), params(full.model), rtol=0, atol=1e-6)
    lam = lambda t: [h["mixup_lambda"] for h in t.state.log_history if "mixup_lambda" in h][-3:]  # noqa: E731
    assert lam(resumed) == lam(full)


def test_mixup_start_delays_mixing(tmp_path, tokenizer, tiny_config, sst2_small):
    t = train(tmp_path, tokenizer, sst2_small, tiny_config, per_device_train_batch_size=8, max_steps=8,
              mixup_method="input", mixup_start=0.5)
    steps = [h["step"] for h in t.state.log_history if "mixup_lambda" in h]
    assert steps == [5, 6, 7, 8]  # global steps 4..7 (0-based) are the later half


def test_batch_of_one_trains_unmixed_with_one_warning(tmp_path, tokenizer, tiny_config, caplog):
    ds = tokenized_dataset(tokenizer, n=3)
    with caplog.at_level(logging.WARNING, logger="mixup_trainer.trainer"):
        t = train(tmp_path, tokenizer, ds, tiny_config, per_device_train_batch_size=1, num_train_epochs=1, mixup_method="cls")
    assert t.state.global_step == 3
    assert sum("batch of one row" in r.getMessage() for r in caplog.records) == 1


def test_regression_head_trains_with_mixed_float_targets(tmp_path, tokenizer):
    config = make_tiny_config(tokenizer, num_labels=1)
    ds = tokenized_dataset(tokenizer, n=16, label_fn=lambda i, y: float(i % 5) / 4.0)
    t = train(tmp_path, tokenizer, ds, config, per_device_train_batch_size=8, num_train_epochs=1, mixup_method="manifold")
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in t.state.log_history if "loss" in h)


def test_saved_model_is_a_plain_bert_that_pipeline_loads_without_this_package(tmp_path, tokenizer, tiny_config, sst2_small):
    t = train(tmp_path / "run", tokenizer, sst2_small, tiny_config, per_device_train_batch_size=8,
              num_train_epochs=1, mixup_method="manifold")
    out = tmp_path / "saved"
    t.save_model(str(out))
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    script = f"""
import sys, torch
from transformers import AutoModelForSequenceClassification, pipeline
model = AutoModelForSequenceClassification.from_pretrained({str(out)!r})
assert type(model).__name__ == "BertForSequenceClassification", type(model)
clf = pipeline("text-classification", model={str(out)!r})
print(clf(["a wonderful film", "dull"]))
assert "mixup_trainer" not in sys.modules
"""
    t.model.eval()
    enc = tokenizer(["a wonderful film"], return_tensors="pt")
    expected = torch.softmax(t.model(**enc).logits, -1).max().item()
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    first = eval(res.stdout.strip().splitlines()[-1])[0]  # noqa: S307 - our own subprocess output
    assert first["score"] == pytest.approx(expected, abs=1e-5)


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mixup_method="token"), "mixup_method must be one of"),
        (dict(mixup_method="cls", mixup_alpha=-0.5), "mixup_alpha must be >= 0"),
        (dict(mixup_method="manifold", mixup_padding="left"), "mixup_padding must be one of"),
        (dict(mixup_method="manifold", mixup_pad_token="cls"), "mixup_pad_token must be one of"),
        (dict(mixup_method="manifold", mixup_layers="0,x"), "comma-separated layer numbers"),
        (dict(mixup_method="manifold", mixup_layers="-1,2"), ">= 0"),
        (dict(mixup_method="cls", mixup_layers="1,2"), "only applies to mixup_method='manifold'"),
        (dict(mixup_method="cls", mixup_start=1.0), "mixup_start"),
    ],
)
def test_bad_arguments_fail_at_construction(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MixUpTrainingArguments(output_dir=str(tmp_path), **kwargs)


def test_command_line_shows_help_and_rejects_bad_choices(tmp_path, capsys):
    parser = HfArgumentParser(MixUpTrainingArguments)
    help_text = parser.format_help()
    for flag in ("--mixup_method", "--mixup_alpha", "--mixup_layers", "--mixup_padding", "--mixup_pad_token", "--mixup_start",
                 "--mixup_partners"):
        assert flag in help_text
    assert "{none,cls,input,manifold}" in help_text and "{sep,pad,unused0}" in help_text
    (args,) = parser.parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--mixup_method", "manifold", "--mixup_layers", "0,3,2", "--report_to", "none"])
    assert args.mixup_method == "manifold" and args.mixup_layers == "0,2,3"
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(["--output_dir", str(tmp_path), "--mixup_method", "bogus"])
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_layers_outside_the_model_fail_before_training(tmp_path, tokenizer, tiny_config):
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", mixup_layers="0,4", **COMMON)
    with pytest.raises(ValueError, match=r"\[4\] are outside 0..3"):
        MixUpTrainer(model=fresh_model(tiny_config), args=args, processing_class=tokenizer)


def test_permutation_partners_train_and_refuse_pair_padding_inside_the_encoder(tmp_path, tokenizer, tiny_config, sst2_small):
    with pytest.raises(ValueError, match="--mixup_padding none or max"):  # default S holds blocks 1..n
        MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", mixup_partners="permutation")
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", mixup_layers="0,2",
                                  mixup_partners="permutation", **COMMON)
    with pytest.raises(ValueError, match=r"encoder blocks \[2\]"):
        MixUpTrainer(model=fresh_model(tiny_config), args=args, processing_class=tokenizer)
    # levels 0 and n+1 only, or no pair padding: allowed, and the plans are permutations
    for run, kw in enumerate((dict(mixup_layers="0,3"), dict(mixup_padding="none"))):
        t = train(tmp_path / str(run), tokenizer, sst2_small, tiny_config, per_device_train_batch_size=8,
                  max_steps=4, mixup_method="manifold", mixup_partners="permutation", **kw)
        assert any("mixup_lambda" in h for h in t.state.log_history)
    t._plan_key = (-1, -1)
    partners = [t._draw_plan(8).partner for _ in range(20)]
    assert not all(torch.equal(p[p], torch.arange(8)) for p in partners)


def test_manifold_on_level_n_plus_1_alone_is_cls_mixup(tmp_path, tokenizer, tiny_config, sst2_small):
    """The ablation reports S = {n+1} with the cls runs: the two must train identically."""
    kw = dict(per_device_train_batch_size=8, max_steps=4, seed=5)
    cls = train(tmp_path / "cls", tokenizer, sst2_small, tiny_config, mixup_method="cls", **kw)
    top = train(tmp_path / "top", tokenizer, sst2_small, tiny_config, mixup_method="manifold", mixup_layers="3", **kw)
    torch.testing.assert_close(params(top.model), params(cls.model), rtol=0, atol=0)
    manifold = train(tmp_path / "all", tokenizer, sst2_small, tiny_config, mixup_method="manifold", **kw)
    assert not torch.equal(params(manifold.model), params(cls.model))  # the comparison can fail


def test_pad_token_the_tokenizer_lacks_fails_before_training(tmp_path, tokenizer, tiny_config):
    lacking = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    lacking.sep_token = None
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="input", mixup_pad_token="sep", **COMMON)
    with pytest.raises(ValueError, match="has no"):
        MixUpTrainer(model=fresh_model(tiny_config), args=args, processing_class=lacking)
    with pytest.raises(ValueError, match="processing_class=tokenizer"):
        MixUpTrainer(model=fresh_model(tiny_config), args=args)


def test_token_classification_is_refused_for_mixing_and_keeps_its_own_loss_without(tmp_path, tokenizer, sst2_small):
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2, intermediate_size=37, num_labels=5,
                                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", **COMMON)
    with pytest.raises(ValueError, match="BertForTokenClassification is not a sequence classifier"):
        MixUpTrainer(model=model, args=args, processing_class=tokenizer)
    from transformers import BertForMultipleChoice

    with pytest.raises(ValueError, match="BertForMultipleChoice is not a sequence classifier"):
        MixUpTrainer(model=BertForMultipleChoice(model.config), args=args, processing_class=tokenizer)
    # ERM keeps the model's own per-token loss (with -100 ignored), not a sequence loss on [B, T, C]
    trainer = MixUpTrainer(model=model, args=MixUpTrainingArguments(output_dir=str(tmp_path), **COMMON),
                           processing_class=tokenizer)
    batch = tokenizer(["a gripping film", "dull"], padding=True, return_tensors="pt")
    labels = torch.randint(0, 5, batch["input_ids"].shape)
    labels[batch["attention_mask"] == 0] = -100
    model.train()
    loss = trainer.compute_loss(model, {**batch, "labels": labels})
    torch.testing.assert_close(loss, model(**batch, labels=labels).loss)
    assert loss.item() < 3.0  # ~ln(5) for a random head; the sequence-loss bug gave tens


def test_plain_training_arguments_are_rejected_with_the_fix(tmp_path, tiny_config):
    with pytest.raises(TypeError, match="MixUpTrainingArguments"):
        MixUpTrainer(model=fresh_model(tiny_config), args=TrainingArguments(output_dir=str(tmp_path)))


def test_a_training_batch_without_labels_is_an_error(tmp_path, tokenizer, tiny_config, sst2_small):
    unlabelled = sst2_small.remove_columns("label")
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="cls", remove_unused_columns=False,
                                  per_device_train_batch_size=8, max_steps=1, **COMMON)
    trainer = MixUpTrainer(model=fresh_model(tiny_config), args=args, train_dataset=unlabelled, processing_class=tokenizer)
    with pytest.raises(ValueError, match="training batch has no `labels`"):
        trainer.train()


def test_plain_bert_gets_hooks_attached(tmp_path, tokenizer, tiny_config, sst2_small):
    t = train(tmp_path, tokenizer, sst2_small, tiny_config, model_cls=BertForSequenceClassification,
              per_device_train_batch_size=8, max_steps=2, mixup_method="manifold", mixup_layers="1")
    assert t.mixup_hooks is t.model.mixup_hooks and t.mixup_levels == (1,)
    assert [h["mixup_layer"] for h in t.state.log_history if "mixup_layer" in h] == [1, 1]

