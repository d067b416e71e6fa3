"""Hermetic training data for trainer tests: made-up (query, positive, negative)
rows for every dataset a config's stage reads, written under a data root."""

from __future__ import annotations

import json
import os

import numpy as np

COLOURS = ('red', 'blue', 'green', 'amber', 'violet', 'grey', 'white', 'black')
THINGS = ('kettle', 'bridge', 'lantern', 'violin', 'harbour', 'tractor', 'orchard', 'compass')


def synthetic_rows(name: str, n: int, seed: int) -> list[dict]:
  rng = np.random.default_rng(seed)
  rows = []
  for i in range(n):
    c, t = rng.choice(COLOURS), rng.choice(THINGS)
    c2 = COLOURS[(COLOURS.index(c) + 1) % len(COLOURS)]
    rows.append({'query': f'{name}: which {t} is {c} (#{i})?',
                 'positive': f'The {t} number {i} is painted {c} and stands near the {name}.',
                 'negative': f'The {t} number {i} is painted {c2}.',
                 'title': f'{t} {i}'})
  return rows


def write_training_data(root: str, config, n: int = 96) -> str:
  """One JSONL file per dataset entry of `config` (its `files` relative to root)."""
  for k, (name, entry) in enumerate(sorted(config.data.datasets.items())):
    path = os.path.join(root, entry.files)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      for row in synthetic_rows(name, n, seed=k):
        f.write(json.dumps(row) + '\n')
  return root
