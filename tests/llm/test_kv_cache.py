"""Prefill + KV-cache decoding against transformers (the independent reference), on tiny
random models of both cache layouts: Llama (global attention) and Gemma 3 (sliding
window of 6 on local layers, so decoding runs past the window)."""

import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

from gemini_embed import sharding
from gemini_embed.llm.decode import Generator
from gemini_embed.llm.model import load_llm
from gemini_embed.models.kv_cache import KVCache
from tests.llm.tiny_llm import compare_greedy, left_padded, save_tiny_llm, transformers_greedy

pytest.importorskip('torch')
pytest.importorskip('transformers')

RULES = sharding.DEFAULT_RULES
NEW = 10


@pytest.fixture(scope='module', params=['llama', 'gemma3'])
def tiny(request, tmp_path_factory):
  directory = str(tmp_path_factory.mktemp(request.param))
  ref = save_tiny_llm(directory, request.param)
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  llm = dataclasses.replace(load_llm(directory, mesh, RULES), eos_ids=())  # as the reference
  rng = np.random.default_rng(3)
  prompts = [[int(t) for t in rng.integers(0, 256, n)] for n in (13, 5, 9, 2)]
  tokens, logits = transformers_greedy(ref, prompts, NEW)
  return llm, mesh, prompts, tokens, logits


def test_cached_logits_match_transformers(tiny):
  """Prefill, then one token per step fed back (the reference's), every step's logits."""
  llm, _, prompts, ref_tokens, ref_logits = tiny
  ids, mask = left_padded(prompts)
  b, s = ids.shape

  @nnx.jit
  def run(model, tokens, valid, positions, cache):
    hidden, cache = model(tokens, valid, positions, cache)
    return model.logits(hidden[:, -1:])[:, 0], cache

  positions = np.maximum(np.cumsum(mask, 1) - 1, 0)
  logits, cache = run(llm.model, ids, mask.astype(bool), positions, KVCache.init(llm.cfg, b, s + NEW))
  ours = [np.asarray(logits)]
  lengths = mask.sum(1)
  for t in range(NEW - 1):
    logits, cache = run(llm.model, ref_tokens[:, t:t + 1], np.ones((b, 1), bool),
                        (lengths + t)[:, None], cache)
    ours.append(np.asarray(logits))
  ours = np.stack(ours)
  err = np.abs(ours - ref_logits).max()
  print(f'\n{llm.cfg.family}: max |logits - transformers| over {NEW} steps = {err:.2e}')
  np.testing.assert_allclose(ours, ref_logits, atol=1e-4, rtol=1e-4)
  assert int(cache.index) == s + NEW - 1


def test_greedy_generation_matches_and_compiles_once_per_bucket(tiny):
  llm, mesh, prompts, ref_tokens, ref_logits = tiny
  gen = Generator(llm, mesh, RULES, batch_size=4, chunk=4)
  out = gen.generate(prompts, range(4), max_new_tokens=NEW)
  accepted, failures = compare_greedy([c.tokens for c in out], ref_tokens, ref_logits)
  print(f'\n{llm.cfg.family}: {4 - accepted}/4 rows equal token for token, {accepted} '
        'near-tie divergences accepted')
  assert not failures, failures
  assert all(c.finish_reason == 'length' and len(c.tokens) == NEW for c in out)
  # Other prompts in the same length bucket (16), fewer rows: no new compile.
  gen.generate([p[:3] for p in prompts[:3]], range(3), max_new_tokens=NEW)
  assert gen.traces == {'prefill': 1, 'decode': 1}


def test_eos_and_stop_strings_end_a_row(tiny):
  llm, mesh, prompts, ref_tokens, _ = tiny
  if llm.cfg.family != 'llama':
    pytest.skip('host-side logic, the same for every family (tiny Gemma repeats one token)')
  rows = [[int(t) for t in r] for r in ref_tokens]
  # The first (row, step) whose token is new in its row: made the EOS, the row ends there.
  r, t = next((r, t) for r in range(4) for t in range(1, NEW) if rows[r][t] not in rows[r][:t])
  with_eos = dataclasses.replace(llm, eos_ids=(rows[r][t],))
  out = Generator(with_eos, mesh, RULES, batch_size=4, chunk=4).generate(
      prompts, range(4), max_new_tokens=NEW)
  assert out[r].tokens == rows[r][:t] and out[r].finish_reason == 'stop'
  # A stop string (a character new in its row's text): the completion is cut before it.
  texts = [llm.tokenizer.decode(row, skip_special_tokens=True) for row in rows]
  r, cut = next((r, i) for r in range(4) for i in range(1, len(texts[r]))
                if texts[r][i].isalnum() and texts[r][i] not in texts[r][:i])
  out = Generator(llm, mesh, RULES, batch_size=4, chunk=4).generate(
      prompts, range(4), max_new_tokens=NEW, stop=[texts[r][cut]])
  assert out[r].text == texts[r][:cut] and out[r].finish_reason == 'stop'
