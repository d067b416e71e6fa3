"""Merging results files: the same table, intervals and comparisons as one joint run;
refusals that name the file and what differs; the compare tool's --output."""

import json
import subprocess
import sys

import pytest

from gemini_embed.eval import Bm25Okapi, evaluate_tasks, load_suite, write_results
from gemini_embed.eval.merge import MergeError, merge_results
from tests.eval.synthetic_suite import OracleEncoder, ShuffledEncoder, write_suite

PAIR = ('oracle@16', 'shuffled@16')


def _json(x):
  return json.loads(json.dumps(x, default=float))


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('suite')
  truth = write_suite(root)
  tasks = [t for t in load_suite(root)
           if t.type in ('retrieval', 'sts', 'classification')]
  systems = dict(oracle=OracleEncoder(truth), bm25=Bm25Okapi(), shuffled=ShuffledEncoder(truth))
  def run(names, **kw):
    return _json(dict(suite='S', half='report', **evaluate_tasks(
        tasks, {n: systems[n] for n in names}, dims=[8, 16], replicates=200, **kw)))
  return dict(joint=run(['oracle', 'bm25', 'shuffled'], compare=[PAIR]),
              a=run(['oracle', 'bm25']), b=run(['shuffled']))


def test_merge_equals_the_joint_run(runs):
  merged = _json(merge_results({'a.json': runs['a'], 'b.json': runs['b']}, compare=[PAIR]))
  joint = runs['joint']
  assert merged['systems'] == joint['systems']
  # Borda points and ranks change with the other systems: recomputed over all of them.
  assert runs['a']['aggregates']['bm25']['borda_points'] != joint['aggregates']['bm25'][
      'borda_points']
  assert merged['aggregates'] == joint['aggregates']
  assert merged['comparisons'] == joint['comparisons']
  assert merged['comparisons'][0]['mean_task']['p_a_greater'] == 1.0
  assert (merged['tasks'], merged['half'], merged['bootstrap']) == (
      joint['tasks'], joint['half'], joint['bootstrap'])


def test_merge_keeps_each_parts_comparisons_once(runs):
  with_pair = runs['joint']
  merged = merge_results({'j.json': with_pair}, compare=[PAIR])
  assert [(c['a'], c['b']) for c in merged['comparisons']] == [PAIR]


@pytest.mark.parametrize('edit, message', [
    (lambda r: r.update(half='select'), "'half' is 'select'"),
    (lambda r: r['bootstrap'].update(seed=1), "'bootstrap'"),
    (lambda r: r['tasks'].pop(next(iter(r['tasks']))), "'tasks'"),
    (lambda r: r['systems'].update(bm25=r['systems']['shuffled@16']), "'bm25' is also in a.json"),
])
def test_merge_refuses_parts_that_are_not_one_table(runs, edit, message):
  b = _json(runs['b'])
  edit(b)
  with pytest.raises(MergeError, match=f'b.json: .*{message}'):
    merge_results({'a.json': runs['a'], 'b.json': b})


def test_merge_refuses_different_item_counts(runs):
  b = _json(runs['b'])
  task = next(t for t, info in b['tasks'].items() if info['type'] == 'retrieval')
  items = b['systems']['shuffled@16']['items'][task]
  items['values'] = items['values'][:-1]
  with pytest.raises(MergeError, match=f"b.json: task '{task}' has .* items"):
    merge_results({'a.json': runs['a'], 'b.json': b})


def test_compare_tool_merges_files_without_touching_neighbours(runs, tmp_path):
  write_results(runs['a'], tmp_path)                       # tmp/results.json: part a
  write_results(runs['b'], tmp_path, stem='shuffled')      # tmp/shuffled.json beside it
  before = (tmp_path / 'results.json').read_text()
  out = tmp_path / 'merged.json'
  done = subprocess.run(
      [sys.executable, '-m', 'gemini_embed.eval.compare',
       f'--results={tmp_path / "results.json"},{tmp_path / "shuffled.json"}',
       f'--compare={",".join(PAIR)}', f'--output={out}'],
      capture_output=True, text=True, check=True)
  assert 'wrote' in done.stdout and f'{PAIR[0]} vs {PAIR[1]}' in done.stdout
  assert (tmp_path / 'results.json').read_text() == before
  assert (tmp_path / 'plots' / 'merged_score_vs_dim.png').stat().st_size > 1000
  merged = json.loads(out.read_text())
  joint = json.loads(write_results(runs['joint'], tmp_path, stem='joint')['json'].read_text())
  for key in ('systems', 'aggregates', 'comparisons'):
    assert merged[key] == joint[key]
  assert 'shuffled@16' in (tmp_path / 'merged.md').read_text()
  (tmp_path / 'copy.json').write_text(before)
  for second, message in (('results.json', 'given twice'), ('copy.json', 'is also in')):
    bad = subprocess.run([sys.executable, '-m', 'gemini_embed.eval.compare',
                          f'--results={tmp_path / "results.json"},{tmp_path / second}',
                          f'--output={tmp_path / "twice.json"}'], capture_output=True, text=True)
    assert bad.returncode != 0 and message in bad.stderr, bad.stderr
  assert not (tmp_path / 'twice.json').exists()
