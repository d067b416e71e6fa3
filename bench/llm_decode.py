"""Benchmark (not a test): LLM decode and prefill throughput of our runtime
(gemini_embed/llm/decode.py) against transformers' `generate`, side by side in one run,
plus the memory-bandwidth bound of a decode step.

    python bench/llm_decode.py [--llm smollm2] [--batches 1,8,32] [--prompt_len 64]
                               [--new 32] [--repeats 2] [--torch_threads 2] [--no_torch]
    python bench/llm_decode.py --random gemma3-270m --no_torch   # random weights (GPU run)

Same model and weights (the GGUF file, read by both: ours through our importer,
transformers through tests/models/gguf_reference.py), float32, greedy, the same
prompts (real stdlib docstrings cut to --prompt_len tokens, so no padding), and the
same number of CPU threads (torch.set_num_threads; XLA uses the process's cores), and
denormals flushed to zero in both (XLA's CPU default; torch.set_flush_denormal).

  prefill tok/s = B × prompt_len / (time of the prompt pass + first token)
  decode tok/s  = B × (new - 1) / (time of the remaining new - 1 steps)
  ours: the jitted prefill and one decode chunk of new - 1 steps (compiled first);
  transformers: generate(max_new_tokens=1) for prefill, generate(new) - that for decode.

The bound: a decode step must read every weight and the KV cache it attends to, so
step time >= (weight bytes + cache bytes) / memory bandwidth. Bandwidth is measured
here (numpy copy of 512 MiB: read + write bytes / time) unless --bandwidth_gbs is given
(e.g. 4800 for an H200's HBM3e).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gemini_embed import sharding  # noqa: E402
from gemini_embed.llm import sampling  # noqa: E402
from gemini_embed.llm.decode import Generator  # noqa: E402
from gemini_embed.llm.model import LLM, load_llm  # noqa: E402
from gemini_embed.models.gguf_import import gguf_file  # noqa: E402

RULES = sharding.DEFAULT_RULES


def memory_bandwidth_gbs(mib: int = 512, repeats: int = 5) -> float:
  a = np.ones(mib << 18, np.float32)   # mib MiB
  b = np.empty_like(a)
  best = float('inf')
  for _ in range(repeats):
    t = time.perf_counter()
    np.copyto(b, a)
    best = min(best, time.perf_counter() - t)
  return 2 * a.nbytes / best / 1e9


def prompts(llm: LLM, batch: int, length: int) -> list[list[int]]:
  from tests.models.real_strings import docstrings
  ids = llm.tokenizer.encode(' '.join(docstrings())).ids
  return [ids[i * 7:i * 7 + length] for i in range(batch)]


class Ours:
  """Timed calls of the Generator's jitted prefill and decode chunk."""

  def __init__(self, llm: LLM, mesh, batch: int, length: int, new: int):
    self.gen = Generator(llm, mesh, RULES, batch_size=batch, chunk=new - 1)
    self.batch, self.length, self.new = batch, length, new
    self.tokens = np.asarray(prompts(llm, batch, length), np.int32)
    self.valid = np.ones_like(self.tokens, bool)
    self.keys = sampling.row_keys(0, jnp.arange(batch))
    self.knobs = (jnp.float32(1), jnp.int32(0), jnp.float32(1))
    self.eos = jnp.asarray([-1], jnp.int32)

  def prefill(self):
    token, cache = self.gen._prefill(self.gen._state, self.tokens, self.valid, self.keys,
                                     *self.knobs, static=(True, False, False),
                                     cache_len=self.length + self.new)
    return jax.block_until_ready(token), cache

  def run(self) -> tuple[float, float, np.ndarray]:
    t0 = time.perf_counter()
    token, cache = self.prefill()
    t1 = time.perf_counter()
    out = self.gen._decode(self.gen._state, cache, token, jnp.full((self.batch,), self.length),
                           jnp.zeros((self.batch,), bool), self.keys, jnp.int32(1),
                           jnp.int32(self.new - 1), self.eos, *self.knobs,
                           static=(True, False, False))
    jax.block_until_ready(out)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, np.concatenate([np.asarray(token)[:, None],
                                             np.asarray(out[0])], axis=1)


class Transformers:

  def __init__(self, model, batch_prompts, new: int):
    import torch
    self.torch, self.model, self.new = torch, model, new
    self.ids = torch.tensor(batch_prompts, dtype=torch.long)
    model.generation_config.eos_token_id = None

  def _generate(self, n):
    with self.torch.inference_mode():
      return self.model.generate(input_ids=self.ids, attention_mask=self.torch.ones_like(self.ids),
                                 max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 pad_token_id=0, top_k=None, top_p=None, temperature=None)

  def run(self) -> tuple[float, float, np.ndarray]:
    t0 = time.perf_counter()
    self._generate(1)
    t1 = time.perf_counter()
    out = self._generate(self.new)
    t2 = time.perf_counter()
    return t1 - t0, (t2 - t1) - (t1 - t0), out[:, self.ids.shape[1]:].numpy()


def step_bytes(llm: LLM, batch: int, slots: int) -> int:
  cfg = llm.cfg
  weights = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(nnx.state(llm.model)))
  cache = 2 * cfg.num_layers * batch * slots * cfg.num_kv_heads * cfg.head_dim * \
      np.dtype(cfg.policy.compute_dtype).itemsize
  return weights + cache


def random_llm(preset: str, mesh) -> LLM:
  """A preset's shape with random weights (bf16 compute), for a GPU run."""
  from gemini_embed.models.model_config import TransformerConfig
  from gemini_embed.models.presets import PRESETS
  from gemini_embed.models.tokenizer import byte_level_tokenizer
  from gemini_embed.models.transformer import Transformer
  cfg = TransformerConfig(**PRESETS[preset]).replace(
      attention_mode='causal', precision='params=bfloat16,compute=bfloat16,output=float32')
  model = sharding.sharded_init(lambda: Transformer(cfg, nnx.Rngs(0)), mesh, RULES)
  return LLM(model=model, cfg=cfg, tokenizer=byte_level_tokenizer(), eos_ids=(), pad_id=0,
             bos=None, eos=None, chat_template=None, context_length=1 << 30, source=preset)


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--llm', default='smollm2')
  p.add_argument('--random', default=None, help='a preset name: random weights, no torch')
  p.add_argument('--batches', default='1,8,32')
  p.add_argument('--prompt_len', type=int, default=64)
  p.add_argument('--new', type=int, default=32)
  p.add_argument('--repeats', type=int, default=2)
  p.add_argument('--torch_threads', type=int, default=2)
  p.add_argument('--no_torch', action='store_true')
  p.add_argument('--bandwidth_gbs', type=float, default=None)
  args = p.parse_args()

  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  llm = random_llm(args.random, mesh) if args.random else load_llm(args.llm, mesh, RULES)
  llm.eos_ids = ()
  peer = None
  if not args.no_torch and not args.random:
    import torch
    from tests.models.gguf_reference import transformers_gguf_model
    torch.set_num_threads(args.torch_threads)
    # XLA flushes denormals to zero on CPU; torch does not by default, and the dequantised
    # GGUF weights produce denormals that make its matmuls ~12x slower here (measured:
    # a 1×64 forward 8.8 s vs 0.6 s). Same arithmetic for both, then.
    torch.set_flush_denormal(True)
    from gemini_embed.llm.model import resolve_source
    peer = transformers_gguf_model(gguf_file(resolve_source(args.llm)))
  bandwidth = args.bandwidth_gbs or memory_bandwidth_gbs()
  print(f'{llm.source}: {jax.devices()[0].device_kind}, jax {jax.__version__}; memory '
        f'bandwidth {bandwidth:.1f} GB/s ({"given" if args.bandwidth_gbs else "numpy copy"}); '
        f'prompt {args.prompt_len} tokens, {args.new} new, greedy')
  print('| batch | ours prefill tok/s | ours decode tok/s | transformers prefill tok/s | '
        'transformers decode tok/s | decode ratio | bytes/step | bound step ms | ours step ms '
        '| of bound |')
  print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for batch in map(int, args.batches.split(',')):
    ours = Ours(llm, mesh, batch, args.prompt_len, args.new)
    _, _, first = ours.run()   # compile
    theirs = Transformers(peer, ours.tokens.tolist(), args.new) if peer is not None else None
    times = {'ours': [], 'theirs': []}
    for _ in range(args.repeats):
      times['ours'].append(ours.run()[:2])
      if theirs:
        pre, dec, tokens = theirs.run()
        times['theirs'].append((pre, dec))
    same = ''
    if theirs:
      same = f' (greedy tokens equal: {np.mean(tokens == first):.0%})'
    med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
           for k, v in times.items() if v}
    steps = args.new - 1
    o_pre = batch * args.prompt_len / med['ours'][0]
    o_dec = batch * steps / med['ours'][1]
    nbytes = step_bytes(llm, batch, args.prompt_len + args.new)
    bound_ms = nbytes / (bandwidth * 1e9) * 1e3
    step_ms = med['ours'][1] / steps * 1e3
    if 'theirs' in med:
      t_pre = batch * args.prompt_len / med['theirs'][0]
      t_dec = batch * steps / med['theirs'][1]
      peer_cols = f'{t_pre:,.0f} | {t_dec:,.1f} | {o_dec / t_dec:.2f}×'
    else:
      peer_cols = '– | – | –'
    print(f'| {batch} | {o_pre:,.0f} | {o_dec:,.1f} | {peer_cols} | {nbytes / 1e6:,.0f} MB | '
          f'{bound_ms:.2f} | {step_ms:.2f} | {bound_ms / step_ms:.0%} |{same}', flush=True)


if __name__ == '__main__':
  main()
