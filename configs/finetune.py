"""Stage 2 — fine-tuning on a task-homogeneous mixture of (query, positive, hard negative)
triples: every batch from one dataset, smaller batches, initialised from stage 1.

    python -m gemini_embed.train --config=configs/finetune.py --workdir=DIR
    python -m gemini_embed.train --config=configs/finetune.py:tiny,mixture=code --workdir=DIR

Arguments (`:key=value,...`): tiny (a seconds-long CPU run), model (a preset from
gemini_embed/models/presets.py), mixture (task | language | code: the paper's three
mixtures, rates in gemini_embed/data/corpora/training_sets.py), init_from (the
pre-finetuning workdir), seed (soup ingredients differ in seed or mixture).
"""

from gemini_embed.configlib import base_config, parse_arg, tiny_mode
from gemini_embed.data.corpora.training_sets import FINETUNE_MIXTURES, corpus_entries


def get_config(arg=None):
  arg = parse_arg(arg, config_file='configs/finetune.py', tiny=False, model='gemma3-1b',
                  mixture='task', init_from='runs/prefinetune', seed=0)
  if arg.mixture not in FINETUNE_MIXTURES:
    raise ValueError(f'configs/finetune.py: mixture={arg.mixture!r}; known: '
                     f'{sorted(FINETUNE_MIXTURES)}')
  config = base_config('tiny' if arg.tiny else arg.model)
  config.stage = 'finetune'
  config.seed = arg.seed
  config.init_from = arg.init_from
  config.batch_size = 512  # the paper: < 1024
  config.total_steps = 5_000
  config.loss.temperature = 0.05
  config.data.root = 'runs/corpora'
  config.data.datasets = corpus_entries(FINETUNE_MIXTURES[arg.mixture])
  config.data.num_negatives = 1
  config.data.query_max_len = 128
  config.data.doc_max_len = 256

  if arg.tiny:  # seconds on a laptop CPU; what the tests run
    tiny_mode(config)
  return config


def sweep(add):
  """Mixture-rate sweep (big_vision style): each `add(**overrides)` is one run.
  `python -m gemini_embed.sweep --config=configs/finetune.py:tiny --workdir=runs/sweep`."""
  for code_rate in (0.5, 1.0, 2.0, 4.0):
    add(**{'data.datasets.code_docstring.rate': code_rate})
