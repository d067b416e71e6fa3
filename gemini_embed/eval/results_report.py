"""Writing results: JSON, a markdown table, and a plot of score vs MRL dimension.

    write_results(results, out_dir) → out_dir/results.json
                                      out_dir/results.md
                                      out_dir/plots/score_vs_dim.png
    write_results(results, out_dir, stem='merged') → merged.json, merged.md,
                                      plots/merged_score_vs_dim.png (nothing else touched)

The table has one row per task (its main metric) and one column per system
(model@dim, or a lexical baseline), then per-type means, Mean(Task), Mean(Type),
Borda points and rank. Scores are shown ×100 with two decimals, followed by their
bootstrap interval `[lo, hi]` when the results have one (eval/bootstrap.py); "–" is a
task the system did not run (BM25 outside retrieval/reranking) or a mean over missing
tasks. Paired comparisons (evaluate --compare) follow the table.
"""

from __future__ import annotations

import json
import math

from etils.epath import Path
from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

from gemini_embed import storage
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


def _missing(value) -> bool:
  return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value, interval=None, scale: float = 100.0) -> str:
  if _missing(value):
    return '–'
  if interval is None or any(_missing(x) for x in interval):
    return f'{value * scale:.2f}'
  return f'{value * scale:.2f} [{interval[0] * scale:.2f}, {interval[1] * scale:.2f}]'


def _intervals(agg: dict) -> dict:
  return agg.get('intervals') or dict(tasks={}, type_means={}, mean_task=None, mean_type=None)


def markdown_table(results: dict) -> str:
  labels = list(results['systems'])
  task_types = list(dict.fromkeys(info['type'] for info in results['tasks'].values()))
  lines = ['| task | metric | ' + ' | '.join(labels) + ' |',
           '|---|---|' + '---:|' * len(labels)]
  mains = {label: main_scores(results, label) for label in labels}
  agg = results['aggregates']
  iv = {label: _intervals(agg[label]) for label in labels}
  for task, info in results['tasks'].items():
    cells = [_cell(mains[label].get(task), iv[label]['tasks'].get(task)) for label in labels]
    lines.append(f'| {task} | {info["main_metric"]} | ' + ' | '.join(cells) + ' |')
  for task_type in task_types:
    cells = [_cell(agg[label]['type_means'].get(task_type),
                   iv[label]['type_means'].get(task_type)) for label in labels]
    lines.append(f'| **Mean({task_type})** | | ' + ' | '.join(cells) + ' |')
  rows = [('**Mean(Task)**', lambda a: _cell(a['mean_task'], _intervals(a)['mean_task'])),
          ('**Mean(Type)**', lambda a: _cell(a['mean_type'], _intervals(a)['mean_type'])),
          ('Borda points', lambda a: f'{a["borda_points"]:g}'),
          ('Borda rank', lambda a: str(a['borda_rank']))]
  for name, fmt in rows:
    lines.append(f'| {name} | | ' + ' | '.join(fmt(agg[label]) for label in labels) + ' |')
  return '\n'.join(lines) + '\n'


def _signed(x: float) -> str:
  return f'{100 * x:+.2f}'


def comparison_text(entry: dict) -> str:
  """A paired comparison (suite_evaluation.comparison) as lines: difference ×100, its
  interval, and P(A > B), for Mean(Task), Mean(Type), each type mean and each task."""
  lines = [f'{entry["a"]} vs {entry["b"]} (paired bootstrap; A − B ×100 [interval], P(A > B))']
  rows = [('Mean(Task)', entry['mean_task']), ('Mean(Type)', entry['mean_type'])]
  rows += [(f'Mean({t})', c) for t, c in entry['type_means'].items()]
  rows += list(entry['tasks'].items())
  width = max(len(name) for name, _ in rows)
  for name, c in rows:
    if c is None:
      lines.append(f'  {name:<{width}}  –')
      continue
    lo, hi = c['interval']
    lines.append(f'  {name:<{width}}  {_signed(c["difference"])} [{_signed(lo)}, {_signed(hi)}]'
                 f'  P(A>B) = {c["p_a_greater"]:.3f}')
  return '\n'.join(lines)


def plot_score_vs_dim(results: dict, path: Path) -> None:
  """One panel per task type plus Mean(Task): main score ×100 against MRL dim, a line per
  model with its bootstrap interval as a band; systems without a dim (BM25) are dashed
  horizontal lines."""
  agg = results['aggregates']
  task_types = list(dict.fromkeys(info['type'] for info in results['tasks'].values()))
  panels = task_types + ['Mean(Task)']
  value = lambda label, panel: (agg[label]['mean_task'] if panel == 'Mean(Task)'
                                else agg[label]['type_means'].get(panel, math.nan))

  def bounds(label, panel):
    iv = _intervals(agg[label])
    bound = iv['mean_task'] if panel == 'Mean(Task)' else iv['type_means'].get(panel)
    return (math.nan, math.nan) if bound is None else tuple(100 * x for x in bound)

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
      points = [(dim, 100 * value(label, panel), *bounds(label, panel)) for dim, label in systems]
      points = [p for p in points if not math.isnan(p[1])]
      if not points:
        continue
      if points[0][0] is None:
        ax.axhline(points[0][1], linestyle='--', color='gray', label=model)
        if not math.isnan(points[0][2]):
          ax.axhspan(points[0][2], points[0][3], color='gray', alpha=0.1)
      else:
        points.sort(key=lambda p: p[0])
        dims_, values = [p[0] for p in points], [p[1] for p in points]
        line, = ax.plot(dims_, values, marker='o', label=model)
        shown = [p for p in points if not math.isnan(p[2])]
        if shown:  # the bootstrap interval as a band
          ax.fill_between([p[0] for p in shown], [p[2] for p in shown], [p[3] for p in shown],
                          color=line.get_color(), alpha=0.15)
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
  with Path(path).open('wb') as f:  # local or gs://: matplotlib writes local paths only
    fig.savefig(f, format='png', dpi=100)


def write_results(results: dict, out_dir: str | Path, stem: str = 'results') -> dict[str, Path]:
  """Write STEM.json, STEM.md and plots/score_vs_dim.png (plots/STEM_score_vs_dim.png for
  another stem, so that results beside each other keep their own); returns their paths."""
  out_dir = Path(out_dir)
  storage.makedirs(out_dir / 'plots')
  plot = 'score_vs_dim.png' if stem == 'results' else f'{stem}_score_vs_dim.png'
  paths = dict(json=out_dir / f'{stem}.json', markdown=out_dir / f'{stem}.md',
               plot=out_dir / 'plots' / plot)
  paths['json'].write_text(json.dumps(_json_ready(results), indent=1, allow_nan=False) + '\n')
  half = f' ({results["half"]} half)' if results.get('half') else ''
  title = (f'# Results on {results["suite"]}{half}\n\n' if 'suite' in results
           else '# Results\n\n')
  note = 'Main metric per task, ×100. Columns: model@dim (MRL prefix, re-normalised).\n'
  boot = results.get('bootstrap') or {}
  if boot.get('replicates'):
    note += (f'[lo, hi]: {100 * boot["level"]:.0f}% percentile bootstrap interval '
             f'({boot["replicates"]} replicates, seed {boot["seed"]}; queries within tasks, '
             'tasks within types: gemini_embed/eval/bootstrap.py).\n')
  protocol = results.get('classification')
  if protocol:
    note += (f'Classification: logistic regression on {protocol["samples_per_label"]} texts per '
             f'label, {protocol["n_experiments"]} draws averaged (MTEB: 8, 10).\n')
  comparisons = ''.join(f'\n```\n{comparison_text(c)}\n```\n'
                        for c in results.get('comparisons', []))
  paths['markdown'].write_text(title + note + '\n' + markdown_table(results) + comparisons)
  plot_score_vs_dim(results, paths['plot'])
  return paths
