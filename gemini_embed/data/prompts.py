"""Prompts: the task string goes on the query side only; documents get a title line.

    query     'task: {task} | query: {text}'     e.g. 'task: code retrieval | query: ...'
    document  'title: {title} | text: {text}'    title 'none' when the row has none

Both templates are per dataset (`config.data.datasets.NAME.*_template`). Task
dropout (Gemini Embedding 2) replaces the task with 'none' for a fraction of
queries; whether query `row` of global batch `step` drops it depends only on
(seed, step, row), so every process and every resumed run agree.
"""

from __future__ import annotations

import numpy as np

from gemini_embed.data.spec import DOC_TEMPLATE, QUERY_TEMPLATE

DROPPED_TASK = 'none'
NO_TITLE = 'none'


def format_query(text: str, task: str, template: str = QUERY_TEMPLATE) -> str:
  return template.format(task=task, text=text)


def format_document(text: str, title: str | None = None, template: str = DOC_TEMPLATE) -> str:
  return template.format(title=title or NO_TITLE, text=text)


def task_dropped(seed: int, step: int, rows: np.ndarray, rate: float) -> np.ndarray:
  """Bool[len(rows)]: whether each global row of batch `step` loses its task string."""
  rows = np.asarray(rows, np.int64)
  if rate <= 0:
    return np.zeros(rows.shape, bool)
  # A counter-based generator keyed by (seed, step): random access, no state.
  rng = np.random.Generator(np.random.Philox(key=[seed & (2**64 - 1), step]))
  draws = rng.random(int(rows.max()) + 1 if rows.size else 0)
  return draws[rows] < rate
