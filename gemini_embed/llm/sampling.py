"""Next-token choice: greedy, or sampling with temperature, top-k and top-p.

Randomness is per row: row r of the input (its index in the whole input file, not in
its batch) draws step t's token with `fold_in(fold_in(PRNGKey(seed), r), t)`, so a
row's output never depends on its batch neighbours, the batch size, or a resume.

Filters, in transformers' order: logits / temperature → top-k → top-p.
  top-k (k > 0): keep the logits >= the k-th largest (ties at the k-th all kept).
  top-p (p < 1): keep the smallest set of most likely tokens whose probability mass
    reaches p: token i (by decreasing probability) is kept when the mass before it is
    < p, and so is every token as likely as the least likely kept one.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax import Array
from jaxtyping import Float, Int


@dataclasses.dataclass(frozen=True)
class Sampling:
  """temperature 0 = greedy (argmax; top_k/top_p unused); top_k 0 and top_p 1 = off."""
  temperature: float = 0.0
  top_k: int = 0
  top_p: float = 1.0
  seed: int = 0

  def __post_init__(self):
    if not self.temperature >= 0:
      raise ValueError(f'--temperature={self.temperature}: must be >= 0 (0 = greedy)')
    if self.top_k < 0:
      raise ValueError(f'--top_k={self.top_k}: must be >= 0 (0 = off)')
    if not 0 < self.top_p <= 1:
      raise ValueError(f'--top_p={self.top_p}: must be in (0, 1] (1 = off)')

  @property
  def greedy(self) -> bool:
    return self.temperature == 0

  def static(self) -> tuple[bool, bool, bool]:
    """What the compiled step needs to know: (greedy, top-k on, top-p on)."""
    return self.greedy, not self.greedy and self.top_k > 0, not self.greedy and self.top_p < 1


def row_keys(seed: int, rows: Int[Array, 'B']) -> Array:
  """Each row's key: fold_in(PRNGKey(seed), its index in the input)."""
  base = jax.random.PRNGKey(seed)
  return jax.vmap(lambda r: jax.random.fold_in(base, r))(rows)


def filter_logits(logits: Float[Array, 'B V'], top_k, top_p, *, use_top_k: bool,
                  use_top_p: bool) -> Float[Array, 'B V']:
  """Logits outside top-k / top-p set to -inf (float32). top_k, top_p may be traced."""
  logits = logits.astype(jnp.float32)
  if use_top_k:
    ordered = jnp.sort(logits, axis=-1)[:, ::-1]
    k = jnp.clip(top_k, 1, logits.shape[-1])
    kth = jax.lax.dynamic_index_in_dim(ordered, k - 1, axis=1, keepdims=True)
    logits = jnp.where(logits >= kth, logits, -jnp.inf)
  if use_top_p:
    probs = jax.nn.softmax(logits, axis=-1)
    ordered = jnp.sort(probs, axis=-1)[:, ::-1]
    before = jnp.cumsum(ordered, axis=-1) - ordered
    kept = before < top_p
    least = jnp.min(jnp.where(kept, ordered, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(probs >= least, logits, -jnp.inf)
  return logits


def choose(logits: Float[Array, 'B V'], keys: Array, step, temperature, top_k, top_p, *,
           static: tuple[bool, bool, bool]) -> Int[Array, 'B']:
  """The next token of each row; `keys` from row_keys, `step` the index of the token
  being chosen (0 = the first generated)."""
  greedy, use_top_k, use_top_p = static
  if greedy:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  scaled = logits.astype(jnp.float32) / temperature
  scaled = filter_logits(scaled, top_k, top_p, use_top_k=use_top_k, use_top_p=use_top_p)
  step_keys = jax.vmap(lambda k: jax.random.fold_in(k, step))(keys)
  return jax.vmap(jax.random.categorical)(step_keys, scaled).astype(jnp.int32)
