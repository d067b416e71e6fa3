r"""Train an embedder: `python -m gemini_embed.train --config=configs/NAME.py[:ARGS] --workdir=DIR`.

Re-running the same command resumes from DIR's latest checkpoint (the newest that
restores). Resume order: the workdir's latest checkpoint > `config.init_from` > fresh init.
Exit code 0: finished; 42 (run_status.PREEMPTED_EXIT_CODE): saved on SIGTERM, rerun to
resume; 1: stopped on an error it names (a non-finite state, a failed save). DIR/status.json
says the same (run_status.py). DIR may be local or gs:// (storage.py); it is checked from
every process before anything compiles, and a run spanning several hosts needs gs://.

    mesh → backbone & tokenizer → data → abstract state (eval_shape) → shardings
      (logical rules) → restore / import / init → one jitted step (train_step.py,
      donated state) → the loop and its hooks (train_loop.py)
"""

from __future__ import annotations

import sys

import jax
from absl import app, flags, logging
from flax import nnx
from ml_collections import config_flags

from gemini_embed import (checkpoint, distributed, optim, run_status, sharding, storage,
                          train_loop, train_step, workdir_lease)
from gemini_embed import train_state as ts_lib
from gemini_embed.configlib import check_config, parse_config_flags
from gemini_embed.data import pipeline
from gemini_embed.metrics_log import MetricsLog
from gemini_embed.models import pretrained as pretrained_lib
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.tokenizer import load_tokenizer
from gemini_embed.resume_model import resumed_model_info
from gemini_embed.train_eval import DevRetrievalEval

_CONFIG = config_flags.DEFINE_config_file('config', None, 'configs/NAME.py[:ARGS]', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (checkpoints, metrics).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0 for a multi-process run '
    '(with --num_processes/--process_id); on TPU pods use --multiprocess to auto-detect.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes in a multi-process run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process (0-based).')
_MULTIPROCESS = flags.DEFINE_bool('multiprocess', False, 'jax.distributed.initialize() with '
                                  'cluster auto-detection (TPU pods, SLURM).')
_COORDINATOR_TIMEOUT = flags.DEFINE_integer(
    'coordinator_timeout', 300, 'Seconds every process waits for all to join the coordinator '
    '(jax.distributed initialization_timeout; gemini_embed/distributed.py says who is missing).')


def main(argv):
  del argv
  if _COORDINATOR.value or _MULTIPROCESS.value:
    distributed.join(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                     _COORDINATOR_TIMEOUT.value)
  checkpoint.quiet_orbax_logs()
  config, workdir = _CONFIG.value, _WORKDIR.value
  check_config(config, jax.device_count())
  storage.warn_if_tf_routes_gs(storage.run_paths(config, workdir))  # before the first gs:// access
  storage.check_workdir(workdir)  # a wrong bucket fails here, not at the first checkpoint
  # Process 0 holds the workdir; if it is refused, it raises before any collective and
  # the other processes fail when they lose their coordinator.
  with workdir_lease.held(workdir, holder=jax.process_index() == 0):
    _train(config, workdir)


def _train(config, workdir: str) -> None:
  """mesh → backbone → data → state → step → loop; config.json and model.json are
  written once the state exists (a refused or failed resume leaves them as they were)."""
  mesh, rules = sharding.make_mesh(config.mesh), config.sharding_rules
  nproc = jax.process_count()
  logging.info('mesh %s over %d devices, %d processes', dict(mesh.shape), jax.device_count(), nproc)
  ckpt = checkpoint.Checkpointer(workdir, keep=config.checkpoint.keep,
                                 keep_every=config.checkpoint.keep_every or None,
                                 async_save=config.checkpoint.async_save)
  agreed = ckpt.agreed_steps()  # every process resumes from the same step, or none does
  resume_step = agreed[-1] if agreed else None
  model_info, pretrained = _backbone(config, workdir, resume_step, mesh, rules)
  model_cfg, learned_tau = model_info.model, model_info.learned_temperature
  tokenizer = load_tokenizer(config, workdir)
  data_iter = pipeline.train_iterator(config, tokenizer, model_cfg.family, jax.process_index(), nproc)

  tx = optim.make_optimizer(config.optim, config.total_steps)
  tau = config.loss.temperature if learned_tau else None
  make_model = lambda: Embedder(model_cfg, config.embed_dim, nnx.Rngs(config.seed), temperature=tau)
  graphdef, abstract, shardings = ts_lib.abstract_train_state(make_model, tx, mesh, rules)
  state, start = _initial_state(config, ckpt, resume_step, pretrained, abstract, shardings,
                               make_model, tx, data_iter)
  del pretrained  # the state holds its own copy
  _write_config(config, workdir)
  checkpoint.write_model_info(workdir, model_info)
  step_fn, traces = train_step.jitted_train_step(graphdef, shardings, config)
  to_global = lambda local: jax.tree.map(lambda x: jax.make_array_from_process_local_data(
      sharding.batch_sharding(mesh, rules, x.ndim), x), local)

  log = MetricsLog(workdir, config.total_steps)
  throughput = train_loop.Throughput(nproc, train_loop.train_flops(model_cfg, config.embed_dim))
  hooks = [train_loop.MetricsHook(
      config.log_every, log, data_iter, traces, throughput,
      config.peak_flops_per_device * jax.device_count(), ckpt)]
  if config.eval.every and nproc > 1:
    logging.warning('config.eval.every: in-training evaluation runs in single-process runs '
                    'only; use `python -m gemini_embed.evaluate` on the checkpoints instead')
  elif config.eval.every:
    hooks.append(train_loop.EvalHook(
        config.eval.every, DevRetrievalEval(config, tokenizer, model_cfg.family, mesh, rules),
        graphdef, log, throughput))
  try:
    if config.total_steps == 0 and resume_step is None:  # an export of the initial model
      ckpt.save(0, *train_loop.split_state(state), data_iter, force=True)
    _record_status(workdir, config.total_steps, ckpt, 'running', start)
    _, step, preempted = train_loop.run(state, start, config.total_steps, step_fn, traces,
                                        data_iter, to_global, hooks, throughput, ckpt,
                                        config.checkpoint.every)
    ckpt.wait()  # the last checkpoint is on disk before status.json says how the run ended
    exit_code = _record_status(workdir, config.total_steps, ckpt,
                               'preempted' if preempted else 'finished', step)
  except run_status.RunFailed as failure:
    logging.error('%s', failure)
    exit_code = _record_status(workdir, config.total_steps, ckpt, 'failed', failure.step,
                               str(failure))
  finally:
    ckpt.close()
    log.close()
  if exit_code:
    sys.exit(exit_code)
  logging.info('done: step %s in %s', step, workdir)


def _record_status(workdir: str, total_steps: int, ckpt: checkpoint.Checkpointer, state: str,
                   step: int, reason: str | None = None) -> int:
  """Writes status.json (run_status.py); returns the exit code that goes with `state`."""
  steps = ckpt.steps_on_disk()
  run_status.write_status(workdir, state, step, total_steps, steps[-1] if steps else None, reason)
  return run_status.EXIT_CODES.get(state, 0)


def _write_config(config, workdir: str) -> None:
  if jax.process_index() == 0:
    storage.write_text(storage.as_path(workdir) / 'config.json',
                       config.to_json_best_effort(indent=2))


def _backbone(config, workdir, resume_step, mesh, rules
              ) -> tuple[checkpoint.ModelInfo, Embedder | None]:
  """The model (and pretrained weights, placed): workdir > init_from > config. A resume
  keeps the workdir's model.json tree and refuses a config that changes it."""
  if resume_step is not None:
    return resumed_model_info(config, checkpoint.read_model_info(workdir), workdir), None
  if config.init_from:
    pretrained, cfg = pretrained_lib.load_init_from(config, mesh, rules)
  else:
    pretrained, cfg = None, TransformerConfig.from_config(config.model)
  return checkpoint.ModelInfo(cfg, config.embed_dim, tuple(config.mrl_dims),
                              config.loss.learn_temperature), pretrained


def _initial_state(config, ckpt, resume_step, pretrained, abstract, shardings, make_model, tx,
                   data_iter) -> tuple[nnx.State, int]:
  """(state, step): restored (with the data iterator; the newest checkpoint that restores)
  > pretrained + fresh optimiser > random init."""
  if resume_step is not None:
    targets = checkpoint.restore_targets(abstract, shardings)
    step, params, opt = ckpt.restore_newest(targets['model'], targets['optimizer'], data_iter)
    nnx.replace_by_pure_dict(abstract, {'model': params, 'optimizer': opt})
    logging.info('resumed from %s at step %d', ckpt.directory, step)
    return abstract, step
  if pretrained is not None:
    logging.info('initialised from %s', config.init_from)
    return ts_lib.train_state_from_model(pretrained, tx, shardings), 0
  return ts_lib.fresh_train_state(make_model, tx, shardings), 0


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main, flags_parser=parse_config_flags)
