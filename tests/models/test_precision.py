"""The precision policy (`config.model.precision`): parsed once, errors name the field
and the valid dtypes; bf16 compute keeps f32 params, embeddings and loss; a model.json
written with the old `dtype` / `param_dtype` fields still loads, mapped into the policy."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gemini_embed import checkpoint
from gemini_embed.losses import mrl_loss
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.precision import DTYPES, Precision, parse_precision
from gemini_embed.models.presets import PRESETS

BF16 = 'params=float32,compute=bfloat16,output=float32'


def test_policy_string_parses_into_its_three_dtypes():
  assert parse_precision(BF16) == Precision(jnp.float32, jnp.bfloat16, jnp.float32)
  cfg = TransformerConfig(**PRESETS['tiny'])
  assert cfg.precision == 'params=float32,compute=float32,output=float32'  # the f32 default
  assert cfg.policy == Precision(jnp.float32, jnp.float32, jnp.float32)


@pytest.mark.parametrize('text,why', [
    ('params=float32,compute=float64,output=float32', 'compute=float64'),
    ('params=float32,compute=bfloat16', "missing 'output'"),
    ('params=float32,compute=bfloat16,output=float32,loss=float32', "unknown key 'loss'"),
    ('bfloat16', "'bfloat16'"),
])
def test_a_bad_policy_names_the_field_and_the_valid_dtypes(text, why):
  with pytest.raises(ValueError) as e:
    TransformerConfig.from_config(dict(PRESETS['tiny'], precision=text))
  msg = str(e.value)
  assert msg.startswith('config.model.precision=') and why in msg, msg
  assert all(d in msg for d in DTYPES), msg
  assert 'params=float32,compute=bfloat16,output=float32' in msg, msg  # an example to copy


def test_bfloat16_compute_keeps_float32_params_embeddings_and_loss():
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(0, 512, (4, 10)), jnp.int32)
  valid = jnp.asarray(np.arange(10)[None] < np.array([[10], [6], [3], [8]]))
  cfg = TransformerConfig(**PRESETS['tiny'], precision=BF16)
  model = Embedder(cfg, 24, nnx.Rngs(0))
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
  emb = model(tokens, valid)
  assert emb.dtype == jnp.float32
  loss, _ = mrl_loss(emb[:2], emb[2:], dims=(8, 24), temperature=0.05)
  assert loss.dtype == jnp.float32

  low = Embedder(cfg.replace(precision='params=bfloat16,compute=bfloat16,output=bfloat16'), 24,
                 nnx.Rngs(0))
  assert all(p.dtype == jnp.bfloat16 for p in jax.tree.leaves(nnx.state(low, nnx.Param)))
  emb = low(tokens, valid)
  assert emb.dtype == jnp.bfloat16  # the output dtype, as asked
  loss, _ = mrl_loss(emb[:2], emb[2:], dims=(8, 24), temperature=0.05)
  assert loss.dtype == jnp.float32  # similarities and the loss stay float32


def _write_old_model_json(workdir, **model_fields):
  model = dict(TransformerConfig(**PRESETS['tiny']).to_dict())
  del model['precision']
  model.update(model_fields)
  with open(workdir / 'model.json', 'w') as f:
    json.dump({'model': model, 'embed_dim': 24, 'mrl_dims': [8, 24]}, f)


def test_an_old_model_json_with_dtype_fields_loads_into_the_policy(tmp_path):
  _write_old_model_json(tmp_path, dtype='bfloat16', param_dtype='float32')
  info = checkpoint.read_model_info(str(tmp_path))
  assert info.model.precision == BF16
  assert info.model == TransformerConfig(**PRESETS['tiny'], precision=BF16)


def test_an_old_model_json_with_a_bad_dtype_names_the_file_and_field(tmp_path):
  _write_old_model_json(tmp_path, dtype='float64', param_dtype='float32')
  with pytest.raises(ValueError, match=r'model\.json: model\.dtype=.float64.*float32'):
    checkpoint.read_model_info(str(tmp_path))
