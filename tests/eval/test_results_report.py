"""write_results: strict JSON, a markdown table with aggregates, a PNG plot."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gemini_embed.eval import Bm25Okapi, evaluate_tasks, load_suite, write_results
from gemini_embed.eval.suite_evaluation import aggregate, comparison, pooled_comparison
from tests.eval.synthetic_suite import WIDTH, OracleEncoder, ShuffledEncoder, write_suite


@pytest.fixture(scope='module')
def written(tmp_path_factory):
  root = tmp_path_factory.mktemp('suite')
  truth = write_suite(root)
  tasks = [t for t in load_suite(root) if t.type in ('retrieval', 'sts', 'bitext')]
  results = evaluate_tasks(tasks, {'oracle': OracleEncoder(truth), 'shuffled': ShuffledEncoder(truth),
                                   'bm25': Bm25Okapi()}, dims=[8, 16], replicates=200,
                           compare=[('oracle@16', 'shuffled@16')])
  out = tmp_path_factory.mktemp('out')
  return results, write_results(results, out)


def test_json_is_strict_and_round_trips(written):
  results, paths = written
  text = paths['json'].read_text()
  loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f'non-JSON constant {c}'))
  assert loaded['aggregates']['bm25']['mean_task'] is None  # NaN → null
  assert loaded['systems']['oracle@8']['dim'] == 8
  assert loaded['systems']['bm25']['dim'] is None
  for task, scores in results['systems']['shuffled@16']['scores'].items():
    assert loaded['systems']['shuffled@16']['scores'][task] == pytest.approx(scores)


def _table(markdown: str) -> tuple[list[str], dict[str, list[str]]]:
  rows = [[c.strip() for c in line.strip().strip('|').split('|')]
          for line in markdown.splitlines() if line.startswith('|')]
  header, body = rows[0], rows[2:]
  return header, {r[0].strip('*'): r[1:] for r in body}


def test_markdown_table(written):
  results, paths = written
  header, rows = _table(paths['markdown'].read_text())
  assert header == ['task', 'metric', 'oracle@8', 'oracle@16', 'shuffled@8', 'shuffled@16', 'bm25']
  ndcg = results['systems']['shuffled@8']['scores']['retrieval/shelves']['ndcg_at_10']
  assert rows['retrieval/shelves'][0] == 'ndcg_at_10'
  lo, hi = results['aggregates']['shuffled@8']['intervals']['tasks']['retrieval/shelves']
  assert lo <= ndcg <= hi and lo < hi
  assert rows['retrieval/shelves'][3] == f'{100 * ndcg:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]'
  assert rows['sts/closeness'][0] == 'cosine_spearman'
  assert rows['sts/closeness'][2] == '100.00 [100.00, 100.00]' and rows['sts/closeness'][-1] == '–'
  assert rows['Mean(Task)'][2] == '100.00 [100.00, 100.00]'  # oracle@16 (column 0: the metric)
  assert rows['Mean(Task)'][-1] == '–'      # BM25 misses sts and bitext
  assert rows['Mean(retrieval)'][-1] != '–'
  assert rows['Borda rank'][1:] == [str(results['aggregates'][label]['borda_rank'])
                                    for label in header[2:]]
  assert rows['Borda rank'][2] == '1'  # oracle@16


def test_comparison_is_in_the_json_the_markdown_and_the_compare_tool(written):
  results, paths = written
  entry = results['comparisons'][0]
  assert (entry['a'], entry['b']) == ('oracle@16', 'shuffled@16')
  assert entry['mean_task']['p_a_greater'] == 1.0 and entry['mean_task']['difference'] > 0
  assert entry['mean_task']['interval'][0] > 0
  assert 'oracle@16 vs shuffled@16' in paths['markdown'].read_text()
  done = subprocess.run([sys.executable, '-m', 'gemini_embed.eval.compare',
                         f'--results={paths["json"]}', '--compare=shuffled@16,oracle@16',
                         '--compare=shuffled@8,oracle@8', '--pooled'],
                        capture_output=True, text=True, check=True)
  line = next(x for x in done.stdout.splitlines() if x.strip().startswith('Mean(Task)'))
  assert line.split()[-1] == '0.000'  # P(shuffled > oracle)
  pooled = done.stdout.split('mean(shuffled@16+shuffled@8) vs mean(oracle@16+oracle@8)')[1]
  line = next(x for x in pooled.splitlines() if x.strip().startswith('Mean(Task)'))
  assert line.split()[-1] == '0.000'
  with pytest.raises(ValueError, match="no system 'nobody@1'"):
    comparison(results, 'nobody@1', 'oracle@16')


def test_pooled_comparison_is_the_mean_difference_over_the_pairs(written):
  results, _ = written
  single = comparison(results, 'shuffled@16', 'oracle@16')
  # One pair pooled with itself is that pair: the same difference, interval and P.
  twice = pooled_comparison(results, [('shuffled@16', 'oracle@16')] * 2)
  for agg in ('mean_task', 'mean_type'):
    assert twice[agg]['difference'] == pytest.approx(single[agg]['difference'])
    assert twice[agg]['interval'] == pytest.approx(single[agg]['interval'])
    assert twice[agg]['p_a_greater'] == single[agg]['p_a_greater']
  # Two seeds' pairs: the point is the mean of the two differences (hand arithmetic on the
  # aggregates), and the shuffled encoder loses to the oracle in every replicate.
  other = comparison(results, 'shuffled@8', 'oracle@8')
  both = pooled_comparison(results, [('shuffled@16', 'oracle@16'), ('shuffled@8', 'oracle@8')])
  agg = results['aggregates']
  by_hand = ((agg['shuffled@16']['mean_task'] - agg['oracle@16']['mean_task'])
             + (agg['shuffled@8']['mean_task'] - agg['oracle@8']['mean_task'])) / 2
  assert both['mean_task']['difference'] == pytest.approx(by_hand)
  assert both['mean_task']['difference'] == pytest.approx(
      (single['mean_task']['difference'] + other['mean_task']['difference']) / 2)
  assert both['mean_task']['p_a_greater'] == 0.0 and both['mean_task']['interval'][1] < 0
  assert (both['a'], both['b']) == ('mean(shuffled@16+shuffled@8)', 'mean(oracle@16+oracle@8)')
  with pytest.raises(ValueError, match='at least one'):
    pooled_comparison(results, [])


def test_plot_is_a_png(written):
  _, paths = written
  data = paths['plot'].read_bytes()
  assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 10_000


def test_aggregate_recomputes_after_editing_results(written):
  results, _ = written
  edited = json.loads(json.dumps(results, default=float))
  edited['systems']['shuffled@16']['scores']['sts/closeness']['cosine_spearman'] = 2.0
  assert aggregate(edited)['shuffled@16']['type_means']['sts'] == 2.0
  assert not np.isnan(aggregate(edited)[f'oracle@{WIDTH}']['mean_task'])
