"""Pure tensor functions of MixUp: the per-batch plan, pair padding, mixing and soft targets.

Notation (Zhang & Vaidya, 2021): a batch of B examples (x_i, y_i); λ ~ Beta(α, α) once per batch;
each row i is mixed with a partner p(i) from the same batch at one level k of the network:

    h̃_i = λ · h_i + (1 − λ) · h_p(i)          ỹ_i = λ · y_i + (1 − λ) · y_p(i)

By default partners form a random perfect matching (p(p(i)) = i), so both rows of a pair see the
same two sentences and can share one padded length: a single forward pass is exact at every level.
With an odd batch the row left over is its own partner and trains on its clean example (h̃ = h,
ỹ = y for any λ). ``partners="permutation"`` draws p as a uniform random permutation instead (the
``torch.randperm`` of most MixUp code; about one row per batch is then its own partner). Row p(i)
may then be the partner of a row other than i, so no shared pair length exists below the mixing
level: pair padding is exact only at the input (level 0) and CLS (n + 1) levels, and Manifold
MixUp with permutation partners needs ``mixup_padding`` ``none`` or ``max``.

Encoders read every row at position 0 ([CLS]); ``pad_for_mixing`` extends each pair after its
end. Decoder classifiers read row i at its last non-pad token t_i, so ``align_for_mixing`` moves
the shorter row of each pair to end where the longer one ends and fills before it instead.

What "exact" means for a decoder. Let x̂ = align_for_mixing(x), the rows as the model reads them
under this plan. At a level k in 0..n, MixUp's logits are exactly the model's logits on x̂ with
the hidden states at level k replaced by λ · h_k(x̂) + (1 − λ) · h_k(x̂)[p], continued by the model
itself. So λ = 1 gives the clean forward of x̂, and λ = 0 gives row i the clean logits of row p(i)
of x̂ and the target y_p(i): rows and targets swap. The longer row of each pair is not changed
(x̂_b = x_b), so its clean forward is the model's ordinary one; the shorter row is read with fillers
before its first token, which its tokens attend (as an encoder's tokens attend the [SEP] filler
after them in the paper's pair padding). At level n+1 nothing is re-padded (x̂ = x) and the head
reads λ · h_i[t_i] + (1 − λ) · h_p[t_p] at row i's position t_i.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

MIXUP_METHODS = ("none", "cls", "input", "manifold")
MIXUP_PADDINGS = ("pair", "max", "none")
MIXUP_PAD_TOKENS = ("sep", "pad", "unused0")
MIXUP_PARTNERS = ("matching", "permutation")
MIXUP_OBJECTIVES = ("mix", "regmix")


def read_positions(input_ids: torch.Tensor, pad_token_id: int | None) -> torch.Tensor:
    """Where a decoder classifier reads each row: the rightmost token that is not ``pad_token_id``
    (transformers' ``last_non_pad_token``, right or left padding alike; the last position when the
    config has no pad token)."""
    if pad_token_id is None:
        return torch.full(input_ids.shape[:1], input_ids.shape[1] - 1, dtype=torch.long, device=input_ids.device)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    return (positions * (input_ids != pad_token_id)).argmax(-1)


def check_read_rows(input_ids: torch.Tensor, pad_token_id: int) -> None:
    """Refuse a decoder batch with a row made only of the pad token, naming the row.

    With pad = eos an empty text that tokenizes to eos alone (or to nothing) has no token that is
    not the pad token: the model reads it at column 0 (``read_positions``, as transformers does)
    wherever its tokens are, so no alignment can read it where its partner is read."""
    empty = (input_ids == pad_token_id).all(dim=1).nonzero().flatten().tolist()
    if empty:
        rows = f"row {empty[0]} of this batch has" if len(empty) == 1 else \
            f"rows {', '.join(map(str, empty))} of this batch have"
        raise ValueError(
            f"MixUp on a decoder classifier: {rows} no token other than the pad token (id {pad_token_id}), so the "
            "model reads it at column 0 wherever its tokens are and MixUp cannot read it at its partner's position. "
            "Drop empty texts from the training data, or use a tokenizer whose pad token differs from eos "
            "(or that adds a bos token)."
        )


@dataclass(frozen=True)
class SimilarityKernel:
    """Similarity-kernel MixUp (Bouniot, Mozharovskyi & d'Alché-Buc, "Tailoring Mixup to Data for
    Calibration", ICLR 2025): each row's λ is warped by how far apart the two mixed examples are,
    relative to the batch, so that close pairs mix strongly and distant pairs hardly at all.

    With d_i the squared distance between row i and its partner (``pair_distances``) and
    d̃_i = d_i / mean(d) over the rows that have a partner other than themselves:

        K_i = τ_max · exp(−(d̃_i − 1) / (2 τ_std²)),   τ_i = 1 / K_i,   λ_i' = F_Beta(τ_i, τ_i)(λ)

    where F_Beta(τ, τ) is the CDF of Beta(τ, τ) (the regularized incomplete beta function). τ = 1 is
    the identity; a large τ (distant pair) pushes λ' to 0 or 1; a small τ (close pair) pulls it to ½.
    A pair at the batch's mean distance gets τ = 1 / τ_max: with the default τ_max = 1 its λ is not
    changed. d is symmetric, so both rows of a pair get the same λ' and one forward pass stays exact.
    Rows that are their own partner (the odd row of a matching, RegMixup's clean rows) keep their λ
    and are left out of the mean. A batch whose pairs are all at distance 0 (identical rows) has no
    scale: every row keeps the unwarped λ. A batch of a single class is warped like any other (its
    mixed targets equal its labels whatever λ is; the kernel changes only how far the inputs move).
    τ_i is held to [1e-6, 1e6], where the CDF is already ½ or a step at ½ to double precision.
    """

    tau_max: float = 1.0
    tau_std: float = 0.5

    def tau(self, relative_distance: torch.Tensor) -> torch.Tensor:
        """τ_i = 1 / K_i from each pair's distance over the batch's mean, d̃_i, held to [1e-6, 1e6]."""
        exponent = (relative_distance - 1.0) / (2.0 * self.tau_std**2)
        return (torch.exp(exponent) / self.tau_max).clamp(1e-6, 1e6)

    def warp(self, lam: torch.Tensor, distance: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        """λ' [R] (float64, CPU) from each row's unwarped λ [R], its squared distance to its partner
        [R] and the partners [R]."""
        from scipy.special import betainc

        lam, distance = lam.detach().double().cpu(), distance.detach().double().cpu()
        partner = partner.cpu()
        paired = partner != torch.arange(len(partner))
        scale = distance[paired].mean() if paired.any() else torch.tensor(0.0, dtype=torch.float64)
        if not (scale > 0 and torch.isfinite(scale)):
            return lam
        tau = self.tau(distance / scale)
        warped = torch.from_numpy(betainc(tau.numpy(), tau.numpy(), lam.numpy()))
        return torch.where(paired, warped, lam)


def pair_distances(hidden: torch.Tensor, partner: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Squared Euclidean distance [R] between each row and its partner in ``hidden``: [R, H] (a pooled
    level), or [R, T, H] (a token level), then the mean over the positions both rows attend (``mask``
    [R, T]; all positions without one) of the squared distance at each position. Float32, no gradient."""
    with torch.no_grad():
        hidden = hidden.detach().float()
        partner = partner.to(hidden.device)
        squared = (hidden - hidden.index_select(0, partner)).pow(2)
        if hidden.dim() == 2:
            return squared.sum(-1)
        per_position = squared.flatten(2).sum(-1)
        if mask is None:
            return per_position.mean(-1)
        mask = mask.to(hidden.device, torch.float32)
        both = mask * mask.index_select(0, partner)
        return (per_position * both).sum(-1) / both.sum(-1).clamp(min=1.0)


@dataclass(frozen=True)
class MixUpPlan:
    """What one training batch mixes: partner of each row, the mixing weight λ and the level k.

    Level 0 is the embeddings output (Input MixUp), 1..n the output of encoder block k, n+1 the
    pooled [CLS] vector (CLS MixUp). ``row_lam`` (float64 [rows]) gives each row its own weight when
    set: RegMixup's clean rows (λ = 1, own partner, so h̃ = 1·h + 0·h = h exactly) and the rows a
    ``kernel`` warps; None means λ for every row, the plain MixUp of the paper. ``kernel`` warps the
    rows' weights at the drawn level, from the distances there (``SimilarityKernel``).
    """

    partner: torch.Tensor  # LongTensor [B]; a matching (partner[partner[i]] == i) or a permutation
    lam: float
    layer: int
    row_lam: torch.Tensor | None = None
    kernel: SimilarityKernel | None = None

    def to(self, device: torch.device) -> "MixUpPlan":
        return replace(self, partner=self.partner.to(device))

    @property
    def row_weights(self) -> torch.Tensor:
        """Each row's λ before any kernel warping: float64 [rows] on the CPU."""
        if self.row_lam is not None:
            return self.row_lam
        return torch.full((len(self.partner),), self.lam, dtype=torch.float64)


def regmix_plan(plan: MixUpPlan) -> MixUpPlan:
    """RegMixup's plan over 2B rows (Pinto et al., NeurIPS 2022): rows 0..B−1 are the batch as given,
    each its own partner with λ = 1 (h̃ = 1·h + 0·h = h: an ordinary forward pass), rows B..2B−1 its
    copy re-padded for mixing, row B + i mixed with row B + p(i) under the plan's λ. Partners stay
    inside the mixed half, so one forward pass over the 2B rows is exact at every level."""
    batch_size = len(plan.partner)
    partner = torch.cat([torch.arange(batch_size, device=plan.partner.device), plan.partner + batch_size])
    row_lam = torch.cat([torch.ones(batch_size, dtype=torch.float64), plan.row_weights])
    return replace(plan, partner=partner, row_lam=row_lam)


def draw_partners(batch_size: int, rng: np.random.Generator, scheme: str = "matching") -> torch.Tensor:
    """A random perfect matching of the rows (with an odd batch one row is its own partner), or with
    ``scheme="permutation"`` a uniform random permutation."""
    if scheme not in MIXUP_PARTNERS:
        raise ValueError(f"mixup_partners must be one of {MIXUP_PARTNERS}, got {scheme!r}")
    order = rng.permutation(batch_size)
    if scheme == "permutation":
        return torch.from_numpy(order).long()
    partner = np.arange(batch_size)
    half = batch_size // 2
    first, second = order[:half], order[half : 2 * half]
    partner[first] = second
    partner[second] = first
    return torch.from_numpy(partner).long()


def draw_plan(
    batch_size: int, alpha: float, layers: Sequence[int], rng: np.random.Generator, partners: str = "matching",
    kernel: SimilarityKernel | None = None,
) -> MixUpPlan:
    """λ ~ Beta(α, α), k uniform over the eligible levels, partners a random matching (or permutation);
    the kernel, if any, warps λ per pair in the forward pass (the draws are the same with or without)."""
    lam = float(rng.beta(alpha, alpha))
    layer = int(layers[rng.integers(len(layers))])
    return MixUpPlan(partner=draw_partners(batch_size, rng, partners), lam=lam, layer=layer, kernel=kernel)


def mix(hidden: torch.Tensor, plan: MixUpPlan, level: int | None = None, lam=None) -> torch.Tensor:
    """λ · h + (1 − λ) · h[partner], along the batch dimension (dim 0). λ is ``lam`` if given (a
    number, a 0-d tensor, or one weight per row), else ``plan.row_lam`` if set, else ``plan.lam``."""
    partner = plan.partner.to(hidden.device)
    if hidden.shape[0] != partner.shape[0]:
        where = "" if level is None else f" at level {level}"
        raise ValueError(
            f"MixUp: the hidden states{where} have {hidden.shape[0]} rows for a batch of {partner.shape[0]}: "
            "this model packs or unpads its sequences (e.g. attn_implementation='flash_attention_2'). "
            "Load it with attn_implementation='sdpa' or 'eager' to mix."
        )
    if lam is None:
        lam = plan.lam if plan.row_lam is None else plan.row_lam
    if torch.is_tensor(lam) and lam.dim() == 1:  # one weight per row, broadcast over the rest
        lam = lam.to(hidden.device, hidden.dtype).view(-1, *([1] * (hidden.dim() - 1)))
    return lam * hidden + (1.0 - lam) * hidden.index_select(0, partner)


def mix_read_positions(hidden: torch.Tensor, read: torch.Tensor, plan: MixUpPlan, lam=None) -> torch.Tensor:
    """Level n+1 of a decoder classifier: ``hidden`` [B, T, H] feeds a head applied at every
    position, and the model keeps row i's output at position t_i = ``read[i]``. Row i's vector
    there becomes λ · h_i[t_i] + (1 − λ) · h_p[t_p], each row read where the model reads it; the
    other positions are never read and stay as they are."""
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    read = read.to(hidden.device)
    pooled = hidden[rows, read]
    return hidden.index_put((rows, read), mix(pooled, plan, lam=lam))


def pad_for_mixing(
    batch: dict[str, torch.Tensor], partner: torch.Tensor, mode: str, pad_token_id: int
) -> dict[str, torch.Tensor]:
    """Re-pad a right-padded batch so that mixed rows attend what the paper's Appendix B asks.

    - ``pair``: each row is extended with ``pad_token_id`` up to the longer sentence of its pair,
      and attends that length; both rows of a pair then share one mask (the union of their masks).
    - ``max``: every row is extended to the full padded length of the batch (max_seq_length when
      the collator padded to it) and attends all of it.
    - ``none``: unchanged; each row keeps its own padding and mask (what TMix does).

    The extension is real input: the filler tokens run through every layer below the mixing layer.
    ``token_type_ids`` of the filler stay 0, as ordinary padding. Returns a new dict.

    With a permutation (partner[partner[i]] != i) under ``pair``, row j also serves as the partner of
    the row i with p(i) = j, so its filler is written up to that row's pair length as well while its
    mask stays its own pair length: exact for Input MixUp, where mixing happens before any attention.
    """
    if mode == "none":
        return batch
    mask = batch["attention_mask"]
    if (mask[:, 1:] > mask[:, :-1]).any():
        raise ValueError(
            f"mixup_padding={mode!r} needs right-padded rows (real tokens first, then padding), and this batch "
            "is padded on the left or has holes in its attention_mask. Set tokenizer.padding_side = 'right', "
            "or use mixup_padding='none'."
        )
    seq_len = mask.shape[1]
    lengths = mask.sum(dim=1)
    if mode == "pair":
        target = torch.maximum(lengths, lengths.index_select(0, partner.to(lengths.device)))
    elif mode == "max":
        target = torch.full_like(lengths, seq_len)
    else:
        raise ValueError(f"mixup_padding must be one of {MIXUP_PADDINGS}, got {mode!r}")
    # The rows that take row j as partner (inverse permutation) need its filler up to their length too.
    inverse = torch.argsort(partner.to(lengths.device))
    written = torch.maximum(target, target.index_select(0, inverse))
    positions = torch.arange(seq_len, device=mask.device).unsqueeze(0)
    real = positions < lengths.unsqueeze(1)
    out = dict(batch)
    out["input_ids"] = batch["input_ids"].masked_fill(~real & (positions < written.unsqueeze(1)), pad_token_id)
    out["attention_mask"] = mask.masked_fill(~real & (positions < target.unsqueeze(1)), 1)
    return out


def align_for_mixing(
    batch: dict[str, torch.Tensor], partner: torch.Tensor, mode: str, filler_id: int | None, pad_token_id: int
) -> dict[str, torch.Tensor]:
    """Re-pad a decoder classifier's batch (right or left padded) so that each pair is read at one
    position: the decoder counterpart of ``pad_for_mixing``.

    The model reads row i at t_i, its last token that is not ``pad_token_id`` (``read_positions``).
    Mixing position by position at a level 0..n is exact only if both rows of a pair are read at
    the same position, attend the same positions and get the same position ids. So each row is
    shifted right until its read position is the pair's (a *matching*: max(t_i, t_p(i)); a
    permutation: the batch's largest t; ``max``: the last column), and then, mirroring the
    encoders' Appendix-B padding at the other end:

    - ``pair``: the shorter row is filled with ``filler_id`` *before* its first token back to the
      longer row's length; both rows attend that span (one mask), so they are the same length,
      end at the same column and get the model's own positions (its ``arange``) there;
    - ``max``: every row ends at the last column, is filled back to column 0 and attends all of it;
    - ``none``: rows are only shifted (the model then reads each pair at one position); each keeps
      its own mask, with no filler (as TMix).

    The longer row of a pair is not moved, so it is exactly the row the model reads without MixUp;
    the shorter row is what the model reads with fillers before it (under causal attention its
    tokens attend them). Tokens after a row's read position (a pad token used inside the row, e.g.
    a trailing eos with pad = eos) are dropped: under causal attention they cannot change what is
    read. ``position_ids`` in the batch are refused (moving them is the model's business), and so is
    a row made only of the pad token (``check_read_rows``: the model reads it at column 0 wherever
    it is moved). Returns a new dict; ``token_type_ids`` move with their tokens (0 elsewhere).
    """
    if mode not in MIXUP_PADDINGS:
        raise ValueError(f"mixup_padding must be one of {MIXUP_PADDINGS}, got {mode!r}")
    if "position_ids" in batch:
        raise ValueError("MixUp re-pads decoder batches for levels 0..n and cannot move `position_ids`: "
                         "leave them out of the batch (the model derives them), or use mixup_method='cls'.")
    if filler_id is None and mode != "none":
        raise ValueError(f"mixup_padding={mode!r} needs a filler token id (mixup_pad_token).")
    ids, mask = batch["input_ids"], batch["attention_mask"].bool()
    check_read_rows(ids, pad_token_id)
    batch_size, seq_len = ids.shape
    positions = torch.arange(seq_len, device=ids.device).unsqueeze(0)
    read = read_positions(ids, pad_token_id)
    starts = mask.int().argmax(dim=1)
    runs = mask[:, :1].sum(1) + (mask[:, 1:] & ~mask[:, :-1]).sum(1)
    if (runs != 1).any() or not mask.gather(1, read.unsqueeze(1)).all():
        raise ValueError(
            "MixUp on a decoder classifier needs each row to attend one run of tokens that contains the "
            "position the model reads (its last token that is not the pad token). This batch has rows without "
            "tokens, holes in the attention_mask, or a pad token id different from model.config.pad_token_id: "
            "set model.config.pad_token_id = tokenizer.pad_token_id."
        )
    partner = partner.to(ids.device)
    matching = torch.equal(partner.index_select(0, partner), torch.arange(batch_size, device=ids.device))
    if mode == "max":
        end = torch.full_like(read, seq_len - 1)
    elif matching:
        end = torch.maximum(read, read.index_select(0, partner))
    else:  # with a permutation row j is also the partner of a third row: one end for the whole batch
        end = torch.full_like(read, int(read.max()))
    src = positions - (end - read).unsqueeze(1)  # the column each column takes its token from
    keep = (src >= starts.unsqueeze(1)) & (src <= read.unsqueeze(1))
    length = read - starts + 1
    if mode == "pair":
        target = torch.maximum(length, length.index_select(0, partner))
    elif mode == "max":
        target = end + 1
    else:
        target = length
    # As in pad_for_mixing: the rows that take row j as partner need its filler over their span too.
    written = target if mode == "none" else torch.maximum(target, target.index_select(0, torch.argsort(partner)))
    before_end = positions <= end.unsqueeze(1)
    attend = before_end & (positions > (end - target).unsqueeze(1))
    fill = before_end & (positions > (end - written).unsqueeze(1)) & ~keep
    src = src.clamp(0, seq_len - 1)
    out = dict(batch)
    for key, value in batch.items():
        if torch.is_tensor(value) and value.shape == ids.shape and key not in ("input_ids", "attention_mask"):
            out[key] = torch.where(keep, value.gather(1, src), torch.zeros_like(value))
    moved = torch.where(keep, ids.gather(1, src), torch.full_like(ids, pad_token_id))
    out["input_ids"] = moved if filler_id is None else moved.masked_fill(fill, filler_id)
    out["attention_mask"] = attend.to(batch["attention_mask"].dtype)
    return out


def soft_targets(
    labels: torch.Tensor, num_classes: int, plan: MixUpPlan | None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """ỹ = λ · smooth(onehot(y)) + (1 − λ) · smooth(onehot(y[partner])), float [B, C].

    Label smoothing applies to each one-hot target before mixing: (1 − ε) · onehot + ε / C.
    """
    if labels.dtype.is_floating_point or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"MixUp needs integer class labels in 0..{num_classes - 1}; got values "
            f"{labels.unique().tolist()[:10]} of dtype {labels.dtype}. Map labels to class ids "
            "(label2id) and drop rows without a label before training."
        )
    targets = F.one_hot(labels, num_classes).to(torch.float32)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    if plan is not None:
        targets = mix(targets, plan)
    return targets


def mixup_per_example_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    plan: MixUpPlan | None,
    problem_type: str,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Per-example loss [B] against the mixed targets, in float32.

    single-label classification: soft-target cross-entropy, identical to
    λ·CE(y) + (1−λ)·CE(y[partner]); regression: squared error to the mixed float target;
    multi-label: binary cross-entropy to the mixed multi-hot target, averaged over labels.
    """
    logits = logits.float()
    if problem_type == "regression":
        targets = labels.to(logits.dtype).view(logits.shape[0], -1)
        if plan is not None:
            targets = mix(targets, plan)
        return (logits.view_as(targets) - targets).pow(2).mean(dim=1)
    if problem_type == "multi_label_classification":
        targets = labels.to(logits.dtype)
        if plan is not None:
            targets = mix(targets, plan)
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=1)
    targets = soft_targets(labels, logits.shape[-1], plan, label_smoothing)
    return F.cross_entropy(logits, targets, reduction="none")


def resolve_pad_token_id(tokenizer, name: str, decoder: bool = False) -> int:
    """The token id that pair/max padding writes: [SEP] (the paper's best), [PAD] or [unused0].

    Decoder tokenizers (GPT-2, Llama, Qwen ...) have no separator: there ``sep`` is the eos token,
    the separator between documents that a decoder saw in pre-training (``decoder=True``).
    """
    if name not in MIXUP_PAD_TOKENS:
        raise ValueError(f"mixup_pad_token must be one of {MIXUP_PAD_TOKENS}, got {name!r}")
    if tokenizer is None:
        raise ValueError(
            f"mixup_pad_token={name!r} needs the tokenizer to look up its id: pass "
            "processing_class=tokenizer to MixUpTrainer (or mixup_padding='none')."
        )
    if name == "sep":
        token, token_id = tokenizer.sep_token, tokenizer.sep_token_id
        if token_id is None and decoder:
            token, token_id = tokenizer.eos_token, tokenizer.eos_token_id
    elif name == "pad":
        token, token_id = tokenizer.pad_token, tokenizer.pad_token_id
    else:
        token = "[unused0]"
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id == tokenizer.unk_token_id:
            token_id = None
    if token_id is None:
        what = "separator or eos" if name == "sep" and decoder else (token or name)
        raise ValueError(
            f"mixup_pad_token={name!r}: the tokenizer {type(tokenizer).__name__} has no "
            f"{what} token. Choose another of {MIXUP_PAD_TOKENS}."
        )
    return int(token_id)
