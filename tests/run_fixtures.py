"""Fixture runs without training: results.json, metrics.jsonl, config.json and status.json
written from planted numbers, in the formats the tools write (eval/suite_evaluation.py,
metrics_log.py, run_status.py), for the analysis, sweep-collection and notebook tests."""

from __future__ import annotations

import json
import os

TASKS = {'retrieval/man_pages': 'retrieval', 'retrieval/glosses': 'retrieval',
         'sts/pairs': 'sts'}
MAIN = {'retrieval': 'ndcg_at_10', 'sts': 'spearman'}
HALF_WIDTH = 0.02  # every planted interval is score ± this


def results(models: dict[str, dict[int, dict[str, float]]], half: str = 'report') -> dict:
  """results.json of `models`: model → dim → task → main score. Aggregates computed here
  by hand: Mean(Task) over TASKS, Mean(Type) over the type means."""
  out = dict(suite='fixture', half=half,
             tasks={t: dict(type=k, main_metric=MAIN[k]) for t, k in TASKS.items()},
             systems={}, bootstrap=dict(replicates=10, seed=0, level=0.95), aggregates={},
             comparisons=[])
  for model, by_dim in models.items():
    for dim, scores in by_dim.items():
      label = f'{model}@{dim}'
      out['systems'][label] = dict(model=model, dim=dim, scores={
          t: {MAIN[TASKS[t]]: s} for t, s in scores.items()}, items={})
      types = {k: [scores[t] for t in TASKS if TASKS[t] == k] for k in set(TASKS.values())}
      type_means = {k: sum(v) / len(v) for k, v in types.items()}
      mean_task = sum(scores.values()) / len(scores)
      mean_type = sum(type_means.values()) / len(type_means)
      band = lambda x: [x - HALF_WIDTH, x + HALF_WIDTH]
      out['aggregates'][label] = dict(
          mean_task=mean_task, mean_type=mean_type, type_means=type_means, borda_points=0.0,
          borda_rank=1, intervals=dict(tasks={t: band(s) for t, s in scores.items()},
                                       type_means={k: band(v) for k, v in type_means.items()},
                                       mean_task=band(mean_task), mean_type=band(mean_type)))
  return out


def flat_scores(level: float) -> dict[str, float]:
  """Every task at `level` (Mean(Task) = level)."""
  return {t: level for t in TASKS}


def write_json(path: str, record) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(record, f)


def write_run(workdir: str, losses: dict[str, list[float]], config: dict | None = None,
              steps: int | None = None) -> None:
  """A finished run: metrics.jsonl rows alternating between datasets (`losses`: dataset →
  its losses, in step order, interleaved), config.json, status.json."""
  os.makedirs(workdir, exist_ok=True)
  rows, step = [], 0
  queues = {k: list(v) for k, v in losses.items()}
  while any(queues.values()):
    for name, queue in queues.items():
      if queue:
        step += 1
        rows.append(dict(step=step, time=float(step), loss=queue.pop(0), dataset=name))
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
  write_json(os.path.join(workdir, 'config.json'), config or dict(seed=0, optim=dict(lr=1e-4)))
  total = steps or step
  write_json(os.path.join(workdir, 'status.json'),
             dict(state='finished', step=total, total_steps=total, last_checkpoint=total,
                  time=0.0))


def write_sweep_points(sweep_dir: str, planted: dict[float, tuple[float, float]], dim: int,
                       suite: str = 'fixture') -> None:
  """configs/finetune.py's grid points (code_docstring rate → (select, report) Mean(Task)),
  finished and scored on both halves at `dim`, as the sweep leaves them."""
  for rate, (select, report) in planted.items():
    name = f'code_docstring-{rate}'
    workdir = os.path.join(sweep_dir, name)
    write_run(workdir, {'code_docstring': [1.0, 0.8], 'gettext_bitext': [1.2]}, steps=4)
    for half, level in (('select', select), ('report', report)):
      write_json(os.path.join(workdir, 'eval', f'{half}.json'),
                 results({name: {dim: flat_scores(level)}}, half))
    write_json(os.path.join(workdir, 'eval', 'evaluated.json'),
               dict(step=4, suite=suite, dims=[dim]))
