"""Runs into frames: planted numbers come back where they were put."""

import json
import math

import pytest

from gemini_embed import analysis
from tests import run_fixtures


@pytest.fixture(scope='module')
def results():
  return run_fixtures.results({
      'a': {32: {'retrieval/man_pages': 0.2, 'retrieval/glosses': 0.4, 'sts/pairs': 0.9}},
      'b': {32: run_fixtures.flat_scores(0.5), 64: run_fixtures.flat_scores(0.7)}})


def test_aggregate_frame_holds_the_planted_means(results):
  agg = analysis.aggregate_frame(results).set_index('system')
  assert list(agg.index) == ['a@32', 'b@32', 'b@64']
  assert agg.at['a@32', 'mean_task'] == pytest.approx((0.2 + 0.4 + 0.9) / 3)
  assert agg.at['a@32', 'mean_type'] == pytest.approx((0.3 + 0.9) / 2)
  assert agg.at['a@32', 'type/retrieval'] == pytest.approx(0.3)
  assert agg.at['b@64', 'mean_task_hi'] == pytest.approx(0.72)
  assert agg.at['b@64', 'dim'] == 64 and agg.at['b@64', 'model'] == 'b'


def test_task_frame_and_missing_intervals(results):
  results = json.loads(json.dumps(results))
  del results['aggregates']['a@32']['intervals']
  tasks = analysis.task_frame(results)
  row = tasks[(tasks['system'] == 'a@32') & (tasks['task'] == 'sts/pairs')].iloc[0]
  assert row['score'] == pytest.approx(0.9) and row['metric'] == 'spearman'
  assert math.isnan(row['lo']) and math.isnan(row['hi'])
  assert len(tasks) == 9


def test_results_metrics_names_every_score_of_one_model(results):
  one = run_fixtures.results({'p': {96: {'retrieval/man_pages': 0.2, 'retrieval/glosses': 0.4,
                                         'sts/pairs': 0.6}}})
  flat = analysis.results_metrics(one)
  assert flat['mean_task@96'] == pytest.approx(0.4)
  assert flat['type/sts@96/lo'] == pytest.approx(0.58)
  assert flat['task/retrieval/glosses@96'] == pytest.approx(0.4)
  with pytest.raises(ValueError, match='score one model'):
    analysis.results_metrics(results)


def test_metrics_frame_keeps_the_last_row_of_a_repeated_step(tmp_path):
  run_fixtures.write_run(str(tmp_path / 'r'), {'x': [3.0, 2.0], 'y': [5.0]})
  with open(tmp_path / 'r' / 'metrics.jsonl', 'a') as f:  # a resumed run logs step 3 again
    f.write(json.dumps(dict(step=3, time=9.0, loss=1.5, dataset='x')) + '\n')
    f.write(json.dumps({'step': 3, 'time': 9.5, 'eval/retrieval_mean@96': 0.4}) + '\n')
  frame = analysis.metrics_frame({'r': str(tmp_path / 'r')})
  train = frame[frame['kind'] == 'train']
  assert list(train['step']) == [1, 2, 3] and list(train['loss']) == [3.0, 5.0, 1.5]
  assert list(train['dataset']) == ['x', 'y', 'x']
  assert frame[frame['kind'] == 'eval']['eval/retrieval_mean@96'].item() == 0.4
  configs = analysis.config_frame({'r': str(tmp_path / 'r')})
  assert configs.at['r', 'optim.lr'] == 1e-4
