"""Writing results: JSON, a markdown table, and a plot of score vs MRL dimension.

    write_results(results, out_dir) → out_dir/results.json
                                      out_dir/results.md
                                      out_dir/plots/score_vs_dim.png

The table has one row per task (its main metric) and one column per system
(model@dim, or a lexical baseline), then per-type means, Mean(Task), Mean(Type),
Borda points and rank. Scores are shown ×100 with two decimals; "–" is a task the
system did not run (BM25 outside retrieval/reranking) or a mean over missing tasks.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

from gemini_embed.eval.suite_evaluation import main_scores


def _json_ready(x):
  """NaN/inf → None (strict JSON), numpy scalars → Python."""
  if isinstance(x, dict):
    return {str(k): _json_ready(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_json_ready(v) for v in x]
  if hasattr(x, 'item') and not isinstance(x, (str, bytes)):
    x = x.item()
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def _cell(value, scale: float = 100.0) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '–'
  return f'{value * scale:.2f}'


def markdown_table(results: dict) -> str:
  labels = list(results['systems'])
  task_types = list(dict.fromkeys(info['type'] for info in results['tasks'].values()))
  lines = ['| task | metric | ' + ' | '.join(labels) + ' |',
           '|---|---|' + '---:|' * len(labels)]
  mains = {label: main_scores(results, label) for label in labels}
  for task, info in results['tasks'].items():
    cells = [_cell(mains[label].get(task)) for label in labels]
    lines.append(f'| {task} | {info["main_metric"]} | ' + ' | '.join(cells) + ' |')
  agg = results['aggregates']
  for task_type in task_types:
    cells = [_cell(agg[label]['type_means'].get(task_type)) for label in labels]
    lines.append(f'| **Mean({task_type})** | | ' + ' | '.join(cells) + ' |')
  rows = [('**Mean(Task)**', lambda a: _cell(a['mean_task'])),
          ('**Mean(Type)**', lambda a: _cell(a['mean_type'])),
          ('Borda points', lambda a: f'{a["borda_points"]:g}'),
          ('Borda rank', lambda a: str(a['borda_rank']))]
  for name, fmt in rows:
    lines.append(f'| {name} | | ' + ' | '.join(fmt(agg[label]) for label in labels) + ' |')
  return '\n'.join(lines) + '\n'


def plot_score_vs_dim(results: dict, path: Path) -> None:
  """One panel per task type plus Mean(Task): main score ×100 against MRL dim, a line per
  model; systems without a dim (BM25) are dashed horizontal lines."""
  agg = results['aggregates']
  task_types = list(dict.fromkeys(info['type'] for info in results['tasks'].values()))
  panels = task_types + ['Mean(Task)']
  value = lambda label, panel: (agg[label]['mean_task'] if panel == 'Mean(Task)'
                                else agg[label]['type_means'].get(panel, math.nan))
  models = list(dict.fromkeys(s['model'] for s in results['systems'].values()))
  all_dims = sorted({s['dim'] for s in results['systems'].values() if s['dim'] is not None})
  cols = min(4, len(panels))
  rows = math.ceil(len(panels) / cols)
  fig = Figure(figsize=(4 * cols, 3.2 * rows))
  axes = fig.subplots(rows, cols, squeeze=False)
  for ax, panel in zip(axes.flat, panels):
    for model in models:
      systems = [(s['dim'], label) for label, s in results['systems'].items()
                 if s['model'] == model]
      points = [(dim, 100 * value(label, panel)) for dim, label in systems]
      points = [(d, v) for d, v in points if not math.isnan(v)]
      if not points:
        continue
      if points[0][0] is None:
        ax.axhline(points[0][1], linestyle='--', color='gray', label=model)
      else:
        points.sort()
        ax.plot([d for d, _ in points], [v for _, v in points], marker='o', label=model)
    ax.set_title(panel)
    ax.set_xscale('log', base=2)
    ax.set_xticks(all_dims, [str(d) for d in all_dims])
    ax.minorticks_off()
    ax.set_xlabel('embedding dim')
    ax.set_ylabel('score ×100')
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(panels):]:
    ax.set_visible(False)
  axes.flat[0].legend(fontsize='small')
  fig.tight_layout()
  fig.savefig(path, dpi=100)


def write_results(results: dict, out_dir: str | Path) -> dict[str, Path]:
  """Write results.json, results.md and plots/score_vs_dim.png; returns their paths."""
  out_dir = Path(out_dir)
  (out_dir / 'plots').mkdir(parents=True, exist_ok=True)
  paths = dict(json=out_dir / 'results.json', markdown=out_dir / 'results.md',
               plot=out_dir / 'plots' / 'score_vs_dim.png')
  paths['json'].write_text(json.dumps(_json_ready(results), indent=1, allow_nan=False) + '\n')
  title = f'# Results on {results["suite"]}\n\n' if 'suite' in results else '# Results\n\n'
  note = 'Main metric per task, ×100. Columns: model@dim (MRL prefix, re-normalised).\n\n'
  paths['markdown'].write_text(title + note + markdown_table(results))
  plot_score_vs_dim(results, paths['plot'])
  return paths
