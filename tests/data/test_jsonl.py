"""The one JSON Lines reader: (line, object) pairs, blank lines counted, each bad line named
path:line with its reason; the caller decides whether a bad line stops the read."""

import pytest

from gemini_embed.data.jsonl import JsonLineError, read_jsonl


def _write(tmp_path, data: bytes) -> str:
  path = tmp_path / 'rows.jsonl'
  path.write_bytes(data)
  return str(path)


def test_rows_come_with_their_editor_line_numbers(tmp_path):
  path = _write(tmp_path, b'{"a": 1}\n\n  \n{"a": 2}\n{"a": 3}')
  assert list(read_jsonl(path)) == [(1, {'a': 1}), (4, {'a': 2}), (5, {'a': 3})]


@pytest.mark.parametrize('line,reason,message', [
    (b'{"a": ', 'malformed_json', 'not valid JSON'),
    (b'[1, 2]', 'not_an_object', 'expected a JSON object, got list'),
    (b'{"a": "caf\xe9"}', 'invalid_utf8', 'not valid UTF-8'),
])
def test_a_bad_line_names_path_line_and_reason(tmp_path, line, reason, message):
  path = _write(tmp_path, b'{"a": 1}\n' + line + b'\n{"a": 3}\n')
  with pytest.raises(JsonLineError, match=rf'rows\.jsonl:2: {message}') as e:
    list(read_jsonl(path))
  assert (e.value.reason, e.value.where) == (reason, f'{path}:2')
  skipped = []
  assert list(read_jsonl(path, on_error=skipped.append)) == [(1, {'a': 1}), (3, {'a': 3})]
  assert [(s.where, s.reason) for s in skipped] == [(f'{path}:2', reason)]


@pytest.mark.parametrize('line,reason,message', [
    (b'{"a": ' + b'[' * 100_000 + b']' * 100_000 + b'}', 'too_deeply_nested',
     'JSON nested too deeply'),
    (b'{"a": "\\ud800 alone"}', 'invalid_utf8', "field 'a' holds an unpaired surrogate"),
    (b'{"a": ["ok", {"b": "\\udfff"}]}', 'invalid_utf8', "field 'a' holds an unpaired surrogate"),
])
def test_lines_python_cannot_take_are_bad_lines_too(tmp_path, line, reason, message):
  """Deep nesting (RecursionError) and lone surrogates (a TypeError in the tokenizer later)
  are that line's error, named and counted, like any other bad line."""
  path = _write(tmp_path, b'{"a": 1}\n' + line + b'\n{"a": 3}\n')
  with pytest.raises(JsonLineError, match=rf'rows\.jsonl:2: {message}') as e:
    list(read_jsonl(path))
  assert e.value.reason == reason
  skipped = []
  assert list(read_jsonl(path, on_error=skipped.append)) == [(1, {'a': 1}), (3, {'a': 3})]
  assert [(s.where, s.reason) for s in skipped] == [(f'{path}:2', reason)]


def test_surrogate_pairs_are_text(tmp_path):
  path = _write(tmp_path, b'{"a": "\\ud83d\\ude00"}\n')
  assert list(read_jsonl(path)) == [(1, {'a': '\U0001F600'})]


def test_a_utf8_byte_order_mark_on_line_1_is_read_past(tmp_path):
  path = _write(tmp_path, b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}\r\n')
  assert list(read_jsonl(path)) == [(1, {'a': 1}), (2, {'a': 2})]
