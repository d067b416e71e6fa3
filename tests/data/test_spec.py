"""`config.data` checks name the field; the real configs' dataset entries match the builder."""

import os

import pytest

from gemini_embed.configlib import check_config, load_config_file
from gemini_embed.configlib.checks import ConfigError
from gemini_embed.data.corpora.training_sets import FINETUNE_MIXTURES, TRAINING_SETS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _config(name, arg='tiny'):
  return load_config_file(os.path.join(ROOT, 'configs', name), arg)


@pytest.mark.parametrize('field,value,message', [
    ('data.query_max_len', 0, r'config\.data\.query_max_len=0'),
    ('data.num_buckets', 5, r'config\.data\.query_max_len=32.*smallest bucket'),
    ('data.num_negatives', -1, r'config\.data\.num_negatives=-1'),
    ('data.task_dropout', 1.0, r'config\.data\.task_dropout'),
    ('data.datasets.code_docstring.rate', -1.0, r'datasets\.code_docstring\.rate'),
    ('data.datasets.code_docstring.type', 'poetry', r'datasets\.code_docstring\.type'),
    ('data.datasets.code_docstring.stage', 'pretrain', r'datasets\.code_docstring\.stage'),
    ('data.datasets.code_docstring.format', 'csv', r'datasets\.code_docstring\.format'),
    ('data.datasets.code_docstring.files', '', r'datasets\.code_docstring\.files'),
    ('data.datasets.code_docstring.query_template', 'query: {txt}',
     r'datasets\.code_docstring\.query_template.*\{text\}'),
    ('data.datasets.code_docstring.doc_template', '{title} {text} {task}',
     r"datasets\.code_docstring\.doc_template.*unknown fields \['task'\]"),
    ('stage', 'pretrain', r'config\.stage'),
])
def test_bad_data_fields_are_named(field, value, message):
  config = _config('finetune.py')
  config.update_from_flattened_dict({field: value})
  with pytest.raises(ConfigError, match=message):
    check_config(config, num_devices=8)


def test_prefinetune_is_pairs_of_its_own_stage():
  config = _config('prefinetune.py')
  check_config(config)
  assert all(e.stage == 'prefinetune' for e in config.data.datasets.values())
  config.data.num_negatives = 1
  with pytest.raises(ConfigError, match=r'num_negatives=1: pre-finetuning batches are pairs'):
    check_config(config)
  config.data.num_negatives = 0
  config.stage = 'finetune'
  with pytest.raises(ConfigError, match=r"config\.data\.datasets: no entry has stage='finetune'"):
    check_config(config)


@pytest.mark.parametrize('mixture', sorted(FINETUNE_MIXTURES))
def test_finetune_mixtures_are_valid_and_built_by_the_corpora_builder(mixture):
  config = _config('finetune.py', f'tiny,mixture={mixture},init_from=runs/x/prefinetune')
  check_config(config, num_devices=8)
  assert config.init_from == 'runs/x/prefinetune' and config.data.num_negatives == 1
  for name, entry in config.data.datasets.items():
    assert TRAINING_SETS[name][0] == entry.stage == 'finetune'
    assert entry.files == f'train/{name}.jsonl'
  assert _config('finetune.py', '').batch_size < 1024
  with pytest.raises(ValueError, match='mixture='):
    _config('finetune.py', 'mixture=poetry')
