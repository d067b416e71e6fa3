"""Periodic evaluation inside a training run: the dev retrieval tasks of a suite at
every MRL dim, logged with the training metrics (`eval/<task>@<dim>` = nDCG@10).

    config.eval.every = 50                  # steps; 0 = off
    config.eval.suite = 'runs/corpora/dev'  # design.md's suite layout
    config.eval.half = 'select'             # of a two-half suite: choices (early stopping,
                                            # picking a step) are made on select, never report
    config.eval.tasks = ()                  # task ids to keep, e.g. ('retrieval/man_pages',);
                                            # () = every retrieval task of the suite

Single-process runs only: it encodes with the trainer's mesh from host data.
"""

from __future__ import annotations

import ml_collections
from absl import logging

from gemini_embed.encoding import TextEncoder
from gemini_embed.eval.suite import load_suite, resolve_half, task_id


def default_eval_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(every=0, suite='', half='select', tasks=(),
                                        batch_size=64))


class DevRetrievalEval:

  def __init__(self, config, tokenizer, family: str, mesh, rules):
    folder, half = resolve_half(config.eval.suite, config.eval.half)
    logging.info('dev retrieval during training: %s (half: %s)', folder,
                 half or 'none: a suite without halves, used whole')
    tasks = [t for t in load_suite(folder) if t.type == 'retrieval']
    if config.eval.tasks:
      known = {task_id(t) for t in tasks}
      missing = set(config.eval.tasks) - known
      if missing:
        raise ValueError(f'config.eval.tasks: {sorted(missing)} are not retrieval tasks of '
                         f'{config.eval.suite} (it has {sorted(known)})')
      tasks = [t for t in tasks if task_id(t) in set(config.eval.tasks)]
    if not tasks:
      raise ValueError(f'config.eval.suite={config.eval.suite!r} has no retrieval task')
    self.tasks, self.dims = tasks, list(config.mrl_dims)
    self.args = (tokenizer, family, config.data, mesh, rules)
    self.batch_size = config.eval.batch_size

  def __call__(self, model) -> dict[str, float]:
    # Here, not at the top: the task runners pull scikit-learn and SciPy, which a config
    # (configlib imports default_eval_config) or a run without dev eval does not need.
    from gemini_embed.eval.suite_evaluation import evaluate_tasks
    encoder = TextEncoder(model, *self.args,
                          batch_size=self.batch_size)
    results = evaluate_tasks(self.tasks, {'m': encoder}, self.dims, replicates=0)
    out = {}
    for label, entry in results['systems'].items():
      scores = [s['ndcg_at_10'] for s in entry['scores'].values()]
      for task, s in entry['scores'].items():
        out[f'eval/{task}@{entry["dim"]}'] = s['ndcg_at_10']
      out[f'eval/retrieval_mean@{entry["dim"]}'] = sum(scores) / len(scores)
    logging.info('dev retrieval: %s', {k: round(v, 4) for k, v in out.items()
                                        if 'retrieval_mean' in k})
    return out
