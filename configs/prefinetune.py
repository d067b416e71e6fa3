"""Stage 1 — pre-finetuning on (title, passage) pairs: large batches, no hard negatives.

    python -m gemini_embed.train --config=configs/prefinetune.py --workdir=DIR
    python -m gemini_embed.train --config=configs/prefinetune.py:tiny --workdir=DIR

Arguments (`:key=value,...`): tiny (a seconds-long CPU run), model (a preset
from gemini_embed/models/presets.py).
"""

from gemini_embed.configlib import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, config_file='configs/prefinetune.py', tiny=False, model='gemma3-1b')
  config = base_config('tiny' if arg.tiny else arg.model)
  config.stage = 'prefinetune'
  config.batch_size = 8192
  config.total_steps = 20_000
  config.loss.temperature = 0.05

  if arg.tiny:  # seconds on a laptop CPU; what the tests run
    config.embed_dim = 96
    config.mrl_dims = (32, 64, 96)
    config.batch_size = 16
    config.total_steps = 4
  return config
