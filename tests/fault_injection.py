"""`python -m tests.fault_injection ARGS` runs `python -m gemini_embed.train ARGS` on a disk
that is full from checkpoint step $ENOSPC_FROM_STEP on: orbax's array writes for those
steps (the asynchronous part of a save) raise OSError(ENOSPC), as tensorstore does."""

import errno
import json
import os
import re
import runpy

from orbax.checkpoint._src.serialization import serialization

_write = serialization.async_serialize_from_host
_FULL_FROM_STEP = int(os.environ['ENOSPC_FROM_STEP'])


async def _write_to_full_disk(rslices_on_host, tensorstore_spec, **kwargs):
  step = re.search(r'/checkpoints/(\d+)', json.dumps(tensorstore_spec))
  if step and int(step.group(1)) >= _FULL_FROM_STEP:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), step.string)
  return await _write(rslices_on_host, tensorstore_spec, **kwargs)


serialization.async_serialize_from_host = _write_to_full_disk
runpy.run_module('gemini_embed.train', run_name='__main__', alter_sys=True)
