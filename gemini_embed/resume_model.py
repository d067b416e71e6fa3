"""A resumed run's model: the workdir's model.json, checked against this run's config.

A workdir's checkpoints hold the parameter tree its model.json describes. A resume
whose config describes another tree (a backbone field, embed_dim, a learned τ) is
refused before anything is written, naming each field with both values. What changes
only how the model computes (POLICY_FIELDS: attention_mode, attention_impl, precision,
remat, scan_unroll; orbax casts the saved params to a new params dtype) or which prefixes
the loss trains (mrl_dims) follows the config: logged, then recorded in model.json.

The backbone a config describes is `config.model`, or for an `init_from` run what its
source gives (config.json, GGUF metadata or model.json, with `truncate_layers`). If
that source cannot be read any more, only embed_dim and τ are compared: the resume
itself needs nothing from it.
"""

from __future__ import annotations

import dataclasses
import os

from absl import logging

from gemini_embed.checkpoint import ModelInfo
from gemini_embed.configlib.checks import ConfigError
from gemini_embed.models import pretrained
from gemini_embed.models.model_config import TransformerConfig


def resumed_model_info(config, stored: ModelInfo, workdir: str) -> ModelInfo:
  """`stored` under this run's policies and mrl_dims; ConfigError if `config` asks for
  another parameter tree."""
  where = os.path.join(workdir, 'model.json')
  refused = [f'{label}: {old} in model.json, {new} now'
             for label, old, new in _tree_differences(config, stored)]
  if refused:
    raise ConfigError(
        f'{where}: this config describes another model than the one this workdir\'s '
        'checkpoints hold:\n  ' + '\n  '.join(refused) + f'\nNothing in {workdir} was '
        'changed. Train the new model in a new --workdir, or revert these settings to '
        'resume this run.')
  info = ModelInfo(stored.model.replace(**pretrained.run_policies(config)), stored.embed_dim,
                   tuple(config.mrl_dims), stored.learned_temperature)
  for field in pretrained.POLICY_FIELDS:
    old, new = getattr(stored.model, field), getattr(info.model, field)
    if old != new:
      logging.warning('%s: config.model.%s: %s in model.json, %s now (how the model computes; '
                      'from this step on)', where, field, old, new)
  if info.mrl_dims != stored.mrl_dims:
    logging.warning('%s: config.mrl_dims: %s in model.json, %s now (the prefixes the loss '
                    'trains and evaluate reports, from this step on)', where,
                    stored.mrl_dims, info.mrl_dims)
  return info


def _tree_differences(config, stored: ModelInfo) -> list[tuple[str, object, object]]:
  out = []
  if config.embed_dim != stored.embed_dim:
    out.append(('config.embed_dim', stored.embed_dim, config.embed_dim))
  if bool(config.loss.learn_temperature) != stored.learned_temperature:
    out.append(('config.loss.learn_temperature', stored.learned_temperature,
                bool(config.loss.learn_temperature)))
  backbone, label = _configured_backbone(config)
  if backbone is not None:
    for f in dataclasses.fields(TransformerConfig):
      old, new = getattr(stored.model, f.name), getattr(backbone, f.name)
      if f.name not in pretrained.POLICY_FIELDS and old != new:
        out.append((label.format(f.name), old, new))
  return out


def _configured_backbone(config) -> tuple[TransformerConfig | None, str]:
  """The backbone `config` describes and how to name its fields (None: unknown)."""
  if not config.init_from:
    return TransformerConfig.from_config(config.model), 'config.model.{}'
  source = (f'config.init_from={config.init_from}, '
            f'config.truncate_layers={config.get("truncate_layers", 0)}')
  try:
    return pretrained.init_from_architecture(config), '{} (' + source + ')'
  except (OSError, ValueError) as e:
    logging.warning('%s: cannot read its architecture (%s); resuming with the one in the '
                    "workdir's model.json", source, e)
    return None, ''
