#!/usr/bin/env python
"""RESULTS.md's compact tables of a finished comparison, x100, from its ``comparison.json``.

    python benchmarks/comparison_tables.py outputs/variants-sst2-256

One table per place the runs were scored (in-domain at the best epoch and at the last epoch, each
shifted set) with the columns a calibration comparison reads together: the task metric, test loss
(NLL), ECE before and after the temperature, AURC, AUGRC and the signed gap (mean confidence −
accuracy), where the runs report them. Each arm's mean ± s.e. over seeds, then its paired
difference with the baseline; then the ensembles of the seeds (one number each). Every number is
``comparison.json``'s own (``summary``), only scaled and rounded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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
    folder = parser.parse_args().folder
    report = json.loads((folder / "comparison.json").read_text())
    r0 = report["runs"][0]["best"]
    lines = table(report, "best", "eval", f"In-domain, best epoch ({r0.get('eval_samples')} examples)")
    if "last" in report["summary"]:
        lines += table(report, "last", "eval", "In-domain, last epoch")
    shifted = [p.removeprefix("shift_") for p in report["summary"] if p.startswith("shift_") and not p.endswith("_after_ts")]
    for name in shifted:
        lines += table(report, f"shift_{name}", name, f"Under shift: {name} ({r0.get(f'{name}_samples')} examples)")
    lines += ensemble_table(report, "eval", "Ensembles of the seeds, in-domain")
    for name in shifted:
        lines += ensemble_table(report, name, f"Ensembles of the seeds, under shift: {name}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
