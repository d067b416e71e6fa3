r"""The main job on its embedded default (`make demo`): the paper's recipe, end to end,
from a real offline LLM on real local corpora, on a laptop CPU.

    corpora ─▶ Gemma 3 270M (GGUF) ─▶ pre-finetune ─▶ fine-tune a, b
            ─▶ soup(a, b) ─▶ evaluate all of them beside BM25 and all-MiniLM-L6-v2

The table scores what the demo delivers, fine-tunes a and b and their soup; `--stage_rows`
also scores the stages before them, the untrained init (mean-pooled LLM + random projection,
exported for it) and the pre-finetune alone: the paper's ablation order, the table's first
two rows, about 3 minutes more on 2 CPU cores (README "The demo").

Every stage is one of the project's own commands (printed before it runs), so a
researcher can rerun or vary any of them. Rerunning the demo resumes: finished
stages are skipped, an interrupted training run continues from its checkpoint.
Outputs (design.md): WORKDIR/{prefinetune,finetune-a,finetune-b,soup}/ (and init/),
WORKDIR/results.{md,json}, WORKDIR/plots/{score_vs_dim,loss_curves}.png; WORKDIR/evaluated.json
(the checkpoints and peers results.json scored: a rerun re-scores only when they change);
WORKDIR/jax_cache/ (JAX's persistent compilation cache, shared by the stages).
"""

from __future__ import annotations

import json
import os
import time

from absl import app, flags
from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

from gemini_embed.models.fetch_offline import fetched
from gemini_embed.run_status import finished
from gemini_embed.stages import done, latest_step, module, pipeline_env, stage

_WORKDIR = flags.DEFINE_string('workdir', 'runs/demo', 'Where everything goes.')
_QUICK = flags.DEFINE_bool('quick', False, 'Smoke-test size (minutes): the CI path.')
_LLM = flags.DEFINE_enum('llm', 'gemma3-270m', ['gemma3-270m', 'smollm2'],
                        'Offline LLM to start from.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the whole run: pre-finetuning uses it, the '
                             'fine-tunes a and b use 2·seed + 1 and 2·seed + 2.')
_CORPORA = flags.DEFINE_string('corpora', None, 'Corpora directory (default: WORKDIR/corpora).')
_PEERS = flags.DEFINE_list('peers', ['bm25', 'minilm'], 'Baselines in the results table.')
_STAGE_ROWS = flags.DEFINE_bool('stage_rows', False, 'Also score the untrained init (exported '
                                'for it) and the pre-finetune alone: the paper\'s ablation '
                                'order (~3 min more on 2 CPU cores).')

TRAINED = ('prefinetune', 'finetune-a', 'finetune-b', 'soup')
DELIVERED = ('finetune-a', 'finetune-b', 'soup')
COMPARISONS = (('finetune-b', 'finetune-a'), ('soup', 'finetune-a'), ('soup', 'finetune-b'),
               ('finetune-a', 'prefinetune'))


def _read_json(path: str):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def train(workdir: str, arg: str) -> list[str]:
  return module('train', f'--config=configs/demo.py:{arg}', f'--workdir={workdir}')


def main(argv):
  del argv
  out, quick = _WORKDIR.value, _QUICK.value
  corpora = _CORPORA.value or os.path.join(out, 'corpora')
  runs = (('init',) + TRAINED) if _STAGE_ROWS.value else DELIVERED
  path = {r: os.path.join(out, r) for r in ('init',) + TRAINED}
  seed = _SEED.value
  common = f'corpora={corpora},llm={_LLM.value}' + (',quick' if quick else '')
  t0 = time.time()
  os.makedirs(out, exist_ok=True)
  mode, mode_file = dict(quick=quick, llm=_LLM.value, seed=seed), os.path.join(out, 'demo.json')
  if os.path.exists(mode_file):
    with open(mode_file) as f:
      before = json.load(f)
    if before != mode:
      raise app.UsageError(f'{out} holds a demo run with {before}; this one is {mode}: '
                           'use another --workdir (make demo WORKDIR=DIR)')
  with open(mode_file, 'w') as f:
    json.dump(mode, f)
  # JAX's persistent compilation cache: the second fine-tune and every system in the
  # evaluation compile the same shapes as an earlier stage; they load them instead.
  env = pipeline_env(os.path.join(out, 'jax_cache'))

  if not os.path.exists(os.path.join(corpora, 'dev', 'halves.json')):  # (older: no halves)
    caps = ['--max_dev=40', '--max_rows=2000', '--max_man_pages=40'] if quick else \
        ['--max_dev=130', '--max_rows=8000', '--max_man_pages=150']
    stage('real corpora (training sets + dev suite)',
          module('data.build_corpora', f'--out={corpora}', *caps))
  # A rerun skips what is done (the manifest is fetch_offline's last write, status.json
  # says a run finished): each skipped command would only start, load the LLM and exit.
  stage(f'offline LLM: {_LLM.value}', module('models.fetch_offline', _LLM.value),
        skip=fetched(_LLM.value))
  if _STAGE_ROWS.value:  # the untrained starting point, for the table's first row
    stage('export the untrained init (mean-pooled LLM + random projection)',
          train(path['init'], f'{common},steps=0,seed={seed}') + ['--config.total_steps=0'],
          env, skip=done(path['init']))
  stage('pre-finetuning on (title, passage) pairs',
        train(path['prefinetune'], f'{common},seed={seed}'), env,
        skip=finished(path['prefinetune']))
  for name, ft_seed in (('finetune-a', 2 * seed + 1), ('finetune-b', 2 * seed + 2)):
    stage(f'fine-tuning {name} (seed {ft_seed}, task-homogeneous batches)',
          train(path[name], f'{common},stage=finetune,seed={ft_seed},'
                f'init_from={path["prefinetune"]}'), env, skip=finished(path[name]))
  stage('model soup of the fine-tuned runs',
        module('soup', f'--inputs={path["finetune-a"]},{path["finetune-b"]}',
               f'--output={path["soup"]}'), env, skip=done(path['soup']))
  results = os.path.join(out, 'results.json')
  # results.json is current when it scored these checkpoints beside these peers.
  evaluated = dict(steps={r: latest_step(path[r]) for r in runs}, peers=sorted(_PEERS.value))
  evaluated_file = os.path.join(out, 'evaluated.json')
  if os.path.exists(results) and _read_json(evaluated_file) == evaluated:
    print(f'\n=== evaluate: {results} already scores these checkpoints and peers', flush=True)
  else:
    stage('evaluate on the dev suite, beside the peers',
          evaluate_command({r: path[r] for r in runs}, os.path.join(corpora, 'dev'), results,
                           _PEERS.value, quick), env)
    with open(evaluated_file, 'w') as f:
      json.dump(evaluated, f)
  plot_loss_curves({r: path[r] for r in TRAINED[:3]}, os.path.join(out, 'plots', 'loss_curves.png'))
  print(summary(results))
  print(f'\ndemo finished in {(time.time() - t0) / 60:.1f} min; outputs in {out}/')


def evaluate_command(runs: dict[str, str], suite: str, results: str, peers: list[str],
                     quick: bool) -> list[str]:
  """The demo's `evaluate`: `runs` (name → workdir) on the report half beside `peers`, with
  the paired comparisons among them (COMPARISONS, where both are scored) and the soup
  against all-MiniLM-L6-v2 when it is a peer."""
  return module('evaluate', '--workdir=' + ','.join(f'{r}={w}' for r, w in runs.items()),
                f'--suite={suite}', '--half=report', f'--output={results}',
                '--peers=' + (','.join(peers) or 'none'),
                # the smoke test: 2 classifier fits per task and dim instead of MTEB's 10
                *(['--classification_experiments=2'] if quick else []),
                # paired bootstraps: the seed spread, and the soup against each ingredient
                *(f'--compare={a}@768,{b}@768' for a, b in COMPARISONS
                  if a in runs and b in runs),
                # the headline: the soup against all-MiniLM-L6-v2 (at its own 384 dims)
                *(['--compare=soup@768,all-MiniLM-L6-v2@384'] if 'minilm' in peers else []))


def plot_loss_curves(runs: dict[str, str], png: str) -> None:
  os.makedirs(os.path.dirname(png), exist_ok=True)
  fig = Figure(figsize=(7, 4))
  ax = fig.subplots()
  pre_last = 0
  for name, workdir in runs.items():
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      rows = {r['step']: r['loss'] for r in map(json.loads, f)}  # a resumed run: last wins
    steps = sorted(rows)
    shift = 0 if name == 'prefinetune' else pre_last
    ax.plot([s + shift for s in steps], [rows[s] for s in steps], label=name)
    if name == 'prefinetune':
      pre_last = steps[-1]
  ax.set_xlabel('step (fine-tuning continues after pre-finetuning)')
  ax.set_ylabel('MRL NCE loss (sum over prefixes)')
  ax.legend()
  fig.tight_layout()
  fig.savefig(png, dpi=120)


def summary(results_json: str) -> str:
  """Mean(Task) / Mean(Type) per system, the paper's ablation order spelled out."""
  with open(results_json) as f:
    res = json.load(f)
  agg = res['aggregates']
  lines = ['', f'suite: {res.get("suite")} (half: {res.get("half")}); [95% bootstrap interval]',
           'system                 Mean(Task)                Mean(Type)                Borda rank']

  def pct(a, key):
    v, iv = a[key], (a.get('intervals') or {}).get(key)
    if v is None or v != v:
      return f'{"–":25s}'
    return f'{100 * v:6.2f}' + (f' [{100 * iv[0]:6.2f}, {100 * iv[1]:6.2f}]' if iv else ' ' * 17)

  for label, a in agg.items():
    lines.append(f'{label:22s} {pct(a, "mean_task")} {pct(a, "mean_type")} '
                 f'{a["borda_rank"]:6.0f}')
  return '\n'.join(lines)


if __name__ == '__main__':
  app.run(main)
