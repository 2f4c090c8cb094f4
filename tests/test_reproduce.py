"""The reproduction harness: run specs, learning-rate choice and the aggregated tables."""

import argparse
import importlib.util
import json

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", REPO / "benchmarks" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(reproduce, runs_dir, grid, task, method, seed, lr, acc, loss, ece):
    s = reproduce.spec(runs_dir, task, method, seed, lr, grid)
    out = runs_dir / grid / task / f"n{s['train_size']}" / f"lr{lr:g}" / method / f"seed{seed}"
    out.mkdir(parents=True)
    metric = reproduce.metric_of(task)
    (out / "all_results.json").write_text(json.dumps(
        {metric: acc, "eval_loss": loss, "eval_ece": ece, "eval_mce": 2 * ece, "best_epoch": 3, "eval_samples": 10}))
    (out / "trainer_state.json").write_text(json.dumps({"log_history": [
        {"step": 4, "eval_loss": loss + 0.1}, {"step": 8, "eval_loss": loss}]}))
    (out / "eval_predictions.jsonl").write_text("".join(
        json.dumps({"label": i % 2, "probs": [0.7, 0.3] if i % 3 else [0.2, 0.8]}) + "\n" for i in range(10)))
    (out / "run_spec.json").write_text(json.dumps({**s, "out": str(out)}))


def test_specs_learning_rate_choice_and_tables(reproduce, tmp_path):
    runs = tmp_path / "runs"
    for lr, acc in [(5e-5, 0.55), (1e-4, 0.70), (2e-4, 0.70)]:  # a tie goes to the smaller rate
        fake_run(reproduce, runs, "lr", "sst2", "none", 0, lr, acc, 0.6, 0.1)
    assert reproduce.chosen_lr(runs, "sst2") == 1e-4
    assert reproduce.chosen_lr(runs, "boolq") == 1e-4  # BoolQ borrows SST-2's choice

    args = argparse.Namespace(runs_dir=str(runs), seeds="0,1", tasks="sst2", methods="none,cls")
    specs = reproduce.build_specs("main", args)
    assert [(s["method"], s["seed"]) for s in specs] == [("none", 0), ("cls", 0), ("none", 1), ("cls", 1)]
    argv = specs[0]["argv"]
    assert argv[argv.index("--learning_rate") + 1] == "0.0001" and "--paper_defaults" in argv
    assert argv[argv.index("--max_train_samples") + 1] == "64"
    ablation = reproduce.build_specs("ablation", argparse.Namespace(runs_dir=str(runs), seeds="0", tasks="sst2"))
    assert {s["variant"] for s in ablation} == set(reproduce.ABLATION)
    assert all(s["argv"].count("--max_eval_samples") == 1 for s in ablation)

    for seed, acc in [(0, 0.60), (1, 0.70)]:
        fake_run(reproduce, runs, "main", "sst2", "cls", seed, 1e-4, acc, 0.5, 0.05)
    reproduce.report(argparse.Namespace(runs_dir=str(runs), out=str(tmp_path / "results")))
    tables = (tmp_path / "results" / "tables.md").read_text()
    # mean 65.0, standard error std([60, 70], ddof=1) / sqrt(2) = 7.07 / 1.41 = 5.0
    assert "| cls | 2 | 65.0 ± 5.0 | 50.0 ± 0.0 | 5.0 ± 0.0 | 10.0 ± 0.0 | 3, 3 |" in tables
    assert "| sst2 | 55.0 | 70.0 | 70.0 | 0.0001 |" in tables
    assert (tmp_path / "results" / "test_loss_sst2.png").stat().st_size > 0
    assert (tmp_path / "results" / "reliability_sst2_cls.png").stat().st_size > 0
    assert len((tmp_path / "results" / "runs.jsonl").read_text().splitlines()) == 5
