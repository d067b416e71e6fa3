"""The optimiser from `config.optim`: AdamW, warm-up + decay, clipping,
weight-decay masks, per-group learning-rate multipliers and frozen groups.

Groups are regular expressions over parameter paths such as
`backbone/blocks/attn/q_proj` or `projection` (first match wins):

    optim.lr_mults = (('projection', 10.0),)   # the random head learns faster
    optim.frozen = ('backbone/embedding',)     # keep the token table fixed
    optim.no_decay = ('norm', 'bias')          # no weight decay on these
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import jax
import ml_collections
import optax

SCHEDULES = ('cosine', 'linear', 'constant', 'rsqrt')


def default_optim_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      learning_rate=1e-4,
      warmup_steps=100,
      schedule='cosine',       # decay after warm-up: cosine | linear | constant | rsqrt
      end_lr_fraction=0.0,     # final lr = learning_rate × this (cosine, linear)
      b1=0.9, b2=0.999, eps=1e-8,
      weight_decay=0.0,
      no_decay=('norm', 'bias', 'temperature'),
      clip_norm=1.0,           # 0 = no clipping
      lr_mults=(),             # ((regex, multiplier), ...)
      frozen=(),               # (regex, ...)
  ))


def learning_rate_schedule(cfg, total_steps: int) -> optax.Schedule:
  peak, warm = cfg.learning_rate, cfg.warmup_steps
  decay_steps = max(total_steps - warm, 1)
  end = peak * cfg.end_lr_fraction
  if cfg.schedule == 'cosine':
    decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=cfg.end_lr_fraction)
  elif cfg.schedule == 'linear':
    decay = optax.linear_schedule(peak, end, decay_steps)
  elif cfg.schedule == 'constant':
    decay = optax.constant_schedule(peak)
  elif cfg.schedule == 'rsqrt':
    decay = lambda step: peak * jax.lax.rsqrt(1.0 + step / max(warm, 1))
  else:
    raise ValueError(f'config.optim.schedule={cfg.schedule!r}: choose one of {SCHEDULES}')
  if warm <= 0:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warm), decay], [warm])


def path_name(path) -> str:
  """`backbone/blocks/attn/q_proj` from a jax key path (dropping Variable's `.value`).

  The names `flatten_dict(nnx.to_pure_dict(state), sep='/')` gives elsewhere; here the
  tree is whatever optax hands a mask/label function (Variables, not a pure dict), so
  the names come from the key paths of `tree_map_with_path`."""
  parts = []
  for entry in path:
    key = getattr(entry, 'key', getattr(entry, 'name', getattr(entry, 'idx', entry)))
    if key != 'value':
      parts.append(str(key))
  return '/'.join(parts)


def group_labels(params, cfg) -> Any:
  """A tree of group labels ('frozen', 'mult0', 'mult1', …, 'default') like `params`."""
  def label(path, _):
    name = path_name(path)
    if any(re.search(p, name) for p in cfg.frozen):
      return 'frozen'
    for i, (pattern, _mult) in enumerate(cfg.lr_mults):
      if re.search(pattern, name):
        return f'mult{i}'
    return 'default'
  return jax.tree_util.tree_map_with_path(label, params)


def stop_frozen_gradients(params, frozen: Sequence[str]) -> Any:
  """`params` with the leaves whose path matches a `frozen` regex behind
  `lax.stop_gradient`: their gradients are exact zeros XLA never computes (the frozen
  token table's scatter-add), and they count neither in clipping nor in grad_norm —
  what PyTorch's clip_grad_norm_ over the trainable parameters does."""
  if not frozen:
    return params
  return jax.tree_util.tree_map_with_path(
      lambda path, x: (jax.lax.stop_gradient(x)
                       if any(re.search(p, path_name(path)) for p in frozen) else x), params)


def decay_mask(params, cfg) -> Any:
  return jax.tree_util.tree_map_with_path(
      lambda path, _: not any(re.search(p, path_name(path)) for p in cfg.no_decay), params)


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
  schedule = learning_rate_schedule(cfg, total_steps)

  def adamw(mult: float) -> optax.GradientTransformation:
    return optax.chain(
        optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps),
        optax.add_decayed_weights(cfg.weight_decay, mask=lambda p: decay_mask(p, cfg)),
        optax.scale_by_learning_rate(lambda step: schedule(step) * mult),
    )

  groups = {'default': adamw(1.0), 'frozen': optax.set_to_zero()}
  for i, (_pattern, mult) in enumerate(cfg.lr_mults):
    groups[f'mult{i}'] = adamw(float(mult))
  parts = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm > 0 else []
  parts.append(optax.multi_transform(groups, lambda p: group_labels(p, cfg)))
  return optax.chain(*parts)
