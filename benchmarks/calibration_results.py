#!/usr/bin/env python
"""MixUp vs temperature scaling: every MixUp method with and without a fitted temperature, on the
same held-out examples, mean ± standard error over seeds (the RESULTS.md calibration table).

    python benchmarks/calibration_results.py run   [--tasks sst2] [--seeds 0,1,2,3,4] [--epochs 3]
    python benchmarks/calibration_results.py table [--tasks sst2]
    python benchmarks/calibration_results.py run --smoke     # run + table on a tiny random BERT (a CI check)

Each run is run_glue_mixup.py's code path (``cli.main``) with ``--temperature_scaling``,
evaluated once after the last epoch (no per-epoch evaluation or best-epoch selection: on this CPU an
evaluation of 400 sentences costs as much as an epoch of training):
T is fitted on a seeded half of the evaluation examples (``--calibration_fraction 0.5``,
``--calibration_seed`` = the run's seed) and every number below is measured on the other half, before
(``eval_*``: the method alone) and after (``eval_ts_*``: the method + temperature scaling). "none"
after scaling is temperature scaling alone. Runs are resumable (an existing all_results.json is
kept); weights are deleted after each run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from reproduce import DATA, METHODS, SMOKE, fmt, model_path  # noqa: E402

# Small budgets that a 2-core CPU finishes in minutes per run: SST-2 as `make demo` (64 examples, lr 1e-4,
# batch 8) with 400 dev examples; CoLA with RESULTS.md's sample (256) and learning rate (2e-4), 600 dev examples.
TASKS = {
    "sst2": ["--task", "sst2", "--data_dir", str(DATA / "sst2"), "--max_train_samples", "64",
             "--max_eval_samples", "400", "--learning_rate", "1e-4", "--per_device_train_batch_size", "8"],
    "cola": ["--task", "cola", "--data_dir", str(DATA / "cola"), "--max_train_samples", "256",
             "--max_eval_samples", "600", "--learning_rate", "2e-4", "--per_device_train_batch_size", "16"],
}
COLUMNS = (("accuracy", "Accuracy"), ("ece", "ECE"), ("adaptive_ece", "adaptive ECE"), ("smece", "smECE"),
           ("overconfidence", "conf − acc"), ("nll", "NLL"), ("brier", "Brier"))


def run(args, model: str | None = None, extra=()) -> None:
    from mixup_trainer.cli import main

    for seed in [int(s) for s in args.seeds.split(",")]:
        for task in args.tasks.split(","):
            for method in args.methods.split(","):
                out = Path(args.runs_dir) / task / method / f"seed{seed}"
                if (out / "all_results.json").exists():
                    continue
                start = time.time()
                main([*TASKS[task], "--model_name_or_path", model or model_path(), "--mixup_method", method,
                      "--num_train_epochs", str(args.epochs), "--seed", str(seed), "--temperature_scaling",
                      "--calibration_fraction", "0.5", "--output_dir", str(out), "--overwrite_output_dir",
                      "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true",
                      "--per_device_eval_batch_size", "32", "--log_level", "warning",
                      "--eval_strategy", "no", "--save_strategy", "no", *extra], default_task=task)
                for path in [*out.glob("checkpoint-*"), *out.glob("*.safetensors")]:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
                print(f"[calibration] {task} {method} seed{seed} {time.time() - start:.0f}s", flush=True)


def table(args) -> None:
    from mixup_trainer.calibration import TEMPERATURE_BOUNDS

    for task in args.tasks.split(","):
        rows = {}
        for path in sorted(Path(args.runs_dir, task).glob("*/seed*/all_results.json")):
            rows.setdefault(path.parent.parent.name, []).append(json.loads(path.read_text()))
        head = "| method | seeds | T (median) | " + " | ".join(f"{name} (x100)" for _, name in COLUMNS) + " |"
        print(f"\n{task}\n\n{head}\n|" + "---|" * (len(COLUMNS) + 3))
        for method in [m for m in METHODS if m in rows]:
            runs = rows[method]
            temps = sorted(r["temperature"] for r in runs)
            at_bound = sum(t <= TEMPERATURE_BOUNDS[0] or t >= TEMPERATURE_BOUNDS[1] for t in temps)
            t_text = f"{statistics.median(temps):.2f}" + (f" ({at_bound} at a bound)" if at_bound else "")
            for prefix, name in (("eval_", method), ("eval_ts_", f"{method} + TS" if method != "none" else "TS alone")):
                cells = []
                for key, _ in COLUMNS:
                    cells.append(fmt([r[prefix + key] for r in runs]))
                temp = t_text if prefix == "eval_ts_" else "–"
                print(f"| {name} | {len(runs)} | {temp} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument("--tasks", default="sst2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--runs_dir", default=str(REPO / "runs" / "calibration"))
    parser.add_argument("--smoke", action="store_true", help="run, then table, on a tiny random BERT (none and "
                        "manifold, 16 examples, 32 evaluated, 1 epoch, seed 0) in a temporary folder: a check of "
                        "the code path")
    args = parser.parse_args()
    if args.smoke:
        from smoke import save_tiny_bert

        with tempfile.TemporaryDirectory() as tmp:
            args.runs_dir, args.seeds, args.epochs, args.methods = str(Path(tmp) / "runs"), "0", 1, "none,manifold"
            run(args, model=save_tiny_bert(Path(tmp) / "tiny-bert"), extra=SMOKE)
            table(args)
        return
    run(args) if args.command == "run" else table(args)


if __name__ == "__main__":
    main()
