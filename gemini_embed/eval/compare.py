r"""Paired comparison of two systems of a saved results JSON (evaluate's --output):

    python -m gemini_embed.eval.compare --results=FILE.json --compare=A,B [--compare=C,D]
        [--replicates=N] [--seed=S] [--pooled]

A and B are system labels as in the table (`soup@768`, `finetune-a@768`, `BM25`). It
prints, for Mean(Task), Mean(Type), each type mean and each task, the difference A − B
(×100), its bootstrap interval and P(A > B), from the per-item scores the results keep
(eval/bootstrap.py: the same resamples for both systems). --replicates/--seed override
the results' own bootstrap settings. --pooled adds the comparison of the mean difference
over all the --compare pairs (one pair per seed: `--compare=lever-s1,base-s1
--compare=lever-s2,base-s2 ... --pooled`, how a lever is decided with several seeds).
"""

from __future__ import annotations

import json

from absl import app, flags

from gemini_embed.eval.results_report import comparison_text
from gemini_embed.eval.suite_evaluation import comparison, pooled_comparison

_RESULTS = flags.DEFINE_string('results', None, 'results JSON written by evaluate')
_COMPARE = flags.DEFINE_multi_string('compare', [], 'A,B: two system labels; repeatable')
_REPLICATES = flags.DEFINE_integer('replicates', None, 'bootstrap replicates (default: the results\')')
_SEED = flags.DEFINE_integer('seed', None, 'bootstrap seed (default: the results\')')
_POOLED = flags.DEFINE_bool('pooled', False, 'also compare the mean difference over all the '
                            '--compare pairs (one pair per seed)')


def main(argv):
  del argv
  with open(_RESULTS.value, encoding='utf-8') as f:
    results = json.load(f)
  boot = dict(results.get('bootstrap') or dict(replicates=1000, seed=0, level=0.95))
  if _REPLICATES.value is not None:
    boot['replicates'] = _REPLICATES.value
  if _SEED.value is not None:
    boot['seed'] = _SEED.value
  results['bootstrap'] = boot
  if not _COMPARE.value:
    raise app.UsageError(f'give --compare=A,B; the systems are {list(results["systems"])}')
  print(f'{_RESULTS.value}: suite {results.get("suite")} (half: {results.get("half")}), '
        f'{boot["replicates"]} replicates, seed {boot["seed"]}')
  pairs = []
  for item in _COMPARE.value:
    labels = [x.strip() for x in item.split(',')]
    if len(labels) != 2:
      raise app.UsageError(f'--compare={item}: expected A,B')
    pairs.append(tuple(labels))
  try:
    for pair in pairs:
      print(comparison_text(comparison(results, *pair)))
    if _POOLED.value:
      print(comparison_text(pooled_comparison(results, pairs)))
  except ValueError as e:
    raise app.UsageError(str(e)) from None


if __name__ == '__main__':
  flags.mark_flags_as_required(['results'])
  app.run(main)
