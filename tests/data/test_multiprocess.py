"""Two real JAX processes (CPU, gloo): each reads its half of every global batch, both pad
to the top bucket (no communication), and together they hold the single-process batch."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from gemini_embed.data import pipeline
from tests.data.fixtures import data_config, numbered_rows, vocabulary_lines, word_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = r'''
import json, sys
sys.path.insert(0, {root!r})
import jax
jax.distributed.initialize('127.0.0.1:{port}', num_processes=2, process_id={pid})
from gemini_embed.data import pipeline
from tests.data.test_multiprocess import make_config, TOKENIZER_LINES
from tests.data.fixtures import word_tokenizer
it = pipeline.train_iterator(make_config({data!r}), word_tokenizer(TOKENIZER_LINES), 'llama')
out = []
for _ in range(8):
  b = next(it)
  out.append(dict(q=b.query_tokens.shape, d=b.pos_tokens.shape, ids=b.pos_id.tolist(),
                  rows=[t[v].tolist() for t, v in zip(b.query_tokens, b.query_valid)]))
print('RESULT' + json.dumps(out))
jax.distributed.shutdown()
'''
TOKENIZER_LINES = vocabulary_lines()


def make_config(root):
  # Query lengths 4..15 words: the halves of a batch often want different buckets.
  rows = {'alpha': (numbered_rows('alpha', 40, words=12), 1.0),
          'beta': (numbered_rows('beta', 40), 1.0)}
  return data_config(root, rows, batch_size=8)


@pytest.mark.slow
def test_two_processes_pad_to_the_top_bucket_and_split_the_global_batch(tmp_path):
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  env = dict(os.environ, XLA_FLAGS='', JAX_PLATFORMS='cpu')
  procs = [subprocess.Popen(
      [sys.executable, '-c', WORKER.format(root=ROOT, port=port, pid=pid, data=str(tmp_path))],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
      for pid in (0, 1)]
  results = []
  for p in procs:
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-3000:]
    results.append(json.loads(out.split('RESULT', 1)[1]))
  whole = pipeline.training_data(make_config(tmp_path), word_tokenizer(TOKENIZER_LINES),
                                 process_index=0, process_count=1).iterator()
  whole_lengths = set()
  for a, b in zip(*results):
    full = next(whole)
    whole_lengths.add(full.query_tokens.shape[1])
    assert a['q'] == b['q'] == [4, 32] and a['d'] == b['d'] == [4, 32]
    assert a['ids'] + b['ids'] == full.pos_id.tolist()
    assert a['rows'] + b['rows'] == [t[v].tolist() for t, v in
                                     zip(full.query_tokens, full.query_valid)]
  assert whole_lengths != {32}, 'one process never used a smaller bucket: a weak test'
