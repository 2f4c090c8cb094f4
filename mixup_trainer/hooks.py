"""Where any encoder classifier exposes the mixing levels 0..n+1, and the hooks that mix there.

The three kinds of level exist in every encoder classifier, under different attribute names, so
they are found from the module tree rather than from a per-family table:

* level 0: the input of the first encoder block (what the embeddings stage hands the encoder;
  for ALBERT, after its embedding projection): a forward *pre*-hook on the first block;
* level k = 1..n: the output of encoder block k: a forward hook on block k;
* level n+1: the vector that the classification head's final projection reads (BERT's pooled
  [CLS] after dropout, RoBERTa's and ELECTRA's dense+tanh output, DistilBERT's pre-classifier
  output, DeBERTa's ContextPooler output, ModernBERT's head output): a pre-hook on the last
  ``nn.Linear`` whose ``out_features == num_labels``.

The encoder blocks are the first ``nn.ModuleList`` of n blocks of one class. ALBERT shares one
block among all n layers (a list shorter than n that divides it): there the hooks count the
calls of each forward pass. ``LEVEL_OVERRIDES`` holds the families where this rule is provably
wrong; each entry has a test that fails without it.

Hooks instead of a rewritten forward: the model's own forward (attention masks, SDPA, gradient
checkpointing, PEFT adapters) stays exactly the library's, and a model without a plan is exactly
the parent model. ``torch.compile`` keeps the hooked modules; under compilation every level mixes
with a per-level weight tensor (1 everywhere but the drawn level), so neither the level nor λ is a
Python constant that the compiler would specialise on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import nn

from .mixing import MixUpPlan, mix

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


def _outermost_wrapper(model: nn.Module, path: str) -> nn.Module:
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
    return module


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
    level instead of the generic place (``LEVEL_OVERRIDES``).
    """

    num_blocks: int
    blocks: tuple[nn.Module, ...]
    head: nn.Module
    shared: bool
    overrides: tuple[tuple[int, nn.Module], ...] = ()

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
    """Levels 0..n+1 of an encoder classifier (any transformers family, under PEFT too)."""
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
    levels = MixUpLevels(n, tuple(blocks), _outermost_wrapper(model, final_projection(model)[0]), shared)
    override = LEVEL_OVERRIDES.get(model_type)
    return override(model, levels) if override else levels


class MixUpHooks:
    """Hooks at levels 0..n+1; the level named by ``plan`` is mixed, the others pass through.

    The plan is set by the trainer before the forward pass and stays until the next one (so that
    gradient checkpointing, which re-runs blocks during backward, mixes identically); it has no
    effect in eval mode.
    """

    def __init__(self, model: nn.Module):
        self.levels = find_mixup_levels(model)
        self._plan: MixUpPlan | None = None
        self._lams: torch.Tensor | None = None  # [n+2]: λ at the drawn level, 1 elsewhere (compiled path)
        self._calls = 0  # block calls in this forward pass (shared blocks)
        self.mixed = False  # whether the drawn level was mixed since the plan was set
        self._handles = []
        overridden = dict(self.levels.overrides)
        for level, module in overridden.items():
            self._handles.append(module.register_forward_hook(partial(self._output_hook, level)))
        for index, block in enumerate(self.levels.blocks):
            if index == 0 and 0 not in overridden:
                self._handles.append(block.register_forward_pre_hook(self._first_block_pre_hook, with_kwargs=True))
            self._handles.append(block.register_forward_hook(partial(self._block_hook, index + 1, overridden)))
        self._handles.append(self.levels.head.register_forward_pre_hook(self._head_pre_hook))

    @property
    def num_levels(self) -> int:
        """n + 2: the encoder input, n encoder blocks, the head's final projection."""
        return self.levels.num_levels

    @property
    def plan(self) -> MixUpPlan | None:
        return self._plan

    @plan.setter
    def plan(self, plan: MixUpPlan | None) -> None:
        self._plan = plan
        self._calls = 0
        self.mixed = False
        if plan is not None:
            lams = torch.ones(self.num_levels, device=plan.partner.device)
            lams[plan.layer] = plan.lam
            self._lams = lams

    # ------------------------------------------------------------------------------- mixing
    def _mix(self, level: int, module: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        plan = self._plan
        if plan is None or not module.training:
            return hidden
        if torch.compiler.is_compiling():
            # Every level mixes with a tensor weight (λ = 1 leaves h unchanged, exactly): no Python
            # constant for the compiler to specialise on, so one graph serves all levels and λs.
            lam = self._lams[level].to(hidden.dtype)
            self.mixed = True
            return lam * hidden + (1 - lam) * hidden.index_select(0, plan.partner)
        if plan.layer != level:
            return hidden
        self.mixed = True
        return mix(hidden, plan, level)

    def check_mixed(self) -> None:
        """After a training forward pass with a plan: fail loudly if no hook saw the drawn level
        (a model that calls ``block.forward()`` directly bypasses hooks), never train unmixed silently."""
        if self._plan is not None and not self.mixed:
            raise RuntimeError(
                f"MixUp: level {self._plan.layer} was drawn but its hook never ran during the forward pass; "
                "this model calls its modules in a way that bypasses forward hooks. Train it with "
                "--mixup_method none, or report the model."
            )

    def _first_block_pre_hook(self, module, args, kwargs):
        if self.levels.shared and self._calls % self.levels.num_blocks != 0:
            return None
        if args and torch.is_tensor(args[0]):
            return (self._mix(0, module, args[0]), *args[1:]), kwargs
        if torch.is_tensor(kwargs.get("hidden_states")):
            return args, {**kwargs, "hidden_states": self._mix(0, module, kwargs["hidden_states"])}
        raise ValueError(f"{type(module).__name__} takes no hidden_states tensor: cannot mix at level 0.")

    def _block_hook(self, level: int, overridden: dict, module, args, output):
        if self.levels.shared:
            self._calls += 1
            level = (self._calls - 1) % self.levels.num_blocks + 1
        if level in overridden:
            return None
        return self._mix_output(level, module, output)

    def _output_hook(self, level: int, module, args, output):
        return self._mix_output(level, module, output)

    def _mix_output(self, level: int, module, output):
        if torch.is_tensor(output):
            return self._mix(level, module, output)
        if isinstance(output, tuple):
            return (self._mix(level, module, output[0]), *output[1:])
        key = next(iter(output.keys()))  # a ModelOutput: its first field is the hidden state
        output[key] = self._mix(level, module, output[key])
        return output

    def _head_pre_hook(self, module, args):
        return (self._mix(self.num_levels - 1, module, args[0]), *args[1:])

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def get_or_attach_hooks(model: nn.Module) -> MixUpHooks:
    """The model's MixUp hooks: its own (MixUpBertForSequenceClassification) or attached now."""
    base = unwrap_model(model)
    hooks = getattr(base, "mixup_hooks", None)
    if hooks is None:
        hooks = MixUpHooks(base)
        base.mixup_hooks = hooks
    return hooks
