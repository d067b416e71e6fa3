"""GGUF import on tiny files written like llama.cpp does: ours vs transformers' reader,
model directories, and errors that name the file and the tensor or key."""

import os
import re

import gguf
import jax
import numpy as np
import pytest
from flax import nnx

from gemini_embed import sharding
from gemini_embed.models import gguf_import
from gemini_embed.models.gguf_import import (GGUFCheckpoint, gguf_file, gguf_model_config,
                                             is_gguf_model_dir, load_gguf_embedder)
from gemini_embed.models.gguf_tokenizer import gguf_tokenizer
from tests.models.gguf_fixtures import tiny_gemma3_for_gguf, write_gguf
from tests.models.hf_fixtures import token_batch, tiny_hf_model

pytest.importorskip('torch')
pytest.importorskip('transformers')
Q8_0 = gguf.GGMLQuantizationType.Q8_0


@pytest.fixture(scope='module', params=['llama', 'gemma3'])
def tiny(request, tmp_path_factory):
  """(family, path, transformers' model read from that GGUF)."""
  from tests.models.gguf_reference import transformers_gguf_model
  family = request.param
  path = str(tmp_path_factory.mktemp(family) / f'tiny-{family}.gguf')
  if family == 'llama':   # untied head, 2-D weights quantised: the dequantisation path too
    write_gguf(tiny_hf_model('llama'), path, quantize=Q8_0)
  else:
    write_gguf(tiny_gemma3_for_gguf(), path)
  return family, path, transformers_gguf_model(path)


def _ours(path, tokens, valid):
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  emb, _ = load_gguf_embedder(path, 8, mesh, sharding.DEFAULT_RULES, attention_mode='causal')
  return np.asarray(nnx.jit(lambda m, t, v: m.backbone(t, v))(emb, tokens, valid)), emb


def test_hidden_states_and_logits_match_transformers_gguf_reader(tiny):
  from tests.models.gguf_reference import transformers_hidden
  import torch
  family, path, ref = tiny
  tokens, valid = token_batch(96)
  ours, emb = _ours(path, tokens, valid)
  err = np.max(np.abs(ours - transformers_hidden(ref, tokens, valid))[valid])
  print(f'tiny {family} GGUF: max |ours - transformers| = {err:.2e}')
  assert err < 1e-4
  with torch.no_grad():
    ref_logits = ref(input_ids=torch.tensor(tokens, dtype=torch.long),
                     attention_mask=torch.tensor(valid, dtype=torch.long)).logits.numpy()
  assert np.max(np.abs(np.asarray(emb.backbone.logits(ours)) - ref_logits)[valid]) < 1e-4


def test_config_from_metadata(tiny):
  family, path, ref = tiny
  cfg = gguf_model_config(path)
  c = ref.config
  assert (cfg.family, cfg.num_layers, cfg.width, cfg.mlp_dim) == (
      family, c.num_hidden_layers, c.hidden_size, c.intermediate_size)
  assert (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim) == (
      c.num_attention_heads, c.num_key_value_heads, c.head_dim)
  assert cfg.tie_embeddings == c.tie_word_embeddings
  if family == 'gemma3':
    assert cfg.layer_types == ('sliding',) * 5 + ('full',)
    assert cfg.sliding_window == c.sliding_window == 4
    assert (cfg.rope_base, cfg.rope_local_base) == (1e6, 1e4)
  else:
    assert cfg.rope_base == c.rope_parameters['rope_theta'] == 500.0


def test_the_parity_check_sees_a_missing_unpermute_or_norm_shift(tiny, monkeypatch):
  """Guards the parity test: without each llama.cpp correction the states differ."""
  from tests.models.gguf_reference import transformers_hidden
  family, path, ref = tiny
  if family == 'llama':
    monkeypatch.setattr(gguf_import, 'unpermute_qk_rows', lambda w, n: w)
  else:
    monkeypatch.setattr(GGUFCheckpoint, 'tensor', lambda self, name: _no_shift(self, name))
  tokens, valid = token_batch(96)
  ours, _ = _ours(path, tokens, valid)
  assert np.max(np.abs(ours - transformers_hidden(ref, tokens, valid))[valid]) > 1e-2


_ORIGINAL_TENSOR = GGUFCheckpoint.tensor


def _no_shift(self, name):
  x = _ORIGINAL_TENSOR(self, name)
  return x + 1.0 if name.endswith('norm.weight') else x


def test_truncated_backbone_loads_the_first_layers(tiny):
  _, path, _ = tiny
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  cfg = gguf_model_config(path).with_layers(2)
  emb, got = load_gguf_embedder(path, 8, mesh, sharding.DEFAULT_RULES, cfg=cfg)
  full = GGUFCheckpoint(path)
  assert got.num_layers == 2
  np.testing.assert_array_equal(np.asarray(emb.backbone.blocks.mlp.down[...])[1],
                                full.tensor('model.layers.1.mlp.down_proj.weight').T)


# ---- model directories ----------------------------------------------------------------

def test_model_directory_recognition(tiny, tmp_path):
  _, path, _ = tiny
  assert not is_gguf_model_dir(str(tmp_path)) and not is_gguf_model_dir('')
  os.link(path, tmp_path / 'm.gguf')
  assert is_gguf_model_dir(str(tmp_path))
  assert gguf_file(str(tmp_path)) == str(tmp_path / 'm.gguf')
  os.link(path, tmp_path / 'other.gguf')
  assert not is_gguf_model_dir(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='expected one .gguf file'):
    gguf_file(str(tmp_path))
  (tmp_path / gguf_import.MODEL_JSON).write_text('{"format": "gguf", "gguf_file": "other.gguf"}')
  assert is_gguf_model_dir(str(tmp_path)) and gguf_file(str(tmp_path)).endswith('other.gguf')


@pytest.mark.parametrize('text,error,message', [
    ('{"format": "gguf", ', ValueError, 'not valid JSON'),
    ('["m.gguf"]', ValueError, 'no "gguf_file"'),
    ('{"gguf_file": "../m.gguf"}', ValueError, 'not a file name'),
    ('{"gguf_file": "gone.gguf"}', FileNotFoundError, 'gone.gguf.*does not exist'),
])
def test_bad_manifest_names_it(tmp_path, text, error, message):
  (tmp_path / 'm.gguf').write_bytes(b'')
  (tmp_path / gguf_import.MODEL_JSON).write_text(text)
  with pytest.raises(error, match=message) as e:
    gguf_file(str(tmp_path))
  assert str(e.value).startswith(f'{tmp_path / gguf_import.MODEL_JSON}: ')


# ---- errors ---------------------------------------------------------------------------

def _variant(tmp_path, name, arch=None, extra=None, quantize=None):
  return write_gguf(tiny_hf_model('llama'), str(tmp_path / name), arch=arch, extra=extra,
                    quantize=quantize)


def test_unsupported_architecture_names_the_file(tmp_path):
  path = _variant(tmp_path, 'phi.gguf', arch='phi3')
  with pytest.raises(ValueError, match=r'phi\.gguf: general\.architecture=.phi3. is not supported'):
    GGUFCheckpoint(path)


def test_unsupported_quantisation_names_file_and_tensor(tmp_path):
  path = _variant(tmp_path, 'q81.gguf', extra=lambda w: w.add_tensor(
      'blk.0.extra.weight', np.zeros((64, 80), np.uint8),
      raw_dtype=gguf.GGMLQuantizationType.Q8_1))
  with pytest.raises(ValueError,
                     match=r'q81\.gguf: tensor blk\.0\.extra\.weight is stored as Q8_1'):
    GGUFCheckpoint(path)


@pytest.mark.parametrize('extra,message', [
    (lambda w: w.add_tensor('rope_freqs.weight', np.ones(8, np.float32)), 'rope_freqs'),
    (lambda w: w.add_float32('llama.attn_logit_softcapping', 50.0), 'soft-capping'),
    (lambda w: w.add_string('llama.rope.scaling.type', 'yarn'), "rope.scaling.type='yarn'"),
])
def test_unsupported_features_are_errors(tmp_path, extra, message):
  with pytest.raises(ValueError, match=message):
    GGUFCheckpoint(_variant(tmp_path, 'x.gguf', extra=extra))


def test_tokenizer_errors_name_the_key():
  meta = {'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.tokens': ['a', 'b'],
          'tokenizer.ggml.pre': 'qwen2', 'tokenizer.ggml.merges': ['a b']}
  with pytest.raises(ValueError, match=r"f\.gguf: tokenizer\.ggml\.pre='qwen2'"):
    gguf_tokenizer(lambda k, d=None: meta.get(k, d), 'f.gguf')
  meta['tokenizer.ggml.model'] = 'bert'
  with pytest.raises(ValueError, match=r"tokenizer\.ggml\.model='bert' is not supported"):
    gguf_tokenizer(lambda k, d=None: meta.get(k, d), 'f.gguf')


_LLAMA_META = {'general.architecture': 'llama', 'llama.embedding_length': 64,
               'llama.block_count': 2, 'llama.attention.head_count': 4,
               'llama.feed_forward_length': 96, 'llama.attention.layer_norm_rms_epsilon': 1e-5}


@pytest.mark.parametrize('key,value', [
    ('llama.block_count', 'two'),
    ('llama.embedding_length', [64, 64]),
    ('llama.attention.head_count', 2.5),
    ('llama.feed_forward_length', ['x', 'x']),
    ('llama.attention.layer_norm_rms_epsilon', 'tiny'),
    ('llama.rope.freq_base', [1.0]),
    ('llama.attention.head_count', 0),
])
def test_wrongly_typed_metadata_names_file_and_key(key, value):
  from gemini_embed.models.gguf_config import model_config_from_gguf
  meta = dict(_LLAMA_META, **{key: value})
  with pytest.raises(ValueError, match=rf'^f\.gguf: {re.escape(key)}=.* is not an? '):
    model_config_from_gguf(lambda k, d=None: meta.get(k, d), {'token_embd.weight': (96, 64)},
                           'f.gguf')


@pytest.mark.parametrize('key,value,message', [
    ('tokenizer.ggml.bos_token_id', 7, r'bos_token_id=7 is not a token id \(3 tokens\)'),
    ('tokenizer.ggml.eos_token_id', -1, r'eos_token_id=-1 is not a token id'),
    ('tokenizer.ggml.padding_token_id', 'a', r"padding_token_id='a' is not a token id"),
    ('tokenizer.ggml.token_type', [1, 1], r'token_type has 2 entries for 3 tokens'),
    ('tokenizer.ggml.scores', [0.0], r'scores has 1 entries for 3 tokens'),
    ('tokenizer.ggml.unknown_token_id', 3, r'unknown_token_id=3 is not a token id'),
])
def test_tokenizer_metadata_out_of_range_names_the_key(key, value, message):
  meta = {'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': ['<unk>', 'a', 'b'],
          'tokenizer.ggml.scores': [0.0, -1.0, -2.0], key: value}
  with pytest.raises(ValueError, match=rf'^f\.gguf: tokenizer\.ggml\.{message}'):
    gguf_tokenizer(lambda k, d=None: meta.get(k, d), 'f.gguf')
