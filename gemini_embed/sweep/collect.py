"""Collecting a sweep: what each point trained on and how it scored, side by side.

    DIR/sweep.json                 the points, their commands, the git SHA, the metric
    DIR/ratios.csv                 point, then each dataset's normalised rate (sorted names)
    DIR/metrics.csv                point, state, step, then select/NAME and report/NAME
                                   (+ /lo, /hi) for every named metric (analysis.results_metrics)
    DIR/table.md                   the points by their select score, report score [interval]
    DIR/plots/score_vs_rate.png    select score against each swept dataset's rate
    DIR/best.json                  the point chosen on select, its report score and interval

Columns are sorted by name and both files are keyed by the point name, so they join
whatever the order of the datasets in the config.
"""

from __future__ import annotations

import json
import math
import os
import subprocess

import pandas as pd

from gemini_embed import analysis
from gemini_embed.sweep.launch import HALVES, Point, read_status

SHORT_NAME = 40  # longer point names get a short label in table.md


def git_sha() -> str | None:
  try:
    return subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True,
                          check=True, cwd=os.path.dirname(os.path.abspath(__file__))
                          ).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return None


def ratios_frame(points: list[Point], ratios: dict[str, dict[str, float]]) -> pd.DataFrame:
  frame = pd.DataFrame.from_dict({p.name: ratios[p.name] for p in points}, orient='index')
  frame.index.name = 'point'
  return frame[sorted(frame.columns)]


def metrics_frame(points: list[Point]) -> pd.DataFrame:
  """Every point's state and step, and the named metrics of each half it has results for."""
  rows = {}
  for p in points:
    status = read_status(p.workdir) or {}
    row = dict(state=status.get('state', 'not started'), step=status.get('step'))
    for half in HALVES:
      if os.path.exists(p.results(half)):
        row.update({f'{half}/{k}': v for k, v in
                    analysis.results_metrics(p.results(half)).items()})
    rows[p.name] = row
  frame = pd.DataFrame.from_dict(rows, orient='index')
  frame.index.name = 'point'
  fixed = ['state', 'step']
  return frame[fixed + sorted(c for c in frame.columns if c not in fixed)]


def default_metric(metrics: pd.DataFrame) -> str:
  """Mean(Task) at the largest MRL dim the points were scored at."""
  dims = [int(c.rpartition('@')[2]) for c in metrics.columns
          if c.startswith('select/mean_task@') and '/' not in c.rpartition('@')[2]]
  if not dims:
    raise ValueError('no point has select-half results yet: nothing to choose from '
                     '(give --suite=DEV_SUITE, and let the points finish)')
  return f'mean_task@{max(dims)}'


def pct(value: float) -> str:
  return '–' if value is None or math.isnan(value) else f'{100 * value:.2f}'


def _interval(metrics: pd.DataFrame, point: str, column: str) -> str:
  lo, hi = metrics.at[point, f'{column}/lo'], metrics.at[point, f'{column}/hi']
  return '' if math.isnan(lo) else f' [{pct(lo)}, {pct(hi)}]'


def table_markdown(ratios: pd.DataFrame, metrics: pd.DataFrame, metric: str,
                   best: str | None) -> str:
  """Points by select score: rates (%), select score, report score [95% interval]. Long
  point names (a Dirichlet point names every rate) are shown as p1, p2, … (the order of
  sweep.json), spelled out under the table."""
  select, report = f'select/{metric}', f'report/{metric}'
  order = metrics.sort_values(select, ascending=False, na_position='last').index \
      if select in metrics else metrics.index
  short = any(len(p) > SHORT_NAME for p in ratios.index)
  label = {p: f'p{i + 1}' if short else p for i, p in enumerate(ratios.index)}
  datasets = list(ratios.columns)
  lines = [f'Selected on the dev suite\'s select half by `{metric}`; the report half scores '
           'the table (×100, [95% bootstrap interval]). Rates: % of batches.', '',
           '| point | ' + ' | '.join(datasets) + f' | select {metric} | report {metric} | state |',
           '|---|' + '---:|' * len(datasets) + '---:|---:|---|']
  for point in order:
    mark = ' **(best)**' if point == best else ''
    rates = ' | '.join(f'{100 * ratios.at[point, d]:.1f}' for d in datasets)
    sel = pct(metrics.at[point, select]) if select in metrics else '–'
    rep = (pct(metrics.at[point, report]) + _interval(metrics, point, report)
           if report in metrics else '–')
    lines.append(f'| {label[point]}{mark} | {rates} | {sel} | {rep} | '
                 f'{metrics.at[point, "state"]} |')
  if short:
    lines += [''] + [f'- {label[p]}: `{p}`' for p in ratios.index]
  return '\n'.join(lines) + '\n'


def choose(metrics: pd.DataFrame, metric: str) -> str | None:
  """The point of highest select score (None: no point scored yet)."""
  column = f'select/{metric}'
  if column not in metrics or metrics[column].isna().all():
    return None
  return str(metrics[column].idxmax())


def best_record(point: Point, metrics: pd.DataFrame, metric: str) -> dict:
  report = f'report/{metric}'
  row = metrics.loc[point.name]
  value = lambda c: None if c not in row or math.isnan(row[c]) else float(row[c])
  return dict(point=point.name, metric=metric, selected_on='select',
              select_score=value(f'select/{metric}'), report_score=value(report),
              report_interval=[value(f'{report}/lo'), value(f'{report}/hi')],
              overrides=point.overrides, workdir=point.workdir,
              train_command=point.train)


def write_collection(sweep_dir: str, ratios: pd.DataFrame, metrics: pd.DataFrame,
                     metric: str) -> str | None:
  """ratios.csv, metrics.csv, table.md and plots/score_vs_rate.png; returns the best point."""
  ratios.to_csv(os.path.join(sweep_dir, 'ratios.csv'))
  metrics.to_csv(os.path.join(sweep_dir, 'metrics.csv'))
  best = choose(metrics, metric)
  with open(os.path.join(sweep_dir, 'table.md'), 'w') as f:
    f.write(table_markdown(ratios, metrics, metric, best))
  column = f'select/{metric}'
  if best is not None and any(ratios[c].nunique() > 1 for c in ratios.columns):
    scored = metrics[column].dropna()
    fig = analysis.score_vs_rate(ratios, scored, label=f'select {metric}',
                                 intervals=metrics.loc[scored.index, [f'{column}/lo',
                                                                      f'{column}/hi']]
                                 .set_axis(['lo', 'hi'], axis=1))
    os.makedirs(os.path.join(sweep_dir, 'plots'), exist_ok=True)
    fig.savefig(os.path.join(sweep_dir, 'plots', 'score_vs_rate.png'), dpi=100)
  return best


def write_json(path: str, record: dict) -> None:
  with open(path + '.tmp', 'w') as f:
    json.dump(record, f, indent=2)
  os.replace(path + '.tmp', path)
