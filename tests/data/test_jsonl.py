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
