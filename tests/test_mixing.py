"""The mixing itself: plans, pair padding, hooks at each level against hand computations, targets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from testing_utils import make_tiny_config
from mixup_trainer import MixUpBertForSequenceClassification, MixUpPlan
from mixup_trainer.mixing import (
    align_for_mixing,
    draw_partners,
    draw_plan,
    mix_read_positions,
    mixup_per_example_loss,
    pad_for_mixing,
    read_positions,
    resolve_pad_token_id,
    soft_targets,
)

N_LAYERS = 2  # tiny BERT: levels 0 (embeddings), 1..2 (blocks), 3 (pooled [CLS])


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    # large initial weights so that outputs depend visibly on the inputs (BERT's 0.02 gives ~1e-5 logits)
    m = MixUpBertForSequenceClassification(make_tiny_config(tokenizer, initializer_range=0.5))
    m.train()  # dropout is 0 in tiny_config, so train mode is deterministic and hooks are live
    return m


@pytest.fixture(scope="module")
def batch(tokenizer):
    texts = ["a gorgeous, witty, seductive movie.", "bad", "it is a film of quiet power and grace", "meh .", "fun"]
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


def partners_of(batch_size, seed=0):
    return draw_partners(batch_size, np.random.default_rng(seed))


@pytest.mark.parametrize("batch_size", [1, 2, 5, 16, 17])
def test_partners_are_a_perfect_matching(batch_size):
    p = partners_of(batch_size, seed=batch_size)
    assert torch.equal(p[p], torch.arange(batch_size))  # p(p(i)) = i
    fixed = (p == torch.arange(batch_size)).sum().item()
    assert fixed == batch_size % 2  # only the odd row out is its own partner


def test_permutation_partners_are_uniform_permutations_not_matchings():
    rng = np.random.default_rng(0)
    draws = [draw_partners(8, rng, "permutation") for _ in range(2000)]
    for p in draws[:50]:
        assert sorted(p.tolist()) == list(range(8))
    involutions = sum(torch.equal(p[p], torch.arange(8)) for p in draws)
    assert involutions < 100  # 764 of 40,320 permutations of 8 are involutions (1.9%)
    fixed = np.mean([(p == torch.arange(8)).sum().item() for p in draws])
    assert abs(fixed - 1.0) < 0.1  # a uniform permutation has one fixed point on average
    # same generator state, same plan: a resumed run draws the same permutation
    a = draw_plan(8, 1.0, (0, 3), np.random.default_rng([1, 0, 5, 0]), "permutation")
    b = draw_plan(8, 1.0, (0, 3), np.random.default_rng([1, 0, 5, 0]), "permutation")
    assert torch.equal(a.partner, b.partner) and a.lam == b.lam
    with pytest.raises(ValueError, match="mixup_partners must be one of"):
        draw_partners(8, rng, "cyclic")


def test_plan_draws_lambda_from_beta_and_levels_from_the_eligible_set():
    rng = np.random.default_rng(0)
    plans = [draw_plan(8, 0.4, (0, 2, 3), rng) for _ in range(4000)]
    lams = np.array([p.lam for p in plans])
    assert {p.layer for p in plans} == {0, 2, 3}
    # Beta(0.4, 0.4): mean 0.5, variance ab/((a+b)^2 (a+b+1)) = 0.16 / (0.64 * 1.8) = 0.1389
    assert abs(lams.mean() - 0.5) < 0.02
    assert abs(lams.var() - 0.1389) < 0.01


def test_pair_padding_gives_each_pair_the_longer_length_token_and_one_mask(batch, tokenizer):
    partner = partners_of(5)
    sep = tokenizer.sep_token_id
    out = pad_for_mixing(batch, partner, "pair", sep)
    lengths = batch["attention_mask"].sum(1)
    for i in range(5):
        j = partner[i].item()
        longer = max(lengths[i], lengths[j]).item()
        assert out["attention_mask"][i].sum().item() == longer
        assert torch.equal(out["attention_mask"][i], out["attention_mask"][j])  # one shared mask
        # the original tokens are kept, the extension is [SEP], the rest is untouched padding
        n = lengths[i].item()
        assert torch.equal(out["input_ids"][i, :n], batch["input_ids"][i, :n])
        assert (out["input_ids"][i, n:longer] == sep).all()
        assert (out["input_ids"][i, longer:] == tokenizer.pad_token_id).all()
    assert torch.equal(out["token_type_ids"], batch["token_type_ids"])


def test_max_padding_attends_everything_and_none_is_untouched(batch, tokenizer):
    partner = partners_of(5)
    unused0 = resolve_pad_token_id(tokenizer, "unused0")
    out = pad_for_mixing(batch, partner, "max", unused0)
    assert out["attention_mask"].all()
    lengths = batch["attention_mask"].sum(1)
    for i in range(5):
        assert (out["input_ids"][i, lengths[i]:] == unused0).all()
    assert pad_for_mixing(batch, partner, "none", unused0) is batch


def test_pad_token_ids_come_from_the_tokenizer(tokenizer):
    assert resolve_pad_token_id(tokenizer, "sep") == tokenizer.convert_tokens_to_ids("[SEP]")
    assert resolve_pad_token_id(tokenizer, "pad") == tokenizer.convert_tokens_to_ids("[PAD]")
    assert resolve_pad_token_id(tokenizer, "unused0") == tokenizer.convert_tokens_to_ids("[unused0]")
    with pytest.raises(ValueError, match="one of"):
        resolve_pad_token_id(tokenizer, "cls")


def capture(model, level, store):
    """A hook registered after the mixing hook sees the (possibly mixed) state at `level`: the input
    of block 1 (0), the output of block k (1..n), the input of the classifier (n+1)."""
    blocks = model.bert.encoder.layer
    if level == 0:
        return blocks[0].register_forward_pre_hook(lambda m, a: store.append(a[0]))
    if level == N_LAYERS + 1:
        return model.classifier.register_forward_pre_hook(lambda m, a: store.append(a[0]))
    return blocks[level - 1].register_forward_hook(lambda m, a, out: store.append(out if torch.is_tensor(out) else out[0]))


def logits_with(model, inputs, plan):
    model.mixup_hooks.plan = plan
    try:
        return model(**inputs).logits
    finally:
        model.mixup_hooks.plan = None


@pytest.mark.parametrize("level", range(N_LAYERS + 2))
def test_lambda_one_reproduces_the_unmixed_forward(model, batch, tokenizer, level):
    partner = partners_of(5)
    padded = pad_for_mixing(batch, partner, "pair", tokenizer.sep_token_id) if level <= N_LAYERS else batch
    clean = logits_with(model, padded, None)
    mixed = logits_with(model, padded, MixUpPlan(partner, 1.0, level))
    torch.testing.assert_close(mixed, clean, rtol=0, atol=1e-6)
    # and a real λ changes the output, so the comparison above can fail
    assert not torch.allclose(logits_with(model, padded, MixUpPlan(partner, 0.3, level)), clean, atol=1e-4)


@pytest.mark.parametrize("level", range(N_LAYERS + 2))
@pytest.mark.parametrize("padding", ["pair", "none"])
def test_mixing_at_each_level_equals_a_hand_computation(model, batch, tokenizer, level, padding):
    partner, lam = partners_of(5, seed=level), 0.37
    inputs = pad_for_mixing(batch, partner, padding, tokenizer.sep_token_id) if level <= N_LAYERS else batch
    blocks = list(model.bert.encoder.layer)

    clean_out, mixed_out, block_kwargs = [], [], []
    h_mask = blocks[0].register_forward_pre_hook(lambda m, a, kw: block_kwargs.append((a, kw)), with_kwargs=True)
    h_clean = capture(model, level, clean_out)
    logits_with(model, inputs, None)
    h_clean.remove(), h_mask.remove()
    h_mixed = capture(model, level, mixed_out)
    logits = logits_with(model, inputs, MixUpPlan(partner, lam, level))
    h_mixed.remove()

    h = clean_out[0]
    expected = lam * h + (1 - lam) * h[partner]
    torch.testing.assert_close(mixed_out[0], expected, rtol=0, atol=1e-6)

    # continue by hand from the mixed level through the remaining blocks, the pooler and the head
    args, kwargs = block_kwargs[0]
    attention_mask = args[1] if len(args) > 1 else kwargs.get("attention_mask")
    with torch.no_grad():
        x = expected
        if level <= N_LAYERS:
            for block in blocks[level:]:
                x = block(x, attention_mask)
            x = model.bert.pooler(x)
        manual_logits = model.classifier(x)
    torch.testing.assert_close(logits, manual_logits, rtol=1e-5, atol=1e-6)


def test_permutation_pair_padding_makes_input_mixup_equal_each_pair_run_alone(model, batch, tokenizer):
    """Under a permutation, row i mixed at the input level must be what the paper defines: the pair
    (x_i, x_p(i)), both padded with [SEP] to the longer of the two, mixed and run alone."""
    sep, lam = tokenizer.sep_token_id, 0.37
    partner = torch.tensor([1, 2, 0, 4, 3])  # a 3-cycle and a swap: p(p(0)) = 2 != 0
    out = pad_for_mixing(batch, partner, "pair", sep)
    lengths = batch["attention_mask"].sum(1)
    mixed = logits_with(model, out, MixUpPlan(partner, lam, 0))
    for i in range(5):
        j = partner[i].item()
        assert out["attention_mask"][i].sum().item() == max(lengths[i], lengths[j]).item()
        pair = {k: v[[i, j]] for k, v in batch.items()}
        alone = logits_with(model, pad_for_mixing(pair, torch.tensor([1, 0]), "pair", sep),
                            MixUpPlan(torch.tensor([1, 0]), lam, 0))
        torch.testing.assert_close(mixed[i], alone[0], rtol=1e-5, atol=1e-6)


def test_eval_mode_and_no_plan_are_the_parent_model(model, batch):
    from transformers import BertForSequenceClassification

    parent = BertForSequenceClassification(model.config)
    parent.load_state_dict(model.state_dict())
    parent.train()
    torch.testing.assert_close(logits_with(model, batch, None), parent(**batch).logits, rtol=0, atol=0)
    model.eval()
    try:
        plan = MixUpPlan(partners_of(5), 0.3, 1)
        torch.testing.assert_close(logits_with(model, batch, plan), parent.eval()(**batch).logits, rtol=0, atol=0)
    finally:
        model.train()


def test_soft_targets_mix_one_hots_with_the_same_lambda():
    labels = torch.tensor([0, 2, 1, 2])
    plan = MixUpPlan(torch.tensor([1, 0, 3, 2]), 0.7, 0)
    expected = torch.tensor([[0.7, 0, 0.3], [0.3, 0, 0.7], [0, 0.7, 0.3], [0, 0.3, 0.7]])
    torch.testing.assert_close(soft_targets(labels, 3, plan), expected)
    torch.testing.assert_close(soft_targets(labels, 3, None), F.one_hot(labels, 3).float())


def test_label_smoothing_applies_before_mixing():
    labels = torch.tensor([0, 1])
    plan = MixUpPlan(torch.tensor([1, 0]), 0.75, 0)
    eps, c = 0.1, 4
    smooth = lambda y: [(1 - eps) * (k == y) + eps / c for k in range(c)]  # noqa: E731
    expected = torch.tensor([
        [0.75 * a + 0.25 * b for a, b in zip(smooth(0), smooth(1))],
        [0.75 * a + 0.25 * b for a, b in zip(smooth(1), smooth(0))],
    ])
    torch.testing.assert_close(soft_targets(labels, c, plan, eps), expected)


def test_soft_cross_entropy_equals_the_lambda_weighted_pair_of_losses():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    plan = MixUpPlan(partners_of(6), 0.62, 0)
    got = mixup_per_example_loss(logits, labels, plan, "single_label_classification")
    want = 0.62 * F.cross_entropy(logits, labels, reduction="none") + 0.38 * F.cross_entropy(
        logits, labels[plan.partner], reduction="none")
    torch.testing.assert_close(got, want)


def test_regression_mixes_float_targets_with_squared_error():
    preds, targets = torch.tensor([[1.0], [2.0], [0.5], [4.0]]), torch.tensor([3.0, 1.0, 2.0, 0.0])
    plan = MixUpPlan(torch.tensor([1, 0, 3, 2]), 0.25, 0)
    mixed = 0.25 * targets + 0.75 * targets[plan.partner]  # [1.5, 2.5, 0.5, 1.5]
    got = mixup_per_example_loss(preds, targets, plan, "regression")
    torch.testing.assert_close(got, (preds.squeeze(1) - mixed) ** 2)
    torch.testing.assert_close(got, torch.tensor([0.25, 0.25, 0.0, 6.25]))


def test_labels_outside_the_classes_are_an_error():
    with pytest.raises(ValueError, match="class labels in 0..1"):
        soft_targets(torch.tensor([0, 2]), 2, None)
    with pytest.raises(ValueError, match="class labels"):
        soft_targets(torch.tensor([0, -100]), 2, None)


@pytest.mark.parametrize("level", [0, 1, N_LAYERS + 1])
def test_gradient_checkpointing_mixes_as_the_plain_forward(tokenizer, batch, level):
    """Checkpointed blocks re-run in backward; the plan must still be in force then."""
    plan = MixUpPlan(partners_of(5), 0.3, level)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        m = MixUpBertForSequenceClassification(make_tiny_config(tokenizer, initializer_range=0.5)).train()
        if checkpointing:
            m.gradient_checkpointing_enable()
        m.mixup_hooks.plan = plan
        m(**batch).logits.sum().backward()
        m.mixup_hooks.plan = None
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-6)


def test_multi_label_mixes_multi_hot_targets_under_bce():
    torch.manual_seed(1)
    logits, labels = torch.randn(4, 3), torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    plan = MixUpPlan(torch.tensor([2, 3, 0, 1]), 0.8, 0)
    mixed = 0.8 * labels + 0.2 * labels[plan.partner]
    want = F.binary_cross_entropy_with_logits(logits, mixed, reduction="none").mean(dim=1)
    torch.testing.assert_close(mixup_per_example_loss(logits, labels, plan, "multi_label_classification"), want)


# ------------------------------------------------------------- decoders: read positions, alignment
PAD, FILL = 0, 9


def decoder_batch(rows, side="right"):
    """Token rows (no id 0 inside) padded with PAD on one side, with their attention mask."""
    width = max(map(len, rows))
    gap = [[PAD] * (width - len(r)) for r in rows]
    ids = [g + r if side == "left" else r + g for r, g in zip(rows, gap)]
    return {"input_ids": torch.tensor(ids), "attention_mask": (torch.tensor(ids) != PAD).long()}


ROWS = [[5, 6, 7], [8], [1, 2, 3, 4], [3, 3]]
MATCH = torch.tensor([1, 0, 3, 2])


def test_read_positions_are_the_last_non_pad_token_on_either_side():
    assert read_positions(decoder_batch(ROWS)["input_ids"], PAD).tolist() == [2, 0, 3, 1]
    assert read_positions(decoder_batch(ROWS, "left")["input_ids"], PAD).tolist() == [3, 3, 3, 3]
    assert read_positions(decoder_batch(ROWS)["input_ids"], None).tolist() == [3, 3, 3, 3]


def test_mixing_the_read_positions_takes_each_row_where_it_is_read():
    hidden = torch.arange(12.0).view(2, 3, 2)  # rows 0, 1; positions 0..2
    out = mix_read_positions(hidden, torch.tensor([0, 2]), MixUpPlan(torch.tensor([1, 0]), 0.25, 3))
    expected = hidden.clone()
    expected[0, 0] = 0.25 * hidden[0, 0] + 0.75 * hidden[1, 2]  # row 0 read at 0, its partner at 2
    expected[1, 2] = 0.25 * hidden[1, 2] + 0.75 * hidden[0, 0]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.parametrize("side,mode,ids,mask", [
    # pairs (0, 1) and (2, 3): the shorter row ends where its partner ends, filled back to its length
    ("right", "pair", [[5, 6, 7, 0], [9, 9, 8, 0], [1, 2, 3, 4], [9, 9, 3, 3]],
     [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]),
    ("left", "pair", [[0, 5, 6, 7], [0, 9, 9, 8], [1, 2, 3, 4], [9, 9, 3, 3]],
     [[0, 1, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]),
    # max: every row ends at the last column and attends all of it
    ("right", "max", [[9, 5, 6, 7], [9, 9, 9, 8], [1, 2, 3, 4], [9, 9, 3, 3]], [[1] * 4] * 4),
    # none: only moved, each row keeps its own length
    ("right", "none", [[5, 6, 7, 0], [0, 0, 8, 0], [1, 2, 3, 4], [0, 0, 3, 3]],
     [[1, 1, 1, 0], [0, 0, 1, 0], [1, 1, 1, 1], [0, 0, 1, 1]]),
    ("left", "none", [[0, 5, 6, 7], [0, 0, 0, 8], [1, 2, 3, 4], [0, 0, 3, 3]],
     [[0, 1, 1, 1], [0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 1, 1]]),
])
def test_alignment_puts_each_pair_at_one_read_position(side, mode, ids, mask):
    batch = decoder_batch(ROWS, side)
    batch["token_type_ids"] = batch["input_ids"] % 2  # moves with its token
    out = align_for_mixing(batch, MATCH, mode, FILL, PAD)
    assert out["input_ids"].tolist() == ids and out["attention_mask"].tolist() == mask
    read = read_positions(out["input_ids"], PAD)
    assert torch.equal(read, read[MATCH])  # both rows of a pair read at one column
    token = (out["input_ids"] != PAD) & (out["input_ids"] != FILL)
    assert torch.equal(out["token_type_ids"], torch.where(token, out["input_ids"] % 2, 0))


def test_alignment_drops_what_follows_the_read_position():
    """pad = eos with an eos appended: the model reads the token before it; so does the alignment,
    and the trailing eos (which a causal model never lets the read position see) goes."""
    batch = {"input_ids": torch.tensor([[5, 6, PAD, PAD], [7, PAD, PAD, PAD]]),
             "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])}
    out = align_for_mixing(batch, torch.tensor([1, 0]), "pair", FILL, PAD)
    assert out["input_ids"].tolist() == [[5, 6, 0, 0], [9, 7, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]


def test_alignment_under_a_permutation_shares_one_read_position_and_writes_fillers_for_every_user():
    batch = decoder_batch([[5, 6, 7], [8], [1, 2]])
    partner = torch.tensor([1, 2, 0])  # a 3-cycle: row 1 is row 0's partner, row 2 is row 1's
    out = align_for_mixing(batch, partner, "pair", FILL, PAD)
    # row 1 attends its own pair (with row 2: length 2) but carries fillers for row 0 (length 3)
    assert out["input_ids"].tolist() == [[5, 6, 7], [9, 9, 8], [9, 1, 2]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [0, 1, 1], [1, 1, 1]]


def test_alignment_refuses_what_it_cannot_place():
    batch = decoder_batch(ROWS)
    with pytest.raises(ValueError, match="cannot move `position_ids`"):
        align_for_mixing({**batch, "position_ids": batch["input_ids"]}, MATCH, "pair", FILL, PAD)
    holes = {**batch, "attention_mask": torch.tensor([[1, 0, 1, 0]] * 4)}
    with pytest.raises(ValueError, match="holes in the attention_mask"):
        align_for_mixing(holes, MATCH, "pair", FILL, PAD)
    with pytest.raises(ValueError, match="model.config.pad_token_id = tokenizer.pad_token_id"):
        align_for_mixing(batch, MATCH, "pair", FILL, 7)  # a pad id that is not the padding: reads padding
    with pytest.raises(ValueError, match="needs a filler"):
        align_for_mixing(batch, MATCH, "pair", None, PAD)
    only_pad = decoder_batch([[5, 6], [PAD], [7], [PAD, PAD]])  # pad = eos: texts that are eos alone
    with pytest.raises(ValueError, match="rows 1, 3 of this batch have no token other than the pad token"):
        align_for_mixing(only_pad, MATCH, "pair", FILL, PAD)
