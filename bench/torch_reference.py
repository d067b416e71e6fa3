"""The demo model built twice, for the side-by-side benchmarks: ours (JAX/NNX) and the
same model as a PyTorch peer (transformers + sentence-transformers).

    GGUF (SmolLM2) ──load_gguf_embedder──────────────────────▶ our Embedder (first N layers)
                   ──transformers' GGUF loader → LlamaModel ─▶ SentenceTransformer:
                       BidirectionalLlama → Pooling('mean') → Dense(width → embed_dim, no bias)

The PyTorch backbone reads the file through transformers' own GGUF tensor loader
(tests/models/gguf_reference.py), keeps the first N decoder layers and runs them
under a full (bidirectional) 4D mask that hides only padding keys. The Dense head
starts from a copy of our random projection, so both systems compute the same
function (`check_same_embeddings` asserts it before anything is timed).

Shared by bench/train_throughput.py and bench/encode_throughput.py; also the stdlib
texts both use (docstring summaries as queries, function code as documents).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense, Module, Pooling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from configs import demo  # noqa: E402
from gemini_embed.data.corpora.python_stdlib import module_functions, stdlib_files  # noqa: E402
from gemini_embed.models.gguf_import import is_gguf_model_dir  # noqa: E402
from gemini_embed.models.pretrained import load_init_from  # noqa: E402
from tests.models.gguf_reference import transformers_gguf_model  # noqa: E402


# ---------------------------------------------------------------------------- texts

def stdlib_pairs(limit: int) -> list[tuple[str, str]]:
  """(docstring summary, function code) of the first `limit` documented stdlib functions."""
  pairs = []
  for module, path in stdlib_files():
    with open(path, encoding='utf-8', errors='replace') as f:
      pairs.extend((fn.summary, fn.code) for fn in module_functions(module, f.read()))
    if len(pairs) >= limit:
      break
  return pairs[:limit]


# ---------------------------------------------------------------------------- ours

def demo_config(layers: int, batch_size: int | None = None):
  """configs/demo.py (pre-finetuning stage) with the first `layers` LLM layers."""
  config = demo.get_config(f'layers={layers}')
  if batch_size:
    config.batch_size = batch_size
  return config


def load_ours(config, mesh, rules):
  """(Embedder, TransformerConfig) exactly as the trainer imports `config.init_from`."""
  if not is_gguf_model_dir(config.init_from):
    raise SystemExit(f'{config.init_from}: no GGUF model directory; run '
                     '`python -m gemini_embed.models.fetch_offline smollm2` first')
  return load_init_from(config, mesh, rules)


def projection_of(model) -> np.ndarray:
  """Our head F32[width, embed_dim] as a host array."""
  return np.asarray(model.projection[...], np.float32)


# ---------------------------------------------------------------------------- PyTorch peer

def torch_embedder(gguf_path: str, num_layers: int, projection: np.ndarray, attn: str = 'sdpa'):
  """A SentenceTransformer: first `num_layers` of transformers' LlamaModel (bidirectional),
  mean pooling, and a bias-free Dense head initialised from `projection` [width, D]."""
  llama = transformers_gguf_model(gguf_path).model  # drop the LM head
  llama.layers = llama.layers[:num_layers]
  llama.config.num_hidden_layers = num_layers
  llama.config._attn_implementation = attn
  width, embed_dim = projection.shape
  head = Dense(width, embed_dim, bias=False, activation_function=torch.nn.Identity(),
               init_weight=torch.tensor(projection.T.copy()))
  model = SentenceTransformer(modules=[BidirectionalLlama(llama), Pooling(width, 'mean'), head],
                              device='cpu')
  return model.float()


class BidirectionalLlama(Module):
  """features {input_ids, attention_mask} → + token_embeddings, every token seeing every
  real token: an additive F32[B, 1, S, S] mask (0 = attend, min = padding key), which
  transformers hands to the attention kernel as-is (it makes no causal mask then)."""

  def __init__(self, llama):
    super().__init__()
    self.llama = llama

  def forward(self, features):
    valid = features['attention_mask'].bool()
    b, s = valid.shape
    mask = torch.zeros(b, 1, s, s, dtype=torch.float32)
    mask.masked_fill_(~valid[:, None, None, :], torch.finfo(torch.float32).min)
    out = self.llama(input_ids=features['input_ids'], attention_mask=mask)
    features['token_embeddings'] = out.last_hidden_state
    return features

  def save(self, *args, **kwargs):  # a benchmark model, never written to disk
    raise NotImplementedError


def features(tokens: np.ndarray, valid: np.ndarray) -> dict:
  return {'input_ids': torch.from_numpy(tokens.astype(np.int64)),
          'attention_mask': torch.from_numpy(valid.astype(np.int64))}


def torch_embed(model, tokens: np.ndarray, valid: np.ndarray) -> np.ndarray:
  with torch.inference_mode():
    return model(features(tokens, valid))['sentence_embedding'].numpy()


def check_same_embeddings(ours: np.ndarray, theirs: np.ndarray, what: str) -> float:
  """Relative max difference of the two systems' embeddings; stops the run if they differ."""
  rel = float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-12))
  if not rel < 1e-3:
    raise SystemExit(f'{what}: JAX and PyTorch embeddings differ (max rel {rel:.2e}); the two '
                     'models are not the same function, so their timings are not comparable')
  return rel


# ---------------------------------------------------------------------------- timing

def matmul_peaks(n: int, repeats: int = 3) -> dict[str, float]:
  """GFLOP/s of an n×n float32 matmul in jax (jit), numpy and torch, measured now."""
  a = np.random.default_rng(0).standard_normal((n, n), np.float32)
  ja = jnp.asarray(a)
  jmm = jax.jit(lambda x: x @ x)
  ta = torch.from_numpy(a)
  runs = {'jax': lambda: jmm(ja).block_until_ready(), 'numpy': lambda: a @ a,
          'torch': lambda: ta @ ta}
  return {name: 2 * n ** 3 / median_time(f, warmup=1, repeats=repeats) / 1e9
          for name, f in runs.items()}


def median_time(f, *, warmup: int, repeats: int) -> float:
  time.sleep(0.5)  # let other thread pools (XLA, OpenBLAS, OpenMP) stop spinning first
  for _ in range(warmup):
    f()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    f()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)
