"""Benchmark (not a test): MFU of OUR train step on one GPU, and the same step in PyTorch.

    python bench/gpu_step.py [--model gemma3-1b] [--batch 32] [--seq 512] [--negatives 1]
                             [--remat full] [--steps 8] [--warmup 2] [--no_torch]

Run by `bench/gpu_step.sh` on a lent GPU machine (its image has jax, torch and
transformers, but not grain or ml_collections: this script imports neither grain
nor the data pipeline; the .sh carries ml_collections, flax and optax as this
project pins them).

Both systems train a randomly initialised `--model` backbone (gemma3-1b: 26 layers,
width 1152, ~1B parameters) bidirectionally, mean-pool it, project to 3072 dims and
take the MRL (768, 1536, 3072) NCE loss with in-batch negatives and `--negatives`
hard negatives per example (τ = 0.05), AdamW, clipping at 1.0, parameters in float32,
compute in bfloat16. Synthetic batches: every token real (no padding), so padded and
real-token FLOP/s are the same here.

  * ours: `train_step.jitted_train_step` (loss_and_grads + optimiser update, donated
    state) on a 1-device mesh, `--remat` the model's remat policy;
  * PyTorch: transformers' Gemma3TextModel (use_bidirectional_attention, sdpa) under
    torch.autocast(bfloat16), the same pooling/head/loss written in torch (what
    sentence-transformers' MatryoshkaLoss(MultipleNegativesRankingLoss) computes),
    torch.optim.AdamW(fused), gradient checkpointing when `--remat` is not 'none'.

MFU = model FLOPs (gemini_embed/flops.py: matmuls, train = 3 × forward, remat not
counted) / step time / peak. Two peaks: the dense-bf16 datasheet figure
(`--peak_tflops`, H100/H200 SXM: 989) and an 8192³ bf16 matmul timed in this run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gemini_embed import flops, optim, sharding, train_step  # noqa: E402
from gemini_embed import train_state as ts_lib  # noqa: E402
from gemini_embed.data.batch import Batch  # noqa: E402
from gemini_embed.models.embedder import Embedder  # noqa: E402
from gemini_embed.models.model_config import TransformerConfig  # noqa: E402
from gemini_embed.models.presets import PRESETS  # noqa: E402

EMBED_DIM, MRL_DIMS, TAU = 3072, (768, 1536, 3072), 0.05


def step_config(steps: int) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.optim = optim.default_optim_config()
  c.optim.warmup_steps = 1
  c.loss = ml_collections.ConfigDict(dict(
      temperature=TAU, learn_temperature=False, mask_duplicates=True, cross_negatives=False,
      hardness_alpha=0.0, mrl_weights=()))
  c.mrl_dims, c.embed_dim, c.grad_cache_chunk, c.total_steps = MRL_DIMS, EMBED_DIM, 0, steps
  return c


def synthetic_batch(cfg: TransformerConfig, b: int, k: int, s: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  tok = lambda *shape: rng.integers(1, cfg.vocab_size, size=shape, dtype=np.int32)
  ones = lambda *shape: np.ones(shape, bool)
  ids = np.arange(b, dtype=np.int32)
  return dict(query_tokens=tok(b, s), query_valid=ones(b, s), pos_tokens=tok(b, s),
              pos_valid=ones(b, s), query_id=ids, pos_id=ids + b,
              neg_tokens=tok(b, k, s) if k else None, neg_valid=ones(b, k, s) if k else None,
              has_neg=ones(b, k) if k else None)


def timed(fn, warmup: int, steps: int) -> list[float]:
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return times


def jax_matmul_peak(n: int) -> float:
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.bfloat16)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = min(timed(lambda: f(a).block_until_ready(), 2, 10))
  return 2 * n ** 3 / best


class OurStep:
  def __init__(self, cfg: TransformerConfig, batch: dict, steps: int):
    config = step_config(steps)
    mesh = sharding.make_mesh(dict(data=-1, fsdp=1, tensor=1))
    rules = sharding.DEFAULT_RULES
    tx = optim.make_optimizer(config.optim, config.total_steps)
    make_model = lambda: Embedder(cfg, EMBED_DIM, nnx.Rngs(0))
    graphdef, _, shardings = ts_lib.abstract_train_state(make_model, tx, mesh, rules)
    self.state = ts_lib.fresh_train_state(make_model, tx, shardings)
    self.step_fn, self.traces = train_step.jitted_train_step(graphdef, shardings, config)
    self.batch = jax.tree.map(
        lambda x: jax.device_put(x, sharding.batch_sharding(mesh, rules, x.ndim)), Batch(**batch))
    self.loss = None
    print(f'devices {jax.devices()}; jax {jax.__version__}')

  def __call__(self) -> None:
    self.state, metrics, _ = self.step_fn(self.state, self.batch)
    self.loss = float(metrics['loss'])  # blocks
    assert len(self.traces) == 1, 'the step recompiled'


class TorchStep:
  def __init__(self, cfg: TransformerConfig, batch: dict, remat: bool):
    import torch
    from transformers import Gemma3TextConfig, Gemma3TextModel
    self.torch = torch
    hf = Gemma3TextConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.width, intermediate_size=cfg.mlp_dim,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads, head_dim=cfg.head_dim,
        sliding_window=cfg.sliding_window,
        layer_types=[f'{t}_attention' for t in cfg.layer_types],
        rope_theta=cfg.rope_base, query_pre_attn_scalar=cfg.query_pre_attn_scalar,
        use_bidirectional_attention=True, attn_implementation='sdpa')
    dev = self.dev = 'cuda' if torch.cuda.is_available() else 'cpu'  # cpu: a smoke run
    self.model = Gemma3TextModel(hf).to(dev).train()
    if remat:
      self.model.gradient_checkpointing_enable()
    self.head = torch.nn.Linear(cfg.width, EMBED_DIM, bias=False).to(dev)
    self.params = list(self.model.parameters()) + list(self.head.parameters())
    self.opt = torch.optim.AdamW(self.params, lr=1e-4, weight_decay=0.0, fused=dev == 'cuda')
    t = lambda x: torch.as_tensor(x, device=dev)
    b, s = batch['query_tokens'].shape
    docs = [batch['pos_tokens'][:, None]]
    if batch['neg_tokens'] is not None:
      docs.append(batch['neg_tokens'])
    self.q = t(batch['query_tokens'])
    self.d = t(np.concatenate(docs, axis=1).reshape(-1, s))
    self.b, self.k1 = b, len(self.d) // b
    self.loss = None

  def embed(self, tokens):
    torch = self.torch
    mask = torch.ones_like(tokens)
    h = self.model(input_ids=tokens, attention_mask=mask).last_hidden_state
    pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return self.head(pooled).float()

  def __call__(self) -> None:
    torch = self.torch
    self.opt.zero_grad(set_to_none=True)
    with torch.autocast(self.dev, dtype=torch.bfloat16):
      q, d = self.embed(self.q), self.embed(self.d)
    labels = torch.arange(self.b, device=q.device) * self.k1
    loss = 0.0
    for dim in MRL_DIMS:
      qn = torch.nn.functional.normalize(q[:, :dim], dim=-1)
      dn = torch.nn.functional.normalize(d[:, :dim], dim=-1)
      loss = loss + torch.nn.functional.cross_entropy(qn @ dn.T / TAU, labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(self.params, 1.0)
    self.opt.step()
    self.loss = float(loss.detach())  # blocks

  @staticmethod
  def matmul_peak(n: int) -> float:
    import torch
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)

    def mm():
      a @ a
      if dev == 'cuda':
        torch.cuda.synchronize()
    return 2 * n ** 3 / min(timed(mm, 2, 10))


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('--model', default='gemma3-1b', choices=sorted(PRESETS))
  ap.add_argument('--batch', type=int, default=32, help='examples (queries) per step')
  ap.add_argument('--seq', type=int, default=512, help='tokens per query and per document')
  ap.add_argument('--negatives', type=int, default=1, help='hard negatives per example')
  ap.add_argument('--remat', default='full', help="the model's remat policy ('none', 'full', …)")
  ap.add_argument('--attention_impl', default='xla', help="config.model.attention_impl (ours)")
  ap.add_argument('--steps', type=int, default=8)
  ap.add_argument('--warmup', type=int, default=2)
  ap.add_argument('--peak_tflops', type=float, default=989.0, help='datasheet dense bf16 peak')
  ap.add_argument('--matmul_n', type=int, default=8192, help='n of the n³ bf16 peak matmul')
  ap.add_argument('--no_torch', action='store_true')
  ap.add_argument('--only', choices=('jax', 'torch'), help='(internal) run one system, print JSON')
  args = ap.parse_args()

  cfg = dataclasses.replace(TransformerConfig(**PRESETS[args.model]),
                            precision='params=float32,compute=bfloat16,output=float32',
                            remat=args.remat,
                            attention_impl=args.attention_impl)
  b, k, s = args.batch, args.negatives, args.seq
  step_flops = flops.train_step_flops(cfg, EMBED_DIM, [(b, s), (b * (1 + k), s)])
  batch = synthetic_batch(cfg, b, k, s)
  tokens = b * (2 + k) * s
  if not args.only:
    print(f'{args.model} remat={args.remat} attention_impl={args.attention_impl}: batch {b} × (1 query + 1 positive + {k} negatives) '
        f'× {s} tokens = {tokens} tokens/step, {step_flops / 1e12:.1f} model TFLOP/step')

  if args.only:
    print(json.dumps(run_one(args.only, cfg, batch, args)), flush=True)
    return
  results = {}
  for system in ('jax',) + (() if args.no_torch else ('torch',)):
    # One process per system: JAX's and PyTorch's allocators would each hold the GPU's memory.
    cmd = [sys.executable, os.path.abspath(__file__), '--only', system] + sys.argv[1:]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = proc.stdout.strip().splitlines()
    print('\n'.join(lines[:-1]))
    if proc.returncode or not lines:
      print(f'{system}: failed (exit {proc.returncode})')
      continue
    results[system] = json.loads(lines[-1])

  peaks = {'datasheet': args.peak_tflops * 1e12}
  peaks.update({f'{n} matmul': r['matmul_peak'] for n, r in results.items()})
  print('\npeaks (TFLOP/s): ' + ', '.join(f'{n} {p / 1e12:.0f}' for n, p in peaks.items()))
  best_measured = max([v for n, v in peaks.items() if n != 'datasheet'] or [peaks['datasheet']])
  print('| system | median step (s) | tokens/s | model TFLOP/s | MFU (datasheet) | MFU (measured matmul) |')
  print('|---|---|---|---|---|---|')
  for name, r in results.items():
    t = r['median_step_s']
    fl = step_flops / t
    print(f'| {name} | {t:.3f} | {tokens / t:,.0f} | {fl / 1e12:.1f} | '
          f'{fl / peaks["datasheet"]:.1%} | {fl / best_measured:.1%} |')
  if len(results) == 2:
    print(f'ratio ours/PyTorch (throughput): '
          f'{results["torch"]["median_step_s"] / results["jax"]["median_step_s"]:.2f}×')


def run_one(system: str, cfg: TransformerConfig, batch: dict, args) -> dict:
  t0 = time.perf_counter()
  step = OurStep(cfg, batch, args.warmup + args.steps) if system == 'jax' else (
      TorchStep(cfg, batch, args.remat != 'none'))
  times = timed(step, args.warmup, args.steps)
  print(f'{system}: loss (random init, not comparable across systems) after {args.warmup + args.steps} steps {step.loss:.4f}; '
        f'setup+compile+run {time.perf_counter() - t0:.0f} s; steps (s) '
        + ' '.join(f'{t:.3f}' for t in times), flush=True)
  del step
  peak = jax_matmul_peak(args.matmul_n) if system == 'jax' else TorchStep.matmul_peak(args.matmul_n)
  return dict(median_step_s=statistics.median(times), matmul_peak=peak)

if __name__ == '__main__':
  main()
