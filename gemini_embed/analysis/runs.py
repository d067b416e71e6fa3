"""Runs as pandas frames: a workdir's config.json and metrics.jsonl, and results.json files
(evaluate's output, eval/suite_evaluation.py's format).

    configs = config_frame({'a': 'runs/demo/finetune-a', 'b': 'runs/demo/finetune-b'})
    curves = metrics_frame({'a': 'runs/demo/finetune-a'})   # run, step, loss, dataset, ...
    scores = aggregate_frame('runs/demo/results.json')       # model, dim, mean_task, [lo, hi], ...
    tasks = task_frame('runs/demo/results.json')             # model, dim, task, type, score, lo, hi
    flat = results_metrics('runs/sweep/P/eval/select.json')  # {'mean_task@768': .41, ...}

Scores stay fractions (reports multiply by 100). An interval is NaN where the results
have none (no bootstrap, or a task the system did not run).
"""

from __future__ import annotations

import json
import math
import os
from typing import Mapping

import pandas as pd


def read_json(path: str):
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def _flatten(node, prefix: str = '') -> dict:
  out = {}
  for key, value in node.items():
    name = f'{prefix}{key}'
    if isinstance(value, dict):
      out.update(_flatten(value, name + '.'))
    else:
      out[name] = tuple(value) if isinstance(value, list) else value
  return out


def config_frame(runs: Mapping[str, str]) -> pd.DataFrame:
  """One row per run (index: run name), one column per config field (dotted path)."""
  rows = {name: _flatten(read_json(os.path.join(d, 'config.json'))) for name, d in runs.items()}
  return pd.DataFrame.from_dict(rows, orient='index')


def metrics_frame(runs: Mapping[str, str]) -> pd.DataFrame:
  """metrics.jsonl rows of every run, with a `run` column. A resumed run logs some steps
  twice; the last row of a step wins, as in the demo's loss plot."""
  frames = []
  for name, d in runs.items():
    path = os.path.join(d, 'metrics.jsonl')
    with open(path, encoding='utf-8') as f:
      rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
      raise ValueError(f'{path}: no metrics rows (did the run log any step?)')
    frame = pd.DataFrame(rows)
    # Training and evaluation rows share a step; each keeps its own columns.
    frame['kind'] = ['eval' if any(k.startswith('eval/') for k in r) else 'train' for r in rows]
    frame = frame.drop_duplicates(['step', 'kind'], keep='last').sort_values('step')
    frame.insert(0, 'run', name)
    frames.append(frame)
  return pd.concat(frames, ignore_index=True)


def _bounds(interval) -> tuple[float, float]:
  if not interval or any(x is None for x in interval):
    return math.nan, math.nan
  return float(interval[0]), float(interval[1])


def _value(x) -> float:
  return math.nan if x is None else float(x)


def aggregate_frame(results: str | dict) -> pd.DataFrame:
  """One row per system: model, dim, mean_task (+ _lo/_hi), mean_type (+ _lo/_hi), and a
  `type/<TYPE>` column per task type."""
  res = read_json(results) if isinstance(results, str) else results
  rows = []
  for label, agg in res['aggregates'].items():
    system = res['systems'][label]
    iv = agg.get('intervals') or {}
    row = dict(system=label, model=system['model'], dim=system['dim'])
    for key in ('mean_task', 'mean_type'):
      row[key] = _value(agg[key])
      row[f'{key}_lo'], row[f'{key}_hi'] = _bounds(iv.get(key))
    for task_type, value in agg['type_means'].items():
      row[f'type/{task_type}'] = _value(value)
      row[f'type/{task_type}_lo'], row[f'type/{task_type}_hi'] = _bounds(
          (iv.get('type_means') or {}).get(task_type))
    rows.append(row)
  return pd.DataFrame(rows)


def task_frame(results: str | dict) -> pd.DataFrame:
  """One row per (system, task): its main score and interval."""
  res = read_json(results) if isinstance(results, str) else results
  rows = []
  for label, system in res['systems'].items():
    iv = (res['aggregates'][label].get('intervals') or {}).get('tasks', {})
    for task, info in res['tasks'].items():
      if task not in system['scores']:
        continue
      lo, hi = _bounds(iv.get(task))
      rows.append(dict(system=label, model=system['model'], dim=system['dim'], task=task,
                       type=info['type'], metric=info['main_metric'],
                       score=_value(system['scores'][task][info['main_metric']]), lo=lo, hi=hi))
  return pd.DataFrame(rows)


def results_metrics(results: str | dict) -> dict[str, float]:
  """The named metrics of a one-model results file (a sweep point's), with intervals:
  `mean_task@DIM`, `mean_type@DIM`, `type/TYPE@DIM`, `task/TASK_ID@DIM`, each also as
  `NAME/lo` and `NAME/hi`."""
  res = read_json(results) if isinstance(results, str) else results
  models = {s['model'] for s in res['systems'].values()}
  if len(models) != 1:
    raise ValueError(f'results of {sorted(models)}: a sweep point\'s results score one model')
  out = {}
  agg = aggregate_frame(res)
  for row in agg.to_dict('records'):
    for col, value in row.items():
      if col in ('system', 'model', 'dim') or col.endswith(('_lo', '_hi')):
        continue
      name = f'{col}@{row["dim"]}'
      out[name], out[f'{name}/lo'], out[f'{name}/hi'] = (value, row[f'{col}_lo'],
                                                          row[f'{col}_hi'])
  for row in task_frame(res).to_dict('records'):
    name = f'task/{row["task"]}@{row["dim"]}'
    out[name], out[f'{name}/lo'], out[f'{name}/hi'] = row['score'], row['lo'], row['hi']
  return out
