"""MixUpTrainingArguments: TrainingArguments plus the validated ``mixup_*`` fields."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .mixing import MIXUP_METHODS, MIXUP_OBJECTIVES, MIXUP_PAD_TOKENS, MIXUP_PADDINGS, MIXUP_PARTNERS, SimilarityKernel

#: λ ~ Beta(α, α) when --mixup_alpha is not given: the paper's 1.0 for MixUp, and for RegMixup a large α
#: (λ near ½, far from the data: the clean term keeps the model on it); Pinto et al. use 10 or 20.
DEFAULT_ALPHA = {"mix": 1.0, "regmix": 10.0}


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
    mixup_alpha: float | None = field(
        default=None,
        metadata={"help": "λ ~ Beta(α, α) once per batch; α = 0 turns mixing off (ERM). Default: 1.0, or 10 with "
                  "--mixup_objective regmix (RegMixup's large α; its authors use 10 or 20)."},
    )
    mixup_objective: str = field(
        default="mix",
        metadata={
            "help": "mix = MixUp: the loss on the mixed batch alone (the paper); regmix = RegMixup (Pinto et al., 2022): "
            "CE on the clean batch + η · the MixUp loss, in one forward pass over the batch and its mixed copy "
            "(2x rows: about 2x the step time and activation memory).",
            "choices": list(MIXUP_OBJECTIVES),
        },
    )
    mixup_reg_weight: float = field(
        default=1.0,
        metadata={"help": "RegMixup's η: loss = CE(clean) + η · MixUp loss (--mixup_objective regmix only)."},
    )
    mixup_similarity_kernel: bool = field(
        default=False,
        metadata={"help": "Similarity-kernel MixUp (Bouniot et al., 2025): warp each pair's λ by the pair's distance "
                  "at the mixing level relative to the batch's, so close pairs mix strongly and distant ones hardly."},
    )
    mixup_kernel_tau_max: float = field(
        default=1.0, metadata={"help": "The similarity kernel's amplitude τ_max (the authors' default 1)."}
    )
    mixup_kernel_tau_std: float = field(
        default=0.5, metadata={"help": "The similarity kernel's width τ_std, in units of the batch's mean distance "
                               "(the authors' default 0.5)."}
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
        if self.mixup_objective not in MIXUP_OBJECTIVES:
            raise ValueError(f"mixup_objective must be one of {MIXUP_OBJECTIVES}, got {self.mixup_objective!r}")
        if self.mixup_alpha is not None and not 0 <= self.mixup_alpha < math.inf:  # NaN too; inf: every λ NaN
            raise ValueError(
                f"mixup_alpha must be >= 0 and finite (λ ~ Beta(α, α); 0 = no mixing), got {self.mixup_alpha}"
            )
        if not 0 < self.mixup_reg_weight < math.inf:
            raise ValueError(f"mixup_reg_weight (RegMixup's η) must be positive and finite, got {self.mixup_reg_weight}")
        if self.mixup_reg_weight != 1.0 and self.mixup_objective != "regmix":
            raise ValueError(f"mixup_reg_weight={self.mixup_reg_weight} weighs RegMixup's mixed term: it needs "
                             "mixup_objective='regmix' (got 'mix', where the mixed loss is the whole loss).")
        if not (0 < self.mixup_kernel_tau_max < math.inf and 0 < self.mixup_kernel_tau_std < math.inf):
            raise ValueError(f"mixup_kernel_tau_max and mixup_kernel_tau_std must be positive and finite, got "
                             f"{self.mixup_kernel_tau_max} and {self.mixup_kernel_tau_std}")
        variant = [f for f, on in (("mixup_objective='regmix'", self.mixup_objective == "regmix"),
                                   ("mixup_similarity_kernel", self.mixup_similarity_kernel)) if on]
        if variant and self.mixup_method == "none":
            raise ValueError(f"{' and '.join(variant)} with mixup_method='none': nothing is mixed. Choose where to mix "
                             "(--mixup_method cls, input or manifold; in a comparison, an arm such as manifold+reg or manifold+sk).")
        if self.mixup_similarity_kernel and self.torch_compile:
            raise ValueError("mixup_similarity_kernel with torch_compile: the kernel warps λ with SciPy's incomplete "
                             "beta function on the host, which a compiled graph cannot hold. Drop --torch_compile, or "
                             "--mixup_similarity_kernel.")
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
    def alpha(self) -> float:
        """The α of λ ~ Beta(α, α): --mixup_alpha, else the objective's default (``DEFAULT_ALPHA``). The
        field stays unset when not given, so a comparison's RegMixup arm gets RegMixup's own default."""
        return DEFAULT_ALPHA[self.mixup_objective] if self.mixup_alpha is None else self.mixup_alpha

    @property
    def mixup_enabled(self) -> bool:
        return self.mixup_method != "none" and self.alpha > 0

    @property
    def similarity_kernel(self) -> SimilarityKernel | None:
        """The kernel that warps each pair's λ (--mixup_similarity_kernel), else None."""
        if not self.mixup_similarity_kernel:
            return None
        return SimilarityKernel(self.mixup_kernel_tau_max, self.mixup_kernel_tau_std)

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
