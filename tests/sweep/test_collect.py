"""Collection on fixture points (no training): the sweep command finds every point finished
and scored, trains nothing, and writes the joined tables, the plot and best.json, choosing
on the select half while reporting the report half."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from gemini_embed.data.corpora.training_sets import FINETUNE_MIXTURES
from tests import run_fixtures
from tests.train_fixtures import ROOT, train_env

# code_docstring rate (configs/finetune.py's sweep) → (select, report) Mean(Task)
PLANTED = {0.5: (0.30, 0.60), 1.0: (0.50, 0.35), 2.0: (0.40, 0.45), 4.0: (0.20, 0.25)}
DIM = 96  # the tiny config's largest MRL dim
SUITE = 'fixture-suite'  # every point is already scored on it: never read


@pytest.fixture(scope='module')
def swept(tmp_path_factory):
  sweep_dir = tmp_path_factory.mktemp('sweep')
  run_fixtures.write_sweep_points(str(sweep_dir), PLANTED, DIM, SUITE)
  out = subprocess.run([sys.executable, '-m', 'gemini_embed.sweep',
                        f'--config={ROOT}/configs/finetune.py:tiny', f'--workdir={sweep_dir}',
                        f'--suite={SUITE}', '--fit=linear'],
                       env=train_env(1), capture_output=True, text=True, timeout=300, cwd=ROOT)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  return sweep_dir, out.stdout


def test_nothing_is_trained_or_evaluated_again(swept):
  sweep_dir, stdout = swept
  assert stdout.count('not retrained') == len(PLANTED)
  assert '$ ' not in stdout  # no command was run
  assert not any(os.path.exists(sweep_dir / f'code_docstring-{r}' / 'checkpoints') for r in PLANTED)


def test_best_is_chosen_on_select_and_reported_on_report(swept):
  sweep_dir, _ = swept
  best = json.loads((sweep_dir / 'best.json').read_text())
  assert best['point'] == 'code_docstring-1.0' and best['selected_on'] == 'select'
  assert best['metric'] == f'mean_task@{DIM}'
  assert best['select_score'] == pytest.approx(0.50)
  assert best['report_score'] == pytest.approx(0.35)
  assert best['report_interval'] == pytest.approx([0.35 - run_fixtures.HALF_WIDTH,
                                                   0.35 + run_fixtures.HALF_WIDTH])
  assert best['overrides'] == {'data.datasets.code_docstring.rate': 1.0}
  assert best['fit']['kind'] == 'linear' and best['fit']['points'] == 4
  assert best['fit']['overrides'][0].startswith('--config.data.datasets.')


def test_ratios_and_metrics_join_on_the_point_name(swept):
  sweep_dir, _ = swept
  ratios = pd.read_csv(sweep_dir / 'ratios.csv', index_col='point')
  metrics = pd.read_csv(sweep_dir / 'metrics.csv', index_col='point')
  assert list(ratios.columns) == sorted(FINETUNE_MIXTURES['task'])
  assert set(ratios.index) == set(metrics.index) == {f'code_docstring-{r}' for r in PLANTED}
  others = sum(v for k, v in FINETUNE_MIXTURES['task'].items() if k != 'code_docstring')
  for rate, (select, report) in PLANTED.items():
    name = f'code_docstring-{rate}'
    assert ratios.at[name, 'code_docstring'] == pytest.approx(rate / (rate + others))
    assert metrics.at[name, f'select/mean_task@{DIM}'] == pytest.approx(select)
    assert metrics.at[name, f'report/mean_task@{DIM}/hi'] == pytest.approx(
        report + run_fixtures.HALF_WIDTH)
    assert metrics.at[name, 'state'] == 'finished'


def test_table_plot_and_record(swept):
  sweep_dir, stdout = swept
  table = (sweep_dir / 'table.md').read_text()
  rows = [line for line in table.splitlines() if line.startswith('| code_docstring')]
  assert rows[0].startswith('| code_docstring-1.0 **(best)**')  # sorted by select score
  assert '35.00 [33.00, 37.00]' in rows[0]
  assert (sweep_dir / 'plots' / 'score_vs_rate.png').stat().st_size > 0
  record = json.loads((sweep_dir / 'sweep.json').read_text())
  assert record['mode'] == 'grid' and len(record['points']) == 4
  assert record['git_sha'] and 'gemini_embed.train' in record['points'][0]['train_command']
  assert 'leave-one-out Spearman' in stdout and 'run it:' in stdout


def test_long_point_names_get_short_labels_in_the_table():
  from gemini_embed.sweep import collect
  names = ['a_long_dataset_name-0.25__another_long_dataset_name-0.75',
           'a_long_dataset_name-0.75__another_long_dataset_name-0.25']
  ratios = pd.DataFrame({'a': [0.25, 0.75], 'b': [0.75, 0.25]}, index=names)
  metrics = pd.DataFrame({'state': ['finished'] * 2, 'select/m': [0.1, 0.2],
                          'report/m': [0.3, 0.4], 'report/m/lo': [0.2, 0.3],
                          'report/m/hi': [0.4, 0.5]}, index=names)
  table = collect.table_markdown(ratios, metrics, 'm', best=names[1])
  rows = [line for line in table.splitlines() if line.startswith('| p') and 'point' not in line]
  assert rows[0] == '| p2 **(best)** | 75.0 | 25.0 | 20.00 | 40.00 [30.00, 50.00] | finished |'
  assert f'- p1: `{names[0]}`' in table and f'- p2: `{names[1]}`' in table
