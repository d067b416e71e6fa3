"""`make demo`: the end-to-end path that exists so far.

Builds the embedder from a config on a device mesh (sharded init, or import
from `init_from`), embeds a batch of token ids, and prints the parameter
shardings and the MRL prefix embeddings' shapes.
"""

from __future__ import annotations

import os

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/prefinetune.py:tiny', 'Experiment config (configs/NAME.py[:ARGS]).')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/demo', 'Where outputs go.')


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx

  from gemini_embed import sharding
  from gemini_embed.configlib import check_config
  from gemini_embed.models.embedder import Embedder, l2_normalize
  from gemini_embed.models.hf_import import load_hf_embedder
  from gemini_embed.models.model_config import TransformerConfig

  config = check_config(_CONFIG.value, jax.device_count())
  os.makedirs(_WORKDIR.value, exist_ok=True)
  mesh = sharding.make_mesh(config.mesh)
  print(f'mesh {dict(mesh.shape)} over {jax.device_count()} {jax.devices()[0].platform} devices')
  if config.init_from:
    model, cfg = load_hf_embedder(config.init_from, config.embed_dim, mesh, config.sharding_rules,
                                  seed=config.seed)
  else:
    cfg = TransformerConfig.from_config(config.model)
    model = sharding.sharded_init(lambda: Embedder(cfg, config.embed_dim, nnx.Rngs(config.seed)),
                                  mesh, config.sharding_rules)
  print(sharding.describe(nnx.state(model)))

  rng = np.random.default_rng(config.seed)
  batch, seq = config.batch_size, 16
  tokens = rng.integers(1, cfg.vocab_size, (batch, seq)).astype(np.int32)
  valid = np.arange(seq)[None, :] < rng.integers(4, seq + 1, (batch, 1))
  in_sharding = sharding.batch_sharding(mesh, config.sharding_rules, 2)
  tokens, valid = jax.device_put((tokens, valid), in_sharding)
  emb = nnx.jit(lambda m, t, v: m(t, v))(model, tokens, valid)
  for d in config.mrl_dims:
    e = l2_normalize(emb[:, :d])
    print(f'MRL prefix {d:5d}: embeddings {tuple(e.shape)}, '
          f'mean cosine to first row {float(jnp.mean(e @ e[0])):.3f}')
  np.save(os.path.join(_WORKDIR.value, 'demo_embeddings.npy'), np.asarray(emb))
  print(f'wrote {_WORKDIR.value}/demo_embeddings.npy')


if __name__ == '__main__':
  app.run(main)
