r"""The curation stages around the four tools, as one experiment or the recipe runs them
(experiments/curation/run.py, gemini_embed/recipe.py): what goes in, the tools' command
lines, and the corpora directory whose training files are the curated ones.

    ROOT/inputs/NAME.jsonl           a seeded sample of CORPORA/train/NAME.jsonl (rows to curate)
    ROOT/inputs/NAME.corpus.jsonl    every positive of that set as {"text"} (mine's corpus)
    ROOT/inputs/passages.jsonl       the passage-only sets' positives (synthesize_queries)
    ROOT/inputs/labels.json          the WordNet category descriptions (synthesize_classification)
    ROOT/curated/NAME.mined.jsonl, NAME.filtered.jsonl, synthetic_queries.jsonl,
                 synthetic_classification.jsonl      the tools' outputs (each tool resumes)

The host-side inputs are written once (an existing file is kept: a rerun is cheap and
the sample stays the one the tools already consumed). The tools run as their own
command lines (`Step.cmd`); `Step.output` exists once a tool has finished.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Iterable

import numpy as np

PASSAGE_SETS = ('man_pages', 'pydoc_topics')  # passages without queries: synthesize_queries
LABEL_SET = 'wordnet_category'                # its positives are the 45 label descriptions
SYNTHETIC_QUERIES = 'synthetic_queries'
SYNTHETIC_CLASSIFICATION = 'synthetic_classification'
SYNTHETIC = (SYNTHETIC_QUERIES, SYNTHETIC_CLASSIFICATION)


@dataclasses.dataclass(frozen=True)
class Step:
  title: str
  cmd: list[str]
  output: str  # exists once the tool has finished


def _nonblank(path: str) -> list[str]:
  with open(path, encoding='utf-8') as f:
    return [line for line in f if line.strip()]


def _positives(path: str) -> Iterable[str]:
  for i, line in enumerate(_nonblank(path), 1):
    row = json.loads(line)
    if 'positive' not in row:
      raise ValueError(f'{path}: row {i} has no "positive" field (training format: '
                       'query, positive, negative?)')
    yield row['positive']


def _pick(items: list, n: int, seed: int) -> list:
  """`n` of `items` drawn with `seed`, in their order (all of them when n is 0 or ≥ len)."""
  if n <= 0 or n >= len(items):
    return list(items)
  return [items[i] for i in sorted(np.random.default_rng(seed).permutation(len(items))[:n])]


def sample_rows(src: str, dst: str, n: int, seed: int = 0) -> None:
  """DST: `n` rows of SRC drawn with `seed`, in SRC's order (all of them when n ≥ rows)."""
  if os.path.exists(dst):
    return
  _write_lines(dst, _pick(_nonblank(src), n, seed))


def write_positives(srcs: Iterable[str], dst: str, n: int = 0, seed: int = 0) -> None:
  """DST: the positive of every row of each SRC that exists, as {"text"} rows (`n` > 0:
  that many, drawn with `seed`)."""
  if os.path.exists(dst):
    return
  _write_lines(dst, _pick([json.dumps({'text': p}, ensure_ascii=False) + '\n'
                           for src in srcs if os.path.exists(src) for p in _positives(src)],
                          n, seed))


def write_labels(src: str, dst: str, n: int = 0, seed: int = 0) -> None:
  """DST (LABELS.json): each distinct positive of SRC (label descriptions) as its own label
  (`n` > 0: that many, drawn with `seed`)."""
  if os.path.exists(dst):
    return
  descs = _pick(sorted(set(_positives(src))), n, seed)
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  with open(dst + '.tmp', 'w', encoding='utf-8') as f:
    json.dump({d: d for d in descs}, f, indent=1, ensure_ascii=False)
  os.replace(dst + '.tmp', dst)


def _write_lines(dst: str, lines: list[str]) -> None:
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  with open(dst + '.tmp', 'w', encoding='utf-8') as f:  # whole or absent: reruns trust it
    f.writelines(lines)
  os.replace(dst + '.tmp', dst)


def link_corpora(root: str, files: dict[str, str]) -> str:
  """ROOT/train/NAME.jsonl → each file (symlinks; an existing link is kept); returns ROOT."""
  os.makedirs(os.path.join(root, 'train'), exist_ok=True)
  for name, src in files.items():
    link = os.path.join(root, 'train', f'{name}.jsonl')
    if not os.path.lexists(link):
      os.symlink(os.path.abspath(src), link)
  return root


@dataclasses.dataclass(frozen=True)
class Curation:
  """One curation folder ROOT over CORPORA's training sets, mined with EMBEDDER and LLM."""
  root: str
  corpora: str          # build_corpora's output: CORPORA/train/NAME.jsonl
  embedder: str         # mine's embedder: a workdir trained without hard negatives
  llm: str              # the tools' --llm
  python: str = sys.executable
  k: int = 8            # mine: neighbours per query
  threshold: float | str = 3.0  # filter: expected grade (1–5) kept (the tool reads a string)
  min_rating: float | str = 3.0  # synthesize_queries: rater grade kept
  per_label: int = 8    # synthesize_classification: texts per label

  def source(self, name: str) -> str:
    return os.path.join(self.corpora, 'train', f'{name}.jsonl')

  def input(self, name: str) -> str:
    return os.path.join(self.root, 'inputs', f'{name}.jsonl')

  def curated(self, name: str) -> str:
    return os.path.join(self.root, 'curated', f'{name}.jsonl')

  def prepare(self, rows: dict[str, int], queries: bool, classification: bool,
              max_passages: int = 0, max_labels: int = 0, seed: int = 0) -> None:
    """The tools' inputs: `rows[NAME]` sampled rows and the corpus of each set to mine,
    the passages to write queries for, the labels to write texts for (0: all of them)."""
    for name, n in rows.items():
      sample_rows(self.source(name), self.input(name), n, seed)
      write_positives([self.source(name)], self.input(f'{name}.corpus'))
    if queries:
      write_positives([self.source(n) for n in PASSAGE_SETS], self.input('passages'),
                      max_passages, seed)
    if classification:
      write_labels(self.source(LABEL_SET), os.path.join(self.root, 'inputs', 'labels.json'),
                   max_labels, seed)

  def _tool(self, name: str) -> list[str]:
    return [self.python, '-m', f'gemini_embed.curate.{name}', f'--llm={self.llm}']

  def mine(self, name: str) -> Step:
    out = self.curated(f'{name}.mined')
    return Step(f'mine hard negatives: {name}', self._tool('mine') + [
        f'--workdir={self.embedder}', f'--input={self.input(name)}',
        f'--corpus={self.input(f"{name}.corpus")}', f'--out={out}', f'--k={self.k}'], out)

  def filter(self, name: str) -> Step:
    out = self.curated(f'{name}.filtered')
    return Step(f'filter: {name}', self._tool('filter') + [
        f'--input={self.curated(f"{name}.mined")}', f'--kept={out}',
        f'--rejected={self.curated(f"{name}.filtered-out")}',
        f'--threshold={self.threshold}'], out)

  def synthesize_queries(self) -> Step:
    out = self.curated(SYNTHETIC_QUERIES)
    return Step(f'synthetic queries for {"/".join(PASSAGE_SETS)}',
                self._tool('synthesize_queries') + [
                    f'--passages={self.input("passages")}', f'--out={out}',
                    f'--min_rating={self.min_rating}'], out)

  def synthesize_classification(self) -> Step:
    out = self.curated(SYNTHETIC_CLASSIFICATION)
    return Step(f'synthetic classification over the {LABEL_SET} labels',
                self._tool('synthesize_classification') + [
                    f'--labels={os.path.join(self.root, "inputs", "labels.json")}',
                    f'--out={out}', f'--per_label={self.per_label}'], out)
