"""Benchmark (not a test): step time and compiled memory of `loss_and_grads`
with and without gradient caching, batch sizes 256 → 8192.

    python bench/grad_cache.py [--batch_sizes=256,512,...] [--chunk=256] [--seq=16]
                               [--repeats=3] [--max_full=8192] [--model=tiny]

The encoder is the `configs/prefinetune.py:tiny` model (the 'tiny' preset,
96-dim head with MRL 32/64/96); queries and positives of `--seq` tokens, no
hard negatives (pre-finetuning). One process, the default JAX devices. Time =
median of `--repeats` runs after one warm-up (compile excluded, reported
apart); memory = XLA's buffer assignment of the compiled step
(`memory_analysis()`): temp (activations and scratch) and total (arguments +
outputs + temp − aliased). The step is the loss and gradients only (no
optimizer update).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

import jax
import numpy as np
from flax import nnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gemini_embed.data.batch import Batch  # noqa: E402
from gemini_embed.train_step import loss_and_grads  # noqa: E402
from gemini_embed.models.embedder import Embedder  # noqa: E402
from gemini_embed.models.model_config import TransformerConfig  # noqa: E402
from gemini_embed.models.presets import model_config  # noqa: E402


def tiny_config(model: str):
  spec = importlib.util.spec_from_file_location('cfg', os.path.join(ROOT, 'configs', 'prefinetune.py'))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config('tiny')
  config.model = model_config(model)
  return config


def random_batch(rng, b, seq, vocab):
  tokens = lambda: rng.integers(1, vocab, (b, seq)).astype(np.int32)
  valid = lambda: np.arange(seq)[None] < rng.integers(seq // 2, seq + 1, (b, 1))
  return Batch(query_tokens=tokens(), query_valid=valid(), pos_tokens=tokens(), pos_valid=valid(),
               query_id=np.arange(b, dtype=np.int32), pos_id=np.arange(b, dtype=np.int32))


def measure(config, graphdef, state, batch, chunk, repeats):
  def step(state, batch):
    return loss_and_grads(nnx.merge(graphdef, state), batch, mrl_dims=config.mrl_dims,
                          loss_config=config.loss, grad_cache_chunk=chunk)

  t0 = time.perf_counter()
  compiled = jax.jit(step).lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  temp = mem.temp_size_in_bytes
  total = mem.argument_size_in_bytes + mem.output_size_in_bytes + temp - mem.alias_size_in_bytes
  out = dict(time=float('nan'), compile=compile_s, temp=temp, total=total, loss=float('nan'))
  try:
    jax.block_until_ready(compiled(state, batch))  # warm-up
    times = []
    for _ in range(repeats):
      t0 = time.perf_counter()
      loss, _, grads = compiled(state, batch)
      jax.block_until_ready((loss, grads))
      times.append(time.perf_counter() - t0)
    out.update(time=statistics.median(times), loss=float(loss))
  except jax.errors.JaxRuntimeError as e:  # out of memory: the table shows nan s/step
    print(f'# B={batch.size} chunk={chunk}: {str(e).splitlines()[0][:120]}', flush=True)
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('--batch_sizes', default='256,512,1024,2048,4096,8192')
  ap.add_argument('--chunk', type=int, default=256)
  ap.add_argument('--seq', type=int, default=16)
  ap.add_argument('--repeats', type=int, default=3)
  ap.add_argument('--max_full', type=int, default=8192,
                  help='largest batch to run without caching (its activations grow with B)')
  ap.add_argument('--model', default='tiny', help='a preset of gemini_embed/models/presets.py')
  ap.add_argument('--paper_head', action='store_true',
                  help='the 3072-dim head with MRL (768, 1536, 3072) instead of the tiny 96')
  args = ap.parse_args()

  config = tiny_config(args.model)
  if args.paper_head:
    config.embed_dim, config.mrl_dims = 3072, (768, 1536, 3072)
  cfg = TransformerConfig.from_config(config.model)
  model = jax.jit(lambda: nnx.state(Embedder(cfg, config.embed_dim, nnx.Rngs(0))))()
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: Embedder(cfg, config.embed_dim, nnx.Rngs(0))))
  rng = np.random.default_rng(0)
  print(f'# {jax.device_count()} {jax.devices()[0].platform} device(s), {os.cpu_count()} cores; '
        f"model '{args.model}' ({cfg.num_layers} layers, width {cfg.width}), head {config.embed_dim} "
        f'MRL {tuple(config.mrl_dims)}, seq {args.seq}, chunk {args.chunk}, median of {args.repeats}')
  header = (f"{'batch':>6} | {'full s/step':>11} {'temp MiB':>9} {'total MiB':>9} | "
            f"{'cached s/step':>13} {'temp MiB':>9} {'total MiB':>9} | {'time x':>6} {'mem /':>6}")
  print(header)
  print('-' * len(header))
  mib = 2 ** 20
  for b in (int(x) for x in args.batch_sizes.split(',')):
    batch = jax.device_put(random_batch(rng, b, args.seq, cfg.vocab_size))
    cached = measure(config, graphdef, model, batch, args.chunk, args.repeats)
    full = measure(config, graphdef, model, batch, 0, args.repeats) if b <= args.max_full else None
    if full is not None:
      if not abs(full['loss'] - cached['loss']) <= 1e-4 * abs(full['loss']):
        print(f"# B={b}: loss full {full['loss']} vs cached {cached['loss']}")
      f = f"{full['time']:11.3f} {full['temp'] / mib:9.1f} {full['total'] / mib:9.1f}"
      ratio = f"{cached['time'] / full['time']:6.2f} {full['temp'] / cached['temp']:6.1f}"
    else:
      f, ratio = f"{'skipped':>11} {'':9} {'':9}", f"{'':6} {'':6}"
    print(f"{b:6d} | {f} | {cached['time']:13.3f} {cached['temp'] / mib:9.1f} "
          f"{cached['total'] / mib:9.1f} | {ratio}", flush=True)
  print('time x = cached/full step time; mem / = full/cached temp memory; '
        'a chunk >= the batch runs the plain path')


if __name__ == '__main__':
  main()
