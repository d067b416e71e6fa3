"""The pipelines' stage environment (stages.pipeline_env)."""

from gemini_embed import stages


def test_cpu_only_machines_skip_the_tpu_probe(monkeypatch, tmp_path, capsys):
  monkeypatch.delenv('JAX_PLATFORMS', raising=False)
  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR', raising=False)
  monkeypatch.setattr(stages.glob, 'glob', lambda pattern: [])
  env = stages.pipeline_env(str(tmp_path / 'cache'))
  assert env['JAX_PLATFORMS'] == 'cpu' and 'JAX_PLATFORMS=cpu' in capsys.readouterr().out
  assert env['JAX_COMPILATION_CACHE_DIR'] == str(tmp_path / 'cache')


def test_accelerators_and_the_users_choice_are_left_alone(monkeypatch, tmp_path):
  monkeypatch.delenv('JAX_PLATFORMS', raising=False)
  monkeypatch.setattr(stages.glob, 'glob',
                      lambda pattern: ['/dev/nvidia0'] if 'nvidia' in pattern else [])
  assert 'JAX_PLATFORMS' not in stages.pipeline_env(str(tmp_path))
  assert stages.accelerator_devices() == ['/dev/nvidia0']
  monkeypatch.setattr(stages.glob, 'glob', lambda pattern: [])
  monkeypatch.setenv('JAX_PLATFORMS', 'cuda')
  assert stages.pipeline_env(str(tmp_path))['JAX_PLATFORMS'] == 'cuda'
