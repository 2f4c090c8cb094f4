"""Nothing lost, part three: the last silently wrong numbers (λ logged after a resume, files of a replaced
run, shifted-set names whose keys collide), false and late refusals, and peft errors as one line."""

import json
import logging
import shutil

import pytest

from testing_utils import DATA, make_tiny_config

SHIFT = DATA / "sentiment-shift"


# ------------------------------------------------------------------- 1. λ logged after a resume
def test_logged_lambda_after_a_resume_equals_the_uninterrupted_run(tmp_path, tokenizer, sst2_small):
    """A checkpoint between two logs holds MixUp's pending log window: the resumed run logs the same mean λ
    and level at the next log as the run that was never stopped."""
    import torch

    from mixup_trainer import MixUpTrainingArguments
    from mixup_trainer.modeling import MixUpBertForSequenceClassification
    from mixup_trainer.run_trainer import RunScriptTrainer

    def trainer(out, seed=0):
        torch.manual_seed(seed)
        args = MixUpTrainingArguments(output_dir=str(out), mixup_method="manifold", max_steps=8,
                                      per_device_train_batch_size=8, logging_steps=4, save_strategy="steps",
                                      save_steps=2, report_to=[], disable_tqdm=True, use_cpu=True, seed=5)
        return RunScriptTrainer(model=MixUpBertForSequenceClassification(make_tiny_config(tokenizer, dropout=0.1)),
                                args=args, train_dataset=sst2_small, processing_class=tokenizer)

    full = trainer(tmp_path / "full")
    full.train()
    resumed = trainer(tmp_path / "resumed", seed=99)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-2"))

    def logged(t):
        return [(h["step"], h["mixup_lambda"], h["mixup_layer"]) for h in t.state.log_history if "mixup_lambda" in h]

    assert [step for step, _, _ in logged(full)] == [4, 8]
    assert logged(resumed) == logged(full)


# ------------------------------------------------------------- 2. no file of a replaced run left
def test_overwrite_removes_every_file_of_the_replaced_run_and_names_them(tmp_path, caplog):
    from mixup_trainer.cli import parse_args
    from mixup_trainer.output_dir import prepare_output_dir, run_settings

    out = tmp_path / "run"
    out.mkdir()
    old = ["adapter_config.json", "adapter_model.safetensors", "eval_predictions.jsonl", "yelp_predictions.jsonl",
           "eval_temperature_scaling.json", "eval_ts_reliability_diagram.png", "README.md", "all_results.json"]
    for name in old + ["notes.txt"]:
        (out / name).write_text("{}")
    (out / "run_settings.json").write_text(json.dumps({"mixup_method": "cls"}))
    args = parse_args(["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(out),
                       "--overwrite_output_dir"])
    with caplog.at_level(logging.WARNING, logger="mixup_trainer"):
        prepare_output_dir(args.training, True, run_settings(args))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "run_settings.json"]  # the user's file stays
    (record,) = [r for r in caplog.records if "removed the replaced run's files" in r.getMessage()]
    assert all(name in record.getMessage() for name in old)


# ------------------------------------------------------- 3. shifted-set names whose keys collide
@pytest.mark.parametrize("value, clash", [
    ("yelp={y},yelp_ts={a}", "yelp_ts"),        # yelp_ts_accuracy: Yelp after T, or the set yelp_ts?
    ("yelp={y},eval_ts={a}", "eval_ts"),        # overwrites the in-domain eval_ts_* keys
    ("yelp={y},yelp_adaptive={a}", "yelp_adaptive"),  # yelp_adaptive_ece is a key of yelp too
    ("amazon_x={a},amazon={y}", "amazon"),
])
def test_shift_names_whose_metric_keys_can_collide_are_refused(tmp_path, value, clash):
    from mixup_trainer.cli import parse_args

    files = value.format(y=SHIFT / "yelp.tsv", a=SHIFT / "amazon.tsv")
    with pytest.raises(ValueError, match=f"'{clash}' cannot name a shifted set") as err:
        parse_args(["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path),
                    "--temperature_scaling", "--shift_eval_files", files])
    assert "\n" not in str(err.value)


def test_shift_files_settings_ignore_order_and_path_spelling_but_not_content(tmp_path):
    from mixup_trainer.cli import parse_args
    from mixup_trainer.output_dir import run_settings, settings_difference

    def settings(value):
        return run_settings(parse_args(["--task", "sst2", "--model_name_or_path", "m", "--output_dir",
                                        str(tmp_path / "o"), "--shift_eval_files", value]))

    yelp, amazon = SHIFT / "yelp.tsv", SHIFT / "amazon.tsv"
    first = settings(f"yelp={yelp},amazon={amazon}")
    assert settings_difference(first, settings(f"amazon={amazon},yelp={SHIFT / '.' / 'yelp.tsv'}")) == []
    assert settings_difference({**first, "shift_eval_files": f"yelp={yelp},amazon={amazon}"}, first) == []  # older record
    edited = tmp_path / "yelp.tsv"
    shutil.copy(yelp, edited)
    edited.write_text(edited.read_text() + "a new sentence\t1\n")
    assert settings_difference(first, settings(f"yelp={edited},amazon={amazon}"))  # another file is another run


# --------------------------------------------------------------------- 5. peft errors as one line
def test_every_peft_error_is_one_line_naming_the_models_own_linear_layers(tokenizer):
    pytest.importorskip("peft")
    from transformers import BertForSequenceClassification, DistilBertConfig, DistilBertForSequenceClassification

    from mixup_trainer.model_loading import with_lora
    from mixup_trainer.script_args import ModelArguments

    distil = DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=len(tokenizer), dim=32, n_layers=1, n_heads=2, hidden_dim=37, num_labels=2))
    with pytest.raises(ValueError) as err:  # peft's own message prints the module over several lines
        with_lora(distil, ModelArguments(model_name_or_path="m", use_peft=True, lora_target_modules="LayerNorm"))
    message = str(err.value)
    assert "\n" not in message and "--lora_target_modules LayerNorm" in message
    assert "e.g. q_lin,v_lin" in message
    bert = BertForSequenceClassification(make_tiny_config(tokenizer))
    with pytest.raises(ValueError, match=r"Linear layers of BertForSequenceClassification \(dense, key, query, "
                                         r"value\), e.g. query,value\.$"):
        with_lora(bert, ModelArguments(model_name_or_path="m", use_peft=True, lora_target_modules="nonexistent"))


def test_wrapping_in_lora_prints_no_deprecation_warning_the_user_cannot_act_on(tokenizer):
    """peft reads ``is_gradient_checkpointing``, which transformers 5 deprecates with a FutureWarning that
    every --use_peft run would print; with_lora silences exactly that one."""
    pytest.importorskip("peft")
    import warnings

    from transformers import BertForSequenceClassification

    from mixup_trainer.model_loading import with_lora
    from mixup_trainer.script_args import ModelArguments

    def deprecation_warnings(action):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = action()
        return result, [w.category for w in caught if "is_gradient_checkpointing" in str(w.message)]

    model = BertForSequenceClassification(make_tiny_config(tokenizer))
    flag, direct = deprecation_warnings(lambda: model.is_gradient_checkpointing)
    assert flag is False and direct in ([], [FutureWarning])  # [FutureWarning] from transformers 5.2x on
    adapted, through_peft = deprecation_warnings(lambda: with_lora(
        model, ModelArguments(model_name_or_path="m", use_peft=True, lora_target_modules="query,value")))
    assert adapted.get_nb_trainable_parameters()[0] > 0 and through_peft == []
    assert deprecation_warnings(lambda: model.is_gradient_checkpointing)[1] == direct  # silenced in with_lora only


# ---------------------------------------------------------------- 7. duplicate arms and seeds
@pytest.mark.parametrize("flags, named", [(["--compare", "manifold,manifold"], "manifold"),
                                          (["--compare", "cls", "--compare_seeds", "1,2,1"], "1")])
def test_duplicate_arms_or_seeds_are_refused_at_parse_time(tmp_path, flags, named):
    from mixup_trainer.cli import parse_args

    with pytest.raises(ValueError, match=f"names {named} more than once"):
        parse_args(["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path), *flags])


# ------------------------------------------------------ 8. a refused run leaves the folder as it was
@pytest.mark.parametrize("problem", ["bad shift label", "empty shift file", "lora target"])
def test_a_refused_run_leaves_the_output_folder_as_it_was(tiny_bert, tmp_path, problem):
    from mixup_trainer import cli

    shift = tmp_path / "shift.tsv"
    shift.write_text({"bad shift label": "sentence\tlabel\ngood\t7\n", "empty shift file": "",
                      "lora target": "sentence\tlabel\ngood\t1\n"}[problem])
    out = tmp_path / "run"
    argv = ["--task", "sst2", "--model_name_or_path", tiny_bert, "--data_dir", str(DATA / "sst2"),
            "--max_train_samples", "8", "--max_eval_samples", "8", "--output_dir", str(out),
            "--shift_eval_files", f"yelp={shift}"]
    if problem == "lora target":
        pytest.importorskip("peft")
        argv += ["--use_peft", "--lora_target_modules", "nonexistent"]
    with pytest.raises(ValueError):
        cli.main(argv)
    assert not out.exists()  # no lone run_settings.json: the folder is as it was (absent)


def test_a_model_mixup_cannot_mix_is_refused_before_the_folder_is_touched(tokenizer, tmp_path):
    """SqueezeBERT has no MixUp levels: refused once the model is loaded, leaving no run_settings.json."""
    from transformers import SqueezeBertConfig, SqueezeBertModel

    from mixup_trainer import cli

    model_dir = tmp_path / "squeezebert"
    SqueezeBertModel(SqueezeBertConfig(vocab_size=len(tokenizer), hidden_size=32, embedding_size=32,
                                       num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                                       q_groups=1, k_groups=1, v_groups=1, post_attention_groups=1,
                                       intermediate_groups=1, output_groups=1)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    out = tmp_path / "run"
    with pytest.raises(ValueError) as err:
        cli.main(["--task", "sst2", "--model_name_or_path", str(model_dir), "--data_dir", str(DATA / "sst2"),
                  "--max_train_samples", "8", "--max_eval_samples", "8", "--mixup_method", "cls",
                  "--output_dir", str(out)])
    assert "\n" not in str(err.value)
    assert not out.exists()
