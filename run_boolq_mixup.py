#!/usr/bin/env python
"""Fine-tune a BERT encoder on BoolQ (question + passage pairs, max length 256) with MixUp.

The same script as run_glue_mixup.py with ``--task boolq`` as the default:

    python run_boolq_mixup.py --model_name_or_path bert-base-uncased --mixup_method cls \\
        --paper_defaults --output_dir outputs/boolq-cls                       # super_glue/boolq from the Hub
    python run_boolq_mixup.py --dataset_name google/boolq ...                 # the google/boolq schema
    python run_boolq_mixup.py --train_file train.jsonl --validation_file val.jsonl ...   # SuperGLUE jsonl

A thin wrapper for source checkouts: an installed package has the same program as the
``run_boolq_mixup`` console script and ``python -m mixup_trainer.run_boolq_mixup``.
"""

from mixup_trainer.run_boolq_mixup import main

if __name__ == "__main__":
    main()
