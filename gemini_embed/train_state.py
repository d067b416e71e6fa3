"""The train state (embedder + optimiser) and how it comes to exist on the mesh:
shapes first (`eval_shape`), shardings from the logical rules, then either a
jitted sharded init, a wrap of the `init_from` model (models/pretrained.py), or a
checkpoint restore (checkpoint.restore_targets).
"""

from __future__ import annotations

from typing import Callable

import jax
import optax
from flax import nnx

from gemini_embed import sharding as sharding_lib
from gemini_embed.models.embedder import Embedder


class TrainState(nnx.Module):
  """What a training step reads and writes: the model and its optimiser."""

  def __init__(self, model: Embedder, tx: optax.GradientTransformation):
    self.model = model
    self.optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)


def abstract_train_state(make_model: Callable[[], Embedder], tx, mesh, rules):
  """(graphdef, abstract state, shardings) without allocating anything."""
  return sharding_lib.abstract_state(lambda: TrainState(make_model(), tx), mesh, rules)


def fresh_train_state(make_model, tx, shardings):
  """Random init, every array created directly in its sharding."""
  return sharding_lib.jit_init(lambda: nnx.state(TrainState(make_model(), tx)), shardings)


def train_state_from_model(model: Embedder, tx, shardings):
  """Wraps pretrained weights (already placed) with a fresh optimiser state."""
  graphdef, params = nnx.split(model)
  return sharding_lib.jit_init(
      lambda params: nnx.state(TrainState(nnx.merge(graphdef, params), tx)), shardings, params)


def jitted_train_step(graphdef, shardings, config):
  """The one train step: jit with explicit state shardings, donated state; the batch
  arrives as global arrays already sharded over the batch axes.

  Returns (step, traces): `traces` grows by one entry (the batch shapes) each time
  the step is traced, i.e. once per compiled shape bucket.
  """
  import jax.numpy as jnp
  from gemini_embed import losses, optim
  schedule = optim.learning_rate_schedule(config.optim, config.total_steps)
  traces = []

  def train_step(state, batch):
    traces.append(jax.tree.map(jnp.shape, batch))
    ts = nnx.merge(graphdef, state)
    loss, metrics, grads = losses.loss_and_grads(
        ts.model, batch, mrl_dims=tuple(config.mrl_dims), loss_config=config.loss,
        grad_cache_chunk=config.grad_cache_chunk)
    ts.optimizer.update(ts.model, grads)
    metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads),
                   lr=schedule(ts.optimizer.step[...] - 1))
    return nnx.state(ts), metrics

  step = jax.jit(train_step, in_shardings=(shardings, None), out_shardings=(shardings, None),
                 donate_argnums=0)
  return step, traces
