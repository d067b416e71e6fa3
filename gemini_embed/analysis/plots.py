"""Plots of runs (frames from analysis/runs.py), each a matplotlib Figure (no pyplot: no
global backend or figure state); `fig.savefig(path)` writes it.

    score_vs_dim(aggregates)                       Mean(Task) against MRL dim, a line per model
    ablation_bars(aggregates, groups, dim)         a bar per recipe: the mean over its seeds,
                                                   each seed a dot, the spread as an error bar
    loss_curves(metrics)                           a panel per run, a line per dataset
    score_vs_rate(ratios, scores)                  a panel per swept dataset
    soup_vs_ingredients(aggregates, soup, parts, dim)   the soup beside what it averages

Scores are shown ×100; intervals are the results' bootstrap intervals.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _grid(n: int, width: float = 4.0, height: float = 3.2, cols: int = 3):
  cols = max(1, min(cols, n))
  rows = math.ceil(n / cols)
  fig = Figure(figsize=(width * cols, height * rows))
  axes = list(fig.subplots(rows, cols, squeeze=False).flat)
  for ax in axes[n:]:
    ax.set_visible(False)
  return fig, axes[:n]


def score_vs_dim(aggregates: pd.DataFrame, metric: str = 'mean_task') -> Figure:
  """`metric` ×100 against embedding dim, one line per model with its interval band."""
  fig = Figure(figsize=(6, 4))
  ax = fig.subplots()
  rows = aggregates[aggregates['dim'].notna()]
  for model, group in rows.groupby('model', sort=False):
    group = group.sort_values('dim')
    line, = ax.plot(group['dim'], 100 * group[metric], marker='o', label=model)
    ax.fill_between(group['dim'], 100 * group[f'{metric}_lo'], 100 * group[f'{metric}_hi'],
                    color=line.get_color(), alpha=0.15)
  dims = sorted(rows['dim'].unique())
  ax.set_xscale('log', base=2)
  ax.set_xticks(dims, [str(int(d)) for d in dims])
  ax.minorticks_off()
  ax.set_xlabel('embedding dim (MRL prefix)')
  ax.set_ylabel(f'{metric} ×100')
  ax.legend(fontsize='small')
  ax.grid(alpha=0.3)
  fig.tight_layout()
  return fig


def _row(aggregates: pd.DataFrame, model: str, dim: int) -> pd.Series:
  rows = aggregates[(aggregates['model'] == model) & (aggregates['dim'] == dim)]
  if rows.empty:
    raise KeyError(f'no system {model}@{dim} in the results; they hold '
                   f'{sorted(aggregates["system"])}')
  return rows.iloc[0]


def ablation_bars(aggregates: pd.DataFrame, groups: Mapping[str, Sequence[str]], dim: int,
                  metric: str = 'mean_task') -> Figure:
  """A bar per group (recipe → the models trained with it, one per seed): the mean over
  seeds, each seed a dot, min–max over seeds as the error bar."""
  fig = Figure(figsize=(1.6 * len(groups) + 2, 4))
  ax = fig.subplots()
  for i, (label, models) in enumerate(groups.items()):
    values = np.array([100 * _row(aggregates, m, dim)[metric] for m in models])
    ax.bar(i, values.mean(), color=f'C{i}', alpha=0.6)
    ax.errorbar(i, values.mean(), yerr=[[values.mean() - values.min()],
                                        [values.max() - values.mean()]], color='k', capsize=4)
    ax.scatter(np.full(len(values), i), values, color='k', s=12, zorder=3)
  ax.set_xticks(range(len(groups)), list(groups), rotation=20, ha='right')
  ax.set_ylabel(f'{metric}@{dim} ×100 (bar: mean over seeds; dots: seeds)')
  ax.grid(axis='y', alpha=0.3)
  fig.tight_layout()
  return fig


def loss_curves(metrics: pd.DataFrame, column: str = 'loss') -> Figure:
  """A panel per run, a line per dataset (task-homogeneous batches alternate between
  datasets; one line through all of them would jump). Rows without a `dataset` (runs
  logged before the field existed) form one line, 'all datasets'."""
  train = metrics[metrics[column].notna()] if column in metrics else metrics.iloc[:0]
  runs = list(dict.fromkeys(train['run']))
  if not runs:
    raise ValueError(f'no run has a {column!r} column in its metrics')
  fig, axes = _grid(len(runs), 5, 3.5, cols=2)
  for ax, run in zip(axes, runs):
    rows = train[train['run'] == run]
    datasets = rows['dataset'].fillna('all datasets') if 'dataset' in rows else \
        pd.Series('all datasets', index=rows.index)
    for name, group in rows.groupby(datasets, sort=True):
      ax.plot(group['step'], group[column], marker='.', label=name)
    ax.set_title(run if len(run) <= 40 else run[:39] + '…', fontsize='small')
    ax.set_xlabel('step')
    ax.set_ylabel(column)
    ax.legend(fontsize='x-small')
    ax.grid(alpha=0.3)
  fig.tight_layout()
  return fig


def score_vs_rate(ratios: pd.DataFrame, scores: pd.Series, label: str = 'score',
                  intervals: pd.DataFrame | None = None) -> Figure:
  """A panel per dataset whose rate varies across the points (ratios: point → normalised
  rate per dataset; scores: point → score ×1, shown ×100; intervals: lo/hi columns)."""
  swept = [c for c in sorted(ratios.columns) if ratios[c].nunique() > 1]
  if not swept:
    raise ValueError('no dataset rate varies across these points: nothing to plot')
  points = scores.index.intersection(ratios.index)
  fig, axes = _grid(len(swept))
  for ax, dataset in zip(axes, swept):
    x, y = ratios.loc[points, dataset], 100 * scores.loc[points]
    if intervals is not None:
      lo, hi = 100 * intervals.loc[points, 'lo'], 100 * intervals.loc[points, 'hi']
      ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt='none', ecolor='gray', alpha=0.5)
    ax.scatter(x, y, zorder=3)
    ax.set_title(dataset)
    ax.set_xlabel('mixture rate (normalised)')
    ax.set_ylabel(f'{label} ×100')
    ax.grid(alpha=0.3)
  fig.tight_layout()
  return fig


def soup_vs_ingredients(aggregates: pd.DataFrame, soup: str, ingredients: Sequence[str],
                        dim: int, metric: str = 'mean_task') -> Figure:
  """The soup's bar beside each ingredient's, with bootstrap intervals."""
  models = [*ingredients, soup]
  rows = [_row(aggregates, m, dim) for m in models]
  values = np.array([100 * r[metric] for r in rows])
  lo = np.array([100 * r[f'{metric}_lo'] for r in rows])
  hi = np.array([100 * r[f'{metric}_hi'] for r in rows])
  fig = Figure(figsize=(1.5 * len(models) + 2, 4))
  ax = fig.subplots()
  colors = ['C0'] * len(ingredients) + ['C3']
  ax.bar(range(len(models)), values, color=colors, alpha=0.7)
  ok = ~np.isnan(lo)
  ax.errorbar(np.arange(len(models))[ok], values[ok],
              yerr=[values[ok] - lo[ok], hi[ok] - values[ok]], fmt='none', ecolor='k', capsize=4)
  ax.set_xticks(range(len(models)), models, rotation=20, ha='right')
  ax.set_ylabel(f'{metric}@{dim} ×100 [bootstrap interval]')
  ax.grid(axis='y', alpha=0.3)
  fig.tight_layout()
  return fig
