"""Loading the model a run fine-tunes: its config for the task, a pad token for decoder tokenizers,
and the LoRA adapter of ``--use_peft``.

Decoder classifiers (Llama, Qwen, Mistral, GPT-2 ...) read each row at its last non-pad token, so
they need ``config.pad_token_id`` to pool a batch of more than one row, and their tokenizers often
have no pad token: the end-of-sequence token then pads (the common choice, pad = eos), and a
tokenizer with neither is refused. With ``--use_peft`` the model becomes a ``peft.PeftModel``
(``TaskType.SEQ_CLS``: LoRA on ``--lora_target_modules``, the classification head trained in full
through ``modules_to_save``), as TRL's ``ModelConfig`` flags do; MixUp's hooks reach the adapted
modules, and the run saves the adapter, which plain peft reloads onto the base model.
"""

from __future__ import annotations

import logging
import warnings

from .levels import final_projection
from .tasks import Task

logger = logging.getLogger(__name__)


def load_model_and_tokenizer(model_args, task: Task):
    """(model, tokenizer) for ``task``: the config gets the task's labels (and --hidden_dropout_prob),
    a decoder tokenizer gets a pad token, and with --use_peft the model is wrapped in a LoRA adapter."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from .modeling import MixUpBertForSequenceClassification

    hub = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision, "token": model_args.token,
           "trust_remote_code": model_args.trust_remote_code}
    config = AutoConfig.from_pretrained(model_args.config_name or model_args.model_name_or_path,
                                        num_labels=task.num_labels, finetuning_task=task.name, **hub)
    if task.is_regression:
        config.problem_type = "regression"
    else:
        config.problem_type = "single_label_classification"
        config.id2label = dict(enumerate(task.label_names))
        config.label2id = {name: i for i, name in enumerate(task.label_names)}
    if model_args.hidden_dropout_prob is not None:
        if hasattr(config, "hidden_dropout_prob"):
            config.hidden_dropout_prob = model_args.hidden_dropout_prob
        else:  # e.g. DistilBERT calls it `dropout`; --paper_defaults must not break such models
            logger.warning("hidden_dropout_prob=%s ignored: %s configs have no such field",
                           model_args.hidden_dropout_prob, config.model_type)
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path, **hub)
    # BERT gets the hooked subclass; other models load as usual and MixUpTrainer says if it cannot mix them.
    # Under LoRA the hooks must be attached after peft has wrapped the head (its modules_to_save copy is
    # what runs), which MixUpTrainer does for any model without hooks of its own.
    hooked = config.model_type == "bert" and not model_args.use_peft
    model_class = MixUpBertForSequenceClassification if hooked else AutoModelForSequenceClassification
    set_pad_token(tokenizer, config)
    model = model_class.from_pretrained(model_args.model_name_or_path, config=config,
                                        ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, **hub)
    if model_args.use_peft:
        model = with_lora(model, model_args)
    return model, tokenizer


def set_pad_token(tokenizer, config) -> None:
    """Give a tokenizer without a pad token its end-of-sequence token as pad (pad = eos), and the
    config the tokenizer's pad id; refuse a tokenizer that has neither."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"The tokenizer {type(tokenizer).__name__} has no pad and no end-of-sequence token: "
                             "a batch cannot be padded. Give one with --tokenizer_name, or add a pad token to the "
                             "tokenizer files.")
        tokenizer.pad_token = tokenizer.eos_token
        logger.info("The tokenizer has no pad token: padding with its end-of-sequence token %r", tokenizer.eos_token)
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = tokenizer.pad_token_id


def linear_layer_names(model, exclude: str = "") -> list[str]:
    """The distinct last names of the model's ``nn.Linear`` layers outside the head ``exclude``, what
    ``--lora_target_modules`` names (``query``, ``value`` ... in BERT; ``q_proj``, ``v_proj`` ... in Llama)."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and not (exclude and name.split(".")[0] == exclude)})


def with_lora(model, model_args):
    """``model`` wrapped in a LoRA adapter (peft), with the classification head trained in full."""
    from peft import LoraConfig, TaskType, get_peft_model

    head = final_projection(model)[0].split(".")[0]  # the head module: classifier, score, ...
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=model_args.lora_r, lora_alpha=model_args.lora_alpha,
                        lora_dropout=model_args.lora_dropout, target_modules=model_args.target_modules,
                        modules_to_save=[head])
    names = linear_layer_names(model, exclude=head)  # before peft, which may have changed the model when it fails
    try:
        with warnings.catch_warnings():  # peft reads an attribute transformers 5 deprecates: the user can do nothing
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
            model = get_peft_model(model, config)
    except Exception as err:  # peft raises ValueError, TypeError, KeyError ... for targets it cannot adapt
        example = next((",".join(pair) for pair in (("q_proj", "v_proj"), ("query", "value"), ("q_lin", "v_lin"))
                        if set(pair) <= set(names)), ",".join(names[:2]))
        raise ValueError(f"--use_peft --lora_target_modules {model_args.lora_target_modules or '(peft default)'}: "
                         f"{' '.join(str(err).split())}. Set --lora_target_modules to Linear layers of "
                         f"{type(model).__name__} ({', '.join(names)}), e.g. {example}.") from None
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA r=%d on %s: %d of %d parameters trainable", model_args.lora_r,
                model_args.target_modules or "peft's default modules", trainable, total)
    return model

