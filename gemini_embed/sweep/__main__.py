r"""Sweep a config: train every point, score it on the dev suite, choose, and propose.

    python -m gemini_embed.sweep --config=configs/NAME.py[:ARGS] --workdir=DIR \
        [--mode=grid|dirichlet] [--n=K] [--prior=sizes|rates] [--concentration=C] [--seed=S]
        [--launcher=local|pod] [--jobs=1] [--tpu=NAME --zone=ZONE] [--suite=DEV]
        [--dims=D,...] [--fit=none|linear|gbm] [--dry_run] [--config.FIELD=VALUE ...]

grid: the points of the config's `sweep(add)`; dirichlet: K mixtures of the config stage's
datasets drawn from Dirichlet(C · prior) (RegMix), the prior being the datasets' sizes or
the config's rates. Every point is an ordinary workdir, DIR/<point-name> (the name reads
back to its overrides: gemini_embed/sweep/points.py), trained by `python -m
gemini_embed.train` and scored by `python -m gemini_embed.evaluate` on both halves of
--suite. Rerunning the same command skips what is finished and resumes the rest
(sweep/launch.py). `--config.FIELD=VALUE` flags go to every point's train command.

The point is chosen on the suite's select half by the config's `metrics()` (a list of
metric names; the first is maximised) or else `mean_task@<largest dim>`; the tables and
the chosen point's score come from the report half, with bootstrap intervals
(sweep/collect.py lists the files). --fit fits score ~ mixture on the scored points,
reports its leave-one-out Spearman, proposes the best mixture (sweep/fit.py) and prints
the command that trains it.
"""

from __future__ import annotations

import os
import shlex
import sys
import time

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from gemini_embed.configlib import config_module, parse_config_flags
from gemini_embed.sweep import collect, fit, points as points_lib
from gemini_embed.sweep.launch import HALVES, LocalLauncher, Point, PodLauncher, \
    evaluate_command, pod_command, train_command

_CONFIG = config_flags.DEFINE_config_file('config', None, 'configs/NAME.py[:ARGS]',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Sweep directory: one workdir per point.')
_MODE = flags.DEFINE_enum('mode', 'grid', ['grid', 'dirichlet'],
                          "grid: the config's sweep(add); dirichlet: --n sampled mixtures.")
_N = flags.DEFINE_integer('n', 8, 'dirichlet: number of mixtures.')
_PRIOR = flags.DEFINE_enum('prior', 'sizes', ['sizes', 'rates'],
                           "dirichlet: the mixtures' mean: dataset sizes (rows) or the "
                           "config's rates.")
_CONCENTRATION = flags.DEFINE_float('concentration', 10.0, 'dirichlet: C in Dirichlet(C·prior); '
                                    'smaller spreads the mixtures further.')
_SEED = flags.DEFINE_integer('seed', 0, 'dirichlet: seed of the draws (and of --fit).')
_LAUNCHER = flags.DEFINE_enum('launcher', 'local', ['local', 'pod'],
                              'local: this machine; pod: launch/pod.py run per point.')
_JOBS = flags.DEFINE_integer('jobs', 1, 'local: points at a time (threads split between them).')
_TPU = flags.DEFINE_string('tpu', None, 'pod: the TPU VM name.')
_ZONE = flags.DEFINE_string('zone', None, 'pod: its zone.')
_SUITE = flags.DEFINE_string('suite', None, 'Dev suite (two halves): score every point.')
_DIMS = flags.DEFINE_list('dims', [], 'MRL dims to score the points at (default: the largest '
                          "of the config's mrl_dims, the one the default metric reads).")
_FIT = flags.DEFINE_enum('fit', 'none', ['none', 'linear', 'gbm'],
                         'Fit score ~ mixture on the scored points and propose a mixture.')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the commands; run nothing.')


def _raw_config_args(argv: list[str]) -> tuple[str, list[str]]:
  """--config's value as typed, and the --config.FIELD=VALUE flags (passed to every point)."""
  value = None
  for i, a in enumerate(argv):
    if a.startswith('--config='):
      value = a.split('=', 1)[1]
    elif a == '--config' and i + 1 < len(argv):
      value = argv[i + 1]
  passthrough = [a for a in argv if a.startswith('--config.')]
  if any('=' not in a for a in passthrough):
    raise app.UsageError('give config overrides as --config.FIELD=VALUE (one argument each)')
  return value, passthrough


def select_metric(module, metrics) -> str:
  """The config's metrics()[0] if it defines metrics(), else Mean(Task) at the largest dim."""
  if callable(getattr(module, 'metrics', None)):
    names = list(module.metrics())
    if not names:
      raise app.UsageError('the config\'s metrics() is empty: name at least one metric '
                           '(e.g. mean_task@768)')
    known = {c.removeprefix('select/') for c in metrics.columns if c.startswith('select/')}
    if known and names[0] not in known:
      raise app.UsageError(f'the config\'s metrics()[0] = {names[0]!r} is not a metric of the '
                           f'results; e.g. {sorted(k for k in known if "/task/" not in k)[:6]}')
    return names[0]
  return collect.default_metric(metrics)


def build_points(config, module, config_path: str, config_arg: str,
                 passthrough: list[str]) -> list[Point]:
  if _MODE.value == 'grid':
    overrides = points_lib.grid_points(module, config_path)
  else:
    mean = points_lib.prior(config, _PRIOR.value)
    overrides = points_lib.dirichlet_points(mean, _N.value, _CONCENTRATION.value, _SEED.value)
  out = []
  for o in overrides:
    name = points_lib.point_name(o, config)
    workdir = os.path.join(_WORKDIR.value, name)
    out.append(Point(name, o, workdir, train_command(config_arg, workdir, o, passthrough)))
  if len({p.name for p in out}) != len(out):
    raise app.UsageError('two sweep points have the same name (the same overrides)')
  return out


def run_fit(config, pts: list[Point], ratios, metrics, metric: str, config_arg: str,
            passthrough: list[str]) -> dict | None:
  column = f'select/{metric}'
  scored = metrics[column].dropna() if column in metrics else metrics.iloc[:0, 0]
  names = list(ratios.columns)
  x, y = ratios.loc[scored.index, names].to_numpy(), scored.to_numpy(np.float64)
  mean = points_lib.prior(config, _PRIOR.value) if _MODE.value == 'dirichlet' else \
      points_lib.stage_rates(config)
  try:
    proposal = fit.propose(_FIT.value, names, x, y, mean, _CONCENTRATION.value, _SEED.value)
  except ValueError as e:
    print(f'--fit={_FIT.value}: {e}')
    return None
  overrides = {points_lib.rate_field(k): v for k, v in proposal.mixture.items()}
  name = points_lib.point_name(overrides, config)
  command = train_command(config_arg, os.path.join(_WORKDIR.value, name), overrides, passthrough)
  rho = 'n/a (too few points)' if proposal.loo_spearman is None else \
      f'{proposal.loo_spearman:.3f}'
  print(f'\nfit ({proposal.kind}) of select {metric} on {proposal.points} points: '
        f'leave-one-out Spearman {rho}\nproposed mixture: {proposal.mixture} '
        f'(predicted {100 * proposal.predicted:.2f}, best observed '
        f'{100 * proposal.best_observed:.2f})\nrun it:\n  {shlex.join(command)}')
  return dict(kind=proposal.kind, points=proposal.points, loo_spearman=proposal.loo_spearman,
              mixture=proposal.mixture, predicted=proposal.predicted,
              best_observed=proposal.best_observed, point=name,
              overrides=[f'--config.{k}={v}' for k, v in overrides.items()], train_command=command)


def main(argv):
  del argv
  config, sweep_dir = _CONFIG.value, _WORKDIR.value
  config_arg, passthrough = _raw_config_args(sys.argv)
  config_path = config_arg.split(':', 1)[0]
  module = config_module(config_path)
  dims = [int(d) for d in _DIMS.value] or [max(config.mrl_dims)]
  try:
    pts = build_points(config, module, config_path, config_arg, passthrough)
  except (ValueError, KeyError, FileNotFoundError) as e:
    raise app.UsageError(str(e)) from None
  if _DRY_RUN.value:
    for p in pts:
      cmds = [pod_command(p, _TPU.value or 'TPU', _ZONE.value or 'ZONE')] \
          if _LAUNCHER.value == 'pod' else [p.train]
      if _SUITE.value:
        cmds += [evaluate_command(p, _SUITE.value, h, dims) for h in HALVES]
      print('\n'.join(shlex.join(c) for c in cmds))
    return
  os.makedirs(sweep_dir, exist_ok=True)
  record = dict(config=config_arg, passthrough=passthrough, mode=_MODE.value,
                git_sha=collect.git_sha(), time=time.time(), suite=_SUITE.value,
                launcher=_LAUNCHER.value,
                sampling=dict(n=_N.value, prior=_PRIOR.value, concentration=_CONCENTRATION.value,
                              seed=_SEED.value) if _MODE.value == 'dirichlet' else None,
                points=[dict(name=p.name, overrides=p.overrides, workdir=p.workdir,
                             train_command=shlex.join(p.train),
                             evaluate_commands=[
                                 shlex.join(evaluate_command(p, _SUITE.value, h, dims))
                                 for h in HALVES] if _SUITE.value else [])
                        for p in pts])
  collect.write_json(os.path.join(sweep_dir, 'sweep.json'), record)
  if _LAUNCHER.value == 'pod':
    try:
      launcher = PodLauncher(sweep_dir, _SUITE.value, dims, _TPU.value, _ZONE.value)
    except ValueError as e:
      raise app.UsageError(str(e)) from None
  else:
    launcher = LocalLauncher(sweep_dir, _SUITE.value, dims, _JOBS.value)
  errors = launcher.run(pts)

  ratios = collect.ratios_frame(pts, {p.name: points_lib.point_ratios(p.overrides, config)
                                      for p in pts})
  metrics = collect.metrics_frame(pts)
  try:
    metric = select_metric(module, metrics)
  except ValueError as e:
    print(f'not collected: {e}')
    return _finish(errors)
  best = collect.write_collection(sweep_dir, ratios, metrics, metric)
  print(open(os.path.join(sweep_dir, 'table.md')).read())
  if best is not None:
    chosen = next(p for p in pts if p.name == best)
    record = collect.best_record(chosen, metrics, metric)
    if _FIT.value != 'none':
      record['fit'] = run_fit(config, pts, ratios, metrics, metric, config_arg, passthrough)
    collect.write_json(os.path.join(sweep_dir, 'best.json'), record)
    print(f'best on select: {best} (report {metric}: '
          f'{collect.pct(record["report_score"])}); wrote {sweep_dir}/best.json')
  _finish(errors)


def _finish(errors: list[str]) -> None:
  if errors:
    print('\n'.join(['some points failed (rerun the sweep to resume them):', *errors]))
    sys.exit(1)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main, flags_parser=parse_config_flags)
