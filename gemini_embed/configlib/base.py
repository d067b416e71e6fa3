"""Fields every experiment config shares; `configs/*.py` start from here."""

from __future__ import annotations

import ml_collections

from gemini_embed.data.spec import data_config
from gemini_embed.models.presets import model_config
from gemini_embed.optim import default_optim_config
from gemini_embed.train_eval import default_eval_config
from gemini_embed.sharding import DEFAULT_RULES


def base_config(model: str = 'tiny') -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.stage = 'finetune'  # 'prefinetune' | 'finetune': which `data.datasets` entries a run reads
  # Backbone: a preset's shape; replaced by the checkpoint's own config when
  # `init_from` names an HF directory, a GGUF model directory or a workdir.
  c.model = model_config(model)
  c.init_from = ''
  # Embedding head: mean pool → linear projection → MRL prefixes.
  c.embed_dim = 3072
  c.mrl_dims = (768, 1536, 3072)
  # Device mesh (-1 = all remaining devices) and logical → mesh axis rules. slices > 1:
  # a multi-slice TPU job; the sizes are per slice and the slices extend `data` over DCN.
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1, slices=1))
  c.sharding_rules = DEFAULT_RULES
  c.batch_size = 1024  # global, over all hosts
  # Gradient caching: embed/back-propagate this many examples at a time while the
  # loss still sees the whole batch (gemini_embed/grad_cache.py). 0 = off.
  c.grad_cache_chunk = 0
  # NCE loss (gemini_embed/losses.py); the paper's formula with every option off.
  c.loss = ml_collections.ConfigDict(dict(
      temperature=0.05,         # τ; logits are cos / τ (sentence-transformers scale 20)
      learn_temperature=False,  # τ = exp(Embedder.log_temperature), a trained parameter
      mask_duplicates=True,     # drop in-batch columns repeating the query or positive
      cross_negatives=False,    # every example's hard negatives in every denominator
      hardness_alpha=0.0,       # EmbeddingGemma's hard-negative weight exp(α·sg(cos)); 5.0 there
      mrl_weights=(),           # one weight per mrl_dims entry; () = all 1
  ))
  c.total_steps = 1000
  # Input pipeline (gemini_embed/data/spec.py); configs add `c.data.datasets` entries.
  c.data = data_config()
  # Backbone from a checkpoint: its architecture, this run's policies (config.model's
  # attention_mode, attention_impl, precision, remat, scan_unroll), optionally only its first
  # N layers.
  c.truncate_layers = 0
  c.tokenizer = ''  # tokenizer.json; '' = the init_from directory's, else a byte-level one
  c.optim = default_optim_config()
  c.checkpoint = ml_collections.ConfigDict(dict(
      every=200, keep=3, keep_every=0, async_save=True))  # keep_every 0 = none kept forever
  c.log_every = 10
  c.eval = default_eval_config()  # periodic dev retrieval (gemini_embed/train_eval.py)
  # For MFU: peak FLOP/s of one device (TPU v5e bf16: 197e12; this CPU: measure it).
  c.peak_flops_per_device = 0.0
  return c


def tiny_mode(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The `tiny` argument of every config: seconds on a laptop CPU (what tests run)."""
  c.embed_dim = 96
  c.mrl_dims = (32, 64, 96)
  c.batch_size = 16
  c.total_steps = 4
  c.optim.warmup_steps = 1
  c.checkpoint.every = 2
  c.log_every = 1
  c.data.query_max_len = 32
  c.data.doc_max_len = 64
  c.data.num_buckets = 2
  return c
