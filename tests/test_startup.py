"""Start-up of the command-line tools: importing the trainer, the soup and evaluate pulls in
neither torch nor scikit-learn nor SciPy (seconds of every run's start; the peers extra
installs torch), and the TensorBoard file the trainer's MetricsLog writes with tensorboardX
imported that way still holds every scalar. Each check runs in a fresh interpreter: the
test process may already hold torch."""

import json
import struct
import subprocess
import sys

import pytest

from tests.train_fixtures import ROOT

HEAVY = ('torch', 'sklearn', 'scipy')


def _python(code: str, *args: str) -> str:
  out = subprocess.run([sys.executable, '-c', code, *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


@pytest.mark.parametrize('module', ['gemini_embed.train', 'gemini_embed.soup',
                                    'gemini_embed.evaluate'])
def test_cli_module_imports_without_torch_sklearn_or_scipy(module):
  loaded = _python(f'import sys, json, {module}\n'
                   f'print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))')
  assert json.loads(loaded) == []


def _records(path):
  """The TFRecord framing: u64 length, u32 crc of it, the bytes, u32 crc of them."""
  data = open(path, 'rb').read()
  i = 0
  while i < len(data):
    (n,) = struct.unpack('<Q', data[i:i + 8])
    yield data[i + 12:i + 12 + n]
    i += 12 + n + 4
  assert i == len(data), 'a truncated record'


def test_metrics_log_writes_tensorboard_scalars_without_torch(tmp_path):
  loaded = _python(
      'import sys, json\n'
      'from gemini_embed.metrics_log import MetricsLog\n'
      'log = MetricsLog(sys.argv[1], total_steps=3)\n'
      "log.write(1, {'loss': 2.5, 'dataset': 'wordnet'})\n"
      "log.write(2, {'loss': 1.25, 'lr': 0.001})\n"
      'log.close()\n'
      "print(json.dumps('torch' in sys.modules))", str(tmp_path))
  assert json.loads(loaded) is False
  from tensorboardX.proto.event_pb2 import Event  # the file's own schema, read back here
  files = list((tmp_path / 'tensorboard').iterdir())
  assert len(files) == 1, files
  scalars = [(e.step, v.tag, round(v.simple_value, 6))
             for e in map(Event.FromString, _records(files[0])) for v in e.summary.value]
  assert scalars == [(1, 'loss', 2.5), (2, 'loss', 1.25), (2, 'lr', 0.001)]
  rows = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [(r['step'], r['loss']) for r in rows] == [(1, 2.5), (2, 1.25)]
  assert rows[0]['dataset'] == 'wordnet'
