"""The task registry: for each task, where its data lives on the Hub, its text columns and labels,
the metric that picks the best epoch, and where its paper hyperparameters are; and its Hub loader.

One frozen :class:`Task` per task; the paper's Table 6 values are config files in ``paper_configs/``.
``data.py`` reads the data itself, from local files or, through :func:`load_hub_split`, the Hub.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
#: The paper's Table 6 per task, one config file of flag values each (``--paper_defaults``).
PAPER_CONFIGS = Path(__file__).parent / "paper_configs"


@dataclass(frozen=True)
class Task:
    """What the scripts need to know about one task.

    ``max_seq_length`` is the task's default input length (``--max_seq_length``). The paper's
    Table 6 values for the task are in :attr:`paper_config` (``--paper_defaults``).
    """

    name: str
    hub_path: str
    hub_config: str | None
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...] | None  # None: regression (one output, MSE)
    metric: str = "accuracy"
    hub_splits: tuple[tuple[str, str | None], ...] = (("train", "train"), ("validation", "validation"), ("test", "test"))
    # Local release layout: file names per split inside --data_dir (first one found wins).
    data_files: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("train", ("train.tsv",)),
        ("validation", ("dev.tsv",)),
        ("test", ("test.tsv",)),
    )
    # Other names a column has in release files: (canonical name, (accepted names...)).
    column_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    headerless_columns: tuple[str, ...] | None = None  # CoLA's train/dev files have no header
    max_seq_length: int = 128

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)

    def hub_split(self, split: str) -> str | None:
        return dict(self.hub_splits).get(split)

    def file_candidates(self, split: str) -> tuple[str, ...]:
        return dict(self.data_files).get(split, ())

    def accepted_names(self, column: str) -> tuple[str, ...]:
        """Names under which ``column`` may appear in a file, the canonical one first."""
        extra = dict(self.column_aliases).get(column, ())
        if column == "label":
            extra = extra + ("labels",)
        if column == "idx":
            extra = extra + ("index", "id")
        return (column,) + tuple(name for name in extra if name != column)

    @property
    def paper_config(self) -> Path:
        """The paper's Table 6 values for this task as a config file of flag values (``--paper_defaults``)."""
        return PAPER_CONFIGS / f"{self.name}.yaml"


def _glue(name, config, text_columns, label_names, **kwargs) -> Task:
    return Task(name=name, hub_path="nyu-mll/glue", hub_config=config, text_columns=text_columns,
                label_names=label_names, **kwargs)


_ENTAILMENT = ("entailment", "not_entailment")

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        _glue("cola", "cola", ("sentence",), ("unacceptable", "acceptable"), metric="matthews_correlation",
              headerless_columns=("source", "label", "annotation", "sentence")),
        _glue("sst2", "sst2", ("sentence",), ("negative", "positive")),
        _glue("mrpc", "mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
              column_aliases=(("sentence1", ("#1 String",)), ("sentence2", ("#2 String",)),
                              ("label", ("Quality",)))),
        _glue("qqp", "qqp", ("question1", "question2"), ("not_duplicate", "duplicate"),
              column_aliases=(("label", ("is_duplicate",)),)),
        _glue("stsb", "stsb", ("sentence1", "sentence2"), None, metric="pearson",
              column_aliases=(("label", ("score",)),)),
        _glue("mnli", "mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
              hub_splits=(("train", "train"), ("validation", "validation_matched"), ("test", "test_matched")),
              data_files=(("train", ("train.tsv",)), ("validation", ("dev_matched.tsv",)),
                          ("test", ("test_matched.tsv",))),
              column_aliases=(("premise", ("sentence1",)), ("hypothesis", ("sentence2",)),
                              ("label", ("gold_label",)))),
        _glue("qnli", "qnli", ("question", "sentence"), _ENTAILMENT),
        _glue("rte", "rte", ("sentence1", "sentence2"), _ENTAILMENT),
        _glue("wnli", "wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment")),
        # IMDb and AG News have no validation split: the paper (like most work) reports on test.
        Task("imdb", "stanfordnlp/imdb", None, ("text",), ("neg", "pos"),
             hub_splits=(("train", "train"), ("validation", "test"), ("test", None)),
             data_files=tuple((s, tuple(f"{s}{e}" for e in (".csv", ".jsonl", ".json", ".tsv")))
                              for s in SPLITS)),
        Task("ag_news", "fancyzhx/ag_news", None, ("text",), ("World", "Sports", "Business", "Sci/Tech"),
             hub_splits=(("train", "train"), ("validation", "test"), ("test", None)),
             data_files=tuple((s, tuple(f"{s}{e}" for e in (".csv", ".jsonl", ".json", ".tsv")))
                              for s in SPLITS)),
        # SuperGLUE release: train.jsonl / val.jsonl / test.jsonl with label true/false.
        # google/boolq on the Hub calls the label `answer` (a bool).
        Task("boolq", "aps/super_glue", "boolq", ("question", "passage"), ("False", "True"),
             data_files=(("train", ("train.jsonl",)), ("validation", ("val.jsonl", "dev.jsonl")),
                         ("test", ("test.jsonl",))),
             column_aliases=(("label", ("answer",)),),
             max_seq_length=256),
    )
}


def get_task(name: str | None) -> Task:
    """The registered task called ``name`` (case-insensitive; ``sst-2``/``sts-b`` accepted)."""
    key = (name or "").lower().replace("-", "")
    key = "ag_news" if key in ("agnews", "ag_news") else key
    if key not in TASKS:
        raise ValueError(f"Unknown task {name!r}: choose one of {', '.join(TASKS)} (--task).")
    return TASKS[key]


class DataFormatError(ValueError):
    """A local data file that cannot be read as the task's data; the message names the file."""


def find_column(columns, names) -> str | None:
    """The first of ``names`` (a task's accepted names for one column) present in ``columns``."""
    for name in names:
        if name in columns:
            return name
    return None


# ------------------------------------------------------------------------------------------ Hub
def hub_is_offline() -> bool:
    """True when Hugging Face Hub access is switched off (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("HF_DATASETS_OFFLINE", ""))
    return bool(constants.HF_HUB_OFFLINE) or any(f.upper() in ("1", "ON", "YES", "TRUE") for f in flags)


def _normalise_hub_split(dataset, task: Task):
    """Rename Hub columns to the uniform schema (google/boolq's bool ``answer`` -> ``label``)."""
    import datasets

    for column in task.text_columns + ("label",):
        source = find_column(dataset.column_names, task.accepted_names(column))
        if source is None:
            raise DataFormatError(
                f"Hub dataset for task {task.name} has no column {column!r} (columns: {dataset.column_names})"
            )
        if source != column:
            dataset = dataset.rename_column(source, column)
    if "idx" not in dataset.column_names:
        dataset = dataset.add_column("idx", list(range(len(dataset))))
    if dataset.features["label"].dtype == "bool":
        dataset = dataset.cast_column("label", datasets.Value("int64"))
    keep = set(task.text_columns) | {"label", "idx"}
    return dataset.remove_columns([c for c in dataset.column_names if c not in keep])


def load_hub_split(task: Task, split: str, dataset_name: str | None = None, dataset_config_name: str | None = None,
                   cache_dir: str | None = None):
    """One split from the Hub (``datasets.load_dataset``) in the uniform schema."""
    import datasets

    path = dataset_name or task.hub_path
    config = dataset_config_name if dataset_name else task.hub_config
    hub_split = task.hub_split(split)
    if hub_split is None:
        raise ValueError(f"Task {task.name} has no {split} split on the Hub ({path}); pass a --{split}_file")
    if hub_is_offline():
        from huggingface_hub.errors import OfflineModeIsEnabled

        raise OfflineModeIsEnabled(
            f"Task {task.name}: the {split} data would come from the Hugging Face Hub ({path}"
            f"{'/' + config if config else ''}), but Hub access is off (HF_HUB_OFFLINE). Pass local "
            f"data instead: --data_dir <folder with the release files> or --train_file/--validation_file."
        )
    dataset = datasets.load_dataset(path, config, split=hub_split, cache_dir=cache_dir)
    return _normalise_hub_split(dataset, task)
