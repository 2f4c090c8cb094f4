"""Task registry and data readers: real GLUE/SuperGLUE release files, every bad-input error, sampling."""

import collections
import json
from pathlib import Path

import pytest

from mixup_trainer.data import load_raw_datasets, read_local_file, sample_rows
from mixup_trainer.tasks import TASKS, DataFormatError, get_task

from testing_utils import DATA


@pytest.fixture(scope="module")
def real():
    """Every real file read once: {task: DatasetDict}."""
    return {
        "sst2": load_raw_datasets(get_task("sst2"), data_dir=str(DATA / "sst2")),
        "cola": load_raw_datasets(get_task("cola"), data_dir=str(DATA / "cola")),
        "rte": load_raw_datasets(get_task("rte"), data_dir=str(DATA / "rte")),
        "boolq": load_raw_datasets(get_task("boolq"), train_file=str(DATA / "boolq" / "train32.jsonl"),
                                   validation_file=str(DATA / "boolq" / "val.jsonl")),
    }


# ------------------------------------------------------------------------------------ real files
@pytest.mark.parametrize(
    "task, n_train, n_dev, dev_labels",
    [
        ("sst2", 67349, 872, {1: 444, 0: 428}),  # 1 = positive
        ("cola", 8551, 1043, {1: 721, 0: 322}),  # 1 = acceptable
        ("rte", 2490, 277, {0: 146, 1: 131}),  # 0 = entailment
        ("boolq", 32, 3270, {1: 2033, 0: 1237}),  # 1 = True
    ],
)
def test_real_files_keep_every_row(real, task, n_train, n_dev, dev_labels):
    ds = real[task]
    assert (len(ds["train"]), len(ds["validation"])) == (n_train, n_dev)
    assert dict(collections.Counter(ds["validation"]["label"])) == dev_labels
    assert set(ds["train"].column_names) == set(get_task(task).text_columns) | {"label", "idx"}


def test_cola_headerless_layout(real):
    train = real["cola"]["train"]
    # First line of the file is data, not a header: source gj04, label 1, empty annotation.
    assert train[0] == {"sentence": "Our friends won't buy this analysis, let alone the next one we propose.",
                        "label": 1, "idx": 0}
    assert train.features["label"].dtype == "int64"
    assert not any(s in ("sentence", "") for s in train["sentence"][:100])
    # Unacceptable rows carry the annotation "*" in column 3, which must not leak into the sentence.
    unacceptable = [s for s, y in zip(train["sentence"], train["label"]) if y == 0]
    assert unacceptable and not any(s.startswith("*") for s in unacceptable)


def test_rte_irregular_row_takes_label_from_last_field(real):
    train = real["rte"]["train"]
    rows = {row["idx"]: row for row in train.select(range(2160, 2170))}
    row = rows[2164]  # `index, s1, s2, <empty>, label`, and s1 opens with an unmatched quote
    assert row["sentence1"].startswith('"That film wasn\'t too successful')
    assert row["sentence2"] == 'The film "WarGames" was shot in 1983.'
    assert row["label"] == get_task("rte").label_names.index("not_entailment")
    # Neighbours are intact: the unmatched quote did not swallow the next line.
    assert rows[2165]["idx"] == 2165 and rows[2163]["idx"] == 2163
    assert train["idx"] == list(range(2490))


def test_boolq_jsonl_labels(real):
    train, val = real["boolq"]["train"], real["boolq"]["validation"]
    first = json.loads((DATA / "boolq" / "train32.jsonl").read_text().splitlines()[0])
    assert train[0]["question"] == first["question"] and train[0]["passage"] == first["passage"]
    assert train[0]["label"] == int(first["label"]) and train[0]["idx"] == first["idx"]
    assert set(val["label"]) == {0, 1}


# ---------------------------------------------------------------------------------- other layouts
def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_release_layouts_of_the_other_glue_tasks(tmp_path):
    mrpc = write(tmp_path / "mrpc.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                                        "1\t702876\t702977\tAmrozi accused \"his brother\tReferring to him\n")
    ds = read_local_file(mrpc, get_task("mrpc"))
    assert ds[0] == {"sentence1": 'Amrozi accused "his brother', "sentence2": "Referring to him", "label": 1, "idx": 0}

    header = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tlabel2\tgold_label\n"
    write(tmp_path / "mnli" / "train.tsv", header + "0\t1\t1n\tgov\tP one.\tH one.\tneutral\tneutral\tneutral\n")
    write(tmp_path / "mnli" / "dev_matched.tsv", header + "7\t2\t2c\tgov\tP two.\tH two.\tcontradiction\tneutral"
                                                          "\tcontradiction\n")
    mnli = load_raw_datasets(get_task("mnli"), data_dir=str(tmp_path / "mnli"))
    assert mnli["train"][0] == {"premise": "P one.", "hypothesis": "H one.", "label": 1, "idx": 0}
    assert mnli["validation"][0]["label"] == 2 and mnli["validation"][0]["idx"] == 7

    qqp = write(tmp_path / "qqp.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n5\t1\t2\tA?\tB?\t1\n")
    assert read_local_file(qqp, get_task("qqp"))[0] == {"question1": "A?", "question2": "B?", "label": 1, "idx": 5}

    stsb = write(tmp_path / "stsb.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1"
                                        "\tsentence2\tscore\n0\tmain\tf\t2012\t1\tnone\tnone\tA man.\tA guy.\t4.25\n")
    row = read_local_file(stsb, get_task("stsb"))[0]
    assert row["label"] == pytest.approx(4.25) and get_task("stsb").num_labels == 1

    qnli = write(tmp_path / "qnli.tsv", "index\tquestion\tsentence\tlabel\n0\tWho?\tHim.\tnot_entailment\n")
    assert read_local_file(qnli, get_task("qnli"))[0]["label"] == 1

    wnli = write(tmp_path / "wnli.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\t1\n")
    assert read_local_file(wnli, get_task("wnli"))[0]["label"] == 1

    # Unlabelled GLUE test files get label -1, as on the Hub.
    test = write(tmp_path / "cola_test.tsv", "index\tsentence\n0\tBill left.\n1\tLeft Bill.\n")
    assert read_local_file(test, get_task("cola"), split="test")["label"] == [-1, -1]


def test_stray_quotes_never_merge_rows(tmp_path):
    path = write(tmp_path / "sst2.tsv", 'sentence\tlabel\n"an opening quote\t1\nplain\t0\nclosing" quote\t1\n')
    ds = read_local_file(path, get_task("sst2"))
    assert ds["sentence"] == ['"an opening quote', "plain", 'closing" quote'] and ds["label"] == [1, 0, 1]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl"])
def test_local_files_with_the_usual_column_names(tmp_path, fmt):
    rows = [{"text": "Stocks rally, \"finally\"", "label": "Business"}, {"text": "Cup final", "label": 1}]
    if fmt == "csv":
        text = 'text,label\n"Stocks rally, ""finally""",Business\nCup final,1\n'
    elif fmt == "tsv":
        text = 'text\tlabel\nStocks rally, "finally"\tBusiness\nCup final\t1\n'
    elif fmt == "json":
        text = json.dumps(rows)
    else:
        text = "\n".join(json.dumps(r) for r in rows) + "\n"
    ds = read_local_file(write(tmp_path / f"ag.{fmt}", text), get_task("ag_news"))
    assert ds["text"] == ['Stocks rally, "finally"', "Cup final"]
    assert ds["label"] == [2, 1] and ds["idx"] == [0, 1]


def test_bool_and_string_labels(tmp_path):
    path = write(tmp_path / "b.jsonl", '{"question": "q", "passage": "p", "idx": 3, "label": true}\n'
                                       '{"question": "q", "passage": "p", "idx": 4, "label": false}\n')
    assert read_local_file(path, get_task("boolq"))["label"] == [1, 0]
    # google/boolq's schema: the label is a bool called `answer`.
    path = write(tmp_path / "g.json", json.dumps([{"question": "q", "passage": "p", "answer": True}]))
    assert read_local_file(path, get_task("boolq"))["label"] == [1]
    path = write(tmp_path / "imdb.csv", "text,label\ngreat,pos\nawful,neg\n")
    assert read_local_file(path, get_task("imdb"))["label"] == [1, 0]


# ------------------------------------------------------------------------------------------ errors
def test_label_outside_the_label_set(tmp_path):
    path = write(tmp_path / "rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n"
                                       "1\tA.\tB.\tcontradiction\n")
    with pytest.raises(DataFormatError) as err:
        read_local_file(path, get_task("rte"))
    message = str(err.value)
    assert "'contradiction'" in message and path in message and "line 3" in message
    assert "entailment, not_entailment" in message
    with pytest.raises(DataFormatError, match="label '2'"):
        read_local_file(write(tmp_path / "s.tsv", "sentence\tlabel\nok\t2\n"), get_task("sst2"))


def test_missing_columns(tmp_path):
    path = write(tmp_path / "sst2.csv", "text,label\ngood,1\n")
    with pytest.raises(DataFormatError, match=r"missing column.*sentence.*columns found: \['text', 'label'\]"):
        read_local_file(path, get_task("sst2"))
    path = write(tmp_path / "nolabel.jsonl", '{"sentence": "good"}\n')
    with pytest.raises(DataFormatError, match="missing column.*label"):
        read_local_file(path, get_task("sst2"), split="train")
    # A file of another task: never read as the wrong columns.
    with pytest.raises(DataFormatError, match="not a rte TSV"):
        read_local_file(str(DATA / "sst2" / "dev.tsv"), get_task("rte"))
    with pytest.raises(DataFormatError, match="not a sst2 TSV"):
        read_local_file(str(DATA / "cola" / "dev.tsv"), get_task("sst2"))


def test_malformed_rows_and_files(tmp_path):
    short = write(tmp_path / "short.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tentailment\n")
    with pytest.raises(DataFormatError, match=r"line 2: 3 tab-separated fields where the header has 4"):
        read_local_file(short, get_task("rte"))
    shifted = write(tmp_path / "shifted.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tC.\tentailment\n")
    with pytest.raises(DataFormatError, match="5 tab-separated fields"):  # the surplus field is not empty
        read_local_file(shifted, get_task("rte"))
    empty_label = write(tmp_path / "e.tsv", "sentence\tlabel\ngood\t\n")
    with pytest.raises(DataFormatError, match="no value for the label"):
        read_local_file(empty_label, get_task("sst2"))
    with pytest.raises(DataFormatError, match="unsupported file type '.txt'"):
        read_local_file(write(tmp_path / "x.txt", "a"), get_task("sst2"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_local_file(tmp_path / "nope.tsv", get_task("sst2"))
    with pytest.raises(DataFormatError, match="line 2: not JSON"):
        read_local_file(write(tmp_path / "bad.jsonl", '{"text": "a", "label": 0}\n{oops\n'), get_task("imdb"))


def test_data_dir_without_the_expected_files(tmp_path):
    write(tmp_path / "train.tsv", "sentence\tlabel\ngood\t1\n")
    with pytest.raises(FileNotFoundError) as err:
        load_raw_datasets(get_task("sst2"), data_dir=str(tmp_path))
    assert "no validation file" in str(err.value) and "dev.tsv" in str(err.value) and "train.tsv" in str(err.value)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_raw_datasets(get_task("sst2"), data_dir=str(tmp_path / "missing"))
    # BoolQ's folder has val.jsonl and train32.jsonl but no train.jsonl: say so, suggest --train_file.
    with pytest.raises(FileNotFoundError, match=r"no train file.*train32.jsonl.*--train_file"):
        load_raw_datasets(get_task("boolq"), data_dir=str(DATA / "boolq"))
    # Local train file but no validation: never fall back to the Hub.
    with pytest.raises(ValueError, match="--validation_file"):
        load_raw_datasets(get_task("sst2"), train_file=str(tmp_path / "train.tsv"))


def test_unknown_task_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        get_task("sst5")
    assert "sst5" in str(err.value) and all(name in str(err.value) for name in TASKS)
    assert get_task("SST-2").name == "sst2" and get_task("STS-B").name == "stsb"


def test_hub_off_fails_before_trying(monkeypatch):
    import datasets

    def must_not_run(*args, **kwargs):
        raise AssertionError("load_dataset called while the Hub is off")

    monkeypatch.setattr(datasets, "load_dataset", must_not_run)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError) as err:
        load_raw_datasets(get_task("cola"))
    message = str(err.value)
    assert "nyu-mll/glue/cola" in message and "--data_dir" in message and "--train_file" in message


def test_hub_loading_normalises_columns(monkeypatch):
    """With the Hub on, load_dataset gets the task's path/config/split, and google/boolq's bool
    `answer` becomes an int `label` (stubbed: no network here)."""
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, cache_dir=None):
        calls.append((path, name, split))
        return datasets.Dataset.from_dict({"question": ["q"], "passage": ["p"], "answer": [True], "title": ["t"]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr("mixup_trainer.tasks.hub_is_offline", lambda: False)
    ds = load_raw_datasets(get_task("boolq"), dataset_name="google/boolq")
    assert calls == [("google/boolq", None, "train"), ("google/boolq", None, "validation")]
    assert ds["train"][0] == {"question": "q", "passage": "p", "label": 1, "idx": 0}
    calls.clear()
    with pytest.raises(DataFormatError, match="no column 'premise'"):
        load_raw_datasets(get_task("mnli"), splits=("validation",))
    assert calls == [("nyu-mll/glue", "mnli", "validation_matched")]


# ---------------------------------------------------------------------------------------- sampling
def test_random_sample(real):
    train = real["sst2"]["train"]
    a, b, a_again = sample_rows(train, 64, seed=1), sample_rows(train, 64, seed=2), sample_rows(train, 64, seed=1)
    assert len(a) == 64 and a["idx"] == a_again["idx"]  # reproducible
    assert a["idx"] != b["idx"]  # the seed matters
    assert a["idx"] != list(range(64))  # not the first N
    assert a["idx"] == sorted(a["idx"]) and len(set(a["idx"])) == 64  # distinct rows, in file order
    assert max(a["idx"]) > 10 * 64  # drawn from the whole file
    assert sample_rows(train, None, 0) is train and sample_rows(train, 10**6, 0) is train
    with pytest.raises(ValueError):
        sample_rows(train, 0, seed=1)


# ------------------------------------------------------------------------------------------ registry
def test_registry_and_paper_defaults():
    from mixup_trainer.cli import read_config

    assert set(TASKS) == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli", "imdb", "ag_news",
                          "boolq"}
    assert {t.name: t.metric for t in TASKS.values() if t.metric != "accuracy"} == {
        "cola": "matthews_correlation", "stsb": "pearson"}
    assert get_task("stsb").is_regression and get_task("mnli").num_labels == 3 and get_task("ag_news").num_labels == 4
    expected = {  # Table 6 of Zhang & Vaidya (2021)
        "imdb": (1e-5, 10, 1.0, 128), "ag_news": (2e-5, 10, 1.0, 128), "cola": (2e-5, 5, 0.75, 128),
        "rte": (3e-5, 5, 1.0, 128), "boolq": (2e-5, 10, 1.0, 256),
    }
    for name, (lr, epochs, alpha, length) in expected.items():
        d = read_config(str(get_task(name).paper_config))
        assert (d["learning_rate"], d["num_train_epochs"], d["mixup_alpha"], d["max_seq_length"]) == (
            lr, epochs, alpha, length), name
        assert (d["per_device_train_batch_size"], d["hidden_dropout_prob"]) == (16, 0.1)
    # No learning rate in the paper for SST-2: none is invented.
    assert "learning_rate" not in read_config(str(get_task("sst2").paper_config))
    assert {p.stem for p in get_task("sst2").paper_config.parent.glob("*.yaml")} == set(TASKS)  # one file per task
    with pytest.raises(Exception):
        get_task("cola").metric = "accuracy"  # frozen
