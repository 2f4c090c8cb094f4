"""Mixed precision (--bf16, --fp16) made exact: under CPU autocast, for BERT and a decoder (Llama) at
every level 0..n+1, λ → 0 swaps rows and targets and λ → 1 keeps them (within the dtype's tolerance);
the MixUp loss is taken in float32 from the logits; a kill and rerun under --bf16 is bit-equal;
temperature scaling folds into the saved weights in the saved dtype (float32: autocast keeps float32
master weights, and that is what a --bf16 run saves).
"""

import pytest
import torch
import torch.nn.functional as F

from mixup_trainer import MixUpPlan
from mixup_trainer.mixing import mixup_per_example_loss
from test_decoders import N, build, check_swap, encode, decoder_tokenizer, encoder_tokenizer  # noqa: F401 (fixtures)

#: autocast dtype; the swap tolerance is its machine epsilon (bf16 2^-7, fp16 2^-10). The checks pass bit-exact
#: here as well: λ ∈ {0, 1} (or within 1e-6 of it) makes λ·h + (1−λ)·h[p] the row itself in any dtype.
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CASES = [("bert", "right"), ("llama", "right"), ("llama", "left")]


@pytest.mark.parametrize("precision", sorted(DTYPES))
@pytest.mark.parametrize("level", range(N + 2))
@pytest.mark.parametrize("family,side", CASES)
def test_lambda_zero_swaps_and_lambda_one_keeps_rows_under_autocast(
    family, side, level, precision, decoder_tokenizer, encoder_tokenizer, tmp_path  # noqa: F811
):
    """check_swap of tests/test_decoders.py (through MixUpTrainer.compute_loss, λ = 0, 1 and as drawn
    from Beta(1e-3, 1e-3)) with the model and the clean references all run under CPU autocast."""
    dtype = DTYPES[precision]
    decoder = family != "bert"
    tokenizer = decoder_tokenizer if decoder else encoder_tokenizer
    model = build(family, len(tokenizer), tokenizer.pad_token_id)
    batch = encode(tokenizer, side)
    with torch.no_grad():
        full = model(**batch).logits
        with torch.autocast("cpu", dtype=dtype):
            low = model(**batch).logits
    assert low.dtype == dtype and not torch.equal(low.float(), full)  # autocast is in effect
    with torch.autocast("cpu", dtype=dtype):
        check_swap(model, tokenizer, tmp_path, side, level, decoder, tol=torch.finfo(dtype).eps)


# ------------------------------------------------------------------------------- the loss in float32
def _soft_ce(logits, targets):
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(-1)


def _reference_losses(logits, labels, plan):
    """The soft-label cross-entropy taken in float32 from the logits, and the same taken in bf16."""
    targets = torch.lerp(F.one_hot(labels[plan.partner], logits.shape[-1]).double(),
                         F.one_hot(labels, logits.shape[-1]).double(), plan.lam)
    in32 = _soft_ce(logits.float(), targets.float())
    in16 = _soft_ce(logits.to(torch.bfloat16), targets.to(torch.bfloat16))
    return in32, in16


def test_the_mixup_loss_is_taken_in_float32_from_bf16_logits():
    """bf16 logits: the per-example loss is float32 and equals the float32 soft-label cross-entropy of those
    logits to float32 precision, and not the one taken in bf16 (off by ~1e-2 here): a loss taken in bf16 fails."""
    gen = torch.Generator().manual_seed(0)
    logits = (8 * torch.randn(64, 5, generator=gen)).to(torch.bfloat16)
    labels = torch.randint(0, 5, (64,), generator=gen)
    plan = MixUpPlan(torch.randperm(64, generator=gen), 0.3, 0)
    for context in (torch.autocast("cpu", dtype=torch.bfloat16), torch.autocast("cpu", enabled=False)):
        with context:
            got = mixup_per_example_loss(logits, labels, plan, "single_label_classification")
        in32, in16 = _reference_losses(logits, labels, plan)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, in32, rtol=1e-6, atol=1e-6)
        assert (got - in16.float()).abs().max() > 1e-2


def test_the_trainers_loss_under_bf16_autocast_is_float32_from_the_logits(encoder_tokenizer, tmp_path):  # noqa: F811
    """Through MixUpTrainer.compute_loss under autocast: the model's logits are bf16, the loss is their float32
    soft-label cross-entropy (mean over the batch), not the bf16 one."""
    from test_decoders import TARGETS, trainer_at_level

    model = build("bert", len(encoder_tokenizer), encoder_tokenizer.pad_token_id)
    torch.nn.init.normal_(model.classifier.weight, std=30.0)  # large logits: bf16's rounding shows in the loss
    trainer, drawn, lam = trainer_at_level(model, encoder_tokenizer, tmp_path, N + 1)
    lam[0] = 0.3
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        loss, outputs = trainer.compute_loss(model, {**encode(encoder_tokenizer, "right"), "labels": TARGETS},
                                             return_outputs=True)
    trainer.mixup_hooks.plan = None
    assert outputs.logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    in32, in16 = _reference_losses(outputs.logits, TARGETS, drawn[-1])
    torch.testing.assert_close(loss, in32.mean(), rtol=1e-6, atol=1e-6)
    assert (loss - in16.float().mean()).abs() > 1e-3


# ------------------------------------------------------------------------------- temperature scaling
@pytest.mark.parametrize("held", [torch.float32, torch.bfloat16])
def test_temperature_folds_into_the_saved_weights_in_their_dtype(encoder_tokenizer, tmp_path, held):  # noqa: F811
    """A --bf16 run holds (and saves) float32 weights; a model loaded in bf16 holds bf16 ones. Either way the fold
    W/T, b/T is one rounding of the exact quotient into the held dtype, the checkpoint keeps that dtype, and the
    reloaded model's logits under bf16 autocast are the unfolded ones over T within bf16's tolerance."""
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from mixup_trainer.temperature_scaling import fold_temperature

    model = build("bert", len(encoder_tokenizer), encoder_tokenizer.pad_token_id).to(held).eval()
    torch.nn.init.normal_(model.classifier.weight, std=3.0)
    batch, temperature = encode(encoder_tokenizer, "right"), 2.7
    weight, bias = model.classifier.weight.detach().double(), model.classifier.bias.detach().double()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(**batch).logits.float()
    fold_temperature(model, temperature)
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert {t.dtype for t in saved.values()} == {held}
    assert torch.equal(saved["classifier.weight"], (weight / temperature).to(held))
    assert torch.equal(saved["classifier.bias"], (bias / temperature).to(held))
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, dtype=held).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        folded = reloaded(**batch).logits.float()
    eps = torch.finfo(torch.bfloat16).eps
    torch.testing.assert_close(folded, logits / temperature, rtol=2 * eps, atol=2 * eps * logits.abs().max().item())
    assert not torch.allclose(folded, logits, rtol=0.1)


def test_script_bf16_temperature_scaling_saves_float32_with_t_folded(tiny_bert, sst2_sample_dir, tmp_path):
    """run_glue_mixup.py --bf16 --use_cpu --temperature_scaling: the checkpoint is float32 (the card says so, and
    that the loss was float32), and the saved model run under bf16 autocast gives the eval_ts_* numbers."""
    import json

    import numpy as np
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mixup_trainer.calibration import calibration_report
    from mixup_trainer.temperature_scaling import split_evaluation
    from test_run_scripts import run_script
    from testing_utils import read_sst2

    results = run_script(["run_glue_mixup.py", "--task", "sst2", "--data_dir", sst2_sample_dir, "--model_name_or_path",
                          tiny_bert, "--max_eval_samples", "80", "--mixup_method", "manifold", "--max_train_samples", "48",
                          "--num_train_epochs", "2", "--learning_rate", "1e-3", "--max_seq_length", "64",
                          "--temperature_scaling", "--calibration_seed", "3", "--bf16", "--use_cpu"], tmp_path)
    assert {t.dtype for t in load_file(tmp_path / "model.safetensors").values()} == {torch.float32}
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "float32"
    card = (tmp_path / "README.md").read_text()
    assert ("| precision | bf16 mixed precision (autocast), MixUp loss in float32 from the logits; weights kept and "
            "saved in float32 (as in full precision) |") in card
    _, scored = split_evaluation(80, 0.5, seed=3)
    texts, labels = read_sst2("dev", limit=80)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    logits = []
    for start in range(0, len(texts), 8):  # the evaluation's batches (8 rows, padded to the longest)
        batch = tokenizer(texts[start:start + 8], padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            logits.append(model(**batch).logits.float())
    logits = torch.cat(logits).double().numpy()[scored]
    after = calibration_report(logits, np.asarray(labels)[scored], from_logits=True)
    assert after.nll == pytest.approx(results["eval_ts_nll"], abs=1e-5)
    assert after.brier == pytest.approx(results["eval_ts_brier"], abs=1e-5)


# ------------------------------------------------------------------------------------- kill and rerun
def test_bf16_rerun_after_sigkill_is_bit_equal_to_an_uninterrupted_run(tiny_bert, sst2_sample_dir, tmp_path):
    """tests/test_safety.py's kill test, shorter (12 steps, a checkpoint every 4), under --bf16 --use_cpu: killed
    once its first checkpoint is complete and rerun, every log, the results and the saved (float32) weights
    equal the uninterrupted run's bit for bit."""
    import json

    import numpy as np
    from safetensors.numpy import load_file
    from test_safety import _script, assert_bit_equal, kill_and_rerun

    def command(out):
        return _script(tiny_bert, out, sst2_sample_dir) + ["--max_train_samples", "48", "--bf16", "--use_cpu"]

    full, killed = tmp_path / "full", tmp_path / "killed"

    def killed_at_step_4():
        assert not (killed / "checkpoint-12").exists()
        state = json.loads((killed / "checkpoint-4" / "trainer_state.json").read_text())
        assert state["global_step"] == 4  # the rerun resumes from here (mixup_trainer/checkpoints.py)

    kill_and_rerun(command, full, killed, "checkpoint-4", before_rerun=killed_at_step_4)
    steps = [log for log in assert_bit_equal(full, killed) if "loss" in log]
    assert [log["step"] for log in steps] == list(range(1, 13)) and all("mixup_lambda" in log for log in steps)
    assert all(w.dtype == np.float32 for w in load_file(full / "model.safetensors").values())
