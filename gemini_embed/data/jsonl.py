"""JSON Lines, read one way everywhere: training sources, the dev suite, `encode --input`.

    for line, row in read_jsonl(path):                  # the first bad line raises
    for line, row in read_jsonl(path, on_error=skip):   # skip(error) decides per bad line

A line is one JSON object; blank lines are skipped but still counted, so line
numbers are those an editor shows. A bad line is a `JsonLineError` whose message
starts with `path:line` and whose `reason` is one of REASONS (the training pipeline
counts bad rows by reason). Lines are read as bytes and decoded one at a time, so
one line of invalid UTF-8 is that line's error, not the file's. A UTF-8 byte order
mark starting the file is read past. Text no UTF-8 consumer can take (an unpaired
surrogate escape such as "\\ud800") is invalid_utf8; JSON nested deeper than
Python's recursion limit is too_deeply_nested.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterator

from etils import epath

REASONS = ('invalid_utf8', 'malformed_json', 'not_an_object', 'too_deeply_nested')

_BOM = b'\xef\xbb\xbf'
_SURROGATE_ESCAPE = re.compile(rb'\\u[dD][89a-fA-F]')  # the only way JSON spells a surrogate


class JsonLineError(ValueError):
  """A line (or record) that is not a JSON object: `where` (path:line), `reason`, `detail`."""

  def __init__(self, reason: str, detail: str, where: str = ''):
    super().__init__(f'{where}: {detail}' if where else detail)
    self.reason, self.detail, self.where = reason, detail, where


def json_object(raw: bytes) -> dict[str, Any]:
  """One UTF-8 line or record → its JSON object; raises JsonLineError (without `where`)."""
  try:
    text = raw.decode('utf-8')
  except UnicodeDecodeError as e:
    raise JsonLineError('invalid_utf8', f'not valid UTF-8 ({e.reason} at byte {e.start})'
                        ) from None
  try:
    row = json.loads(text)
  except json.JSONDecodeError as e:
    raise JsonLineError('malformed_json', f'not valid JSON ({e.msg})') from None
  except RecursionError:
    raise JsonLineError('too_deeply_nested', 'JSON nested too deeply to parse') from None
  if not isinstance(row, dict):
    raise JsonLineError('not_an_object', f'expected a JSON object, got {type(row).__name__}')
  if _SURROGATE_ESCAPE.search(raw):
    for key, value in row.items():
      try:
        json.dumps({key: value}, ensure_ascii=False).encode('utf-8')
      except UnicodeEncodeError:
        raise JsonLineError('invalid_utf8', f'field {key!r} holds an unpaired surrogate '
                            '(a \\ud800-\\udfff escape without its pair)') from None
  return row


def raw_lines(path: str) -> Iterator[tuple[int, int, bytes]]:
  """(line number, byte offset, raw bytes) of every non-blank line, past a leading BOM."""
  with epath.Path(path).open('rb') as f:  # local or gs://
    offset = 0
    for number, raw in enumerate(f, 1):
      start, offset = offset, offset + len(raw)
      if number == 1 and raw.startswith(_BOM):
        raw, start = raw[len(_BOM):], start + len(_BOM)
      if raw.strip():
        yield number, start, raw


def read_jsonl(path: str, on_error: Callable[[JsonLineError], None] | None = None
               ) -> Iterator[tuple[int, dict[str, Any]]]:
  """(line number, object) per non-blank line. A bad line raises its JsonLineError, or,
  with `on_error`, is passed to it and skipped (on_error may raise instead)."""
  for number, row, _, _ in read_jsonl_spans(path, on_error):
    yield number, row


def read_jsonl_spans(path: str, on_error: Callable[[JsonLineError], None] | None = None, *,
                     name: str | None = None) -> Iterator[tuple[int, dict[str, Any], int, int]]:
  """read_jsonl with each line's (byte offset, byte length): what a lazy reader keeps.
  `name`: the file as errors call it (the gs:// URI of a local copy)."""
  for number, offset, raw in raw_lines(path):
    try:
      row = json_object(raw)
    except JsonLineError as e:
      error = JsonLineError(e.reason, e.detail, f'{name or path}:{number}')
      if on_error is None:
        raise error from None
      on_error(error)
      continue
    yield number, row, offset, len(raw)
