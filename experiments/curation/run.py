r"""The curation experiment: what each LLM data-engine step does to the demo's fine-tune.

    python experiments/curation/run.py --demo=runs/demo [--llm=gemma3-270m] [--k=8] \
        [--seeds=1,2,3] [--variants=a,b,c,d,e,f] [--threshold=3|q0.2] [--min_rating=3|q0.5] \
        [--skip_mining=SET,...] [--base=d|a] [--max_passages=N] [--per_label=N] \
        [--only=curate|train|evaluate] [--dry_run]

From the demo's pre-finetuned model (DEMO/prefinetune, trained without hard
negatives: the miner's embedder), fine-tune with the task mixture in six variants,
each with every seed, on the same rows (the rows the fine-tune consumes: steps ×
batch × the set's share of the mixture, a seeded sample of each set):
  a  the builder's structural negatives (today's data)
  b  no hard negatives (hard_negatives=0)
  c  LLM-mined negatives (curate.mine: top-k of the prefinetune embedder, graded
     classification + query likelihood, RRF, the k-th) replacing the structural ones
  d  c, then curate.filter (rows the LLM grades below --threshold dropped)
  e  d + synthetic queries (curate.synthesize_queries) for the passage-only corpora
     (man pages, pydoc topics) as the set `synthetic_queries`
  f  e + synthetic classification data (curate.synthesize_classification over the
     WordNet category descriptions) as the set `synthetic_classification`
With --base=a, e and f add their synthetic sets to a's rows instead of d's (no mining
needed; each synthetic set measured on the structural baseline): runs ft-ea-sS, ft-fa-sS.
Everything lands in DEMO/curation/: inputs/ (the sampled rows), curated/ (the tools'
outputs and summaries: cached; the tools resume), corpora-V/train (each variant's
training files; dev is DEMO/corpora/dev), ft-V-sS (the fine-tunes; a rerun resumes),
results-{select,report}.json (evaluate with paired comparisons of every variant against
a, seed by seed) and results.md (the table: Mean(Task) per variant, its seed mean and
spread, and each paired difference with its interval; decide on select, report on
report). Each stage is skipped when its output is complete, so a rerun is cheap.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

from gemini_embed.curate import pipeline
from gemini_embed.curate.pipeline import SYNTHETIC_CLASSIFICATION, SYNTHETIC_QUERIES
from gemini_embed.eval.suite_evaluation import pooled_comparison

FLAGS = flags.FLAGS
flags.DEFINE_string('demo', 'runs/demo', 'The demo workdir (corpora/, prefinetune/).')
flags.DEFINE_string('llm', 'gemma3-270m', 'The curation LLM (smollm2 where time is short).')
flags.DEFINE_integer('k', 8, 'Neighbours mined per query.')
flags.DEFINE_list('seeds', ['1', '2', '3'], 'Fine-tune seeds.')
flags.DEFINE_list('variants', list('abcdef'), 'Variants to run.')
flags.DEFINE_enum('only', None, ['curate', 'train', 'evaluate'], 'Run one stage.')
flags.DEFINE_list('skip_mining', [], 'Sets not mined (too slow for the time at hand): they '
                  'keep the builder\'s structural negatives in every variant.')
flags.DEFINE_enum('base', 'd', ['a', 'd'], 'What e and f add their synthetic data to: d (the '
                  'LLM-mined, filtered rows) or a (the structural ones: no mining; their runs '
                  'are ft-ea-sS, ft-fa-sS, their rows ea, fa).')
flags.DEFINE_integer('max_rows', 0, 'Cap rows per set (0: the rows the fine-tune consumes).')
flags.DEFINE_string('threshold', '3', 'curate.filter --threshold: an expected grade (1–5) or '
                    'a quantile of the run\'s grades, e.g. q0.2.')
flags.DEFINE_string('min_rating', '3', 'curate.synthesize_queries --min_rating: the '
                    "auto-rater's grade (1–5) kept, or a quantile, e.g. q0.5.")
flags.DEFINE_integer('max_passages', 0, 'Passages synthesize_queries writes queries for (a '
                     'seeded sample; 0: all): the fine-tune consumes ≈ steps × batch / 8 of '
                     'the kept ones.')
flags.DEFINE_integer('per_label', 8, 'synthesize_classification texts per label.')
flags.DEFINE_bool('dry_run', False, 'Print the commands and the projected LLM work only.')
flags.DEFINE_string('python', sys.executable, 'The interpreter for the tools.')

EXTRA = {'e': SYNTHETIC_QUERIES, 'f': f'{SYNTHETIC_QUERIES}+{SYNTHETIC_CLASSIFICATION}'}


def run_name(v: str) -> str:
  """The variant's name in run folders and results: e, f on a (--base=a) are ea, fa."""
  return f'{v}a' if v in 'ef' and FLAGS.base == 'a' else v


def needs_mining(variants: set[str]) -> bool:
  return bool({'c', 'd'} & variants or (FLAGS.base == 'd' and {'e', 'f'} & variants))


def sh(cmd: list[str], done: str | None = None) -> None:
  """Runs `cmd` unless `done` exists; a failure stops the experiment."""
  if done and os.path.exists(done):
    return
  print('+', shlex.join(cmd), flush=True)
  if FLAGS.dry_run:
    return
  subprocess.run(cmd, check=True)


def run_step(step: pipeline.Step) -> None:
  sh(step.cmd, step.output)


def consumed_rows(corpora: str) -> dict[str, int]:
  """Rows the fine-tune draws from each set: total_steps × batch × rate / Σ rates."""
  sys.path.insert(0, os.getcwd())
  from configs.demo import get_config
  config = get_config(f'stage=finetune,corpora={corpora}')
  rates = {n: e.rate for n, e in config.data.datasets.items()}
  total = config.total_steps * config.batch_size
  return {n: math.ceil(total * r / sum(rates.values())) for n, r in rates.items()}


def curation(w: str) -> pipeline.Curation:
  return pipeline.Curation(root=w, corpora=os.path.join(FLAGS.demo, 'corpora'),
                           embedder=os.path.join(FLAGS.demo, 'prefinetune'), llm=FLAGS.llm,
                           python=FLAGS.python, k=FLAGS.k, threshold=FLAGS.threshold,
                           min_rating=FLAGS.min_rating,
                           per_label=FLAGS.per_label)


def curate(w: str, sets: dict[str, int]) -> None:
  cur, variants = curation(w), set(FLAGS.variants)
  if not FLAGS.dry_run:
    cur.prepare({name: min(n, FLAGS.max_rows or n) for name, n in sets.items()},
                queries=bool({'e', 'f'} & variants), classification='f' in variants,
                max_passages=FLAGS.max_passages)
  for name in sets:
    if name in FLAGS.skip_mining:
      continue
    if needs_mining(variants):
      run_step(cur.mine(name))
    if needs_mining(variants - {'c'}):
      run_step(cur.filter(name))
  if {'e', 'f'} & variants:
    run_step(cur.synthesize_queries())
  if 'f' in variants:
    run_step(cur.synthesize_classification())


def variant_corpora(w: str, v: str, sets: dict[str, int]) -> str:
  """DEMO/curation/corpora-V/train: the variant's files (links to the curated ones)."""
  root, cur = os.path.join(w, f'corpora-{run_name(v)}'), curation(w)
  if FLAGS.dry_run:
    return root
  kind = {'a': None, 'b': None, 'c': 'mined', 'ea': None, 'fa': None}.get(run_name(v),
                                                                          'filtered')
  files = {name: cur.curated(f'{name}.{kind}') if kind and name not in FLAGS.skip_mining
           else cur.input(name) for name in sets}
  files.update({name: cur.curated(name) for name in EXTRA.get(v, '').split('+') if name})
  return pipeline.link_corpora(root, files)


def train(w: str, sets: dict[str, int]) -> dict[str, str]:
  runs = {}
  for v in FLAGS.variants:
    corpora = variant_corpora(w, v, sets)
    for s in FLAGS.seeds:
      arg = (f'stage=finetune,seed={s},init_from={FLAGS.demo}/prefinetune,corpora={corpora}'
             + (',hard_negatives=0' if v == 'b' else '')
             + (f',extra={EXTRA[v]}' if v in EXTRA else ''))
      workdir = os.path.join(w, f'ft-{run_name(v)}-s{s}')
      runs[f'{run_name(v)}{s}'] = workdir
      status = os.path.join(workdir, 'status.json')
      finished = os.path.exists(status) and json.load(open(status)).get('state') == 'finished'
      if not finished:
        sh([FLAGS.python, '-m', 'gemini_embed.train', f'--config=configs/demo.py:{arg}',
            f'--workdir={workdir}'])
  return runs


def evaluate(w: str, runs: dict[str, str]) -> None:
  compare = [f'--compare={run_name(v)}{s}@768,a{s}@768' for v in FLAGS.variants if v != 'a'
             for s in FLAGS.seeds if 'a' in FLAGS.variants]
  for half in ('select', 'report'):
    out = os.path.join(w, f'results-{half}.json')
    if os.path.exists(out) and not all(f'{k}@768' in json.load(open(out))['aggregates']
                                       for k in runs):
      os.remove(out)  # evaluated for another set of variants: evaluate this one
    sh([FLAGS.python, '-m', 'gemini_embed.evaluate', f'--suite={FLAGS.demo}/corpora/dev',
        f'--half={half}', '--peers=none', '--dims=768',
        '--workdir=' + ','.join(f'{k}={d}' for k, d in runs.items()), *compare,
        f'--output={out}'], out)
  if not FLAGS.dry_run:
    write_table(w)


def _interval(d: dict | None) -> str:
  if not d:
    return '—'
  return (f'{100 * d["difference"]:+.2f} [{100 * d["interval"][0]:+.2f}, '
          f'{100 * d["interval"][1]:+.2f}]')


def write_table(w: str) -> None:
  """results.md: per variant, Mean(Task) ×100 of each seed, their mean ± sd, the paired
  differences against a (same seed) with their bootstrap intervals, and the pooled one
  (the mean difference over the seeds, eval.compare --pooled) with P(variant > a); then
  the pooled difference per task type. Decide on select, report on report."""
  lines = ['| half | variant | Mean(Task) per seed | mean ± sd | vs a, paired per seed '
           '[interval] | vs a, pooled over seeds [interval], P(> a) |', '|---|---|---|---|---|---|']
  by_type = {}
  for half in ('select', 'report'):
    res = json.load(open(os.path.join(w, f'results-{half}.json')))
    cmp = {(c['a'], c['b']): c['mean_task'] for c in res.get('comparisons', [])}
    for v in map(run_name, FLAGS.variants):
      scores = [100 * res['aggregates'][f'{v}{s}@768']['mean_task'] for s in FLAGS.seeds]
      pairs = [(f'{v}{s}@768', f'a{s}@768') for s in FLAGS.seeds]
      text = '; '.join(_interval(cmp.get(p)) for p in pairs)
      pooled = '—'
      if v != 'a' and 'a' in FLAGS.variants:
        pc = pooled_comparison(res, pairs)
        pooled = f'{_interval(pc["mean_task"])}, {pc["mean_task"]["p_a_greater"]:.2f}'
        by_type[(half, v)] = pc['type_means']
      lines.append(f'| {half} | {v} | {", ".join(f"{x:.2f}" for x in scores)} | '
                   f'{np.mean(scores):.2f} ± {np.std(scores, ddof=1) if len(scores) > 1 else 0:.2f}'
                   f' | {text} | {pooled} |')
  types = sorted({y for d in by_type.values() for y in d})
  if by_type:
    lines += ['', '| half | variant vs a, pooled | ' + ' | '.join(types) + ' |',
              '|---|---|' + '---|' * len(types)]
    lines += [f'| {half} | {v} | ' + ' | '.join(_interval(d.get(y)) for y in types) + ' |'
              for (half, v), d in by_type.items()]
  with open(os.path.join(w, 'results.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


def main(argv):
  del argv
  start = time.time()
  w = os.path.join(FLAGS.demo, 'curation')
  sets = consumed_rows(os.path.join(FLAGS.demo, 'corpora'))
  print(f'rows per set (what the fine-tune consumes): {sets}; LLM {FLAGS.llm}, k={FLAGS.k}')
  print(f'projected LLM scorings for mining: {sum(sets.values()) * FLAGS.k * 2} '
        '(rows × k × 2); see the README for their cost at the measured throughput')
  if FLAGS.only in (None, 'curate'):
    curate(w, sets)
  runs = {f'{run_name(v)}{s}': os.path.join(w, f'ft-{run_name(v)}-s{s}')
          for v in FLAGS.variants for s in FLAGS.seeds}
  if FLAGS.only in (None, 'train'):
    runs = train(w, sets)
  if FLAGS.only in (None, 'evaluate'):
    evaluate(w, runs)
  print(f'wall time {time.time() - start:.0f} s')


if __name__ == '__main__':
  app.run(main)
