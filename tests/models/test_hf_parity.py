"""Our import of each HF family vs transformers itself (the independent reference)."""

import jax
import numpy as np
import pytest
from flax import nnx

from gemini_embed import sharding
from gemini_embed.models.hf_import import load_hf_embedder
from tests.models.hf_fixtures import (FAMILIES, gemma_bidirectional_twin, hf_hidden,
                                      tiny_hf_model, token_batch)

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')


@pytest.fixture(scope='module', params=FAMILIES)
def saved(request, tmp_path_factory):
  family = request.param
  model = tiny_hf_model(family)
  path = tmp_path_factory.mktemp(family)
  model.save_pretrained(path)
  return family, model, str(path)


def _ours(path, mode, tokens, valid):
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  emb, cfg = load_hf_embedder(path, 8, mesh, sharding.DEFAULT_RULES, attention_mode=mode)
  hidden = nnx.jit(lambda m, t, v: m.backbone(t, v))(emb, tokens, valid)
  return np.asarray(hidden), emb, cfg


@pytest.mark.parametrize('mode', ['causal', 'bidirectional'])
def test_hidden_states_match_transformers(saved, mode):
  family, model, path = saved
  tokens, valid = token_batch(model.config.vocab_size)
  if mode == 'bidirectional' and family == 'gemma3':
    model = gemma_bidirectional_twin(model)
  ref = hf_hidden(model, tokens, valid, bidirectional=mode == 'bidirectional')
  ours, _, _ = _ours(path, mode, tokens, valid)
  err = np.max(np.abs(ours - ref)[valid])
  print(f'{family} {mode}: max |ours - transformers| = {err:.2e}')
  assert err < 1e-4


def test_bidirectional_differs_from_causal(saved):
  """Guards the parity test itself: the two modes must really differ."""
  family, model, path = saved
  tokens, valid = token_batch(model.config.vocab_size)
  causal, _, _ = _ours(path, 'causal', tokens, valid)
  bidir, _, _ = _ours(path, 'bidirectional', tokens, valid)
  assert np.max(np.abs(causal - bidir)[valid]) > 1e-2


def test_causal_logits_match_transformers(saved):
  family, model, path = saved
  tokens, valid = token_batch(model.config.vocab_size)
  hidden, emb, _ = _ours(path, 'causal', tokens, valid)
  ours = np.asarray(emb.backbone.logits(hidden))
  with torch.no_grad():
    ref = model(input_ids=torch.tensor(tokens, dtype=torch.long),
                attention_mask=torch.tensor(valid, dtype=torch.long)).logits.numpy()
  assert np.max(np.abs(ours - ref)[valid]) < 1e-4
