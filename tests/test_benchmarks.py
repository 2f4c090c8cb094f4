"""Every benchmark that trains or times something runs in its ``--smoke`` mode (its own code paths at tiny
sizes) and prints figures that parse: a release of transformers or torch that breaks a benchmark fails here.
The figures of a smoke run mean nothing; only their form and a few shape-determined facts are checked."""

import math
import re
import subprocess
import sys

import pytest
from testing_utils import ENV, REPO


def smoke(script: str, *args: str, timeout: int = 300) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args, "--smoke"], cwd=REPO,
                          env={**ENV, "OMP_WAIT_POLICY": "PASSIVE"}, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def positive(text: str) -> float:
    value = float(text)
    assert math.isfinite(value) and value > 0, text
    return value


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_overhead_smoke(precision):
    """fp32, and --bf16: every variant, the plain Trainer too, under the accelerator's bf16 autocast."""
    out = smoke("overhead.py", *(["--bf16"] if precision == "bf16" else []))
    assert f"precision={'bf16_autocast' if precision == 'bf16' else 'fp32'} " in out.splitlines()[0], out
    rows = {(line.split()[0], fields(line)["setting"]): fields(line) for line in out.splitlines()
            if not line.startswith("#") and "step_ratio=" in line}
    variants = ("none", "cls", "input", "manifold", "manifold+reg", "manifold+sk", "manifold+reg+sk", "two_pass")
    assert set(rows) == {(v, s) for v in variants for s in ("sst2", "long")}, out
    for (variant, _), row in rows.items():
        for key in ("step_ratio", "memory_ratio", "cpu_ratio", "act_ratio", "median_ms", "plain_ms"):
            positive(row[key])
        assert row["steps"] == "2"
    for setting in ("sst2", "long"):
        # the levels come from MixUpTrainer's public logs: one per timed step, within 0..n+1 (4 blocks)
        levels = [int(x) for x in rows["manifold", setting]["levels"].split(",")]
        assert len(levels) == 2 and all(0 <= level <= 5 for level in levels)
        # the TMix-style reference runs the blocks below its level twice: it saves more activations
        assert float(rows["two_pass", setting]["act_ratio"]) > 1.05
        # RegMixup forwards the batch and its mixed copy: about twice the activations of plain MixUp
        assert float(rows["manifold+reg", setting]["act_ratio"]) > 1.5 * float(rows["manifold", setting]["act_ratio"])
    assert re.search(r"# plain setting=long median_ms=\S+ act_mb=\S+", out)


def test_calibration_speed_smoke():
    out = smoke("calibration_speed.py")
    for ratio in ("ece_ratio", "ece_from_logits_ratio"):
        positive(re.search(rf"^{ratio}=(\S+)$", out, re.M).group(1))
    timed = dict(re.findall(r"^(\w+) seconds=(\S+)$", out, re.M))
    assert {"mixup_trainer_ece", "torchmetrics", "mixup_trainer_smooth_ece", "evaluate_module_500_rows"} <= set(timed)
    assert all(math.isfinite(float(v)) and float(v) >= 0 for v in timed.values())


def test_kernel_warp_smoke():
    """Per α: the pairs of 4 batches of 16 (8 each), split by level group; the kernel moved λ (shift > 0)."""
    out = smoke("kernel_warp.py")
    rows = {(f["alpha"], f["levels"]): f for f in map(fields, out.splitlines()) if "mean_abs_shift" in f}
    assert {alpha for alpha, _ in rows} == {"1", "10"}, out
    for alpha in ("1", "10"):
        groups = [int(row["pairs"]) for (a, name), row in rows.items() if a == alpha and name != "all"]
        assert int(rows[alpha, "all"]["pairs"]) == sum(groups) == 32, out
        positive(rows[alpha, "all"]["mean_abs_shift"])
    for row in rows.values():
        for key in ("mean_abs_shift", "strength", "strength_after", "unmixed", "unmixed_after"):
            assert 0 <= float(row[key]) <= 1, row


@pytest.mark.slow  # ~25 s: two compilations
def test_compile_smoke():
    out = smoke("compile.py")
    rows = {line.split()[0]: fields(line) for line in out.splitlines() if line.startswith(("none ", "manifold "))}
    assert set(rows) == {"none", "manifold"}, out
    for row in rows.values():
        positive(row["graphs"]), positive(row["step_s"])
    # the point of the benchmark: every level and λ share one graph, no recompilation
    assert rows["manifold"]["recompiles"] == rows["none"]["recompiles"] == "0"
    ratio = re.search(r"ratio manifold/none: compilations \(graphs\) (\S+), step time (\S+), steps/s (\S+)", out)
    assert ratio and all(positive(x) for x in ratio.groups())


@pytest.mark.slow  # ~25 s: two runs of the run scripts' code path
def test_calibration_results_smoke():
    out = smoke("calibration_results.py", "run")
    rows = {cells[1].strip(): cells[2:] for cells in (line.split("|") for line in out.splitlines())
            if len(cells) > 4 and cells[2].strip() == "1"}
    assert set(rows) == {"none", "TS alone", "manifold", "manifold + TS"}, out
    positive(rows["manifold + TS"][1])  # the fitted temperature
    for cells in rows.values():
        accuracy, ece = float(cells[2]), float(cells[3])
        assert 0 <= accuracy <= 100 and 0 <= ece <= 100


def test_comparison_tables_print_the_reports_own_numbers():
    """benchmarks/comparison_tables.py on the committed demo report: every cell is comparison.json's, x100."""
    import json

    folder = REPO / "benchmarks" / "results" / "demo"
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "comparison_tables.py"), str(folder)],
                         capture_output=True, text=True, check=True).stdout
    summary = json.loads((folder / "comparison.json").read_text())["summary"]
    none = summary["best"]["mean"]["none"]
    row = next(line for line in out.splitlines() if line.startswith("| none | 3 | "))
    assert row.split(" | ")[2:5] == [f"{100 * none[k]['mean']:.1f} ± {100 * none[k]['se']:.1f}"
                                      for k in ("eval_accuracy", "eval_loss", "eval_ece")]
    paired = summary["best"]["paired"]["manifold"]["eval_ece"]
    assert "| manifold − none | 3 | " in out and f"{100 * paired['mean']:+.1f} ± {100 * paired['se']:.1f}" in out
    ensemble = summary["ensemble"]["manifold"]
    assert f"| manifold | 3 | {100 * ensemble['eval_accuracy']:.1f} | {100 * ensemble['eval_nll']:.1f} |" in out


def test_comparison_tables_pair_against_another_arm():
    """--against manifold: none − manifold is the negation of the report's own manifold − none, per column."""
    import json

    folder = REPO / "benchmarks" / "results" / "demo"
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "comparison_tables.py"), str(folder),
                          "--against", "manifold"], capture_output=True, text=True, check=True).stdout
    paired = json.loads((folder / "comparison.json").read_text())["summary"]["best"]["paired"]["manifold"]
    row = out.split("paired against manifold**")[1].split("| none − manifold | 3 | ")[1].splitlines()[0]
    assert row.split(" | ")[:2] == [f"{-100 * paired[k]['mean']:+.1f} ± {100 * paired[k]['se']:.1f}"
                                    for k in ("eval_accuracy", "eval_loss")]
    bad = subprocess.run([sys.executable, str(REPO / "benchmarks" / "comparison_tables.py"), str(folder),
                          "--against", "cls"], capture_output=True, text=True)
    assert bad.returncode == 2 and "the arms are none, manifold" in bad.stderr


FAKE_PYTHON = """#!/usr/bin/env bash
# stands in for python: prints a model folder for the scripts' lookups, records every run command
case "$1" in
  -c|benchmarks/pypi_smollm2.py|benchmarks/pypi_mpnet.py) echo /models/m ;;
  run_glue_mixup.py) echo "$*" >> "$RECORD" ;;
  -) exec "$REAL_PYTHON" "$@" ;;
  *) exit 3 ;;
esac
"""


@pytest.mark.parametrize("script, step, output_dir", [
    ("variants.sh", "decoder", "smollm2-sst2-256"), ("variants.sh", "n1024", "variants-sst2-1024"),
    ("mpnet_lowres.sh", "n256", "sst2-256")])
def test_comparison_scripts_start_workers_copies_of_one_command(tmp_path, script, step, output_dir):
    """The resumable benchmark scripts with WORKERS=2: two identical comparison commands on one folder
    (they share its runs), with the flags of the RESULTS.md section they make."""
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    out = tmp_path / "out"
    if script == "mpnet_lowres.sh":  # the learning-rate grid, finished
        for lr, accuracy in (("2e-5", 0.5), ("5e-5", 0.9), ("1e-4", 0.91)):
            (out / "grid" / f"lr{lr}").mkdir(parents=True)
            (out / "grid" / f"lr{lr}" / "all_results.json").write_text(f'{{"eval_accuracy": {accuracy}}}')
    record = tmp_path / "commands.txt"
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / script), step], cwd=REPO, capture_output=True, text=True,
                          env={**ENV, "PY": str(fake), "WORKERS": "2", "RECORD": str(record), "OUT": str(out),
                               "REAL_PYTHON": sys.executable},
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    first, second = record.read_text().splitlines()
    assert first == second and f"--output_dir {out / output_dir}" in first and "--compare_seeds" in first
    assert [p.name for p in out.glob("*.worker2")] == [f"{output_dir}.log.worker2"]  # the second copy's log
    if script == "mpnet_lowres.sh":
        assert "--learning_rate 0.0001 " in first and "--max_train_samples 256 " in first
    else:
        assert "manifold+reg,manifold+sk,manifold+reg+sk,ls0.1" in first
