"""The forward hooks that mix hidden states at the levels ``levels.py`` finds.

Hooks instead of a rewritten forward: the model's own forward (attention masks, SDPA, gradient
checkpointing, PEFT adapters) stays exactly the library's, and a model without a plan is exactly
the parent model. ``torch.compile`` keeps the hooked modules; under compilation every level mixes
with a per-level weight tensor (1 everywhere but the drawn level), so neither the level nor λ is a
Python constant that the compiler would specialise on.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .levels import find_mixup_levels, unwrap_model
from .mixing import MixUpPlan, mix


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
