"""A resume checks the config's model against the workdir's model.json before writing
anything: a different parameter tree is refused naming each field (old and new value);
run policies and MRL prefixes follow the config and are recorded."""

import json
import os
import subprocess

import pytest

from gemini_embed import checkpoint
from gemini_embed.configlib.checks import ConfigError
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.resume_model import resumed_model_info
from tests.train_fixtures import (final_params, load_config, read_metrics, train_command,
                                  train_env, write_training_data)

BF16 = 'params=float32,compute=bfloat16,output=float32'


def _stored(config) -> checkpoint.ModelInfo:
  return checkpoint.ModelInfo(TransformerConfig.from_config(config.model), config.embed_dim,
                              tuple(config.mrl_dims), config.loss.learn_temperature)


def test_a_different_parameter_tree_is_refused_naming_each_field():
  config = load_config('prefinetune')
  stored = _stored(config)
  with config.unlocked():
    config.model.num_layers = stored.model.num_layers + 1
    config.model.width = 2 * stored.model.width
    config.embed_dim = 128
    config.loss.learn_temperature = True
  with pytest.raises(ConfigError) as e:
    resumed_model_info(config, stored, 'WD')
  msg = str(e.value)
  print(msg)
  assert 'WD/model.json' in msg
  assert f'config.model.num_layers: {stored.model.num_layers} in model.json, ' \
         f'{stored.model.num_layers + 1} now' in msg
  assert f'config.model.width: {stored.model.width} in model.json, {2 * stored.model.width} now' in msg
  assert 'config.embed_dim: 96 in model.json, 128 now' in msg
  assert 'config.loss.learn_temperature: False in model.json, True now' in msg
  assert 'new --workdir' in msg and 'revert' in msg


def test_run_policies_and_mrl_dims_follow_the_config():
  config = load_config('prefinetune')
  stored = _stored(config)
  with config.unlocked():
    config.model.remat = 'full'
    config.model.precision = BF16
    config.model.attention_impl = 'auto'
    config.mrl_dims = (32, 96)
  info = resumed_model_info(config, stored, 'WD')
  assert info.model == stored.model.replace(remat='full', precision=BF16, attention_impl='auto')
  assert info.mrl_dims == (32, 96)
  assert (info.embed_dim, info.learned_temperature) == (stored.embed_dim, False)


def _hf_dir(path, num_layers=6) -> str:
  """A Hugging Face directory as classify_source and hf_model_config read it (config only)."""
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, 'config.json'), 'w') as f:
    json.dump({'model_type': 'llama', 'hidden_act': 'silu', 'vocab_size': 96, 'hidden_size': 64,
               'intermediate_size': 96, 'num_hidden_layers': num_layers,
               'num_attention_heads': 4, 'num_key_value_heads': 2}, f)
  open(os.path.join(path, 'model.safetensors'), 'w').close()
  return str(path)


def test_an_init_from_run_is_compared_with_its_source_not_config_model(tmp_path):
  from gemini_embed.models import hf_import
  config = load_config('finetune')
  with config.unlocked():
    config.init_from = _hf_dir(tmp_path / 'hf')
    config.truncate_layers = 4
  stored = checkpoint.ModelInfo(
      hf_import.hf_model_config(config.init_from).with_layers(4), config.embed_dim,
      tuple(config.mrl_dims))
  # config.model (the tiny preset) does not describe an imported backbone: not compared.
  assert resumed_model_info(config, stored, 'WD').model.num_layers == 4
  with config.unlocked():
    config.truncate_layers = 5
  with pytest.raises(ConfigError, match=r'num_layers \(config.init_from=.*, config.truncate_layers=5\): '
                     r'4 in model.json, 5 now'):
    resumed_model_info(config, stored, 'WD')
  # The source gone: what the config alone says (embed_dim, τ) is still checked.
  with config.unlocked():
    config.init_from = str(tmp_path / 'moved')
    config.embed_dim = 64
    config.mrl_dims = (32, 64)
  with pytest.raises(ConfigError, match='config.embed_dim: 96 in model.json, 64 now'):
    resumed_model_info(config, stored, 'WD')


def _run(workdir, data_root, *overrides):
  return subprocess.run(train_command(str(workdir), data_root, *overrides), env=train_env(1),
                        capture_output=True, text=True, timeout=600)


def _files(workdir) -> dict[str, bytes]:
  out = {}
  for root, _, names in os.walk(workdir):
    for n in names:
      with open(os.path.join(root, n), 'rb') as f:
        out[os.path.relpath(os.path.join(root, n), workdir)] = f.read()
  return out


def test_a_refused_resume_leaves_the_workdir_as_it_was(tmp_path):
  data_root = write_training_data(str(tmp_path / 'data'), load_config('prefinetune'))
  workdir = tmp_path / 'run'
  first = _run(workdir, data_root, '--config.total_steps=2')
  assert first.returncode == 0, first.stderr[-3000:]
  before = _files(workdir)

  out = _run(workdir, data_root, '--config.total_steps=4', '--config.model.num_layers=3',
             '--config.embed_dim=128', '--config.mrl_dims=(64,128)')
  assert out.returncode != 0
  assert 'config.model.num_layers: 2 in model.json, 3 now' in out.stderr
  assert 'config.embed_dim: 96 in model.json, 128 now' in out.stderr
  assert _files(workdir) == before  # config.json and model.json included, no lease left
  _, step = final_params(str(workdir))  # the workdir still restores as model.json says
  assert step == 2

  # A policy change resumes, is recorded in model.json and the run goes on.
  out = _run(workdir, data_root, '--config.total_steps=3', '--config.model.remat=full')
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'config.model.remat: none in model.json, full now' in out.stderr
  assert checkpoint.read_model_info(str(workdir)).model.remat == 'full'
  assert [r['step'] for r in read_metrics(str(workdir))] == [1, 2, 3]
  with open(workdir / 'config.json') as f:
    assert json.load(f)['model']['remat'] == 'full'
