r"""Synthetic classification data, the paper's multi-stage recipe:

    python -m gemini_embed.curate.synthesize_classification --llm=SRC --labels=LABELS.json \
        --out=ROWS.jsonl [--per_label=8] [--tail=0.5] [--list_tokens=192] [--nostrict] \
        [--num_shards=N --shard=K]

LABELS.json: {"label": "description", ...} or [{"label", "description"}, ...].
  1. seeds: per label, prompts/seed_list.txt asks for a long numbered list of diverse
     subjects (OUT.work/seeds-shardK.jsonl: every shard computes the same lists, one row
     per label; an item cut by --list_tokens is dropped);
  2. the tail: the first --tail fraction of each list is dropped (the obvious items come
     first) and --per_label seeds are drawn from the rest (with replacement when it is
     short; rng(seed, label));
  3. texts: prompts/labelled_text.txt writes one text per (label, seed) (sampled, row r
     with fold_in(seed, r));
  4. dedupe: a text already kept (case- and space-folded) is rejected as duplicate.
ROWS are classification training rows {"query": text, "positive": the label's
description, "negative": another label's description, "label", "seed"}; the rejects
(ROWS.rejected.jsonl) hold the others with their reason (empty_text, duplicate,
too_long, no_seeds: the list had no tail). Stage 3 is resumable, sharded, merged and
summarised as curate/ledger.py describes.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
from absl import app, flags

from gemini_embed.curate import cli, ledger, prompts
from gemini_embed.curate.judge import Judge
from gemini_embed.curate.training_rows import missing_text
from gemini_embed.llm import jobs
from gemini_embed.llm.sampling import Sampling

FLAGS = flags.FLAGS
_NUMBERED = re.compile(r'^\s*\d+[.)]\s*(.*?)\s*$')


def read_labels(path: str) -> list[dict[str, str]]:
  with open(path, encoding='utf-8') as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}:{e.lineno}: not valid JSON ({e.msg})') from None
  if isinstance(data, dict):
    data = [{'label': k, 'description': v} for k, v in data.items()]
  if not isinstance(data, list) or len(data) < 2:
    raise ValueError(f'{path}: give at least two labels, as {{"label": "description", ...}} '
                     'or [{"label": ..., "description": ...}, ...]')
  for n, item in enumerate(data):
    why = missing_text(item, ('label', 'description')) if isinstance(item, dict) else \
        'not an object'
    if why:
      raise ValueError(f'{path}: label #{n + 1}: {why}')
  return data


def list_items(completion: str) -> list[str]:
  """The items of a numbered list the model continued after "1.", in order."""
  items = []
  for line in completion.split('\n'):
    m = _NUMBERED.match(line)
    item = m.group(1) if m else line.strip()
    if item:
      items.append(item)
  return items


def tail_seeds(items: list[str], per_label: int, tail: float, seed: int, label: int
               ) -> list[str]:
  """per_label seeds from the list past its first `tail` fraction."""
  rest = items[int(len(items) * tail):]
  if not rest:
    return []
  rng = np.random.default_rng([seed, label])
  replace = len(rest) < per_label
  return [rest[i] for i in rng.choice(len(rest), per_label, replace=replace)]


def synthesize_classification(judge: Judge, labels_path: str, out: str, *,
                              rejected: str | None = None, per_label: int = 8,
                              tail: float = 0.5, list_tokens: int = 192,
                              text_tokens: int = 64, params: Sampling = Sampling(0.8, seed=0),
                              seed_prompt: str = 'seed_list', text_prompt: str = 'labelled_text',
                              strict: bool = True, num_shards: int = 1, shard: int = 0) -> bool:
  """The tool's work; True once every shard is done and ROWS is written."""
  if not 0 <= tail < 1:
    raise ValueError(f'--tail={tail}: the fraction of each list dropped, in [0, 1)')
  labels = read_labels(labels_path)
  seed_p = prompts.load(seed_prompt, ('label', 'description'))
  text_p = prompts.load(text_prompt, ('description', 'seed'))
  work_dir = ledger.stem(out) + '.work'
  os.makedirs(work_dir, exist_ok=True)
  # Stage 1 (one row per label, cheap): each shard keeps its own identical copy.
  labels_jsonl = os.path.join(work_dir, 'labels.jsonl')
  _write_once(labels_jsonl, labels)
  seeds_path = os.path.join(work_dir, f'seeds-shard{shard}.jsonl')

  def seed_lists(window):
    fills = [dict(label=r['label'], description=r['description']) for _, r in window]
    before = judge.tokens
    lists = judge.complete(seed_p, fills, [i for i, _ in window], max_new_tokens=list_tokens,
                           params=params, stop=('\n\n', 'Category:'))
    out = []
    for (_, r), c in zip(window, lists):
      items = list_items('1. ' + c[0]) if c else []
      if c and c[1] == 'length':   # the list ran out of tokens: its last item is cut
        items = items[:-1]
      out.append(dict(r, items=items))
    return out, judge.tokens - before

  jobs.run(labels_jsonl, seeds_path, check=lambda r: None, process=seed_lists,
           window=judge.batch_size, num_shards=1, shard=0, desc='seed lists')
  requests = []
  for n, (_, row) in enumerate(jobs.read_rows(seeds_path, lambda r: None)):
    seeds = tail_seeds(row['items'], per_label, tail, params.seed, n)
    requests += [{'label': row['label'], 'description': row['description'], 'seed': s,
                  'label_index': n} for s in seeds] or [
                      {'label': row['label'], 'description': row['description'], 'seed': '',
                       'label_index': n}]
  requests_path = os.path.join(work_dir, f'texts-input-shard{shard}.jsonl')
  _write_once(requests_path, requests)
  job = ledger.Job(requests_path, out, out, rejected or ledger.stem(out) + '.rejected.jsonl',
                   problem=lambda r: None, strict=strict, num_shards=num_shards, shard=shard,
                   desc='labelled texts',
                   dedupe=lambda r: ' '.join(r['query'].lower().split()))

  def texts(window):
    todo = [n for n, (_, r) in enumerate(window) if r['seed']]
    before = judge.tokens
    made = dict(zip(todo, judge.generate(
        text_p, [dict(label=window[n][1]['label'], description=window[n][1]['description'],
                      seed=window[n][1]['seed']) for n in todo],
        [window[n][0] for n in todo], max_new_tokens=text_tokens, params=params)))
    out_rows = []
    for n, (index, r) in enumerate(window):
      rng = np.random.default_rng([params.seed, index])
      other = (r['label_index'] + 1 + rng.integers(len(labels) - 1)) % len(labels)
      row = {'query': made.get(n) or '', 'positive': r['description'],
             'negative': labels[other]['description'], 'label': r['label'], 'seed': r['seed']}
      if not r['seed']:
        res = ledger.result(row, kept=False, reason='no_seeds: the seed list had no tail')
      elif made[n] is None:
        res = ledger.result(row, kept=False, reason='too_long: the prompt exceeds the context')
      elif not made[n]:
        res = ledger.result(row, kept=False, reason='empty_text')
      else:
        res = ledger.result(row, kept=True, scores={'words': len(made[n].split())})
      out_rows.append({'index': index, 'results': [res]})
    return out_rows, judge.tokens - before

  return job.run(texts, window=judge.batch_size * 2)


def _write_once(path: str, rows: list[dict]) -> None:
  """Writes `rows` unless `path` already holds exactly them (a resume); a different
  content means a changed input: stop rather than mix two runs."""
  text = ''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows)
  if os.path.exists(path):
    with open(path, encoding='utf-8') as f:
      if f.read() == text:
        return
    raise ValueError(f'{path} was written by a run with other labels or settings; move '
                     f'{os.path.dirname(path)} away to start over')
  tmp = path + '.tmp'
  with open(tmp, 'w', encoding='utf-8') as f:
    f.write(text)
  os.replace(tmp, path)


def main(argv):
  del argv
  cli.run_tool(lambda judge, **shards: synthesize_classification(
      judge, FLAGS.labels, FLAGS.out, rejected=FLAGS.rejected, per_label=FLAGS.per_label,
      tail=FLAGS.tail, list_tokens=FLAGS.list_tokens, text_tokens=FLAGS.text_tokens,
      params=cli.sampling(),
      seed_prompt=FLAGS.seed_prompt, text_prompt=FLAGS.text_prompt, strict=FLAGS.strict,
      **shards), FLAGS.labels, FLAGS.out)


if __name__ == '__main__':
  cli.define_flags()
  flags.DEFINE_string('labels', None, 'LABELS.json: {"label": "description", ...}.')
  flags.DEFINE_string('out', None, 'Classification training rows.')
  flags.DEFINE_string('rejected', None, 'The others (default OUT.rejected.jsonl).')
  flags.DEFINE_integer('per_label', 8, 'Texts per label.')
  flags.DEFINE_float('tail', 0.5, 'Fraction of each seed list dropped from its head.')
  flags.DEFINE_integer('list_tokens', 192, 'Tokens for each seed list.')
  flags.DEFINE_integer('text_tokens', 64, 'Tokens for each text.')
  cli.define_sampling_flags(temperature=0.8)
  flags.DEFINE_string('seed_prompt', 'seed_list', 'Seed-list prompt file.')
  flags.DEFINE_string('text_prompt', 'labelled_text', 'Labelled-text prompt file.')
  flags.mark_flags_as_required(['labels', 'out'])
  app.run(main)
