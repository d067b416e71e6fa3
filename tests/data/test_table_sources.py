"""Parquet files and Hugging Face `datasets` directories as training sources: column
mappings (sentence-transformers' names need none), bad rows counted as for JSONL, strict
mode naming file:row, and an exact resume of a pipeline that reads them."""

import os

import pytest

from gemini_embed.data import pipeline, sources
from gemini_embed.data.spec import dataset_entry
from tests.data.fixtures import (assert_resumes_exactly, data_config, numbered_rows,
                                 vocabulary_lines, word_tokenizer)

pa = pytest.importorskip('pyarrow')
pq = pytest.importorskip('pyarrow.parquet')

TOK = word_tokenizer(vocabulary_lines())


def _load(entry, root, strict=False):
  report = sources.InputReport()
  rows = sources.load_examples('ds', entry, root=str(root), strict=strict, max_chars=100,
                               report=report)
  return rows, report


def _st_table():
  """sentence-transformers' column names; row 1 has an empty anchor, row 3 no positive."""
  return pa.table({'anchor': ['q0', ' ', 'q2', 'q3'], 'positive': ['p0', 'p1', 'p2', None],
                   'negative_2': ['b0', 'b1', 'b2', 'b3'], 'negative_1': ['a0', 'a1', 'a2', 'a3'],
                   'score': [1, 2, 3, 4]})


def test_parquet_with_sentence_transformers_columns(tmp_path):
  pq.write_table(_st_table(), str(tmp_path / 'd.parquet'))
  examples, report = _load(dataset_entry('d.parquet', 't', format='parquet'), tmp_path)
  assert list(examples) == [sources.Example('q0', 'p0', ('a0', 'b0')),
                            sources.Example('q2', 'p2', ('a2', 'b2'))]
  assert report.skipped['ds'] == {'empty_field': 1, 'missing_field': 1}
  with pytest.raises(sources.BadInputError, match=r'd\.parquet:row 1: empty_field'):
    _load(dataset_entry('d.parquet', 't', format='parquet'), tmp_path, strict=True)


def test_parquet_column_mapping_errors_name_the_field(tmp_path):
  pq.write_table(_st_table(), str(tmp_path / 'd.parquet'))
  entry = dataset_entry('d.parquet', 't', format='parquet', columns={'nope': 'query'})
  with pytest.raises(sources.BadInputError, match=r"columns: column 'nope' is not in the data"):
    _load(entry, tmp_path)
  entry = dataset_entry('d.parquet', 't', format='parquet', columns={'anchor': 'question'})
  with pytest.raises(sources.BadInputError, match=r'columns.anchor=.question.: map columns'):
    _load(entry, tmp_path)


def test_hf_dataset_directory_with_a_column_mapping(tmp_path):
  datasets = pytest.importorskip('datasets')
  data = datasets.Dataset.from_dict({
      'question': ['q0', 'q1', 'q2'], 'answer': ['p0', 'p1', ''],
      'hard': [['n0', 'm0'], ['n1'], ['n2']], 'heading': ['t0', None, 't2']})
  datasets.DatasetDict({'train': data, 'test': data.select([0])}).save_to_disk(
      str(tmp_path / 'hf'))
  columns = {'question': 'query', 'answer': 'positive', 'hard': 'negative', 'heading': 'title'}
  entry = dataset_entry('hf', 't', format='hf_dataset', columns=columns)  # relative to root
  examples, report = _load(entry, tmp_path)
  assert list(examples) == [sources.Example('q0', 'p0', ('n0', 'm0'), 't0'),
                            sources.Example('q1', 'p1', ('n1',), None)]
  assert report.skipped['ds'] == {'empty_field': 1}
  entry.split = 'validation'
  with pytest.raises(sources.BadInputError, match=r"split='validation'.*\['train', 'test'\]"):
    _load(entry, tmp_path)


def test_a_parquet_pipeline_resumes_exactly(tmp_path):
  config = data_config(tmp_path, {'alpha': (numbered_rows('alpha', 24, words=6), 0.5)})
  rows = numbered_rows('beta', 30, words=6)
  half = len(rows) // 2
  for k, part in enumerate((rows[:half], rows[half:])):  # two files: rows run across them
    pq.write_table(pa.Table.from_pylist(part), str(tmp_path / f'beta-{k}.parquet'))
  config.data.datasets['beta'] = dataset_entry('beta-*.parquet', 'beta task', format='parquet',
                                               rate=0.5)
  assert_resumes_exactly(lambda: pipeline.training_data(config, TOK).iterator(), 7, 13)
  data = pipeline.training_data(config, TOK)
  assert any(data.dataset_name(s) == 'beta' for s in range(7, 20))
