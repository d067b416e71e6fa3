"""How every curation tool runs: a per-shard ledger (llm/jobs.py), then a deterministic merge.

    INPUT.jsonl ─jobs.run (checked rows, shard k of n, resume, progress + ETA)─▶
        OUT.ledger[-0000k-of-0000n].jsonl   one line per input row:
            {"index": i, "results": [{"kept": bool, "reason": str | null,
                                      "row": {...}, "scores": {name: float | [float]}}]}
    ─merge (once every shard's ledger is complete; rerun any shard to redo it): the
     tool's verdict, then the score cut (threshold.py: a fixed score or a quantile of
     every shard's scores), then the dedupe─▶
        KEPT.jsonl       the kept rows, in input order (+ their scores)
        REJECTED.jsonl   every other result with its "reason" and scores
        OUT.summary.json counts, reasons, input lines that were not JSON, score stats,
                         the cut (its threshold and the score it came to)
        OUT.scores.png   a histogram per score, kept and rejected apart

A bad row in strict mode stops the job naming INPUT:line and the field; otherwise it
becomes a rejected result (reason "bad_row: ..."), and a line that is not JSON is
counted and named (path:line) in the summary. Nothing read is lost: every valid
input row's results land in exactly one of the two files. The merge writes each
file to a temporary name and renames it, so a reader never sees half a file.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Any, Callable, Sequence

import numpy as np
from absl import logging

from gemini_embed.curate.threshold import ScoreCut
from gemini_embed.data.jsonl import JsonLineError
from gemini_embed.llm import jobs

Row = dict[str, Any]
Result = dict[str, Any]
Problem = Callable[[Row], 'str | None']


def result(row: Row, *, kept: bool, reason: str | None = None,
           scores: dict[str, Any] | None = None) -> Result:
  return {'kept': kept, 'reason': reason, 'row': row, 'scores': scores or {}}


def stem(path: str) -> str:
  return os.path.splitext(path)[0]


def ledger_path(out: str) -> str:
  return stem(out) + '.ledger.jsonl'


class Job:
  """One tool's run over INPUT: `run(work)` then `merge()` when every shard is done.

  problem(row) names what is wrong with a row (None when it is fine);
  work(window of (index, row)) → ([{"index", "results"}], tokens)."""

  def __init__(self, input_path: str, out: str, kept: str, rejected: str, *,
               problem: Problem, strict: bool, num_shards: int = 1, shard: int = 0,
               desc: str = 'curate', dedupe: Callable[[Row], Any] | None = None,
               cut: ScoreCut | None = None):
    self.input_path, self.out, self.kept, self.rejected = input_path, out, kept, rejected
    self.problem, self.strict, self.desc = problem, strict, desc
    self.num_shards, self.shard = num_shards, shard
    self.dedupe = dedupe   # kept rows with an equal key after the first: rejected, 'duplicate'
    self.cut = cut         # applied at the merge, over every shard's scores (threshold.py)
    self.bad_lines: list[JsonLineError] = []

  # ---- input ---------------------------------------------------------------------------
  def _check(self, row: Row) -> None:
    if self.strict and (why := self.problem(row)):
      raise ValueError(f'{why} (--nostrict rejects such rows and goes on)')

  def _on_error(self):
    if self.strict:
      return None
    self.bad_lines = []
    return self.bad_lines.append

  def rows(self) -> list[tuple[int, Row]]:
    """(line, row) of every input row, checked as the job checks them."""
    return jobs.read_rows(self.input_path, self._check, self._on_error())

  def bad_row(self, row: Row) -> Result | None:
    """The rejected result of a row with a problem (non-strict mode), else None."""
    why = self.problem(row)
    return result(row, kept=False, reason=f'bad_row: {why}') if why else None

  # ---- the sharded, resumable pass -----------------------------------------------------
  def run(self, work: Callable[[Sequence[tuple[int, Row]]], tuple[list[Row], int]],
          window: int) -> bool:
    """This shard's ledger, then the merge if every shard is complete; True if merged."""
    jobs.run(self.input_path, ledger_path(self.out), check=self._check, process=work,
             window=window, num_shards=self.num_shards, shard=self.shard, desc=self.desc,
             on_error=self._on_error())
    return self.merge_if_complete()

  def merge_if_complete(self) -> bool:
    total = len(self.rows())
    paths = []
    for k in range(self.num_shards):
      path = jobs.shard_path(ledger_path(self.out), k, self.num_shards)
      want = (k + 1) * total // self.num_shards - k * total // self.num_shards
      have = _complete_lines(path)
      if have < want:
        logging.info('%s holds %d of %d rows: the merge waits for that shard (rerun any '
                     'shard once all are done to merge)', path, have, want)
        return False
      paths.append(path)
    self.merge(paths)
    return True

  # ---- the merge -------------------------------------------------------------------------
  def merge(self, paths: Sequence[str]) -> dict:
    lines = [line for line, _ in self.rows()]
    entries = [entry for path in paths for _, entry in jobs.read_rows(path, lambda r: None)]
    cutoff = self.cut.cutoff(res for e in entries for res in e['results']) if self.cut else None
    kept, rejected, seen = [], [], set()
    reasons = collections.Counter()
    scores: dict[str, dict[str, list[float]]] = collections.defaultdict(
        lambda: {'kept': [], 'rejected': []})
    for entry in entries:
      for res in entry['results']:
        row = dict(res['row'])
        ok, reason = self._decide(res, cutoff, seen)
        row.update(_flat_scores(res['scores']))
        if not ok:
          row['reason'] = reason
          row['input_line'] = lines[entry['index']]
          reasons[reason.split(':')[0]] += 1
        (kept if ok else rejected).append(row)
        for name, value in res['scores'].items():
          scores[name]['kept' if ok else 'rejected'] += list(np.ravel(value).astype(float))
    _write_jsonl(self.kept, kept)
    _write_jsonl(self.rejected, rejected)
    summary = {
        'input': self.input_path, 'input_rows': len(lines), 'shards': self.num_shards,
        'kept': len(kept), 'rejected': len(rejected), 'reasons': dict(sorted(reasons.items())),
        'lines_not_json': [str(e) for e in self.bad_lines],
        'scores': {name: {side: _stats(v) for side, v in sides.items()}
                   for name, sides in sorted(scores.items())},
        'outputs': {'kept': self.kept, 'rejected': self.rejected},
    }
    if self.cut:
      summary['cut'] = self.cut.summary(cutoff)
    _write_text(stem(self.out) + '.summary.json', json.dumps(summary, indent=2) + '\n')
    plot_histograms(scores, stem(self.out) + '.scores.png')
    logging.info('merged %d shard(s): %d kept → %s, %d rejected → %s', len(paths), len(kept),
                 self.kept, len(rejected), self.rejected)
    return summary

  def _decide(self, res: Result, cutoff: float | None, seen: set) -> tuple[bool, str | None]:
    """(kept, reason) of a ledger result: the tool's verdict, then the score cut, then
    the dedupe (a kept row whose key an earlier kept row had)."""
    ok, reason = res['kept'], res['reason']
    if ok and self.cut and res['scores'].get(self.cut.score, np.inf) < cutoff:
      ok, reason = False, self.cut.reason
    if ok and self.dedupe is not None:
      key = self.dedupe(res['row'])
      if key in seen:
        ok, reason = False, 'duplicate'
      seen.add(key)
    return ok, reason


def _flat_scores(scores: dict[str, Any]) -> dict[str, Any]:
  """Scalar scores ride on the row as `score_NAME`; per-candidate lists stay in the
  tool's own audit field."""
  return {f'score_{k}': v for k, v in scores.items() if not isinstance(v, list)}


def _stats(values: list[float]) -> dict[str, float]:
  if not values:
    return {'n': 0}
  v = np.asarray(values, np.float64)
  return {'n': int(v.size), 'mean': float(v.mean()), 'min': float(v.min()),
          'p50': float(np.median(v)), 'max': float(v.max())}


def plot_histograms(scores: dict[str, dict[str, list[float]]], path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  names = sorted(scores) or ['(no scores)']
  fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
  for ax, name in zip(axes[0], names):
    for side, values in scores.get(name, {}).items():
      if values:
        ax.hist(values, bins=30, alpha=0.6, label=f'{side} ({len(values)})')
    ax.set_title(name)
    ax.legend(fontsize=7)
  fig.tight_layout()
  tmp = path + '.tmp.png'
  fig.savefig(tmp, dpi=80)
  plt.close(fig)
  os.replace(tmp, path)


def _complete_lines(path: str) -> int:
  """Complete lines in a ledger another process may still be appending to (read only)."""
  if not os.path.exists(path):
    return 0
  with open(path, 'rb') as f:
    return f.read().count(b'\n')


def _write_jsonl(path: str, rows: list[Row]) -> None:
  _write_text(path, ''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows))


def _write_text(path: str, text: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w', encoding='utf-8') as f:
    f.write(text)
  os.replace(tmp, path)
