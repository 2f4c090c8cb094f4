"""MixUp on every common encoder family, on tiny random configs: the levels the generic rule finds
are checked against a hand-written table of where each family's levels are, λ = 1 is the clean
forward, mixing at every level equals λh + (1−λ)h[p] captured at that level and continued by the
model itself from a hand-placed replacement, and one MixUp training step gives a finite loss."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mixup_trainer import MixUpPlan, MixUpTrainer, MixUpTrainingArguments
from mixup_trainer.hooks import MixUpHooks
from mixup_trainer.levels import find_mixup_levels
from mixup_trainer.mixing import draw_partners, pad_for_mixing

H, N, HEADS, FFN = 32, 3, 2, 37
LABELS = 3
BERT_LIKE = dict(hidden_size=H, num_hidden_layers=N, num_attention_heads=HEADS, intermediate_size=FFN,
                 max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                 initializer_range=0.3)

# family: (extra config, path of the encoder blocks, path of the head's final projection) — written
# by hand from each family's modeling code, independently of the generic rule under test.
FAMILIES = {
    "bert": ({}, "bert.encoder.layer", "classifier"),
    "roberta": ({"pad_token_id": 1}, "roberta.encoder.layer", "classifier.out_proj"),
    "xlm-roberta": ({"pad_token_id": 1}, "roberta.encoder.layer", "classifier.out_proj"),
    "distilbert": ({"dim": H, "n_layers": N, "n_heads": HEADS, "hidden_dim": FFN, "dropout": 0.0,
                    "attention_dropout": 0.0, "seq_classif_dropout": 0.0}, "distilbert.transformer.layer", "classifier"),
    "albert": ({"embedding_size": 16, "classifier_dropout_prob": 0.0}, "albert.encoder.albert_layer_groups", "classifier"),
    "electra": ({"embedding_size": 16}, "electra.encoder.layer", "classifier.out_proj"),
    "deberta": ({}, "deberta.encoder.layer", "classifier"),
    "deberta-v2": ({"relative_attention": True, "position_buckets": 8, "pos_att_type": ["p2c", "c2p"]},
                   "deberta.encoder.layer", "classifier"),
    "modernbert": ({"pad_token_id": 0, "local_attention": 8, "global_attn_every_n_layers": 2,
                    "bos_token_id": 101, "eos_token_id": 102, "cls_token_id": 101, "sep_token_id": 102},
                   "model.layers", "classifier"),
    "mpnet": ({"pad_token_id": 1}, "mpnet.encoder.layer", "classifier.out_proj"),
    "convbert": ({}, "convbert.encoder.layer", "classifier.out_proj"),
    "camembert": ({"pad_token_id": 1}, "roberta.encoder.layer", "classifier.out_proj"),
    "data2vec-text": ({"pad_token_id": 1}, "data2vec_text.encoder.layer", "classifier.out_proj"),
    "ernie": ({}, "ernie.encoder.layer", "classifier"),
    "megatron-bert": ({}, "bert.encoder.layer", "classifier"),
    "mobilebert": ({"embedding_size": 16, "intra_bottleneck_size": 16, "true_hidden_size": 16,
                    "num_feedforward_networks": 2}, "mobilebert.encoder.layer", "classifier"),
    "rembert": ({"classifier_dropout_prob": 0.0, "input_embedding_size": H, "output_embedding_size": H, "bos_token_id": 101, "eos_token_id": 102},
                "rembert.encoder.layer", "classifier"),
    "roberta-prelayernorm": ({"pad_token_id": 1}, "roberta_prelayernorm.encoder.layer", "classifier.out_proj"),
    "roc_bert": ({}, "roc_bert.encoder.layer", "classifier"),
    "roformer": ({}, "roformer.encoder.layer", "classifier.out_proj"),
    "xlm-roberta-xl": ({"pad_token_id": 1}, "roberta.encoder.layer", "classifier.out_proj"),
    "xmod": ({"pad_token_id": 1, "default_language": "en_XX"}, "roberta.encoder.layer", "classifier.out_proj"),
    "yoso": ({"use_expectation": True}, "yoso.encoder.layer", "classifier.out_proj"),
    "big_bird": ({"attention_type": "original_full"}, "bert.encoder.layer", "classifier.out_proj"),
    "ibert": ({"pad_token_id": 1}, "ibert.encoder.layer", "classifier.out_proj"),
    "fnet": ({}, "fnet.encoder.layer", "classifier"),
    "longformer": ({"attention_window": 4, "pad_token_id": 1}, "longformer.encoder.layer", "classifier.out_proj"),
    "esm": ({"pad_token_id": 1, "mask_token_id": 103}, "esm.encoder.layer", "classifier.out_proj"),
    "nomic_bert": ({}, "nomic_bert.layers", "classifier"),
    "gte": ({}, "gte.layers", "classifier"),
}


def build(family: str, vocab_size: int, **overrides) -> nn.Module:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    extra, _, _ = FAMILIES[family]
    kwargs = {**BERT_LIKE, "vocab_size": vocab_size, "num_labels": LABELS, **extra, **overrides}
    config = AutoConfig.for_model(family, **kwargs)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    return model.train()  # dropout is 0: train mode is deterministic and the hooks are live


@pytest.fixture(scope="module")
def batch(tokenizer):
    texts = ["a gorgeous, witty, seductive movie.", "bad", "it is a film of quiet power and grace", "meh .", "fun"]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def level_site(model, family: str, level: int):
    """(module, kind) where the hand-written table says level `level` lives: 'pre' reads the first
    positional input, 'out' the output (tensor or first element)."""
    _, blocks_path, head_path = FAMILIES[family]
    blocks = model.get_submodule(blocks_path)
    if level == 0:
        return blocks[0], "pre"
    if level == N + 1:
        return model.get_submodule(head_path), "pre"
    return (blocks[0] if family == "albert" else blocks[level - 1]), "out"


def run_with_site(model, inputs, family, level, replace=None):
    """Forward pass that captures (and optionally replaces) the hidden state at `level`, by hand.
    ALBERT's shared block is called N times: the k-th call is level k."""
    module, kind = level_site(model, family, level)
    seen, calls = [], [0]

    def pre(mod, args):
        calls[0] += 1
        if calls[0] > 1:  # ALBERT's shared block: only its first call reads level 0
            return None
        seen.append(args[0])
        return None if replace is None else (replace, *args[1:])

    def out(mod, args, output):
        calls[0] += 1
        if family == "albert" and calls[0] != level:
            return None
        h = output if torch.is_tensor(output) else output[0]
        seen.append(h)
        if replace is None:
            return None
        return replace if torch.is_tensor(output) else (replace, *output[1:])

    handles = [module.register_forward_pre_hook(pre) if kind == "pre" else module.register_forward_hook(out)]
    try:
        logits = model(**inputs).logits
    finally:
        for h in handles:
            h.remove()
    return logits, seen[0]


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_model(request, tokenizer):
    model = build(request.param, len(tokenizer))
    hooks = MixUpHooks(model)
    yield request.param, model, hooks
    hooks.remove()


def test_generic_levels_match_the_hand_written_table(family_model):
    family, model, hooks = family_model
    _, blocks_path, head_path = FAMILIES[family]
    levels = hooks.levels
    assert levels.num_blocks == N and levels.num_levels == N + 2
    assert list(levels.blocks) == list(model.get_submodule(blocks_path))
    assert levels.shared == (family == "albert")
    assert levels.head is model.get_submodule(head_path)
    assert not levels.per_position_head  # pooled heads: decoders are tests/test_decoders.py


@pytest.mark.parametrize("level", range(N + 2))
def test_lambda_one_is_the_clean_forward_and_mixing_matches_a_hand_replacement(family_model, batch, tokenizer, level):
    family, model, hooks = family_model
    partner, lam = draw_partners(5, np.random.default_rng(level)), 0.37
    inputs = pad_for_mixing(batch, partner, "pair", tokenizer.sep_token_id) if level <= N else batch
    with torch.no_grad():
        clean, h = run_with_site(model, inputs, family, level)
        hooks.plan = MixUpPlan(partner, 1.0, level)
        one = model(**inputs).logits
        hooks.plan = MixUpPlan(partner, lam, level)
        mixed, seen = run_with_site(model, inputs, family, level)
        hooks.plan = None
        expected_h = lam * h + (1 - lam) * h[partner]
        by_hand, _ = run_with_site(model, inputs, family, level, replace=expected_h)
    torch.testing.assert_close(one, clean, rtol=0, atol=1e-6)
    torch.testing.assert_close(seen, expected_h, rtol=1e-5, atol=1e-5)  # the hooks mixed exactly there
    torch.testing.assert_close(mixed, by_hand, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(mixed, clean, atol=1e-4), "mixing must change the logits for the test to mean anything"


@pytest.mark.parametrize("method", ["none", "manifold"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_one_training_step_is_finite(family, method, tokenizer, sst2_small, tmp_path):
    model = build(family, len(tokenizer), hidden_dropout_prob=0.1)
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method=method, mixup_alpha=1.0,
                                  per_device_train_batch_size=8, max_steps=2, learning_rate=1e-3, report_to=[],
                                  save_strategy="no", disable_tqdm=True, use_cpu=True, seed=0, logging_steps=1)
    trainer = MixUpTrainer(model=model, args=args, train_dataset=sst2_small.select(range(16)),
                           processing_class=tokenizer)
    result = trainer.train()
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    logged = [h.get("mixup_layer", -1) for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 2 and all(level in range(N + 2) if method == "manifold" else level == -1 for level in logged)


def test_families_without_encoder_blocks_are_refused(tokenizer):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.for_model("xlm", vocab_size=len(tokenizer), emb_dim=H, n_layers=2, n_heads=2, num_labels=2)
    with pytest.raises(ValueError, match="xlm keeps per-layer attention.*--mixup_method none"):
        find_mixup_levels(AutoModelForSequenceClassification.from_config(config))


# ------------------------------------------------------------------------ overrides and refusals
def _hand_replace(module, replace):
    return module.register_forward_hook(lambda m, a, out: replace)


@pytest.mark.parametrize("level", [0, 1])
def test_deberta_v2_conv_override_is_needed_and_exact(tokenizer, batch, level, monkeypatch):
    """With a convolution after block 1, the embeddings reach block 2 around block 1: level 0 is the
    embeddings output and level 1 the convolution output. The generic rule mixes elsewhere."""
    import mixup_trainer.levels as levels_module

    model = build("deberta-v2", len(tokenizer), conv_kernel_size=3, conv_act="gelu")
    site = model.deberta.embeddings if level == 0 else model.deberta.encoder.conv
    partner, lam = draw_partners(5, np.random.default_rng(3)), 0.37
    inputs = pad_for_mixing(batch, partner, "pair", tokenizer.sep_token_id)
    seen = []
    with torch.no_grad():
        handle = site.register_forward_hook(lambda m, a, out: seen.append(out))
        model(**inputs)
        handle.remove()
        expected = lam * seen[0] + (1 - lam) * seen[0][partner]
        handle = _hand_replace(site, expected)
        by_hand = model(**inputs).logits
        handle.remove()

        def mixed_logits():
            hooks = MixUpHooks(model)
            hooks.plan = MixUpPlan(partner, lam, level)
            try:
                return model(**inputs).logits
            finally:
                hooks.remove()

        torch.testing.assert_close(mixed_logits(), by_hand, rtol=1e-5, atol=1e-5)
        monkeypatch.setattr(levels_module, "LEVEL_OVERRIDES", {})
        assert not torch.allclose(mixed_logits(), by_hand, atol=1e-3), "the generic rule should be wrong here"


def test_a_model_that_bypasses_hooks_fails_loudly(tokenizer, sst2_small, tmp_path, monkeypatch):
    """SqueezeBERT calls block.forward() directly: hooks never run. It is refused by name, and
    without that entry the trainer's check stops the first step instead of training unmixed."""
    import mixup_trainer.levels as levels_module
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.for_model("squeezebert", **{**BERT_LIKE, "intermediate_size": 36},
                                  vocab_size=len(tokenizer), embedding_size=H, num_labels=2)
    model = AutoModelForSequenceClassification.from_config(config)
    with pytest.raises(ValueError, match="squeezebert calls its blocks' forward"):
        find_mixup_levels(model)
    monkeypatch.setattr(levels_module, "UNSUPPORTED_FAMILIES", {})
    args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method="manifold", mixup_layers="1",
                                  per_device_train_batch_size=8, max_steps=1, report_to=[], save_strategy="no",
                                  use_cpu=True)
    trainer = MixUpTrainer(model=model, args=args, train_dataset=sst2_small, processing_class=tokenizer)
    with pytest.raises(RuntimeError, match="level 1 was drawn but its hook never ran"):
        trainer.train()


# ------------------------------------------------------------------------------ tokenizers
@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A RoBERTa-style tokenizer (<s> ... </s>, <pad>, no [unused0]) built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = "a the film movie good bad fun dull it is was not very".split()
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")


def test_pad_tokens_are_the_tokenizers_own(bpe_tokenizer, tokenizer):
    from mixup_trainer.mixing import resolve_pad_token_id

    assert resolve_pad_token_id(bpe_tokenizer, "sep") == 2  # </s>
    assert resolve_pad_token_id(bpe_tokenizer, "pad") == 1  # <pad>
    with pytest.raises(ValueError, match="no \\[unused0\\] token.*'sep', 'pad'"):
        resolve_pad_token_id(bpe_tokenizer, "unused0")
    assert resolve_pad_token_id(tokenizer, "unused0") == tokenizer.convert_tokens_to_ids("[unused0]")


def _tiny_roberta(vocab_size):
    model = build("roberta", vocab_size)
    model.config.num_labels = 2
    return model


@pytest.mark.parametrize("method,padding,ok", [("none", "pair", True), ("cls", "pair", True),
                                               ("manifold", "none", True), ("input", "pair", False),
                                               ("manifold", "pair", False)])
def test_left_padding(bpe_tokenizer, tmp_path, method, padding, ok):
    from datasets import Dataset
    from transformers import AutoConfig, AutoModelForSequenceClassification

    bpe_tokenizer.padding_side = "left"
    try:
        texts = ["a good film", "bad", "it is not very good", "dull movie", "fun", "the film was bad"] * 3
        data = Dataset.from_dict({"text": texts, "label": [1, 0, 0, 0, 1, 0] * 3})
        data = data.map(lambda b: bpe_tokenizer(b["text"]), batched=True, remove_columns=["text"])
        config = AutoConfig.for_model("roberta", **BERT_LIKE, vocab_size=len(bpe_tokenizer), pad_token_id=1,
                                      num_labels=2)
        model = AutoModelForSequenceClassification.from_config(config)
        args = MixUpTrainingArguments(output_dir=str(tmp_path), mixup_method=method, mixup_padding=padding,
                                      per_device_train_batch_size=6, max_steps=2, report_to=[], save_strategy="no",
                                      use_cpu=True, logging_steps=1)
        if not ok:
            with pytest.raises(ValueError, match="pads on the left.*padding_side = 'right'"):
                MixUpTrainer(model=model, args=args, train_dataset=data, processing_class=bpe_tokenizer)
            return
        trainer = MixUpTrainer(model=model, args=args, train_dataset=data, processing_class=bpe_tokenizer)
        batch = trainer.data_collator([data[i] for i in range(3)])
        assert batch["attention_mask"][:, 0].min() == 0  # really left-padded
        assert math.isfinite(trainer.train().training_loss)
    finally:
        bpe_tokenizer.padding_side = "right"


def test_pair_padding_refuses_a_left_padded_batch(batch):
    left = {k: v.flip(1) for k, v in batch.items()}
    with pytest.raises(ValueError, match="right-padded rows"):
        pad_for_mixing(left, draw_partners(5, np.random.default_rng(0)), "pair", 102)


# ------------------------------------------------------------------------------------ PEFT
PEFT_CASES = [(f, m) for f in ("bert", "roberta") for m in ("cls", "input", "manifold")] + [
    (f, "manifold") for f in ("distilbert", "electra", "deberta-v2", "modernbert", "mpnet", "xlm-roberta", "albert")]


@pytest.mark.parametrize("family,method", PEFT_CASES)
def test_peft_lora_trains_with_every_method_and_saves_a_plain_adapter(family, method, tokenizer, sst2_small, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForSequenceClassification

    base = build(family, len(tokenizer), num_labels=2)
    base.save_pretrained(tmp_path / "base")
    # "all-linear" would wrap DistilBERT's `classifier`, which SEQ_CLS also trains in full
    targets = ["q_lin", "v_lin"] if family == "distilbert" else "all-linear"
    lora = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=targets)
    model = get_peft_model(base, lora)
    args = MixUpTrainingArguments(output_dir=str(tmp_path / "out"), mixup_method=method,
                                  per_device_train_batch_size=8, max_steps=2, learning_rate=1e-2, report_to=[],
                                  save_strategy="no", use_cpu=True, logging_steps=1, seed=0)
    trainer = MixUpTrainer(model=model, args=args, train_dataset=sst2_small, processing_class=tokenizer)
    head = trainer.mixup_hooks.levels.head  # BERT: the wrapper of `classifier`; RoBERTa: out_proj of the active copy
    active = head.modules_to_save["default"] if hasattr(head, "modules_to_save") else head
    assert isinstance(active, nn.Linear) and active.out_features == 2 and active.weight.requires_grad
    assert math.isfinite(trainer.train().training_loss)
    assert len([h for h in trainer.state.log_history if "mixup_layer" in h]) == 2
    trainer.save_model(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()

    reloaded = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(tmp_path / "base"),
                                         tmp_path / "adapter").eval()
    sample = tokenizer(["a gripping film", "dull"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**sample).logits, model.eval()(**sample).logits)


def test_peft_lora_on_the_classifier_mixes_both_branches(tokenizer, batch):
    """LoRA on the final projection wraps it: the level is the wrapper's input, which reaches both
    the frozen weight and the adapter (a hook on the inner Linear would miss the adapter)."""
    from peft import LoraConfig, get_peft_model

    base = build("bert", len(tokenizer))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "classifier"],
                                            init_lora_weights=False))
    hooks = MixUpHooks(model)
    assert hooks.levels.head is base.classifier and hasattr(base.classifier, "base_layer")
    partner, lam = draw_partners(5, np.random.default_rng(0)), 0.3
    seen = []
    with torch.no_grad():
        h = base.classifier.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
        clean = model(**batch).logits
        h.remove()
        expected = lam * seen[0] + (1 - lam) * seen[0][partner]
        hooks.plan = MixUpPlan(partner, lam, N + 1)
        mixed = model(**batch).logits
        hooks.plan = None
        torch.testing.assert_close(mixed, base.classifier(expected))
    assert not torch.allclose(mixed, clean, atol=1e-4)
    hooks.remove()
