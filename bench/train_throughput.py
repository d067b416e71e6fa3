"""Benchmark (not a test): training throughput of OUR train step for the demo model
against this machine's matmul peak and against the same model trained in PyTorch,
measured side by side in one run.

    python bench/train_throughput.py [--layers 4] [--batch 64] [--steps 2] [--rounds 2]
                                     [--warmup 1] [--torch_threads 2] [--matmul_n 2048]

Both systems train SmolLM2-135M's first `--layers` layers (configs/demo.py: frozen
token table, mean pool → 768-dim head, MRL (128, 256, 768), τ = 0.05, AdamW with
weight decay 0.01 except norms, head lr × 10, clipping at 1.0, float32) on one
pre-finetuning batch of `--batch` real stdlib (docstring summary, function code)
pairs, prompted and tokenised by the data pipeline's encoders (queries ≤ 32
tokens, documents ≤ 64, padded to the pipeline's buckets):

  * ours: `train_state.jitted_train_step` (the trainer's one step: loss_and_grads +
    optimiser update, donated state) on a 1-device mesh;
  * ours, packed: the same step and examples with `config.data.pack` (data/packing.py:
    the texts share rows of 64 tokens);
  * PyTorch: transformers' LlamaModel from the same GGUF under a full bidirectional
    4D padding mask, sentence-transformers Pooling('mean') + Dense, the loss
    `MatryoshkaLoss(MultipleNegativesRankingLoss(scale=1/τ), (768, 256, 128))`,
    torch.optim.AdamW with the same groups + clip_grad_norm_, `--torch_threads`.

Before timing, the two models' embeddings must agree (same weights, same head) and
the first step's losses are printed side by side (ours masks duplicate texts, which
this batch does not have, so they should agree too). Timing: `--warmup` steps per
system (compile) excluded, then `--rounds` × `--steps` steps per system, the systems
taking turns each round; the table gives the median step. FLOP/s count the matmuls
of gemini_embed/flops.py (model FLOPs, train = 3 × forward) twice: on the shapes each
system computes (padded; PyTorch pads as our unpacked step does) and on real tokens
(each text alone, the same for every system: the trainer's model_flops_real_per_s);
tokens/s count real (non-padding) tokens, as the trainer logs them. The matmul peak
is the best of an n×n float32 matmul in jax, numpy and torch, timed in this run.
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
from flax import nnx
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402  (also puts the repository on sys.path)

from gemini_embed import optim, sharding, train_loop, train_step  # noqa: E402
from gemini_embed import train_state as ts_lib  # noqa: E402
from gemini_embed.data import packing  # noqa: E402
from gemini_embed.data.batch import Batch  # noqa: E402
from gemini_embed.data.prompts import format_document, format_query  # noqa: E402
from gemini_embed.data.tokenization import encoders_from_config  # noqa: E402
from gemini_embed.models.embedder import Embedder  # noqa: E402
from gemini_embed.models.gguf_import import gguf_file  # noqa: E402


def real_batch(config, family: str, batch_size: int) -> Batch:
  """One pre-finetuning batch of stdlib pairs, as the pipeline prompts, tokenises and pads it."""
  tokenizer = Tokenizer.from_file(os.path.join(config.init_from, 'tokenizer.json'))
  query_side, doc_side = encoders_from_config(config.data, family, tokenizer)
  pairs = ref.stdlib_pairs(batch_size)
  q_tok, q_valid = query_side([format_query(q, 'code retrieval') for q, _ in pairs])
  d_tok, d_valid = doc_side([format_document(d) for _, d in pairs])
  ids = np.arange(batch_size, dtype=np.int32)  # all texts distinct: nothing to mask
  return Batch(query_tokens=q_tok, query_valid=q_valid, pos_tokens=d_tok, pos_valid=d_valid,
               query_id=ids, pos_id=ids)


# ---------------------------------------------------------------------------- ours

class OurStep:
  """The trainer's step on a 1-device mesh, state threaded through calls."""

  def __init__(self, config, model, cfg, batch, mesh):
    rules = config.sharding_rules
    tx = optim.make_optimizer(config.optim, config.total_steps)
    make_model = lambda: Embedder(cfg, config.embed_dim, nnx.Rngs(config.seed))
    graphdef, _, shardings = ts_lib.abstract_train_state(make_model, tx, mesh, rules)
    self.state = ts_lib.train_state_from_model(model, tx, shardings)
    self.step_fn, self.traces = train_step.jitted_train_step(graphdef, shardings, config)
    self.batch = jax.tree.map(
        lambda x: jax.device_put(x, sharding.batch_sharding(mesh, rules, x.ndim)), batch)

  def __call__(self) -> float:
    self.state, metrics, _ = self.step_fn(self.state, self.batch)
    jax.block_until_ready((self.state, metrics))
    assert len(self.traces) == 1, 'the step recompiled'
    return float(metrics['loss'])


# ---------------------------------------------------------------------------- PyTorch

class TorchStep:
  """sentence-transformers' MRL(MNRL) loss, backward, clipping and AdamW on the peer model."""

  def __init__(self, config, model, batch: Batch):
    from sentence_transformers.sentence_transformer.losses import (
        MatryoshkaLoss, MultipleNegativesRankingLoss)
    o = config.optim
    self.model = model.train()
    llama = model[0].llama
    llama.embed_tokens.weight.requires_grad_(False)  # config.optim.frozen = backbone/embedding
    decay, no_decay = [], []
    for name, p in llama.named_parameters():
      if p.requires_grad:
        (no_decay if 'norm' in name else decay).append(p)
    head = list(model[2].parameters())
    lr = o.learning_rate
    self.params = decay + no_decay + head
    self.optimizer = torch.optim.AdamW(
        [dict(params=decay), dict(params=no_decay, weight_decay=0.0),
         dict(params=head, lr=lr * dict(o.lr_mults)['projection'])],
        lr=lr, betas=(o.b1, o.b2), eps=o.eps, weight_decay=o.weight_decay)
    mnrl = MultipleNegativesRankingLoss(model, scale=1.0 / config.loss.temperature)
    self.loss_fn = MatryoshkaLoss(model, mnrl, matryoshka_dims=tuple(config.mrl_dims))
    self.clip = o.clip_norm
    self.batch = batch

  def __call__(self) -> float:
    b = self.batch
    columns = [ref.features(b.query_tokens, b.query_valid), ref.features(b.pos_tokens, b.pos_valid)]
    self.optimizer.zero_grad(set_to_none=True)
    loss = self.loss_fn(columns, None)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(self.params, self.clip)
    self.optimizer.step()
    return float(loss.detach())


# ---------------------------------------------------------------------------- main

def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('--layers', type=int, default=4, help="SmolLM2's first N layers (demo: 4)")
  ap.add_argument('--batch', type=int, default=64, help='pairs per step (demo pre-finetuning: 64)')
  ap.add_argument('--steps', type=int, default=2, help='timed steps per system per round')
  ap.add_argument('--rounds', type=int, default=2, help='rounds of (ours, PyTorch)')
  ap.add_argument('--warmup', type=int, default=1, help='untimed steps per system (compile)')
  ap.add_argument('--torch_threads', type=int, default=2)
  ap.add_argument('--matmul_n', type=int, default=2048)
  args = ap.parse_args()
  torch.set_num_threads(args.torch_threads)
  t_start = time.perf_counter()

  config = ref.demo_config(args.layers, args.batch)
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  model, cfg = ref.load_ours(config, mesh, config.sharding_rules)
  batch = real_batch(config, cfg.family, args.batch)
  peer = ref.torch_embedder(gguf_file(config.init_from), cfg.num_layers, ref.projection_of(model))
  rel = ref.check_same_embeddings(np.asarray(model(batch.pos_tokens, batch.pos_valid)),
                                  ref.torch_embed(peer, batch.pos_tokens, batch.pos_valid),
                                  'documents')

  d = config.data
  layout = packing.row_layout(args.batch, 0, query_max_len=d.query_max_len,
                              doc_max_len=d.doc_max_len, num_row_counts=d.pack_row_counts)
  packed = packing.pack(batch, layout, first_example=0, global_batch=args.batch)
  count = train_loop.train_flops(cfg, config.embed_dim)
  step_flops = {'ours': count(batch), 'packed': count(packed), 'PyTorch': count(batch)}
  systems = {'ours (JAX, jitted_train_step)': OurStep(config, model, cfg, batch, mesh),
             'ours, packed (config.data.pack)': OurStep(config, model, cfg, packed, mesh),
             'PyTorch (transformers + sentence-transformers)': TorchStep(config, peer, batch)}
  del model
  first_loss, times = {}, {name: [] for name in systems}
  for name, step in systems.items():
    t0 = time.perf_counter()
    first_loss[name] = step()
    for _ in range(args.warmup - 1):
      step()
    print(f'# {name}: first step {first_loss[name]:.4f} loss, warm-up '
          f'{time.perf_counter() - t0:.1f} s', flush=True)
  for r in range(args.rounds):
    for name, step in systems.items():
      time.sleep(0.5)  # let the other runtime's worker threads stop spinning
      for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times[name].append(time.perf_counter() - t0)
    print(f'# round {r + 1}/{args.rounds}: ' + '; '.join(
        f"{n.split()[0]} {' '.join(f'{x:.2f}' for x in t[-args.steps:])} s"
        for n, t in times.items()), flush=True)
  peaks = ref.matmul_peaks(args.matmul_n)
  peak = max(peaks.values())

  shapes = [batch.query_tokens.shape, batch.pos_tokens.shape]
  tokens = batch.num_tokens()
  padded = sum(int(np.prod(s)) for s in shapes)
  real = step_flops['ours'].real
  print(f'\n{jax.devices()[0].platform}, {os.cpu_count()} cores, torch threads '
        f'{torch.get_num_threads()}; SmolLM2-135M first {cfg.num_layers} layers, batch '
        f'{args.batch}: queries {shapes[0]}, documents {shapes[1]}, {tokens} real of {padded} '
        f'padded tokens (packed: {packed.tokens.shape} = {packed.tokens.size} slots); '
        f'{real / 1e9:.0f} GFLOP/step on real tokens, {step_flops["ours"].padded / 1e9:.0f} '
        f'padded, {step_flops["packed"].padded / 1e9:.0f} packed (matmuls, 3 × forward); '
        f'embeddings agree to {rel:.1e} (max rel); median of {args.rounds * args.steps} steps '
        f'after {args.warmup} warm-up; total run {time.perf_counter() - t_start:.0f} s')
  print(f'matmul peak ({args.matmul_n}² float32): ' +
        ', '.join(f'{k} {v:.0f} GFLOP/s' for k, v in peaks.items()) + f' → peak {peak:.0f}')
  print('\n| system | first loss | step (s) | min (s) | real tokens/s | GFLOP/s padded | '
        'GFLOP/s real | % of matmul peak (padded / real) |')
  print('|---|---|---|---|---|---|---|---|')
  med = {}
  for (name, ts), step in zip(times.items(), step_flops.values()):
    med[name] = statistics.median(ts)
    gflops, gflops_real = step.padded / med[name] / 1e9, step.real / med[name] / 1e9
    print(f'| {name} | {first_loss[name]:.4f} | {med[name]:.2f} | {min(ts):.2f} | '
          f'{tokens / med[name]:.0f} | {gflops:.1f} | {gflops_real:.1f} | '
          f'{100 * gflops / peak:.0f}% / {100 * gflops_real / peak:.0f}% |')
  (ours, ours_packed, theirs) = med.values()
  ours_min, packed_min, theirs_min = [min(t) for t in times.values()]
  print(f'\nours / PyTorch throughput (PyTorch step time / ours): {theirs / ours:.2f}× by '
        f'median step, {theirs_min / ours_min:.2f}× by fastest step; packed: '
        f'{theirs / ours_packed:.2f}× / {theirs_min / packed_min:.2f}×')


if __name__ == '__main__':
  main()
