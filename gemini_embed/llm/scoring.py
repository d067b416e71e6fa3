"""Scoring text with the LLM: log-likelihoods of continuations, probabilities of options.

    log_likelihood(prompt, continuation) = Σ_j log p(c_j | prompt, c_<j)   (and its mean)
    option_probabilities(prompt, options) = softmax over options of log_likelihood

Prompt and continuation are tokenised apart and joined (the continuation without
added special tokens), as lm-eval-harness does. One causal forward pass per batch of
rows, right-padded to length buckets; vocabulary logits are computed only at the
positions that predict a continuation token (log-softmax in float32), so Gemma's
262k-wide head never runs over a whole prompt.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gemini_embed import sharding
from gemini_embed.llm.decode import length_bucket
from gemini_embed.llm.model import LLM


class Scorer:

  def __init__(self, llm: LLM, mesh, rules, *, batch_size: int = 8):
    self.llm, self.mesh, self.rules = llm, mesh, rules
    shards = sharding.data_parallel_size(mesh, rules)
    self.batch_size = -(-batch_size // shards) * shards
    self._graphdef, self._state = nnx.split(llm.model)
    self._score = jax.jit(self._score_fn)

  def _score_fn(self, state, tokens, valid, at, targets):
    with sharding.activation_sharding(self.mesh, self.rules):
      model = nnx.merge(self._graphdef, state)
      hidden = model(tokens, valid)
      picked = jnp.take_along_axis(hidden, at[..., None], axis=1)   # [B, C, D]
      logits = model.logits(picked)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]

  def check(self, context: Sequence[int], target: Sequence[int]) -> None:
    """Raises ValueError when a (context, target) pair cannot be scored."""
    if not context:
      raise ValueError('the prompt has no tokens (and the tokenizer adds no BOS): nothing '
                       'conditions the first continuation token')
    if not target:
      raise ValueError('the continuation has no tokens')
    if len(context) + len(target) > self.llm.context_length:
      raise ValueError(f'prompt ({len(context)} tokens) + continuation ({len(target)}) '
                       f'exceed the context of {self.llm.context_length} tokens')

  def token_logprobs(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]
                     ) -> list[np.ndarray]:
    """log p of each target token given its context and the targets before it."""
    for context, target in pairs:
      self.check(context, target)
    order = np.argsort([len(c) + len(t) for c, t in pairs], kind='stable')
    out: list[np.ndarray | None] = [None] * len(pairs)
    for start in range(0, len(pairs), self.batch_size):
      chunk = [pairs[i] for i in order[start:start + self.batch_size]]
      for i, logp in zip(order[start:start + self.batch_size], self._batch(chunk)):
        out[i] = logp
    return out

  def next_token_logprobs(self, contexts: Sequence[Sequence[int]], candidates: Sequence[int]
                          ) -> np.ndarray:
    """F64[N, len(candidates)]: log p of each candidate token right after each context —
    one pass per context for all candidates (single-token options: what
    option_probabilities computes, without one pass per option)."""
    for context in contexts:
      self.check(context, candidates)
    order = np.argsort([len(c) for c in contexts], kind='stable')
    out = np.zeros((len(contexts), len(candidates)), np.float64)
    n = len(candidates)
    for start in range(0, len(contexts), self.batch_size):
      rows = order[start:start + self.batch_size]
      layout = [(list(contexts[i]), [len(contexts[i]) - 1] * n, list(candidates)) for i in rows]
      for i, logp in zip(rows, self._run(layout)):
        out[i] = logp
    return out

  def _batch(self, pairs) -> list[np.ndarray]:
    # The last target token is never an input; row i predicts target j at context + j - 1.
    return self._run([(list(c) + list(t)[:-1], list(range(len(c) - 1, len(c) - 1 + len(t))),
                       list(t)) for c, t in pairs])

  def _run(self, layout) -> list[np.ndarray]:
    """layout: per row (input ids, positions whose logits are read, target ids there) →
    per row the targets' log p (float64). Pads to batch_size rows and length buckets."""
    b = self.batch_size
    layout = list(layout) + [([self.llm.pad_id], [0], [self.llm.pad_id])] * (b - len(layout))
    s = length_bucket(max(len(ids) for ids, _, _ in layout))
    c = length_bucket(max(len(t) for _, _, t in layout))
    tokens = np.full((b, s), self.llm.pad_id, np.int32)
    valid = np.zeros((b, s), bool)
    at = np.zeros((b, c), np.int32)
    targets = np.zeros((b, c), np.int32)
    for i, (ids, where, target) in enumerate(layout):
      tokens[i, :len(ids)], valid[i, :len(ids)] = ids, True
      at[i, :len(where)], targets[i, :len(target)] = where, target
    put = lambda x: jax.device_put(x, sharding.batch_sharding(self.mesh, self.rules, x.ndim))
    logp = np.asarray(self._score(self._state, put(tokens), put(valid), put(at), put(targets)))
    return [logp[i, :len(t)].astype(np.float64) for i, (_, _, t) in enumerate(layout)]


def log_likelihoods(scorer: Scorer, pairs) -> list[tuple[float, float, int]]:
  """(sum, mean per token, number of tokens) of each (context ids, continuation ids)."""
  return [(float(lp.sum()), float(lp.mean()), len(lp)) for lp in scorer.token_logprobs(pairs)]


def option_probabilities(scorer: Scorer, context: Sequence[int],
                         options: Sequence[Sequence[int]]) -> np.ndarray:
  """The options' probabilities given `context`: softmax of their summed log p (float64)."""
  return probabilities(scorer.token_logprobs([(context, o) for o in options]))


def probabilities(option_logprobs: Sequence[np.ndarray]) -> np.ndarray:
  """Each option's token log p's → the options' normalised probabilities (float64)."""
  sums = np.asarray([lp.sum() for lp in option_logprobs], np.float64)
  p = np.exp(sums - sums.max())
  return p / p.sum()
