"""Bad input: each kind is skipped and counted by default, stops strict mode at file:line,
and a dataset without a valid row is an error naming it. ArrayRecord reads the same rows."""

import os

import pytest

from gemini_embed.data import pipeline, sources
from gemini_embed.data.spec import dataset_entry
from tests.data.fixtures import data_config, numbered_rows, vocabulary_lines, word_tokenizer, \
    write_jsonl

GOOD = {'query': 'q', 'positive': 'p'}
# (line as written, reason); the good row sits first so line numbers start at 2.
BAD_ROWS = [
    ('{"query": "q", "positive": ', 'malformed_json'),
    ('["query", "positive"]', 'not_an_object'),
    ('{"positive": "p"}', 'missing_field'),
    ('{"query": "q", "positive": null}', 'missing_field'),
    ('{"query": "  ", "positive": "p"}', 'empty_field'),
    ('{"query": "q", "positive": "p", "negative": ["n", ""]}', 'empty_field'),
    ('{"query": 3, "positive": "p"}', 'wrong_type'),
    ('{"query": "q", "positive": "p", "negative": {"x": 1}}', 'wrong_type'),
    ('{"query": "q", "positive": "p", "negative": ["n", 5]}', 'wrong_type'),
    ('{"query": "q", "positive": "p", "title": 7}', 'wrong_type'),
    (b'{"query": "caf\xe9", "positive": "p"}', 'invalid_utf8'),
    ('{"query": "\\ud800", "positive": "p"}', 'invalid_utf8'),
    ('{"query": "q", "positive": "p", "x": ' + '[' * 10**5 + ']' * 10**5 + '}',
     'too_deeply_nested'),
    ('{"query": "' + 'x' * 101 + '", "positive": "p"}', 'too_long'),
]


def _load(path, strict=False, fmt='jsonl', report=None):
  report = report if report is not None else sources.InputReport()
  entry = dataset_entry(os.path.basename(path), 'task', format=fmt)
  rows = sources.load_examples('ds', entry, root=os.path.dirname(path), strict=strict,
                               max_chars=100, report=report)
  return rows, report


@pytest.mark.parametrize('line,reason', BAD_ROWS, ids=[r for _, r in BAD_ROWS])
def test_each_bad_row_is_skipped_and_counted(tmp_path, line, reason):
  path = write_jsonl(tmp_path / 'd.jsonl', [GOOD, line, GOOD])
  rows, report = _load(path)
  assert [r.query for r in rows] == ['q', 'q']
  assert report.skipped['ds'] == {reason: 1}
  assert report.metrics() == {f'data/skipped/ds/{reason}': 1, 'data/skipped/total': 1}


@pytest.mark.parametrize('line,reason', BAD_ROWS, ids=[r for _, r in BAD_ROWS])
def test_strict_mode_stops_at_file_and_line(tmp_path, line, reason):
  path = write_jsonl(tmp_path / 'd.jsonl', [GOOD, line])
  with pytest.raises(sources.BadInputError, match=rf'd\.jsonl:2: {reason}: .*dataset \'ds\''):
    _load(path, strict=True)


def test_valid_rows_parse_every_optional_field(tmp_path):
  path = write_jsonl(tmp_path / 'd.jsonl', [
      {'query': 'a', 'positive': 'b', 'negative': 'c', 'title': 'T', 'id': 9}, '',
      {'query': 'a', 'positive': 'b', 'negative': ['c', 'd'], 'title': ' '}])
  rows, report = _load(path)
  assert list(rows) == [sources.Example('a', 'b', ('c',), 'T'), sources.Example('a', 'b', ('c', 'd'))]
  assert report.metrics()['data/skipped/total'] == 0


def test_a_dataset_without_valid_rows_is_an_error_naming_it(tmp_path):
  path = write_jsonl(tmp_path / 'd.jsonl', [BAD_ROWS[0][0], BAD_ROWS[2][0]])
  with pytest.raises(sources.BadInputError, match=r"dataset 'ds'.*no valid example.*"
                     r"malformed_json.*missing_field"):
    _load(path)
  with pytest.raises(sources.BadInputError, match=r"dataset 'ds'.*the files are empty"):
    _load(write_jsonl(tmp_path / 'e.jsonl', []))


def test_missing_files_name_the_config_field(tmp_path):
  entry = dataset_entry('nothing-*.jsonl', 'task')
  with pytest.raises(FileNotFoundError, match=r'config\.data\.datasets\.ds\.files'):
    sources.load_examples('ds', entry, root=str(tmp_path), strict=False, max_chars=100,
                          report=sources.InputReport())


def test_array_record_rows_match_jsonl_and_bad_records_are_counted(tmp_path):
  rows = [GOOD, b'not json', {'query': 'q2', 'positive': 'p2', 'negative': ['n']}]
  path = str(tmp_path / 'd.array_record')
  sources.write_array_record(path, rows)
  examples, report = _load(path, fmt='array_record')
  assert len(examples) == 2 and examples[1] == sources.Example('q2', 'p2', ('n',))
  assert report.skipped['ds'] == {'malformed_json': 1}
  with pytest.raises(sources.BadInputError, match=r'd\.array_record:record 1: malformed_json'):
    _load(path, strict=True, fmt='array_record')


def test_the_iterator_reports_and_logs_skipped_rows_for_the_trainer(tmp_path, caplog):
  bad = [BAD_ROWS[0][0], BAD_ROWS[6][0], BAD_ROWS[6][0]]
  config = data_config(tmp_path, {'alpha': (numbered_rows('alpha', 8) + bad, 1.0)})
  it = pipeline.training_data(config, word_tokenizer(vocabulary_lines())).iterator()
  next(it)
  assert it.bad_input_counts() == {'skipped/alpha/malformed_json': 1,
                                   'skipped/alpha/wrong_type': 2, 'skipped/total': 3}
  assert "dataset alpha: skipped 3 bad rows: {'malformed_json': 1, 'wrong_type': 2}" in caplog.text
  config.data.strict = True
  with pytest.raises(sources.BadInputError, match=r'alpha\.jsonl:9: malformed_json'):
    pipeline.training_data(config, word_tokenizer(vocabulary_lines()))


def test_an_array_record_dataset_feeds_the_pipeline(tmp_path):
  config = data_config(tmp_path, {'alpha': (numbered_rows('alpha', 8), 1.0)})
  sources.write_array_record(str(tmp_path / 'beta.array_record'), numbered_rows('beta', 8))
  config.data.datasets['beta'] = dataset_entry('beta.array_record', 'beta task',
                                               format='array_record')
  tok = word_tokenizer(vocabulary_lines())
  data = pipeline.training_data(config, tok)
  it = data.iterator()
  step = next(s for s in range(50) if data.dataset_name(s) == 'beta')
  for _ in range(step + 1):
    batch = next(it)
  docs = {tok.decode(t[v].tolist()) for t, v in zip(batch.pos_tokens, batch.pos_valid)}
  assert docs == {f'title : none | text : beta p {i}' for i in range(8)}


def test_jsonl_rows_are_not_held_in_memory(tmp_path):
  """A 100k-row file: what load_examples keeps is its 16-byte-per-row index (measured with
  tracemalloc, after the scan), not the rows; rows still read back by index."""
  import gc
  import tracemalloc
  n = 100_000
  rows = [{'query': f'question number {i} ' * 3, 'positive': f'the answer to {i} ' * 4}
          for i in range(n)]
  path = write_jsonl(tmp_path / 'big.jsonl', rows)
  gc.collect()
  tracemalloc.start()
  before = tracemalloc.take_snapshot()
  examples, _ = _load(path, report=sources.InputReport())
  gc.collect()
  kept = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, 'filename'))
  tracemalloc.stop()
  text_bytes = sum(len(r['query']) + len(r['positive']) for r in rows)
  print(f'{n} rows, {text_bytes / 1e6:.1f} MB of text: {kept / n:.1f} bytes kept per row')
  assert kept < 24 * n  # the rows themselves would be > 100 bytes each
  assert examples[n - 1] == sources.Example(rows[-1]['query'], rows[-1]['positive'])
  assert len(examples) == n
