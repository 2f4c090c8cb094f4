"""MixUpTrainingArguments: TrainingArguments plus the validated ``mixup_*`` fields."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .mixing import MIXUP_METHODS, MIXUP_PAD_TOKENS, MIXUP_PADDINGS, MIXUP_PARTNERS


def parse_layers(value) -> tuple[int, ...] | None:
    """'0,3,6,7' / [0, 3, 6, 7] / None -> (0, 3, 6, 7) / None, with a clear error otherwise."""
    if value is None or value == "" or value == "all":
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        layers = tuple(int(str(item).strip()) for item in items)
    except ValueError:
        raise ValueError(
            f"mixup_layers must be comma-separated layer numbers such as '0,3,6,7' (0 = input "
            f"embeddings, n+1 = pooled [CLS]), got {value!r}"
        ) from None
    if not layers or min(layers) < 0:
        raise ValueError(f"mixup_layers must be non-empty numbers >= 0 (0 = input embeddings), got {value!r}")
    return tuple(sorted(set(layers)))


@dataclass
class MixUpTrainingArguments(TrainingArguments):
    """TrainingArguments with MixUp settings; every field is a command-line flag via HfArgumentParser."""

    mixup_method: str = field(
        default="none",
        metadata={
            "help": "Where to mix: none (ERM), cls (pooled [CLS] vector), input (token embeddings), "
            "manifold (hidden states of a layer drawn per batch from --mixup_layers).",
            "choices": list(MIXUP_METHODS),
        },
    )
    mixup_alpha: float = field(
        default=1.0,
        metadata={"help": "λ ~ Beta(α, α) once per batch; α = 0 turns mixing off (ERM)."},
    )
    mixup_layers: str | None = field(
        default=None,
        metadata={
            "help": "Manifold MixUp: comma-separated eligible layers, 0 = input embeddings, 1..n = "
            "encoder blocks, n+1 = pooled [CLS] (e.g. '0,3,6,7'). Default: all of 0..n+1."
        },
    )
    mixup_padding: str = field(
        default="pair",
        metadata={
            "help": "Padding of mixed token sequences (input/manifold): pair = each pair padded to "
            "its longer sentence and attending it (the paper's proposal); max = every sentence "
            "padded to the batch's padded length and attending it; none = each row keeps its own mask. "
            "Decoder classifiers (Llama, Qwen, GPT-2 ...) are read at their last token, so there each pair "
            "is also moved to end at one position, and the filler goes before the shorter sentence.",
            "choices": list(MIXUP_PADDINGS),
        },
    )
    mixup_pad_token: str = field(
        default="sep",
        metadata={
            "help": "Token written by pair/max padding: sep (the paper's best), pad or unused0. A decoder "
            "tokenizer without a separator (GPT-2, Llama, Qwen ...) writes its eos token for sep.",
            "choices": list(MIXUP_PAD_TOKENS),
        },
    )
    mixup_partners: str = field(
        default="matching",
        metadata={
            "help": "Who mixes with whom: matching = random pairs mixed with each other (exact pair "
            "padding at every level); permutation = a random permutation, as most MixUp code "
            "(Manifold then needs --mixup_padding none or max).",
            "choices": list(MIXUP_PARTNERS),
        },
    )
    mixup_start: float = field(
        default=0.0,
        metadata={
            "help": "Fraction of training steps done before mixing starts (0 = from the start; "
            "0.5 = only the later half, as Sun et al. 2020)."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.mixup_method not in MIXUP_METHODS:
            raise ValueError(f"mixup_method must be one of {MIXUP_METHODS}, got {self.mixup_method!r}")
        if self.mixup_padding not in MIXUP_PADDINGS:
            raise ValueError(f"mixup_padding must be one of {MIXUP_PADDINGS}, got {self.mixup_padding!r}")
        if self.mixup_pad_token not in MIXUP_PAD_TOKENS:
            raise ValueError(f"mixup_pad_token must be one of {MIXUP_PAD_TOKENS}, got {self.mixup_pad_token!r}")
        if self.mixup_partners not in MIXUP_PARTNERS:
            raise ValueError(f"mixup_partners must be one of {MIXUP_PARTNERS}, got {self.mixup_partners!r}")
        if not 0 <= self.mixup_alpha < math.inf:  # also rejects NaN; inf would make every λ NaN
            raise ValueError(
                f"mixup_alpha must be >= 0 and finite (λ ~ Beta(α, α); 0 = no mixing), got {self.mixup_alpha}"
            )
        if not 0.0 <= self.mixup_start < 1.0:
            raise ValueError(f"mixup_start is a fraction of training in [0, 1), got {self.mixup_start}")
        layers = parse_layers(self.mixup_layers)
        if layers is not None and self.mixup_method != "manifold":
            raise ValueError(
                f"mixup_layers={self.mixup_layers!r} only applies to mixup_method='manifold' "
                f"(cls mixes at n+1, input at 0); got mixup_method={self.mixup_method!r}."
            )
        if self.mixup_method == "manifold" and layers is None:
            self.check_partners_padding(range(1, 2))  # the default S holds encoder blocks
        # Keep the field a plain string so that to_dict()/to_json_string() and the Hub stay happy.
        self.mixup_layers = None if layers is None else ",".join(map(str, layers))

    # transformers masks every field whose name ends in "_token" (hub_token is a secret) in the logged
    # arguments and in to_dict(); mixup_pad_token names a filler token (sep/pad/unused0), so show it.
    def to_dict(self):
        return {**super().to_dict(), "mixup_pad_token": self.mixup_pad_token}

    def __str__(self):
        masked = "mixup_pad_token=<MIXUP_PAD_TOKEN>,"
        return super().__str__().replace(masked, f"mixup_pad_token={self.mixup_pad_token},")

    __repr__ = __str__  # @dataclass would otherwise generate a repr that prints hub_token in clear

    @property
    def mixup_enabled(self) -> bool:
        return self.mixup_method != "none" and self.mixup_alpha > 0

    def check_partners_padding(self, block_levels) -> None:
        """Permutation partners have no shared pair length inside the encoder (see mixing.py)."""
        if self.mixup_partners == "permutation" and self.mixup_padding == "pair" and list(block_levels):
            raise ValueError(
                f"mixup_partners='permutation' with mixup_padding='pair' is exact only at levels 0 and n+1, "
                f"and Manifold MixUp here draws encoder blocks {list(block_levels)}: a partner's hidden states "
                "would be computed under another row's pair length. Use --mixup_padding none or max, or "
                "--mixup_partners matching."
            )

    def mixup_levels(self, num_hidden_layers: int) -> tuple[int, ...]:
        """Eligible levels for a model with n encoder blocks, validated against 0..n+1."""
        n = num_hidden_layers
        if self.mixup_method == "cls":
            return (n + 1,)
        if self.mixup_method == "input":
            return (0,)
        layers = parse_layers(self.mixup_layers) or tuple(range(n + 2))
        bad = [k for k in layers if k > n + 1]
        if bad:
            raise ValueError(
                f"mixup_layers {bad} are outside 0..{n + 1} for a model with {n} encoder layers "
                f"(0 = input embeddings, 1..{n} = encoder blocks, {n + 1} = pooled [CLS])."
            )
        self.check_partners_padding([k for k in layers if 1 <= k <= n])
        return layers
