"""HF import: sharded index files, direct placement into 8-device shardings, clear errors."""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from gemini_embed import sharding
from gemini_embed.models.hf_import import load_hf_embedder
from tests.models.hf_fixtures import hf_hidden, tiny_hf_model, token_batch

pytest.importorskip('transformers')
safetensors_numpy = pytest.importorskip('safetensors.numpy')

RULES = sharding.DEFAULT_RULES


@pytest.fixture(scope='module')
def llama(tmp_path_factory):
  model = tiny_hf_model('qwen2')
  single = tmp_path_factory.mktemp('single')
  model.save_pretrained(single)
  sharded = tmp_path_factory.mktemp('sharded')
  model.save_pretrained(sharded, max_shard_size='20KB')
  assert os.path.exists(sharded / 'model.safetensors.index.json')
  return model, str(single), str(sharded)


def test_sharded_index_and_8_device_placement(llama):
  model, _, sharded_dir = llama
  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2))
  emb, cfg = load_hf_embedder(sharded_dir, 16, mesh, RULES, attention_mode='causal')
  q = emb.backbone.blocks.attn.q_proj[...]
  assert q.sharding.spec == P(None, 'fsdp', 'tensor')
  assert q.addressable_shards[0].data.shape == (3, 32, 2, 16)
  bias = emb.backbone.blocks.attn.q_bias[...]
  assert bias.sharding.spec == P(None, 'tensor')

  tokens, valid = token_batch(model.config.vocab_size)
  tokens = np.concatenate([tokens] * 4)  # batch 8 over data×fsdp = 4
  valid = np.concatenate([valid] * 4)
  t, v = jax.device_put((tokens, valid), sharding.batch_sharding(mesh, RULES, 2))
  ours = np.asarray(nnx.jit(lambda m, t, v: m.backbone(t, v))(emb, t, v))
  ref = hf_hidden(model, tokens, valid, bidirectional=False)
  assert np.max(np.abs(ours - ref)[valid]) < 1e-4


def _rewrite(src, dst, edit):
  shutil.copytree(src, dst)
  tensors = safetensors_numpy.load_file(os.path.join(src, 'model.safetensors'))
  edit(tensors)
  safetensors_numpy.save_file(tensors, os.path.join(dst, 'model.safetensors'))


def test_missing_tensor_is_named(llama, tmp_path):
  _, single, _ = llama
  _rewrite(single, tmp_path / 'ck', lambda t: t.pop('model.layers.1.mlp.up_proj.weight'))
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  with pytest.raises(KeyError, match=r"model\.layers\.1\.mlp\.up_proj\.weight.*blocks/mlp/up"):
    load_hf_embedder(str(tmp_path / 'ck'), 16, mesh, RULES)


def test_wrong_shape_is_named(llama, tmp_path):
  _, single, _ = llama
  _rewrite(single, tmp_path / 'ck', lambda t: t.update(
      {'model.layers.2.self_attn.o_proj.weight': np.zeros((64, 32), np.float32)}))
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  with pytest.raises(ValueError, match=r"o_proj\.weight.*\(64, 32\).*blocks/attn/o_proj"):
    load_hf_embedder(str(tmp_path / 'ck'), 16, mesh, RULES)


def test_unsupported_architecture_is_named(llama, tmp_path):
  _, single, _ = llama
  shutil.copytree(single, tmp_path / 'ck')
  path = tmp_path / 'ck' / 'config.json'
  cfg = json.loads(path.read_text())
  cfg['model_type'] = 'gpt_neox'
  path.write_text(json.dumps(cfg))
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  with pytest.raises(ValueError, match=r"config\.json: model_type='gpt_neox' is not supported"):
    load_hf_embedder(str(tmp_path / 'ck'), 16, mesh, RULES)
