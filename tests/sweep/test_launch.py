"""What the launchers run: the pod hand-off's exact command line, the per-job thread caps,
and what counts as finished."""

import json
import os
import sys

from gemini_embed.sweep import launch
from tests import run_fixtures


def point(tmp_path, name='code_docstring-0.5'):
  workdir = str(tmp_path / name)
  train = launch.train_command('configs/finetune.py:tiny', workdir,
                               {'data.datasets.code_docstring.rate': 0.5, 'data.root': 'corpora'},
                               ['--config.init_from='])
  return launch.Point(name, {}, workdir, train)


def test_train_and_pod_commands(tmp_path):
  p = point(tmp_path)
  assert p.train == [sys.executable, '-m', 'gemini_embed.train',
                     '--config=configs/finetune.py:tiny', f'--workdir={p.workdir}',
                     '--config.init_from=', '--config.data.datasets.code_docstring.rate=0.5',
                     '--config.data.root=corpora']
  assert launch.pod_command(p, 'my-tpu', 'us-east5-a') == [
      sys.executable, 'launch/pod.py', '--tpu=my-tpu', '--zone=us-east5-a', 'run', '--',
      *p.train[3:]]


def test_thread_caps_split_the_cores():
  env = launch.thread_env(jobs=2, cores=2)
  assert env['OMP_NUM_THREADS'] == '1'
  assert env['XLA_FLAGS'].split()[-2:] == ['--xla_cpu_multi_thread_eigen=false',
                                           'intra_op_parallelism_threads=1']
  assert launch.thread_env(jobs=1, cores=8)['OMP_NUM_THREADS'] == '8'
  slots = launch.core_slots(len(os.sched_getaffinity(0)))
  assert all(len(s) == 1 for s in slots) and len(set().union(*slots)) == len(slots)


def test_finished_and_evaluated_read_the_run_status(tmp_path):
  p = point(tmp_path)
  assert not launch.finished(p.workdir)
  run_fixtures.write_run(p.workdir, {'code_docstring': [1.0]}, steps=4)
  assert launch.finished(p.workdir)
  status = json.loads(open(os.path.join(p.workdir, 'status.json')).read())
  run_fixtures.write_json(os.path.join(p.workdir, 'status.json'), dict(status, state='preempted'))
  assert not launch.finished(p.workdir)
  run_fixtures.write_json(os.path.join(p.workdir, 'status.json'), status)
  for half in launch.HALVES:
    run_fixtures.write_json(p.results(half), {})
  run_fixtures.write_json(os.path.join(p.workdir, 'eval', 'evaluated.json'),
                          dict(step=4, suite='s', dims=[96]))
  assert launch.evaluated(p, 's', [96])
  assert not launch.evaluated(p, 's', [32, 96])  # other dims: score again
  assert not launch.evaluated(p, 'other', [96])


def test_dry_run_prints_the_pod_commands_and_runs_nothing(tmp_path):
  import subprocess
  from tests.train_fixtures import ROOT, train_env
  out = subprocess.run([sys.executable, '-m', 'gemini_embed.sweep',
                        f'--config={ROOT}/configs/finetune.py:tiny', f'--workdir={tmp_path / "s"}',
                        '--launcher=pod', '--tpu=my-tpu', '--zone=us-east5-a', '--dry_run'],
                       env=train_env(1), capture_output=True, text=True, timeout=300, cwd=ROOT)
  assert out.returncode == 0, out.stderr[-2000:]
  lines = out.stdout.splitlines()
  assert len(lines) == 4 and all(
      ' launch/pod.py --tpu=my-tpu --zone=us-east5-a run -- --config=' in line for line in lines)
  assert lines[0].endswith('--config.data.datasets.code_docstring.rate=0.5')
  assert not (tmp_path / 's').exists()
