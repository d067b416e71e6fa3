r"""Is the judge worth asking? Each LLM's AUC at telling a row's positive from a random
passage of the same training set, by graded classification and by query likelihood
separately, and its scoring throughput.

    python experiments/curation/judge_auc.py --llm=smollm2 --corpora=runs/corpora \
        --rows=100 --output=runs/curation/judge_auc-smollm2.json

Rows: the first --rows/len(--sets) rows of each set (seeded shuffle); the random
passage is another row's positive of the same set. AUC = P(score(positive) >
score(random)) + ½ P(tie) over all (positive, random) pairs (Mann–Whitney).
"""

from __future__ import annotations

import json
import os
import platform
import time

import jax
import numpy as np
from absl import app, flags

from gemini_embed import sharding
from gemini_embed.curate import prompts
from gemini_embed.curate.cli import cut
from gemini_embed.curate.judge import Judge
from gemini_embed.data.jsonl import read_jsonl
from gemini_embed.llm.model import load_llm

FLAGS = flags.FLAGS
flags.DEFINE_string('llm', 'smollm2', 'The judge.')
flags.DEFINE_string('corpora', 'runs/corpora', 'build_corpora output.')
flags.DEFINE_list('sets', ['code_docstring', 'wordnet_reverse_dictionary', 'wordnet_category',
                           'stdlib_docs'], 'Training sets (DIR/train/NAME.jsonl).')
flags.DEFINE_integer('rows', 100, 'Rows in all, split evenly over the sets.')
flags.DEFINE_integer('seed', 0, 'Row sampling seed.')
flags.DEFINE_integer('max_passage_chars', 300, 'Passages cut to this in prompts.')
flags.DEFINE_integer('batch_size', 8, 'LLM batch.')
flags.DEFINE_string('output', None, 'Result JSON.')


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
  pos, neg = np.asarray(pos, np.float64)[:, None], np.asarray(neg, np.float64)[None, :]
  return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def main(argv):
  del argv
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  t0 = time.perf_counter()
  judge = Judge(load_llm(FLAGS.llm, mesh, sharding.DEFAULT_RULES), mesh,
                sharding.DEFAULT_RULES, batch_size=FLAGS.batch_size)
  load_s = time.perf_counter() - t0
  grade_prompt = prompts.load('relevance', ('query', 'passage'), graded=True)
  ql_prompt = prompts.load('query_likelihood', ('passage',))
  rng = np.random.default_rng(FLAGS.seed)
  per_set = FLAGS.rows // len(FLAGS.sets)
  result = {'llm': FLAGS.llm, 'cpu': platform.processor() or platform.machine(),
            'load_s': load_s, 'sets': {}}
  all_scores = {'grade': ([], []), 'query_loglik': ([], [])}
  tokens, seconds = 0, 0.0
  for name in FLAGS.sets:
    rows = [r for _, r in read_jsonl(os.path.join(FLAGS.corpora, 'train', f'{name}.jsonl'))]
    pick = rng.permutation(len(rows))[:per_set]
    other = [(i + 1 + rng.integers(len(rows) - 1)) % len(rows) for i in pick]  # never itself
    queries = [rows[i]['query'] for i in pick]
    sides = {'positive': [rows[i]['positive'] for i in pick],
             'random': [rows[j]['positive'] for j in other]}
    scores = {}
    for side, passages in sides.items():
      fills = [{'query': q, 'passage': cut(p, FLAGS.max_passage_chars)}
               for q, p in zip(queries, passages)]
      before, start = judge.tokens, time.perf_counter()
      scores[side, 'grade'] = judge.graded(grade_prompt, fills)
      scores[side, 'query_loglik'] = judge.likelihood(
          ql_prompt, [{'passage': f['passage']} for f in fills], queries)
      if name != FLAGS.sets[0] or side != 'positive':   # the first call pays the compiles
        tokens += judge.tokens - before
        seconds += time.perf_counter() - start
    result['sets'][name] = {}
    for kind in ('grade', 'query_loglik'):
      pos = np.asarray(scores['positive', kind], np.float64)
      neg = np.asarray(scores['random', kind], np.float64)
      all_scores[kind][0].extend(pos)
      all_scores[kind][1].extend(neg)
      result['sets'][name][kind] = {'auc': auc(pos, neg), 'n': len(pos),
                                    'paired_accuracy': float((pos > neg).mean())}
    print(name, result['sets'][name], flush=True)
  result['all'] = {kind: {'auc': auc(p, n), 'n': len(p)} for kind, (p, n) in all_scores.items()}
  result['tokens_per_s'] = tokens / max(seconds, 1e-9)
  result['tokens_timed'], result['seconds_timed'] = tokens, seconds
  print(json.dumps(result['all']), f"{result['tokens_per_s']:.0f} tok/s")
  if FLAGS.output:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, 'w') as f:
      json.dump(result, f, indent=2)


if __name__ == '__main__':
  app.run(main)
