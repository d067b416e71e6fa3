"""seqio interop (needs the `seqio` extra): our datasets as seqio Tasks + Mixture, a seqio
Mixture as the grain pipeline's source, a SentencePiece vocabulary as the tokenizer."""

import io

import numpy as np
import pytest

seqio = pytest.importorskip('seqio')
tf = pytest.importorskip('tensorflow')

from gemini_embed.data import pipeline, seqio_export, seqio_reader  # noqa: E402
from gemini_embed.data.tokenization import BucketTokenizer  # noqa: E402
from tests.data.fixtures import (data_config, numbered_rows, vocabulary_lines,  # noqa: E402
                                 word_tokenizer)

TOK = word_tokenizer(vocabulary_lines(('alpha', 'beta', 'retrieval')))


def test_our_datasets_register_as_tasks_and_a_mixture_with_the_same_rates(tmp_path):
  rows = numbered_rows('alpha', 6)
  rows[1]['negative'] = ['alpha n 1', 'alpha n 9']
  rows[2].pop('negative')
  rows[3]['title'] = 'T'
  config = data_config(tmp_path, {'alpha': (rows + ['{bad json'], 3.0),
                                  'beta': (numbered_rows('beta', 4), 1.0)})
  name = seqio_export.register_seqio_tasks(config, prefix='t1.')
  assert name == 't1.finetune'
  mixture = seqio.get_mixture_or_task(name)
  rates = {t.name: mixture.get_rate(t) for t in mixture.tasks}
  assert rates == {'t1.alpha': 3.0, 't1.beta': 1.0}
  got = seqio_reader.task_rows('t1.alpha')
  assert [r['query'] for r in got] == [r['query'] for r in rows]
  assert got[1]['negative'] == ['alpha n 1', 'alpha n 9'] and 'negative' not in got[2]
  assert got[3]['title'] == 'T' and 'title' not in got[0]


def _t5_task(name, prefix, n):
  def dataset_fn(split, shuffle_files, seed=None):
    return tf.data.Dataset.from_tensor_slices({
        'inputs': [f'{prefix} q {i}' for i in range(n)],
        'targets': [f'{prefix} p {i}' if i else '' for i in range(n)]})  # row 0: bad (empty)
  seqio.TaskRegistry.remove(name)
  seqio.TaskRegistry.add(name, source=seqio.FunctionDataSource(dataset_fn, splits=('train',)),
                         output_features={k: seqio.Feature(seqio.PassThroughVocabulary(0),
                                                           dtype=tf.string, rank=0)
                                          for k in ('inputs', 'targets')})


def test_a_seqio_mixture_feeds_task_homogeneous_batches(tmp_path):
  _t5_task('t2.alpha', 'alpha', 9)
  _t5_task('t2.beta', 'beta', 9)
  seqio.MixtureRegistry.remove('t2.mix')
  seqio.MixtureRegistry.add('t2.mix', [('t2.alpha', 2.0), ('t2.beta', 1.0)])
  config = data_config(tmp_path, {}, batch_size=4)
  config.data.datasets = seqio_reader.seqio_entries('t2.mix', task='retrieval')
  assert {k: e.rate for k, e in config.data.datasets.items()} == {'t2_alpha': 2.0, 't2_beta': 1.0}
  data = pipeline.training_data(config, TOK)
  assert data.rates.tolist() == pytest.approx([2 / 3, 1 / 3])
  it = data.iterator()
  for step in range(6):
    batch = next(it)
    prefix = data.dataset_name(step).split('_')[1]
    queries = {TOK.decode(t[v].tolist()) for t, v in zip(batch.query_tokens, batch.query_valid)}
    assert all(q.startswith(f'task : retrieval | query : {prefix} q') for q in queries)
  assert it.bad_input_counts() == {'skipped/t2_alpha/empty_field': 1,
                                   'skipped/t2_beta/empty_field': 1, 'skipped/total': 2}


def test_a_sentencepiece_vocabulary_tokenizes_through_seqio(tmp_path):
  sentencepiece = pytest.importorskip('sentencepiece')
  model = io.BytesIO()
  sentencepiece.SentencePieceTrainer.train(
      sentence_iterator=iter(vocabulary_lines() * 20 + ['the quick brown fox'] * 20),
      model_writer=model, vocab_size=60, model_type='unigram', bos_id=1, eos_id=2, pad_id=0,
      unk_id=3)
  path = tmp_path / 'sp.model'
  path.write_bytes(model.getvalue())
  vocabulary = seqio.SentencePieceVocabulary(str(path))
  tokenizer = seqio_reader.SeqioVocabularyTokenizer(vocabulary)
  assert tokenizer.token_to_id('<s>') == 1 and tokenizer.token_to_id('<nope>') is None
  bucketed = BucketTokenizer(tokenizer, max_len=16, num_buckets=2,
                             bos_id=tokenizer.token_to_id('<s>'))
  tokens, valid = bucketed(['the quick brown fox', 'alpha'])
  expected = [1] + list(vocabulary.encode('the quick brown fox'))
  assert tokens[0][valid[0]].tolist() == expected[:16]
  assert vocabulary.decode(tokens[1][valid[1]][1:].tolist()) == 'alpha'
  assert tokens.dtype == np.int32
