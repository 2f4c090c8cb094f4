# Sourced by the resumable comparison scripts (mpnet_lowres.sh, variants.sh): strict mode, the repo
# root, offline Hugging Face, THREADS per process, PY, DATA, OUT (the script's default given as $1),
# CAL (SST-2 dev sentences 201-400, which no table scores: temperature scaling's calibration file),
# and `workers`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."  # the repo root from this file, whoever sources it
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS="${THREADS:-2}"
PY="${PY:-.venv/bin/python}"
DATA="${MIXUP_DATA_DIR:-../shared/data}"
OUT="${OUT:-$1}"
mkdir -p "$OUT"
CAL="$OUT/sst2-dev-201-400.tsv"
[ -f "$CAL" ] || (head -1 "$DATA/sst2/dev.tsv"; sed -n 202,401p "$DATA/sst2/dev.tsv") > "$CAL"

workers() {  # LOG COMMAND...: the command WORKERS times at once on one --output_dir, the copies sharing
  local log="$1" pids=() w  # its runs (docs/compare.md); the first copy prints here, copy w to LOG.worker<w>
  shift
  for ((w = 2; w <= ${WORKERS:-1}; w++)); do
    "$@" > "$log.worker$w" 2>&1 &
    pids+=($!)
  done
  "$@"
  for w in "${pids[@]}"; do wait "$w"; done
}
