"""The CPU demo (`make demo`): the paper's recipe from a real offline LLM on real local
corpora, sized to finish on a 2-core laptop. `gemini_embed/demo.py` runs its stages.

    python -m gemini_embed.train --config=configs/demo.py:stage=prefinetune --workdir=DIR/prefinetune
    python -m gemini_embed.train --config=configs/demo.py:stage=finetune,seed=1,init_from=DIR/prefinetune \\
        --workdir=DIR/finetune-a

Arguments: stage (prefinetune | finetune), seed, mixture (finetune: task | language |
code), init_from (finetune: the pre-finetuning workdir), corpora (the build_corpora
output), llm (gemma3-270m | smollm2), layers (keep the first N layers of the LLM),
steps (0 = the default for the stage), quick (smoke-test size), hard_negatives
(finetune: 1 or 0), duplicate_mask (the loss's mask, for ablations), extra (finetune:
training sets added to the mixture at rate 1, '+'-separated, e.g.
synthetic_queries+synthetic_classification: the curation tools' outputs in DIR/train).

Why these sizes: Gemma 3 270M's first 4 of 18 layers (multilingual: on the dev suite's
select half its fine-tune scored +20.4 [+15.7, +25.1] Mean(Task) over SmolLM2-135M's first
4 layers at the same steps, README "The demo"); the token table is frozen (262k × 640:
it would dominate the optimiser's memory and time for no gain at this step count).
"""

from gemini_embed.configlib import base_config, parse_arg, tiny_mode
from gemini_embed.data.corpora.training_sets import (FINETUNE_MIXTURES, PREFINETUNE_RATES,
                                                     built_sets, corpus_entries)
from gemini_embed.models.fetch_offline import use_offline_model


def get_config(arg=None):
  arg = parse_arg(arg, config_file='configs/demo.py', stage='prefinetune', seed=0, mixture='task',
                  init_from='', corpora='runs/corpora', llm='gemma3-270m', layers=4, steps=0,
                  quick=False, tiny=False, hard_negatives=1, duplicate_mask=True,
                  extra='')
  config = base_config('tiny')
  use_offline_model(config, arg.llm)
  config.truncate_layers = arg.layers
  config.stage = arg.stage
  config.seed = arg.seed
  config.embed_dim = 768
  config.mrl_dims = (128, 256, 768)
  config.loss.temperature = 0.05
  config.loss.mask_duplicates = arg.duplicate_mask
  config.optim.frozen = ('backbone/embedding',)
  config.optim.lr_mults = (('projection', 10.0),)
  config.optim.warmup_steps = 10
  config.optim.weight_decay = 0.01
  config.data.root = arg.corpora
  config.data.query_max_len = 32
  config.data.doc_max_len = 64
  config.data.num_buckets = 2
  # Texts packed into rows of 64 tokens (data/packing.py): ~1.7× fewer model FLOPs per
  # step on these corpora (padded 49% → 83% real tokens); the same examples per step.
  config.data.pack = True
  # The (≤ 8) layers unrolled: XLA's CPU backend fuses and overlaps across layers (~13% faster
  # step here; bench/train_throughput.py).
  config.model.scan_unroll = arg.layers if 0 < arg.layers <= 8 else 1
  config.checkpoint.every = 50
  # One checkpoint kept per run (a save completes before the older one goes): each holds the
  # frozen embedding table (Gemma 3: 262k × 640 in float32, 0.6 GB), and the soup and the
  # evaluation read only the last.
  config.checkpoint.keep = 1
  config.log_every = 5
  if arg.stage == 'prefinetune':
    config.data.datasets = corpus_entries(built_sets(PREFINETUNE_RATES, arg.corpora))
    config.data.num_negatives = 0
    config.batch_size = 64
    config.total_steps = arg.steps or 60
    config.optim.learning_rate = 1e-4
  else:
    config.init_from = arg.init_from
    rates = dict(FINETUNE_MIXTURES[arg.mixture], **{n: 1.0 for n in arg.extra.split('+') if n})
    config.data.datasets = corpus_entries(built_sets(rates, arg.corpora))
    config.data.num_negatives = arg.hard_negatives
    config.batch_size = 32
    config.total_steps = arg.steps or 40
    config.optim.learning_rate = 5e-5
    # Held after the warm-up, not decayed: +1.05 [+0.24, +1.92] Mean(Task) on the select
    # half over cosine decay, seeds 1-3 pooled (README "What each lever bought").
    config.optim.schedule = 'constant'
  if arg.quick or arg.tiny:  # `tiny` as in every config: the same smoke-test size
    tiny_mode(config)
    # What differs from the shared tiny mode: the demo's own head (its dims are the ones
    # the demo evaluates), two of the LLM's layers, a longer warmup, and `steps`.
    config.embed_dim = 768
    config.mrl_dims = (128, 256, 768)
    config.truncate_layers = 2
    config.optim.warmup_steps = 2
    # One packed row count, so each 4-step run compiles its step once (~10 s a compile on
    # 2 cores) instead of once per row count its few batches happen to need.
    config.data.pack_row_counts = 1
    config.total_steps = arg.steps or 4
  return config
