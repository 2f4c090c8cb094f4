"""``python -m mixup_trainer.run_boolq_mixup`` (also ``accelerate launch -m mixup_trainer.run_boolq_mixup``
and the ``run_boolq_mixup`` console script): the GLUE script with ``--task boolq`` as its default
(question + passage pairs, max length 256).

    run_boolq_mixup --model_name_or_path bert-base-uncased --mixup_method cls \\
        --paper_defaults --output_dir outputs/boolq-cls                       # super_glue/boolq from the Hub
    run_boolq_mixup --train_file train.jsonl --validation_file val.jsonl ...  # SuperGLUE jsonl
"""

from .cli import run_boolq_mixup as main

if __name__ == "__main__":
    main()
