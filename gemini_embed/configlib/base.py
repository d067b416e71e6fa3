"""Fields every experiment config shares; `configs/*.py` start from here."""

from __future__ import annotations

import ml_collections

from gemini_embed.models.presets import model_config
from gemini_embed.sharding import DEFAULT_RULES


def base_config(model: str = 'tiny') -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Backbone: a preset's shape; replaced by the checkpoint's own config when
  # `init_from` names an HF directory, a GGUF model directory or a workdir.
  c.model = model_config(model)
  c.init_from = ''
  # Embedding head: mean pool → linear projection → MRL prefixes.
  c.embed_dim = 3072
  c.mrl_dims = (768, 1536, 3072)
  # Device mesh (-1 = all remaining devices) and logical → mesh axis rules.
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
  c.sharding_rules = DEFAULT_RULES
  c.batch_size = 1024  # global, over all hosts
  c.loss = ml_collections.ConfigDict(dict(temperature=0.05))
  c.total_steps = 1000
  return c
