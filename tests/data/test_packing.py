"""Sequence packing: every text of a batch lands once in a packed row (its tokens, its
positions from 0, its own segment), the row count comes from a small fixed set, a
batch that packs badly falls back to a layout that always fits; through the pipeline:
exact resume and one compile per row count."""

import chex
import jax
import numpy as np
import pytest

from gemini_embed.data import packing, pipeline
from gemini_embed.data.batch import PackedBatch
from tests.data.fixtures import (assert_resumes_exactly, data_config, numbered_rows,
                                 vocabulary_lines, word_tokenizer)
from tests.loss_fixtures import random_batch
from tests.shape_annotations import check_fields

TOK = word_tokenizer(vocabulary_lines())


def _texts(batch):
  """Every real text of an unpacked Batch in the global text order (queries, then each
  example's positive and negatives), None for an absent negative."""
  out = [t[v].tolist() for t, v in zip(batch.query_tokens, batch.query_valid)]
  k = batch.num_negatives
  for i in range(batch.size):
    out.append(batch.pos_tokens[i][batch.pos_valid[i]].tolist())
    for j in range(k):
      out.append(batch.neg_tokens[i, j][batch.neg_valid[i, j]].tolist()
                 if batch.has_neg[i, j] else None)
  return out


def _unpack(packed):
  """text index → (tokens, positions, (row, segment)) read back from a PackedBatch."""
  texts = {}
  for r in range(packed.tokens.shape[0]):
    for s in set(packed.segment_ids[r].tolist()) - {0}:
      where = packed.segment_ids[r] == s
      index = set(packed.text_index[r][where].tolist())
      assert len(index) == 1, f'row {r} segment {s} mixes texts {index}'
      assert np.all(np.diff(np.flatnonzero(where)) == 1), 'a text is not contiguous'
      texts[index.pop()] = (packed.tokens[r][where].tolist(),
                            packed.positions[r][where].tolist(), (r, s))
  return texts


@pytest.mark.parametrize('k', [0, 2])
def test_every_text_is_packed_once_with_its_own_positions(k):
  batch = random_batch(0, 8, 50, lq=10, ld=12, k=k)
  layout = packing.row_layout(8, k, query_max_len=10, doc_max_len=12, num_row_counts=4)
  packed = packing.pack(batch, layout, first_example=0, global_batch=8)
  check_fields(packed)
  assert packed.tokens.shape[1] == 12 and packed.tokens.shape[0] in layout.row_counts
  want = _texts(batch)
  got = _unpack(packed)
  assert sorted(got) == [i for i, t in enumerate(want) if t is not None]
  for i, (tokens, positions, _) in got.items():
    assert tokens == want[i] and positions == list(range(len(want[i])))
  assert (packed.text_index[packed.segment_ids == 0] == len(want)).all()
  assert packed.num_tokens() == sum(len(t) for t in want if t is not None)
  assert sorted(packed.text_lengths().tolist()) == sorted(batch.text_lengths().tolist())
  assert packed.tokens.shape[0] < 8 * (2 + k), 'nothing was packed: a weak test'
  np.testing.assert_array_equal(packed.query_id, batch.query_id)


def test_global_text_numbers_of_a_process_slice():
  batch = random_batch(1, 8, 50, k=1)
  layout = packing.row_layout(8, 1, query_max_len=10, doc_max_len=12, num_row_counts=2)
  packed = packing.pack(batch, layout, first_example=8, global_batch=16)
  # Process 1 of 2: its queries are texts 8..15; documents 16 + 2·(8..15) + (0, 1); padding 48.
  got = set(_unpack(packed))
  want_docs = {16 + 2 * (8 + i) + s for i in range(8) for s in (0, 1)
               if s == 0 or batch.has_neg[i, 0]}
  assert got == set(range(8, 16)) | want_docs
  assert (packed.text_index[packed.segment_ids == 0] == 48).all()


def test_row_counts_are_few_multiples_and_the_top_one_always_fits():
  layout = packing.row_layout(64, 1, query_max_len=32, doc_max_len=64, num_row_counts=8,
                              row_multiple=8)
  # The fallback: two queries per 64-token row, one document per row = 32 + 128 rows.
  assert layout.row_counts[-1] == 160 and len(layout.row_counts) <= 8
  assert all(r % 8 == 0 for r in layout.row_counts)
  fixed = packing.row_layout(64, 1, query_max_len=32, doc_max_len=64, num_row_counts=8,
                             row_multiple=8, fixed=True)
  assert fixed.row_counts == (160,)
  # Worst case for best-fit: every text at its maximum length still fits the top count.
  full = random_batch(2, 64, 50, lq=32, ld=64, k=1)
  for name in ('query_valid', 'pos_valid', 'neg_valid', 'has_neg'):
    getattr(full, name)[...] = True
  packed = packing.pack(full, layout, first_example=0, global_batch=64)
  assert packed.tokens.shape == (160, 64)
  assert packed.num_tokens() == full.num_tokens()


def test_a_text_longer_than_its_max_len_is_refused():
  batch = random_batch(0, 8, 50, lq=10, ld=12)
  batch.query_valid[3] = True  # 10 tokens
  layout = packing.row_layout(8, 0, query_max_len=8, doc_max_len=12, num_row_counts=2)
  with pytest.raises(ValueError, match='query_max_len=8'):
    packing.pack(batch, layout, first_example=0, global_batch=8)


def _config(tmp_path, **fields):
  datasets = {name: (numbered_rows(name, n, words=12), rate)
              for name, n, rate in (('alpha', 40, 0.5), ('beta', 30, 0.3), ('gamma', 20, 0.2))}
  return data_config(tmp_path, datasets, batch_size=8, pack=True, **fields)


def test_packed_pipeline_resumes_at_exactly_the_next_batch(tmp_path):
  config = _config(tmp_path)
  got = assert_resumes_exactly(lambda: pipeline.training_data(config, TOK).iterator(), 7, 13)
  assert isinstance(got[0], PackedBatch)


def test_packed_batches_hold_the_unpacked_examples_with_few_shapes(tmp_path):
  config = _config(tmp_path, query_max_len=32, doc_max_len=16, pack_row_counts=4)
  unpacked = config.copy_and_resolve_references()
  unpacked.data.pack = False
  packed_it = pipeline.training_data(config, TOK).iterator()
  plain_it = pipeline.training_data(unpacked, TOK).iterator()
  batches = []
  for _ in range(40):
    p, u = next(packed_it), next(plain_it)
    assert _unpack(p).keys() == {i for i, t in enumerate(_texts(u)) if t is not None}
    assert [t for t, _, _ in (_unpack(p)[i] for i in sorted(_unpack(p)))] == \
           [t for t in _texts(u) if t is not None]
    np.testing.assert_array_equal(p.query_id, u.query_id)
    np.testing.assert_array_equal(p.has_neg, u.has_neg)
    batches.append(p)
  shapes = {b.tokens.shape for b in batches}
  assert {s[1] for s in shapes} == {32} and all(s[0] % 8 == 0 for s in shapes)
  assert 1 <= len(shapes) <= 4

  @jax.jit
  @chex.assert_max_traces(n=len(shapes))  # one trace per row count, never a retrace
  def step(batch):
    return (batch.tokens * (batch.segment_ids > 0)).sum() + batch.has_neg.sum()

  for batch in batches:
    step(batch)


def test_two_processes_pack_to_the_same_row_count(tmp_path):
  config = _config(tmp_path)
  halves = [pipeline.training_data(config, TOK, process_index=p, process_count=2).iterator()
            for p in (0, 1)]
  for _ in range(5):
    parts = [next(h) for h in halves]
    assert parts[0].tokens.shape == parts[1].tokens.shape
    assert parts[0].tokens.shape[0] % 4 == 0  # 8 devices over 2 processes
