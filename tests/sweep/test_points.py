"""Sweep points: names read back to the same overrides, whatever the dataset order;
Dirichlet mixtures are distinct, positive and seeded; the size prior counts rows."""

import json
import os

import numpy as np
import pytest

from gemini_embed.sweep import points
from tests.train_fixtures import load_config


@pytest.fixture(scope='module')
def config():
  return load_config('finetune', 'tiny')


def test_grid_point_names_round_trip(config):
  from gemini_embed.configlib import config_module
  from tests.train_fixtures import ROOT
  grid = points.grid_points(config_module(f'{ROOT}/configs/finetune.py'), 'configs/finetune.py')
  names = [points.point_name(p, config) for p in grid]
  assert names[0] == 'code_docstring-0.5'
  for name, overrides in zip(names, grid):
    back = points.parse_point_name(name, config)
    assert back == overrides
    assert all(type(back[k]) is type(v) for k, v in overrides.items())


def test_names_do_not_depend_on_order_and_keep_types(config):
  a = {'seed': 3, 'data.datasets.gettext_bitext.rate': 0.25, 'optim.learning_rate': 1e-4,
       'data.datasets.code_docstring.rate': 2.0}
  b = dict(reversed(list(a.items())))
  assert points.point_name(a, config) == points.point_name(b, config) == (
      'code_docstring-2.0__gettext_bitext-0.25__optim.learning_rate-0.0001__seed-3')
  back = points.parse_point_name(points.point_name(a, config), config)
  assert back == a and type(back['seed']) is int and type(back['optim.learning_rate']) is float


def test_a_value_that_cannot_be_a_directory_name_is_refused(config):
  with pytest.raises(ValueError, match=r"data.root='a/b' cannot be a directory name"):
    points.point_name({'data.root': 'a/b'}, config)
  with pytest.raises(KeyError, match=r"the config has no 'nope'"):
    points.parse_point_name('optim.nope-1', config)


def test_dirichlet_points_are_distinct_positive_mixtures_and_seeded(config):
  mean = points.stage_rates(config)
  first = points.dirichlet_points(mean, 6, 10.0, seed=0)
  assert first == points.dirichlet_points(mean, 6, 10.0, seed=0)
  assert first != points.dirichlet_points(mean, 6, 10.0, seed=1)
  names = {points.point_name(p, config) for p in first}
  assert len(names) == 6
  for p in first:
    rates = np.array(list(p.values()))
    assert set(p) == {points.rate_field(k) for k in mean}
    assert (rates >= points.MIN_RATE).all() and abs(rates.sum() - 1) < 0.01
    assert points.parse_point_name(points.point_name(p, config), config) == p


def test_dirichlet_draws_centre_on_the_prior():
  mean = {'a': 0.6, 'b': 0.3, 'c': 0.1}
  draws = points.sample_mixtures(mean, 20_000, 10.0, np.random.default_rng(0))
  np.testing.assert_allclose(draws.mean(axis=0), [0.6, 0.3, 0.1], atol=0.01)


def test_size_prior_counts_rows(tmp_path, config):
  sizes = {}
  for k, (name, entry) in enumerate(sorted(config.data.datasets.items())):
    path = tmp_path / entry.files
    os.makedirs(path.parent, exist_ok=True)
    sizes[name] = 10 * (k + 1)
    path.write_text(''.join(json.dumps({'query': 'q', 'positive': 'p'}) + '\n'
                            for _ in range(sizes[name])) + '\n')
  config = load_config('finetune', 'tiny')
  config.data.root = str(tmp_path)
  total = sum(sizes.values())
  assert points.prior(config, 'sizes') == pytest.approx({k: v / total for k, v in sizes.items()})


def test_point_ratios_normalise_the_overridden_rates(config):
  rates = {name: float(e.rate) for name, e in config.data.datasets.items()}
  rates['code_docstring'] = 3.0
  total = sum(rates.values())
  got = points.point_ratios({points.rate_field('code_docstring'): 3.0}, config)
  assert got == pytest.approx({k: v / total for k, v in rates.items()})
