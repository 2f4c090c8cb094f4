"""Where any sequence classifier exposes the mixing levels 0..n+1 (found from the module tree).

The three kinds of level exist in every encoder classifier, under different attribute names, so
they are found from the module tree rather than from a per-family table:

* level 0: the input of the first encoder block (what the embeddings stage hands the encoder;
  for ALBERT, after its embedding projection): a forward *pre*-hook on the first block;
* level k = 1..n: the output of encoder block k: a forward hook on block k;
* level n+1: the vector that the classification head's final projection reads (BERT's pooled
  [CLS] after dropout, RoBERTa's and ELECTRA's dense+tanh output, DistilBERT's pre-classifier
  output, DeBERTa's ContextPooler output, ModernBERT's head output): a pre-hook on the last
  ``nn.Linear`` whose ``out_features == num_labels``.

Decoder classifiers (Llama, Mistral, Qwen, Gemma, Phi, GPT-2, GPT-NeoX ...) have the same three
places: level 0 is the input of the first decoder block, k its blocks, n+1 the input of ``score``.
They differ in one way that matters: ``score`` is applied at *every* position and the model keeps
row i's logits at its last non-pad token. ``MixUpLevels.per_position_head`` records this, found
structurally: the final projection is a direct child of the model and the model's only other
child is its base model, so nothing (no pooler, no dropout, no dense layer) stands between the
base model's per-position output and the head. The hooks verify it on every mixed step.

The encoder blocks are the first ``nn.ModuleList`` of n blocks of one class. ALBERT shares one
block among all n layers (a list shorter than n that divides it): there the hooks count the
calls of each forward pass. ``LEVEL_OVERRIDES`` holds the families where this rule is provably
wrong; each entry has a test that fails without it. The model-structure helpers that other modules
need (``unwrap_model``, ``final_projection``, ``num_encoder_blocks``) live here too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

# Families whose blocks cannot be found by the generic rule: they have no block modules at all
# (XLM/FlauBERT keep per-layer attention and feed-forward lists whose residuals bypass any
# hook), or they change the sequence length between blocks (Funnel), or mix latents (Perceiver).
UNSUPPORTED_FAMILIES = {
    "xlm": "keeps per-layer attention and feed-forward lists instead of encoder blocks",
    "flaubert": "keeps per-layer attention and feed-forward lists instead of encoder blocks",
    "funnel": "pools the sequence between its blocks",
    "perceiver": "encodes a latent array, not the token sequence",
    "squeezebert": "calls its blocks' forward() directly, which bypasses module hooks",
}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The transformers model under PEFT, DDP/FSDP or ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "get_base_model"):  # peft.PeftModel
            model = model.get_base_model()
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile
            model = model._orig_mod
        elif isinstance(getattr(model, "module", None), nn.Module):  # DistributedDataParallel
            model = model.module
        else:
            return model


def num_encoder_blocks(config) -> int:
    """n, the number of encoder layers, from any text encoder config."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("num_hidden_layers", "n_layers", "num_layers"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    raise ValueError(f"{type(config).__name__} has no num_hidden_layers: cannot find the encoder blocks to mix.")


def _outermost_wrapper(model: nn.Module, path: str) -> tuple[str, nn.Module]:
    """The module at ``path``, or the PEFT wrapper around exactly that module, whose forward takes
    the same input (a LoRA layer's ``base_layer``; a ``modules_to_save`` wrapper of the Linear
    itself): mixing must reach the adapter branch too. A wrapper of a larger head (RoBERTa's whole
    classification head in ``modules_to_save``) is not the final projection: its active copy's
    Linear, the last one in module order, is."""
    parts = path.split(".")
    module = model.get_submodule(path)
    while len(parts) > 1:
        parent = model.get_submodule(".".join(parts[:-1]))
        if getattr(parent, "base_layer", None) is module:
            parts, module = parts[:-1], parent
        elif len(parts) > 2 and parts[-2] == "modules_to_save":
            parts = parts[:-2]
            module = model.get_submodule(".".join(parts))
        else:
            break
    return ".".join(parts), module


def final_projection(model: nn.Module) -> tuple[str, nn.Linear]:
    """(path, module) of the classifier's final projection: the last ``nn.Linear`` with
    ``out_features == num_labels`` (BERT's ``classifier``, RoBERTa's ``classifier.out_proj``), PEFT's
    adapter weights (``lora_A``/``lora_B`` ...) left out. Level n+1 is its input; temperature
    scaling folds T into it."""
    num_labels = model.config.num_labels
    adapters = [path + "." for path, m in model.named_modules()
                if isinstance(m, nn.ModuleDict) and not path.endswith("modules_to_save")]
    heads = [(path, m) for path, m in model.named_modules()
             if isinstance(m, nn.Linear) and m.out_features == num_labels
             and not any(path.startswith(prefix) for prefix in adapters)]
    if not heads:
        raise ValueError(f"{type(model).__name__} has no nn.Linear with out_features == num_labels ({num_labels}) "
                         "as its final projection: it is not a sequence classifier with a linear head.")
    return heads[-1]


@dataclass(frozen=True)
class MixUpLevels:
    """The modules behind levels 0..n+1 of one model.

    ``blocks`` are the encoder blocks in call order; when ``shared`` they are fewer than n and
    called n / len(blocks) times each (ALBERT). ``head`` is the final projection (or its PEFT
    wrapper), whose input is level n+1. ``overrides`` maps a level to a module whose output is that
    level instead of the generic place (``LEVEL_OVERRIDES``). ``per_position_head``: the head runs
    at every position and the model reads row i at its last non-pad token (decoder classifiers).
    """

    num_blocks: int
    blocks: tuple[nn.Module, ...]
    head: nn.Module
    shared: bool
    overrides: tuple[tuple[int, nn.Module], ...] = ()
    per_position_head: bool = False

    @property
    def num_levels(self) -> int:
        return self.num_blocks + 2


def _deberta_v2_conv(model: nn.Module, levels: MixUpLevels) -> MixUpLevels:
    """DeBERTa-v2 with a convolution after block 1 (``conv_kernel_size > 0``, e.g. deberta-v2-xlarge)
    adds conv(embeddings) to block 1's output: the embeddings reach block 2 around block 1. Level 0
    is then the embeddings module's output and level 1 the convolution's output."""
    base = getattr(model, model.base_model_prefix)
    conv = getattr(base.encoder, "conv", None)
    if conv is None:
        return levels
    return replace(levels, overrides=((0, base.embeddings), (1, conv)))


LEVEL_OVERRIDES = {"deberta-v2": _deberta_v2_conv}


def find_mixup_levels(model: nn.Module) -> MixUpLevels:
    """Levels 0..n+1 of an encoder or decoder classifier (any transformers family, under PEFT too)."""
    model = unwrap_model(model)
    config = getattr(model, "config", None)
    name = type(model).__name__
    if config is None:
        raise ValueError(f"{name} has no config: MixUp needs a transformers model (e.g. AutoModelForSequenceClassification).")
    model_type = getattr(config, "model_type", "")
    if model_type in UNSUPPORTED_FAMILIES:
        raise ValueError(f"{name} has no MixUp levels: {model_type} {UNSUPPORTED_FAMILIES[model_type]}. "
                         "Train it with --mixup_method none.")
    n = num_encoder_blocks(config)
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0
             and not isinstance(m[0], nn.ModuleList) and len({type(b) for b in m}) == 1
             and any(True for _ in m[0].children())]
    blocks = next((m for m in lists if len(m) == n), None)
    shared = False
    if blocks is None:
        blocks = next((m for m in lists if len(m) < n and n % len(m) == 0), None)
        shared = True
    if blocks is None:
        raise ValueError(f"{name} has no MixUp levels: found no list of {n} encoder blocks. Train it with "
                         "--mixup_method none, or open an issue with the model name.")
    head_path, head = _outermost_wrapper(model, final_projection(model)[0])
    children = {child for child, _ in model.named_children()}
    per_position = "." not in head_path and children == {head_path, getattr(model, "base_model_prefix", None)}
    levels = MixUpLevels(n, tuple(blocks), head, shared, per_position_head=per_position)
    override = LEVEL_OVERRIDES.get(model_type)
    return override(model, levels) if override else levels
