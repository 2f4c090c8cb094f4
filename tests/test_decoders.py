"""MixUp on decoder classifiers (Llama, Mistral, Qwen2, Qwen3, Gemma, Phi-3, GPT-2, GPT-NeoX) on tiny
random configs and a GPT-2-style tokenizer (no separator, pad = eos), right and left padding.

The same four properties as the encoders (tests/test_families.py): the levels found equal a
hand-written table; λ = 1 is the clean forward; mixing at every level equals λh + (1−λ)h[p]
captured there and continued by the model from a hand-placed replacement; a training step is
finite. Plus the black-box check through ``MixUpTrainer.compute_loss``: with λ = 0 every row's
loss is the partner's clean loss on its partner's label (rows and targets swapped), with λ = 1 its
own, for decoders and for BERT/RoBERTa.

"Clean" for levels 0..n means the rows as the model reads them after pair alignment, built here
by hand: each pair ends at one column, the longer row where the tokenizer put it, the shorter one
ending there too with the filler before its first token back to the longer row's length (encoders:
after its last token). The longer row of every pair is therefore unchanged, which is checked too.
"""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from testing_utils import read_sst2
from mixup_trainer import MixUpPlan, MixUpTrainer, MixUpTrainingArguments
from mixup_trainer.hooks import MixUpHooks
from mixup_trainer.mixing import align_for_mixing, draw_partners, resolve_pad_token_id

H, N, LABELS = 32, 3, 3
DECODER_LIKE = dict(hidden_size=H, num_hidden_layers=N, num_attention_heads=2, num_key_value_heads=1,
                    intermediate_size=37, max_position_embeddings=64, initializer_range=0.3, num_labels=LABELS)
GPT_LIKE = dict(n_embd=H, n_layer=N, n_head=2, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)

# family: (extra config, path of the decoder blocks, path of the head) — from each modeling file.
DECODERS = {
    "llama": ({}, "model.layers", "score"),
    "mistral": ({}, "model.layers", "score"),
    "qwen2": ({}, "model.layers", "score"),
    "qwen3": ({"head_dim": 16}, "model.layers", "score"),
    "gemma": ({"head_dim": 16}, "model.layers", "score"),
    "phi3": ({}, "model.layers", "score"),
    "gpt2": (GPT_LIKE, "transformer.h", "score"),
    "gpt_neox": ({"hidden_dropout": 0.0, "attention_dropout": 0.0}, "gpt_neox.layers", "score"),
}
ENCODERS = {"bert": ({}, "bert.encoder.layer", "classifier"),
            "roberta": ({"pad_token_id": 1}, "roberta.encoder.layer", "classifier.out_proj")}
ENCODER_LIKE = dict(hidden_size=H, num_hidden_layers=N, num_attention_heads=2, intermediate_size=37,
                    max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                    initializer_range=0.3, num_labels=LABELS)

TEXTS = ["a gorgeous, witty, seductive movie.", "bad", "it is a film of quiet power and grace", "meh .", "fun",
         "the film was not very good"]
TARGETS = torch.tensor([0, 2, 1, 1, 0, 2])
EOS = "<|endoftext|>"


@pytest.fixture(scope="module")
def decoder_tokenizer():
    """GPT-2 style: no bos/sep/cls, eos doubles as pad (id 0), word-level over real SST-2 words."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    split = pre_tokenizers.Whitespace()
    texts = read_sst2("train", limit=64)[0] + TEXTS
    words = sorted({w for t in texts for w, _ in split.pre_tokenize_str(t.lower())})
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate([EOS, "<unk>", *words])}, unk_token="<unk>"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), split
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, unk_token="<unk>")


def build(family: str, vocab_size: int, pad_token_id: int, **overrides) -> nn.Module:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if family in ENCODERS:
        extra, base = ENCODERS[family][0], ENCODER_LIKE
    else:
        extra, base = DECODERS[family][0], {**DECODER_LIKE, "pad_token_id": pad_token_id,
                                            "bos_token_id": pad_token_id, "eos_token_id": pad_token_id}
    config = AutoConfig.for_model(family, **{**base, "vocab_size": vocab_size, **extra, **overrides})
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    return model.train()  # no dropout: train mode is deterministic and the hooks are live


def encode(tokenizer, side: str, texts=TEXTS) -> dict:
    enc = tokenizer(texts, padding=True, padding_side=side, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def aligned_by_hand(tokenizer, partner, filler: int, side: str, decoder: bool, texts=TEXTS) -> dict:
    """Pair padding written out row by row: both rows of a pair get the longer row's length;
    decoders end both at one column and fill before the shorter row, encoders fill after it."""
    rows = [tokenizer(t)["input_ids"] for t in texts]
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    ids, mask = [], []
    for i, row in enumerate(rows):
        span = max(len(row), len(rows[partner[i]]))
        fill = [filler] * (span - len(row))
        tokens = fill + row if decoder else row + fill
        gap = [pad] * (width - span)
        ids.append(gap + tokens if side == "left" else tokens + gap)
        mask.append([0] * len(gap) + [1] * span if side == "left" else [1] * span + [0] * len(gap))
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


def read_by_hand(inputs) -> torch.Tensor:
    """Where a decoder reads each row of these batches: its last attended column (no row here ends
    with the pad token)."""
    mask = inputs["attention_mask"]
    return mask.shape[1] - 1 - mask.flip(1).argmax(1)


def level_site(model, family, level):
    _, blocks_path, head_path = {**DECODERS, **ENCODERS}[family]
    blocks = model.get_submodule(blocks_path)
    if level == 0:
        return blocks[0], "pre"
    if level == N + 1:
        return model.get_submodule(head_path), "pre"
    return blocks[level - 1], "out"


def run_with_site(model, inputs, family, level, replace=None):
    """Forward pass that captures (and optionally replaces) the hidden state at `level`, by hand."""
    module, kind = level_site(model, family, level)
    seen = []

    def pre(mod, args, kwargs):
        h = args[0] if args else kwargs["hidden_states"]
        seen.append(h)
        if replace is None:
            return None
        return ((replace, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": replace})

    def out(mod, args, output):
        h = output if torch.is_tensor(output) else output[0]
        seen.append(h)
        if replace is None:
            return None
        return replace if torch.is_tensor(output) else (replace, *output[1:])

    handle = (module.register_forward_pre_hook(pre, with_kwargs=True) if kind == "pre"
              else module.register_forward_hook(out))
    try:
        logits = model(**inputs).logits
    finally:
        handle.remove()
    return logits, seen[0]


@pytest.fixture(scope="module", params=sorted(DECODERS))
def decoder_model(request, decoder_tokenizer):
    model = build(request.param, len(decoder_tokenizer), decoder_tokenizer.pad_token_id)
    hooks = MixUpHooks(model)
    yield request.param, model, hooks
    hooks.remove()


def test_levels_match_the_hand_written_table(decoder_model):
    family, model, hooks = decoder_model
    _, blocks_path, head_path = DECODERS[family]
    levels = hooks.levels
    assert levels.num_blocks == N and levels.num_levels == N + 2 and not levels.shared
    assert list(levels.blocks) == list(model.get_submodule(blocks_path))
    assert levels.head is model.get_submodule(head_path)
    assert levels.per_position_head


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("level", range(N + 2))
def test_lambda_one_is_clean_and_mixing_matches_a_hand_replacement(decoder_model, decoder_tokenizer, side, level):
    family, model, hooks = decoder_model
    partner, lam = draw_partners(len(TEXTS), np.random.default_rng(level)), 0.37
    batch = encode(decoder_tokenizer, side)
    if level <= N:
        inputs = aligned_by_hand(decoder_tokenizer, partner, decoder_tokenizer.eos_token_id, side, decoder=True)
        ours = align_for_mixing(batch, partner, "pair", decoder_tokenizer.eos_token_id, decoder_tokenizer.pad_token_id)
        assert all(torch.equal(ours[k], inputs[k]) for k in inputs)
    else:
        inputs = batch
    with torch.no_grad():
        clean, h = run_with_site(model, inputs, family, level)
        hooks.plan = MixUpPlan(partner, 1.0, level)
        one = model(**inputs).logits
        hooks.plan = MixUpPlan(partner, lam, level)
        mixed, seen = run_with_site(model, inputs, family, level)
        hooks.plan = None
        if level <= N:
            expected = lam * h + (1 - lam) * h[partner]
        else:  # each row at its own read position, the partner at the partner's
            rows, read = torch.arange(len(TEXTS)), read_by_hand(inputs)
            expected = h.clone()
            expected[rows, read] = lam * h[rows, read] + (1 - lam) * h[partner, read[partner]]
        by_hand, _ = run_with_site(model, inputs, family, level, replace=expected)
    torch.testing.assert_close(one, clean, rtol=0, atol=1e-6)
    torch.testing.assert_close(seen, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mixed, by_hand, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(mixed, clean, atol=1e-4), "mixing must change the logits for the test to mean anything"


# --------------------------------------------------------------------- black box: λ = 0 swaps rows
SWAP_CASES = ([(f, side) for f in sorted(DECODERS) for side in ("right", "left")]
              + [("bert", "right"), ("roberta", "right")])


@pytest.fixture(scope="module")
def encoder_tokenizer(tokenizer):
    return tokenizer  # the real MiniLM WordPiece ([CLS] ... [SEP], [PAD] = 0)


def trainer_at_level(model, tokenizer, tmp_path, level, method="manifold"):
    """A MixUpTrainer whose plans are drawn as usual but at `level`, λ overridable through the
    returned list (None: as drawn); the plans it used are appended to the other returned list."""
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method=method, mixup_alpha=1e-3,
                                  report_to=[], use_cpu=True, save_strategy="no")
    trainer = MixUpTrainer(model=model, args=args, processing_class=tokenizer)
    drawn, lam_override = [], [None]
    draw = trainer._draw_plan

    def draw_at_level(batch_size):
        plan = draw(batch_size)
        lam = plan.lam if lam_override[0] is None else lam_override[0]
        drawn.append(MixUpPlan(plan.partner, lam, level))
        return drawn[-1]

    trainer._draw_plan = draw_at_level
    return trainer, drawn, lam_override


def check_swap(model, tokenizer, tmp_path, side, level, decoder, texts=TEXTS, targets=TARGETS, tol=1e-5,
               method="manifold"):
    """Through MixUpTrainer.compute_loss with the level forced and λ = 0, 1 and as drawn from
    Beta(1e-3, 1e-3): each row's loss is the clean loss of its partner on the partner's label (λ ≈ 0)
    or its own (λ ≈ 1), on the rows as the model reads them (pair-aligned by hand for levels 0..n);
    the longer row of every pair is the row as the tokenizer gave it."""
    trainer, drawn, lam_override = trainer_at_level(model, tokenizer, tmp_path, level, method)
    n = trainer.mixup_hooks.levels.num_blocks
    batch = encode(tokenizer, side, texts)
    with torch.no_grad():
        clean_original = model(**batch).logits
    for lam in (0.0, 1.0, None):
        lam_override[0] = lam
        with torch.no_grad():
            loss, outputs = trainer.compute_loss(model, {**batch, "labels": targets}, return_outputs=True)
        trainer.mixup_hooks.plan = None  # as training_step does after backward
        plan, p = drawn[-1], drawn[-1].partner
        filler = tokenizer.eos_token_id if decoder else tokenizer.sep_token_id
        read_as = aligned_by_hand(tokenizer, p, filler, side, decoder, texts) if level <= n else batch
        with torch.no_grad():
            clean = model(**read_as).logits
        clean_loss = F.cross_entropy(clean, targets, reduction="none")
        swapped = plan.lam < 0.5
        expected = clean_loss[p] if swapped else clean_loss
        got = F.cross_entropy(outputs.logits, targets[p] if swapped else targets, reduction="none")
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
        torch.testing.assert_close(loss, expected.mean(), rtol=tol, atol=tol)  # the trainer's soft-label loss
        assert lam is not None or min(plan.lam, 1 - plan.lam) < 1e-6
        lengths = batch["attention_mask"].sum(1)
        longer = lengths >= lengths[p]
        torch.testing.assert_close(clean[longer], clean_original[longer], rtol=tol, atol=tol)
    assert (p != torch.arange(len(texts))).all() and not torch.allclose(clean_loss, clean_loss[p])


@pytest.mark.parametrize("level", [0, 2, N, N + 1])
@pytest.mark.parametrize("family,side", SWAP_CASES)
def test_lambda_zero_swaps_rows_and_targets_and_lambda_one_is_clean(
    family, side, level, decoder_tokenizer, encoder_tokenizer, tmp_path
):
    decoder = family in DECODERS
    tokenizer = decoder_tokenizer if decoder else encoder_tokenizer
    check_swap(build(family, len(tokenizer), tokenizer.pad_token_id), tokenizer, tmp_path, side, level, decoder)


def test_permutation_input_mixup_equals_each_pair_run_alone(decoder_tokenizer):
    """Under a permutation row j is the partner of one row and has another: alignment gives every row
    one read position and row j fillers for each pair it is in, so Input MixUp of row i equals the
    pair (x_i, x_p(i)) aligned, mixed and run alone."""
    model = build("llama", len(decoder_tokenizer), decoder_tokenizer.pad_token_id)
    hooks = MixUpHooks(model)
    eos, pad, lam = decoder_tokenizer.eos_token_id, decoder_tokenizer.pad_token_id, 0.37
    partner = torch.tensor([1, 2, 0, 4, 5, 3])  # two 3-cycles
    batch = encode(decoder_tokenizer, "right")
    with torch.no_grad():
        hooks.plan = MixUpPlan(partner, lam, 0)
        mixed = model(**align_for_mixing(batch, partner, "pair", eos, pad)).logits
        for i in range(len(TEXTS)):
            pair = encode(decoder_tokenizer, "right", [TEXTS[i], TEXTS[partner[i]]])
            hooks.plan = MixUpPlan(torch.tensor([1, 0]), lam, 0)
            alone = model(**align_for_mixing(pair, torch.tensor([1, 0]), "pair", eos, pad)).logits
            torch.testing.assert_close(mixed[i], alone[0], rtol=1e-5, atol=1e-5)
    hooks.remove()


# More decoder families, each with the settings a tiny random config needs: the λ = 0 swap at
# levels 0, a middle block, n and n+1 on both padding sides (the hooks alone, on the aligned batch).
MORE_DECODERS = {
    "phi": {}, "olmo": {}, "olmo2": {}, "stablelm": {}, "starcoder2": {}, "persimmon": {}, "nemotron": {"head_dim": 16},
    "glm": {"head_dim": 16}, "helium": {"head_dim": 16}, "smollm3": {}, "gemma2": {"head_dim": 16},
    "mixtral": {"num_local_experts": 2, "num_experts_per_tok": 1, "intermediate_size": 32},
    "qwen2_moe": {"num_experts": 2, "num_experts_per_tok": 1, "moe_intermediate_size": 16,
                  "shared_expert_intermediate_size": 16},
    "falcon": {"new_decoder_architecture": False}, "bloom": {"n_layer": N, "n_head": 2},
    "opt": {"ffn_dim": 37, "word_embed_proj_dim": H, "dropout": 0.0},
    "gptj": {**GPT_LIKE, "rotary_dim": 8}, "gpt_neo": {"num_layers": N, "num_heads": 2,
                                                       "attention_types": [[["global", "local"], 1], [["global"], 1]]},
    "gpt_bigcode": GPT_LIKE, "openai-gpt": GPT_LIKE, "ctrl": {**GPT_LIKE, "dff": 37},
    "mpt": {"d_model": H, "n_layers": N, "n_heads": 2, "expansion_ratio": 2},
    "biogpt": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "activation_dropout": 0.0},
}


@pytest.mark.parametrize("family", sorted(MORE_DECODERS))
def test_more_decoder_families_swap_rows_exactly(family, decoder_tokenizer):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    pad = decoder_tokenizer.pad_token_id
    config = AutoConfig.for_model(family, **{**DECODER_LIKE, "vocab_size": len(decoder_tokenizer), "pad_token_id": pad,
                                             "bos_token_id": pad, "eos_token_id": pad, **MORE_DECODERS[family]})
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager").train()
    hooks = MixUpHooks(model)
    assert hooks.levels.per_position_head and hooks.levels.num_blocks == N
    partner = draw_partners(len(TEXTS), np.random.default_rng(1))
    for side in ("right", "left"):
        batch = encode(decoder_tokenizer, side)
        for level in (0, 2, N, N + 1):
            inputs = align_for_mixing(batch, partner, "pair", pad, pad) if level <= N else batch
            with torch.no_grad():
                hooks.plan = None
                clean = model(**inputs).logits
                hooks.plan = MixUpPlan(partner, 0.0, level)
                swapped = model(**inputs).logits
                hooks.check_mixed(swapped)
            torch.testing.assert_close(swapped, clean[partner], rtol=1e-5, atol=1e-5, msg=f"{side} level {level}")
    hooks.plan = None
    hooks.remove()


# ---------------------------------------------------------------------------------- training
def sst2_rows(tokenizer, n=16):
    from datasets import Dataset

    texts, labels = read_sst2("train", limit=n)
    data = Dataset.from_dict({"sentence": texts, "label": labels})
    return data.map(lambda b: tokenizer(b["sentence"], truncation=True, max_length=40), batched=True,
                    remove_columns=["sentence"])


@pytest.mark.parametrize("method,side", [("none", "right"), ("manifold", "right"), ("manifold", "left")])
@pytest.mark.parametrize("family", sorted(DECODERS))
def test_one_training_step_is_finite(family, method, side, decoder_tokenizer, tmp_path):
    model = build(family, len(decoder_tokenizer), decoder_tokenizer.pad_token_id, num_labels=2)
    decoder_tokenizer.padding_side = side
    try:
        args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method=method, per_device_train_batch_size=8,
                                      max_steps=2, learning_rate=1e-3, report_to=[], save_strategy="no",
                                      disable_tqdm=True, use_cpu=True, seed=0, logging_steps=1)
        trainer = MixUpTrainer(model=model, args=args, train_dataset=sst2_rows(decoder_tokenizer),
                               processing_class=decoder_tokenizer)
        collated = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])["attention_mask"]
        assert collated[:, 0 if side == "left" else -1].min() == 0  # padded on that side
        result = trainer.train()
    finally:
        decoder_tokenizer.padding_side = "right"
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    logged = [h.get("mixup_layer", -1) for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 2 and all(level in range(N + 2) if method == "manifold" else level == -1 for level in logged)


def test_peft_lora_on_a_decoder_mixes_the_score_wrapper(decoder_tokenizer, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = build("llama", len(decoder_tokenizer), decoder_tokenizer.pad_token_id, num_labels=2)
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", per_device_train_batch_size=8,
                                  max_steps=2, learning_rate=1e-2, report_to=[], save_strategy="no", use_cpu=True,
                                  logging_steps=1, seed=0)
    trainer = MixUpTrainer(model=model, args=args, train_dataset=sst2_rows(decoder_tokenizer),
                           processing_class=decoder_tokenizer)
    head = trainer.mixup_hooks.levels.head
    assert head is base.score and hasattr(head, "modules_to_save") and trainer.mixup_hooks.levels.per_position_head
    assert math.isfinite(trainer.train().training_loss)
    batch = encode(decoder_tokenizer, "right")
    partner = draw_partners(len(TEXTS), np.random.default_rng(0))
    model.train()
    with torch.no_grad():
        clean = model(**batch).logits
        trainer.mixup_hooks.plan = MixUpPlan(partner, 0.0, N + 1)
        swapped = model(**batch).logits
        trainer.mixup_hooks.plan = None
    torch.testing.assert_close(swapped, clean[partner], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- tokens and refusals
def test_decoder_fillers_come_from_the_tokenizer(decoder_tokenizer, tokenizer):
    eos = decoder_tokenizer.eos_token_id
    assert resolve_pad_token_id(decoder_tokenizer, "sep", decoder=True) == eos  # no separator: eos
    assert resolve_pad_token_id(decoder_tokenizer, "pad", decoder=True) == decoder_tokenizer.pad_token_id
    with pytest.raises(ValueError, match="no \\[unused0\\] token.*'sep', 'pad'"):
        resolve_pad_token_id(decoder_tokenizer, "unused0", decoder=True)
    with pytest.raises(ValueError, match="has no sep token"):
        resolve_pad_token_id(decoder_tokenizer, "sep")  # an encoder needs a real separator
    assert resolve_pad_token_id(tokenizer, "sep", decoder=True) == tokenizer.sep_token_id  # one it has is kept


def _trainer(model, tokenizer, tmp_path, **kwargs):
    args = MixUpTrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, save_strategy="no",
                                  **{"mixup_method": "manifold", **kwargs})
    return MixUpTrainer(model=model, args=args, processing_class=tokenizer)


def test_a_decoder_without_a_pad_token_is_refused(decoder_tokenizer, tmp_path):
    model = build("llama", len(decoder_tokenizer), decoder_tokenizer.pad_token_id)
    model.config.pad_token_id = None
    with pytest.raises(ValueError, match="pad_token_id is None: set tokenizer.pad_token = tokenizer.eos_token"):
        _trainer(model, decoder_tokenizer, tmp_path)
    model.config.pad_token_id = 0
    no_pad = copy.deepcopy(decoder_tokenizer)
    no_pad.pad_token = None
    with pytest.raises(ValueError, match="the tokenizer has no pad token: set tokenizer.pad_token"):
        _trainer(model, no_pad, tmp_path)
    model.config.pad_token_id = 1  # <unk>: the model would read padding (id 0) as a token
    with pytest.raises(ValueError, match="pads with token id 0 but model.config.pad_token_id is 1"):
        _trainer(model, decoder_tokenizer, tmp_path, mixup_method="cls")
    model.config.pad_token_id = 0
    assert _trainer(model, decoder_tokenizer, tmp_path).mixup_pad_token_id == decoder_tokenizer.eos_token_id


def test_a_model_that_pools_elsewhere_is_stopped(decoder_tokenizer, tmp_path):
    """A per-position head whose model reads another position than the last non-pad token (here the
    first) would be mixed at the wrong place: the first mixed step stops instead of training."""
    from transformers.modeling_outputs import SequenceClassifierOutputWithPast

    model = build("llama", len(decoder_tokenizer), decoder_tokenizer.pad_token_id, num_labels=2)

    def first_token_forward(input_ids=None, attention_mask=None, labels=None, **kwargs):
        hidden = model.model(input_ids, attention_mask=attention_mask).last_hidden_state
        return SequenceClassifierOutputWithPast(logits=model.score(hidden)[:, 0])

    model.forward = first_token_forward
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="cls", per_device_train_batch_size=8,
                                  max_steps=1, report_to=[], save_strategy="no", use_cpu=True)
    trainer = MixUpTrainer(model=model, args=args, train_dataset=sst2_rows(decoder_tokenizer),
                           processing_class=decoder_tokenizer)
    with pytest.raises(RuntimeError, match="does not return the head's output at each row's last non-pad token"):
        trainer.train()


# A row made only of the pad token: with pad = eos, an empty text that tokenizes to eos alone. The
# model reads it at column 0 (no token is not the pad token) wherever alignment moves it, so at
# levels 0..n its pair would be read at two positions (the λ = 0 swap was off by 5.29 on right
# padding). MixUpTrainer refuses the batch on its first mixed step, whatever level is drawn, in one
# line naming the row and the fix; mixup_method="cls" (no re-padding) mixes it exactly.
EMPTY_ROW = 3
TEXTS_WITH_EOS_ONLY = [*TEXTS[:EMPTY_ROW], EOS, *TEXTS[EMPTY_ROW + 1:]]
EMPTY_ROW_REFUSAL = (rf"^MixUp on a decoder classifier: row {EMPTY_ROW} of this batch has no token other than the "
                     r"pad token \(id 0\), .* Drop empty texts from the training data, or use a tokenizer whose pad "
                     r"token differs from eos \(or that adds a bos token\)\.$")


@pytest.mark.parametrize("level", [0, N, N + 1])
@pytest.mark.parametrize("side", ["right", "left"])
def test_a_row_of_only_pad_tokens_is_refused_naming_the_row(side, level, decoder_tokenizer, tmp_path):
    model = build("llama", len(decoder_tokenizer), decoder_tokenizer.pad_token_id)
    trainer, _, lam = trainer_at_level(model, decoder_tokenizer, tmp_path, level)
    lam[0] = 0.0
    batch = encode(decoder_tokenizer, side, TEXTS_WITH_EOS_ONLY)
    only_pad = (batch["input_ids"] == decoder_tokenizer.pad_token_id).all(1)
    assert only_pad.tolist() == [i == EMPTY_ROW for i in range(len(TEXTS))]
    assert batch["attention_mask"][EMPTY_ROW].sum() == 1  # one attended token: the eos
    with pytest.raises(ValueError, match=EMPTY_ROW_REFUSAL) as refused, torch.no_grad():
        trainer.compute_loss(model, {**batch, "labels": TARGETS})
    assert "\n" not in str(refused.value)


def test_a_row_of_only_pad_tokens_is_refused_on_the_training_data_path(decoder_tokenizer, tmp_path):
    """The same through Trainer.train: collator, shuffled sampler and the level drawn by the trainer."""
    model = build("llama", len(decoder_tokenizer), decoder_tokenizer.pad_token_id, num_labels=2)
    rows = sst2_rows(decoder_tokenizer, n=7).add_item(
        {"label": 1, "input_ids": [decoder_tokenizer.eos_token_id], "attention_mask": [1]})
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", per_device_train_batch_size=8,
                                  max_steps=1, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = MixUpTrainer(model=model, args=args, train_dataset=rows, processing_class=decoder_tokenizer)
    with pytest.raises(ValueError, match=r"^MixUp on a decoder classifier: row \d of this batch has no token other"):
        trainer.train()


@pytest.mark.parametrize("side", ["right", "left"])
def test_cls_mixup_mixes_a_row_of_only_pad_tokens_exactly(side, decoder_tokenizer, tmp_path):
    model = build("llama", len(decoder_tokenizer), decoder_tokenizer.pad_token_id)
    check_swap(model, decoder_tokenizer, tmp_path, side, N + 1, decoder=True, texts=TEXTS_WITH_EOS_ONLY,
               method="cls")


# ------------------------------------------------------------------------------ a real decoder
# (the smollm2_path fixture, built once under a lock, is in conftest.py)


@pytest.mark.slow
def test_real_smollm2_trains_with_lora_manifold_mixup_and_swaps_exactly(smollm2_path, tmp_path):
    """SmolLM2-135M-Instruct (Llama, 30 blocks), de-quantised from PyPI: still a language model, a
    LoRA Manifold MixUp step gives a finite loss, and λ = 0 swaps rows and targets exactly at a
    middle block and at the head."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    assert tokenizer.sep_token is None and tokenizer.pad_token_id == tokenizer.eos_token_id  # a decoder's tokens
    lm = AutoModelForCausalLM.from_pretrained(smollm2_path)
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    assert "Paris" in tokenizer.decode(lm.generate(**prompt, max_new_tokens=3, do_sample=False)[0])
    del lm

    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(smollm2_path, num_labels=2)
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                            modules_to_save=["score"]))
    args = MixUpTrainingArguments(output_dir=str(tmp_path / "train"), mixup_method="manifold", per_device_train_batch_size=8,
                                  max_steps=2, learning_rate=1e-3, report_to=[], save_strategy="no", use_cpu=True,
                                  logging_steps=1, seed=0, disable_tqdm=True)
    trainer = MixUpTrainer(model=model, args=args, train_dataset=sst2_rows(tokenizer), processing_class=tokenizer)
    levels = trainer.mixup_hooks.levels
    assert levels.num_blocks == 30 and levels.per_position_head and trainer.mixup_pad_token_id == tokenizer.eos_token_id
    result = trainer.train()
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    assert all(0 <= h["mixup_layer"] <= 31 for h in trainer.state.log_history if "mixup_layer" in h)

    targets = torch.tensor([0, 1, 1, 0, 0, 1])
    for level in (15, 31):
        check_swap(model, tokenizer, tmp_path / str(level), "right", level, decoder=True, targets=targets, tol=1e-4)
