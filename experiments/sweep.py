r"""Expand a config's `sweep(add)` into training runs, one workdir each.

    python experiments/sweep.py --config=configs/finetune.py:tiny --workdir=runs/sweep [--run]

Prints the `python -m gemini_embed.train` command of every point (each point's
overrides become `--config.FIELD=VALUE` flags and name its workdir); with --run it
runs them one after another (rerunning resumes, as every train command does), then
compares them with one `evaluate --workdir=name=DIR,...` if --suite is given, on the
suite's `select` half: a sweep's fit picks a point, and picking is done on select (the
report half is for the tables).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from gemini_embed.configlib import config_module


def sweep_points(config_arg: str) -> list[dict]:
  path = config_arg.split(':', 1)[0]
  module = config_module(path)
  if not hasattr(module, 'sweep'):
    raise SystemExit(f'{path} defines no sweep(add)')
  points: list[dict] = []
  module.sweep(lambda **overrides: points.append(overrides))
  return points


def point_name(overrides: dict) -> str:
  return ','.join(f'{k.split(".")[-2] if k.endswith(".rate") else k}-{v}'
                  for k, v in overrides.items()).replace('/', '_')


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('--config', required=True)
  ap.add_argument('--workdir', required=True, help='parent directory of the runs')
  ap.add_argument('--run', action='store_true', help='run the points (default: print them)')
  ap.add_argument('--suite', help='dev suite: evaluate every point after training')
  args, extra = ap.parse_known_args()
  runs = {}
  for overrides in sweep_points(args.config):
    name = point_name(overrides)
    runs[name] = f'{args.workdir}/{name}'
    cmd = [sys.executable, '-m', 'gemini_embed.train', f'--config={args.config}',
           f'--workdir={runs[name]}', *extra,
           *(f'--config.{k}={v}' for k, v in overrides.items())]
    print(shlex.join(cmd))
    if args.run:
      subprocess.run(cmd, check=True)
  if args.run and args.suite:
    subprocess.run([sys.executable, '-m', 'gemini_embed.evaluate', f'--suite={args.suite}',
                    '--workdir=' + ','.join(f'{n}={d}' for n, d in runs.items()),
                    '--half=select', f'--output={args.workdir}/results.json', '--peers=none'],
                   check=True)


if __name__ == '__main__':
  main()
