"""A real GCS protocol server for tests: `gcp-storage-emulator` (the `test` extra) on a
free loopback port, and the environment that points every client at it.

    with running_emulator(tmp_dir) as gcs:     # gcs.env: for os.environ and subprocesses
      gcs.put(local_dir, 'data')               # → gs://BUCKET/data/...

Which client reads which variable:
  gcsfs (etils.epath's gs:// backend)     STORAGE_EMULATOR_HOST; FSSPEC_GCS_TOKEN=anon
  google-cloud-storage (tensorboardX)     STORAGE_EMULATOR_HOST (anonymous credentials)
  tensorstore (orbax's arrays)            TENSORSTORE_GCS_HTTP_URL
  etils.epath                             EPATH_USE_TF=false: TensorFlow is installed (seqio
                                          extra) and would route gs:// through tf.io.gfile
Nothing may leave the machine: the metadata-server probes of google-auth
(GCE_METADATA_HOST/_IP), tensorstore (GCE_METADATA_ROOT) and gcsfs (NO_GCE_CHECK) go to a
closed loopback port; no user credentials are read (CLOUDSDK_CONFIG is an empty folder,
GOOGLE_APPLICATION_CREDENTIALS unset); gcsfs's zonal-bucket probe (a gRPC call the
emulator does not serve, 60 s of retries per bucket) is off.

One gap of gcp-storage-emulator 2026.7.19 is filled here (run as `python -m
tests.gcs_emulator start ...`): its media downloads carry no `x-goog-generation` header,
which real GCS always sends and tensorstore's GCS driver requires (OCDBT reads its
manifest back to update it: "Malformed StorageGeneration" without it). It still ignores
if-generation-match preconditions, so a conflicting concurrent write is not refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Iterator

BUCKET = 'gemini-embed-test'
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CLOSED = '127.0.0.1:9'  # the discard port: nothing listens there
_UNSET = ('GOOGLE_APPLICATION_CREDENTIALS',)


@dataclasses.dataclass(frozen=True)
class Emulator:
  url: str
  env: dict[str, str]  # the variables above

  def environ(self, base: dict[str, str]) -> dict[str, str]:
    """`base` (a process environment) pointed at the emulator, user credentials removed."""
    return {**{k: v for k, v in base.items() if k not in _UNSET}, **self.env}

  def uri(self, *parts: str) -> str:
    return '/'.join((f'gs://{BUCKET}', *parts))

  def filesystem(self):
    from gcsfs.core import GCSFileSystem  # noqa: PLC0415 (the tpu/test extras)
    return GCSFileSystem(token='anon', endpoint_url=self.url)

  def put(self, local_dir: str, prefix: str) -> str:
    """Uploads `local_dir`'s files under gs://BUCKET/prefix/; returns that URI."""
    fs = self.filesystem()
    for folder, _, files in os.walk(local_dir):
      for name in files:
        path = os.path.join(folder, name)
        fs.put_file(path, f'{BUCKET}/{prefix}/{os.path.relpath(path, local_dir)}')
    return self.uri(prefix)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def emulator_env(url: str, gcloud_config: str) -> dict[str, str]:
  return {
      'STORAGE_EMULATOR_HOST': url,
      'TENSORSTORE_GCS_HTTP_URL': url,
      'FSSPEC_GCS_TOKEN': 'anon',
      'EPATH_USE_TF': 'false',
      'GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT': 'false',
      'GCE_METADATA_HOST': _CLOSED,
      'GCE_METADATA_IP': _CLOSED,
      'GCE_METADATA_ROOT': _CLOSED,
      'NO_GCE_CHECK': 'true',
      'CLOUDSDK_CONFIG': gcloud_config,
      'GOOGLE_CLOUD_PROJECT': 'gemini-embed-test',
  }


@contextlib.contextmanager
def running_emulator(tmp_dir: str) -> Iterator[Emulator]:
  port = _free_port()
  url = f'http://127.0.0.1:{port}'
  log_path = os.path.join(tmp_dir, 'emulator.log')
  gcloud_config = os.path.join(tmp_dir, 'gcloud')
  os.makedirs(gcloud_config, exist_ok=True)
  with open(log_path, 'w') as log:
    proc = subprocess.Popen(
        [sys.executable, '-m', 'tests.gcs_emulator', 'start', '--host=127.0.0.1',
         f'--port={port}', f'--default-bucket={BUCKET}', '--in-memory', '--quiet'],
        stdout=log, stderr=subprocess.STDOUT, cwd=_ROOT)
  try:
    deadline = time.time() + 60
    while True:
      try:
        urllib.request.urlopen(f'{url}/storage/v1/b/{BUCKET}', timeout=1).close()
        break
      except OSError:
        if proc.poll() is not None or time.time() > deadline:
          raise RuntimeError(f'the GCS emulator did not start: {open(log_path).read()[-2000:]}')
        time.sleep(0.1)
    yield Emulator(url, emulator_env(url, gcloud_config))
  finally:
    proc.terminate()
    proc.wait(timeout=30)


def _serve_with_generation_headers() -> None:
  """The emulator's CLI, its media downloads answering with the object's generation."""
  from gcp_storage_emulator import server  # noqa: PLC0415
  from gcp_storage_emulator.__main__ import main  # noqa: PLC0415
  from gcp_storage_emulator.handlers import objects  # noqa: PLC0415
  plain = objects.download

  def download(request, response, storage, *args, **kwargs):
    plain(request, response, storage, *args, **kwargs)
    if response.status in (200, 206):  # found (whole or a range)
      obj = storage.get_file_obj(request.params['bucket_name'], request.params['object_id'])
      response['x-goog-generation'] = str(obj['generation'])
      response['x-goog-metageneration'] = str(obj.get('metageneration', '1'))

  objects.download = download  # objects.get calls it for ?alt=media
  for _, methods in server.HANDLERS:
    for method, handler in list(methods.items()):
      if handler is plain:
        methods[method] = download
  sys.exit(main())


if __name__ == '__main__':
  _serve_with_generation_headers()
