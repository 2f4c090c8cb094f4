#!/usr/bin/env python
"""Fine-tune a BERT encoder on a GLUE task (or IMDb, AG News, BoolQ) with MixUp, and report
accuracy / MCC, test loss and calibration (ECE, MCE, Brier) of the best epoch.

    python run_glue_mixup.py --task cola --model_name_or_path bert-base-uncased \\
        --mixup_method manifold --paper_defaults --output_dir outputs/cola-manifold
    python run_glue_mixup.py --task rte --data_dir ../shared/data/rte ...   # local GLUE release files
    python run_glue_mixup.py config.json                                      # all flags in a JSON file

Flags are those of transformers' run_glue.py plus the MixUp flags (``--help`` lists them); see
``mixup_trainer/cli.py`` for the defaults this script adds. Runs unchanged under
``torchrun`` and ``accelerate launch``. A thin wrapper for source checkouts: an installed package
has the same program as the ``run_glue_mixup`` console script and ``python -m mixup_trainer.run_glue_mixup``.
"""

from mixup_trainer.run_glue_mixup import main

if __name__ == "__main__":
    main()
