#!/usr/bin/env python3
"""A one-host stand-in for `gcloud` and a TPU slice, for `launch/pod.py --gcloud=THIS`.

State lives in $FAKE_SLICE_DIR: `state` (the queued resource's state; absent = none),
`calls.jsonl` (every invocation's argv), `home/` (the one worker's home directory).

  compute tpus queued-resources create|delete|describe   create → PROVISIONING, which the
      next describe turns ACTIVE; delete removes it
  compute tpus tpu-vm scp SRC NODE:DST    copies SRC to home/DST
  compute tpus tpu-vm ssh NODE --command=CMD    runs `bash -c CMD` in home/, with
      GEMINI_EMBED_SINGLE_HOST=1 (no cluster to join)
  storage cat PATH    prints a local file

Pre-emption: with $FAKE_PREEMPT_WHEN=PATH, the first trainer (a CMD running
worker_run.sh) gets SIGTERM once PATH exists (e.g. its first checkpoint), and the queued
resource turns SUSPENDED — as a Spot slice's notice does. After each trainer, its
$FAKE_WORKDIR/status.json is kept as status-N.json. Every ssh exits 0, as `--worker=all`
may whatever the remote exit code: babysit has to read the completion marker.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

DIR = os.environ['FAKE_SLICE_DIR']
STATE = os.path.join(DIR, 'state')
HOME = os.path.join(DIR, 'home')


def flag(argv, name):
  return next((a.split('=', 1)[1] for a in argv if a.startswith(f'--{name}=')), None)


def read_state():
  try:
    with open(STATE) as f:
      return f.read().strip()
  except FileNotFoundError:
    return None


def write_state(state):
  with open(STATE, 'w') as f:
    f.write(state)


def queued_resources(verb):
  state = read_state()
  if verb == 'create':
    if state is not None:
      sys.exit('ALREADY_EXISTS: queued resource exists')
    write_state('PROVISIONING')
  elif verb == 'delete':
    if state is None:
      sys.exit('NOT_FOUND')
    os.remove(STATE)
  elif verb == 'describe':
    if state is None:
      sys.exit('NOT_FOUND: queued resource not found')
    print(state)
    if state == 'PROVISIONING':
      write_state('ACTIVE')


def ssh(command):
  if read_state() != 'ACTIVE':
    sys.exit('ssh: the TPU VM is not running')
  env = dict(os.environ, HOME=HOME, GEMINI_EMBED_SINGLE_HOST='1')
  proc = subprocess.Popen(['bash', '-c', command], cwd=HOME, env=env, start_new_session=True)
  if 'worker_run.sh' not in command:
    proc.wait()
    return
  marker = os.path.join(DIR, 'preempted')
  when = os.environ.get('FAKE_PREEMPT_WHEN')
  if when and not os.path.exists(marker):
    while proc.poll() is None and not os.path.exists(when):
      time.sleep(0.1)
    if proc.poll() is None:
      open(marker, 'w').close()
      write_state('SUSPENDED')
      os.killpg(proc.pid, signal.SIGTERM)
  proc.wait()
  runs = len([n for n in os.listdir(DIR) if n.startswith('status-')])
  status = os.path.join(os.environ['FAKE_WORKDIR'], 'status.json')
  if os.path.exists(status):
    shutil.copy(status, os.path.join(DIR, f'status-{runs + 1}.json'))


def main(argv):
  with open(os.path.join(DIR, 'calls.jsonl'), 'a') as f:
    f.write(json.dumps(argv) + '\n')
  os.makedirs(HOME, exist_ok=True)
  if argv[:3] == ['compute', 'tpus', 'queued-resources']:
    queued_resources(argv[3])
  elif argv[:4] == ['compute', 'tpus', 'tpu-vm', 'scp']:
    shutil.copy(argv[4], os.path.join(HOME, argv[5].split(':', 1)[1]))
  elif argv[:4] == ['compute', 'tpus', 'tpu-vm', 'ssh']:
    ssh(flag(argv, 'command'))
  elif argv[:2] == ['storage', 'cat']:
    with open(argv[2]) as f:
      sys.stdout.write(f.read())
  else:
    sys.exit(f'fake gcloud: unknown command {argv}')


if __name__ == '__main__':
  main(sys.argv[1:])
