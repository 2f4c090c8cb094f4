#!/usr/bin/env bash
# The whole reproduction of RESULTS.md sections 2 and 4 on this machine (one run at a time); each step
# resumes where it stopped. Run from anywhere: python benchmarks/reproduce.py --help explains the steps.
set -x
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
P=.venv/bin/python
$P benchmarks/reproduce.py lr --tasks sst2,cola,rte --seeds 0
$P benchmarks/reproduce.py main --tasks sst2,cola,rte,boolq --seeds 0,1,2
$P benchmarks/reproduce.py ablation --seeds 0,1,2
$P benchmarks/reproduce.py main --tasks sst2,cola --seeds 0,1,2,3,4   # 5 seeds where cheap (0-2 not redone)
$P benchmarks/reproduce.py report
# Section 4: full CoLA (its own lr grid first), SST-2 N-curve and the choices ablation, one queue
$P benchmarks/reproduce.py cola,ncurve,choices --seeds 0,1,2
