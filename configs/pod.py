"""Pod-scale runs of Gemma-3-class backbones (1B–12B) on TPU slices.

    python -m gemini_embed.aot --config=configs/pod.py:model=gemma3-4b --topology=v5p-128
    python launch/pod.py --tpu=ft-4b --zone=us-east5-a run -- \\
        --config=configs/pod.py:model=gemma3-4b,stage=finetune,chips=64,init_from=gs://.../pft \\
        --workdir=gs://bucket/runs/ft-4b

Arguments: model (a preset: gemma3-1b | gemma3-4b | gemma3-12b), stage
(prefinetune | finetune), chips (the slice's chips — v5p-128 has 64, v5e-256 256 —;
the mesh is data × fsdp; gemini_embed.aot sets it from --topology), fsdp (0 = by
model size: parameters + Adam state shard over fsdp and replicate over data, so
bigger models need wider fsdp to leave HBM for activations), tiny (a CPU-sized run of the same code path),
init_from. tests/test_pod_configs.py lowers each preset's sharded train step for
its target mesh on CPU (AbstractMesh) before a pod is ever held.
"""

from gemini_embed.configlib import base_config, parse_arg, tiny_mode
from gemini_embed.data.corpora.training_sets import (FINETUNE_MIXTURES, PREFINETUNE_RATES,
                                                     corpus_entries)


# The argument a launcher sets to the slice's chip count (gemini_embed.aot does, from
# --topology): the mesh then follows the slice (v5p-128 is 64 chips, v5e-256 is 256).
SLICE_ARG = 'chips'

FSDP_BY_MODEL = {'gemma3-1b': 16, 'gemma3-4b': 64, 'gemma3-12b': 256}


def get_config(arg=None):
  arg = parse_arg(arg, config_file='configs/pod.py', model='gemma3-4b', stage='prefinetune',
                  chips=256, fsdp=0, tiny=False, init_from='')
  config = base_config('tiny-gemma3' if arg.tiny else arg.model)
  config.stage = arg.stage
  config.init_from = arg.init_from
  # bf16 compute; params and optimiser state stay float32
  config.model.precision = 'params=float32,compute=bfloat16,output=float32'
  config.model.remat = 'full'
  fsdp = min(arg.fsdp or FSDP_BY_MODEL.get(arg.model, 16), arg.chips)
  config.mesh.data, config.mesh.fsdp, config.mesh.tensor = -1, fsdp, 1
  config.peak_flops_per_device = 197e12  # TPU v5e, bf16
  config.optim.frozen = ()
  config.optim.lr_mults = (('projection', 10.0),)
  config.checkpoint.every = 1000
  config.checkpoint.keep_every = 5000
  config.log_every = 50
  if arg.stage == 'prefinetune':
    config.data.datasets = corpus_entries(PREFINETUNE_RATES)
    config.data.num_negatives = 0
    config.batch_size = 8192
    config.grad_cache_chunk = 1024
    config.total_steps = 20_000
    config.optim.learning_rate = 1e-5
  else:
    config.data.datasets = corpus_entries(FINETUNE_MIXTURES['task'])
    config.data.num_negatives = 1
    config.batch_size = 512
    config.total_steps = 5_000
    config.optim.learning_rate = 5e-6
  config.data.query_max_len = 256
  config.data.doc_max_len = 512
  if arg.tiny:
    tiny_mode(config)
    config.mesh.fsdp = 2
    config.model.precision = 'params=float32,compute=float32,output=float32'
    config.grad_cache_chunk = 0
  return config
