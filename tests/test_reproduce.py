"""The reproduction harness: run specs, learning-rate choice and the aggregated tables."""

import argparse
import importlib.util
import json

import pytest

from testing_utils import REPO


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


def fake_section_run(reproduce, runs_dir, table, method, seed, acc, loss, last_loss, variant="", extra=(), n=256):
    s = reproduce.setting_spec(runs_dir, table, "sst2", n, 400, method, seed, 1e-4, variant=variant, extra=extra)
    out = reproduce.Path(s["out"])
    out.mkdir(parents=True)
    (out / "all_results.json").write_text(json.dumps({"eval_accuracy": acc, "eval_loss": loss, "eval_ece": loss / 10}))
    (out / "trainer_state.json").write_text(json.dumps({"log_history": [
        {"step": 4, "eval_loss": loss}, {"step": 6, "loss": 0.3}, {"step": 8, "eval_loss": last_loss}]}))
    (out / "run_spec.json").write_text(json.dumps({**s, "seconds": 60}))
    return s


def test_paired_differences_are_per_seed_differences_with_their_standard_error(reproduce, tmp_path):
    runs = tmp_path / "runs"
    # baseline and method on the same three seeds; method − none per seed: +2, +6, +1 points
    for seed, (base, mixed) in enumerate([(0.60, 0.62), (0.70, 0.76), (0.65, 0.66)]):
        fake_section_run(reproduce, runs, "ncurve", "none", seed, base, 0.5, 0.8)
        fake_section_run(reproduce, runs, "ncurve", "manifold", seed, mixed, 0.4, 0.45)
    fake_section_run(reproduce, runs, "ncurve", "cls", 7, 0.9, 0.3, 0.3)  # a seed without its baseline
    loaded = [reproduce.load_run(s) for s in reproduce.table_specs("ncurve", runs, [0, 1, 2, 7])
              if reproduce.finished(s)]
    mean, se, n = reproduce.paired_difference(loaded, "manifold", "none", "eval_accuracy")
    # diffs 2, 6, 1: mean 3.0, sd sqrt(((−1)² + 3² + (−2)²) / 2) = sqrt(7), se sqrt(7/3) = 1.5275
    assert n == 3 and mean == pytest.approx(3.0) and se == pytest.approx((7 / 3) ** 0.5)
    # the unpaired means would hide the pairing: mean(62, 76, 66) − mean(60, 70, 65) is also 3.0,
    # but its spread comes from the samples, not from the method
    last = reproduce.paired_difference(loaded, "manifold", "none", "last_eval_loss")
    assert last[0] == pytest.approx(-35.0) and last[1] == pytest.approx(0.0, abs=1e-9)
    assert reproduce.paired_difference(loaded, "cls", "none", "eval_accuracy") is None

    reproduce.section_report(["ncurve"], runs, [0, 1, 2, 7], tmp_path / "results")
    text = (tmp_path / "results" / "ncurve.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| manifold |"))
    assert "| manifold | 3 | 68.0 ± 4.2 |" in row and "+3.0 ± 1.5" in row and "-35.0 ± 0.0" in row
    assert (tmp_path / "results" / "ncurve_sst2.png").stat().st_size > 0


def test_section_grids_share_runs_and_wait_for_the_learning_rate(reproduce, tmp_path):
    runs = tmp_path / "runs"
    ncurve = reproduce.table_specs("ncurve", runs, [0])
    choices = reproduce.table_specs("choices", runs, [0])
    shared = {s["out"] for s in ncurve} & {s["out"] for s in choices}
    assert {reproduce.Path(o).parent.name for o in shared} == {"none", "manifold"}  # the N = 256 runs
    argv = next(s for s in choices if s["variant"] == "permutation")["argv"]
    assert argv[argv.index("--mixup_partners") + 1] == "permutation" and "--overwrite_output_dir" not in argv
    cola = reproduce.table_specs("cola", runs, [0, 1])
    assert [s["lr"] for s in cola] == list(reproduce.LR_GRID)  # methods wait for the grid
    for s, mcc in zip(cola, [0.30, 0.42, 0.42]):
        out = reproduce.Path(s["out"])
        out.mkdir(parents=True)
        (out / "all_results.json").write_text(json.dumps({"eval_matthews_correlation": mcc}))
    cola = reproduce.table_specs("cola", runs, [0, 1])
    assert len(cola) == 8 + 2 and {s["lr"] for s in cola[:8]} == {1e-4}  # tie: the smaller rate
    # seed 0 of the baseline is the grid's run, listed once
    assert [(s["method"], s["seed"]) for s in cola[:4]] == [("none", 0), ("cls", 0), ("input", 0), ("manifold", 0)]
    assert len({s["out"] for s in cola}) == len(cola)


def test_a_fixed_cola_rate_runs_the_methods_first_and_the_grid_last(reproduce, tmp_path):
    runs = tmp_path / "runs"
    cola = reproduce.table_specs("cola", runs, [0, 1], fixed_cola_lr=5e-5)
    methods, grid = cola[:8], cola[8:]
    assert {s["lr"] for s in methods} == {5e-5} and sorted(s["lr"] for s in grid) == [1e-4, 2e-4]
    assert all(s.get("last") for s in grid) and not any(s.get("last") for s in methods)
    # in the pool the grid comes after every seed of every table
    queue = reproduce.pool_queue(["cola", "ncurve"], runs, [0, 1], fixed_cola_lr=5e-5)
    assert [s["out"] for s in queue[-2:]] == [s["out"] for s in grid] and queue[-3]["seed"] == 1
    for s, mcc in zip(sorted(grid + methods[:1], key=lambda s: s["lr"]), [0.30, 0.42, 0.10]):
        out = reproduce.Path(s["out"])
        out.mkdir(parents=True)
        (out / "all_results.json").write_text(json.dumps({"eval_matthews_correlation": mcc}))
    # once the grid has finished, its choice wins over the fixed rate (here it disagrees)
    assert reproduce.cola_lr(runs, 5e-5) == 1e-4
    assert {s["lr"] for s in reproduce.table_specs("cola", runs, [0, 1], fixed_cola_lr=5e-5)[:8]} == {1e-4}


def test_a_run_held_by_another_process_is_not_started_again(reproduce, tmp_path):
    s = reproduce.setting_spec(tmp_path / "runs", "ncurve", "sst2", 64, 400, "none", 0, 1e-4)
    held = reproduce.run_lock(s)
    assert held is not None and reproduce.run_lock(s) is None  # a second process cannot take it
    assert reproduce.locked_elsewhere(s)
    held.close()
    assert not reproduce.locked_elsewhere(s)
