"""The flags every curation tool takes, the Judge they build, and how a tool's command runs."""

from __future__ import annotations

from typing import Callable

from absl import flags

from gemini_embed.curate.judge import Judge
from gemini_embed.llm import cli as llm_cli
from gemini_embed.llm.sampling import Sampling

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined when a tool runs as a command only (importing a tool defines no flags)."""
  llm_cli.define_model_flags(shards_note='; the last shard to finish merges')
  flags.DEFINE_bool('strict', True, 'Stop at the first bad input row (path:line, field); '
                    '--nostrict rejects it with its reason and goes on.')
  flags.DEFINE_integer('max_passage_chars', 1000, 'Passages are cut to this many characters '
                       'inside prompts (the rows keep them whole).')
  flags.DEFINE_integer('seed', 0, 'Sampling seed (each row samples with fold_in(seed, row)).')
  flags.mark_flag_as_required('llm')


def define_sampling_flags(temperature: float) -> None:
  """--temperature (this default) and --top_p, for the tools that sample (with --seed)."""
  flags.DEFINE_float('temperature', temperature, 'Sampling temperature (0 = greedy).')
  flags.DEFINE_float('top_p', 0.95, 'Nucleus mass.')


def sampling() -> Sampling:
  """The sampling the flags of define_sampling_flags and --seed ask for."""
  return Sampling(temperature=FLAGS.temperature, top_p=FLAGS.top_p, seed=FLAGS.seed)


def run_tool(tool: Callable[..., bool], source: str, outputs: str) -> None:
  """A curation command: the Judge on this process's mesh, then
  tool(judge, num_shards=..., shard=...) (True once it merged), and what it did."""
  llm, mesh, rules, num_shards, shard = llm_cli.setup()
  judge = Judge(llm, mesh, rules, batch_size=FLAGS.batch_size, chat=FLAGS.chat)
  if tool(judge, num_shards=num_shards, shard=shard):
    print(f'{source} → {outputs}')
  else:
    print(f'{source}: shard {shard} of {num_shards} done; the last shard merges')


def cut(text: str, max_chars: int) -> str:
  """A passage as prompts show it: at most max_chars characters."""
  return text if len(text) <= max_chars else text[:max_chars].rstrip() + ' …'
