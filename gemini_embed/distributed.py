"""Joining a multi-process run (`jax.distributed.initialize`) with a deadline, and an
error that says who is expected where when someone does not come.

Process 0 runs the coordinator; every process registers with it before any device is
used. On Cloud TPU VMs (`--multiprocess`) JAX finds the coordinator itself: worker 0's
internal IP, port 8482 (TPU_COORDINATOR_PORT below); elsewhere it is the
`--coordinator_address=HOST:PORT` you give. That port must be open between the hosts
(the default VPC's internal firewall rule allows it; a custom VPC needs one). If a
process has not joined when the timeout ends, JAX aborts the waiting processes with
DEADLINE_EXCEEDED and a C++ stack trace (seconds later, and slowly); `join` instead
ends the process at the timeout itself, exit code NOT_JOINED_EXIT_CODE, with one line
naming the address, the processes expected, this host, and what to check.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

import jax
from absl import logging

TPU_COORDINATOR_PORT = 8482  # jax._src.clusters.cloud_tpu_cluster.coordinator_port
NOT_JOINED_EXIT_CODE = 3


def join(coordinator_address: str | None, num_processes: int | None, process_id: int | None,
         timeout_s: int) -> None:
  """jax.distributed.initialize: explicit (address, count, id), or cluster auto-detection
  when `coordinator_address` is None (TPU pods, SLURM)."""
  if timeout_s < 1:
    raise ValueError(f'--coordinator_timeout={timeout_s}: must be at least 1 second')
  where = (f'coordinator {coordinator_address}, processes 0…{num_processes - 1}, this is '
           f'process {process_id}' if coordinator_address else
           f'coordinator auto-detected (on TPU VMs: worker 0, port {TPU_COORDINATOR_PORT})')
  host = socket.gethostname()
  logging.info('jax.distributed: joining (%s) from %s; waiting up to %d s for every process',
               where, host, timeout_s)

  def give_up():
    logging.error('%s', not_joined_message(coordinator_address, num_processes, process_id,
                                           host, timeout_s))
    sys.stderr.flush()
    os._exit(NOT_JOINED_EXIT_CODE)  # the main thread is blocked inside XLA's connect

  watchdog = threading.Timer(timeout_s, give_up)
  watchdog.daemon = True
  watchdog.start()
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=timeout_s)
  except Exception as e:  # versions that raise instead of aborting
    raise RuntimeError(not_joined_message(coordinator_address, num_processes, process_id, host,
                                          timeout_s)) from e
  finally:
    watchdog.cancel()
  logging.info('jax.distributed: process %d of %d joined', jax.process_index(),
               jax.process_count())


def not_joined_message(coordinator_address: str | None, num_processes: int | None,
                       process_id: int | None, host: str, timeout_s: int) -> str:
  """What to say when the processes have not all registered near the deadline."""
  if coordinator_address is None:
    return (f'jax.distributed: {host} waited {timeout_s} s for the pod to assemble, '
            'and not every worker joined. Check '
            'that the command started on every worker (launch/pod.py uses --worker=all), '
            f'that port {TPU_COORDINATOR_PORT} of worker 0 is reachable, and '
            '`launch/pod.py preflight`; raise --coordinator_timeout if the workers start slowly.')
  port = coordinator_address.rpartition(':')[2]
  if process_id == 0:
    others = ', '.join(str(i) for i in range(1, num_processes))
    return (f'jax.distributed: process 0 on {host} runs the coordinator at '
            f'{coordinator_address} and waited {timeout_s} s for processes '
            f'{others} of {num_processes}: not all of them registered. Start each with '
            f'--coordinator_address={coordinator_address} --num_processes={num_processes} '
            f'and its own --process_id, and check that port {port} of this host is reachable '
            'from theirs.')
  return (f'jax.distributed: process {process_id} of {num_processes} on {host} could not '
          f'register with the coordinator at {coordinator_address} in {timeout_s} s: '
          f'is process 0 running there with --num_processes={num_processes}, and is port '
          f'{port} reachable from {host} (firewall)?')
