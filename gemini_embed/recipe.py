r"""The full-size recipe (`make recipe`): the demo's pipeline at the size meant for one GPU
or a TPU slice, with the paper's data engine between the two training stages.

    corpora (no caps) ─▶ Gemma 3 270M ─▶ pre-finetune ─▶ curation with the pre-finetuned
      embedder and the LLM (mine, filter, synthetic queries, synthetic classification)
      ─▶ fine-tune a (task mixture) + fine-tune b (language mixture) ─▶ soup ─▶ evaluate

    python -m gemini_embed.recipe --workdir=runs/recipe [--dry_run] [--curate=true]
        [--llm=gemma3-270m] [--corpora=DIR] [--tiny]

Every stage is one of the project's commands, printed before it runs (`--dry_run`: every
command with its projected wall time on this CPU, one H100/H200 and a TPU v5e-8 / v5p-8,
gemini_embed/recipe_projection.py); a rerun skips the stages that finished. The config is
configs/recipe.py. Outputs: WORKDIR/{corpora, prefinetune, curation, curated,
finetune-a, finetune-b, soup}/, WORKDIR/results.{json,md} (report half, beside the peers).
The recipe must not run at full size on a laptop: `--tiny` is its CPU smoke run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import sys
from typing import Callable

from absl import app, flags

from gemini_embed import recipe_projection as projection
from gemini_embed import run_status
from gemini_embed.configlib import load_config_file
from gemini_embed.curate import pipeline
from gemini_embed.data.corpora.training_sets import FINETUNE_MIXTURES
from gemini_embed.models.fetch_offline import MODELS, fetched
from gemini_embed.stages import done, latest_step, module, pipeline_env, stage

FLAGS = flags.FLAGS

CONFIG = 'configs/recipe.py'
# The soup of two mixtures, as the paper: (workdir, mixture, seed).
FINETUNES = (('finetune-a', 'task', 1), ('finetune-b', 'language', 2))
SYSTEMS = ('prefinetune', 'finetune-a', 'finetune-b', 'soup')
COMPARISONS = (('soup', 'finetune-a'), ('soup', 'finetune-b'), ('finetune-a', 'prefinetune'),
               ('finetune-b', 'prefinetune'))
FULL_CORPORA = ('--max_rows=0', '--max_man_pages=0', '--gettext_per_catalog=200')
TINY_CORPORA = ('--max_dev=40', '--max_rows=2000', '--max_man_pages=40')
TINY_ROWS = 2  # rows, passages and labels per curated set in the smoke run


@dataclasses.dataclass
class Stage:
  title: str
  cmd: list[str] | None                 # a project command, or None: `host` does the work
  finished: Callable[[], bool] = lambda: False
  host: Callable[[], None] | None = None
  projected: dict[str, float] | None = None  # seconds per target (recipe_projection)
  note: str = ''                        # printed under the command by --dry_run
  floor: bool = False                   # accelerator projections are a FLOP floor (LLM tools)


@dataclasses.dataclass(frozen=True)
class Options:
  workdir: str
  corpora: str
  llm: str = 'gemma3-270m'
  curate: bool = True
  tiny: bool = False
  peers: tuple[str, ...] = ('bm25', 'minilm')
  k: int = 8
  threshold: str = '3'
  min_rating: str = '3'
  per_label: int = 8

  def path(self, name: str) -> str:
    return os.path.join(self.workdir, name)


def _arg(o: Options, **kw) -> str:
  args = dict(kw, llm=o.llm) if o.llm != 'gemma3-270m' else kw
  return ','.join(f'{k}={v}' for k, v in args.items()) + (',tiny' if o.tiny else '')


def _train(o: Options, title: str, workdir: str, arg: str, kind: str) -> Stage:
  config = load_config_file(CONFIG, arg)
  return Stage(title, module('train', f'--config={CONFIG}:{arg}', f'--workdir={workdir}'),
               lambda: run_status.finished(workdir),
               projected=projection.train_seconds(kind, config.total_steps, config.batch_size),
               note=_draws(config, o.corpora))


def _draws(config, corpora: str) -> str:
  """Epochs of each set the run draws: steps × batch × its share of the rates / its rows
  (counted in CORPORA/train, before curation filters any)."""
  rates = {n: e.rate for n, e in config.data.datasets.items()}
  total = config.total_steps * config.batch_size
  parts = []
  for name, rate in rates.items():
    rows = _count_rows(os.path.join(corpora, 'train', f'{name}.jsonl'))
    draws = total * rate / sum(rates.values())
    parts.append(f'{name} {draws / rows:.1f}' if rows else f'{name} ? (not built yet)')
  return (f'{config.total_steps} steps × {config.batch_size} examples; epochs per set: '
          + ', '.join(parts))


def _count_rows(path: str) -> int | None:
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    return sum(1 for line in f if line.strip())


def curated_rows(o: Options) -> dict[str, int]:
  """Rows to curate per fine-tuning set: what the two fine-tunes draw from it (steps ×
  batch × its share of the mixture, summed; sampling caps it at the set's size)."""
  if o.tiny:
    return {n: TINY_ROWS for _, m, _ in FINETUNES for n in FINETUNE_MIXTURES[m]}
  rows: dict[str, int] = {}
  for _, mixture, _ in FINETUNES:
    config = load_config_file(CONFIG, _arg(o, stage='finetune', mixture=mixture,
                                                corpora=o.corpora))
    rates = {n: e.rate for n, e in config.data.datasets.items()}
    total = config.total_steps * config.batch_size
    for n, r in rates.items():
      rows[n] = rows.get(n, 0) + math.ceil(total * r / sum(rates.values()))
  return rows


def _curation(o: Options) -> tuple[list[Stage], str, str]:
  """The data engine's stages; the curated corpora dir and the fine-tunes' extra sets."""
  cur = pipeline.Curation(root=o.path('curation'), corpora=o.corpora,
                          embedder=o.path('prefinetune'), llm=o.llm, python=sys.executable,
                          # the smoke run tests the plumbing, not the judge: it keeps every row
                          k=2 if o.tiny else o.k, threshold='1' if o.tiny else o.threshold,
                          min_rating='1' if o.tiny else o.min_rating,
                          per_label=1 if o.tiny else o.per_label)
  rows = curated_rows(o)
  cap = TINY_ROWS if o.tiny else 0
  stages = [Stage('curation inputs: sampled rows, mining corpora, passages, labels', None,
                  host=lambda: cur.prepare(rows, queries=True, classification=True,
                                           max_passages=cap, max_labels=cap))]
  for name, n in rows.items():
    have = _count_rows(cur.source(name))
    n = min(n, have) if have is not None else n
    for step, tool, units in ((cur.mine(name), 'mine', n * cur.k), (cur.filter(name), 'filter', n)):
      stages.append(Stage(step.title, step.cmd, lambda p=step.output: os.path.exists(p),
                          projected=projection.tool_seconds(tool, units, o.llm), floor=True))
  passages = cap or sum(_count_rows(cur.source(n)) or 0 for n in pipeline.PASSAGE_SETS)
  labels = cap or len(set(_label_rows(cur.source(pipeline.LABEL_SET))))
  for step, tool, units in ((cur.synthesize_queries(), 'synthesize_queries', passages),
                            (cur.synthesize_classification(), 'synthesize_classification',
                             labels * cur.per_label)):
    stages.append(Stage(step.title, step.cmd, lambda p=step.output: os.path.exists(p),
                        projected=projection.tool_seconds(tool, units, o.llm) if units else None,
                        floor=True))
  curated = o.path('curated')
  files = {n: cur.curated(f'{n}.filtered') for n in rows}
  files.update({n: cur.curated(n) for n in pipeline.SYNTHETIC})
  stages.append(Stage(f'curated corpora: {curated}/train (filtered rows, synthetic sets)', None,
                      host=lambda: _link_curated(curated, files)))
  return stages, curated, '+'.join(pipeline.SYNTHETIC)


def _label_rows(path: str) -> list[str]:
  if not os.path.exists(path):
    return []
  with open(path, encoding='utf-8') as f:
    return [json.loads(line)['positive'] for line in f if line.strip()]


def _link_curated(root: str, files: dict[str, str]) -> None:
  empty = [p for p in files.values() if not _count_rows(p)]
  if empty:
    raise SystemExit(f'curation kept no rows in {", ".join(empty)}: see each file\'s '
                     '.summary.json and .scores.png, then rerun with a lower --threshold '
                     '(filter) or --min_rating (synthesize_queries), after deleting the file')
  pipeline.link_corpora(root, files)


def plan(o: Options) -> list[Stage]:
  """Every stage of the recipe, in order."""
  c = o.corpora
  pre = o.path('prefinetune')
  stages = [Stage('real corpora (training sets without the demo\'s caps + dev suite)',
                  module('data.build_corpora', f'--out={c}',
                         *(TINY_CORPORA if o.tiny else FULL_CORPORA)),
                  lambda: os.path.exists(os.path.join(c, 'dev', 'halves.json')),
                  projected=None if o.tiny else {'cpu (2 cores)': projection.CORPORA_SECONDS})]
  if o.llm in MODELS:
    stages.append(Stage(f'offline LLM: {o.llm}', module('models.fetch_offline', o.llm),
                        lambda: fetched(o.llm)))
  stages.append(_train(o, 'pre-finetuning on (title, passage) pairs, large batch', pre,
                       _arg(o, stage='prefinetune', corpora=c), 'prefinetune'))
  ft_corpora, extra = c, ''
  if o.curate:
    curation, ft_corpora, extra = _curation(o)
    stages += curation
  for name, mixture, seed in FINETUNES:
    kw = dict(stage='finetune', mixture=mixture, seed=seed, init_from=pre, corpora=ft_corpora)
    stages.append(_train(o, f'fine-tuning {name} ({mixture} mixture, seed {seed})',
                         o.path(name), _arg(o, **kw, **({'extra': extra} if extra else {})),
                         'finetune'))
  soup = o.path('soup')
  stages.append(Stage('model soup of the two mixtures\' fine-tunes',
                      module('soup', f'--inputs={o.path("finetune-a")},{o.path("finetune-b")}',
                             f'--output={soup}'), lambda: done(soup)))
  stages.append(_evaluation(o))
  return stages


def _evaluation(o: Options) -> Stage:
  results = o.path('results.json')
  evaluated_file = o.path('evaluated.json')

  def evaluated() -> dict:
    return dict(steps={r: latest_step(o.path(r)) for r in SYSTEMS}, peers=sorted(o.peers))

  def finished() -> bool:
    if not os.path.exists(results) or not os.path.exists(evaluated_file):
      return False
    with open(evaluated_file) as f:
      return json.load(f) == evaluated()

  def record() -> None:
    with open(evaluated_file, 'w') as f:
      json.dump(evaluated(), f)

  cmd = module('evaluate', '--workdir=' + ','.join(f'{r}={o.path(r)}' for r in SYSTEMS),
               f'--suite={os.path.join(o.corpora, "dev")}', '--half=report',
               f'--output={results}', '--peers=' + (','.join(o.peers) or 'none'),
               *(f'--compare={a}@768,{b}@768' for a, b in COMPARISONS))
  return Stage('evaluate on the report half, beside the peers', cmd, finished, host=record)


def print_plan(stages: list[Stage]) -> None:
  targets = ['cpu (2 cores)', *projection.TARGETS]
  totals = dict.fromkeys(targets, 0.0)
  rows = []
  for i, s in enumerate(stages, 1):
    print(f'\n[{i}] {s.title}')
    print('$ ' + (shlex.join(s.cmd) if s.cmd else '(in the driver: no command)'))
    if s.note:
      print('  ' + s.note)
    p = s.projected or {}
    rows.append((i, s.title, [(p.get(t), s.floor and t != targets[0]) for t in targets]))
    for t in targets:
      totals[t] += p.get(t) or 0.0
  print(f'\nprojected wall time per stage (— : not projected; {projection.TRAIN_MFU:.0%} MFU '
        f'assumed for training and LLM scoring, {projection.DECODE_MFU:.0%} for generation; '
        '≥ : a FLOP floor, the LLM tools run batches of 8 with host work between them)')
  print(f'{"#":>3} {"stage":60s} ' + ' '.join(f'{t:>13s}' for t in targets))
  for i, title, secs in rows:
    print(f'{i:>3} {title[:60]:60s} ' + ' '.join(_cell(x, floor) for x, floor in secs))
  any_floor = any(s.floor for s in stages)
  print(f'{"":>3} {"total (projected stages)":60s} '
        + ' '.join(_cell(totals[t], any_floor and t != targets[0]) for t in targets))


def _cell(seconds: float | None, floor: bool) -> str:
  text = projection.fmt(seconds)
  return f'{("≥ " if floor and seconds is not None else "") + text:>13s}'


def run(stages: list[Stage], env: dict[str, str]) -> None:
  for s in stages:
    if s.finished():
      stage(s.title, s.cmd or [], env, skip=True)
      continue
    if s.cmd:
      stage(s.title, s.cmd, env)
    if s.host:
      if not s.cmd:
        print(f'\n=== {s.title}', flush=True)
      s.host()


def define_flags() -> None:
  """The command line (defined only when run as a program: importing defines no flags)."""
  flags.DEFINE_string('workdir', 'runs/recipe', 'Where everything goes.')
  flags.DEFINE_bool('dry_run', False, 'Print every command and its projected wall time; run '
                    'nothing.')
  flags.DEFINE_bool('curate', True, 'Curate the fine-tuning data with the LLM (else the '
                    "builder's structural negatives).")
  flags.DEFINE_string('llm', 'gemma3-270m', 'smollm2 | gemma3-270m | a Gemma 3 Hugging Face '
                      'directory (e.g. a 1B on gs://, for a slice).')
  flags.DEFINE_string('corpora', None, 'Corpora directory (default: WORKDIR/corpora).')
  flags.DEFINE_list('peers', ['bm25', 'minilm'], 'Baselines in the results table.')
  flags.DEFINE_bool('tiny', False, "CPU smoke run: the config's tiny mode, demo-sized corpora, "
                    f'{TINY_ROWS} rows per set curated.')
  flags.DEFINE_integer('k', 8, 'mine: neighbours per query.')
  flags.DEFINE_string('threshold', '3', "filter: kept rows' expected grade (1–5); set it from "
                      'curation/curated/NAME.filtered.scores.png per model.')
  flags.DEFINE_string('min_rating', '3', 'synthesize_queries: kept rater grade.')
  flags.DEFINE_integer('per_label', 8, 'synthesize_classification: texts per label.')


def options_from_flags() -> Options:
  return Options(workdir=FLAGS.workdir,
                 corpora=FLAGS.corpora or os.path.join(FLAGS.workdir, 'corpora'),
                 llm=FLAGS.llm, curate=FLAGS.curate, tiny=FLAGS.tiny, peers=tuple(FLAGS.peers),
                 k=FLAGS.k, threshold=FLAGS.threshold, min_rating=FLAGS.min_rating,
                 per_label=FLAGS.per_label)


def main(argv):
  del argv
  o = options_from_flags()
  stages = plan(o)
  if FLAGS.dry_run:
    print_plan(stages)
    return
  os.makedirs(o.workdir, exist_ok=True)
  run(stages, pipeline_env(o.path('jax_cache')))
  print(f'\nrecipe finished; results in {o.path("results.json")}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
