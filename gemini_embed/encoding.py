"""Texts → embeddings with an Embedder on a mesh: prompt, tokenise, batch by length.

Used by `encode`, `evaluate` and the trainer's periodic evaluation. Queries get
the task prompt (`task: {task} | query: {text}`), documents the document
template; texts are sorted by token length and cut into fixed-size batches
padded to the data pipeline's length buckets, so the embed step compiles once
per bucket. Output rows are in input order.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import jax
import numpy as np
from flax import nnx
from tqdm import tqdm

from gemini_embed import sharding as sharding_lib
from gemini_embed.data.prompts import format_document, format_query
from gemini_embed.data.spec import DOC_TEMPLATE, QUERY_TEMPLATE
from gemini_embed.data.tokenization import encoders_from_config

KINDS = ('query', 'document')


class TextEncoder:
  """`encoder(texts, kind, task) -> F32[N, embed_dim]` (un-normalised)."""

  def __init__(self, model, tokenizer, family: str, data_config, mesh, rules, *,
               batch_size: int = 64, query_template: str = QUERY_TEMPLATE,
               doc_template: str = DOC_TEMPLATE, progress: bool = False):
    self.query_side, self.doc_side = encoders_from_config(data_config, family, tokenizer)
    dp = sharding_lib.batch_sharding(mesh, rules, 2)
    shards = int(np.prod([mesh.shape[a] for a in _batch_axes(rules)]))
    self.batch_size = -(-batch_size // shards) * shards  # a multiple of the data-parallel size
    self.sharding = dp
    self.query_template, self.doc_template = query_template, doc_template
    self.progress = progress
    graphdef, state = nnx.split(model)
    self._embed = jax.jit(lambda state, t, v: nnx.merge(graphdef, state)(t, v))
    self._state = state

  def prompts(self, texts: Sequence[str], kind: str, task: str) -> list[str]:
    if kind == 'query':
      return [format_query(t, task, self.query_template) for t in texts]
    if kind == 'document':
      return [format_document(t, None, self.doc_template) for t in texts]
    raise ValueError(f'kind={kind!r}: use one of {KINDS}')

  def __call__(self, texts: Sequence[str], kind: str, task: str) -> np.ndarray:
    side = self.query_side if kind == 'query' else self.doc_side
    ids = side.token_lists(self.prompts(texts, kind, task))
    order = np.argsort([len(t) for t in ids], kind='stable')
    out = None
    starts = range(0, len(ids), self.batch_size)
    for start in tqdm(starts, desc=f'encode {len(ids)} {kind} texts',
                      disable=None if self.progress else True, leave=False):  # None: TTY only
      rows = order[start:start + self.batch_size]
      chunk = [ids[i] for i in rows] + [[]] * (self.batch_size - len(rows))
      tokens, valid = side.pad(chunk)
      tokens, valid = jax.device_put((tokens, valid), self.sharding)
      emb = np.asarray(jax.device_get(self._embed(self._state, tokens, valid)))[:len(rows)]
      if out is None:
        out = np.zeros((len(ids), emb.shape[1]), np.float32)
      out[rows] = emb
    return out if out is not None else np.zeros((0, 0), np.float32)


def _batch_axes(rules) -> tuple[str, ...]:
  axes = dict(rules).get('batch', ())
  return (axes,) if isinstance(axes, str) else tuple(axes or ())


def load_run(directory: str, mesh, rules, step: int | None = None):
  """(model, tokenizer, family, data_config, step) of a training workdir or soup output."""
  import ml_collections
  from tokenizers import Tokenizer

  from gemini_embed import checkpoint
  from gemini_embed.train_state import sharded_targets

  info = checkpoint.read_model_info(directory)
  cfg = info.model.replace(attention_mode='bidirectional', remat='none')
  abstract = dataclasses.replace(info, model=cfg).abstract_embedder()
  graphdef, state = nnx.split(abstract)
  params, step = checkpoint.restore_params(directory, sharded_targets(state, mesh, rules), step)
  nnx.replace_by_pure_dict(state, params)
  tokenizer = Tokenizer.from_file(os.path.join(directory, 'tokenizer.json'))
  with open(os.path.join(directory, 'config.json')) as f:
    run_config = ml_collections.ConfigDict(__import__('json').load(f))
  return nnx.merge(graphdef, state), tokenizer, cfg.family, run_config.data, step
