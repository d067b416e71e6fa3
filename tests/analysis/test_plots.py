"""Each plot draws what it says: panels, lines per dataset, bars per recipe."""

import pytest

from gemini_embed import analysis
from tests import run_fixtures


@pytest.fixture(scope='module')
def scores():
  return analysis.aggregate_frame(run_fixtures.results({
      m: {32: run_fixtures.flat_scores(v), 96: run_fixtures.flat_scores(v + 0.1)}
      for m, v in (('a', 0.3), ('b', 0.4), ('soup', 0.5))}))


def test_score_vs_dim_draws_a_line_per_model(scores):
  ax = analysis.score_vs_dim(scores).axes[0]
  assert [l.get_label() for l in ax.get_lines()] == ['a', 'b', 'soup']
  assert list(ax.get_lines()[1].get_ydata()) == pytest.approx([40.0, 50.0])


def test_ablation_bars_average_the_seeds(scores):
  ax = analysis.ablation_bars(scores, {'recipe': ['a', 'b'], 'soup': ['soup']}, 96).axes[0]
  heights = [p.get_height() for p in ax.patches]
  assert heights == pytest.approx([45.0, 60.0])
  with pytest.raises(KeyError, match='no system c@96'):
    analysis.ablation_bars(scores, {'x': ['c']}, 96)


def test_loss_curves_draw_a_line_per_dataset(tmp_path):
  run_fixtures.write_run(str(tmp_path / 'r1'), {'x': [3.0, 2.0], 'y': [5.0, 4.0, 3.0]})
  run_fixtures.write_run(str(tmp_path / 'r2'), {'z': [1.0]})
  fig = analysis.loss_curves(analysis.metrics_frame(
      {'r1': str(tmp_path / 'r1'), 'r2': str(tmp_path / 'r2')}))
  axes = [ax for ax in fig.axes if ax.get_visible()]
  assert [ax.get_title() for ax in axes] == ['r1', 'r2']
  lines = {l.get_label(): list(l.get_ydata()) for l in axes[0].get_lines()}
  assert lines == {'x': [3.0, 2.0], 'y': [5.0, 4.0, 3.0]}


def test_score_vs_rate_has_a_panel_per_swept_dataset():
  import pandas as pd
  ratios = pd.DataFrame({'a': [0.2, 0.5, 0.8], 'b': [0.8, 0.5, 0.2], 'c': [0.0, 0.0, 0.0]},
                        index=['p1', 'p2', 'p3'])
  fig = analysis.score_vs_rate(ratios, pd.Series([0.1, 0.3, 0.2], index=ratios.index))
  assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ['a', 'b']


def test_soup_beside_its_ingredients(scores):
  ax = analysis.soup_vs_ingredients(scores, 'soup', ['a', 'b'], 96).axes[0]
  assert [p.get_height() for p in ax.patches] == pytest.approx([40.0, 50.0, 60.0])
  assert [t.get_text() for t in ax.get_xticklabels()] == ['a', 'b', 'soup']
