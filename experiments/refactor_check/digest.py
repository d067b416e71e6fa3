"""sha256 of each workdir's newest params: key paths sorted, each leaf's path, dtype, shape
and bytes. Read with orbax alone (no gemini_embed import), so one reader hashes the runs of
any commit.

    python experiments/refactor_check/digest.py WORKDIR [WORKDIR ...]
"""

import hashlib
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath


def params_digest(workdir: str) -> tuple[int, int, str]:
  """(step, number of leaves, sha256 hex) of the newest checkpoint's params."""
  ckdir = epath.Path(workdir) / 'checkpoints'
  steps = [int(p.name) for p in ckdir.iterdir() if p.name.isdigit()]
  if not steps:
    raise SystemExit(f'{ckdir}: no checkpoint')
  path = ckdir / str(max(steps)) / 'params'
  checkpointer = ocp.PyTreeCheckpointer()
  tree = checkpointer.metadata(path).item_metadata.tree
  args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  leaves = jax.tree_util.tree_flatten_with_path(checkpointer.restore(path, restore_args=args))[0]
  h = hashlib.sha256()
  for key, x in sorted((jax.tree_util.keystr(k), np.ascontiguousarray(v)) for k, v in leaves):
    h.update(f'{key}|{x.dtype}|{x.shape}|'.encode())
    h.update(x.tobytes())
  return max(steps), len(leaves), h.hexdigest()


if __name__ == '__main__':
  for wd in sys.argv[1:]:
    step, n, hexdigest = params_digest(wd)
    print(f'{hexdigest}  {wd} (step {step}, {n} arrays)')
