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
