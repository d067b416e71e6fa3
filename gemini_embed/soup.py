r"""Model soups: average the parameters of fine-tuned checkpoints.

    python -m gemini_embed.soup --inputs=DIR[:STEP],DIR[:STEP],... --output=DIR \
        [--method=uniform|weighted|greedy] [--weights=0.5,0.3,0.2] [--suite=DEV_SUITE] \
        [--half=select] [--mesh=data:-1,fsdp:2] [--overwrite]

uniform   the arithmetic mean of every ingredient
weighted  Σ w_i θ_i / Σ w_i with --weights
greedy    ingredients sorted by dev score (Mean(Task) at the largest MRL dim on
          the `select` half of --suite (--half), the model sharded over the first
          ingredient's training mesh or --mesh); each is kept only if the soup's dev
          score does not drop. The report half stays unseen for the tables.

Ingredients stream one at a time (memory ≈ the running sum + one checkpoint),
must share one architecture (an error names the first differing parameter), and
the output directory has a workdir's layout, so encode/evaluate/soup accept it;
its soup.json records the method, the weights and the step read of each input.

--output must be new (or empty): never one of the inputs, never a training run,
and a previous soup only with --overwrite. The soup is written to a temporary
sibling and renamed into place, so a crash leaves the previous soup (or nothing),
never half of one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from typing import Callable, Iterator

import jax
import numpy as np
from absl import app, flags, logging
from etils import epath
from flax import nnx
from flax.traverse_util import flatten_dict, unflatten_dict

from gemini_embed import checkpoint, sharding, storage
from gemini_embed.encoding import load_run
from gemini_embed.eval.suite import load_suite, resolve_half

_INPUTS = flags.DEFINE_list('inputs', None, 'Ingredients: DIR or DIR:STEP, comma-separated.')
_OUTPUT = flags.DEFINE_string('output', None, 'Soup directory to write.')
_METHOD = flags.DEFINE_enum('method', 'uniform', ['uniform', 'weighted', 'greedy'], 'How to mix.')
_WEIGHTS = flags.DEFINE_list('weights', [], 'One weight per input (method=weighted).')
_SUITE = flags.DEFINE_string('suite', None, 'Dev suite for method=greedy.')
_HALF = flags.DEFINE_enum('half', 'select', ['select', 'report'],
                          'Half of a two-half --suite that greedy selects on.')
_MESH = flags.DEFINE_string('mesh', None, 'Mesh to score on (method=greedy), e.g. data:-1,fsdp:2 '
                            "(default: the first input's config.json mesh).")
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace a previous soup at --output '
                               '(never a training run).')

Flat = dict[str, np.ndarray]


def parse_input(item: str) -> tuple[str, int | None]:
  path, sep, step = item.rpartition(':')
  if sep and step.isdigit():
    return path, int(step)
  return item, None


def read_params(directory: str, step: int | None = None) -> tuple[Flat, int]:
  """{'backbone/blocks/attn/q_proj': array, ...} on the host, and the step read."""
  model, step = checkpoint.restore_embedder(directory, step)
  return {k: np.asarray(v) for k, v in _flat(model).items()}, step


def _flat(model: nnx.Module) -> dict:
  """Parameter name (`backbone/blocks/attn/q_proj`) → array."""
  return flatten_dict(nnx.to_pure_dict(nnx.state(model)), sep='/')


def spec_of(flat: Flat) -> dict[str, jax.ShapeDtypeStruct]:
  return {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in flat.items()}


def check_same_tree(ref, other, ref_name: str, other_name: str) -> None:
  """ref/other: name → array or ShapeDtypeStruct; the first difference is an error."""
  for name in sorted(set(ref) | set(other)):
    if name not in other or name not in ref:
      where = other_name if name not in other else ref_name
      raise ValueError(f'soup ingredients differ: {where} has no parameter {name!r}')
    if ref[name].shape != other[name].shape:
      raise ValueError(f'soup ingredients differ at {name!r}: {ref_name} has shape '
                       f'{ref[name].shape}, {other_name} has {other[name].shape}')


def parse_weights(values: list[str], num_inputs: int) -> list[float]:
  """--weights as numbers, checked by check_weights."""
  try:
    weights = [float(w) for w in values]
  except ValueError:
    raise ValueError(f'--weights={",".join(values)}: not a list of numbers') from None
  check_weights(weights, num_inputs)
  return weights


def check_weights(weights: list[float], num_inputs: int) -> None:
  """One finite weight >= 0 per input, not all 0 (NaN or ∞ would make a NaN soup)."""
  flag = f'--weights={",".join(f"{w:g}" for w in weights)}'
  if len(weights) != num_inputs:
    raise ValueError(f'{flag}: {len(weights)} weights for {num_inputs} inputs')
  if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
    raise ValueError(f'{flag}: each weight must be a finite number >= 0, and not all 0')


def weighted_average(inputs: list[tuple[str, int | None]], weights: list[float]
                     ) -> tuple[Flat, list[int]]:
  """Σ w_i θ_i / Σ w_i, reading one ingredient at a time (float64 accumulation), and the
  step read of each input."""
  check_weights(weights, len(inputs))
  total, ref, first, steps = None, None, None, []
  for (path, step), w in zip(inputs, weights):
    flat, at = read_params(path, step)
    steps.append(at)
    logging.info('soup: + %s (step %d) × %g', path, at, w)
    if total is None:
      total, ref, first = {k: v.astype(np.float64) * w for k, v in flat.items()}, spec_of(flat), path
      continue
    check_same_tree(ref, flat, first, path)
    for k, v in flat.items():
      total[k] += v.astype(np.float64) * w
    del flat
  norm = float(sum(weights))
  return {k: (v / norm).astype(ref[k].dtype) for k, v in total.items()}, steps


def greedy_soup(inputs: list[tuple[str, int | None]], score: Callable[[Flat, str], float]
                ) -> tuple[Flat, list[dict], list[int]]:
  """Wortsman et al.'s greedy soup: best-first, keep an ingredient iff dev does not drop.
  Holds the running sum and one candidate (plus the current soup for scoring). Returns
  the soup, its log and the step read of each input."""
  ranked = []
  for path, step in inputs:
    flat, at = read_params(path, step)
    ranked.append((score(flat, path), path, at))
    del flat
  steps = [at for _, _, at in ranked]
  ranked.sort(key=lambda r: -r[0])
  log = [dict(input=p, step=s, alone=sc) for sc, p, s in ranked]
  best_score, path, step = ranked[0]
  total, _ = read_params(path, step)
  ref = spec_of(total)
  total = {k: v.astype(np.float64) for k, v in total.items()}
  kept, log[0]['kept'], log[0]['soup_score'] = 1, True, best_score
  for entry, (_, path, step) in zip(log[1:], ranked[1:]):
    flat, _ = read_params(path, step)
    check_same_tree(ref, flat, ranked[0][1], path)
    candidate = {k: ((total[k] + flat[k]) / (kept + 1)).astype(ref[k].dtype) for k in total}
    s = score(candidate, f'soup+{path}')
    entry.update(soup_score=s, kept=s >= best_score)
    if s >= best_score:
      for k in total:
        total[k] += flat[k]
      kept, best_score = kept + 1, s
    del flat, candidate
  return {k: (v / kept).astype(ref[k].dtype) for k, v in total.items()}, log, steps


def _training_evidence(directory: epath.Path) -> str | None:
  """What in `directory` shows a training run (a soup has neither), or None."""
  optimizer = sorted(directory.glob(f'{checkpoint.CHECKPOINT_DIR}/*/optimizer'))
  if optimizer:
    return f'{optimizer[0].relative_to(directory)}: optimizer state'
  if (directory / 'metrics.jsonl').exists():
    return 'metrics.jsonl'
  return None


def _existing(output: str) -> str:
  """What --output holds now: 'nothing' (absent or empty) or 'a soup'; anything else
  is a ValueError saying why a soup may not replace it."""
  path = storage.as_path(output)
  if not path.exists() or (path.is_dir() and not any(path.iterdir())):
    return 'nothing'
  if not path.is_dir():
    raise ValueError(f'--output={output} is a file; give a directory')
  evidence = _training_evidence(path)
  if evidence:
    raise ValueError(f'--output={output} holds a training run ({evidence}); a soup never '
                     'replaces one: choose a new directory')
  if not (path / 'soup.json').exists():
    raise ValueError(f'--output={output} is not empty and holds no soup (no soup.json); '
                     'choose a new directory')
  return 'a soup'


def check_output(output: str, inputs: list[str], overwrite: bool) -> None:
  """--output may not be an input or hold anything but nothing, or a soup with --overwrite."""
  if any(storage.same_place(output, path) for path in inputs):
    raise ValueError(f'--output={output} is one of --inputs; write the soup to a new directory')
  if _existing(output) == 'a soup' and not overwrite:
    raise ValueError(f'--output={output} already holds a soup; pass --overwrite to replace it')


def write_soup(output: str, params: Flat, template: str, record: dict) -> None:
  """Params-only checkpoint + the first ingredient's model.json/tokenizer.json/config.json
  + soup.json, written to a temporary sibling, then renamed to `output`; a previous soup
  there is replaced only once the new one is whole (never anything but a soup). On an
  object store a rename copies each object: a crash mid-rename can leave part of the
  soup at `output`, but never a soup.json (written last) beside a partial checkpoint."""
  target = storage.as_path(output)
  previous = _existing(output)
  partial = target.parent / f'.{target.name}.partial-{uuid.uuid4().hex[:12]}'
  storage.makedirs(partial)
  try:
    for f in ('model.json', 'tokenizer.json', 'config.json'):
      storage.copy_file(epath.Path(template) / f, partial / f)
    checkpoint.save_params_only(str(partial), unflatten_dict(params, sep='/'))
    storage.write_text(partial / 'soup.json', json.dumps(record, indent=2))
  except BaseException:
    partial.rmtree(missing_ok=True)
    raise
  if previous == 'a soup':
    replaced = target.parent / f'{partial.name}.replaced'
    target.rename(replaced)
    _move_dir(partial, target)
    replaced.rmtree()
  else:
    if target.is_dir():
      target.rmdir()  # empty
    _move_dir(partial, target)


def _move_dir(source: epath.Path, target: epath.Path) -> None:
  """A directory renamed: at once locally; object by object on an object store, soup.json
  last, so that a soup.json at `target` means the soup is whole."""
  if not storage.is_remote(source):
    source.rename(target)
    return
  marker = source / 'soup.json'
  for path in sorted(p for p in _files(source) if p != marker):
    storage.copy_file(path, target / path.relative_to(source))
  storage.copy_file(marker, target / 'soup.json')
  source.rmtree()


def _files(directory: epath.Path) -> Iterator[epath.Path]:
  """Every file under `directory` (epath's rglob and walk do not keep gs:// URIs)."""
  for path in directory.iterdir():
    if path.is_dir():
      yield from _files(path)
    else:
      yield path


def dev_scorer(suite: str, template: str, mesh_sizes: dict[str, int] | None = None,
               half: str = 'select') -> Callable[[Flat, str], float]:
  """Mean(Task) at the largest MRL dim of a params tree on one half of the dev suite;
  the model lives on `template`'s training mesh (or `mesh_sizes`), each tree placed
  into it."""
  # Here, not at the top: only a greedy soup scores (scikit-learn, SciPy: seconds of start-up).
  from gemini_embed.eval.suite_evaluation import evaluate_tasks
  folder, used = resolve_half(suite, half)
  logging.info('soup: greedy selection on %s (half: %s)', folder,
               used or 'none: a suite without halves, used whole')
  tasks = load_suite(folder)
  run = load_run(template, mesh_sizes=mesh_sizes)
  graphdef, state = nnx.split(run.model)
  shardings = {k: v.sharding for k, v in _flat(run.model).items()}
  dim = checkpoint.read_model_info(template).mrl_dims[-1]

  def score(flat: Flat, name: str) -> float:
    nnx.replace_by_pure_dict(state, unflatten_dict(
        {k: jax.device_put(flat[k], s) for k, s in shardings.items()}, sep='/'))
    model = nnx.merge(graphdef, state)
    res = evaluate_tasks(tasks, {'m': dataclasses.replace(run, model=model).encoder()}, [dim],
                         replicates=0)
    value = float(res['aggregates'][f'm@{dim}']['mean_task'])
    logging.info('soup: dev Mean(Task) of %s = %.4f', name, value)
    return value

  return score


def main(argv):
  del argv
  checkpoint.quiet_orbax_logs()
  inputs = [parse_input(i) for i in _INPUTS.value]
  template = inputs[0][0]
  if _WEIGHTS.value and _METHOD.value != 'weighted':
    raise app.UsageError(f'--weights={",".join(_WEIGHTS.value)}: only with --method=weighted '
                         f'(--method={_METHOD.value})')
  storage.check_writable(str(storage.as_path(_OUTPUT.value).parent), '--output')
  try:
    check_output(_OUTPUT.value, [path for path, _ in inputs], _OVERWRITE.value)
    weights = (parse_weights(_WEIGHTS.value, len(inputs)) if _METHOD.value == 'weighted'
               else [1.0] * len(inputs))
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  record = dict(method=_METHOD.value)
  if _METHOD.value == 'greedy':
    if not _SUITE.value:
      raise app.UsageError('--method=greedy needs --suite (a dev suite)')
    mesh = sharding.parse_mesh(_MESH.value) if _MESH.value else None
    params, record['greedy'], steps = greedy_soup(
        inputs, dev_scorer(_SUITE.value, template, mesh, _HALF.value))
    record['selected_on'] = dict(suite=_SUITE.value,
                                 half=resolve_half(_SUITE.value, _HALF.value)[1])
  else:
    record['weights'] = weights
    params, steps = weighted_average(inputs, weights)
  record['inputs'] = [dict(input=path, step=step) for (path, _), step in zip(inputs, steps)]
  write_soup(_OUTPUT.value, params, template, record)
  print(f'soup of {len(inputs)} ({_METHOD.value}) → {_OUTPUT.value}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['inputs', 'output'])
  app.run(main)
