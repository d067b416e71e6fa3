"""The score cut of filter and synthesize_queries with a fake judge (no model): a quantile
of the run's scores against numpy.quantile, taken over every shard at the merge, the
same split after a killed shard is rerun, every row in exactly one file with its score."""

import hashlib
import json

import numpy as np
import pytest

from gemini_embed.curate import threshold
from gemini_embed.curate.filter import filter_file
from gemini_embed.curate.synthesize_queries import synthesize_queries
from tests.data.fixtures import load_jsonl, write_jsonl

TOO_LONG = 'a passage the fake judge finds too long for its context'


def _grade(text: str) -> float:
  """A small judge's compressed scale: every grade within 2.9–3.1, fixed by the text."""
  return 2.9 + 0.2 * int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


class FakeJudge:
  """What the tools ask of curate/judge.Judge; `fail_after` graded calls it raises (a kill)."""

  def __init__(self, batch_size=1, fail_after=None):
    self.batch_size, self.tokens, self.calls, self.fail_after = batch_size, 0, 0, fail_after

  def graded(self, prompt, fills):
    self.calls += 1
    if self.fail_after is not None and self.calls > self.fail_after:
      raise KeyboardInterrupt('killed')
    return [None if f['passage'] == TOO_LONG else _grade(f['query'] + f['passage'])
            for f in fills]

  def generate(self, prompt, fills, keys, **kwargs):
    return [f'query {k} about {f["passage"][:12]}' for f, k in zip(fills, keys)]


@pytest.fixture
def train(tmp_path):
  rows = [{'query': f'query {i}', 'positive': f'passage number {i}'} for i in range(23)]
  rows[4]['positive'] = TOO_LONG            # no grade: rejected, outside the quantile
  rows[9] = {'query': 'a row without a positive'}
  return rows, write_jsonl(tmp_path / 'train.jsonl', rows)


def _filter(judge, src, out_dir, **kwargs):
  kept, rejected = str(out_dir / 'kept.jsonl'), str(out_dir / 'rejected.jsonl')
  merged = filter_file(judge, src, kept, rejected, threshold='q0.2', strict=False, **kwargs)
  return merged, kept, rejected


def test_a_quantile_rejects_the_lowest_fraction_of_the_run(train, tmp_path):
  rows, src = train
  merged, kept, rejected = _filter(FakeJudge(), src, tmp_path)
  assert merged
  k, r = load_jsonl(kept), load_jsonl(rejected)
  strip = lambda row: {f: row[f] for f in ('query', 'positive') if f in row}
  assert sorted(map(json.dumps, map(strip, k + r))) == sorted(map(json.dumps, rows))
  graded = [row for row in rows if row.get('positive', TOO_LONG) != TOO_LONG]
  grades = np.asarray([_grade(row['query'] + row['positive']) for row in graded], np.float64)
  cut = np.quantile(grades, 0.2)
  assert sorted(row['query'] for row in k) == sorted(
      row['query'] for row, g in zip(graded, grades) if g >= cut)
  for row in k + r:
    if 'score_quality' in row:
      assert row['score_quality'] == pytest.approx(_grade(row['query'] + row['positive']),
                                                   abs=1e-12)
  reasons = sorted(row['reason'].split(':')[0] for row in r)
  assert int((grades < cut).sum()) == 4   # 21 grades: 0.2 · 20 = 4 below the cut
  assert reasons == ['bad_row', 'below_threshold', 'below_threshold', 'below_threshold',
                     'below_threshold', 'too_long']
  summary = json.load(open(tmp_path / 'kept.summary.json'))
  assert summary['cut']['threshold'] == 'q0.2'
  assert summary['cut']['cutoff'] == pytest.approx(cut, abs=1e-12)


def test_shards_and_a_killed_rerun_split_as_one_run(train, tmp_path):
  _, src = train
  (tmp_path / 'one').mkdir()
  (tmp_path / 'two').mkdir()
  _, kept, rejected = _filter(FakeJudge(), src, tmp_path / 'one')
  want = open(kept, 'rb').read(), open(rejected, 'rb').read()
  assert not _filter(FakeJudge(), src, tmp_path / 'two', num_shards=2, shard=1)[0]
  with pytest.raises(KeyboardInterrupt):   # shard 0 killed after its first window (4 rows)
    _filter(FakeJudge(fail_after=1), src, tmp_path / 'two', num_shards=2, shard=0)
  ledger = tmp_path / 'two' / 'kept.ledger-00000-of-00002.jsonl'
  assert len(ledger.read_text().splitlines()) == 4
  merged, kept2, rejected2 = _filter(FakeJudge(), src, tmp_path / 'two', num_shards=2, shard=0)
  assert merged and (open(kept2, 'rb').read(), open(rejected2, 'rb').read()) == want
  # Another cut over the finished ledger: a re-split, without grading anything again.
  filter_file(FakeJudge(fail_after=0), src, kept, rejected, threshold='q0.5', strict=False)
  assert len(load_jsonl(kept)) == 11   # 21 grades, 10 below the median


def test_synthesize_queries_rating_quantile(tmp_path):
  passages = write_jsonl(tmp_path / 'p.jsonl',
                              [{'text': f'passage {i} on a subject'} for i in range(9)])
  out = tmp_path / 'pairs.jsonl'
  assert synthesize_queries(FakeJudge(batch_size=2), passages, str(out), per_passage=2,
                            min_rating='q0.5')
  kept, rejected = load_jsonl(out), load_jsonl(tmp_path / 'pairs.rejected.jsonl')
  ratings = np.asarray([row['score_rating'] for row in kept + rejected], np.float64)
  assert len(ratings) == 18
  cut = np.quantile(ratings, 0.5)
  assert all(row['score_rating'] >= cut for row in kept) and len(kept) == 9
  assert all(row['score_rating'] < cut and row['reason'] == 'low_rating' for row in rejected)


def test_threshold_values():
  assert threshold.parse('3', '--threshold') == threshold.Threshold(value=3.0)
  assert threshold.parse(2.5, '--threshold').cutoff([1.0, 9.0]) == 2.5
  assert str(threshold.parse('q0.2', '--threshold')) == 'q0.2'
  nothing = threshold.ScoreCut('quality', threshold.parse('q0.5', '--x'), 'below_threshold')
  assert nothing.cutoff([{'scores': {}}]) == -np.inf   # nothing scored: no cut
  assert nothing.summary(-np.inf)['cutoff'] is None     # (valid JSON in the summary)
  for bad in ('q1.5', 'q0', 'q', 'high', 'nan', ''):
    with pytest.raises(ValueError, match=f'--min_rating={bad}: give a score'):
      threshold.parse(bad, '--min_rating')


def test_a_bad_threshold_fails_before_any_work(train, tmp_path):
  _, src = train
  with pytest.raises(ValueError, match='--threshold=q2: give a score'):
    filter_file(FakeJudge(fail_after=0), src, str(tmp_path / 'k.jsonl'),
                str(tmp_path / 'r.jsonl'), threshold='q2')
  assert not list(tmp_path.glob('k.*'))
