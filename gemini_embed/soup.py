r"""Model soups: average the parameters of fine-tuned checkpoints.

    python -m gemini_embed.soup --inputs=DIR[:STEP],DIR[:STEP],... --output=DIR \
        [--method=uniform|weighted|greedy] [--weights=0.5,0.3,0.2] [--suite=DEV_SUITE] \
        [--mesh=data:-1,fsdp:2]

uniform   the arithmetic mean of every ingredient
weighted  Σ w_i θ_i / Σ w_i with --weights
greedy    ingredients sorted by dev score (Mean(Task) at the largest MRL dim on
          --suite, the model sharded over the first ingredient's training mesh or
          --mesh); each is kept only if the soup's dev score does not drop

Ingredients stream one at a time (memory ≈ the running sum + one checkpoint),
must share one architecture (an error names the first differing parameter), and
the output directory has a workdir's layout, so encode/evaluate/soup accept it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Callable

import jax
import numpy as np
from absl import app, flags, logging
from flax import nnx
from flax.traverse_util import flatten_dict, unflatten_dict

from gemini_embed import checkpoint, sharding
from gemini_embed.encoding import load_run
from gemini_embed.eval import evaluate_suite

_INPUTS = flags.DEFINE_list('inputs', None, 'Ingredients: DIR or DIR:STEP, comma-separated.')
_OUTPUT = flags.DEFINE_string('output', None, 'Soup directory to write.')
_METHOD = flags.DEFINE_enum('method', 'uniform', ['uniform', 'weighted', 'greedy'], 'How to mix.')
_WEIGHTS = flags.DEFINE_list('weights', [], 'One weight per input (method=weighted).')
_SUITE = flags.DEFINE_string('suite', None, 'Dev suite for method=greedy.')
_MESH = flags.DEFINE_string('mesh', None, 'Mesh to score on (method=greedy), e.g. data:-1,fsdp:2 '
                            "(default: the first input's config.json mesh).")

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


def weighted_average(inputs: list[tuple[str, int | None]], weights: list[float]) -> Flat:
  """Σ w_i θ_i / Σ w_i, reading one ingredient at a time (float64 accumulation)."""
  if len(weights) != len(inputs):
    raise ValueError(f'--weights: {len(weights)} weights for {len(inputs)} inputs')
  if any(w < 0 for w in weights) or sum(weights) <= 0:
    raise ValueError(f'--weights={weights}: must be non-negative with a positive sum')
  total, ref, first = None, None, None
  for (path, step), w in zip(inputs, weights):
    flat, at = read_params(path, step)
    logging.info('soup: + %s (step %d) × %g', path, at, w)
    if total is None:
      total, ref, first = {k: v.astype(np.float64) * w for k, v in flat.items()}, spec_of(flat), path
      continue
    check_same_tree(ref, flat, first, path)
    for k, v in flat.items():
      total[k] += v.astype(np.float64) * w
    del flat
  norm = float(sum(weights))
  return {k: (v / norm).astype(ref[k].dtype) for k, v in total.items()}


def greedy_soup(inputs: list[tuple[str, int | None]], score: Callable[[Flat, str], float]
                ) -> tuple[Flat, list[dict]]:
  """Wortsman et al.'s greedy soup: best-first, keep an ingredient iff dev does not drop.
  Holds the running sum and one candidate (plus the current soup for scoring)."""
  ranked = []
  for path, step in inputs:
    flat, at = read_params(path, step)
    ranked.append((score(flat, path), path, at))
    del flat
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
  return {k: (v / kept).astype(ref[k].dtype) for k, v in total.items()}, log


def write_soup(output: str, params: Flat, template: str, record: dict) -> None:
  """Params-only checkpoint + the first ingredient's model.json/tokenizer.json/config.json."""
  if os.path.exists(os.path.join(output, checkpoint.CHECKPOINT_DIR)):
    shutil.rmtree(os.path.join(output, checkpoint.CHECKPOINT_DIR))
  os.makedirs(output, exist_ok=True)
  for f in ('model.json', 'tokenizer.json', 'config.json'):
    shutil.copy(os.path.join(template, f), os.path.join(output, f))
  checkpoint.save_params_only(output, unflatten_dict(params, sep='/'))
  with open(os.path.join(output, 'soup.json'), 'w') as f:
    json.dump(record, f, indent=2)


def dev_scorer(suite: str, template: str, mesh_sizes: dict[str, int] | None = None
               ) -> Callable[[Flat, str], float]:
  """Mean(Task) at the largest MRL dim of a params tree on the dev suite; the model
  lives on `template`'s training mesh (or `mesh_sizes`), each tree placed into it."""
  run = load_run(template, mesh_sizes=mesh_sizes)
  graphdef, state = nnx.split(run.model)
  shardings = {k: v.sharding for k, v in _flat(run.model).items()}
  dim = checkpoint.read_model_info(template).mrl_dims[-1]

  def score(flat: Flat, name: str) -> float:
    nnx.replace_by_pure_dict(state, unflatten_dict(
        {k: jax.device_put(flat[k], s) for k, s in shardings.items()}, sep='/'))
    model = nnx.merge(graphdef, state)
    res = evaluate_suite(suite, {'m': dataclasses.replace(run, model=model).encoder()}, [dim])
    value = float(res['aggregates'][f'm@{dim}']['mean_task'])
    logging.info('soup: dev Mean(Task) of %s = %.4f', name, value)
    return value

  return score


def main(argv):
  del argv
  checkpoint.quiet_orbax_logs()
  inputs = [parse_input(i) for i in _INPUTS.value]
  template = inputs[0][0]
  record = dict(method=_METHOD.value, inputs=[dict(input=p, step=s) for p, s in inputs])
  if _METHOD.value == 'greedy':
    if not _SUITE.value:
      raise app.UsageError('--method=greedy needs --suite (a dev suite)')
    mesh = sharding.parse_mesh(_MESH.value) if _MESH.value else None
    params, record['greedy'] = greedy_soup(inputs, dev_scorer(_SUITE.value, template, mesh))
  else:
    weights = ([float(w) for w in _WEIGHTS.value] if _METHOD.value == 'weighted'
               else [1.0] * len(inputs))
    record['weights'] = weights
    params = weighted_average(inputs, weights)
  write_soup(_OUTPUT.value, params, template, record)
  print(f'soup of {len(inputs)} ({_METHOD.value}) → {_OUTPUT.value}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['inputs', 'output'])
  app.run(main)
