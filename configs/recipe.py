r"""The full-size recipe (`make recipe`, gemini_embed/recipe.py): the demo's pipeline at the
size meant for one GPU or a TPU slice — Gemma 3 270M at full depth (or a Gemma 3 1B HF
directory), bf16 compute over float32 parameters, long sequences, packing, a large
pre-finetuning batch through gradient caching, curated data, tens of thousands of
fine-tuning steps.

    python -m gemini_embed.train --config=configs/recipe.py:stage=prefinetune,corpora=DIR/corpora \
        --workdir=DIR/prefinetune
    python -m gemini_embed.train --config=configs/recipe.py:stage=finetune,mixture=language,seed=2,\
init_from=DIR/prefinetune,corpora=DIR/curated,extra=synthetic_queries+synthetic_classification \
        --workdir=DIR/finetune-b

Arguments: stage (prefinetune | finetune), mixture (finetune: task | language | code, the
paper's mixtures of FINETUNE_MIXTURES), seed, init_from (finetune: the pre-finetuning
workdir), corpora (build_corpora's output, or the curated corpora dir for fine-tunes),
llm (smollm2 | gemma3-270m, fetched by gemini_embed.models.fetch_offline; or a Gemma 3
Hugging Face directory, e.g. a 1B copied to gs://: its parameters and Adam state then
shard over every chip, fsdp), layers (keep the first N layers; 0 = full depth), steps
(0 = the stage's default), extra (finetune: '+'-separated training sets added at rate 1,
the curation tools' synthetic_queries / synthetic_classification), tiny (a CPU smoke
run of the same pipeline: 2 layers, batch 16, 4 steps).

Why these sizes: packing and gradient caching cannot be combined (packing mixes
examples in rows, gradient caching chunks examples; configlib/checks.py refuses both),
so the pre-finetune takes its large batch (4096 pairs, chunks of 512 embedded at a time)
unpacked, and the fine-tunes (256 triples, the paper's < 1024) pack their texts into rows.
Pre-finetuning is 1,000 steps × 4,096 pairs: the local (title, passage) sets hold ≈ 114k
pairs uncapped, so more would only repeat them (the paper's pre-finetuning corpus is
billions of web pairs). Two fine-tunes of 12,000 steps × 256: 24,000 fine-tuning steps
in all. `--dry_run` prints how many times each stage draws each set. Projected wall times per
stage (measured CPU step, scaled by FLOPs for a GPU / TPU): README "The full-size recipe".
"""

from gemini_embed.configlib import base_config, parse_arg, tiny_mode
from gemini_embed.data.corpora.training_sets import (FINETUNE_MIXTURES, PREFINETUNE_RATES,
                                                     built_sets, corpus_entries)
from gemini_embed.models.fetch_offline import MODELS, use_offline_model
from gemini_embed.models.presets import model_config

STAGES = ('prefinetune', 'finetune')
PREFINETUNE = dict(batch_size=4096, grad_cache_chunk=512, steps=1000, learning_rate=5e-5,
                   warmup_steps=100)
FINETUNE = dict(batch_size=256, steps=12_000, learning_rate=2e-5, warmup_steps=500)
CHECKPOINT_EVERY = 1000


def get_config(arg=None):
  arg = parse_arg(arg, config_file='configs/recipe.py', stage='prefinetune', mixture='task',
                  seed=0, init_from='', corpora='runs/recipe/corpora', llm='gemma3-270m',
                  layers=0, steps=0, extra='', tiny=False)
  if arg.stage not in STAGES:
    raise ValueError(f'configs/recipe.py: stage={arg.stage!r}; known: {STAGES}')
  if arg.mixture not in FINETUNE_MIXTURES:
    raise ValueError(f'configs/recipe.py: mixture={arg.mixture!r}; known: '
                     f'{sorted(FINETUNE_MIXTURES)}')
  config = base_config('tiny')
  # bf16 compute; parameters and optimiser state stay float32 (as configs/pod.py).
  config.model.precision = 'params=float32,compute=bfloat16,output=float32'
  config.model.remat = 'full'
  if arg.llm in MODELS:
    use_offline_model(config, arg.llm)
    config.mesh.data, config.mesh.fsdp = -1, 1  # 270M: the whole state fits on every chip
  else:  # a Hugging Face directory (a Gemma 3 1B): its own architecture replaces the preset's
    policies = {f: config.model[f] for f in ('attention_mode', 'precision', 'remat')}
    config.model = model_config('gemma3-1b', **policies)
    config.init_from = arg.llm
    config.mesh.data, config.mesh.fsdp = 1, -1  # parameters + Adam state over every chip
  config.truncate_layers = arg.layers
  config.stage = arg.stage
  config.seed = arg.seed
  config.loss.temperature = 0.05
  config.optim.frozen = ()
  config.optim.lr_mults = (('projection', 10.0),)
  config.optim.weight_decay = 0.01
  config.checkpoint.every = CHECKPOINT_EVERY
  config.checkpoint.keep_every = 5 * CHECKPOINT_EVERY
  config.log_every = 50
  config.data.root = arg.corpora
  config.data.query_max_len = 128
  config.data.doc_max_len = 256
  if arg.stage == 'prefinetune':
    config.data.datasets = corpus_entries(built_sets(PREFINETUNE_RATES, arg.corpora))
    config.data.num_negatives = 0
    config.data.pack = False  # gradient caching instead (see the docstring)
    config.batch_size = PREFINETUNE['batch_size']
    config.grad_cache_chunk = PREFINETUNE['grad_cache_chunk']
    config.total_steps = arg.steps or PREFINETUNE['steps']
    config.optim.learning_rate = PREFINETUNE['learning_rate']
    config.optim.warmup_steps = PREFINETUNE['warmup_steps']
  else:
    if arg.init_from:
      config.init_from = arg.init_from
    rates = dict(FINETUNE_MIXTURES[arg.mixture], **{n: 1.0 for n in arg.extra.split('+') if n})
    config.data.datasets = corpus_entries(built_sets(rates, arg.corpora))
    config.data.num_negatives = 1
    config.data.pack = True
    config.batch_size = FINETUNE['batch_size']
    config.total_steps = arg.steps or FINETUNE['steps']
    config.optim.learning_rate = FINETUNE['learning_rate']
    config.optim.warmup_steps = FINETUNE['warmup_steps']
  if arg.tiny:
    tiny_mode(config)
    # The smoke run keeps the recipe's head (its dims are the ones evaluated), two of the
    # LLM's layers with a frozen token table, float32 (bf16 is slower on the AVX2 CPUs),
    # and gradient caching in the pre-finetune (chunks of 8).
    config.embed_dim = 768
    config.mrl_dims = (128, 256, 768)
    config.truncate_layers = arg.layers or 2
    config.optim.frozen = ('backbone/embedding',)
    config.model.precision = 'params=float32,compute=float32,output=float32'
    config.model.remat = 'none'
    config.mesh.data, config.mesh.fsdp = -1, 1
    config.grad_cache_chunk = 8 if arg.stage == 'prefinetune' else 0
    config.total_steps = arg.steps or 4
  return config
