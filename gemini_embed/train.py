r"""Train an embedder: `python -m gemini_embed.train --config=configs/NAME.py[:ARGS] --workdir=DIR`.

Re-running the same command resumes from DIR's latest checkpoint. Resume order:
the workdir's latest checkpoint > `config.init_from` > fresh init.

    mesh → data → abstract state (eval_shape) → shardings (logical rules)
      → init / import / restore → one jitted step (donated state) → loop
"""

from __future__ import annotations

import os
import signal
import time

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'configs/NAME.py[:ARGS]', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (checkpoints, metrics).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0 for a multi-process run '
    '(with --num_processes/--process_id); on TPU pods use --multiprocess to auto-detect.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes in a multi-process run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process (0-based).')
_MULTIPROCESS = flags.DEFINE_bool('multiprocess', False, 'jax.distributed.initialize() with '
                                  'cluster auto-detection (TPU pods, SLURM).')


class Preemption:
  """SIGTERM sets a flag; the loop saves a checkpoint at the current step and exits."""

  def __init__(self):
    self.requested = False
    signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def agreed(self) -> bool:
    import jax
    import numpy as np
    if jax.process_count() == 1:
      return self.requested
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.int32(self.requested))))


def main(argv):
  del argv
  # ----------------------------------------------------------------- distributed
  import jax
  if _COORDINATOR.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif _MULTIPROCESS.value:
    jax.distributed.initialize()

  import numpy as np
  from flax import nnx

  from gemini_embed import checkpoint, flops, optim, sharding
  from gemini_embed import train_state as ts_lib
  from gemini_embed.configlib import check_config
  from gemini_embed.data import pipeline
  from gemini_embed.metrics_log import MetricsLog
  from gemini_embed.models import pretrained as pretrained_lib
  from gemini_embed.models.embedder import Embedder
  from gemini_embed.models.model_config import TransformerConfig
  from gemini_embed.models.tokenizer import load_tokenizer

  # ----------------------------------------------------------------- config & mesh
  checkpoint.quiet_orbax_logs()
  config, workdir = _CONFIG.value, _WORKDIR.value
  check_config(config, jax.device_count())
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))
  mesh = sharding.make_mesh(config.mesh)
  rules = config.sharding_rules
  pid, nproc = jax.process_index(), jax.process_count()
  logging.info('mesh %s over %d devices, %d processes', dict(mesh.shape), jax.device_count(), nproc)
  preemption = Preemption()
  ckpt = checkpoint.Checkpointer(workdir, keep=config.checkpoint.keep,
                                 keep_every=config.checkpoint.keep_every or None,
                                 async_save=config.checkpoint.async_save)
  resume_step = ckpt.latest_step()

  # ----------------------------------------------------------------- backbone & tokenizer
  pretrained = None
  if resume_step is not None:
    model_cfg = checkpoint.read_model_info(workdir).model
    model_cfg = model_cfg.replace(**pretrained_lib.run_policies(config))
  elif config.init_from:
    pretrained, model_cfg = pretrained_lib.load_init_from(config, mesh, rules)
  else:
    model_cfg = TransformerConfig.from_config(config.model)
  tokenizer = load_tokenizer(config, workdir)
  info = checkpoint.ModelInfo(model_cfg, config.embed_dim, tuple(config.mrl_dims),
                              config.loss.learn_temperature)
  checkpoint.write_model_info(workdir, info)

  # ----------------------------------------------------------------- data
  data_iter = pipeline.train_iterator(config, tokenizer, model_cfg.family, pid, nproc)

  # ----------------------------------------------------------------- shapes & shardings
  tx = optim.make_optimizer(config.optim, config.total_steps)
  make_model = lambda: Embedder(model_cfg, config.embed_dim, nnx.Rngs(config.seed))
  graphdef, abstract, shardings = ts_lib.abstract_train_state(make_model, tx, mesh, rules)

  # ----------------------------------------------------------------- init / import / restore
  if resume_step is not None:
    targets = checkpoint.restore_targets(abstract, shardings)
    params, opt = ckpt.restore(resume_step, targets['model'], targets['optimizer'], data_iter)
    state = abstract
    nnx.replace_by_pure_dict(state, {'model': params, 'optimizer': opt})
    logging.info('resumed from %s at step %d', workdir, resume_step)
  elif pretrained is not None:
    state = ts_lib.train_state_from_model(pretrained, tx, shardings)
    del pretrained
    logging.info('initialised from %s', config.init_from)
  else:
    state = ts_lib.fresh_train_state(make_model, tx, shardings)
  step = int(resume_step or 0)

  # ----------------------------------------------------------------- the step
  jit_step, traces = ts_lib.jitted_train_step(graphdef, shardings, config)

  def global_batch(local):
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(
        sharding.batch_sharding(mesh, rules, x.ndim), x), local)

  # ----------------------------------------------------------------- loop
  dev_eval = None
  if config.eval.every:
    if nproc > 1:
      logging.warning('config.eval.every: in-training evaluation runs in single-process runs '
                      'only; use `python -m gemini_embed.evaluate` on the checkpoints instead')
    else:
      from gemini_embed.train_eval import DevRetrievalEval
      dev_eval = DevRetrievalEval(config, tokenizer, model_cfg.family, mesh, rules)
  log = MetricsLog(workdir, config.total_steps)
  peak = config.peak_flops_per_device * jax.device_count()
  shapes_seen, last = set(), None
  t_last, ex_since, tok_since, steps_since = time.time(), 0, 0, 0
  try:
    if config.total_steps == 0 and resume_step is None:  # an export of the initial model
      ckpt.save(0, *_split(nnx, state), data_iter, force=True)
    while step < config.total_steps:
      local = next(data_iter)
      shapes_seen.add(tuple(jax.tree.leaves(jax.tree.map(np.shape, local))))
      batch = global_batch(local)
      compiled_before = len(traces)
      state, metrics = jit_step(state, batch)
      step += 1
      assert len(traces) <= len(shapes_seen), f'step recompiled: {len(traces)} traces for ' \
          f'{len(shapes_seen)} batch shapes'
      if len(traces) > compiled_before:  # keep compilation out of the throughput numbers
        jax.block_until_ready(state)
        logging.info('step compiled for batch shapes #%d in %.1f s', len(traces), time.time() - t_last)
        t_last, ex_since, tok_since, steps_since = time.time(), 0, 0, 0
      else:
        ex_since += local.size * nproc
        tok_since += local.num_tokens() * nproc
        steps_since += 1

      if step % config.log_every == 0 or step == config.total_steps:
        metrics = jax.device_get(metrics)
        bad = [k for k, v in metrics.items() if not np.all(np.isfinite(v))]
        if bad:
          ckpt.wait()
          raise FloatingPointError(
              f'step {step}: metric {bad[0]}={metrics[bad[0]]} is not finite; stopping. The last '
              f'good checkpoint is step {ckpt.latest_step()} in {workdir}/checkpoints')
        metrics.update({f'data/{k}': v for k, v in data_iter.bad_input_counts().items()})
        metrics.update(compilations=len(traces), **{'data/fingerprint': _fingerprint(local)})
        if steps_since:
          dt = time.time() - t_last
          flop = flops.train_step_flops(model_cfg, config.embed_dim, pipeline.batch_shapes(local))
          metrics.update(examples_per_s=ex_since / dt, tokens_per_s=tok_since / dt,
                         step_time=dt / steps_since)
          if peak:
            metrics['mfu'] = flop * nproc * steps_since / dt / peak
        log.write(step, metrics)
        log.progress(step, metrics)
        t_last, ex_since, tok_since, steps_since = time.time(), 0, 0, 0

      if dev_eval and (step % config.eval.every == 0 or step == config.total_steps):
        scores = dev_eval(nnx.merge(graphdef, state).model)
        log.write(step, scores)
        t_last = time.time()  # keep evaluation out of the throughput numbers

      if preemption.agreed():
        ckpt.save(step, *_split(nnx, state), data_iter, force=True)
        ckpt.wait()
        logging.warning('SIGTERM: saved step %d to %s; exiting', step, workdir)
        return
      if step % config.checkpoint.every == 0 or step == config.total_steps:
        ckpt.save(step, *_split(nnx, state), data_iter)
      last = step
  finally:
    ckpt.wait()
    ckpt.close()
    log.close()
  logging.info('done: step %s in %s', last, workdir)


def _fingerprint(local) -> int:
  """24 bits identifying this process's batch (exact in float metrics): resume checks."""
  import zlib
  return zlib.crc32(local.query_id.tobytes() + local.pos_id.tobytes()) & 0xFFFFFF


def _split(nnx, state):
  pure = nnx.to_pure_dict(state)
  return pure['model'], pure['optimizer']


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)
