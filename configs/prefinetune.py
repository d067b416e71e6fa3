"""Stage 1 — pre-finetuning on (title, passage) pairs: large batches, no hard negatives.

    python -m gemini_embed.train --config=configs/prefinetune.py --workdir=DIR
    python -m gemini_embed.train --config=configs/prefinetune.py:tiny --workdir=DIR

Arguments (`:key=value,...`): tiny (a seconds-long CPU run), model (a preset
from gemini_embed/models/presets.py).
"""

from gemini_embed.configlib import base_config, parse_arg, tiny_mode
from gemini_embed.data.corpora.training_sets import PREFINETUNE_RATES, corpus_entries


def get_config(arg=None):
  arg = parse_arg(arg, config_file='configs/prefinetune.py', tiny=False, model='gemma3-1b')
  config = base_config('tiny' if arg.tiny else arg.model)
  config.stage = 'prefinetune'
  config.batch_size = 8192
  config.total_steps = 20_000
  config.loss.temperature = 0.05
  # Data: `python -m gemini_embed.data.build_corpora --out=runs/corpora` writes these files.
  config.data.root = 'runs/corpora'
  config.data.datasets = corpus_entries(PREFINETUNE_RATES)
  config.data.num_negatives = 0  # (title, passage) pairs
  config.data.query_max_len = 64
  config.data.doc_max_len = 256

  if arg.tiny:  # seconds on a laptop CPU; what the tests run
    tiny_mode(config)
  return config
