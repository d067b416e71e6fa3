"""Checkpoints: orbax CheckpointManager over a composite of
{params, optimizer, data_iter}, asynchronous, restored into target shardings.

Workdir layout (other tools rely on it):

    WORKDIR/checkpoints/<step>/params/     the embedder's parameters (encode, soup, init_from)
    WORKDIR/checkpoints/<step>/optimizer/  optimiser state and step counter
    WORKDIR/checkpoints/<step>/data_iter/  per-process data-iterator state (grain handler)
    WORKDIR/checkpoints/corrupt-<step>/    a checkpoint that did not restore, set aside on resume
    WORKDIR/model.json                     ModelInfo: TransformerConfig, embed_dim, mrl_dims, …
    WORKDIR/tokenizer.json                 the tokenizer the run used
    WORKDIR/status.json                    how the last run ended (run_status.py)
    WORKDIR/lease.json                     the running trainer's lease (workdir_lease.py)

`params` alone is what encode/evaluate/soup/init_from read (`restore_embedder`);
a soup directory has the same layout with only `params`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from typing import Any, Mapping

import grain
import numpy as np
from absl import logging as absl_logging
import jax
import orbax.checkpoint as ocp
from etils import epath
from flax import nnx
from jax.experimental import multihost_utils

from gemini_embed import sharding as sharding_lib
from gemini_embed import storage
from gemini_embed.models import precision
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.run_status import RunFailed

CHECKPOINT_DIR = 'checkpoints'
MODEL_FILE = 'model.json'


class _QuietOrbax(logging.Filter):
  """Orbax logs every file it renames at INFO: keep its warnings, drop the chatter. Its
  errors are kept to one line (the caller reports the failure; --verbosity=1 keeps the
  tracebacks and whole TensorStore specs)."""

  def filter(self, record):
    if '/orbax/' not in record.pathname:
      return True
    if record.levelno < logging.WARNING:
      return False
    if absl_logging.get_verbosity() < 1:
      record.msg, record.args = _one_line(record.getMessage()), None
      record.exc_info = record.exc_text = record.stack_info = None
    return True


def _one_line(text: str, limit: int = 200) -> str:
  first = (text.strip().splitlines() or [''])[0]
  return first if len(first) <= limit else first[:limit - 1] + '…'


def failure_reason(error: BaseException) -> str:
  """What went wrong, in one line: the innermost cause (orbax wraps TensorStore's errors),
  an OSError as its errno text (its filename can be a whole TensorStore spec)."""
  while error.__cause__ is not None:
    error = error.__cause__
  if isinstance(error, OSError) and error.strerror:
    return f'{type(error).__name__}: [Errno {error.errno}] {error.strerror}'
  return _one_line(f'{type(error).__name__}: {error}')


def quiet_orbax_logs() -> None:
  """Call from a tool's main: orbax's INFO lines would bury the progress output."""
  absl_logger = absl_logging.get_absl_logger()
  if not any(isinstance(f, _QuietOrbax) for f in absl_logger.filters):
    absl_logger.addFilter(_QuietOrbax())


class _IteratorSnapshot:
  """Adapts any iterator with get_state()/set_state() to grain's orbax handler.

  The state is captured when the save is *requested*: an async save must not
  see the iterator advance while it writes."""

  def __init__(self, iterator):
    self.iterator = iterator
    self._state = json.dumps(iterator.get_state()).encode() if hasattr(iterator, 'get_state') else b''

  def get_state(self) -> bytes:
    return self._state

  def set_state(self, state: bytes) -> None:
    self.iterator.set_state(json.loads(state.decode()))

  def start_prefetch(self) -> None:
    start = getattr(self.iterator, 'start_prefetch', None)
    if start:
      start()


# Steps agreed across processes (the newest ones; `keep` is far below this).
_MAX_AGREED_STEPS = 1024


class Checkpointer:
  """Keeps the last `keep` checkpoints plus every `keep_every`-th step.

  A save that fails (disk full, …), synchronous or in the background, raises RunFailed
  naming the step, the directory and its free space; orbax deletes old checkpoints only
  after a save succeeds, so the earlier ones stay. `check_async_save` polls the save in
  flight without waiting for it."""

  def __init__(self, workdir: str, *, keep: int = 3, keep_every: int | None = None,
               async_save: bool = True, read_only: bool = False):
    self.directory = storage.as_path(workdir) / CHECKPOINT_DIR
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, keep_period=keep_every, create=not read_only, read_only=read_only,
        enable_async_checkpointing=async_save)
    self.manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={'params': ocp.StandardCheckpointHandler(),
                       'optimizer': ocp.StandardCheckpointHandler(),
                       'data_iter': grain.checkpoint.CheckpointHandler()})
    self._saving: int | None = None  # the step of the last save requested

  def latest_step(self) -> int | None:
    """The newest step this process sees (messages; `agreed_steps` to act on)."""
    return self.manager.latest_step()

  def agreed_steps(self) -> list[int]:
    """The committed steps as process 0 lists them, broadcast to every process: a
    process that lists the directory at another moment (a save being finalised, a
    step being set aside) must not resume from another step — or start fresh — while
    the others restore, which would leave them waiting at each other's barriers."""
    steps = sorted(self.manager.all_steps())
    if jax.process_count() == 1:
      return steps
    buf = np.full(_MAX_AGREED_STEPS, -1, np.int32)
    mine = steps[-_MAX_AGREED_STEPS:]
    buf[:len(mine)] = mine
    agreed = [int(s) for s in multihost_utils.broadcast_one_to_all(buf) if s >= 0]
    if agreed != mine:
      absl_logging.warning('process %d lists checkpoint steps %s, process 0 %s: using '
                           "process 0's", jax.process_index(), mine, agreed)
      self.manager.reload()
    return agreed

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def steps_on_disk(self) -> list[int]:
    """The committed checkpoints, read from the directory (after a failed save the
    manager's own list can miss older ones it meant to rotate away)."""
    self.manager.reload()
    return sorted(self.manager.all_steps())

  def save(self, step: int, params, optimizer, data_iter=None, *, force: bool = False) -> bool:
    items = {'params': ocp.args.StandardSave(params),
             'optimizer': ocp.args.StandardSave(optimizer)}
    if data_iter is not None:
      items['data_iter'] = grain.checkpoint.CheckpointSave(_IteratorSnapshot(data_iter))
    self.wait()  # a failure of the previous save is reported as that step's
    self._saving = step
    try:
      return self.manager.save(step, args=ocp.args.Composite(**items), force=force)
    except Exception as e:  # any failed write stops the run with its reason
      raise self._save_failed(e) from e

  def restore(self, step: int, abstract_params, abstract_optimizer, data_iter=None):
    """abstract_*: trees of jax.ShapeDtypeStruct with `.sharding` set (the targets)."""
    items = {'params': ocp.args.StandardRestore(abstract_params),
             'optimizer': ocp.args.StandardRestore(abstract_optimizer)}
    if data_iter is not None:
      items['data_iter'] = grain.checkpoint.CheckpointRestore(_IteratorSnapshot(data_iter))
    out = self.manager.restore(step, args=ocp.args.Composite(**items))
    return out['params'], out['optimizer']

  def restore_newest(self, abstract_params, abstract_optimizer, data_iter=None
                     ) -> tuple[int, Any, Any]:
    """(step, params, optimizer) of the newest checkpoint that restores. Newer ones that
    do not (a truncated file, a missing manifest) are logged with the reason and moved to
    checkpoints/corrupt-<step>, out of the way of later saves and rotation. When none
    restores, nothing is moved and the error lists each step's reason."""
    failed = []
    for step in sorted(self.agreed_steps(), reverse=True):
      try:
        params, optimizer = self.restore(step, abstract_params, abstract_optimizer, data_iter)
      except Exception as e:  # orbax/TensorStore raise many kinds
        failed.append((step, failure_reason(e)))
        continue
      self._set_aside(failed, step)
      return step, params, optimizer
    reasons = '; '.join(f'step {s}: {r}' for s, r in failed)
    raise RuntimeError(f'{self.directory}: no checkpoint restores ({reasons}). Nothing was moved: '
                       'if the code or config changed since they were written, restore it; '
                       'otherwise move the workdir away to start over.')

  def _set_aside(self, failed: list[tuple[int, str]], restored: int) -> None:
    for step, reason in failed:
      target = self.directory / f'corrupt-{step}'
      n = 1
      while target.exists():
        n += 1
        target = self.directory / f'corrupt-{step}.{n}'
      absl_logging.warning('checkpoint step %d does not restore (%s); moved to %s, resuming '
                           'from step %d', step, reason, target, restored)
      if jax.process_index() == 0:
        (self.directory / str(step)).rename(target)
    if failed:
      if jax.process_count() > 1:
        multihost_utils.sync_global_devices('gemini_embed: corrupt checkpoints set aside')
      self.manager.reload()

  def check_async_save(self) -> None:
    """Raises RunFailed if the save in flight has failed; never waits for one running."""
    if not self.manager.is_saving_in_progress():
      self.wait()

  def wait(self) -> None:
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # the background write's error, whatever it is
      raise self._save_failed(e) from e

  def close(self) -> None:
    self.wait()
    self.manager.close()

  def _save_failed(self, error: BaseException) -> RunFailed:
    try:
      free = (f'{_size(shutil.disk_usage(self.directory).free)} free'
              if not storage.is_remote(self.directory) else 'an object store')
    except OSError:
      free = 'free space unknown'
    kept = [s for s in self.steps_on_disk() if s != self._saving]
    return RunFailed(self._saving, (
        f'checkpoint step {self._saving} could not be saved to {self.directory}: '
        f'{failure_reason(error)}; {free} there. Earlier checkpoints are kept: {kept}. '
        'Make room, then rerun the same command to resume.'))


def _size(n: float) -> str:
  for unit in ('B', 'KiB', 'MiB', 'GiB'):
    if n < 1024:
      return f'{n:.1f} {unit}'
    n /= 1024
  return f'{n:.1f} TiB'


def save_params_only(directory: str, params, step: int = 0) -> None:
  """A params-only checkpoint (soups, exports) in the workdir layout."""
  manager = ocp.CheckpointManager(
      storage.as_path(directory) / CHECKPOINT_DIR,
      item_handlers={'params': ocp.StandardCheckpointHandler()})
  manager.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(params)), force=True)
  manager.wait_until_finished()
  manager.close()


def restore_params(directory: str, abstract_params, step: int | None = None):
  """Params of `step` (default: latest) from a training workdir or a soup directory."""
  path = storage.as_path(directory) / CHECKPOINT_DIR
  if not path.exists():
    raise FileNotFoundError(f'{directory}: no {CHECKPOINT_DIR}/ directory; is it a training '
                            'workdir or a soup output?')
  manager = ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(read_only=True),
                                  item_handlers={'params': ocp.StandardCheckpointHandler()})
  steps = list(manager.all_steps())
  if not steps:
    raise FileNotFoundError(f'{directory}: {CHECKPOINT_DIR}/ holds no finished checkpoint')
  step = max(steps) if step is None else step
  if step not in steps:
    raise FileNotFoundError(f'{directory}: no checkpoint at step {step}; available: {sorted(steps)}')
  out = manager.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params)))
  manager.close()
  return out['params'], step


def restore_targets(abstract_state: nnx.State, shardings: nnx.State) -> dict:
  """Pure-dict tree of ShapeDtypeStructs carrying their target shardings: what orbax
  restores into, each array read straight into its shards."""
  return jax.tree.map(lambda v, s: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=s),
                      nnx.to_pure_dict(abstract_state), nnx.to_pure_dict(shardings))


def restore_embedder(workdir: str, step: int | None = None, mesh=None, rules=None, *,
                     policies: Mapping[str, Any] | None = None) -> tuple[Embedder, int]:
  """(Embedder, step) of a training workdir or soup at `step` (default: the latest).

  The tree comes from the workdir's model.json (ModelInfo), so it matches what was
  saved, `log_temperature` included when τ was learned. Parameters are restored
  straight into their shardings on `mesh` under `rules`; without a mesh, onto one
  host CPU device (soups and tests read host arrays, whatever the accelerator).
  policies: TransformerConfig fields that change how the model computes, not its
  parameters (attention_mode, attention_impl, precision, remat).
  """
  info = read_model_info(workdir)
  if policies:
    info = dataclasses.replace(info, model=info.model.replace(**policies))
  if mesh is None:
    mesh = sharding_lib.make_mesh({'data': 1}, jax.local_devices(backend='cpu')[:1])
  graphdef, state, shardings = sharding_lib.abstract_state(
      lambda: info.make_embedder(nnx.Rngs(0)), mesh, rules or sharding_lib.DEFAULT_RULES)
  params, step = restore_params(workdir, restore_targets(state, shardings), step)
  nnx.replace_by_pure_dict(state, params)
  return nnx.merge(graphdef, state), step


@dataclasses.dataclass(frozen=True)
class ModelInfo:
  """WORKDIR/model.json: everything needed to rebuild the run's Embedder tree."""
  model: TransformerConfig
  embed_dim: int
  mrl_dims: tuple[int, ...]
  learned_temperature: bool = False  # the Embedder carries `log_temperature`

  def make_embedder(self, rngs: nnx.Rngs, temperature: float = 1.0) -> Embedder:
    """The Embedder of this tree (`temperature` is the initial τ when it is learned)."""
    return Embedder(self.model, self.embed_dim, rngs,
                    temperature=temperature if self.learned_temperature else None)


def write_model_info(workdir: str, info: ModelInfo) -> None:
  if jax.process_index() != 0:
    return
  record = {'model': info.model.to_dict(), 'embed_dim': info.embed_dim,
            'mrl_dims': list(info.mrl_dims), 'learned_temperature': info.learned_temperature}
  directory = storage.makedirs(workdir)
  storage.write_text(directory / MODEL_FILE, json.dumps(record, indent=2))


def read_model_info(workdir: str) -> ModelInfo:
  """WORKDIR/model.json; a missing file is an error naming it."""
  path = epath.Path(workdir) / MODEL_FILE
  if not path.exists():
    raise FileNotFoundError(f'{path}: missing; {workdir} is not a gemini_embed workdir or soup')
  info: dict[str, Any] = json.loads(path.read_text())
  prefix = f'{path}: model'
  cfg = TransformerConfig.from_config(precision.from_old_fields(info['model'], prefix), prefix)
  return ModelInfo(cfg, int(info['embed_dim']), tuple(info['mrl_dims']),
                   bool(info.get('learned_temperature', False)))
