"""benchmarks/gpu_check.py --dry-run: every step of the GPU check at its smoke size on the CPU (about 50 s here).

Its figures mean nothing; the check is that every step runs, its figures are parsed, and the summary is written."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from testing_utils import ENV, REPO

def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.slow  # ~50 s: 8 subprocesses, the compile smoke (itself marked slow) among them
def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "gpu-check"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry-run", "--out", str(out)],
                          cwd=REPO, env={**ENV, "OMP_WAIT_POLICY": "PASSIVE"}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    summary = json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))
    assert summary["dry_run"] is True and summary["failed"] == []
    steps = summary["steps"]
    overheads = [f"overhead_{m}_{p}" for m in ("mpnet", "smollm2") for p in ("fp32", "bf16")]
    assert list(steps) == ["models", *overheads, "compile", "ddp", "compare"]
    for name, step in steps.items():
        assert step["status"] == ("skipped" if name == "ddp" else "ok"), (name, step)
    assert steps["ddp"]["reason"] == "skipped: 0 GPU(s)"
    for name in overheads:
        figures = steps[name]["figures"]
        assert figures["precision"] == ("bf16_autocast" if name.endswith("bf16") else "fp32")
        assert {"none/sst2", "cls/sst2", "input/sst2", "manifold/sst2"} <= set(figures["rows"])
        for row in figures["rows"].values():
            assert all(positive(row[k]) for k in ("step_ratio", "memory_ratio", "cpu_ratio")), row
    compiled = steps["compile"]["figures"]
    assert compiled["manifold"]["recompiles"] == compiled["none"]["recompiles"] == 0
    assert positive(compiled["graphs_ratio"]) and positive(compiled["step_ratio"])
    compare = steps["compare"]["figures"]
    for method in ("none", "manifold"):
        assert 0 <= compare[method]["accuracy"] <= 1 and positive(compare[method]["loss"])
    markdown = (out / "gpu_check.md").read_text(encoding="utf-8")
    assert markdown.startswith("# GPU check (dry run") and "| ddp | skipped |" in markdown
    assert (out / "logs" / "compare.log").is_file()


def test_refused_without_cuda_in_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", "/nonexistent/x"],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "--dry-run" in proc.stderr
