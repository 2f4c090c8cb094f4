"""``python -m mixup_trainer.run_glue_mixup`` (also ``accelerate launch -m mixup_trainer.run_glue_mixup``
and the ``run_glue_mixup`` console script): fine-tune on a GLUE task, IMDb, AG News or BoolQ with
MixUp and report accuracy / MCC, test loss and calibration of the best epoch.

    run_glue_mixup --task cola --model_name_or_path bert-base-uncased \\
        --mixup_method manifold --paper_defaults --output_dir outputs/cola-manifold
    run_glue_mixup --task rte --data_dir data/rte ...   # local GLUE release files
    run_glue_mixup config.json                            # all flags in a JSON file

``--help`` lists the flags (MixUp and data first); see ``mixup_trainer/cli.py`` for the
defaults the scripts add.
"""

from .cli import run_glue_mixup as main

if __name__ == "__main__":
    main()
