"""Both notebooks execute on fixture runs (no training) with nbclient on a kernelspec made
for this Python: no cell error, every figure drawn."""

import os

import pytest

from gemini_embed.analysis import notebook_exec
from gemini_embed.sweep import collect, points
from gemini_embed.sweep.launch import Point
from tests import run_fixtures
from tests.train_fixtures import load_config

MODELS = {'init': 0.1, 'prefinetune': 0.3, 'finetune-a': 0.45, 'finetune-b': 0.5, 'soup': 0.55}
PLANTED = {0.5: (0.30, 0.60), 1.0: (0.50, 0.35), 2.0: (0.40, 0.45)}


def write_demo(workdir: str) -> None:
  run_fixtures.write_json(os.path.join(workdir, 'results.json'), run_fixtures.results(
      {m: {32: run_fixtures.flat_scores(v - 0.1), 96: run_fixtures.flat_scores(v)}
       for m, v in MODELS.items()}))
  for run in ('prefinetune', 'finetune-a', 'finetune-b'):
    run_fixtures.write_run(os.path.join(workdir, run),
                           {'wordnet_category': [3.0, 2.5, 2.2], 'gettext_bitext': [4.0, 3.1]})


def write_sweep(sweep_dir: str) -> None:
  """A collected sweep (collect.py's files) over fixture points."""
  run_fixtures.write_sweep_points(sweep_dir, PLANTED, 96)
  config = load_config('finetune', 'tiny')
  pts = []
  for rate in PLANTED:
    overrides = {points.rate_field('code_docstring'): rate}
    name = points.point_name(overrides, config)
    pts.append(Point(name, overrides, os.path.join(sweep_dir, name), train=[]))
  ratios = collect.ratios_frame(pts, {p.name: points.point_ratios(p.overrides, config)
                                      for p in pts})
  metrics = collect.metrics_frame(pts)
  best = collect.write_collection(sweep_dir, ratios, metrics, 'mean_task@96')
  collect.write_json(os.path.join(sweep_dir, 'best.json'), collect.best_record(
      next(p for p in pts if p.name == best), metrics, 'mean_task@96'))


@pytest.mark.parametrize('name,parameters,figures', [
    ('ablations', lambda d: dict(WORKDIR=str(d / 'demo')), 4),
    ('mixtures', lambda d: dict(SWEEP=str(d / 'sweep')), 2)])
def test_notebook_runs_on_fixture_runs(tmp_path, name, parameters, figures):
  write_demo(str(tmp_path / 'demo'))
  write_sweep(str(tmp_path / 'sweep'))
  out = tmp_path / 'out'
  nb = notebook_exec.execute(os.path.join(notebook_exec.NOTEBOOK_DIR, f'{name}.py'),
                         dict(parameters(tmp_path), OUT=str(out / name)),
                         str(out / f'{name}.ipynb'), timeout=120)
  assert notebook_exec.figure_count(nb) == figures
  assert len(list((out / name).glob('*.png'))) == figures
  assert (out / f'{name}.ipynb').stat().st_size > 0
  errors = [o for c in nb.cells for o in c.get('outputs', []) if o.get('output_type') == 'error']
  assert not errors
