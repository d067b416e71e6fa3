r"""Paired comparison of two systems of saved results JSONs (evaluate's --output):

    python -m gemini_embed.eval.compare --results=FILE.json[,FILE2.json,...] --compare=A,B
        [--compare=C,D] [--replicates=N] [--seed=S] [--pooled] [--output=MERGED.json]

A and B are system labels as in the table (`soup@768`, `finetune-a@768`, `BM25`). It
prints, for Mean(Task), Mean(Type), each type mean and each task, the difference A − B
(×100), its bootstrap interval and P(A > B), from the per-item scores the results keep
(eval/bootstrap.py: the same resamples for both systems). --replicates/--seed override
the results' own bootstrap settings. --pooled adds the comparison of the mean difference
over all the --compare pairs (one pair per seed: `--compare=lever-s1,base-s1
--compare=lever-s2,base-s2 ... --pooled`, how a lever is decided with several seeds).

Several --results files (a lever scored today, its baseline last week; systems scored by
parallel processes) are merged first (eval/merge.py: same suite half, tasks and bootstrap
settings; no label twice), so their systems compare as if scored in one run; --output
writes the merged results (JSON, markdown table and plot, as evaluate's), with its
aggregates and Borda ranking over all the systems and the --compare pairs in it.
"""

from __future__ import annotations

import json

from absl import app, flags

from gemini_embed import storage
from gemini_embed.eval.merge import MergeError, merge_results
from gemini_embed.eval.results_report import comparison_text, write_results
from gemini_embed.eval.suite_evaluation import comparison, pooled_comparison

_RESULTS = flags.DEFINE_list('results', None, 'results JSON(s) written by evaluate; several '
                             'are merged (comma-separated)')
_OUTPUT = flags.DEFINE_string('output', None, 'write the merged results here (JSON; the '
                              'markdown table and plot beside it)')
_COMPARE = flags.DEFINE_multi_string('compare', [], 'A,B: two system labels; repeatable')
_REPLICATES = flags.DEFINE_integer('replicates', None, 'bootstrap replicates (default: the results\')')
_SEED = flags.DEFINE_integer('seed', None, 'bootstrap seed (default: the results\')')
_POOLED = flags.DEFINE_bool('pooled', False, 'also compare the mean difference over all the '
                            '--compare pairs (one pair per seed)')


def _load(path: str, boot_override: dict) -> dict:
  try:
    results = json.loads(storage.as_path(path).read_text(encoding='utf-8'))
  except (OSError, json.JSONDecodeError) as e:
    raise app.UsageError(f'--results: cannot read {path}: {e}') from None
  if not isinstance(results, dict) or 'systems' not in results or 'tasks' not in results:
    raise app.UsageError(f'--results: {path} is not a results JSON written by evaluate '
                         '(no "systems" / "tasks")')
  results['bootstrap'] = dict(results.get('bootstrap') or dict(replicates=1000, seed=0,
                                                                level=0.95), **boot_override)
  return results


def _pairs(items: list[str]) -> list[tuple[str, str]]:
  pairs = []
  for item in items:
    labels = [x.strip() for x in item.split(',')]
    if len(labels) != 2:
      raise app.UsageError(f'--compare={item}: expected A,B')
    pairs.append(tuple(labels))
  return pairs


def main(argv):
  del argv
  override = {k: v for k, v in (('replicates', _REPLICATES.value), ('seed', _SEED.value))
              if v is not None}
  files = [f for f in _RESULTS.value if f]
  twice = sorted({f for f in files if files.count(f) > 1})
  if twice:
    raise app.UsageError(f'--results: {", ".join(twice)} given twice')
  if _OUTPUT.value and not _OUTPUT.value.endswith('.json'):
    raise app.UsageError(f'--output={_OUTPUT.value}: give a .json file name (FILE.md and a '
                         'plot are written beside it)')
  parts = {path: _load(path, override) for path in files}
  pairs = _pairs(_COMPARE.value)
  if not pairs and not _OUTPUT.value:
    systems = [label for results in parts.values() for label in results['systems']]
    raise app.UsageError(f'give --compare=A,B (or --output to merge); the systems are {systems}')
  try:
    if len(parts) == 1 and not _OUTPUT.value:
      results = next(iter(parts.values()))
      entries = [comparison(results, *pair) for pair in pairs]
    else:  # the merge computes the pairs' comparisons (and writes them with --output)
      results = merge_results(parts, pairs)
      by_pair = {(c['a'], c['b']): c for c in results['comparisons']}
      entries = [by_pair[pair] for pair in pairs]
    boot = results['bootstrap']
    print(f'{",".join(files)}: suite {results.get("suite")} (half: {results.get("half")}), '
          f'{boot["replicates"]} replicates, seed {boot["seed"]}')
    for entry in entries:
      print(comparison_text(entry))
    if _POOLED.value:
      print(comparison_text(pooled_comparison(results, pairs)))
  except (MergeError, ValueError) as e:
    raise app.UsageError(str(e)) from None
  if _OUTPUT.value:
    output = storage.as_path(_OUTPUT.value)
    write_results(results, output.parent, stem=output.stem)
    print(f'wrote {output} ({len(results["systems"])} systems from {len(files)} files)')


if __name__ == '__main__':
  flags.mark_flags_as_required(['results'])
  app.run(main)
