#!/usr/bin/env bash
# RESULTS.md section 7: the paper's low-resource claim at the paper's model size (all-mpnet-base-v2,
# 110M parameters, from PyPI), SST-2 at N = 32 and 64 (5 seeds) and N = 256 (3 seeds), methods none,
# cls, input, manifold, ECE before and after a temperature fitted on 200 other dev sentences, with
# the ensembles of the seeds. Every step is a plain run or a --compare comparison: a finished run is
# not redone, so a killed script resumes where it stopped (rerun it).
#
#   bash benchmarks/mpnet_lowres.sh [grid|n32|n64|n256|all]     (default: all)
#   THREADS=1 nice -n 19 bash benchmarks/mpnet_lowres.sh          # beside other work
#   WORKERS=2 THREADS=1 bash benchmarks/mpnet_lowres.sh n256      # two copies of each comparison share its runs
#
# The learning-rate rule: the baseline (none) on seed 100, which no table reports, at N = 64, 10
# epochs, lr in {2e-5, 5e-5, 1e-4}; the rate with the best best-epoch dev accuracy (a tie goes to the
# smaller) is used for every method and every N. The epochs are the paper's (10), best epoch reported.
STEP="${1:-all}"
source "$(dirname "$0")/comparison_env.sh" outputs/mpnet-lowres
MPNET=$("$PY" benchmarks/pypi_mpnet.py)
COMMON=(--task sst2 --data_dir "$DATA/sst2" --model_name_or_path "$MPNET" --paper_defaults
        --max_eval_samples 200 --per_device_eval_batch_size 32 --disable_tqdm true --report_to none)

if [[ $STEP == grid || $STEP == all ]]; then
  for LR in 2e-5 5e-5 1e-4; do
    [ -f "$OUT/grid/lr$LR/all_results.json" ] && continue
    "$PY" run_glue_mixup.py "${COMMON[@]}" --mixup_method none --seed 100 --max_train_samples 64 \
        --learning_rate "$LR" --output_dir "$OUT/grid/lr$LR"
  done
fi
# the rule above, from the grid's all_results.json files
LR=$("$PY" - "$OUT/grid" <<'PYEOF'
import json, sys
from pathlib import Path
scores = {float(p.parent.name[2:]): json.loads(p.read_text())["eval_accuracy"] for p in Path(sys.argv[1]).glob("lr*/all_results.json")}
if len(scores) < 3:
    sys.exit("the learning-rate grid is not finished: run `bash benchmarks/mpnet_lowres.sh grid` first")
best = max(scores.values())
print(f"{min(lr for lr, s in scores.items() if s == best):g}")
PYEOF
)
echo "[mpnet] learning rate from the grid: $LR"

comparison() {  # N SEEDS
  "$PY" run_glue_mixup.py "${COMMON[@]}" --compare cls,input,manifold --compare_seeds "$2" \
      --max_train_samples "$1" --learning_rate "$LR" --temperature_scaling --calibration_file "$CAL" \
      --output_dir "$OUT/sst2-$1"
}
compare_n() {  # N SEEDS, with WORKERS copies
  workers "$OUT/sst2-$1.log" comparison "$@"
  # the report needs each run's results and predictions, not its 440 MB model: free the disk
  rm -f "$OUT/sst2-$1"/*-seed*/model.safetensors
}
[[ $STEP == n32 || $STEP == all ]] && compare_n 32 0,1,2,3,4
[[ $STEP == n64 || $STEP == all ]] && compare_n 64 0,1,2,3,4
[[ $STEP == n256 || $STEP == all ]] && compare_n 256 0,1,2
exit 0
