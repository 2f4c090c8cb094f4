"""Comparison mode of the run scripts: is MixUp worth it on my data?

    python run_glue_mixup.py --task sst2 --data_dir ../shared/data/sst2 --model_name_or_path ... \\
        --compare manifold --compare_seeds 42,43,44 --output_dir outputs/compare-sst2

trains the baseline (``none``, always included) and each arm of ``--compare`` (a MixUp method, or
``ls<ε>``: label smoothing ε without mixing) once per seed, each through the ordinary code path
(``run.main``, built from the comparison's own parsed arguments) with every other flag as given,
into ``<output_dir>/<arm>-seed<seed>``. For a given seed every arm trains on the same sample
(``--train_sample_seed`` defaults to the seed) from the same initial head. Then it writes, to
``output_dir``: ``comparison.md`` and ``comparison.json`` (task metric, test loss, ECE, signed gap,
NLL, AURC at the best and at the last epoch, mean ± s.e. over seeds and paired differences against
the baseline; ``eval_ts_*`` columns when the runs report them; one table per ``--shift_eval_files``
set), ``test_loss.png`` (dev loss per epoch of every run), ``reliability.png`` (each arm's diagram
with its confidence histogram) and ``risk_coverage.png``. From Python, ``compare(args, arms=...)``
takes arms that are named sets of run-script arguments ({name: overrides}, the baseline first, which
the paired differences are taken against): ``benchmarks/reproduce.py`` runs its grids so.

A run whose ``all_results.json`` exists is finished and not redone, so a killed comparison resumes
where it stopped (an unfinished run resumes from its last checkpoint, as the scripts do). Each run's
folder has its own ``run_settings.json``: a rerun of the comparison with other settings is refused
with the scripts' one-line message rather than mixing old runs into the new report;
``--overwrite_output_dir`` redoes every run. Copies of the same command on one folder share the
runs (workers: one per GPU, or single-thread processes on a CPU): a run's folder is locked by the
process training it, so a copy goes on to the next run, then waits for the others' runs (taking over
one whose process died) and writes the same report. The runs log at ``--log_level error`` unless given,
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

from .ensemble import ensemble_metrics, mean_probabilities, read_predictions
from .evaluation import PREDICTIONS_FILE
from .output_dir import OutputDirBusy, write_text_atomic
from .script_args import arm_overrides

#: How often a comparison looks again at the runs another copy of it is training.
WAIT_SECONDS = 30
REPORT_FILES = ("comparison.md", "comparison.json", "test_loss.png", "reliability.png", "risk_coverage.png")
# (key suffix, column title); the task metric comes first. Missing keys (regression) are left out.
COLUMNS = (("loss", "test loss"), ("ece", "ECE"), ("overconfidence", "gap (conf − acc)"), ("nll", "NLL"),
           ("aurc", "AURC"), ("augrc", "AUGRC"))


def mean_se(values) -> tuple[float, float | None]:
    """Mean and standard error (sample s.d. / √n) of the values; s.e. None for a single value."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None)


def run_args(args, method: str, seed: int, run_dir: Path, overrides: dict | None = None):
    """One run's arguments: the comparison's, with its arm's overrides (default: those of ``--compare``'s
    arm ``method``, a MixUp method or label smoothing), seed and folder, and quiet logs unless the user
    chose a log level; built and checked as a typed run."""
    quiet = {"log_level": "error"} if args.training.log_level == "passive" else {}
    overrides = arm_overrides(method) if overrides is None else overrides
    return args.replace(**overrides, seed=seed, output_dir=str(run_dir), compare=None, compare_seeds=None, **quiet)


def comparison_arms(args, arms: dict[str, dict] | None = None) -> dict[str, dict]:
    """The arms of a comparison: {name: the argument values that arm sets}, the baseline first, which
    every other arm's paired differences are taken against. Default: ``--compare``'s arms, the baseline
    none first ({"none": {"mixup_method": "none"}, "manifold": {"mixup_method": "manifold"}, ...}).
    A caller may name its own arms (any run-script arguments, e.g. {"manifold": {"mixup_method":
    "manifold"}, "manifold-max": {"mixup_method": "manifold", "mixup_padding": "max"}}); each trains
    into ``<output_dir>/<name>-seed<seed>`` and reports under its name."""
    if arms is None:
        return {m: arm_overrides(m) for m in args.run.compare_methods}
    if len(arms) < 2:
        raise ValueError(f"comparison arms {list(arms)}: give the baseline first and at least one other arm")
    bad = [name for name in arms if not name or name != name.strip() or "/" in name or "\\" in name]
    if bad:
        raise ValueError(f"comparison arm names {bad}: each names its runs' folders (<name>-seed<seed>)")
    reserved = sorted({k for overrides in arms.values() for k in overrides} & {"seed", "output_dir", "compare",
                                                                              "compare_seeds"})
    if reserved:
        raise ValueError(f"comparison arms set {reserved}: the comparison sets these for each run itself")
    return {name: dict(overrides) for name, overrides in arms.items()}


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


def compare(args, setup_logging=None, arms: dict[str, dict] | None = None) -> dict:
    """Run (or resume) the comparison of ``args`` (parsed, with ``--compare``) and write its report;
    returns the report (what comparison.json holds). ``setup_logging(training_args)``, if given,
    configures logging before each run. ``arms`` ({name: argument overrides}, the baseline first; see
    :func:`comparison_arms`) replaces ``--compare``'s arms."""
    from .run import main

    arms = comparison_arms(args, arms)
    methods, seeds = list(arms), args.run.compare_seed_list or [args.training.seed]
    training_args, task = args.training, args.task
    out = Path(training_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = [dict(method=m, seed=s, dir=out / f"{m}-seed{s}") for s in seeds for m in methods]  # seed-major
    todo = [r for r in runs if args.run.overwrite_output_dir or not (r["dir"] / "all_results.json").exists()]
    clock = {"start": time.time(), "runs_done": 0, "runs_todo": len(todo), "metric": task.metric, "stdout": sys.stdout}
    print(f"[compare] {task.name}: methods {', '.join(methods)} x seeds {', '.join(map(str, seeds))}; "
          f"{len(runs) - len(todo)} of {len(runs)} runs already finished", flush=True)

    def visit(i: int, r: dict, redo: bool) -> bool:
        """Train (or check) one run; False if another process holds its folder (is training it)."""
        label = f"run {i}/{len(runs)} {r['method']} seed {r['seed']}"
        # a run met again (trained meanwhile by another copy) is checked, not redone, even under overwrite
        one = run_args(args, r["method"], r["seed"], r["dir"], {**arms[r["method"]], "overwrite_output_dir": redo})
        if setup_logging is not None:
            setup_logging(one.training)
        finished = not redo and (r["dir"] / "all_results.json").exists()
        if redo:
            (r["dir"] / "all_results.json").unlink(missing_ok=True)  # --overwrite_output_dir: unfinished until rerun
        try:
            # main() checks the folder's run_settings.json: a finished run of other settings is refused, not reused
            with _quiet():
                main(one, **({} if finished else {"progress": _progress_callback(label, clock)}))
        except OutputDirBusy as busy:
            if busy.folder != r["dir"] or training_args.world_size > 1:
                raise
            return False
        if finished:
            print(f"[compare] {label}: finished before (all_results.json), not redone", flush=True)
        else:
            clock["runs_done"] += 1
        return True

    elsewhere = [(i, r) for i, r in enumerate(runs, 1) if not visit(i, r, args.run.overwrite_output_dir)]
    if elsewhere:  # another copy of this command trains them: wait, or take a run over if its process dies
        names = ", ".join(f"{r['method']} seed {r['seed']}" for _, r in elsewhere)
        print(f"[compare] {len(elsewhere)} run(s) being trained by another process ({names}): waiting for them",
              flush=True)
    while elsewhere:
        time.sleep(WAIT_SECONDS)
        elsewhere = [(i, r) for i, r in elsewhere if not visit(i, r, False)]
    if not training_args.should_save:  # other ranks of a data-parallel comparison write nothing
        return {}
    summary = write_report(out, task, [_load(r) for r in runs], methods, seeds, args.calibration.calibration_bins)
    print(f"[compare] {clock['runs_done']} run(s) trained here in {_clock(time.time() - clock['start'])}; "
          f"report: {out / 'comparison.md'}", flush=True)
    print((out / "comparison.md").read_text(encoding="utf-8"), flush=True)
    print(f"[compare] {out} holds {_size(out)}: each run's folder keeps its trained model beside its results; "
          "delete a run's model*.safetensors / adapter_model.safetensors if you need only the numbers.", flush=True)
    return summary


def _size(folder: Path) -> str:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return f"{total / 1e6:.0f} MB" if total >= 1e6 else f"{total / 1e3:.0f} kB"


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


def one_class_runs(out: Path, records: list[dict]) -> list[dict]:
    """The runs whose kept model predicts the same class for every scored example: a degenerate
    fine-tuning run (its loss never left log C; common with little data), which the report names
    because over few seeds one such run can decide a method's mean. Named, not dropped."""
    found = []
    for r in records:
        _, probs, _ = read_predictions(out / r["output_dir"], PREDICTIONS_FILE)
        classes = np.unique(probs.argmax(axis=1))
        if len(probs) > 1 and len(classes) == 1:
            found.append(dict(method=r["method"], seed=r["seed"], predicted_class=int(classes[0])))
    return found


def _cell(stat: dict | None, signed: bool = False) -> str:
    if stat is None:
        return "–"
    mean = f"{stat['mean']:+.4f}" if signed else f"{stat['mean']:.4f}"
    return mean if stat["se"] is None else f"{mean} ± {stat['se']:.4f}"


def stat(values) -> dict:
    """{mean, se, n} of the values (se None for one value)."""
    return dict(zip(("mean", "se"), mean_se(values)), n=len(values))


def paired_difference(by: dict, arm: str, baseline: str, scale: float = 1.0) -> dict | None:
    """Mean ± s.e. over seeds of (arm − baseline) on the same seed, hence the same training sample and
    initial head: ``by`` maps (arm, seed) to a value. None where no seed has both."""
    seeds = sorted(s for a, s in by if a == arm and (baseline, s) in by)
    return stat([scale * (by[arm, s] - by[baseline, s]) for s in seeds]) if seeds else None


def summarise(records: list[dict], methods: list[str], where: str, keys: list[str]):
    """Mean ± s.e. over seeds per method, and of the paired differences method − baseline (the first
    method; same seed)."""
    seeds = sorted({r["seed"] for r in records})
    by_key = {k: {(r["method"], r["seed"]): r[where][k] for r in records} for k in keys}
    means = {m: {k: stat([by_key[k][m, s] for s in seeds]) for k in keys} for m in methods}
    paired = {m: {k: paired_difference(by_key[k], m, methods[0]) for k in keys} for m in methods[1:]}
    return means, paired


def _epochs(records: list[dict], methods: list[str], key: str) -> dict:
    return {m: ", ".join(f"{r[key]:g}" for r in records if r["method"] == m) for m in methods}


def _table(title: str, columns: dict, means: dict, paired: dict, extra: dict) -> list[str]:
    baseline = next(iter(means))
    head = ["method", "seeds", *columns.values(), *extra]
    lines = [f"\n## {title}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, stats in means.items():
        n = next(iter(stats.values()))["n"]
        lines.append(f"| {method} | {n} | " + " | ".join(_cell(stats[k]) for k in columns)
                     + "".join(f" | {v[method]}" for v in extra.values()) + " |")
    for method, stats in paired.items():
        lines.append(f"| {method} − {baseline} | {next(iter(stats.values()))['n']} | "
                     + " | ".join(_cell(stats[k], signed=True) for k in columns) + " |" * (len(extra) + 1))
    return lines


def shift_names(results: dict) -> list[str]:
    """The shifted sets a run scored (``--shift_eval_files``): the prefixes of its ``NAME_samples`` keys."""
    return sorted(k.removesuffix("_samples") for k in results
                  if k.endswith("_samples") and k not in ("eval_samples", "train_samples", "calibration_samples"))


def _columns(records: list[dict], prefix: str, task) -> dict:
    """{key: title} of the task metric and COLUMNS under ``prefix`` that every run has."""
    cols = {f"{prefix}_{task.metric}": task.metric.replace("matthews_correlation", "MCC")}
    cols.update({f"{prefix}_{k}": title for k, title in COLUMNS})
    return {k: t for k, t in cols.items() if all(k in r["best"] for r in records)}


def _ts_columns(records: list[dict], prefix: str) -> dict:
    start = f"{prefix}_ts_"
    return {k: k.removeprefix(start) for k in sorted(records[0]["best"])
            if k.startswith(start) and all(isinstance(r["best"].get(k), (int, float)) for r in records)}


def write_report(out: Path, task, records: list[dict], methods: list[str], seeds: list[int], n_bins: int) -> dict:
    """comparison.md, comparison.json and the plots, from the finished runs' own files."""
    best_cols = _columns(records, "eval", task)
    last_cols = {k: t for k, t in best_cols.items() if all(k in r["last"] for r in records)}
    sections = {"best": (best_cols, "best"), "last": (last_cols, "last"), "after_ts": (_ts_columns(records, "eval"), "best")}
    shifted = shift_names(records[0]["best"])
    for name in shifted:
        sections[f"shift_{name}"] = (_columns(records, name, task), "best")
        sections[f"shift_{name}_after_ts"] = (_ts_columns(records, name), "best")
    summary = {name: dict(zip(("mean", "paired"), summarise(records, methods, where, list(cols))))
               for name, (cols, where) in sections.items() if cols}
    r0 = records[0]["best"]
    lines = [f"# MixUp comparison: {task.name}, {' vs '.join(methods)}", "",
             f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}); for each seed every method trains on the same "
             f"{r0.get('train_samples', '?')} examples and is scored on the same {r0.get('eval_samples', '?')} "
             f"evaluation examples. Mean ± s.e. over seeds; a `method − {methods[0]}` row is the mean ± s.e. of "
             "the per-seed differences (paired). The best epoch is chosen on the same evaluation set it is scored on. "
             "Signed gap = mean confidence − accuracy (> 0: over-confident). AURC = area under the risk–coverage "
             "curve (lower: the confident predictions are the right ones). `lsε` = label smoothing ε, no mixing."]
    lines += _table(f"Best epoch (the model each run keeps, chosen by {task.metric})", best_cols,
                    *summary["best"].values(), {"epochs": _epochs(records, methods, "best_epoch")})
    predictions = all((out / r["output_dir"] / PREDICTIONS_FILE).exists() for r in records)
    one_class = one_class_runs(out, records) if predictions and not task.is_regression else []
    if one_class:
        lines += ["", "**Runs whose kept model predicts one class for every scored example** (they never learned "
                  "the task; their numbers stay in every table, where over few seeds one of them can decide a mean): "
                  + "; ".join(f"{r['method']} seed {r['seed']} (always class {r['predicted_class']})"
                              for r in one_class) + "."]
    if "last" in summary:
        lines += _table("Last epoch", last_cols, *summary["last"].values(),
                        {"epochs": _epochs(records, methods, "last_epoch")})
    if "after_ts" in summary:
        lines += _table("After temperature scaling (best epoch)", sections["after_ts"][0],
                        *summary["after_ts"].values(), {})
    for name in shifted:
        if f"shift_{name}" in summary:
            lines += _table(f"Under shift: {name} ({r0.get(f'{name}_samples', '?')} examples, best epoch)",
                            sections[f"shift_{name}"][0], *summary[f"shift_{name}"].values(), {})
        if f"shift_{name}_after_ts" in summary:
            lines += _table(f"Under shift: {name}, after the in-domain temperature", sections[f"shift_{name}_after_ts"][0],
                            *summary[f"shift_{name}_after_ts"].values(), {})
    ensembled = [m for m in methods if sum(r["method"] == m for r in records) >= 2] if predictions else []
    if ensembled and not task.is_regression:
        summary["ensemble"] = {m: ensemble_metrics(_method_folders(out, records, m), task, n_bins, shifted)
                               for m in ensembled}
        lines += _ensemble_tables(summary["ensemble"], sections, shifted, r0)
    plots = {"test_loss": plot_test_loss(out, task, records, methods)}
    if predictions and not task.is_regression:
        plots["reliability"] = plot_reliability(out, task, records, methods, n_bins, ensembled)
        plots["risk_coverage"] = plot_risk_coverage(out, task, records, methods)
    lines += ["\n## Plots\n", *(f"![{name}]({file})" for name, file in plots.items())]
    if "reliability" in plots:
        lines += ["", "The reliability diagrams pool the seeds' predictions. Pooling can put one seed's "
                  "over-confident examples and another's under-confident ones into the same bin, where their gaps "
                  "cancel: the pooled ECE in a diagram's title can be lower than every seed's own ECE and than the "
                  "table's mean over seeds. Quote the table."]
    write_text_atomic(out / "comparison.md", "\n".join(lines) + "\n")
    report = dict(task=task.name, methods=methods, seeds=seeds, baseline=methods[0],
                  columns={name: cols for name, (cols, _) in sections.items() if cols},
                  summary=summary, one_class_runs=one_class, plots=plots, runs=records)
    write_text_atomic(out / "comparison.json", json.dumps(report, indent=1))
    return report


def _ensemble_tables(ensembles: dict, sections: dict, shifted: list[str], r0: dict) -> list[str]:
    """comparison.md's tables of the seeds' ensembles, one per section of the single-model tables (the
    last epoch excepted: a run keeps its best epoch): one number per method, no s.e. (one ensemble)."""
    k = {m: e["members"] for m, e in ensembles.items()}
    sizes = ", ".join(sorted({str(n) for n in k.values()}))
    lines = [f"\n## Ensemble of {sizes} seeds (mean of the seeds' probabilities, the models each run keeps)\n",
             "No extra training: each method's kept models' probabilities on the same evaluation examples, averaged "
             "per example, then scored like one run (loss = NLL of the mean probabilities). Compare with the "
             "single-model means above. With temperature scaling one T is fitted on the ensemble's calibration "
             "logits (the log of the mean probabilities)."]
    titles = {"best": "In-domain", "after_ts": "After temperature scaling"}
    for name in shifted:
        titles[f"shift_{name}"] = f"Under shift: {name} ({r0.get(f'{name}_samples', '?')} examples)"
        titles[f"shift_{name}_after_ts"] = f"Under shift: {name}, after the ensemble's in-domain temperature"
    for section, title in titles.items():
        columns = {key: t for key, t in sections.get(section, ({}, None))[0].items()
                   if all(key in e for e in ensembles.values())}
        if not columns:
            continue
        extra = {"T": "temperature"} if section == "after_ts" else {}
        head = ["method", "seeds", *columns.values(), *extra]
        lines += [f"\n### {title}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for method, e in ensembles.items():
            cells = [f"{e[key]:.4f}" for key in [*columns, *extra.values()]]
            lines.append(f"| {method} | {e['members']} | " + " | ".join(cells) + " |")
    return lines


def _figure(**kwargs):
    from matplotlib.figure import Figure  # the Agg canvas: no display, no global pyplot state

    return Figure(layout="constrained", **kwargs)


def plot_test_loss(out: Path, task, records: list[dict], methods: list[str]) -> str:
    """Dev (test) loss per epoch: thin line per run, thick line the mean over seeds (Appendix D)."""
    curves = {m: [dict(r["eval_loss_curve"]) for r in records if r["method"] == m] for m in methods}
    plot_loss_curves(curves, out / "test_loss.png", f"{task.name}: test loss during training")
    return "test_loss.png"


def plot_loss_curves(curves: dict[str, list[dict]], path: Path, title: str, xlabel: str = "epoch") -> None:
    """{method: [{x: loss} per run]} as a thin line per run and a thick line of the mean over runs."""
    fig = _figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    for i, (method, runs) in enumerate(curves.items()):
        for curve in runs:
            ax.plot(list(curve), list(curve.values()), color=f"C{i}", alpha=0.3, linewidth=1)
        xs = sorted(set.intersection(*(set(c) for c in runs)))
        ax.plot(xs, [np.mean([c[x] for c in runs]) for x in xs], color=f"C{i}", marker="o", linewidth=2,
                label=f"{method} (mean of {len(runs)})")
    ax.set(xlabel=xlabel, ylabel="test (dev) loss", title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    fig.savefig(path, dpi=90)


def pooled_predictions(folders, file: str = PREDICTIONS_FILE) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) of the runs in ``folders``, their prediction files concatenated."""
    runs = [read_predictions(Path(folder), file) for folder in folders]
    return np.concatenate([probs for _, probs, _ in runs]), np.concatenate([labels for _, _, labels in runs])


def _method_folders(out: Path, records: list[dict], method: str) -> list[Path]:
    return [out / r["output_dir"] for r in records if r["method"] == method]


def plot_risk_coverage(out: Path, task, records: list[dict], methods: list[str]) -> str:
    """Risk–coverage curve of each method (best epoch, seeds pooled): error rate of the k most
    confident predictions against k / n; its area (AURC) is in the legend."""
    from .calibration import plot_risk_coverage as draw, risk_coverage_curve

    fig = _figure(figsize=(6.0, 4.0))
    curves = {m: risk_coverage_curve(*pooled_predictions(_method_folders(out, records, m))) for m in methods}
    draw(curves, ax=fig.subplots(), title=f"{task.name}: risk–coverage (seeds pooled)")
    fig.savefig(out / "risk_coverage.png", dpi=90)
    return "risk_coverage.png"


def plot_reliability(out: Path, task, records: list[dict], methods: list[str], n_bins: int,
                     ensembled: list[str] = ()) -> str:
    """Each method's reliability diagram (final model = best epoch, seeds pooled), histogram below; then
    the diagram of each method's ensemble (``ensembled``: the seeds' probabilities averaged)."""
    from .calibration import calibration_report, plot_reliability_diagram

    panels = [*((m, False) for m in methods), *((m, True) for m in ensembled)]
    fig = _figure(figsize=(4.2 * len(panels), 5.6))
    axes = fig.subplots(2, len(panels), sharex=True, sharey="row", height_ratios=[3, 1], squeeze=False)
    for column, (method, ensemble) in enumerate(panels):
        folders = _method_folders(out, records, method)
        if ensemble:
            _, probs, labels = mean_probabilities(folders, PREDICTIONS_FILE)
            title = f"{task.name}, {method}: ensemble of {len(folders)}"
        else:
            probs, labels = pooled_predictions(folders)
            title = f"{task.name}, {method} ({len(folders)} seed(s) pooled)"
        plot_reliability_diagram(calibration_report(probs, labels, n_bins=n_bins), title=title,
                                 axes=(axes[0, column], axes[1, column]))
    fig.savefig(out / "reliability.png", dpi=80)
    return "reliability.png"

