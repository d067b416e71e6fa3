"""Task-homogeneous mixture batches: proportions, epochs, per-process slices, exact
resume (also through grain's orbax handler), bounded compilations, pair batches."""

import collections

import chex
import grain
import jax
import numpy as np
import pytest
from etils import epath

from gemini_embed.data import pipeline
from gemini_embed.data.collate import text_ids
from gemini_embed.data.mixture import MixtureSchedule
from tests.data.fixtures import (assert_resumes_exactly, data_config, numbered_rows,
                                 vocabulary_lines, word_tokenizer)
from tests.shape_annotations import check_fields

TOK = word_tokenizer(vocabulary_lines())
RATES = {'alpha': 0.5, 'beta': 0.3, 'gamma': 0.2}


def _config(tmp_path, sizes=(40, 30, 20), batch_size=8, **fields):
  datasets = {name: (numbered_rows(name, n, words=12), RATES[name])
              for name, n in zip(RATES, sizes)}
  return data_config(tmp_path, datasets, batch_size=batch_size, **fields)


def _id_to_text(config):
  """pos_id → positive text, over every dataset of the config (the ground truth)."""
  out = {}
  for name in config.data.datasets:
    for row in numbered_rows(name, 50):
      out[int(text_ids([row['positive']])[0])] = row['positive']
  return out


def test_schedule_proportions_match_the_rates():
  steps = 20_000
  chosen = MixtureSchedule([5, 3, 2], seed=1).datasets(0, steps)
  observed = np.bincount(chosen, minlength=3)
  expected = steps * np.array([0.5, 0.3, 0.2])
  chi2 = ((observed - expected) ** 2 / expected).sum()
  assert chi2 < 13.82, (observed, chi2)  # χ²(2) at p = 0.001
  # Deterministic for a seed, different across seeds, not a fixed interleaving.
  assert np.array_equal(chosen[:500], MixtureSchedule([5, 3, 2], seed=1).datasets(0, 500))
  assert not np.array_equal(chosen[:500], MixtureSchedule([5, 3, 2], seed=2).datasets(0, 500))
  assert not np.array_equal(chosen[:500], MixtureSchedule([5, 3, 2], seed=1).datasets(1, 501))


def test_schedule_is_random_access_and_counts_each_datasets_batches():
  sequential = MixtureSchedule([1, 1], seed=3)
  pairs = [sequential[s] for s in range(10_000)]
  for d in (0, 1):  # each dataset's batch index runs 0, 1, 2, ... without a gap
    ks = [k for dd, k in pairs if dd == d]
    assert ks == list(range(len(ks)))
  fresh = MixtureSchedule([1, 1], seed=3)  # a resumed run asks for step 9000 first
  assert [fresh[s] for s in range(9000, 9010)] == pairs[9000:9010]


def test_every_batch_is_from_one_dataset_in_the_mixture_proportions(tmp_path):
  config = _config(tmp_path, batch_size=4)
  data = pipeline.training_data(config, TOK)
  texts = _id_to_text(config)
  it, counts, steps = data.iterator(), collections.Counter(), 300
  for step in range(steps):
    batch = next(it)
    names = {texts[int(i)].split()[0] for i in batch.pos_id}
    assert names == {data.dataset_name(step)} == {it.dataset_name(step)}  # what metrics log
    counts[names.pop()] += 1
  for name, rate in RATES.items():  # binomial, 4 standard deviations
    assert abs(counts[name] - steps * rate) < 4 * np.sqrt(steps * rate * (1 - rate)), counts


def test_each_epoch_of_a_dataset_sees_every_example_once(tmp_path):
  config = _config(tmp_path, sizes=(16, 12, 8), batch_size=4)
  data = pipeline.training_data(config, TOK)
  it, per_dataset = data.iterator(), collections.defaultdict(list)
  for step in range(60):
    per_dataset[data.dataset_name(step)].extend(next(it).pos_id.tolist())
  for name, n in zip(RATES, (16, 12, 8)):
    seen = per_dataset[name]
    assert len(seen) >= 2 * n, name
    first, second = seen[:n], seen[n:2 * n]
    assert len(set(first)) == n and set(first) == set(second)
    assert first != second  # reshuffled each epoch


def test_restoring_the_state_continues_with_exactly_the_next_batch(tmp_path):
  config = _config(tmp_path)

  def through_a_checkpoint(stopped, fresh):
    # A new process: a fresh pipeline, restored through grain's orbax checkpoint handler.
    handler = grain.checkpoint.CheckpointHandler()
    handler.save(epath.Path(tmp_path), stopped)
    resumed = handler.restore(epath.Path(tmp_path), fresh)
    assert resumed.get_state() == stopped.get_state()
    return resumed

  assert_resumes_exactly(lambda: pipeline.training_data(config, TOK).iterator(), 12, 18,
                         through_a_checkpoint)


def test_each_process_loads_its_slice_of_the_same_global_batch(tmp_path):
  # Three buckets per side (16/32/64 and 8/16/32 tokens): one process pads to the smallest
  # that fits; two processes both pad to the top bucket, without communicating.
  config = _config(tmp_path, batch_size=8, query_max_len=64, doc_max_len=32)
  whole = pipeline.training_data(config, TOK).iterator()
  halves = [pipeline.training_data(config, TOK, process_index=p, process_count=2)
            for p in (0, 1)]
  assert [h.local_batch_size for h in halves] == [4, 4]
  iters = [h.iterator() for h in halves]
  whole_lengths = set()
  for _ in range(10):
    full, parts = next(whole), [next(i) for i in iters]
    whole_lengths.add((full.query_tokens.shape[1], full.pos_tokens.shape[1]))
    assert np.array_equal(np.concatenate([p.query_id for p in parts]), full.query_id)
    assert np.array_equal(np.concatenate([p.pos_id for p in parts]), full.pos_id)
    for p in parts:
      assert p.query_tokens.shape == (4, 64) and p.pos_tokens.shape == (4, 32)
      assert p.neg_tokens.shape == (4, 1, 32)
    for name in ('query', 'pos', 'neg'):
      tokens = np.concatenate([getattr(p, f'{name}_tokens') for p in parts])
      valid = np.concatenate([getattr(p, f'{name}_valid') for p in parts])
      ref_tokens, ref_valid = getattr(full, f'{name}_tokens'), getattr(full, f'{name}_valid')
      assert [t[v].tolist() for t, v in zip(tokens, valid)] == \
             [t[v].tolist() for t, v in zip(ref_tokens, ref_valid)]
  assert whole_lengths != {(64, 32)}, 'one process never used a smaller bucket: a weak test'


def test_a_jitted_step_compiles_once_per_bucket_pair(tmp_path):
  config = _config(tmp_path, batch_size=4, query_max_len=32, doc_max_len=16, num_buckets=3)
  it = pipeline.training_data(config, TOK).iterator()
  batches = [next(it) for _ in range(60)]
  shapes = {b.query_tokens.shape + b.pos_tokens.shape for b in batches}
  assert {s[1] for s in shapes} <= {8, 16, 32} and {s[3] for s in shapes} <= {4, 8, 16}
  assert 1 < len(shapes) <= 9

  @jax.jit
  @chex.assert_max_traces(n=len(shapes))  # one trace per bucket pair, never a retrace
  def step(batch):
    return (batch.query_tokens * batch.query_valid).sum() + batch.neg_tokens.sum()

  for batch in batches:
    step(batch)


def test_prefinetune_makes_pair_batches_and_finetune_marks_missing_negatives(tmp_path):
  rows = numbered_rows('alpha', 8, negatives=False)
  pairs = data_config(tmp_path / 'a', {'alpha': (rows, 1.0)}, stage='prefinetune')
  batch = next(pipeline.training_data(pairs, TOK).iterator())
  assert batch.neg_tokens is None and batch.has_neg is None and batch.num_negatives == 0
  check_fields(batch)  # Batch's shape and dtype annotations

  rows[0]['negative'] = ['alpha n 0', 'alpha n 1', 'alpha n 2']  # more than num_negatives
  triples = data_config(tmp_path / 'b', {'alpha': (rows, 1.0)}, num_negatives=2)
  batch = next(pipeline.training_data(triples, TOK).iterator())
  with_neg = text_ids(['alpha p 0'])[0] == batch.pos_id
  assert batch.neg_tokens.shape[:2] == (8, 2)
  check_fields(batch)
  assert batch.has_neg[with_neg].tolist() == [[True, True]] and not batch.has_neg[~with_neg].any()
  assert not batch.neg_valid[~batch.has_neg].any()
  assert batch.neg_valid[batch.has_neg].any(axis=-1).all()


def test_config_errors_name_the_field(tmp_path):
  config = _config(tmp_path)
  config.batch_size = 9
  with pytest.raises(ValueError, match=r'config\.batch_size=9.*2 processes'):
    pipeline.training_data(config, TOK, process_index=0, process_count=2)
  config.data.datasets.alpha.rate = 0.0
  with pytest.raises(ValueError, match=r'config\.data\.datasets\.alpha\.rate'):
    pipeline.training_data(config, TOK)
