"""The two real LLMs, fetched and read by transformers once per pytest session.

Three slow modules (models/test_gguf_real.py, llm/test_llm_real.py, test_export_real.py)
check against the same fetched GGUF directories and transformers' float32 reading of
them; fetching (sha256, tokenizer conversion), transformers' GGUF load and its tokenizer
conversion cost tens of seconds per model, so they are done once here and shared,
read-only. A cache is per process: `make test`'s two workers run the three modules as one
unit (`MODULES`, scheduled by tests/conftest.py), so each model and reference loads once.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile

from gemini_embed.models import fetch_offline
from gemini_embed.models.gguf_import import gguf_file

MODULES = ('tests/models/test_gguf_real.py', 'tests/llm/test_llm_real.py',
           'tests/test_export_real.py')


@functools.cache
def _root() -> str:
  root = tempfile.mkdtemp(prefix='gemini_embed-real-')
  atexit.register(shutil.rmtree, root, ignore_errors=True)   # ~370 MB per process
  return root


@functools.cache
def model_dir(name: str) -> str:
  """NAME's import-ready model directory (fetch_offline), shared by the session."""
  import os
  return fetch_offline.fetch(name, os.path.join(_root(), name))


@functools.cache
def reference_tokenizer(name: str):
  """transformers' tokenizer conversion of NAME's GGUF, from a directory holding only the
  GGUF (from the model directory it would load our tokenizer.json)."""
  import os
  import transformers as tf
  path = gguf_file(model_dir(name))
  alone = tempfile.mkdtemp(prefix='gguf_only-', dir=_root())
  os.symlink(path, os.path.join(alone, os.path.basename(path)))
  return tf.AutoTokenizer.from_pretrained(alone, gguf_file=os.path.basename(path))


@functools.cache
def reference_model(name: str):
  """transformers' float32 reading of NAME's GGUF (tests/models/gguf_reference.py)."""
  from tests.models.gguf_reference import transformers_gguf_model
  return transformers_gguf_model(gguf_file(model_dir(name)))
