"""Benchmark (not a test): encoding throughput of our `TextEncoder` (what
`python -m gemini_embed.encode` runs) against the same model in PyTorch, measured
side by side in one run.

    python bench/encode_throughput.py [--layers 4] [--texts 512] [--batch 64]
                                      [--kinds query,document] [--repeats 2] [--torch_threads 2]

The model is the demo's (configs/demo.py): SmolLM2-135M's first `--layers` layers,
bidirectional, mean pool → 768-dim head, float32. The texts are real: the first
`--texts` documented Python stdlib functions, their docstring summaries as queries
and their code as documents.

  * ours: `TextEncoder(texts, kind, task)`: prompt, tokenise, sort by length, pad
    to the pipeline's buckets (queries ≤ 32, documents ≤ 64 tokens), one jitted
    forward per batch of `--batch`;
  * ours, packed (`config.data.pack`, on in the demo): texts best-fit into rows of
    32 / 64 tokens, `--batch` rows per call (attention within a text);
  * PyTorch: the same prompts, token lists, order and padded batches (our
    tokenisation code, so only the model differs), through transformers'
    LlamaModel (full bidirectional 4D padding mask, SDPA) + sentence-transformers
    Pooling('mean') + Dense, under `torch.inference_mode()`.

Both outputs must agree (same weights, same head) before anything is timed. One
untimed pass per system (compilation, allocator warm-up), then `--repeats` passes
per system, the systems taking turns; the table gives the median pass.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import numpy as np
import torch
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402  (also puts the repository on sys.path)

from gemini_embed import sharding  # noqa: E402
from gemini_embed.encoding import TextEncoder  # noqa: E402
from gemini_embed.models.gguf_import import gguf_file  # noqa: E402

TASK = 'code retrieval'


def torch_encode(peer, encoder: TextEncoder, texts, kind: str, task: str) -> np.ndarray:
  """TextEncoder.__call__ with the PyTorch model in place of the jitted forward."""
  side = encoder.query_side if kind == 'query' else encoder.doc_side
  ids = side.token_lists(encoder.prompts(texts, kind, task))
  order = np.argsort([len(t) for t in ids], kind='stable')
  out = None
  for start in range(0, len(ids), encoder.batch_size):
    rows = order[start:start + encoder.batch_size]
    chunk = [ids[i] for i in rows] + [[]] * (encoder.batch_size - len(rows))
    tokens, valid = side.pad(chunk)
    emb = ref.torch_embed(peer, tokens, valid)[:len(rows)]
    if out is None:
      out = np.zeros((len(ids), emb.shape[1]), np.float32)
    out[rows] = emb
  return out


def real_tokens(encoder: TextEncoder, texts, kind: str) -> int:
  side = encoder.query_side if kind == 'query' else encoder.doc_side
  return sum(len(t) for t in side.token_lists(encoder.prompts(texts, kind, TASK)))


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('--layers', type=int, default=4, help="SmolLM2's first N layers (demo: 4)")
  ap.add_argument('--texts', type=int, default=512, help='texts per kind')
  ap.add_argument('--batch', type=int, default=64, help="TextEncoder's batch size (its default)")
  ap.add_argument('--kinds', default='query,document')
  ap.add_argument('--repeats', type=int, default=2, help='timed passes per system and kind')
  ap.add_argument('--torch_threads', type=int, default=2)
  args = ap.parse_args()
  torch.set_num_threads(args.torch_threads)
  t_start = time.perf_counter()

  config = ref.demo_config(args.layers)
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  model, cfg = ref.load_ours(config, mesh, config.sharding_rules)
  tokenizer = Tokenizer.from_file(os.path.join(config.init_from, 'tokenizer.json'))
  encoder, packed = [TextEncoder(model, tokenizer, cfg.family, config.data, mesh,
                                 config.sharding_rules, batch_size=args.batch, pack=pack)
                     for pack in (False, True)]
  peer = ref.torch_embedder(gguf_file(config.init_from), cfg.num_layers, ref.projection_of(model))
  pairs = ref.stdlib_pairs(args.texts)
  corpus = {'query': [q for q, _ in pairs], 'document': [d for _, d in pairs]}
  systems = {'ours (JAX, TextEncoder)': lambda texts, kind: encoder(texts, kind, TASK),
             'ours, packed (config.data.pack)': lambda texts, kind: packed(texts, kind, TASK),
             'PyTorch (transformers + sentence-transformers)':
                 lambda texts, kind: torch_encode(peer, encoder, texts, kind, TASK)}

  rows = []
  for kind in args.kinds.split(','):
    texts = corpus[kind]
    outputs, times = {}, {name: [] for name in systems}
    for name, run in systems.items():  # warm-up: compiles our one step per length bucket
      t0 = time.perf_counter()
      outputs[name] = run(texts, kind)
      print(f'# {kind}: {name}: warm-up pass {time.perf_counter() - t0:.1f} s', flush=True)
    *ours_out, theirs_out = outputs.values()
    rel = max(ref.check_same_embeddings(o, theirs_out, what=f'{kind} embeddings') for o in ours_out)
    for _ in range(args.repeats):
      for name, run in systems.items():
        time.sleep(0.5)  # let the other runtime's worker threads stop spinning
        t0 = time.perf_counter()
        run(texts, kind)
        times[name].append(time.perf_counter() - t0)
    tokens = real_tokens(encoder, texts, kind)
    med = {name: statistics.median(t) for name, t in times.items()}
    for name in systems:
      rows.append((kind, name, med[name], len(texts) / med[name], tokens / med[name], rel))
    ours, ours_packed, theirs = med.values()
    rows.append((kind, 'ratio ours / PyTorch', None, theirs / ours, None, None))
    rows.append((kind, 'ratio ours, packed / PyTorch', None, theirs / ours_packed, None, None))

  print(f'\n{jax.devices()[0].platform}, {os.cpu_count()} cores, torch threads '
        f'{torch.get_num_threads()}; SmolLM2-135M first {cfg.num_layers} layers → '
        f'{config.embed_dim}-dim head; {args.texts} stdlib texts per kind, batch '
        f'{encoder.batch_size}; median of {args.repeats} passes after 1 warm-up; total run '
        f'{time.perf_counter() - t_start:.0f} s')
  print('\n| kind | system | pass (s) | texts/s | tokens/s | max rel diff |')
  print('|---|---|---|---|---|---|')
  for kind, name, sec, texts_s, tok_s, rel in rows:
    if sec is None:
      print(f'| {kind} | **{name}** | | **{texts_s:.2f}×** | | |')
    else:
      print(f'| {kind} | {name} | {sec:.2f} | {texts_s:.1f} | {tok_s:.0f} | {rel:.1e} |')


if __name__ == '__main__':
  main()
