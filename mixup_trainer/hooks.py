"""The forward hooks that mix hidden states at the levels ``levels.py`` finds.

Hooks instead of a rewritten forward: the model's own forward (attention masks, SDPA, gradient
checkpointing, PEFT adapters) stays exactly the library's, and a model without a plan is exactly
the parent model. ``torch.compile`` keeps the hooked modules; under compilation every level mixes
with a per-level weight tensor (1 everywhere but the drawn level; one weight per row when the plan
has per-row λ, as RegMixup's), so neither the level nor λ is a Python constant that the compiler
would specialise on. With the similarity kernel the drawn level's λ are computed in the hook from the
hidden states it mixes (``_weights``), once per plan.

Decoder classifiers (``levels.per_position_head``) apply the head at every position and keep row i
at its last non-pad token t_i. A pre-hook on the model reads t from ``input_ids`` with the model's
own rule; level n+1 then mixes λ · h_i[t_i] + (1 − λ) · h_p[t_p] into position t_i (a position-wise
mix would read the partner at t_i, the wrong token whenever t_p != t_i), and a hook on the head
keeps its output at t so that ``check_mixed`` can confirm that the model read exactly there.
Levels 0..n mix position by position, as for encoders, on a batch that ``align_for_mixing`` has
re-padded so that both rows of a pair are read at one position.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import torch
from torch import nn

from .levels import find_mixup_levels, unwrap_model
from .mixing import MixUpPlan, mix, mix_read_positions, pair_distances, read_positions


class MixUpHooks:
    """Hooks at levels 0..n+1; the level named by ``plan`` is mixed, the others pass through.

    The plan is set by the trainer before the forward pass and stays until the next one (so that
    gradient checkpointing, which re-runs blocks during backward, mixes identically); it has no
    effect in eval mode.
    """

    def __init__(self, model: nn.Module):
        self.levels = find_mixup_levels(model)
        self._read: torch.Tensor | None = None  # decoders: where the model reads each row (t_i)
        self._read_logits: torch.Tensor | None = None  # decoders: the head's output at t, to verify
        self._plan: MixUpPlan | None = None
        self._lams: torch.Tensor | None = None  # [n+2] or [n+2, rows]: λ at the drawn level, 1 elsewhere (compiled)
        self._warped: torch.Tensor | None = None  # the kernel's per-row λ, once computed for this plan
        self._mask: torch.Tensor | None = None  # kernel: the forward's attention_mask (positions both rows attend)
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
        self._handles.append(unwrap_model(model).register_forward_pre_hook(self._inputs_hook, with_kwargs=True))
        if self.levels.per_position_head:
            self._handles.append(self.levels.head.register_forward_hook(self._head_output_hook))

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
        self._read = self._read_logits = self._warped = self._mask = None
        if plan is not None:
            device = plan.partner.device
            if plan.row_lam is None:
                lams = torch.ones(self.num_levels, device=device)
                lams[plan.layer] = plan.lam
            else:
                lams = torch.ones(self.num_levels, len(plan.partner), device=device)
                lams[plan.layer] = plan.row_lam.to(device, torch.float32)
            self._lams = lams

    @property
    def applied_plan(self) -> MixUpPlan | None:
        """The plan as the forward pass applied it: with the kernel's per-row λ once it has warped them
        (the targets must be mixed with the same weights as the hidden states)."""
        if self._plan is not None and self._warped is not None:
            return replace(self._plan, row_lam=self._warped, kernel=None)
        return self._plan

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
        elif plan.layer != level:
            return hidden
        else:
            lam = self._weights(level, hidden)
            self.mixed = True
        if level == self.num_levels - 1 and self.levels.per_position_head:
            return mix_read_positions(hidden, self._read, plan, lam)
        return mix(hidden, plan, level, lam)

    def _weights(self, level: int, hidden: torch.Tensor):
        """λ at the drawn level: the plan's (one number, or one per row), or the similarity kernel's
        warping of it from the pairs' distances in ``hidden``, the representation being mixed (at the
        head of a decoder, each row's vector where the model reads it). Computed once per plan, so a
        block re-run by gradient checkpointing mixes with the same weights."""
        plan = self._plan
        if plan.kernel is None:
            return plan.lam if plan.row_lam is None else plan.row_lam
        if self._warped is None:
            mask = self._mask
            if level == self.num_levels - 1 and self.levels.per_position_head:
                rows = torch.arange(hidden.shape[0], device=hidden.device)
                hidden, mask = hidden[rows, self._read.to(hidden.device)], None
            if mask is not None and tuple(mask.shape) != tuple(hidden.shape[:2]):
                mask = None  # a level that is not one vector per token: every position counts
            distance = pair_distances(hidden, plan.partner, mask)
            self._warped = plan.kernel.warp(plan.row_weights, distance, plan.partner)
        return self._warped

    def check_mixed(self, logits: torch.Tensor | None = None) -> None:
        """After a training forward pass with a plan: fail loudly if no hook saw the drawn level
        (a model that calls ``block.forward()`` directly bypasses hooks), never train unmixed silently.
        For a decoder classifier, ``logits`` (the model's output) must be the head's output at the
        positions the hooks took as read positions: otherwise the model pools differently and the
        mixing would be wrong."""
        if self._plan is not None and not self.mixed:
            raise RuntimeError(
                f"MixUp: level {self._plan.layer} was drawn but its hook never ran during the forward pass; "
                "this model calls its modules in a way that bypasses forward hooks. Train it with "
                "--mixup_method none, or report the model."
            )
        if self._plan is not None and logits is not None and self.levels.per_position_head:
            read = self._read_logits
            if read is None or read.shape != logits.shape or not torch.equal(read.to(logits.dtype), logits):
                raise RuntimeError(
                    "MixUp: this model applies its head at every position but does not return the head's output "
                    "at each row's last non-pad token (model.config.pad_token_id), so mixing would combine the "
                    "wrong positions. Train it with --mixup_method none, or report the model."
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
        if isinstance(output, (tuple, list)):  # OpenAI GPT's blocks return a list
            return type(output)((self._mix(level, module, output[0]), *output[1:]))
        key = next(iter(output.keys()))  # a ModelOutput: its first field is the hidden state
        output[key] = self._mix(level, module, output[key])
        return output

    def _head_pre_hook(self, module, args):
        if self.levels.per_position_head and self._plan is not None and module.training and args[0].dim() != 3:
            raise RuntimeError(f"MixUp: the head of this decoder classifier reads a tensor of shape "
                               f"{tuple(args[0].shape)}, not one vector per position [batch, length, hidden].")
        return (self._mix(self.num_levels - 1, module, args[0]), *args[1:])

    def _inputs_hook(self, module, args, kwargs):
        """What the plan needs from the model's own inputs, read as the forward pass starts: for the
        similarity kernel, the attention mask (its token-level distances average over the positions both
        rows of a pair attend); for a decoder, where the model will read each row (its last non-pad
        token, computed as the model does)."""
        if self._plan is None or not module.training:
            return None
        if self._plan.kernel is not None:
            self._mask = kwargs.get("attention_mask")
        if not self.levels.per_position_head:
            return None
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:  # inputs_embeds: the model reads the last position
            embeds = kwargs["inputs_embeds"]
            self._read = torch.full(embeds.shape[:1], embeds.shape[1] - 1, dtype=torch.long, device=embeds.device)
        else:
            self._read = read_positions(input_ids, module.config.get_text_config().pad_token_id)
        return None

    def _head_output_hook(self, module, args, output):
        if self._plan is not None and module.training and self._read is not None:
            rows = torch.arange(output.shape[0], device=output.device)
            self._read_logits = output[rows, self._read.to(output.device)].detach()
        return None

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
