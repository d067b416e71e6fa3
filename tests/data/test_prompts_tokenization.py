"""Prompts, task dropout, BOS/EOS per family, truncation, length buckets, duplicate ids."""

import numpy as np
import pytest

from gemini_embed.data import collate, pipeline, prompts
from gemini_embed.data.tokenization import (BucketTokenizer, bucket_for, bucket_lengths,
                                            encoders_from_config)
from gemini_embed.configlib import base_config
from tests.data.fixtures import data_config, numbered_rows, vocabulary_lines, word_tokenizer

TOK = word_tokenizer(vocabulary_lines())


def _decode(ids):
  return TOK.decode([int(i) for i in ids], skip_special_tokens=False)


def test_templates_put_the_task_on_the_query_only():
  assert prompts.format_query('how to sort', 'retrieval') == 'task: retrieval | query: how to sort'
  assert prompts.format_document('a passage') == 'title: none | text: a passage'
  assert prompts.format_document('a passage', 'Sorting') == 'title: Sorting | text: a passage'
  assert prompts.format_query('x', 't', '<{task}> {text}') == '<t> x'


def test_task_dropout_is_a_function_of_seed_step_and_row():
  rows = np.arange(4000)
  a = prompts.task_dropped(0, 7, rows, 0.25)
  assert np.array_equal(a, prompts.task_dropped(0, 7, rows, 0.25))
  assert abs(a.mean() - 0.25) < 0.03
  assert not np.array_equal(a, prompts.task_dropped(0, 8, rows, 0.25))
  assert not np.array_equal(a, prompts.task_dropped(1, 7, rows, 0.25))
  # A process holding rows 2000.. decides exactly as the single process did.
  assert np.array_equal(a[2000:], prompts.task_dropped(0, 7, rows[2000:], 0.25))
  assert not prompts.task_dropped(0, 7, rows, 0.0).any()


def test_buckets():
  assert bucket_lengths(256, 3) == (64, 128, 256)
  assert bucket_lengths(32, 1) == (32,)
  assert [bucket_for(n, (64, 128, 256)) for n in (1, 64, 65, 256)] == [64, 64, 128, 256]


def test_bos_eos_truncation_and_padding():
  enc = BucketTokenizer(TOK, max_len=8, num_buckets=2, bos_id=2, eos_id=3)
  tokens, valid = enc(['alpha beta', '1 2 3 4 5 6 7 8 9 10'])
  assert tokens.shape == (2, 8) and tokens.dtype == np.int32 and valid.dtype == bool
  assert _decode(tokens[0][valid[0]]) == '<bos> alpha beta <eos>'
  assert _decode(tokens[1]) == '<bos> 1 2 3 4 5 6 <eos>'  # EOS survives truncation
  assert valid.sum(1).tolist() == [4, 8] and (tokens[~valid] == 0).all()
  short, _ = enc(['alpha'])
  assert short.shape == (1, 4)  # the smaller bucket
  bare = BucketTokenizer(TOK, max_len=8)
  assert _decode(bare(['alpha beta'])[0][0][:2]) == 'alpha beta'


@pytest.mark.parametrize('family,bos,eos,expected', [
    ('gemma3', 'auto', 'auto', (2, None)),
    ('llama', 'auto', 'auto', (None, None)),
    ('llama', '<bos>', '<eos>', (2, 3)),
    ('gemma3', '', 'auto', (None, None)),
])
def test_special_tokens_follow_the_family_unless_configured(family, bos, eos, expected):
  data = base_config('tiny').data
  data.bos_token, data.eos_token = bos, eos
  query, doc = encoders_from_config(data, family, TOK)
  assert (query.bos_id, query.eos_id) == expected == (doc.bos_id, doc.eos_id)


def test_unknown_special_token_names_the_field():
  data = base_config('tiny').data
  data.bos_token = '<s>'
  with pytest.raises(ValueError, match=r"config\.data\.bos_token='<s>'"):
    encoders_from_config(data, 'llama', TOK)


def test_duplicate_ids_hash_the_normalised_text():
  ids = collate.text_ids(['hello world', '  Hello\tWORLD ', 'ｈｅｌｌｏ world', 'hello there'])
  assert ids.dtype == np.int32
  assert ids[0] == ids[1] == ids[2] != ids[3]
  assert ids[0] == 0x0D4A1185  # CRC-32 of b'hello world' (a published test vector)


def test_batches_carry_prompts_per_dataset_templates_and_dropout(tmp_path):
  custom = dict(query_template='{task} : {text}', doc_template='{text}')
  config = data_config(tmp_path, {'alpha': (numbered_rows('alpha', 16), 1.0),
                                  'beta': (numbered_rows('beta', 16), 1.0, custom)},
                       batch_size=16, task_dropout=0.5)
  data = pipeline.training_data(config, TOK)
  it = data.iterator()
  seen = set()
  for step in range(6):
    batch = next(it)
    queries = [_decode(t[v]) for t, v in zip(batch.query_tokens, batch.query_valid)]
    docs = [_decode(t[v]) for t, v in zip(batch.pos_tokens, batch.pos_valid)]
    if data.dataset_name(step) == 'alpha':
      assert all(d.startswith('title : none | text : alpha p ') for d in docs)
      dropped = [q.startswith('task : none | query : alpha q') for q in queries]
      assert all(d or q.startswith('task : alpha task | query : alpha q')
                 for d, q in zip(dropped, queries))
      assert 0 < sum(dropped) < 16
    else:
      assert all(d.startswith('beta p ') for d in docs)
      assert all(q.startswith(('beta task : beta q', 'none : beta q')) for q in queries)
    seen.add(data.dataset_name(step))
  assert seen == {'alpha', 'beta'}
