"""Forward time of the real GGUF backbones as bidirectional embedders, on this host.

    python bench/forward_cpu.py [--models smollm2,gemma3-270m] [--batch 8] [--seq 128]

Each model comes from its model directory (fetched on first use, see
gemini_embed.models.fetch_offline), runs on one device in float32, jit-compiled;
the first call (compile + run) is timed apart, then `--repeats` calls give the
median. Another process on the same cores slows every number: compare rows of
one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import numpy as np
from flax import nnx
from tokenizers import Tokenizer

from gemini_embed import sharding
from gemini_embed.models import fetch_offline
from gemini_embed.models.gguf_import import is_gguf_model_dir, load_gguf_embedder


def matmul_flops(cfg, batch: int, seq: int) -> float:
  """Forward FLOPs of the backbone's matmuls (projections, MLP, attention scores/values)."""
  d, h, k, hd, f = cfg.width, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.mlp_dim
  per_token = 2 * (d * (h + 2 * k) * hd + h * hd * d + 3 * d * f)
  attention = 2 * 2 * h * hd * seq   # q·k and p·v against every key
  return batch * seq * cfg.num_layers * (per_token + attention)


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
  """This host's float32 jax matmul rate right now: the yardstick for the rows below."""
  x = jax.numpy.ones((n, n), jax.numpy.float32)
  f = jax.jit(lambda a: a @ a)
  f(x).block_until_ready()
  t0 = time.perf_counter()
  for _ in range(repeats):
    f(x).block_until_ready()
  return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e9


def bench(name: str, batch: int, seq: int, repeats: int, embed_dim: int) -> dict:
  directory = fetch_offline.default_model_dir(name)
  if not is_gguf_model_dir(directory):
    directory = fetch_offline.fetch(name)
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  t0 = time.perf_counter()
  model, cfg = load_gguf_embedder(directory, embed_dim, mesh, sharding.DEFAULT_RULES)
  load_s = time.perf_counter() - t0

  tok = Tokenizer.from_file(os.path.join(directory, 'tokenizer.json'))
  ids = tok.encode(' '.join([fetch_offline.__doc__] * 8)).ids
  tokens = np.resize(np.asarray(ids, np.int32), (batch, seq))
  valid = np.ones((batch, seq), bool)
  forward = nnx.jit(lambda m, t, v: m(t, v))

  t0 = time.perf_counter()
  forward(model, tokens, valid).block_until_ready()
  first_s = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    forward(model, tokens, valid).block_until_ready()
    times.append(time.perf_counter() - t0)
  median = statistics.median(times)
  params = sum(x.size for x in jax.tree.leaves(nnx.state(model.backbone, nnx.Param)))
  return dict(model=name, params_m=params / 1e6, layers=cfg.num_layers, load_s=load_s,
              compile_s=first_s - median, median_s=median, min_s=min(times),
              tokens_per_s=batch * seq / median,
              gflops=matmul_flops(cfg, batch, seq) / median / 1e9)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--models', default='smollm2,gemma3-270m')
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--seq', type=int, default=128)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--embed_dim', type=int, default=3072)
  args = parser.parse_args()
  print(f'{jax.devices()[0].platform} ({os.cpu_count()} cores), batch {args.batch} × '
        f'{args.seq} tokens, bidirectional, float32, median of {args.repeats}; '
        f'jax 2048² matmul: {matmul_peak_gflops():.0f} GFLOP/s')
  rows = [bench(m, args.batch, args.seq, args.repeats, args.embed_dim)
          for m in args.models.split(',')]
  print('| model | params (M) | layers | load (s) | compile (s) | forward median (s) | '
        'min (s) | tokens/s | matmul GFLOP/s |')
  print('|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['model']} | {r['params_m']:.0f} | {r['layers']} | {r['load_s']:.1f} | "
          f"{r['compile_s']:.1f} | {r['median_s']:.2f} | {r['min_s']:.2f} | "
          f"{r['tokens_per_s']:.0f} | {r['gflops']:.0f} |")


if __name__ == '__main__':
  main()
