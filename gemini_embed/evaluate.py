r"""Score runs (and their peers) on an MTEB-style suite:

    python -m gemini_embed.evaluate --workdir=DIR[,NAME=DIR2,...] --suite=SUITE_DIR \
        [--dims=768,1536,3072] [--output=FILE.json] [--peers=bm25,minilm] [--mesh=data:-1,fsdp:2]
        [--half=report|select] [--bootstrap=1000] [--compare=A,B ...]

Every workdir (training run or soup) is one model; `--peers` adds BM25 (retrieval
and reranking only) and all-MiniLM-L6-v2, and `--st_model=DIR` any
sentence-transformers directory, so each result stands beside its baselines.
Writes FILE.json plus a markdown table (FILE.md) and plots/score_vs_dim.png beside it
(plots/FILE_score_vs_dim.png unless FILE is `results`: other results in that folder are
kept); with several models, Mean(Task), Mean(Type) and a Borda ranking compare them.
Each run is sharded over its training mesh (its config.json) or --mesh.

A suite with two halves (build_corpora's) is scored on its `report` half unless
--half=select (the half every choice is made on); the half used is printed and
recorded. Every score and aggregate carries a bootstrap interval (eval/bootstrap.py:
queries within tasks, tasks within types); each --compare=A,B (system labels as in the
table, e.g. soup@768,finetune-a@768) prints the paired difference and P(A > B).
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from gemini_embed import checkpoint, sharding, storage
from gemini_embed import eval as ev
from gemini_embed.encoding import check_dims, load_run

_WORKDIR = flags.DEFINE_list('workdir', [], 'Runs to score: DIR or NAME=DIR, comma-separated.')
_SUITE = flags.DEFINE_string('suite', None, 'Suite directory (design.md layout).')
_DIMS = flags.DEFINE_list('dims', [], 'MRL dims (default: the runs\' mrl_dims).')
_OUTPUT = flags.DEFINE_string('output', None, 'Results JSON (default: WORKDIR/eval/results.json).')
_PEERS = flags.DEFINE_list('peers', ['bm25', 'minilm'], 'Baselines: bm25, minilm (or none).')
_ST_MODEL = flags.DEFINE_string('st_model', None, 'Another sentence-transformers model dir.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step of every run (default: latest).')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Texts per encode batch.')
_SAMPLES = flags.DEFINE_integer('samples_per_label', 8, 'Classification: n train examples per label.')
_EXPERIMENTS = flags.DEFINE_integer('classification_experiments', 10,
                                   'Classification: training subsets drawn and averaged (MTEB: '
                                   '10; the quick demo, a smoke test, draws 2).', lower_bound=1)
_HALF = flags.DEFINE_enum('half', 'report', ['report', 'select'],
                          'Half of a two-half suite: report (tables) or select (choices).')
_BOOTSTRAP = flags.DEFINE_integer('bootstrap', 1000, 'Bootstrap replicates (0: no intervals).')
_BOOTSTRAP_SEED = flags.DEFINE_integer('bootstrap_seed', 0, 'Seed of the bootstrap resamples.')
_COMPARE = flags.DEFINE_multi_string('compare', [], 'A,B: paired comparison of two systems '
                                     '(labels as in the table); repeatable.')
_MESH = flags.DEFINE_string('mesh', None, 'Mesh to run on, e.g. data:-1,fsdp:2,tensor:1 '
                            "(default: each run's config.json mesh).")


def parse_runs(items: list[str]) -> dict[str, str]:
  runs = {}
  for item in items:
    name, eq, path = item.partition('=')
    if not eq:
      path, name = item, os.path.basename(os.path.normpath(item))
    if name in runs:
      raise app.UsageError(f'--workdir: two runs are named {name!r}; use NAME=DIR')
    runs[name] = path
  return runs


def parse_compare(items: list[str]) -> list[tuple[str, str]]:
  pairs = []
  for item in items:
    labels = [x.strip() for x in item.split(',')]
    if len(labels) != 2 or not all(labels):
      raise app.UsageError(f'--compare={item}: expected two system labels A,B '
                           '(e.g. soup@768,finetune-a@768)')
    pairs.append(tuple(labels))
  return pairs


def parse_dims(values: list[str], runs: dict[str, str]) -> list[int]:
  """--dims as integers, each a width of every run (encoding.check_dims)."""
  try:
    dims = [int(d) for d in values]
  except ValueError:
    raise ValueError(f'--dims={",".join(values)}: not a list of integers') from None
  for path in runs.values():
    check_dims(path, dims, '--dims')
  return dims


def run_encoders(runs: dict[str, str], step: int | None, batch_size: int,
                 mesh_sizes: dict[str, int] | None = None) -> tuple[dict, list[int]]:
  encoders, dims = {}, set()
  for name, path in runs.items():
    run = load_run(path, step, mesh_sizes)
    logging.info('%s: %s at step %d on mesh %s', name, path, run.step, dict(run.mesh.shape))
    encoders[name] = run.encoder(batch_size=batch_size, progress=True)
    dims.update(checkpoint.read_model_info(path).mrl_dims)
  return encoders, sorted(dims)


def peer_systems(peers: list[str], st_model: str | None) -> dict:
  systems = {}
  for peer in peers:
    if peer == 'bm25':
      systems['BM25'] = ev.Bm25Okapi()
    elif peer == 'minilm':
      systems['all-MiniLM-L6-v2'] = ev.sentence_transformer_encoder(ev.minilm_model_dir())
    elif peer != 'none':
      raise app.UsageError(f'--peers: unknown peer {peer!r}; use bm25, minilm or none')
  if st_model:
    systems[os.path.basename(os.path.normpath(st_model))] = ev.sentence_transformer_encoder(st_model)
  return systems


def main(argv):
  del argv
  checkpoint.quiet_orbax_logs()
  runs = parse_runs(_WORKDIR.value)
  if not runs and not _PEERS.value and not _ST_MODEL.value:
    raise app.UsageError('nothing to evaluate: give --workdir and/or --peers')
  try:
    dims = parse_dims(_DIMS.value, runs)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  output = storage.as_path(
      _OUTPUT.value or os.path.join(next(iter(runs.values()), '.'), 'eval', 'results.json'))
  if output.suffix != '.json':
    raise app.UsageError(f'--output={output}: give a .json file name (FILE.md and a plot '
                         'are written beside it)')
  storage.check_writable(str(output.parent), '--output')  # before any model loads
  storage.check_readable(_SUITE.value, '--suite')
  systems, run_dims = run_encoders(runs, _STEP.value, _BATCH.value,
                                   sharding.parse_mesh(_MESH.value) if _MESH.value else None)
  systems.update(peer_systems([p for p in _PEERS.value if p], _ST_MODEL.value))
  dims = dims or run_dims or None
  pairs = parse_compare(_COMPARE.value)
  for label in (x for pair in pairs for x in pair):
    if label.rpartition('@')[0] not in systems and label not in systems:
      raise app.UsageError(f'--compare: {label!r} names no system; the models are '
                           f'{list(systems)} (labels are MODEL@DIM, or MODEL for BM25)')
  folder, half = ev.resolve_half(_SUITE.value, _HALF.value)
  print(f'suite: {folder} (half: {half or "none: a suite without halves, used whole"})',
        flush=True)
  results = ev.evaluate_suite(_SUITE.value, systems, dims, half=_HALF.value,
                              samples_per_label=_SAMPLES.value,
                              n_experiments=_EXPERIMENTS.value, replicates=_BOOTSTRAP.value,
                              seed=_BOOTSTRAP_SEED.value, compare=pairs)
  # FILE.json, FILE.md, plots/[FILE_]score_vs_dim.png: other results beside it are kept
  paths = ev.write_results(results, output.parent, stem=output.stem)
  print(paths['markdown'].read_text())
  for entry in results['comparisons']:
    print(ev.comparison_text(entry))
  print(f'wrote {output}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['suite'])
  app.run(main)
