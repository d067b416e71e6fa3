"""The flags every curation tool takes, and the LLM, mesh and shard they name."""

from __future__ import annotations

import jax
from absl import flags

from gemini_embed import sharding
from gemini_embed.curate.judge import Judge
from gemini_embed.llm.model import load_llm

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined when a tool runs as a command only (importing a tool defines no flags)."""
  flags.DEFINE_string('llm', None, 'smollm2 | gemma3-270m | a GGUF or Hugging Face model '
                      'directory (as llm.generate --llm).')
  flags.DEFINE_bool('chat', False, "Wrap each prompt in the model's chat template (the "
                    'offline Gemma 3 270M is a base model: leave it off).')
  flags.DEFINE_integer('batch_size', 8, 'LLM rows per batch (rounded up to the data-parallel '
                       'size).')
  flags.DEFINE_integer('num_shards', None, 'Split the input into this many contiguous shards '
                       '(default: the JAX process count); the last shard to finish merges.')
  flags.DEFINE_integer('shard', None, 'Which shard this run does (default: the JAX process '
                       'index).')
  flags.DEFINE_string('mesh', 'data:-1', "Mesh over this process's devices.")
  flags.DEFINE_string('precision', None, 'LLM precision policy (default float32).')
  flags.DEFINE_bool('strict', True, 'Stop at the first bad input row (path:line, field); '
                    '--nostrict rejects it with its reason and goes on.')
  flags.DEFINE_integer('max_passage_chars', 1000, 'Passages are cut to this many characters '
                       'inside prompts (the rows keep them whole).')
  flags.DEFINE_integer('seed', 0, 'Sampling seed (each row samples with fold_in(seed, row)).')
  flags.mark_flag_as_required('llm')


def setup() -> tuple[Judge, int, int]:
  """(the Judge on this process's mesh, num_shards, shard) from the flags."""
  mesh = sharding.make_mesh(sharding.parse_mesh(FLAGS.mesh), jax.local_devices(),
                            field='--mesh')
  rules = sharding.DEFAULT_RULES
  llm = load_llm(FLAGS.llm, mesh, rules, FLAGS.precision)
  num_shards = FLAGS.num_shards if FLAGS.num_shards is not None else jax.process_count()
  shard = FLAGS.shard if FLAGS.shard is not None else jax.process_index()
  return Judge(llm, mesh, rules, batch_size=FLAGS.batch_size, chat=FLAGS.chat), num_shards, shard


def cut(text: str, max_chars: int) -> str:
  """A passage as prompts show it: at most max_chars characters."""
  return text if len(text) <= max_chars else text[:max_chars].rstrip() + ' …'
