"""Batched generation: prefill, then decode one token per step against the KV cache.

    prompts (token ids) ─left-pad to a length bucket─▶ prefill (one jit per bucket):
        the whole prompt through the model, keys/values into a fresh cache, logits of
        the last column only (every row's last prompt token) → token 0
    ─▶ decode chunks (one jit per cache length): a lax.while_loop of up to `chunk`
        steps, each feeding every row's last token at its own position, logits of
        that one token → the next; it stops early once every row has ended
    ─▶ the host, between chunks: EOS, stop strings, max_new_tokens → finish_reason

Every batch has `batch_size` rows (short batches padded with dummy rows), prompts are
padded to a power-of-two bucket (>= 16 tokens) and the cache holds bucket +
max_new_tokens slots, so compiles are one per bucket, never one per prompt.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gemini_embed import sharding
from gemini_embed.llm import sampling
from gemini_embed.llm.model import LLM
from gemini_embed.models.kv_cache import KVCache

MIN_BUCKET = 16


@dataclasses.dataclass
class Completion:
  tokens: list[int]     # generated ids, without the EOS that ended it
  text: str
  finish_reason: str    # 'stop' (EOS or a stop string) | 'length' (max_new_tokens)


def length_bucket(n: int) -> int:
  """The padded prompt length: a power of two, at least MIN_BUCKET."""
  return max(MIN_BUCKET, 1 << max(0, n - 1).bit_length())


class Generator:
  """`generate(prompts, rows, ...)` for one LLM on one mesh."""

  def __init__(self, llm: LLM, mesh, rules, *, batch_size: int = 8, chunk: int = 16):
    self.llm, self.mesh, self.rules = llm, mesh, rules
    shards = sharding.data_parallel_size(mesh, rules)
    self.batch_size = -(-batch_size // shards) * shards   # a multiple of the data-parallel size
    self.chunk = chunk
    self._batch = sharding.batch_sharding(mesh, rules, 1)
    self._graphdef, self._state = nnx.split(llm.model)
    self._prefill = jax.jit(self._prefill_fn, static_argnames=('static', 'cache_len'))
    self._decode = jax.jit(self._decode_fn, static_argnames=('static',), donate_argnums=(1,))
    self.traces = {'prefill': 0, 'decode': 0}   # compiles, for tests

  # ---- the jitted pieces ---------------------------------------------------------
  def _prefill_fn(self, state, tokens, valid, keys, temperature, top_k, top_p, *, static,
                  cache_len):
    self.traces['prefill'] += 1
    with sharding.activation_sharding(self.mesh, self.rules):
      model = nnx.merge(self._graphdef, state)
      positions = jnp.maximum(jnp.cumsum(valid, axis=1) - 1, 0)
      cache = KVCache.init(model.cfg, tokens.shape[0], cache_len)
      hidden, cache = model(tokens, valid, positions, cache)
      logits = model.logits(hidden[:, -1:])[:, 0]   # left-padded: every row's last token
      token = sampling.choose(logits, keys, 0, temperature, top_k, top_p, static=static)
    return token, cache

  def _decode_fn(self, state, cache, token, position, done, keys, step0, steps, eos,
                 temperature, top_k, top_p, *, static):
    self.traces['decode'] += 1
    batch = token.shape[0]
    one = jnp.ones((batch, 1), jnp.int32)

    def cond(carry):
      i, _, _, done, _, _, _ = carry
      return (i < steps) & ~jnp.all(done)

    # The weights ride in the carry (unchanged): NNX modules must be built from values of
    # the loop body's own trace level.
    def body(carry):
      i, token, position, done, cache, out, state = carry
      with sharding.activation_sharding(self.mesh, self.rules):
        model = nnx.merge(self._graphdef, state)
        hidden, cache = model(token[:, None], one, position[:, None], cache)
        logits = model.logits(hidden)[:, 0]
      nxt = sampling.choose(logits, keys, step0 + i, temperature, top_k, top_p, static=static)
      out = jax.lax.dynamic_update_index_in_dim(out, nxt, i, axis=1)
      done = done | jnp.any(nxt[:, None] == eos[None, :], axis=1)
      return i + 1, nxt, position + 1, done, cache, out, state

    out = jnp.zeros((batch, self.chunk), jnp.int32)
    start = (jnp.zeros((), jnp.int32), token, position, done, cache, out, state)
    n, token, position, done, cache, out, _ = jax.lax.while_loop(cond, body, start)
    return out, n, token, position, done, cache

  # ---- the host loop -------------------------------------------------------------------
  def generate(self, prompts: Sequence[Sequence[int]], rows: Sequence[int], *,
               max_new_tokens: int, params: sampling.Sampling = sampling.Sampling(),
               stop: Sequence[str] = (), progress: Callable[[int], None] | None = None
               ) -> list[Completion]:
    """One Completion per prompt (token ids), in order; `rows` are the prompts' indices
    in the input (their sampling keys); progress(n) is told of each n new tokens."""
    if max_new_tokens < 1:
      raise ValueError(f'--max_new_tokens={max_new_tokens}: must be >= 1')
    out: list[Completion] = []
    for start in range(0, len(prompts), self.batch_size):
      out += self._batch_generate(prompts[start:start + self.batch_size],
                                  rows[start:start + self.batch_size], max_new_tokens, params,
                                  tuple(stop), progress)
    return out

  def _batch_generate(self, prompts, rows, max_new, params, stop, progress):
    llm, b = self.llm, self.batch_size
    real = len(prompts)
    for p in prompts:
      if not p:
        raise ValueError('an empty prompt (no tokens): give at least one token')
      if len(p) + max_new > llm.context_length:
        raise ValueError(f'a prompt of {len(p)} tokens + max_new_tokens={max_new} exceeds '
                         f'the context of {llm.context_length} tokens')
    prompts = list(prompts) + [[llm.pad_id]] * (b - real)
    rows = np.asarray(list(rows) + [0] * (b - real), np.int32)
    lengths = np.asarray([len(p) for p in prompts], np.int32)
    s = length_bucket(int(lengths.max()))
    tokens = np.full((b, s), llm.pad_id, np.int32)
    valid = np.zeros((b, s), bool)
    for i, p in enumerate(prompts):
      tokens[i, s - len(p):], valid[i, s - len(p):] = p, True
    put = lambda x: jax.device_put(x, sharding.batch_sharding(self.mesh, self.rules, x.ndim))
    keys = put(np.asarray(sampling.row_keys(params.seed, rows)))
    knobs = (jnp.float32(params.temperature or 1.0), jnp.int32(params.top_k),
             jnp.float32(params.top_p))
    static = params.static()
    token, cache = self._prefill(self._state, put(tokens), put(valid), keys, *knobs,
                                 static=static, cache_len=s + max_new)
    state = _Rows(self.llm, real, max_new, stop)
    state.accept(np.asarray(token)[:, None])
    position, step = put(lengths), 1
    eos = jnp.asarray(llm.eos_ids or (-1,), jnp.int32)
    while not state.all_done() and step < max_new:
      steps = min(self.chunk, max_new - step)
      out, n, token, position, _, cache = self._decode(
          self._state, cache, token, position, put(state.done_mask(b)), keys,
          jnp.int32(step), jnp.int32(steps), eos, *knobs, static=static)
      n = int(n)
      state.accept(np.asarray(out)[:, :n])
      step += n
      if progress:
        progress(state.take_new())
    if progress:
      progress(state.take_new())
    return state.completions()


class _Rows:
  """The host's view of one batch's rows: tokens so far, which ended and why."""

  def __init__(self, llm: LLM, real: int, max_new: int, stop: tuple[str, ...]):
    self.llm, self.real, self.max_new, self.stop = llm, real, max_new, stop
    self.tokens: list[list[int]] = [[] for _ in range(real)]
    self.reason: list[str | None] = [None] * real
    self.text: list[str | None] = [None] * real
    self._new = 0

  def accept(self, columns: np.ndarray) -> None:
    eos = set(self.llm.eos_ids)
    for r in range(self.real):
      for t in columns[r]:
        if self.reason[r]:
          break
        self._new += 1
        if int(t) in eos:
          self.reason[r] = 'stop'
        else:
          self.tokens[r].append(int(t))
          if len(self.tokens[r]) == self.max_new:
            self.reason[r] = 'length'
      if self.stop and self.text[r] is None:
        self._check_stop(r)

  def _check_stop(self, r: int) -> None:
    text = self.llm.tokenizer.decode(self.tokens[r], skip_special_tokens=True)
    hits = [text.find(s) for s in self.stop if s and s in text]
    if not hits:
      return
    cut = min(hits)
    keep = len(self.tokens[r])
    while keep > 0 and any(s in self._decode(r, keep - 1) for s in self.stop if s):
      keep -= 1   # the fewest tokens whose text holds the stop string
    self.tokens[r] = self.tokens[r][:keep]
    self.text[r], self.reason[r] = text[:cut], 'stop'

  def _decode(self, r: int, n: int) -> str:
    return self.llm.tokenizer.decode(self.tokens[r][:n], skip_special_tokens=True)

  def all_done(self) -> bool:
    return all(self.reason)

  def done_mask(self, batch: int) -> np.ndarray:
    return np.asarray([bool(x) for x in self.reason] + [True] * (batch - self.real))

  def take_new(self) -> int:
    n, self._new = self._new, 0
    return n

  def completions(self) -> list[Completion]:
    out = []
    for r in range(self.real):
      text = self.text[r]
      if text is None:
        text = self.llm.tokenizer.decode(self.tokens[r], skip_special_tokens=True)
      out.append(Completion(self.tokens[r], text, self.reason[r] or 'length'))
    return out
