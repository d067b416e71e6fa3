"""What a curation tool asks of an input row: string fields, present and non-empty."""

from __future__ import annotations

from typing import Any


def missing_text(row: dict[str, Any], fields: tuple[str, ...]) -> str | None:
  """The first problem with `fields` of `row` (a missing, non-string or empty field),
  phrased for a path:line error; None when every field is a non-empty string."""
  for name in fields:
    if name not in row:
      return f'needs a "{name}" field'
    if not isinstance(row[name], str):
      return f'"{name}" must be a string, got {type(row[name]).__name__}'
    if not row[name].strip():
      return f'"{name}" is empty'
  return None
