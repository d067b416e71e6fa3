"""The points of a sweep: config overrides, their names, and where mixtures come from.

A point is a dict of config overrides, {'data.datasets.code_docstring.rate': 0.5, ...}.
Its name is its workdir under the sweep directory, and reads back to the same overrides
(`parse_point_name`), so a directory listing is the sweep:

    code_docstring-0.5                              one dataset's rate (the field
    code_docstring-0.31__gettext_bitext-0.05__...   `data.datasets.NAME.rate` is
    optim.learning_rate-0.0001__seed-2              written NAME); other fields in full

Parts are sorted by key, so a name does not depend on the order of the datasets.
Grid points come from the config's `sweep(add)`; Dirichlet points are mixtures of the
stage's datasets drawn around a prior (RegMix): Dirichlet(concentration · prior), the
prior being the datasets' sizes (rows) or the config's own rates, normalised.
"""

from __future__ import annotations

import types
from typing import Any

import ml_collections
import numpy as np

from gemini_embed.data import spec
from gemini_embed.data.sources import expand_files

PART_SEP, VALUE_SEP = '__', '-'
RATE_DIGITS = 3          # a sampled rate is rounded to this many decimals (names stay short)
MIN_RATE = 10 ** -RATE_DIGITS  # a rate must be > 0 (spec.check_data_config)
_FORBIDDEN = (PART_SEP, '/', ',', '=', ' ')  # path, evaluate --workdir and shell separators


def rate_field(dataset: str) -> str:
  return f'data.datasets.{dataset}.rate'


def _key(field: str, datasets: set[str]) -> str:
  parts = field.split('.')
  if len(parts) == 4 and field == rate_field(parts[2]) and parts[2] in datasets:
    return parts[2]
  return field


def _field(key: str, datasets: set[str]) -> str:
  return rate_field(key) if key in datasets else key


def _text(value: Any) -> str:
  return repr(value) if isinstance(value, float) else str(value)


def point_name(overrides: dict[str, Any], config: ml_collections.ConfigDict) -> str:
  """The workdir name of a point (module doc); ValueError when a value cannot be named."""
  if not overrides:
    raise ValueError('a sweep point overrides no field; every point needs at least one')
  datasets = set(config.data.datasets.keys())
  parts = []
  for field in sorted(overrides, key=lambda f: _key(f, datasets)):
    key, text = _key(field, datasets), _text(overrides[field])
    bad = [s for s in _FORBIDDEN if s in text or s in key]
    if bad or VALUE_SEP in key:
      raise ValueError(f'sweep point {overrides}: {field}={text!r} cannot be a directory name '
                       f'(it holds {bad or [VALUE_SEP]!r}); sweep over values without them')
    parts.append(f'{key}{VALUE_SEP}{text}')
  name = PART_SEP.join(parts)
  if len(name.encode()) > 255:
    raise ValueError(f'sweep point name is {len(name.encode())} bytes (> 255, too long for a '
                     f'directory): {name[:80]}...; sweep fewer fields at once')
  return name


def _field_value(config: ml_collections.ConfigDict, field: str) -> Any:
  node = config
  for part in field.split('.'):
    try:
      node = node[part]
    except KeyError:
      raise KeyError(f'sweep point field {field!r}: the config has no {part!r} there') from None
  return node


def _typed(text: str, like: Any, field: str) -> Any:
  if isinstance(like, bool):
    if text not in ('True', 'False'):
      raise ValueError(f'{field}: {text!r} is not True or False')
    return text == 'True'
  if isinstance(like, (int, float, str)):
    return type(like)(text)
  raise ValueError(f'{field}: a {type(like).__name__} field cannot be swept by name')


def parse_point_name(name: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The overrides a point name stands for, typed as the config's fields."""
  datasets = set(config.data.datasets.keys())
  overrides = {}
  for part in name.split(PART_SEP):
    key, sep, text = part.partition(VALUE_SEP)
    if not sep or not key:
      raise ValueError(f'{name!r}: part {part!r} is not KEY{VALUE_SEP}VALUE')
    field = _field(key, datasets)
    overrides[field] = _typed(text, _field_value(config, field), field)
  return overrides


def grid_points(module: types.ModuleType, path: str) -> list[dict[str, Any]]:
  """The config file's `sweep(add)`: one dict of overrides per `add(**overrides)`."""
  if not callable(getattr(module, 'sweep', None)):
    raise ValueError(f'{path} defines no sweep(add); add one (configs/finetune.py has an '
                     'example) or use --mode=dirichlet')
  points: list[dict[str, Any]] = []
  module.sweep(lambda **overrides: points.append(overrides))
  return points


def stage_rates(config: ml_collections.ConfigDict) -> dict[str, float]:
  """dataset → normalised mixture rate of the config's stage."""
  rates = {name: float(e.rate) for name, e in spec.stage_datasets(config).items()}
  total = sum(rates.values())
  return {name: r / total for name, r in rates.items()}


def dataset_sizes(config: ml_collections.ConfigDict) -> dict[str, int]:
  """Rows (lines) of each JSONL dataset of the stage: the size prior."""
  sizes = {}
  for name, entry in spec.stage_datasets(config).items():
    if entry.format != 'jsonl':
      raise ValueError(f'config.data.datasets.{name}: format {entry.format!r}; the size prior '
                       'counts JSONL lines only: use --prior=rates')
    n = 0
    for path in expand_files(name, entry.files, config.data.root):
      with open(path, 'rb') as f:
        n += sum(1 for line in f if line.strip())
    if not n:
      raise ValueError(f'config.data.datasets.{name}: {entry.files} under {config.data.root} '
                       'has no rows')
    sizes[name] = n
  return sizes


def prior(config: ml_collections.ConfigDict, kind: str) -> dict[str, float]:
  """The Dirichlet prior's mean: 'sizes' (dataset rows) or 'rates' (the config's)."""
  if kind == 'rates':
    return stage_rates(config)
  if kind != 'sizes':
    raise ValueError(f'prior {kind!r}: use sizes or rates')
  sizes = dataset_sizes(config)
  total = sum(sizes.values())
  return {name: n / total for name, n in sizes.items()}


def sample_mixtures(mean: dict[str, float], n: int, concentration: float,
                    rng: np.random.Generator) -> np.ndarray:
  """Float[n, D]: n draws of Dirichlet(concentration · mean), datasets in sorted order."""
  names = sorted(mean)
  alpha = concentration * np.array([mean[k] for k in names], np.float64)
  return rng.dirichlet(np.maximum(alpha, 1e-3), size=n)


def rounded_mixture(names: list[str], weights: np.ndarray) -> dict[str, float]:
  """Rates rounded to RATE_DIGITS decimals, each ≥ MIN_RATE (the pipeline wants > 0)."""
  return {k: max(round(float(w), RATE_DIGITS), MIN_RATE) for k, w in zip(names, weights)}


def dirichlet_points(mean: dict[str, float], n: int, concentration: float,
                     seed: int) -> list[dict[str, Any]]:
  """n distinct mixtures (RegMix's sampling) as rate overrides of every stage dataset."""
  names, rng = sorted(mean), np.random.default_rng(seed)
  points, seen = [], set()
  for _ in range(100):  # redraws only when rounding makes two draws equal
    for weights in sample_mixtures(mean, n, concentration, rng):
      rates = rounded_mixture(names, weights)
      key = tuple(rates.values())
      if key not in seen and len(points) < n:
        seen.add(key)
        points.append({rate_field(k): v for k, v in rates.items()})
    if len(points) == n:
      return points
  raise ValueError(f'could not draw {n} distinct mixtures at {RATE_DIGITS} decimals; '
                   'lower --n or --concentration')


def point_ratios(overrides: dict[str, Any], config: ml_collections.ConfigDict
                 ) -> dict[str, float]:
  """dataset → the normalised mixture a point trains on (the config's rates, overridden)."""
  rates = {name: float(e.rate) for name, e in spec.stage_datasets(config).items()}
  for name in rates:
    rates[name] = float(overrides.get(rate_field(name), rates[name]))
  total = sum(rates.values())
  return {name: r / total for name, r in rates.items()}
