"""Loading every task type of the layout; bad rows name their file and line."""

import json

import numpy as np
import pytest

from gemini_embed.eval.suite import SuiteFormatError, load_suite, resolve_half, task_id
from tests.eval.synthetic_suite import ITEMS, write_halved_suite, write_suite


def test_loads_every_task_type(tmp_path):
  write_suite(tmp_path)
  tasks = {task_id(t): t for t in load_suite(tmp_path)}
  assert list(tasks) == ['retrieval/shelves', 'reranking/boxes', 'classification/moods',
                         'clustering/moods', 'pair_classification/lost', 'sts/closeness',
                         'bitext/mirror']
  retrieval = tasks['retrieval/shelves']
  assert len(retrieval.corpus_ids) == 2 * len(ITEMS) + 6
  assert retrieval.query_ids == [f'q{k}' for k in range(len(ITEMS))]  # the unjudged query is dropped
  assert retrieval.qrels['q3'] == {'doc3': 2, 'note3': 1}
  note = retrieval.corpus_texts[retrieval.corpus_ids.index('note0')]
  assert note == f'About the {ITEMS[0]} Someone polished the {ITEMS[0]} last spring.'  # title + text
  assert len(tasks['reranking/boxes'].instances) == 8
  classification = tasks['classification/moods']
  assert (len(classification.train_texts), len(classification.test_labels)) == (36, 15)
  np.testing.assert_array_equal(tasks['pair_classification/lost'].labels[:2], [1, 0])
  assert tasks['sts/closeness'].scores[-1] == 5.0
  assert tasks['bitext/mirror'].targets[0] == 'le nretnal rebma'


def _suite_with(tmp_path, relative, content):
  write_suite(tmp_path)
  (tmp_path / relative).write_text(content)
  return tmp_path


ROW = json.dumps({'text1': 'a', 'text2': 'b', 'score': 1.0})


@pytest.mark.parametrize('relative, content, message', [
    ('sts/closeness/test.jsonl', ROW + '\n\n{"text1": "a", "text2"\n',
     'test.jsonl:3: not valid JSON'),  # line 2 is blank: still counted
    ('sts/closeness/test.jsonl', ROW + '\n{"text1": "a", "score": 2}\n',
     'test.jsonl:2: missing field "text2"'),
    ('sts/closeness/test.jsonl', '{"text1": "a", "text2": "b", "score": "high"}\n',
     'test.jsonl:1: field "score" must be a finite number'),
    ('sts/closeness/test.jsonl', '[1, 2]\n', 'test.jsonl:1: expected a JSON object'),
    ('pair_classification/lost/test.jsonl', '{"text1": "a", "text2": "b", "label": 2}\n',
     'test.jsonl:1: field "label" must be 0 or 1'),
    ('pair_classification/lost/test.jsonl', '{"text1": "a", "text2": "b", "label": 0}\n',
     'no pair has label 1'),
    ('bitext/mirror/test.jsonl', '{"src": "a", "tgt": 3}\n',
     'test.jsonl:1: field "tgt" must be a string'),
    ('reranking/boxes/test.jsonl', '{"query": "q", "positive": "p", "negative": []}\n',
     'test.jsonl:1: field "positive" must be a list of strings'),
    ('retrieval/shelves/qrels.tsv', 'qid\tdid\tscore\n', 'qrels.tsv:1: header must be'),
    ('retrieval/shelves/qrels.tsv', 'query-id\tcorpus-id\tscore\nq0\tdoc0\t1\nq1\tnowhere\t1\n',
     "qrels.tsv:3: corpus-id 'nowhere' is not in corpus.jsonl"),
    ('retrieval/shelves/qrels.tsv', 'query-id\tcorpus-id\tscore\nq0\tdoc0\tyes\n',
     'qrels.tsv:2: score must be an integer'),
    ('retrieval/shelves/qrels.tsv', 'query-id\tcorpus-id\tscore\nq9x\tdoc0\t1\n',
     "qrels.tsv:2: query-id 'q9x' is not in queries.jsonl"),
    ('retrieval/shelves/queries.jsonl', '{"_id": "q0", "text": "a"}\n{"_id": "q0", "text": "b"}\n',
     "queries.jsonl:2: duplicate query _id 'q0'"),
    ('classification/moods/test.jsonl', '{"text": "a", "label": "sleepy"}\n',
     "labels ['sleepy'] never occur in train.jsonl"),
    ('clustering/moods/test.jsonl', '\n\n', 'test.jsonl: no rows'),
])
def test_bad_rows_name_file_and_line(tmp_path, relative, content, message):
  suite = _suite_with(tmp_path, relative, content)
  with pytest.raises(SuiteFormatError) as error:
    load_suite(suite)
  assert message in str(error.value)
  assert str(tmp_path) in str(error.value)


def test_missing_file_and_unknown_type_folder(tmp_path):
  write_suite(tmp_path)
  (tmp_path / 'sts' / 'closeness' / 'test.jsonl').unlink()
  with pytest.raises(SuiteFormatError, match='test.jsonl: file not found'):
    load_suite(tmp_path)
  (tmp_path / 'sts').rename(tmp_path / 'stss')
  with pytest.raises(SuiteFormatError, match=r"unknown task type folder\(s\) \['stss'\]"):
    load_suite(tmp_path)
  with pytest.raises(SuiteFormatError, match='suite directory not found'):
    load_suite(tmp_path / 'nowhere')


def test_a_classification_task_with_one_label_names_task_and_file(tmp_path):
  """A classifier needs two classes; say so at load time, not from inside scikit-learn."""
  write_suite(tmp_path)
  rows = ''.join(json.dumps({'text': t, 'label': 'calm'}) + '\n' for t in ('a', 'b', 'c'))
  for split in ('train', 'test'):
    (tmp_path / 'classification' / 'moods' / f'{split}.jsonl').write_text(rows)
  with pytest.raises(SuiteFormatError) as error:
    load_suite(tmp_path)
  message = str(error.value)
  assert str(tmp_path / 'classification' / 'moods' / 'train.jsonl') in message
  assert "'classification/moods'" in message and "one label ('calm')" in message


@pytest.mark.parametrize('relative, content, message', [
    ('retrieval/shelves/qrels.tsv', b'query-id\tcorpus-id\tscore\nq\xe9\tdoc0\t1\n',
     'qrels.tsv:2: not valid UTF-8'),
    ('retrieval/shelves/corpus.jsonl', b'{"_id": "doc0", "text": "\\udc00"}\n',
     "corpus.jsonl:1: field 'text' holds an unpaired surrogate"),
])
def test_text_python_cannot_decode_names_file_and_line(tmp_path, relative, content, message):
  write_suite(tmp_path)
  (tmp_path / relative).write_bytes(content)
  with pytest.raises(SuiteFormatError) as error:
    load_suite(tmp_path)
  assert message in str(error.value)


def test_a_byte_order_mark_is_read_past(tmp_path):
  plain, marked = tmp_path / 'plain', tmp_path / 'marked'
  write_suite(plain)
  write_suite(marked)
  for relative in ('retrieval/shelves/qrels.tsv', 'sts/closeness/test.jsonl'):
    path = marked / relative
    path.write_bytes(b'\xef\xbb\xbf' + path.read_bytes())
  want, got = ({task_id(t): t for t in load_suite(s)} for s in (plain, marked))
  assert got['retrieval/shelves'].qrels == want['retrieval/shelves'].qrels
  assert got['sts/closeness'].texts1 == want['sts/closeness'].texts1


def test_halves_resolve_to_their_folder_and_a_flat_suite_is_used_whole(tmp_path, caplog):
  root = tmp_path / 'dev'
  write_halved_suite(root)
  assert resolve_half(root, 'select') == (root / 'select', 'select')
  assert resolve_half(root, 'report') == (root / 'report', 'report')
  assert resolve_half(root / 'select', None) == (root / 'select', 'select')
  with caplog.at_level('WARNING'):
    assert resolve_half(root / 'select', 'report') == (root / 'select', 'select')
  assert 'is the select half; the report half was asked for' in caplog.text
  with pytest.raises(SuiteFormatError, match='has two halves'):
    resolve_half(root, None)
  with pytest.raises(SuiteFormatError, match=r'load .*select or .*report'):
    load_suite(root)
  with pytest.raises(ValueError, match="half='test'"):
    resolve_half(root, 'test')
  flat = tmp_path / 'flat'
  write_suite(flat)
  caplog.clear()
  with caplog.at_level('WARNING'):
    assert resolve_half(flat, 'report') == (flat, None)
  assert 'has no halves' in caplog.text
  assert [task_id(t) for t in load_suite(root / 'report')] == [task_id(t) for t in load_suite(flat)]
