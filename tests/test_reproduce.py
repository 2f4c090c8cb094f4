"""The reproduction harness: its grids as comparisons, the learning-rate choice read from comparison.json,
the report, and (slow) a grid of custom arms run end to end through compare on a tiny random BERT."""

import argparse
import importlib.util
import json
import subprocess
import sys

import pytest
from testing_utils import ENV, REPO


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", REPO / "benchmarks" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grid_args(runs, seeds="0,1", tasks="sst2", methods="none,cls", cola_lr=None):
    return argparse.Namespace(runs_dir=str(runs), seeds=seeds, tasks=tasks, methods=methods, cola_lr=cola_lr)


def fake_comparison(out, task, scores: dict, metric="eval_accuracy"):
    """comparison.json (and .md, plots) written by compare's own write_report from hand-made runs:
    ``scores`` maps an arm to its metric per seed."""
    from mixup_trainer.compare import write_report
    from mixup_trainer.tasks import get_task

    records = []
    for arm, values in scores.items():
        for seed, value in enumerate(values):
            best = {metric: value, "eval_loss": 0.6, "eval_ece": 0.1, "eval_samples": 10, "train_samples": 64}
            records.append(dict(method=arm, seed=seed, output_dir=f"{arm}-seed{seed}", best_epoch=1, best=best,
                                last_epoch=2, last={**best, "epoch": 2}, eval_loss_curve=[[1, 0.7], [2, 0.6]]))
    out.mkdir(parents=True)
    return write_report(out, get_task(task), records, list(scores), list(range(len(next(iter(scores.values()))))), 15)


def test_grids_are_comparisons_at_the_chosen_learning_rate(reproduce, tmp_path):
    runs = tmp_path / "runs"
    (lr_grid,) = reproduce.comparisons("lr", grid_args(runs, seeds="0", tasks="sst2,boolq"))  # boolq borrows
    assert lr_grid["out"] == runs / "lr" / "sst2" and list(lr_grid["arms"]) == ["lr5e-05", "lr0.0001", "lr0.0002"]
    assert {a["learning_rate"] for a in lr_grid["arms"].values()} == set(reproduce.LR_GRID)
    with pytest.raises(SystemExit, match="reproduce.py lr --tasks sst2"):
        reproduce.comparisons("main", grid_args(runs))
    # a tie goes to the smaller rate: 1e-4 and 2e-4 both average 70.0
    fake_comparison(runs / "lr" / "sst2", "sst2", {"lr5e-05": [0.55], "lr0.0001": [0.70], "lr0.0002": [0.70]})
    assert reproduce.chosen_lr(runs, "sst2") == reproduce.chosen_lr(runs, "boolq") == 1e-4
    (main,) = reproduce.comparisons("main", grid_args(runs))
    assert main["out"] == runs / "main" / "sst2" / "lr0.0001" and main["seeds"] == [0, 1]
    assert main["arms"] == {"none": {"mixup_method": "none"}, "cls": {"mixup_method": "cls"}}
    argv = main["argv"]
    assert argv[argv.index("--learning_rate") + 1] == "0.0001" and "--paper_defaults" in argv
    assert argv[argv.index("--max_train_samples") + 1] == "64" and argv[argv.index("--max_eval_samples") + 1] == "400"
    (ablation,) = reproduce.comparisons("ablation", grid_args(runs))
    assert list(ablation["arms"]) == list(reproduce.ABLATION) and ablation["argv"].count("--max_eval_samples") == 1
    assert {a["mixup_method"] for a in ablation["arms"].values()} == {"input"}
    assert ablation["arms"]["pair-pad"] == {"mixup_method": "input", "mixup_padding": "pair", "mixup_pad_token": "pad"}
    ncurve = reproduce.comparisons("ncurve", grid_args(runs))
    assert [c["out"].name for c in ncurve] == ["n1024", "n256", "n64"]  # the long runs first
    (choices,) = reproduce.comparisons("choices", grid_args(runs))
    assert next(iter(choices["arms"])) == "manifold"  # the choices are paired against the default manifold run


def test_cola_methods_wait_for_the_grid_unless_a_rate_is_given(reproduce, tmp_path):
    runs = tmp_path / "runs"
    (grid,) = reproduce.comparisons("cola", grid_args(runs, seeds="0,1,2"))
    assert grid["out"] == runs / "cola" / "lr" and grid["seeds"] == [0] and "--max_train_samples" not in grid["argv"]
    first, last = reproduce.comparisons("cola", grid_args(runs, cola_lr=5e-5))  # methods first, the grid last
    assert first["out"].name == "lr5e-05" and list(first["arms"]) == list(reproduce.METHODS) and last == grid | {
        "seeds": [0]}
    fake_comparison(runs / "cola" / "lr", "cola", {"lr5e-05": [0.30], "lr0.0001": [0.42], "lr0.0002": [0.40]},
                    metric="eval_matthews_correlation")
    assert [c["out"].name for c in reproduce.comparisons("cola", grid_args(runs))] == ["lr", "lr0.0001"]
    # once the grid has finished, its choice wins over the fixed rate (here they disagree)
    assert [c["out"].name for c in reproduce.comparisons("cola", grid_args(runs, cola_lr=5e-5))] == ["lr0.0001", "lr"]


def test_report_collects_the_comparisons(reproduce, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    fake_comparison(runs / "lr" / "sst2", "sst2", {"lr5e-05": [0.50, 0.60], "lr0.0001": [0.60, 0.70],
                                                  "lr0.0002": [0.70, 0.70]})
    report = fake_comparison(runs / "main" / "sst2" / "lr0.0002", "sst2", {"none": [0.6, 0.7], "cls": [0.62, 0.76]})
    # the paired difference is compare's: per-seed differences +2, +6 points: mean 4, s.e. 2
    paired = report["summary"]["best"]["paired"]["cls"]["eval_accuracy"]
    assert paired["mean"] == pytest.approx(0.04) and paired["se"] == pytest.approx(0.02) and paired["n"] == 2
    text = reproduce.report(argparse.Namespace(runs_dir=str(runs), out=str(out)))
    # mean ± s.e. x100: lr 5e-5: 55.0 ± 5.0; the choice is the best mean, 2e-4
    assert "| lr/sst2 | 55.0 ± 5.0 | 65.0 ± 5.0 | 70.0 ± 0.0 | 0.0002 |" in text
    assert "| boolq | (no grid) | | | 0.0002, from sst2 |" in text
    assert "- [main/sst2/lr0.0002](main/sst2/lr0.0002/comparison.md): none, cls" in text
    assert "| cls − none | 2 |" in (out / "main" / "sst2" / "lr0.0002" / "comparison.md").read_text()
    assert (out / "main" / "sst2" / "lr0.0002" / "test_loss.png").stat().st_size > 0
    assert (out / "tables.md").read_text() == text


@pytest.mark.slow
def test_a_grid_of_custom_arms_runs_through_compare(reproduce, tmp_path):
    """lr grid, then the padding ablation at its choice, on a tiny random BERT: every arm's runs and rows
    carry the arm's name and settings; a second invocation redoes nothing."""
    def run(*args):
        command = [sys.executable, str(REPO / "benchmarks" / "reproduce.py"), *args, "--seeds", "0", "--smoke",
                   "--runs_dir", str(tmp_path)]
        proc = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        return proc.stdout

    run("lr", "--tasks", "sst2")
    run("ablation")
    lr = reproduce.chosen_lr(tmp_path, "sst2")
    out = tmp_path / "ablation" / f"lr{lr:g}"
    report = json.loads((out / "comparison.json").read_text())
    assert report["methods"] == list(reproduce.ABLATION) and report["baseline"] == "pair-sep"
    assert set(report["summary"]["best"]["paired"]) == set(reproduce.ABLATION) - {"pair-sep"}
    for arm, overrides in reproduce.ABLATION.items():
        settings = json.loads((out / f"{arm}-seed0" / "run_settings.json").read_text())
        assert {k: settings[k] for k in overrides} == overrides and settings["learning_rate"] == lr, arm
        assert not list((out / f"{arm}-seed0").glob("*.safetensors"))  # weights deleted, metrics kept
    assert "| padding-none − pair-sep | 1 |" in (out / "comparison.md").read_text()
    assert "5 of 5 runs already finished" in run("ablation")
