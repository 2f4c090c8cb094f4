"""The MixUp variants made for calibration, on tiny random encoders and decoders, both padding sides:
RegMixup (``mixup_objective="regmix"``) and the similarity kernel (``mixup_similarity_kernel``).

Each check is against a computation written here by hand: RegMixup's loss against two separate
forward passes (the clean batch, and plain MixUp with the same plan); the kernel's λ against the
formula evaluated with ``scipy.stats.beta.cdf`` on distances taken from hidden states captured in
a clean forward pass; and the kernel-off path against the scalar mixing of the paper, bit for bit."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from test_decoders import DECODERS, N, TARGETS, TEXTS, build, decoder_tokenizer, encode, encoder_tokenizer  # noqa: F401
from test_decoders import read_by_hand, run_with_site
from testing_utils import make_tiny_config
from mixup_trainer import MixUpPlan, MixUpTrainer, MixUpTrainingArguments
from mixup_trainer.mixing import SimilarityKernel, align_for_mixing, mixup_per_example_loss, pad_for_mixing

CASES = [("bert", "right"), ("llama", "right"), ("llama", "left"), ("gpt2", "left")]
LEVELS = [0, 2, N + 1]


def setup(family, side, level, tmp_path, decoder_tokenizer, encoder_tokenizer, **mixup):
    """A model, its tokenizer, a batch, and a trainer mixing at ``level`` that records its plans."""
    tokenizer = decoder_tokenizer if family in DECODERS else encoder_tokenizer
    model = build(family, len(tokenizer), tokenizer.pad_token_id)
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", mixup_layers=str(level),
                                  report_to=[], use_cpu=True, save_strategy="no", **mixup)
    trainer = MixUpTrainer(model=model, args=args, processing_class=tokenizer)
    drawn, draw = [], trainer._draw_plan
    trainer._draw_plan = lambda batch_size: drawn.append(draw(batch_size)) or drawn[-1]
    return model, tokenizer, encode(tokenizer, side), trainer, drawn


def read_as(trainer, batch, partner, level):
    """The batch as MixUp reads it at ``level`` under these partners (pair padding / alignment)."""
    if level > N:
        return batch
    if trainer.mixup_read_pad_token_id is not None:
        return align_for_mixing(batch, partner, "pair", trainer.mixup_pad_token_id, trainer.mixup_read_pad_token_id)
    return pad_for_mixing(batch, partner, "pair", trainer.mixup_pad_token_id)


def forward_with(model, trainer, inputs, plan):
    hooks = trainer.mixup_hooks
    hooks.plan = plan
    try:
        with torch.no_grad():
            return model(**inputs).logits
    finally:
        hooks.plan = None


def soft_ce(logits, plan):
    return mixup_per_example_loss(logits, TARGETS, plan, "single_label_classification")


def loss_of(trainer, model, batch):
    """The trainer's training loss and outputs on ``batch``, and the logits of every row it forwarded."""
    seen = []
    handle = model.register_forward_hook(lambda m, a, out: seen.append(out.logits.detach().clone()))
    try:
        with torch.no_grad():
            loss, outputs = trainer.compute_loss(model, {**batch, "labels": TARGETS}, return_outputs=True)
    finally:
        handle.remove()
        plan = trainer.mixup_hooks.applied_plan
        trainer.mixup_hooks.plan = None  # as training_step does after backward
    return loss, outputs, seen[0], plan


# ------------------------------------------------------------------------------------------- RegMixup
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("family,side", CASES)
def test_regmix_is_clean_ce_plus_eta_times_the_mixup_loss_of_two_separate_passes(
        family, side, level, tmp_path, decoder_tokenizer, encoder_tokenizer):
    eta = 0.7
    model, _, batch, trainer, drawn = setup(family, side, level, tmp_path, decoder_tokenizer, encoder_tokenizer,
                                            mixup_objective="regmix", mixup_reg_weight=eta, mixup_alpha=2.0)
    loss, outputs, all_rows, _ = loss_of(trainer, model, batch)
    plan = drawn[-1]  # the batch's own plan (B rows): the 2B-row plan is built from it
    assert len(plan.partner) == len(TEXTS) and all_rows.shape[0] == 2 * len(TEXTS)
    with torch.no_grad():
        clean = model(**batch).logits
    # the clean half is the model's own forward pass of the batch, and is what compute_loss returns
    torch.testing.assert_close(outputs.logits, clean, rtol=0, atol=2e-6)
    torch.testing.assert_close(all_rows[: len(TEXTS)], clean, rtol=0, atol=2e-6)
    mixed = forward_with(model, trainer, read_as(trainer, batch, plan.partner, level), plan)
    torch.testing.assert_close(all_rows[len(TEXTS):], mixed, rtol=0, atol=2e-6)
    expected = (F.cross_entropy(clean, TARGETS, reduction="none") + eta * soft_ce(mixed, plan)).mean()
    torch.testing.assert_close(loss, expected, rtol=0, atol=2e-6)
    assert 0.05 < plan.lam < 0.95 and not torch.allclose(mixed, clean, atol=1e-3)  # the mixed term is mixed


@pytest.mark.parametrize("family,side,mixup", [
    ("bert", "right", dict(mixup_padding="max")),
    ("llama", "right", dict(mixup_padding="max")),
    ("llama", "right", dict(mixup_partners="permutation", mixup_padding="none")),
    ("gpt2", "left", dict(mixup_partners="permutation", mixup_padding="max"))])
def test_regmix_clean_half_is_the_batch_as_given_whatever_the_padding_and_partners(
        family, side, mixup, tmp_path, decoder_tokenizer, encoder_tokenizer):
    """Max padding and permutations re-pad rows that mix with nobody (an encoder's filler to the batch's
    length; a decoder row moved to end at the batch's last read position): RegMixup's clean rows are
    the batch as given all the same, and only the mixed copy is re-padded."""
    model, _, batch, trainer, drawn = setup(family, side, 2, tmp_path, decoder_tokenizer, encoder_tokenizer,
                                            mixup_objective="regmix", mixup_alpha=2.0, **mixup)
    _, outputs, all_rows, _ = loss_of(trainer, model, batch)
    with torch.no_grad():
        clean = model(**batch).logits
    torch.testing.assert_close(outputs.logits, clean, rtol=0, atol=2e-6)
    plan = drawn[-1]
    mixed = forward_with(model, trainer, trainer._inputs_to_mix(batch, plan), plan)
    torch.testing.assert_close(all_rows[len(TEXTS):], mixed, rtol=0, atol=2e-6)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("family,side", CASES)
def test_regmix_with_alpha_to_zero_keeps_or_swaps_whole_rows(family, side, level, tmp_path, decoder_tokenizer,
                                                            encoder_tokenizer):
    model, _, batch, trainer, drawn = setup(family, side, level, tmp_path, decoder_tokenizer, encoder_tokenizer,
                                            mixup_objective="regmix", mixup_alpha=1e-3)
    swaps = set()
    for _ in range(6):
        loss, _, all_rows, _ = loss_of(trainer, model, batch)
        plan = drawn[-1]
        with torch.no_grad():
            clean = model(**read_as(trainer, batch, plan.partner, level)).logits
        swapped = plan.lam < 0.5
        assert min(plan.lam, 1 - plan.lam) < 1e-6
        expected = clean[plan.partner] if swapped else clean
        torch.testing.assert_close(all_rows[len(TEXTS):], expected, rtol=0, atol=2e-5)
        mixed_targets = TARGETS[plan.partner] if swapped else TARGETS
        expected_loss = (F.cross_entropy(all_rows[: len(TEXTS)], TARGETS, reduction="none")
                         + F.cross_entropy(expected, mixed_targets, reduction="none")).mean()
        torch.testing.assert_close(loss, expected_loss, rtol=0, atol=2e-5)
        swaps.add(swapped)
    assert swaps == {True, False}  # both cases were seen, so either check could fail


def test_regmix_refuses_a_weight_without_its_objective_and_defaults_to_a_large_alpha(tmp_path):
    with pytest.raises(ValueError, match="mixup_reg_weight=0.5 weighs RegMixup's mixed term"):
        MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="cls", mixup_reg_weight=0.5)
    with pytest.raises(ValueError, match="nothing is mixed"):
        MixUpTrainingArguments(output_dir=str(tmp_path), mixup_objective="regmix")
    regmix = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="cls", mixup_objective="regmix")
    plain = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="cls")
    assert (regmix.alpha, plain.alpha, regmix.mixup_alpha) == (10.0, 1.0, None)
    assert MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="cls", mixup_objective="regmix",
                                  mixup_alpha=0.4).alpha == 0.4


# ------------------------------------------------------------------------------ the similarity kernel
def kernel_by_hand(lam, distance, partner, tau_max=1.0, tau_std=0.5):
    """λ' of each row, written from the formula: d̃ = d / mean over paired rows, K = τ_max exp(−(d̃ − 1) /
    (2 τ_std²)), τ = 1/K, λ' = CDF of Beta(τ, τ) at λ; own-partner rows keep λ; no scale: no warping."""
    out = []
    paired = [i for i in range(len(partner)) if partner[i] != i]
    scale = np.mean([distance[i] for i in paired]) if paired else 0.0
    for i in range(len(partner)):
        if partner[i] == i or scale == 0:
            out.append(lam[i])
            continue
        tau = 1.0 / (tau_max * math.exp(-(distance[i] / scale - 1.0) / (2 * tau_std ** 2)))
        out.append(stats.beta.cdf(lam[i], min(max(tau, 1e-6), 1e6), min(max(tau, 1e-6), 1e6)))
    return np.array(out)


def test_kernel_warps_as_the_formula_on_a_fixed_batch():
    partner = torch.tensor([3, 2, 1, 0, 4])  # rows 0-3 in two pairs, row 4 alone
    distance = torch.tensor([0.5, 3.0, 3.0, 0.5, 0.0], dtype=torch.float64)  # mean over paired rows: 1.75
    lam = torch.full((5,), 0.3, dtype=torch.float64)
    for tau_max, tau_std in ((1.0, 0.5), (2.0, 0.3)):
        got = SimilarityKernel(tau_max, tau_std).warp(lam, distance, partner)
        expected = kernel_by_hand(lam.tolist(), distance.tolist(), partner.tolist(), tau_max, tau_std)
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)
    got = SimilarityKernel().warp(lam, distance, partner)
    assert got[0] == got[3] and got[1] == got[2] and got[4] == 0.3
    assert 0.3 < got[0] < 0.5 and got[1] < 0.3  # the close pair mixes more, the distant one less
    # at the batch's mean distance, with τ_max = 1, λ is unchanged (τ = 1 is the identity)
    at_mean = SimilarityKernel().warp(lam[:2], torch.tensor([1.0, 1.0], dtype=torch.float64), torch.tensor([1, 0]))
    np.testing.assert_allclose(at_mean.numpy(), [0.3, 0.3], rtol=0, atol=1e-12)
    # no distance: no scale, the unwarped λ; very distant: λ' is 0 (a step at 1/2), not NaN
    assert torch.equal(SimilarityKernel().warp(lam[:2], torch.zeros(2, dtype=torch.float64), torch.tensor([1, 0])),
                       lam[:2])
    pairs = torch.arange(20) ^ 1  # (0, 1), (2, 3) ...: nine pairs at distance 0 and one at 10x the mean
    far = SimilarityKernel().warp(torch.full((20,), 0.3, dtype=torch.float64),
                                  torch.tensor([0.0] * 18 + [1.0] * 2, dtype=torch.float64), pairs)
    assert far[18] == far[19] == 0.0 and torch.isfinite(far).all()  # τ = e^18 held to 1e6: a step at 1/2
    np.testing.assert_allclose(far[:18].numpy(), stats.beta.cdf(0.3, math.exp(-2), math.exp(-2)), rtol=0, atol=1e-12)


def distances_by_hand(model, family, level, inputs, partner):
    """Squared distances between each row and its partner at ``level`` from a clean forward pass:
    token levels averaged over the positions both rows attend; the head level at each row's read
    position (decoders) or the pooled vector (encoders)."""
    with torch.no_grad():
        _, hidden = run_with_site(model, inputs, family, level)
    hidden = hidden.double()
    p = partner.tolist()
    out = []
    for i in range(len(p)):
        if level == N + 1 and family in DECODERS:
            read = read_by_hand(inputs)
            out.append(float(((hidden[i, read[i]] - hidden[p[i], read[p[i]]]) ** 2).sum()))
        elif hidden.dim() == 2:
            out.append(float(((hidden[i] - hidden[p[i]]) ** 2).sum()))
        else:
            both = (inputs["attention_mask"][i] * inputs["attention_mask"][p[i]]).bool()
            out.append(float(((hidden[i] - hidden[p[i]]) ** 2).sum(-1)[both].mean()))
    return out


@pytest.mark.parametrize("objective", ["mix", "regmix"])
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("family,side", CASES)
def test_kernel_lambda_is_the_formula_on_the_distances_at_the_mixing_level(
        family, side, level, objective, tmp_path, decoder_tokenizer, encoder_tokenizer):
    model, _, batch, trainer, drawn = setup(family, side, level, tmp_path, decoder_tokenizer, encoder_tokenizer,
                                            mixup_similarity_kernel=True, mixup_objective=objective, mixup_alpha=1.0)
    loss, _, all_rows, applied = loss_of(trainer, model, batch)
    plan, b = drawn[-1], len(TEXTS)
    inputs = read_as(trainer, batch, plan.partner, level)
    distance = distances_by_hand(model, family, level, inputs, plan.partner)
    expected = kernel_by_hand([plan.lam] * b, distance, plan.partner.tolist())
    row_lam = applied.row_lam if objective == "mix" else applied.row_lam[b:]
    np.testing.assert_allclose(row_lam.numpy(), expected, rtol=0, atol=1e-5)
    assert torch.equal(row_lam, row_lam[plan.partner])  # one λ per pair, so one forward pass stays exact
    assert (row_lam - plan.lam).abs().max() > 1e-3  # the kernel did warp
    if objective == "regmix":
        assert torch.equal(applied.row_lam[:b], torch.ones(b, dtype=torch.float64))  # the clean rows stay clean
    # the training log says how far the kernel moved λ: the mean |λ' − λ| over the rows with a partner
    paired = plan.partner != torch.arange(b)
    trainer.log({"loss": float(loss)})
    logged = trainer.state.log_history[-1]
    assert logged["mixup_kernel_shift"] == round(float(np.abs(expected - plan.lam)[paired.numpy()].mean()), 4)
    assert logged["mixup_kernel_shift"] > 0
    # the warped λ mixes both the hidden states and the targets: a plain forward pass with those weights
    warped = MixUpPlan(plan.partner, plan.lam, plan.layer, row_lam=torch.from_numpy(expected))
    mixed = forward_with(model, trainer, inputs, warped)
    torch.testing.assert_close(all_rows[-b:], mixed, rtol=0, atol=2e-5)
    mixed_loss = soft_ce(mixed, warped)
    if objective == "regmix":
        mixed_loss = F.cross_entropy(all_rows[:b], TARGETS, reduction="none") + mixed_loss
    torch.testing.assert_close(loss, mixed_loss.mean(), rtol=0, atol=2e-5)


@pytest.mark.parametrize("family,side", CASES)
def test_kernel_through_the_hooks_alone_reads_the_mask_of_the_forward_call(family, side, tmp_path, decoder_tokenizer,
                                                                         encoder_tokenizer):
    """A custom loop that sets a kernel plan on the hooks and calls the model gets the trainer's λ: the
    hooks take the attention mask from the forward call itself, not from the trainer."""
    model, _, batch, trainer, drawn = setup(family, side, 2, tmp_path, decoder_tokenizer, encoder_tokenizer,
                                            mixup_similarity_kernel=True)
    _, _, _, applied = loss_of(trainer, model, batch)
    hooks = trainer.mixup_hooks
    hooks.plan = drawn[-1]
    try:
        with torch.no_grad():
            model(**read_as(trainer, batch, drawn[-1].partner, 2))
        alone = hooks.applied_plan.row_lam
    finally:
        hooks.plan = None
    assert torch.equal(alone, applied.row_lam)
    assert batch["attention_mask"].min() == 0  # padded rows: averaging over every position would differ


@pytest.mark.parametrize("family,side", CASES)
def test_kernel_leaves_lambda_unwarped_on_a_batch_of_identical_rows(family, side, tmp_path, decoder_tokenizer,
                                                                   encoder_tokenizer):
    texts = [TEXTS[0]] * len(TEXTS)
    model, tokenizer, _, trainer, drawn = setup(family, side, 2, tmp_path, decoder_tokenizer, encoder_tokenizer,
                                                mixup_similarity_kernel=True)
    _, _, _, applied = loss_of(trainer, model, encode(tokenizer, side, texts))
    assert torch.equal(applied.row_lam, torch.full((len(texts),), drawn[-1].lam, dtype=torch.float64))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("family,side", CASES)
def test_kernel_off_is_the_papers_scalar_mixup_bit_for_bit(family, side, level, tmp_path, decoder_tokenizer,
                                                          encoder_tokenizer):
    model, _, batch, trainer, drawn = setup(family, side, level, tmp_path, decoder_tokenizer, encoder_tokenizer,
                                            mixup_alpha=1.0)
    loss, _, all_rows, applied = loss_of(trainer, model, batch)
    plan = drawn[-1]
    assert applied.row_lam is None and applied.kernel is None and isinstance(plan.lam, float)
    trainer.log({"loss": float(loss)})
    assert "mixup_lambda" in trainer.state.log_history[-1] and "mixup_kernel_shift" not in trainer.state.log_history[-1]
    # the paper's mixing written out: λ · h + (1 − λ) · h[p] with the Python float λ, then soft-label CE
    mixed = forward_with(model, trainer, read_as(trainer, batch, plan.partner, level), MixUpPlan(plan.partner, plan.lam, level))
    assert torch.equal(all_rows, mixed)
    targets = plan.lam * F.one_hot(TARGETS, 3).float() + (1.0 - plan.lam) * F.one_hot(TARGETS[plan.partner], 3).float()
    assert torch.equal(loss, F.cross_entropy(mixed, targets, reduction="none").mean())


@pytest.mark.parametrize("side", ["right", "left"])
def test_regmix_with_the_kernel_trains_a_lora_decoder_and_mixes_through_the_adapter(side, decoder_tokenizer, tmp_path):
    """LoRA on a decoder: the clean half through the adapter is the PEFT model's own forward pass, and the
    adapter and the head's trained copy are what training changes."""
    from peft import LoraConfig, get_peft_model

    from test_decoders import sst2_rows

    base = build("llama", len(decoder_tokenizer), decoder_tokenizer.pad_token_id, num_labels=3)
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", mixup_objective="regmix",
                                  mixup_similarity_kernel=True, per_device_train_batch_size=6, max_steps=3,
                                  learning_rate=1e-2, report_to=[], save_strategy="no", use_cpu=True, logging_steps=1)
    decoder_tokenizer.padding_side = side
    try:
        trainer = MixUpTrainer(model=model, args=args, train_dataset=sst2_rows(decoder_tokenizer),
                               processing_class=decoder_tokenizer)
        before = {k: v.clone() for k, v in model.named_parameters() if v.requires_grad}
        assert math.isfinite(trainer.train().training_loss)
    finally:
        decoder_tokenizer.padding_side = "right"
    assert all(not torch.equal(before[k], v) for k, v in model.named_parameters() if v.requires_grad)
    model.train()
    batch = encode(decoder_tokenizer, side)
    loss, outputs, all_rows, applied = loss_of(trainer, model, batch)
    with torch.no_grad():
        clean = model(**batch).logits
    torch.testing.assert_close(outputs.logits, clean, rtol=0, atol=2e-6)
    assert applied.row_lam is not None and torch.equal(applied.row_lam[len(TEXTS):][applied.partner[len(TEXTS):] - len(TEXTS)],
                                                       applied.row_lam[len(TEXTS):])


# ------------------------------------------------------------------------------------- exact resume
@pytest.mark.parametrize("variant", [dict(mixup_objective="regmix"), dict(mixup_similarity_kernel=True),
                                     dict(mixup_objective="regmix", mixup_similarity_kernel=True)],
                         ids=["regmix", "kernel", "regmix+kernel"])
def test_a_resumed_run_is_bit_equal_to_the_uninterrupted_one(variant, tmp_path, tokenizer, sst2_small):
    config = make_tiny_config(tokenizer, dropout=0.1)
    kw = dict(per_device_train_batch_size=8, max_steps=6, seed=11, mixup_method="manifold", save_strategy="steps",
              save_steps=3, report_to=[], logging_steps=1, disable_tqdm=True, use_cpu=True, learning_rate=1e-3,
              **variant)

    def trainer_for(folder, seed):
        from mixup_trainer import MixUpBertForSequenceClassification

        torch.manual_seed(seed)
        args = MixUpTrainingArguments(output_dir=str(folder), **kw)
        return MixUpTrainer(model=MixUpBertForSequenceClassification(config), args=args, train_dataset=sst2_small,
                            processing_class=tokenizer)

    full = trainer_for(tmp_path / "full", 0)
    full.train()
    resumed = trainer_for(tmp_path / "full", 99)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-3"))
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    logged = lambda t: [(h["loss"], h["mixup_lambda"]) for h in t.state.log_history if "loss" in h][-3:]  # noqa: E731
    assert logged(resumed) == logged(full)


def test_regmix_under_torch_compile_trains_as_eager(tmp_path, tokenizer, sst2_small):
    """Compiled, every level mixes with a per-row weight tensor (λ at the drawn level, 1 elsewhere):
    the clean half stays exact and the losses are eager's."""
    from mixup_trainer import MixUpBertForSequenceClassification

    config = make_tiny_config(tokenizer)
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        args = MixUpTrainingArguments(output_dir=str(tmp_path / str(compiled)), mixup_method="manifold",
                                      mixup_objective="regmix", per_device_train_batch_size=8, max_steps=4,
                                      logging_steps=1, report_to=[], use_cpu=True, save_strategy="no", seed=3,
                                      torch_compile=compiled, torch_compile_backend="aot_eager" if compiled else None)
        trainer = MixUpTrainer(model=MixUpBertForSequenceClassification(config), args=args, train_dataset=sst2_small,
                               processing_class=tokenizer)
        trainer.train()
        losses[compiled] = [(h["loss"], h["mixup_layer"]) for h in trainer.state.log_history if "loss" in h]
    assert [level for _, level in losses[True]] == [level for _, level in losses[False]]
    np.testing.assert_allclose([loss for loss, _ in losses[True]], [loss for loss, _ in losses[False]], rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="a compiled graph cannot hold"):
        MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="cls", mixup_similarity_kernel=True,
                               torch_compile=True)


@pytest.mark.parametrize("level", [1, 2])
def test_kernel_under_gradient_checkpointing_mixes_as_the_plain_forward(tokenizer, level, tmp_path):
    """Checkpointed blocks re-run in backward with the plan still in force: the same kernel λ, and the
    gradients of the plain forward, RegMixup's 2B rows included."""
    from mixup_trainer import MixUpBertForSequenceClassification

    batch = encode(tokenizer, "right")
    grads, lams = [], []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = MixUpBertForSequenceClassification(make_tiny_config(tokenizer, initializer_range=0.5,
                                                                    num_hidden_layers=2, num_labels=3)).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", mixup_layers=str(level),
                                      mixup_objective="regmix", mixup_similarity_kernel=True, report_to=[],
                                      use_cpu=True, save_strategy="no")
        trainer = MixUpTrainer(model=model, args=args, processing_class=tokenizer)
        trainer.compute_loss(model, {**batch, "labels": TARGETS}).backward()
        lams.append(trainer.mixup_hooks.applied_plan.row_lam)
        trainer.mixup_hooks.plan = None
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.equal(lams[0], lams[1]) and (lams[0][len(TEXTS):] != lams[0][len(TEXTS):].max()).any()
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-6)
