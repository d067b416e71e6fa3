"""`launch/pod.py preflight`'s verdict on the workers' HOST_REPORT lines."""

import importlib.util
import os

from tests.train_fixtures import ROOT

_spec = importlib.util.spec_from_file_location(
    'worker_commands', os.path.join(ROOT, 'launch', 'worker_commands.py'))
worker_commands = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker_commands)
SHA = 'a' * 40


def report(process, host, **changes):
  return dict(dict(host=host, process=process, processes=2, jax='0.10.2', jaxlib='0.10.2',
                   libtpu='0.0.42.1', git_sha=SHA, local_devices=4, devices=8,
                   device_kind='TPU v5'), **changes)


def problems(reports, hosts=2):
  return worker_commands.preflight_problems(reports, hosts, 8, SHA, 'v5p-16 × 1')


def test_agreeing_hosts_pass():
  assert problems([report(0, 'w0'), report(1, 'w1')]) == []


def test_each_mismatch_is_named_with_its_hosts():
  assert problems([report(0, 'w0'), report(1, 'w1', jax='0.10.1')]) == [
      'jax differs between hosts: 0.10.2 on w0; 0.10.1 on w1 (rerun setup)']
  assert problems([report(0, 'w0')]) == [
      '1 of 2 workers reported: see the ssh output above for the ones that did not']
  stale = problems([report(0, 'w0', git_sha='b' * 40), report(1, 'w1', git_sha='b' * 40)])
  assert stale == ['the workers run another commit than this checkout (aaaaaaaaaaaa); rerun setup']
  assert problems([report(0, 'w0', devices=4), report(1, 'w1', devices=4)]) == [
      'the hosts see 4 devices; v5p-16 × 1 has 8']
  assert problems([report(0, 'w0'), report(0, 'w1')]) == [
      'process ids [0, 0]: expected 0…1, each once']
