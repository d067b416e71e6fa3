"""JSONL files as the tools' tests write and read them."""

import json


def save_jsonl(path, rows) -> str:
  """One line per row: a dict as JSON, a string as it is (to write a line that is not
  JSON); returns the path as a string."""
  with open(path, 'w') as f:
    for row in rows:
      f.write((row if isinstance(row, str) else json.dumps(row)) + '\n')
  return str(path)


def load_jsonl(path) -> list:
  with open(path) as f:
    return [json.loads(line) for line in f]
