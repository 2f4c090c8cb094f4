#!/usr/bin/env python
"""RESULTS.md's compact tables of a finished comparison, x100, from its ``comparison.json``.

    python benchmarks/comparison_tables.py outputs/variants-sst2-256
    python benchmarks/comparison_tables.py outputs/variants-sst2-256 --against manifold   # paired vs another arm

One table per place the runs were scored (in-domain at the best epoch and at the last epoch, each
shifted set) with the columns a calibration comparison reads together: the task metric, test loss
(NLL), ECE before and after the temperature, AURC, AUGRC and the signed gap (mean confidence −
accuracy), where the runs report them. Each arm's mean ± s.e. over seeds, then its paired
difference with the baseline; then the ensembles of the seeds (one number each). Every number is
``comparison.json``'s own (``summary``), only scaled and rounded. ``--against ARM`` adds, per place,
the paired differences of the other arms against ARM instead of the baseline (same seeds, computed
from the runs' own best-epoch numbers in ``comparison.json`` by ``compare.paired_difference``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (title, key after the prefix, section of the summary that holds it: "" = the place's own, "ts" = after T)
COLUMNS = (("acc", "accuracy", ""), ("MCC", "matthews_correlation", ""), ("loss (NLL)", "loss", ""),
           ("ECE", "ece", ""), ("ECE after T", "ece", "ts"), ("AURC", "aurc", ""), ("AUGRC", "augrc", ""),
           ("gap", "overconfidence", ""))


def cell(stat: dict | None, signed: bool) -> str:
    if not stat:
        return "–"
    mean, se = 100 * stat["mean"], 100 * stat["se"]
    return f"{mean:+.1f} ± {se:.1f}" if signed else f"{mean:.1f} ± {se:.1f}"


def table(report: dict, place: str, prefix: str, title: str) -> list[str]:
    """One place's table: ``place`` is the summary section (best, last, shift_yelp ...), ``prefix`` the keys'."""
    summary, methods = report["summary"], report["methods"]
    ts_place = "after_ts" if place == "best" else f"{place}_after_ts"
    columns = []
    for name, key, where in COLUMNS:
        section = summary.get(ts_place if where == "ts" else place, {})
        full = f"{prefix}_ts_{key}" if where == "ts" else f"{prefix}_{key}"
        if full in section.get("mean", {}).get(methods[0], {}):
            columns.append((name, section, full))
    lines = [f"**{title}**", "", "| arm | seeds | " + " | ".join(n for n, _, _ in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for method in methods:
        stats = [section["mean"][method].get(full) for _, section, full in columns]
        lines.append(f"| {method} | {stats[0]['n']} | " + " | ".join(cell(s, False) for s in stats) + " |")
    for method in methods[1:]:
        stats = [section["paired"].get(method, {}).get(full) for _, section, full in columns]
        n = next((s["n"] for s in stats if s), 0)
        lines.append(f"| {method} − {methods[0]} | {n} | " + " | ".join(cell(s, True) for s in stats) + " |")
    return lines + [""]


def against_table(report: dict, place: str, prefix: str, title: str, reference: str) -> list[str]:
    """Paired differences (arm − ``reference``) at the best epoch, from the runs' own numbers."""
    from mixup_trainer.compare import paired_difference

    keys = [(n, f"{prefix}_ts_{k}" if where == "ts" else f"{prefix}_{k}") for n, k, where in COLUMNS]
    runs = report["runs"]
    keys = [(n, k) for n, k in keys if all(isinstance(r["best"].get(k), (int, float)) for r in runs)]
    lines = [f"**{title}: paired against {reference}**", "", "| arm | seeds | " + " | ".join(n for n, _ in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for method in report["methods"]:
        if method == reference:
            continue
        stats = [paired_difference({(r["method"], r["seed"]): r["best"][k] for r in runs}, method, reference)
                 for _, k in keys]
        lines.append(f"| {method} − {reference} | {stats[0]['n']} | " + " | ".join(cell(s, True) for s in stats) + " |")
    return lines + [""]


def ensemble_table(report: dict, prefix: str, title: str) -> list[str]:
    ensembles = report["summary"].get("ensemble")
    if not ensembles:
        return []
    keys = [(n, f"{prefix}_{k}") for n, k in (("acc", "accuracy"), ("MCC", "matthews_correlation"),
                                               ("loss (NLL)", "nll"), ("ECE", "ece"), ("ECE after T", "ts_ece"),
                                               ("AURC", "aurc"), ("AUGRC", "augrc"), ("gap", "overconfidence"))]
    first = next(iter(ensembles.values()))
    keys = [(n, k) for n, k in keys if k in first]
    lines = [f"**{title}**", "", "| arm | seeds | " + " | ".join(n for n, _ in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for method, e in ensembles.items():
        lines.append(f"| {method} | {e['members']} | " + " | ".join(f"{100 * e[k]:.1f}" for _, k in keys) + " |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a comparison's --output_dir (holding comparison.json)")
    parser.add_argument("--against", metavar="ARM", help="also pair every arm against this one (best epoch)")
    args = parser.parse_args()
    folder = args.folder
    report = json.loads((folder / "comparison.json").read_text())
    if args.against and args.against not in report["methods"]:
        parser.error(f"--against {args.against}: the arms are {', '.join(report['methods'])}")
    r0 = report["runs"][0]["best"]
    lines = table(report, "best", "eval", f"In-domain, best epoch ({r0.get('eval_samples')} examples)")
    if "last" in report["summary"]:
        lines += table(report, "last", "eval", "In-domain, last epoch")
    shifted = [p.removeprefix("shift_") for p in report["summary"] if p.startswith("shift_") and not p.endswith("_after_ts")]
    for name in shifted:
        lines += table(report, f"shift_{name}", name, f"Under shift: {name} ({r0.get(f'{name}_samples')} examples)")
    if args.against:
        lines += against_table(report, "best", "eval", "In-domain, best epoch", args.against)
        for name in shifted:
            lines += against_table(report, f"shift_{name}", name, f"Under shift: {name}", args.against)
    lines += ensemble_table(report, "eval", "Ensembles of the seeds, in-domain")
    for name in shifted:
        lines += ensemble_table(report, name, f"Ensembles of the seeds, under shift: {name}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
