"""gemini_embed.aot on this CPU: the real train step of the tiny pod config compiled by
XLA:TPU (libtpu's topology of two v5e-4 slices; no TPU attached), its memory checked
against the chip, and the multi-slice (hybrid ICI/DCN) mesh it runs on."""

import json
import math
import os
import subprocess
import sys

import jax
import pytest

from gemini_embed import aot, sharding
from gemini_embed.tpu_topologies import GiB, parse_slice
from tests.train_fixtures import ROOT, load_config


@pytest.fixture(scope='module')
def cli(tmp_path_factory):
  """One compile: tiny on 2 × v5e-4, with a 5 MiB "chip" it cannot fit in."""
  out = tmp_path_factory.mktemp('aot') / 'report.json'
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, '-m', 'gemini_embed.aot',
                         f'--config={ROOT}/configs/pod.py:tiny', '--topology=v5e-4',
                         '--num_slices=2', '--hbm_gib=0.005', f'--json={out}'],
                        env=env, capture_output=True, text=True, timeout=600)
  with open(out) as f:
    return proc, json.load(f)


@pytest.mark.slow
def test_the_compiled_step_that_does_not_fit_exits_1_and_says_so(cli):
  proc, report = cli
  assert proc.returncode == aot.NOT_FIT_EXIT_CODE, proc.stderr[-3000:]
  assert 'DOES NOT FIT in 0.005 GiB' in proc.stdout
  assert report['compiled'] and report['fits'] is False
  assert report['total'] > 0.005 * GiB
  # two slices of 4 chips; the data axis spans the slices (configs/pod.py tiny: fsdp 2)
  assert report['chips'] == 8 and report['mesh'] == dict(data=4, fsdp=2, tensor=1)


@pytest.mark.slow
def test_xla_receives_the_bytes_the_shardings_say(cli):
  """XLA's own buffer sizes (memory_analysis) against our per-chip sums from the shardings:
  XLA lays arrays out in TPU tiles (padding the tiny model's small ones), never smaller."""
  _, r = cli
  state = r['params'] + r['optimizer']
  assert state + r['batch'] <= r['arguments'] < 2 * (state + r['batch'])
  assert state <= r['aliased'] <= r['arguments']  # the donated state is updated in place
  assert r['total'] == r['arguments'] + r['outputs'] - r['aliased'] + r['temp'] + r['code']


def test_the_hybrid_mesh_puts_the_slices_on_the_data_axis():
  devices = aot.tpu_devices(parse_slice('v5e-4'), num_slices=2)
  assert len(devices) == 8 and {d.slice_index for d in devices} == {0, 1}
  mesh = sharding.make_mesh(dict(data=-1, fsdp=2, tensor=1, slices=2), devices)
  assert dict(mesh.shape) == dict(data=4, fsdp=2, tensor=1)
  grid = mesh.devices[:, :, 0]
  assert [{d.slice_index for d in row} for row in grid] == [{0}, {0}, {1}, {1}]
  assert {d.id for d in grid.flat} == {d.id for d in devices}
  with pytest.raises(ValueError, match=r'slices=4: the devices come from 2 slice\(s\)'):
    sharding.make_mesh(dict(data=-1, fsdp=1, tensor=1, slices=4), devices)
  with pytest.raises(ValueError, match='slices=3: 8 devices do not split into 3 equal slices'):
    sharding.mesh_shape(dict(data=-1, slices=3), 8)


def test_without_libtpu_the_step_is_lowered_on_an_abstract_mesh(monkeypatch):
  monkeypatch.setattr(aot, 'tpu_devices', lambda *a: None)
  config = load_config('pod', 'tiny,chips=4')
  report = aot.check(config, parse_slice('v5e-4'))
  assert report['compiled'] is False and report['fits'] is None
  assert report['mesh'] == dict(data=2, fsdp=2, tensor=1)
  # the parameters' per-chip bytes: at least a quarter of the whole (fsdp 2 of 4 chips
  # splits the large ones; small ones are replicated), at most the whole
  params = sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(
      aot_abstract_params(config)))
  assert params / 2 <= report['params'] < params


def aot_abstract_params(config):
  from flax import nnx

  from gemini_embed.models.embedder import Embedder
  from gemini_embed.models.model_config import TransformerConfig
  cfg = TransformerConfig.from_config(config.model)
  return nnx.state(nnx.eval_shape(lambda: Embedder(cfg, config.embed_dim, nnx.Rngs(0))),
                   nnx.Param)


@pytest.mark.parametrize('name,chips,topology,hosts', [
    ('v5p-128', 64, 'v5:4x4x4', 16), ('v5e-256', 256, 'v5e:16x16', 64),
    ('v6e-256', 256, 'v6e:16x16', 64), ('v5p-8', 4, 'v5:2x2x1', 1)])
def test_slice_names_count_cores_on_v5p_and_chips_on_v5e_v6e(name, chips, topology, hosts):
  s = parse_slice(name)
  assert (s.chips, s.topology, s.hosts) == (chips, topology, hosts)
