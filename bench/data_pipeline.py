"""Input-pipeline throughput: examples/s of the fine-tuning (or pre-finetuning) mixture,
tokenised with the backbone's tokenizer, on real corpus text, in one process.

    python bench/data_pipeline.py [--corpora=runs/corpora] [--batch_size=64] [--steps=60]
        [--stage=finetune|prefinetune] [--tokenizer=smollm2|gemma3-270m|PATH.json]

The corpora come from `python -m gemini_embed.data.build_corpora --out=DIR` (built
into DIR first when missing). The tokenizer is the one `python -m
gemini_embed.models.fetch_offline NAME` saved (~/.cache/gemini_embed/NAME/tokenizer.json);
without it, a byte-level BPE of SmolLM2's vocabulary size is trained on the corpus.
Reported: examples/s (and tokens/s) of the synchronous pipeline (read_threads=0: one
core, what a host spends) and with one prefetch thread (what the train loop sees
when the step is slower than the pipeline). Compare with the train step's
examples/s at the same batch size; the pipeline should be ≥ 10× faster.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
from flax import nnx  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: E402

from gemini_embed import optim, sharding, train_step  # noqa: E402
from gemini_embed import train_state as ts_lib  # noqa: E402
from gemini_embed.configlib import load_config_file  # noqa: E402
from gemini_embed.data import build_corpora, pipeline  # noqa: E402
from gemini_embed.models.embedder import Embedder  # noqa: E402
from gemini_embed.models.fetch_offline import default_model_dir  # noqa: E402
from gemini_embed.models.pretrained import load_init_from  # noqa: E402
from gemini_embed.models.tokenizer import load_tokenizer as run_tokenizer  # noqa: E402

FAMILY = {'smollm2': 'llama', 'gemma3-270m': 'gemma3'}


def _cache_dir(name: str) -> str:
  root = os.environ.get('GEMINI_EMBED_CACHE', os.path.expanduser('~/.cache/gemini_embed'))
  return os.path.join(root, name)


def load_tokenizer(choice: str, corpora: str) -> tuple[Tokenizer, str, str]:
  """(tokenizer, what it is, model family)."""
  if choice.endswith('.json'):
    return Tokenizer.from_file(choice), choice, 'llama'
  path = os.path.join(_cache_dir(choice), 'tokenizer.json')
  if os.path.exists(path):
    return Tokenizer.from_file(path), f'{choice} ({path})', FAMILY.get(choice, 'llama')
  texts = []
  for name in sorted(glob.glob(os.path.join(corpora, 'train', '*.jsonl'))):
    with open(name, encoding='utf-8') as f:
      for i, line in enumerate(f):
        if i >= 3000:
          break
        row = json.loads(line)
        texts += [row['query'], row['positive']]
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.train_from_iterator(texts, trainers.BpeTrainer(
      vocab_size=49_152, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
      special_tokens=['<pad>', '<bos>', '<eos>']))
  return tok, (f'byte-level BPE trained on {len(texts)} corpus texts (run `python -m '
               f'gemini_embed.models.fetch_offline {choice}` for the real one)'), 'llama'


def load_config(stage: str, corpora: str, batch_size: int, read_threads: int):
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs',
                      f'{stage}.py')
  spec = importlib.util.spec_from_file_location('config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config('model=smollm2-135m')
  config.data.root = corpora
  config.batch_size = batch_size
  config.data.read_threads = read_threads
  return config


def measure(config, tokenizer, family: str, steps: int) -> dict:
  start = time.perf_counter()
  data = pipeline.training_data(config, tokenizer, family=family, process_index=0,
                                process_count=1)
  it = data.iterator()
  load_s = time.perf_counter() - start
  for _ in range(3):  # warm-up: first reads, thread start
    next(it)
  examples = tokens = 0
  start = time.perf_counter()
  for _ in range(steps):
    batch = next(it)
    examples += batch.size
    tokens += batch.num_tokens()
  seconds = time.perf_counter() - start
  return dict(load_s=load_s, examples_per_s=examples / seconds, tokens_per_s=tokens / seconds,
              ms_per_batch=1000 * seconds / steps)


def step_consumption(corpora: str, stage: str, steps: int) -> tuple[float, int]:
  """Examples/s the demo's real train step (SmolLM2, 4 layers, configs/demo.py) consumes
  when fed by this pipeline; compile excluded. Returns (examples/s, batch size)."""
  config = load_config_file('configs/demo.py', f'corpora={corpora},stage={stage}')
  if not config.init_from:  # fine-tuning starts from a run; the LLM has the same cost
    config.init_from = default_model_dir('smollm2')
  mesh = sharding.make_mesh({'data': -1})
  model, cfg = load_init_from(config, mesh, config.sharding_rules)
  tx = optim.make_optimizer(config.optim, config.total_steps)
  graphdef, _, shardings = ts_lib.abstract_train_state(
      lambda: Embedder(cfg, config.embed_dim, nnx.Rngs(0)), tx, mesh, config.sharding_rules)
  state = ts_lib.train_state_from_model(model, tx, shardings)
  step, _ = train_step.jitted_train_step(graphdef, shardings, config)
  tokenizer = run_tokenizer(config, os.path.join('runs', 'bench-data'))
  it = pipeline.training_data(config, tokenizer, family=cfg.family, process_index=0,
                              process_count=1).iterator()
  put = lambda b: jax.tree.map(lambda x: jax.device_put(
      x, sharding.batch_sharding(mesh, config.sharding_rules, x.ndim)), b)
  seen = set()
  examples, seconds = 0, 0.0
  while examples < steps * config.batch_size:
    batch = next(it)
    shape = tuple(x.shape for x in jax.tree.leaves(batch))
    start = time.perf_counter()
    state, metrics, _ = step(state, put(batch))
    jax.block_until_ready(metrics)
    if shape in seen:  # a new shape bucket compiles: not consumption
      examples += batch.size
      seconds += time.perf_counter() - start
    seen.add(shape)
  return examples / seconds, config.batch_size


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--corpora', default='runs/corpora')
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--steps', type=int, default=60)
  parser.add_argument('--stage', default='finetune', choices=('finetune', 'prefinetune'))
  parser.add_argument('--tokenizer', default='smollm2')
  parser.add_argument('--step_batches', type=int, default=6,
                      help='also time the demo train step on this many pipeline batches (0: skip)')
  args = parser.parse_args()

  if not glob.glob(os.path.join(args.corpora, 'train', '*.jsonl')):
    print(f'building corpora into {args.corpora} (python -m gemini_embed.data.build_corpora)')
    build_corpora.build(args.corpora)
  tokenizer, what, family = load_tokenizer(args.tokenizer, args.corpora)
  print(f'tokenizer: {what}; stage {args.stage}; global batch {args.batch_size}; '
        f'{args.steps} batches; corpora {args.corpora}')
  for threads in (0, 1):
    config = load_config(args.stage, args.corpora, args.batch_size, threads)
    r = measure(config, tokenizer, family, args.steps)
    print(f'PIPELINE examples/s = {r["examples_per_s"]:,.0f}  (read_threads={threads}; '
          f'{r["tokens_per_s"]:,.0f} real tokens/s, {r["ms_per_batch"]:.1f} ms/batch of '
          f'{args.batch_size}; q≤{config.data.query_max_len}, d≤{config.data.doc_max_len} '
          f'tokens, {config.data.num_negatives} hard negative; datasets loaded in '
          f'{r["load_s"]:.1f} s)')
  if args.step_batches:
    consumed, batch = step_consumption(args.corpora, args.stage, args.step_batches)
    print(f'TRAIN STEP consumes {consumed:,.1f} examples/s (configs/demo.py {args.stage}, batch '
          f'{batch}, SmolLM2 first 4 layers) → pipeline / step = '
          f'{r["examples_per_s"] / consumed:,.0f}× (read_threads=1)')


if __name__ == '__main__':
  main()
