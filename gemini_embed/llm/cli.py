"""What the LLM tools share: their common flags, the mesh, the model, the shard."""

from __future__ import annotations

import jax
from absl import flags

from gemini_embed import sharding
from gemini_embed.llm.model import LLM, load_llm

FLAGS = flags.FLAGS
REQUIRED = ['llm', 'input', 'output']


def define_model_flags(shards_note: str = '') -> None:
  """The model, mesh and shard flags of every LLM tool (llm.generate, llm.score and the
  curate tools); shards_note ends --num_shards' help. Defined when a tool runs as a
  command only, so that importing the tools' functions (tests, other tools) defines no
  absl flags."""
  flags.DEFINE_string('llm', None, 'smollm2 | gemma3-270m (the offline models) | a GGUF model '
                      'directory | a Hugging Face directory (config.json, *.safetensors, '
                      'tokenizer.json).')
  flags.DEFINE_bool('chat', False, "Wrap each prompt in the model's chat template (the "
                    'offline Gemma 3 270M is a base model: leave it off).')
  flags.DEFINE_integer('batch_size', 8, 'LLM rows per batch (rounded up to the data-parallel '
                       'size).')
  flags.DEFINE_integer('num_shards', None, 'Split the input into this many contiguous shards '
                       f'(default: the JAX process count){shards_note}.')
  flags.DEFINE_integer('shard', None, 'Which shard this run does (default: the JAX process '
                       'index).')
  flags.DEFINE_string('mesh', 'data:-1', "Mesh over this process's devices, e.g. "
                      'data:-1,fsdp:1,tensor:2.')
  flags.DEFINE_string('precision', None, 'e.g. params=float32,compute=bfloat16,output=float32 '
                      '(default: float32 throughout).')


def define_flags() -> None:
  """The flags both llm tools take (define_model_flags, --input, --output)."""
  define_model_flags()
  flags.DEFINE_string('input', None, 'Input JSONL.')
  flags.DEFINE_string('output', None, 'Output JSONL (appended to: a rerun resumes).')
  flags.mark_flags_as_required(REQUIRED)


def setup() -> tuple[LLM, object, tuple, int, int]:
  """(the LLM on this process's mesh, mesh, rules, num_shards, shard) from the flags."""
  mesh = sharding.make_mesh(sharding.parse_mesh(FLAGS.mesh), jax.local_devices(),
                            field='--mesh')
  rules = sharding.DEFAULT_RULES
  llm = load_llm(FLAGS.llm, mesh, rules, FLAGS.precision)
  num_shards = FLAGS.num_shards if FLAGS.num_shards is not None else jax.process_count()
  shard = FLAGS.shard if FLAGS.shard is not None else jax.process_index()
  return llm, mesh, rules, num_shards, shard
