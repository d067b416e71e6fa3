"""Configs: `:key=value` args, tiny modes, overrides, and errors that name the field."""

import glob
import os
import subprocess
import sys

import pytest
from ml_collections import config_flags  # noqa: F401  (the CLI path is tested below)

from gemini_embed.configlib import check_config, config_module, load_config_file, parse_arg
from gemini_embed.configlib.checks import ConfigError

ROOT = os.path.dirname(os.path.dirname(__file__))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))


def test_parse_arg_types_and_flags():
  a = parse_arg('tiny,seed=3,lr=0.5,name=x', tiny=False, seed=0, lr=1.0, name='a')
  assert (a.tiny, a.seed, a.lr, a.name) == (True, 3, 0.5, 'x')
  assert parse_arg('', tiny=False).tiny is False
  with pytest.raises(ValueError, match="unknown argument 'bogus'"):
    parse_arg('bogus=1', tiny=False)
  with pytest.raises(ValueError, match='seed'):
    parse_arg('seed=abc', seed=0)


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_every_config_has_a_valid_tiny_mode(path):
  config = load_config_file(path, 'tiny')
  check_config(config, num_devices=8)
  assert config.batch_size <= 64


def _tiny():
  return load_config_file(os.path.join(ROOT, 'configs', 'prefinetune.py'), 'tiny')


@pytest.mark.parametrize('field,value,message', [
    ('model.family', 'gpt2', r'config\.model\.family.*unknown model family'),
    ('mrl_dims', (64, 32, 96), r'config\.mrl_dims.*strictly increasing'),
    ('mrl_dims', (32, 64, 128), r'config\.mrl_dims.*exceeds config\.embed_dim'),
    ('batch_size', 12, r'config\.batch_size=12.*data-parallel size 8'),
    ('model.num_kv_heads', 3, r'config\.model\.num_kv_heads.*divide'),
    ('loss.temperature', 0.0, r'config\.loss\.temperature'),
    ('model.attention_mode', 'sideways', r'config\.model\.attention_mode'),
    ('optim.learning_rate', -1.0, r'config\.optim\.learning_rate=-1\.0: must be > 0'),
    ('optim.learning_rate', float('nan'), r'config\.optim\.learning_rate=nan'),
    ('total_steps', -1, r'config\.total_steps=-1: must be >= 0'),
    ('checkpoint.every', 0, r'config\.checkpoint\.every=0: must be >= 1'),
    ('log_every', 0, r'config\.log_every=0: must be >= 1'),
    ('log_every', -5, r'config\.log_every=-5: must be >= 1'),
    ('eval.half', 'test', r"config\.eval\.half='test': must be select"),
])
def test_invalid_configs_name_the_field(field, value, message):
  config = _tiny()
  config.update_from_flattened_dict({field: value})
  with pytest.raises(ConfigError, match=message):
    check_config(config, num_devices=8)


def test_zero_steps_and_no_dev_eval_are_legal():
  """total_steps=0 exports the initial model; eval.every=0 turns dev evaluation off."""
  config = _tiny()
  config.update_from_flattened_dict({'total_steps': 0, 'eval.every': 0})
  check_config(config, num_devices=8)


def test_mesh_errors_name_the_field():
  config = _tiny()
  config.mesh.fsdp = 3
  with pytest.raises(ConfigError, match=r'config\.mesh'):
    check_config(config, num_devices=8)


def test_command_line_overrides_reach_the_config(tmp_path):
  """`--config=FILE:ARGS --config.field=value` through config_flags, as users type it."""
  code = ('from absl import app\n'
          'from ml_collections import config_flags\n'
          'C = config_flags.DEFINE_config_file("config")\n'
          'def main(_):\n'
          '  c = C.value\n'
          '  print(c.embed_dim, c.mesh.fsdp, tuple(c.mrl_dims), c.batch_size)\n'
          'app.run(main)\n')
  script = tmp_path / 'show.py'
  script.write_text(code)
  out = subprocess.run(
      [sys.executable, str(script), f'--config={ROOT}/configs/prefinetune.py:tiny',
       '--config.embed_dim=128', '--config.mesh.fsdp=2', '--config.mrl_dims=(16,128)'],
      capture_output=True, text=True, check=True, cwd=ROOT)
  assert out.stdout.split() == ['128', '2', '(16,', '128)', '16']


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_sweep_points_name_real_fields(path):
  module = config_module(path)
  if not hasattr(module, 'sweep'):
    pytest.skip('no sweep')
  points = []
  module.sweep(lambda **kw: points.append(kw))
  assert points
  config = module.get_config('tiny')
  for point in points:
    for key, value in point.items():
      node = config
      for part in key.split('.'):
        node = node[part]  # KeyError if the sweep names a field the config lacks
      assert type(node) is type(value), key


def test_loading_a_config_file_names_the_path_when_it_cannot(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'nope\.py: no such config file'):
    load_config_file(str(tmp_path / 'nope.py'))
  empty = tmp_path / 'empty.py'
  empty.write_text('X = 1\n')
  with pytest.raises(AttributeError, match=r'empty\.py: defines no get_config'):
    load_config_file(str(empty))


@pytest.mark.parametrize('config,override,names', [
    ('prefinetune.py:tiny', '--config.optim.learnin_rate=1',
     ('config.optim.learnin_rate', 'learning_rate')),
    ('prefinetune.py:tiny', '--config.optimz.warmup_steps=3', ('config.optimz', 'optim')),
    ('prefinetun.py:tiny', '--config.total_steps=3', ('prefinetun.py', 'no such config file')),
])
def test_an_unknown_config_field_is_one_line_naming_it(tmp_path, config, override, names):
  """A typo in --config.FIELD (or --config): one line naming the field and the closest
  known names, exit 2 (a usage error), before anything runs."""
  workdir = tmp_path / 'run'
  out = subprocess.run(
      [sys.executable, '-m', 'gemini_embed.train', f'--config={ROOT}/configs/{config}',
       f'--workdir={workdir}', override],
      capture_output=True, text=True, cwd=ROOT, env={**os.environ, 'PYTHONPATH': ROOT})
  assert out.returncode == 2, out.stderr[-2000:]
  assert 'Traceback' not in out.stderr, out.stderr[-2000:]
  errors = [line for line in out.stderr.splitlines() if 'FATAL' in line]
  assert len(errors) == 1 and all(name in errors[0] for name in names), out.stderr
  assert not workdir.exists()
