"""Texts → embeddings with an Embedder on a mesh: prompt, tokenise, batch by length.

Used by `encode`, `evaluate`, `soup` (on a run restored by `load_run`, sharded
as it was in training) and the trainer's periodic evaluation. Queries get
the task prompt (`task: {task} | query: {text}`), documents the document
template; texts are sorted by token length and cut into fixed-size batches
padded to the data pipeline's length buckets, so the embed step compiles once
per bucket. With `config.data.pack` (the run's, or `pack=`), texts are instead
packed into rows of max_len tokens (best-fit decreasing, data/packing.py; attention
stays within a text, so each embedding is that of the text alone) and each call
holds `batch_size` rows: far fewer padding tokens, at most eight row counts and a few
text counts per side to compile. Output rows are in input order.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Mapping, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging
from etils import epath
from flax import nnx
from jax.sharding import Mesh
from tokenizers import Tokenizer
from tqdm import tqdm

from gemini_embed import checkpoint
from gemini_embed import sharding as sharding_lib
from gemini_embed.data import packing
from gemini_embed.data.prompts import format_document, format_query
from gemini_embed.data.spec import DOC_TEMPLATE, QUERY_TEMPLATE
from gemini_embed.data.tokenization import encoders_from_config
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.tokenizer import TOKENIZER_FILE, read_tokenizer

KINDS = ('query', 'document')


class TextEncoder:
  """`encoder(texts, kind, task) -> F32[N, embed_dim]` (un-normalised)."""

  def __init__(self, model, tokenizer, family: str, data_config, mesh, rules, *,
               batch_size: int = 64, query_template: str = QUERY_TEMPLATE,
               doc_template: str = DOC_TEMPLATE, progress: bool = False,
               pack: bool | None = None):
    self.query_side, self.doc_side = encoders_from_config(data_config, family, tokenizer)
    shards = sharding_lib.data_parallel_size(mesh, rules)
    self.batch_size = -(-batch_size // shards) * shards  # a multiple of the data-parallel size
    self.sharding = sharding_lib.batch_sharding(mesh, rules, 2)
    self.query_template, self.doc_template = query_template, doc_template
    self.progress = progress
    self.pack = bool(data_config.get('pack', False)) if pack is None else pack
    self._shards = shards
    graphdef, state = nnx.split(model)

    def embed(state, tokens, valid):
      with sharding_lib.activation_sharding(mesh, rules):
        return nnx.merge(graphdef, state)(tokens, valid)

    def embed_packed(state, arrays, num_texts):
      with sharding_lib.activation_sharding(mesh, rules):
        return nnx.merge(graphdef, state).embed_packed(**arrays, num_texts=num_texts)
    self._embed = jax.jit(embed)
    self._embed_packed = jax.jit(embed_packed, static_argnames='num_texts')
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
    if self.pack:
      return self._encode_packed(ids, side.max_len, kind)
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

  def _row_counts(self, num_rows: int) -> list[int]:
    """Rows per call: `batch_size` while that many remain, then the smallest multiple of
    batch_size/8 (and of the data-parallel size) that holds the rest: at most 8 row counts."""
    full, rest = divmod(num_rows, self.batch_size)
    counts = [self.batch_size] * full
    if rest:
      step = -(-self.batch_size // 8 // self._shards) * self._shards
      counts.append(min(self.batch_size, -(-rest // step) * step))
    return counts

  def _encode_packed(self, ids: list[list[int]], row_length: int, kind: str) -> np.ndarray:
    rows = packing.best_fit_rows([len(t) for t in ids], row_length)
    out, start = None, 0
    for num_rows in tqdm(self._row_counts(len(rows)), desc=f'encode {len(ids)} {kind} texts',
                         disable=None if self.progress else True, leave=False):
      call = rows[start:start + num_rows]
      start += num_rows
      texts = [i for row in call for i in row]
      num_texts = max(64, 1 << (len(texts) - 1).bit_length())  # few static sizes
      arrays = packing.fill_rows(ids, call, {i: k for k, i in enumerate(texts)},
                                 (num_rows, row_length), num_texts)
      arrays = jax.device_put(arrays, self.sharding)
      emb = np.asarray(jax.device_get(self._embed_packed(self._state, arrays, num_texts)))
      if out is None:
        out = np.zeros((len(ids), emb.shape[1]), np.float32)
      out[texts] = emb[:len(texts)]
    return out if out is not None else np.zeros((0, 0), np.float32)


@dataclasses.dataclass
class Run:
  """A training workdir or soup, restored for inference on the mesh it asks for."""
  model: Embedder
  tokenizer: Tokenizer
  family: str
  config: ml_collections.ConfigDict  # the run's config.json
  step: int
  mesh: Mesh
  rules: tuple

  def encoder(self, **kwargs) -> TextEncoder:
    """A TextEncoder of this run (kwargs: batch_size, templates, progress)."""
    return TextEncoder(self.model, self.tokenizer, self.family, self.config.data, self.mesh,
                       self.rules, **kwargs)


def run_mesh(directory: str, run_config, mesh_sizes: Mapping[str, int] | None = None
             ) -> tuple[Mesh, tuple]:
  """The mesh and rules to run a model on: its training run's (config.json `mesh`,
  `sharding_rules`), or `mesh_sizes` (a tool's --mesh) over the same rules, so a
  pod-size model is sharded at inference as it was in training."""
  field = '--mesh' if mesh_sizes is not None else f'{directory}/config.json: mesh'
  # a multi-slice run's mesh, on whatever devices are here: its per-slice sizes
  sizes = mesh_sizes if mesh_sizes is not None else dict(run_config.mesh, slices=1)
  try:
    mesh = sharding_lib.make_mesh(sizes, field=field)
  except ValueError as e:
    raise ValueError(f'{e}; pass --mesh=data:-1,fsdp:N,tensor:M to fit these devices') from None
  return mesh, sharding_lib.as_rules(run_config.sharding_rules)


def load_run(directory: str, step: int | None = None,
             mesh_sizes: Mapping[str, int] | None = None) -> Run:
  """A training workdir or soup output at `step` (default: latest), sharded by `run_mesh`."""
  config_json = (epath.Path(directory) / 'config.json').read_text()
  run_config = ml_collections.ConfigDict(json.loads(config_json))
  mesh, rules = run_mesh(directory, run_config, mesh_sizes)
  model, step = checkpoint.restore_embedder(
      directory, step, mesh, rules, policies=dict(attention_mode='bidirectional', remat='none'))
  tokenizer = read_tokenizer(epath.Path(directory) / TOKENIZER_FILE)
  return Run(model, tokenizer, model.backbone.cfg.family, run_config, step, mesh, rules)


def check_dims(directory: str, dims: Sequence[int], flag: str) -> None:
  """A tool's `flag` (--dim, --dims) against the run's model.json, before any work: a dim
  above embed_dim is a ValueError; one that is not a trained MRL prefix is allowed (its
  prefix, re-normalised, as sentence-transformers' truncate_dim) with a warning."""
  info = checkpoint.read_model_info(directory)
  for dim in dims:
    if not 0 < dim <= info.embed_dim:
      raise ValueError(f'{flag}={dim}: {directory} embeds into {info.embed_dim} dimensions '
                       f'(MRL prefixes {info.mrl_dims}); give a width from 1 to {info.embed_dim}')
    if dim not in info.mrl_dims:
      logging.warning('%s=%d is not one of the MRL prefixes %s of %s; its embeddings are '
                      'truncated and re-normalised all the same, but were not trained at '
                      'that width', flag, dim, info.mrl_dims, directory)
