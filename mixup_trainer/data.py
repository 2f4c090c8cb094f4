"""Reading a task's data: local release files (GLUE TSV, CSV, JSON, JSON Lines) or the Hub, in one
uniform schema; the seeded training sample; and the splits one run needs.

The uniform schema (what ``tasks.Task`` describes):

    <the task's text columns> (str), ``label`` (int class id, float for STS-B, -1 when unlabelled),
    ``idx`` (int: the file's index/id column, else the row number).

Local files are read as released. GLUE TSVs are not valid CSV (an unmatched ``"`` is common, e.g.
RTE train row 2164), so they are split on tabs with no quote handling at all (``csv.QUOTE_NONE``);
a quote-aware reader silently merges rows. Release column names (``#1 String``, ``gold_label``,
``is_duplicate`` ...) and the Hub names (``sentence1``, ``label`` ...) are both accepted.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from .tasks import DataFormatError, Task, find_column, load_hub_split

logger = logging.getLogger(__name__)

LOCAL_EXTENSIONS = (".tsv", ".csv", ".json", ".jsonl")


def _read_tsv(path: Path, task: Task) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(column names, [(line number, fields)]) of a GLUE release TSV, header or not.

    The header is recognised by the task's text column names; CoLA's headerless layout by its
    field count. A row with surplus *empty* fields just before its last field (RTE train row 2164)
    is repaired by taking the last field as the last column, which in every GLUE TSV is the label;
    any other row of the wrong width is an error rather than a silently shifted example.
    """
    lines = io.StringIO(_read_text(path), newline="")
    rows = [(n, fields) for n, fields in enumerate(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), 1)
            if fields]
    if not rows:
        raise DataFormatError(f"{path}: the file is empty")
    first = rows[0][1]
    if any(find_column(first, task.accepted_names(c)) is not None for c in task.text_columns):
        header, rows = first, rows[1:]
    elif task.headerless_columns and len(first) == len(task.headerless_columns):
        header = list(task.headerless_columns)
    else:
        expected = " / ".join(task.accepted_names(task.text_columns[0]))
        layout = f", or {len(task.headerless_columns)} headerless columns" if task.headerless_columns else ""
        raise DataFormatError(
            f"{path}: not a {task.name} TSV: the first line has no {expected!r} column{layout} "
            f"(first line: {first[:6]})"
        )
    width = len(header)
    fixed = []
    for n, fields in rows:
        while len(fields) > width and fields[-1] == "":
            fields = fields[:-1]  # trailing tab
        if len(fields) > width and not any(fields[width - 1:-1]):
            fields = fields[: width - 1] + fields[-1:]
        if len(fields) != width:
            raise DataFormatError(
                f"{path}, line {n}: {len(fields)} tab-separated fields where the header has {width} "
                f"({header}); fix the row or drop it"
            )
        fixed.append((n, fields))
    return header, fixed


def _read_text(path: Path) -> str:
    """The file decoded as UTF-8 (a byte-order mark is dropped); an undecodable byte is an error
    naming the file, line and byte rather than a bare UnicodeDecodeError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataFormatError(
            f"{path}, line {line}: byte 0x{data[err.start]:02x} is not UTF-8 ({err.reason}); re-save the file as "
            "UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def _read_records(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """CSV (quoted as CSV files are), JSON Lines, or a JSON array of objects.

    JSON Lines as the format defines it (jsonlines.org): one JSON value per line, lines ended by
    ``\\n``. So a ``\\r\\n`` line end, a last line with or without its newline, and whitespace around a
    value are all accepted. Lines are split at ``\\n`` only: ``str.splitlines`` would also split at
    U+2028, U+0085 and other characters that JSON allows raw inside strings, cutting such a record in
    two. Beyond the format, a UTF-8 byte-order mark at the start is dropped (some editors write one)
    and blank lines anywhere are skipped (they hold no value; line numbers in errors still count them).
    """
    suffix = path.suffix.lower()
    text = _read_text(path)
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        records = [(n, row) for n, row in enumerate(reader, 2)]
        return list(reader.fieldnames or []), records
    if text.lstrip().startswith("["):
        try:
            records = list(enumerate(json.loads(text), 1))
        except json.JSONDecodeError as err:
            raise DataFormatError(
                f"{path}, line {err.lineno} column {err.colno}: not a valid JSON array ({err.msg})"
            ) from None
    else:
        records = []
        for n, line in enumerate(text.split("\n"), 1):
            if line.strip():
                try:
                    records.append((n, json.loads(line)))
                except json.JSONDecodeError as err:
                    raise DataFormatError(f"{path}, line {n}: not JSON ({err.msg})") from None
    columns = []
    for _, record in records:
        if not isinstance(record, dict):
            raise DataFormatError(f"{path}: expected JSON objects (one example each), got {type(record).__name__}")
        columns.extend(k for k in record if k not in columns)
    return columns, records


def label_to_id(value, task: Task, where: str) -> int | float:
    """Class id (or float score) of a label as files write it: a name, an index, or a bool."""
    if task.is_regression:
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise DataFormatError(f"{where}: label {value!r} is not a number (task {task.name} is regression)") from None
        if isinstance(value, bool) or not np.isfinite(score):
            raise DataFormatError(f"{where}: label {value!r} is not a finite number (task {task.name} is regression)")
        return score
    names = task.label_names
    if isinstance(value, bool) and len(names) == 2:
        return int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        value = int(value)
        if 0 <= value < len(names):
            return value
    if isinstance(value, str):
        text = value.strip()
        lowered = [name.lower() for name in names]
        if text in names:
            return names.index(text)
        if text.lower() in lowered:
            return lowered.index(text.lower())
        if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
            return int(text)
    raise DataFormatError(
        f"{where}: label {value!r} is not a label of task {task.name}; valid labels: "
        f"{', '.join(names)} (or their ids 0..{len(names) - 1})"
    )


def read_local_file(path: str | os.PathLike, task: Task, split: str = "train"):
    """A local file as a ``datasets.Dataset`` in the uniform schema (see the module docstring).

    Text columns must be present under one of their accepted names; so must the label, except for
    the test split (unlabelled test files get label -1, as on the Hub).
    """
    import datasets

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{split} file {path} does not exist")
    if path.suffix.lower() not in LOCAL_EXTENSIONS:
        raise DataFormatError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(LOCAL_EXTENSIONS)}")
    if path.suffix.lower() == ".tsv":
        header, rows = _read_tsv(path, task)
        records = [(n, dict(zip(header, fields))) for n, fields in rows]
    else:
        header, records = _read_records(path)

    if not records:
        raise DataFormatError(f"{path}: no examples in the {split} file (it has "
                              f"{'only a header' if header else 'no rows'})")
    wanted = list(task.text_columns) + ["label", "idx"]
    found = {column: find_column(header, task.accepted_names(column)) for column in wanted}
    missing = [c for c in task.text_columns if found[c] is None]
    if found["label"] is None and split != "test":
        missing.append("label")
    if missing:
        accepted = "; ".join(f"{c}: {' / '.join(task.accepted_names(c))}" for c in missing)
        raise DataFormatError(
            f"{path}: missing column(s) for task {task.name} (accepted names: {accepted}); "
            f"columns found: {header}"
        )

    data: dict[str, list] = {column: [] for column in wanted}
    for row_number, (n, record) in enumerate(records):
        where = f"{path}, line {n}"
        for column in task.text_columns:
            data[column].append(_text_cell(record.get(found[column]), found[column], where))
        raw_label = record.get(found["label"]) if found["label"] else None
        if raw_label is None or raw_label == "":
            if split != "test":
                raise DataFormatError(f"{where}: no value for the label column {found['label']!r}")
            data["label"].append(-1)
        else:
            data["label"].append(label_to_id(raw_label, task, where))
        raw_idx = record.get(found["idx"]) if found["idx"] else None
        data["idx"].append(_as_int(raw_idx, row_number))
    features = _features(task)
    return datasets.Dataset.from_dict(data, features=features)


def _text_cell(value, column: str, where: str) -> str:
    """A text cell as it must be: a non-empty string. JSON numbers, booleans, NaN, lists and objects
    are refused rather than turned into text such as "nan" or "['a']"."""
    if value is None:
        raise DataFormatError(f"{where}: no value for column {column!r}")
    if not isinstance(value, str):
        raise DataFormatError(
            f"{where}: column {column!r} holds {type(value).__name__} {value!r}, not text; write it as a string"
        )
    if not value.strip():
        raise DataFormatError(f"{where}: column {column!r} is empty; fill it in or drop the row")
    return value


def _as_int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _features(task: Task):
    import datasets

    features = {column: datasets.Value("string") for column in task.text_columns}
    features["label"] = datasets.Value("float32" if task.is_regression else "int64")
    features["idx"] = datasets.Value("int64")
    return datasets.Features(features)


def find_data_dir_file(data_dir: str | os.PathLike, task: Task, split: str) -> Path | None:
    for name in task.file_candidates(split):
        if (Path(data_dir) / name).is_file():
            return Path(data_dir) / name
    return None


# ------------------------------------------------------------------------------------- loading
def load_raw_datasets(
    task: Task,
    splits=("train", "validation"),
    data_dir: str | None = None,
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    cache_dir: str | None = None,
):
    """A ``datasets.DatasetDict`` with the requested splits in the uniform schema.

    With no local data at all, every split comes from the Hub. As soon as any local source is
    given (``data_dir`` or a file), every requested split must be local: mixing a local train set
    with a Hub validation set is never what the user meant. An explicit file beats ``data_dir``.
    The test split is optional in ``data_dir`` (GLUE test files are often left out).
    """
    import datasets

    files = {"train": train_file, "validation": validation_file, "test": test_file}
    local = data_dir is not None or any(files.values())
    if data_dir is not None and not Path(data_dir).is_dir():
        raise FileNotFoundError(f"--data_dir {data_dir} is not a folder")
    result = {}
    for split in splits:
        if not local:
            result[split] = load_hub_split(task, split, dataset_name, dataset_config_name, cache_dir)
            continue
        path = files[split] or (find_data_dir_file(data_dir, task, split) if data_dir else None)
        if path is None:
            if data_dir is not None:
                found = sorted(p.name for p in Path(data_dir).iterdir())
                raise FileNotFoundError(
                    f"--data_dir {data_dir} has no {split} file for task {task.name} (looked for "
                    f"{', '.join(task.file_candidates(split))}; found {found}). Pass --{split}_file."
                )
            raise ValueError(f"No {split} data: pass --{split}_file (or --data_dir) for task {task.name}")
        result[split] = read_local_file(path, task, split)
        logger.info("Read %d %s examples from %s", len(result[split]), split, path)
    return datasets.DatasetDict(result)


def sample_rows(dataset, n: int | None, seed: int):
    """A uniform random sample of ``n`` rows, seeded, kept in file order (all rows if n is None or
    not smaller than the dataset). Low-resource runs need a random sample: the first N rows of a
    release file are often sorted by source or label (CoLA is sorted by source)."""
    if n is None or n >= len(dataset):
        return dataset
    if n < 1:
        raise ValueError(f"max_train_samples must be >= 1, got {n}")
    rows = np.sort(np.random.default_rng(seed).choice(len(dataset), size=n, replace=False))
    return dataset.select(rows.tolist())


def prepare_data(args):
    """(raw DatasetDict of the splits the run needs, data summary for the model card) for a run's
    parsed arguments (``script_args.ScriptArgs``).

    The splits are train / validation / test as the run asks, ``calibration`` for a
    ``--calibration_file``, and one per ``--shift_eval_files`` name.

    The training set is a seeded random sample when --max_train_samples is given; evaluation and
    test sets are cut to their first N rows, as in run_glue.py.
    """
    task, data_args, training_args = args.task, args.data, args.training
    splits = [s for s, on in (("train", training_args.do_train), ("validation", training_args.do_eval),
                              ("test", training_args.do_predict)) if on]
    local = local_sources(data_args)
    raw = load_raw_datasets(task, splits, data_args.data_dir, data_args.train_file, data_args.validation_file,
                            data_args.test_file, data_args.dataset_name, data_args.dataset_config_name,
                            args.model.cache_dir)
    summary = {"task": f"{task.name} (best epoch by {task.metric})",
               "source": ", ".join(f"{k} {v}" for k, v in local.items()) if local
               else f"Hub: {data_args.dataset_name or task.hub_path}"}
    if "train" in raw:
        n_all, seed = len(raw["train"]), args.train_sample_seed
        raw["train"] = sample_rows(raw["train"], data_args.max_train_samples, seed)
        summary["training examples"] = (
            f"{len(raw['train'])} of {n_all} (random sample, seed {seed})" if len(raw["train"]) < n_all
            else f"{n_all} (all)")
        logger.info("Training on %s examples", summary["training examples"])
    for split, limit in (("validation", data_args.max_eval_samples), ("test", data_args.max_predict_samples)):
        if split in raw and limit is not None:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
    if "train" in raw and training_args.mixup_enabled and len(raw["train"]) < 2:
        raise ValueError(f"--mixup_method {training_args.mixup_method} needs at least 2 training examples to mix, "
                         f"got {len(raw['train'])}: give more data, or --mixup_method none.")
    if "validation" in raw:
        summary["evaluation examples"] = len(raw["validation"])
    if args.calibration.temperature_scaling and args.calibration.calibration_file is not None:
        raw["calibration"] = read_local_file(args.calibration.calibration_file, task, "validation")
    for name, dataset in load_shift_sets(task, data_args.shift_files).items():
        raw[name] = dataset
        summary[f"shifted set {name}"] = f"{len(dataset)} examples ({data_args.shift_files[name]})"
    summary["max_seq_length"] = data_args.max_seq_length
    summary["calibration bins"] = args.calibration.calibration_bins
    return raw, summary


def local_sources(data_args) -> dict[str, str]:
    """The local data flags the run was given ({} for Hub data)."""
    return {k: v for k, v in (("data_dir", data_args.data_dir), ("train_file", data_args.train_file),
                              ("validation_file", data_args.validation_file), ("test_file", data_args.test_file)) if v}


def load_shift_sets(task: Task, files: dict[str, str]) -> dict:
    """{name: raw Dataset} of ``--shift_eval_files`` in the uniform schema, every row labelled (read
    before training; a regression task was refused at parse time)."""
    sets = {}
    for name, path in files.items():
        dataset = read_local_file(path, task, "validation")
        if (np.asarray(dataset["label"]) < 0).any():
            raise ValueError(f"--shift_eval_files {name}={path} has unlabelled rows: every shifted example needs a "
                             "label to be scored.")
        sets[name] = dataset
    return sets


# ------------------------------------------------------------------ --shift_eval_files, the flag
#: Names a shifted set cannot take: they are the splits and metric prefixes of the run itself.
RESERVED_SHIFT_NAMES = ("train", "validation", "eval", "test", "predict", "calibration")
SHIFT_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _keys_can_collide(name: str, other: str) -> bool:
    """True when one name is the other followed by ``_...``: then ``<other>_<key>`` and ``<name>_<key'>``
    can spell the same metric key (``yelp`` + ``ts_ece`` = ``yelp_ts`` + ``ece``)."""
    a, b = name.lower(), other.lower()
    return a.startswith(b + "_") or b.startswith(a + "_")


def shift_files_identity(value: str | None) -> list[list[str]] | None:
    """What defines ``--shift_eval_files`` for the run's settings: the sorted (name, real path, SHA-256 of
    the content) of each file, so that the order of the entries and the spelling of a path do not make
    another run, while another file under the same name does."""
    import hashlib

    if not value:
        return None
    return sorted([name, os.path.realpath(path), hashlib.sha256(Path(path).read_bytes()).hexdigest()]
                  for name, path in parse_shift_files(value).items())


def parse_shift_files(value: str | None) -> dict[str, str]:
    """'yelp=a.tsv,amazon=b.tsv' -> {'yelp': 'a.tsv', 'amazon': 'b.tsv'}, refusing malformed entries,
    reserved or repeated names and files that do not exist, each in one line."""
    if value is None:
        return {}
    files: dict[str, str] = {}
    for entry in [e.strip() for e in value.split(",")]:
        name, sep, path = (part.strip() for part in entry.partition("="))
        if not sep or not name or not path:
            raise ValueError(f"--shift_eval_files: {entry!r} is not NAME=PATH; write e.g. "
                             "--shift_eval_files yelp=data/yelp.tsv,amazon=data/amazon.tsv")
        if not SHIFT_NAME_PATTERN.match(name) or name.lower() in RESERVED_SHIFT_NAMES:
            raise ValueError(f"--shift_eval_files: {name!r} cannot name a shifted set (letters, digits and _, starting "
                             f"with a letter; not one of {', '.join(RESERVED_SHIFT_NAMES)}): it prefixes the metric keys.")
        if name in files:
            raise ValueError(f"--shift_eval_files: the name {name!r} is given twice; give each file its own name.")
        clash = next((other for other in [*RESERVED_SHIFT_NAMES, *files] if _keys_can_collide(name, other)), None)
        if clash is not None or name.lower().endswith("_ts"):
            why = (f"its metric keys ({name}_*) could be read as those of {clash!r}" if clash is not None
                   else f"{name}_* would read as the temperature-scaled keys (*_ts_*) of {name[:-3]!r}")
            raise ValueError(f"--shift_eval_files: {name!r} cannot name a shifted set: {why}. Give names that do not "
                             "start with one another followed by '_' and do not end in _ts (e.g. yelp, amazon).")
        if not Path(path).is_file():
            raise FileNotFoundError(f"--shift_eval_files: {name}={path}: no such file.")
        files[name] = path
    return files


# ----------------------------------------------------------------------------------- tokenisation
def tokenise(raw, tokenizer, task: Task, data_args, training_args, pad_to_max: bool):
    """(every split of ``raw`` tokenised, the max length used); sentence pairs of a decoder tokenizer
    are joined by its eos token."""
    max_length = data_args.max_seq_length
    if tokenizer.model_max_length and max_length > tokenizer.model_max_length:
        logger.warning("max_seq_length %d exceeds the model's %d; using %d",
                       max_length, tokenizer.model_max_length, tokenizer.model_max_length)
        max_length = tokenizer.model_max_length

    def preprocess(batch):
        texts = [batch[column] for column in task.text_columns]
        if len(texts) == 2 and tokenizer.sep_token is None and tokenizer.eos_token is not None:
            # A decoder tokenizer has no pair template and would run the two texts together.
            texts = [[a + tokenizer.eos_token + b for a, b in zip(*texts)]]
        return tokenizer(*texts, padding="max_length" if pad_to_max else False, max_length=max_length,
                         truncation=True)

    with training_args.main_process_first(desc="dataset map pre-processing"):
        return raw.map(preprocess, batched=True, num_proc=data_args.preprocessing_num_workers,
                       remove_columns=list(task.text_columns) + ["idx"],
                       load_from_cache_file=not data_args.overwrite_cache, desc="Tokenising"), max_length


def pads_to_max_length(data_args, training_args) -> bool:
    """Pad every example to max_seq_length? Asked for directly, or by ``--mixup_padding max``, whose
    meaning (mixed sequences attend the full padded length) only matches the paper's "max" padding
    when that length is max_seq_length rather than each batch's longest sentence."""
    return data_args.pad_to_max_length or training_args.mixup_padding == "max"
