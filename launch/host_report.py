"""One worker's line for `launch/pod.py preflight` (run on every worker of the slice):

    HOST_REPORT {"host": ..., "process": 0, "jax": "0.10.2", "jaxlib": ..., "libtpu": ...,
                 "git_sha": ..., "local_devices": 4, "devices": 64, "device_kind": ...}

It joins the pod (`jax.distributed.initialize()`, as training does), so a worker that
cannot reach the coordinator fails here, not an hour into a run. The git SHA is the one
`pod.py setup` wrote to .git_sha. GEMINI_EMBED_SINGLE_HOST=1: a one-host stand-in
(no cluster to join).
"""

import importlib.metadata
import json
import os
import socket
import sys


def version(package: str) -> str | None:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def main() -> None:
  import jax
  if os.environ.get('GEMINI_EMBED_SINGLE_HOST') != '1':
    jax.distributed.initialize()
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    with open(os.path.join(root, '.git_sha')) as f:
      sha = f.read().strip()
  except FileNotFoundError:
    sha = None
  report = dict(host=socket.gethostname(), process=jax.process_index(),
                processes=jax.process_count(), jax=version('jax'), jaxlib=version('jaxlib'),
                libtpu=version('libtpu'), git_sha=sha, local_devices=jax.local_device_count(),
                devices=jax.device_count(), device_kind=jax.devices()[0].device_kind)
  print('HOST_REPORT ' + json.dumps(report, sort_keys=True), flush=True)


if __name__ == '__main__':
  sys.exit(main())
