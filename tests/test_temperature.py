"""Temperature scaling: the fit (against scipy and netcal on real MiniLM outputs, and on data with a
known temperature), bad input, folding T into the classifier (save, plain reload, pipeline), and the
run scripts' --temperature_scaling (split of the evaluation set, and a calibration file)."""

import json
import math
import warnings

import numpy as np
import pytest
import torch

from mixup_trainer.calibration import TEMPERATURE_BOUNDS, calibration_report, fit_temperature
from mixup_trainer.levels import final_projection as find_final_projection
from mixup_trainer.temperature_scaling import fold_temperature, split_evaluation


def final_projection(model):
    return find_final_projection(model)[1]

from testing_utils import read_sst2
from test_run_scripts import DATA, run_script


def _scipy_temperature(logits, labels):
    """Independent reference: bounded Brent search over T itself of torch's cross-entropy."""
    from scipy.optimize import minimize_scalar

    z, y = torch.from_numpy(np.asarray(logits, dtype=np.float64)), torch.from_numpy(np.asarray(labels))
    result = minimize_scalar(lambda t: float(torch.nn.functional.cross_entropy(z / t, y)), bounds=(0.05, 20.0),
                             method="bounded", options={"xatol": 1e-9})
    return result.x


@pytest.fixture(scope="module")
def minilm_logits(minilm_path):
    """Real model outputs: all-MiniLM-L6-v2 mean-pooled embeddings of SST-2 sentences with a nearly
    regularised logistic-regression head fitted on 300 training sentences (over-confident, as
    fine-tuned heads are), scored on 400 dev sentences."""
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(minilm_path), AutoModel.from_pretrained(minilm_path).eval()

    def embed(texts):
        out = []
        for start in range(0, len(texts), 100):
            batch = tokenizer(texts[start:start + 100], padding=True, truncation=True, max_length=48,
                              return_tensors="pt")
            with torch.no_grad():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"][..., None]
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
        return np.concatenate(out)

    train_texts, train_labels = read_sst2("train", limit=300)
    dev_texts, dev_labels = read_sst2("dev", limit=400)
    head = LogisticRegression(C=10.0, max_iter=5000).fit(embed(train_texts), train_labels)
    margin = head.decision_function(embed(dev_texts)).astype(np.float64)  # netcal's fit needs float64
    return np.stack([-margin / 2, margin / 2], axis=1), np.asarray(dev_labels)


# ------------------------------------------------------------------------------------------------ fit


@pytest.mark.slow
def test_fit_matches_scipy_and_netcal_on_minilm_outputs(minilm_logits):
    logits, labels = minilm_logits
    temperature = fit_temperature(logits, labels)
    assert temperature > 2.0  # the over-confident head (ECE ~0.2) is softened
    assert temperature == pytest.approx(_scipy_temperature(logits, labels), abs=1e-3)
    from netcal.scaling import TemperatureScaling

    probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
    netcal = TemperatureScaling()
    netcal.fit(probs, labels)
    assert temperature == pytest.approx(1.0 / float(np.squeeze(netcal.weights)), abs=1e-3)  # netcal fits 1/T
    # It minimises the NLL: a nudge either way is worse, and the argmax never moves.
    nll = [calibration_report(logits / t, labels, from_logits=True).nll
           for t in (temperature * 0.99, temperature, temperature * 1.01)]
    assert nll[1] < nll[0] and nll[1] < nll[2]
    assert calibration_report(logits / temperature, labels, from_logits=True).accuracy == \
        calibration_report(logits, labels, from_logits=True).accuracy


@pytest.mark.parametrize("true_t", [0.5, 2.0, 4.0])
def test_fit_recovers_a_known_temperature(true_t):
    """Labels drawn from softmax(z); the model reports z * true_t: the fit must find ~true_t."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20000, 4)) * 2
    cumulative = np.cumsum(torch.softmax(torch.from_numpy(z), 1).numpy(), axis=1)
    labels = (rng.random((len(z), 1)) > cumulative).sum(1)
    fitted = fit_temperature(z * true_t, labels)
    assert fitted == pytest.approx(true_t, rel=0.03)
    assert fitted == pytest.approx(_scipy_temperature(z * true_t, labels), abs=1e-3)
    assert fit_temperature(z * true_t, labels) == fitted  # deterministic


def test_fit_binary_one_dimensional_logits():
    rng = np.random.default_rng(1)
    z = rng.normal(size=500) * 3
    labels = (rng.random(500) < 1 / (1 + np.exp(-z / 3))).astype(int)
    two_column = np.stack([np.zeros_like(z), z], 1)
    assert fit_temperature(z, labels) == fit_temperature(two_column, labels)
    assert fit_temperature(z, labels) == pytest.approx(3.0, rel=0.3)


@pytest.mark.parametrize(
    "logits, labels, message",
    [
        (np.zeros((0, 2)), [], "no examples.*calibration split is empty"),
        ([[1.0, 0.0], [2.0, 0.0]], [0, 0], "every calibration example has label 0.*at least two classes"),
        ([[np.nan, 0.0], [0.0, 1.0]], [0, 1], "NaN or inf"),
        ([[np.inf, 0.0], [0.0, 1.0]], [0, 1], "NaN or inf"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 2], r"labels must lie in 0\.\.1"),
    ],
)
def test_fit_bad_input(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        fit_temperature(np.asarray(logits, dtype=float), np.asarray(labels, dtype=int))


def test_fit_diverging_temperature_is_bounded_with_a_warning():
    all_correct = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), np.array([0, 1, 0])
    message = r"hit its bound T = 0\.01: every one of the 3 calibration predictions is correct"
    with pytest.warns(RuntimeWarning, match=message):
        assert fit_temperature(*all_correct) == pytest.approx(TEMPERATURE_BOUNDS[0])
    all_wrong = np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([1, 0])
    with pytest.warns(RuntimeWarning, match=r"T -> infinity \(0 of 2"):
        assert fit_temperature(*all_wrong) == pytest.approx(TEMPERATURE_BOUNDS[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ordinary fit does not warn
        fit_temperature(np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]]), np.array([0, 1, 1]))


# ---------------------------------------------------------------------------------------------- fold


def _tiny_classifier(tokenizer, model_type="bert"):
    from testing_utils import TINY_BERT
    from transformers import AutoModelForSequenceClassification, BertConfig, RobertaConfig

    kw = dict(TINY_BERT, vocab_size=len(tokenizer), num_labels=3, max_position_embeddings=512)
    config = BertConfig(**kw) if model_type == "bert" else RobertaConfig(**kw, pad_token_id=0)
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(config).eval()


def test_fold_gives_logits_over_t_after_save_and_plain_reload(tokenizer, tmp_path):
    from transformers import AutoModelForSequenceClassification, pipeline

    model = _tiny_classifier(tokenizer)
    torch.nn.init.normal_(model.classifier.weight, std=3.0)  # a random head is near uniform: make it confident
    torch.nn.init.normal_(model.classifier.bias, std=1.0)
    texts, _ = read_sst2("dev", limit=8)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits.double()
    temperature = 2.7
    fold_temperature(model, temperature)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        folded = reloaded(**batch).logits.double()
    expected = torch.softmax(logits / temperature, 1)
    assert (torch.softmax(folded, 1) - expected).abs().max() < 1e-6
    assert (torch.softmax(logits, 1) - expected).abs().max() > 1e-2  # the fold did change the probabilities
    scores = pipeline("text-classification", model=str(tmp_path), top_k=None, device="cpu")(texts[:2])
    for row, probs in zip(scores, expected[:2]):
        by_label = {d["label"]: d["score"] for d in row}
        assert [by_label[f"LABEL_{c}"] for c in range(3)] == pytest.approx(probs.tolist(), abs=1e-6)


def test_final_projection_across_heads(tokenizer):
    bert, roberta = _tiny_classifier(tokenizer), _tiny_classifier(tokenizer, "roberta")
    assert final_projection(bert) is bert.classifier
    assert final_projection(roberta) is roberta.classifier.out_proj  # not the dense layer before it
    from transformers import BertConfig, BertModel

    with pytest.raises(ValueError, match="no nn.Linear with out_features == num_labels"):
        final_projection(BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                              intermediate_size=37, num_labels=5)))


def test_split_evaluation():
    cal, scored = split_evaluation(100, 0.3, seed=7)
    assert len(cal) == 30 and len(scored) == 70 and not set(cal) & set(scored)
    assert sorted([*cal, *scored]) == list(range(100))
    again, _ = split_evaluation(100, 0.3, seed=7)
    other, _ = split_evaluation(100, 0.3, seed=8)
    assert (again == cal).all() and not (other == cal).all()
    with pytest.raises(ValueError, match="both need at least one"):
        split_evaluation(3, 0.1, seed=0)


def test_argument_checks(tmp_path):
    from mixup_trainer.cli import parse_args

    def check(*argv):  # every check runs at parse time
        parse_args(["--model_name_or_path", "m", "--output_dir", str(tmp_path), *argv])

    check("--task", "sst2", "--temperature_scaling")
    with pytest.raises(ValueError, match="regression task"):
        check("--task", "stsb", "--temperature_scaling")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        check("--task", "sst2", "--temperature_scaling", "--calibration_fraction", "1.0")
    with pytest.raises(ValueError, match="only used with --temperature_scaling"):
        check("--task", "sst2", "--calibration_file", "x.tsv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check("--task", "sst2", "--temperature_scaling", "--calibration_file", str(tmp_path / "none.tsv"))
    with pytest.raises(ValueError, match="add --do_eval"):
        check("--task", "sst2", "--temperature_scaling", "--do_train")


# ------------------------------------------------------------------------------------------ scripts

TS_ARGS = ["--mixup_method", "cls", "--max_train_samples", "48", "--num_train_epochs", "2", "--learning_rate", "1e-3",
           "--max_seq_length", "64", "--temperature_scaling"]


def _saved_model_nll(out, rows):
    """NLL and accuracy of the *saved* model (plain reload) on the given dev rows."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts, labels = read_sst2("dev", limit=max(rows) + 1)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits.double()
    report = calibration_report(logits.numpy(), np.asarray(labels)[rows], from_logits=True)
    return report


@pytest.mark.slow
def test_script_temperature_scaling_on_a_split(tiny_bert, sst2_sample_dir, tmp_path):
    results = run_script(["run_glue_mixup.py", "--task", "sst2", "--data_dir", sst2_sample_dir,
                          "--model_name_or_path", tiny_bert, "--max_eval_samples", "80", *TS_ARGS,
                          "--calibration_fraction", "0.25", "--calibration_seed", "3"], tmp_path)
    for key in ("eval_ts_ece", "eval_ts_nll", "eval_ts_brier", "eval_ts_adaptive_ece", "eval_ts_smece",
                "eval_ts_overconfidence", "temperature", "eval_adaptive_ece", "eval_smece", "eval_overconfidence"):
        assert math.isfinite(results[key]), key
    assert results["calibration_samples"] == 20 and results["eval_samples"] == 60
    assert "seed 3" in results["calibration_source"] and "other 60 scored" in results["calibration_source"]
    assert results["eval_ts_accuracy"] == results["eval_accuracy"] and results["eval_loss"] == results["eval_nll"]
    record = json.loads((tmp_path / "eval_temperature_scaling.json").read_text())
    cal, scored = split_evaluation(80, 0.25, seed=3)
    assert record["calibration_idx"] == cal.tolist() and record["scored_idx"] == scored.tolist()
    assert record["temperature"] == results["temperature"]
    # The saved model has T folded in: its own outputs on the scored rows give the eval_ts_* numbers.
    after = _saved_model_nll(tmp_path, scored.tolist())
    assert after.nll == pytest.approx(results["eval_ts_nll"], abs=1e-5)
    assert after.ece == pytest.approx(results["eval_ts_ece"], abs=1e-5)
    assert after.brier == pytest.approx(results["eval_ts_brier"], abs=1e-5)
    assert (tmp_path / "eval_ts_reliability_diagram.png").read_bytes()[:4] == b"\x89PNG"
    card = (tmp_path / "README.md").read_text()
    section = card.split("## Temperature scaling")[1]
    assert f"T = {results['temperature']:.4f}" in section and "folded into the saved weights" in section
    assert f"| ece | {results['eval_ece']:.4f} | {results['eval_ts_ece']:.4f} |" in section


@pytest.mark.slow
def test_script_temperature_scaling_with_a_calibration_file(tiny_bert, sst2_sample_dir, tmp_path):
    lines = (DATA / "sst2" / "dev.tsv").read_text().splitlines()
    cal_file = tmp_path / "calibration.tsv"
    cal_file.write_text("\n".join([lines[0], *lines[200:240]]) + "\n")
    out = tmp_path / "out"
    results = run_script(["run_glue_mixup.py", "--task", "sst2", "--data_dir", sst2_sample_dir,
                          "--model_name_or_path", tiny_bert, "--max_eval_samples", "50", *TS_ARGS,
                          "--calibration_file", str(cal_file)], out)
    assert results["calibration_samples"] == 40 and results["eval_samples"] == 50
    assert "calibration.tsv" in results["calibration_source"]
    after = _saved_model_nll(out, list(range(50)))
    assert after.nll == pytest.approx(results["eval_ts_nll"], abs=1e-5)
    assert math.isfinite(results["temperature"]) and results["temperature"] > 0
