r"""The curation experiment: what each LLM data-engine step does to the demo's fine-tune.

    python experiments/curation/run.py --demo=runs/demo [--llm=gemma3-270m] [--k=8] \
        [--seeds=1,2,3] [--variants=a,b,c,d,e,f] [--only=curate|train|evaluate] [--dry_run]

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

FLAGS = flags.FLAGS
flags.DEFINE_string('demo', 'runs/demo', 'The demo workdir (corpora/, prefinetune/).')
flags.DEFINE_string('llm', 'gemma3-270m', 'The curation LLM (smollm2 where time is short).')
flags.DEFINE_integer('k', 8, 'Neighbours mined per query.')
flags.DEFINE_list('seeds', ['1', '2', '3'], 'Fine-tune seeds.')
flags.DEFINE_list('variants', list('abcdef'), 'Variants to run.')
flags.DEFINE_enum('only', None, ['curate', 'train', 'evaluate'], 'Run one stage.')
flags.DEFINE_integer('max_rows', 0, 'Cap rows per set (0: the rows the fine-tune consumes).')
flags.DEFINE_string('threshold', '3', 'curate.filter --threshold: an expected grade (1–5) or '
                    'a quantile of the run\'s grades, e.g. q0.2.')
flags.DEFINE_integer('per_label', 8, 'synthesize_classification texts per label.')
flags.DEFINE_bool('dry_run', False, 'Print the commands and the projected LLM work only.')
flags.DEFINE_string('python', sys.executable, 'The interpreter for the tools.')

PASSAGE_SETS = ('man_pages', 'pydoc_topics')
EXTRA = {'e': 'synthetic_queries', 'f': 'synthetic_queries+synthetic_classification'}


def sh(cmd: list[str], done: str | None = None) -> None:
  """Runs `cmd` unless `done` exists; a failure stops the experiment."""
  if done and os.path.exists(done):
    return
  print('+', shlex.join(cmd), flush=True)
  if FLAGS.dry_run:
    return
  subprocess.run(cmd, check=True)


def consumed_rows(corpora: str) -> dict[str, int]:
  """Rows the fine-tune draws from each set: total_steps × batch × rate / Σ rates."""
  sys.path.insert(0, os.getcwd())
  from configs.demo import get_config
  config = get_config(f'stage=finetune,corpora={corpora}')
  rates = {n: e.rate for n, e in config.data.datasets.items()}
  total = config.total_steps * config.batch_size
  return {n: math.ceil(total * r / sum(rates.values())) for n, r in rates.items()}


def sample(src: str, dst: str, n: int, seed: int = 0) -> None:
  if FLAGS.dry_run or os.path.exists(dst):
    return
  with open(src, encoding='utf-8') as f:
    lines = [l for l in f if l.strip()]
  pick = sorted(np.random.default_rng(seed).permutation(len(lines))[:n])
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  with open(dst, 'w', encoding='utf-8') as f:
    f.writelines(lines[i] for i in pick)


def positives_corpus(src: str, dst: str) -> None:
  if FLAGS.dry_run or os.path.exists(dst):
    return
  with open(src, encoding='utf-8') as f, open(dst, 'w', encoding='utf-8') as out:
    for line in f:
      if line.strip():
        out.write(json.dumps({'text': json.loads(line)['positive']}, ensure_ascii=False) + '\n')


def curate(w: str, sets: dict[str, int]) -> None:
  corpora, cur = os.path.join(FLAGS.demo, 'corpora'), os.path.join(w, 'curated')
  tool = lambda name: [FLAGS.python, '-m', f'gemini_embed.curate.{name}', f'--llm={FLAGS.llm}']
  for name, n in sets.items():
    src = os.path.join(corpora, 'train', f'{name}.jsonl')
    rows = os.path.join(w, 'inputs', f'{name}.jsonl')
    sample(src, rows, min(n, FLAGS.max_rows or n))
    corpus = os.path.join(w, 'inputs', f'{name}.corpus.jsonl')
    positives_corpus(src, corpus)
    if {'c', 'd', 'e', 'f'} & set(FLAGS.variants):
      mined = os.path.join(cur, f'{name}.mined.jsonl')
      sh(tool('mine') + [f'--workdir={FLAGS.demo}/prefinetune', f'--input={rows}',
                         f'--corpus={corpus}', f'--out={mined}', f'--k={FLAGS.k}'], mined)
    if {'d', 'e', 'f'} & set(FLAGS.variants):
      kept = os.path.join(cur, f'{name}.filtered.jsonl')
      sh(tool('filter') + [f'--input={mined}', f'--kept={kept}',
                           f'--rejected={cur}/{name}.filtered-out.jsonl',
                           f'--threshold={FLAGS.threshold}'], kept)
  if {'e', 'f'} & set(FLAGS.variants):
    passages = os.path.join(w, 'inputs', 'passages.jsonl')
    if not FLAGS.dry_run and not os.path.exists(passages):
      with open(passages, 'w', encoding='utf-8') as out:
        for name in PASSAGE_SETS:
          path = os.path.join(corpora, 'train', f'{name}.jsonl')
          if os.path.exists(path):
            for line in open(path, encoding='utf-8'):
              if line.strip():
                out.write(json.dumps({'text': json.loads(line)['positive']}) + '\n')
    out = os.path.join(cur, 'synthetic_queries.jsonl')
    sh(tool('synthesize_queries') + [f'--passages={passages}', f'--out={out}'], out)
  if 'f' in FLAGS.variants:
    labels = os.path.join(w, 'inputs', 'labels.json')
    if not FLAGS.dry_run and not os.path.exists(labels):
      descs = sorted({json.loads(l)['positive'] for l in open(
          os.path.join(corpora, 'train', 'wordnet_category.jsonl'), encoding='utf-8')})
      with open(labels, 'w') as f:
        json.dump({d: d for d in descs}, f, indent=1)
    out = os.path.join(cur, 'synthetic_classification.jsonl')
    sh(tool('synthesize_classification') + [f'--labels={labels}', f'--out={out}',
                                            f'--per_label={FLAGS.per_label}'], out)


def variant_corpora(w: str, v: str, sets: dict[str, int]) -> str:
  """DEMO/curation/corpora-V/train: the variant's files (links to the curated ones)."""
  root = os.path.join(w, f'corpora-{v}')
  if FLAGS.dry_run:
    return root
  os.makedirs(os.path.join(root, 'train'), exist_ok=True)
  cur = os.path.join(w, 'curated')
  files = {}
  for name in sets:
    files[name] = {'a': f'{w}/inputs/{name}.jsonl', 'b': f'{w}/inputs/{name}.jsonl',
                   'c': f'{cur}/{name}.mined.jsonl'}.get(v, f'{cur}/{name}.filtered.jsonl')
  if v in EXTRA:
    for name in EXTRA[v].split('+'):
      files[name] = f'{cur}/{name}.jsonl'
  for name, src in files.items():
    link = os.path.join(root, 'train', f'{name}.jsonl')
    if not os.path.lexists(link):
      os.symlink(os.path.abspath(src), link)
  return root


def train(w: str, sets: dict[str, int]) -> dict[str, str]:
  runs = {}
  for v in FLAGS.variants:
    corpora = variant_corpora(w, v, sets)
    for s in FLAGS.seeds:
      arg = (f'stage=finetune,seed={s},init_from={FLAGS.demo}/prefinetune,corpora={corpora}'
             + (',hard_negatives=0' if v == 'b' else '')
             + (f',extra={EXTRA[v]}' if v in EXTRA else ''))
      workdir = os.path.join(w, f'ft-{v}-s{s}')
      runs[f'{v}{s}'] = workdir
      status = os.path.join(workdir, 'status.json')
      finished = os.path.exists(status) and json.load(open(status)).get('state') == 'finished'
      if not finished:
        sh([FLAGS.python, '-m', 'gemini_embed.train', f'--config=configs/demo.py:{arg}',
            f'--workdir={workdir}'])
  return runs


def evaluate(w: str, runs: dict[str, str]) -> None:
  compare = [f'--compare={v}{s}@768,a{s}@768' for v in FLAGS.variants if v != 'a'
             for s in FLAGS.seeds if 'a' in FLAGS.variants]
  for half in ('select', 'report'):
    out = os.path.join(w, f'results-{half}.json')
    sh([FLAGS.python, '-m', 'gemini_embed.evaluate', f'--suite={FLAGS.demo}/corpora/dev',
        f'--half={half}', '--peers=none', '--dims=768',
        '--workdir=' + ','.join(f'{k}={d}' for k, d in runs.items()), *compare,
        f'--output={out}'], out)
  if not FLAGS.dry_run:
    write_table(w)


def write_table(w: str) -> None:
  """results.md: per variant, Mean(Task) ×100 of each seed, their mean ± sd, and the
  paired differences against a (same seed) with their bootstrap intervals."""
  lines = ['| half | variant | Mean(Task) per seed | mean ± sd | vs a, paired per seed '
           '[interval] |', '|---|---|---|---|---|']
  for half in ('select', 'report'):
    res = json.load(open(os.path.join(w, f'results-{half}.json')))
    cmp = {(c['a'], c['b']): c['mean_task'] for c in res.get('comparisons', [])}
    for v in FLAGS.variants:
      scores = [100 * res['aggregates'][f'{v}{s}@768']['mean_task'] for s in FLAGS.seeds]
      diffs = [cmp.get((f'{v}{s}@768', f'a{s}@768')) for s in FLAGS.seeds]
      text = '; '.join(f'{100 * d["difference"]:+.2f} [{100 * d["interval"][0]:+.2f}, '
                       f'{100 * d["interval"][1]:+.2f}]' for d in diffs if d) or '—'
      lines.append(f'| {half} | {v} | {", ".join(f"{x:.2f}" for x in scores)} | '
                   f'{np.mean(scores):.2f} ± {np.std(scores, ddof=1) if len(scores) > 1 else 0:.2f}'
                   f' | {text} |')
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
  runs = {f'{v}{s}': os.path.join(w, f'ft-{v}-s{s}') for v in FLAGS.variants
          for s in FLAGS.seeds}
  if FLAGS.only in (None, 'train'):
    runs = train(w, sets)
  if FLAGS.only in (None, 'evaluate'):
    evaluate(w, runs)
  print(f'wall time {time.time() - start:.0f} s')


if __name__ == '__main__':
  app.run(main)
