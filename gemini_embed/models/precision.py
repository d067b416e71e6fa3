"""The precision policy: one `config.model.precision` string, jmp/levanter style.

    'params=float32,compute=bfloat16,output=float32'

params: the stored parameters (and so the optimiser's moments); compute: the
residual stream and the matmuls (norms, RoPE and softmax stay float32); output: the
embeddings the Embedder returns. Pooling, the projection, similarities and the loss
are float32 whatever the policy. The default is float32 throughout: on CPU, bf16 is
slower.
"""

from __future__ import annotations

import dataclasses
import functools

import jax.numpy as jnp

DTYPES = ('float32', 'bfloat16', 'float16')
KEYS = ('params', 'compute', 'output')
DEFAULT = 'params=float32,compute=float32,output=float32'
EXAMPLE = 'params=float32,compute=bfloat16,output=float32'


@dataclasses.dataclass(frozen=True)
class Precision:
  param_dtype: jnp.dtype
  compute_dtype: jnp.dtype
  output_dtype: jnp.dtype


def policy_string(params: str, compute: str, output: str = 'float32') -> str:
  """The policy string of three dtype names (e.g. an old model.json's dtype fields)."""
  return f'params={params},compute={compute},output={output}'


@functools.lru_cache(maxsize=32)
def parse_precision(text: str, field: str = 'config.model.precision') -> Precision:
  """'params=…,compute=…,output=…' → Precision; a ValueError naming `field` otherwise."""
  def bad(why):
    return ValueError(f'{field}={text!r}: {why}; write {"=…,".join(KEYS)}=… with each of '
                      f'{", ".join(DTYPES)}, e.g. {EXAMPLE!r}')

  if not isinstance(text, str):
    raise bad('not a string')
  found = {}
  for item in text.split(','):
    key, eq, value = (s.strip() for s in item.partition('='))
    if not eq:
      raise bad(f'{item.strip()!r} is not KEY=DTYPE')
    if key not in KEYS:
      raise bad(f'unknown key {key!r}')
    if key in found:
      raise bad(f'{key!r} given twice')
    if value not in DTYPES:
      raise bad(f'{key}={value} is not a supported dtype')
    found[key] = jnp.dtype(value)
  missing = [k for k in KEYS if k not in found]
  if missing:
    raise bad(f'missing {", ".join(map(repr, missing))}')
  return Precision(found['params'], found['compute'], found['output'])


def from_old_fields(model: dict, prefix: str) -> dict:
  """Model fields written before the policy (a model.json with `dtype` (compute) and
  `param_dtype`) with those two mapped into `precision` (output float32, as then)."""
  if 'dtype' not in model and 'param_dtype' not in model:
    return model
  if 'precision' in model:
    raise ValueError(f'{prefix}: both precision and the old dtype/param_dtype fields; keep '
                     'only precision')
  model = dict(model)
  compute, params = model.pop('dtype', 'float32'), model.pop('param_dtype', 'float32')
  for field, value in (('dtype', compute), ('param_dtype', params)):
    if value not in DTYPES:
      raise ValueError(f'{prefix}.{field}={value!r}: choose one of {DTYPES}')
  model['precision'] = policy_string(params, compute)
  return model
