"""Comparison mode of the run scripts: is MixUp worth it on my data?

    python run_glue_mixup.py --task sst2 --data_dir ../shared/data/sst2 --model_name_or_path ... \\
        --compare manifold --compare_seeds 42,43,44 --output_dir outputs/compare-sst2

trains the baseline (``none``, always included) and each method of ``--compare`` once per seed,
each through the ordinary code path (``run.main``) with every other flag as given, into
``<output_dir>/<method>-seed<seed>``. For a given seed every method trains on the same sample
(``--train_sample_seed`` defaults to the seed) from the same initial head. Then it writes, to
``output_dir``: ``comparison.md`` and ``comparison.json`` (task metric, test loss, ECE, signed gap,
NLL at the best and at the last epoch, mean ± s.e. over seeds and paired differences against the
baseline; ``eval_ts_*`` columns when the runs report them), ``test_loss.png`` (dev loss per epoch of
every run) and ``reliability.png`` (each method's diagram with its confidence histogram).

A run whose ``all_results.json`` exists is finished and not redone, so a killed comparison resumes
where it stopped (an unfinished run resumes from its last checkpoint, as the scripts do). Each run's
folder has its own ``run_settings.json``: a rerun of the comparison with other settings is refused
with the scripts' one-line message rather than mixing old runs into the new report;
``--overwrite_output_dir`` redoes every run. The runs log at ``--log_level error`` unless given,
and what they print besides (metric dumps, progress bars) gives way to one line per evaluation.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .script_args import BASELINE

REPORT_FILES = ("comparison.md", "comparison.json", "test_loss.png", "reliability.png")
# (key suffix, column title); the task metric comes first. Missing keys (regression) are left out.
COLUMNS = (("loss", "test loss"), ("ece", "ECE"), ("overconfidence", "gap (conf − acc)"), ("nll", "NLL"))


def mean_se(values) -> tuple[float, float | None]:
    """Mean and standard error (sample s.d. / √n) of the values; s.e. None for a single value."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None)


def run_args(args, method: str, seed: int, run_dir: Path):
    """One run's arguments: the comparison's, with its method, seed and folder, and quiet logs unless
    the user chose a log level."""
    quiet = {} if "log_level" in args.explicit else {"log_level": "error"}
    return args.for_run(mixup_method=method, seed=seed, output_dir=str(run_dir), compare=None, compare_seeds=None,
                        **quiet)


@contextlib.contextmanager
def _quiet():
    """Drop what the runs print (metric dumps, progress bars) but not their log records or the progress line."""
    import datasets
    import transformers

    hf_logging = transformers.utils.logging
    bars = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    # the scripts' log handler writes to stdout: bind it to the real one before stdout is redirected
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
                        handlers=[logging.StreamHandler(sys.stdout)])
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            # printed once per run on a machine without GPU
            warnings.filterwarnings("ignore", ".*'pin_memory' argument is set as true", UserWarning)
            yield
    finally:
        if bars[0]:
            datasets.enable_progress_bars()
        if bars[1]:
            hf_logging.enable_progress_bar()


def _progress_callback(label: str, clock: dict):
    """A TrainerCallback printing one line per evaluation, with the comparison's time left."""
    from transformers import TrainerCallback

    class ProgressLine(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.first_step = state.global_step  # a resumed run starts past 0

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if not state.is_world_process_zero or not state.max_steps:
                return
            elapsed = time.time() - clock["start"]
            run_fraction = (state.global_step - self.first_step) / max(state.max_steps - self.first_step, 1)
            done = clock["runs_done"] + run_fraction
            left = elapsed / done * (clock["runs_todo"] - done) if done > 0 else float("nan")
            shown = " ".join(f"{k.removeprefix('eval_')} {v:.4f}" for k, v in (metrics or {}).items()
                             if k in ("eval_loss", f"eval_{clock['metric']}", "eval_ece"))
            print(f"[compare] {label}: epoch {state.epoch:g}/{args.num_train_epochs:g}  {shown}  "
                  f"elapsed {_clock(elapsed)}, left ~{_clock(left)}", file=clock["stdout"], flush=True)

    return ProgressLine()


def _clock(seconds: float) -> str:
    return "?" if not math.isfinite(seconds) else f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def compare(args, setup_logging=None) -> dict:
    """Run (or resume) the comparison of ``args`` (parsed, with ``--compare``) and write its report;
    returns the report (what comparison.json holds). ``setup_logging(training_args)``, if given,
    configures logging before each run."""
    from .run import main

    methods, seeds = args.run.compare_methods, args.run.compare_seed_list or [args.training.seed]
    training_args, task = args.training, args.task
    out = Path(training_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = [dict(method=m, seed=s, dir=out / f"{m}-seed{s}") for s in seeds for m in methods]  # seed-major
    todo = [r for r in runs if args.run.overwrite_output_dir or not (r["dir"] / "all_results.json").exists()]
    clock = {"start": time.time(), "runs_done": 0, "runs_todo": len(todo), "metric": task.metric, "stdout": sys.stdout}
    print(f"[compare] {task.name}: methods {', '.join(methods)} x seeds {', '.join(map(str, seeds))}; "
          f"{len(runs) - len(todo)} of {len(runs)} runs already finished", flush=True)
    for i, r in enumerate(runs, 1):
        label = f"run {i}/{len(runs)} {r['method']} seed {r['seed']}"
        one = run_args(args, r["method"], r["seed"], r["dir"])
        if setup_logging is not None:
            setup_logging(one.training)
        if r not in todo:
            # main() checks the folder's run_settings.json: a finished run of other settings is refused, not reused
            with _quiet():
                main(one)
            print(f"[compare] {label}: finished before (all_results.json), not redone", flush=True)
            continue
        (r["dir"] / "all_results.json").unlink(missing_ok=True)  # --overwrite_output_dir: unfinished until rerun
        with _quiet():
            main(one, progress=_progress_callback(label, clock))
        clock["runs_done"] += 1
    if not training_args.should_save:  # other ranks of a data-parallel comparison write nothing
        return {}
    summary = write_report(out, task, [_load(r) for r in runs], methods, seeds, args.calibration.calibration_bins)
    print(f"[compare] {len(todo)} run(s) in {_clock(time.time() - clock['start'])}; report: {out / 'comparison.md'}",
          flush=True)
    print((out / "comparison.md").read_text(encoding="utf-8"), flush=True)
    return summary


# ---------------------------------------------------------------------------------------- report
def _load(run: dict) -> dict:
    """One finished run: best-epoch metrics (all_results.json) and the last evaluation of its log."""
    results = json.loads((run["dir"] / "all_results.json").read_text(encoding="utf-8"))
    history = json.loads((run["dir"] / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    evals = [h for h in history if "eval_loss" in h]
    return dict(method=run["method"], seed=run["seed"], output_dir=run["dir"].name,
                best_epoch=results.get("best_epoch"), best=results,
                last_epoch=evals[-1]["epoch"], last=evals[-1],
                eval_loss_curve=[[h["epoch"], h["eval_loss"]] for h in evals])


def _cell(stat: dict | None, signed: bool = False) -> str:
    if stat is None:
        return "–"
    mean = f"{stat['mean']:+.4f}" if signed else f"{stat['mean']:.4f}"
    return mean if stat["se"] is None else f"{mean} ± {stat['se']:.4f}"


def summarise(records: list[dict], methods: list[str], where: str, keys: list[str]):
    """Mean ± s.e. over seeds per method, and of the paired differences method − baseline (same seed)."""
    by = {(r["method"], r["seed"]): r[where] for r in records}
    seeds = sorted({r["seed"] for r in records})
    stat = lambda v: dict(zip(("mean", "se"), mean_se(v)), n=len(v))  # noqa: E731
    means = {m: {k: stat([by[m, s][k] for s in seeds]) for k in keys} for m in methods}
    paired = {m: {k: stat([by[m, s][k] - by[BASELINE, s][k] for s in seeds]) for k in keys}
              for m in methods if m != BASELINE}
    return means, paired


def _epochs(records: list[dict], methods: list[str], key: str) -> dict:
    return {m: ", ".join(f"{r[key]:g}" for r in records if r["method"] == m) for m in methods}


def _table(title: str, columns: dict, means: dict, paired: dict, extra: dict) -> list[str]:
    head = ["method", "seeds", *columns.values(), *extra]
    lines = [f"\n## {title}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, stats in means.items():
        n = next(iter(stats.values()))["n"]
        lines.append(f"| {method} | {n} | " + " | ".join(_cell(stats[k]) for k in columns)
                     + "".join(f" | {v[method]}" for v in extra.values()) + " |")
    for method, stats in paired.items():
        lines.append(f"| {method} − {BASELINE} | {next(iter(stats.values()))['n']} | "
                     + " | ".join(_cell(stats[k], signed=True) for k in columns) + " |" * (len(extra) + 1))
    return lines


def write_report(out: Path, task, records: list[dict], methods: list[str], seeds: list[int], n_bins: int) -> dict:
    """comparison.md, comparison.json and the two plots, from the finished runs' own files."""
    best_cols = {f"eval_{task.metric}": task.metric.replace("matthews_correlation", "MCC")}
    best_cols.update({f"eval_{k}": title for k, title in COLUMNS})
    best_cols = {k: t for k, t in best_cols.items() if all(k in r["best"] for r in records)}
    last_cols = {k: t for k, t in best_cols.items() if all(k in r["last"] for r in records)}
    ts_cols = {k: k.removeprefix("eval_ts_") for k in sorted(records[0]["best"])
               if k.startswith("eval_ts_") and all(isinstance(r["best"].get(k), (int, float)) for r in records)}
    sections = {"best": (best_cols, "best"), "last": (last_cols, "last"), "after_ts": (ts_cols, "best")}
    summary = {name: dict(zip(("mean", "paired"), summarise(records, methods, where, list(cols))))
               for name, (cols, where) in sections.items() if cols}
    r0 = records[0]["best"]
    lines = [f"# MixUp comparison: {task.name}, {' vs '.join(methods)}", "",
             f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}); for each seed every method trains on the same "
             f"{r0.get('train_samples', '?')} examples and is scored on the same {r0.get('eval_samples', '?')} "
             "evaluation examples. Mean ± s.e. over seeds; a `method − none` row is the mean ± s.e. of the "
             "per-seed differences (paired). The best epoch is chosen on the same evaluation set it is scored on. "
             "Signed gap = mean confidence − accuracy (> 0: over-confident)."]
    lines += _table(f"Best epoch (the model each run keeps, chosen by {task.metric})", best_cols,
                    *summary["best"].values(), {"epochs": _epochs(records, methods, "best_epoch")})
    if "last" in summary:
        lines += _table("Last epoch", last_cols, *summary["last"].values(),
                        {"epochs": _epochs(records, methods, "last_epoch")})
    if "after_ts" in summary:
        lines += _table("After temperature scaling (best epoch)", ts_cols, *summary["after_ts"].values(), {})
    plots = {"test_loss": plot_test_loss(out, task, records, methods)}
    if all((out / r["output_dir"] / "eval_predictions.jsonl").exists() for r in records) and not task.is_regression:
        plots["reliability"] = plot_reliability(out, task, records, methods, n_bins)
    lines += ["\n## Plots\n", *(f"![{name}]({file})" for name, file in plots.items())]
    (out / "comparison.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = dict(task=task.name, methods=methods, seeds=seeds, baseline=BASELINE,
                  columns={name: cols for name, (cols, _) in sections.items() if cols},
                  summary=summary, plots=plots, runs=records)
    (out / "comparison.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def _figure(**kwargs):
    from matplotlib.figure import Figure  # the Agg canvas: no display, no global pyplot state

    return Figure(layout="constrained", **kwargs)


def plot_test_loss(out: Path, task, records: list[dict], methods: list[str]) -> str:
    """Dev (test) loss per epoch: thin line per run, thick line the mean over seeds (Appendix D)."""
    fig = _figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    for i, method in enumerate(methods):
        curves = [dict(r["eval_loss_curve"]) for r in records if r["method"] == method]
        for curve in curves:
            ax.plot(list(curve), list(curve.values()), color=f"C{i}", alpha=0.3, linewidth=1)
        epochs = sorted(set.intersection(*(set(c) for c in curves)))
        ax.plot(epochs, [np.mean([c[e] for c in curves]) for e in epochs], color=f"C{i}", marker="o", linewidth=2,
                label=f"{method} (mean of {len(curves)})")
    ax.set(xlabel="epoch", ylabel="test (dev) loss", title=f"{task.name}: test loss during training")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    fig.savefig(out / "test_loss.png", dpi=90)
    return "test_loss.png"


def plot_reliability(out: Path, task, records: list[dict], methods: list[str], n_bins: int) -> str:
    """Each method's reliability diagram (final model = best epoch, seeds pooled), histogram below."""
    from .calibration import calibration_report, plot_reliability_diagram

    fig = _figure(figsize=(4.2 * len(methods), 5.6))
    axes = fig.subplots(2, len(methods), sharex=True, sharey="row", height_ratios=[3, 1], squeeze=False)
    for column, method in enumerate(methods):
        rows = [json.loads(line) for r in records if r["method"] == method
                for line in (out / r["output_dir"] / "eval_predictions.jsonl").read_text(encoding="utf-8").splitlines()]
        probs, labels = np.asarray([row["probs"] for row in rows]), np.asarray([row["label"] for row in rows])
        report = calibration_report(probs, labels, n_bins=n_bins)
        n_runs = sum(r["method"] == method for r in records)
        plot_reliability_diagram(report, title=f"{task.name}, {method} ({n_runs} seed(s) pooled)",
                                 axes=(axes[0, column], axes[1, column]))
    fig.savefig(out / "reliability.png", dpi=80)
    return "reliability.png"

