r"""Embed texts with a trained run or a soup:

    python -m gemini_embed.encode --workdir=DIR --input=ROWS.jsonl --output=EMB.npy \
        [--kind=query|document] [--task=NAME] [--dim=N] [--step=N] [--mesh=data:-1,fsdp:2]

ROWS: one JSON object per line with a "text" field. EMB: float32 [N, dim],
L2-normalised (the first `dim` coordinates, re-normalised: an MRL prefix), rows
in input order; an input without rows gives a [0, dim] array. --dim is checked
against the run's model.json first: above its width is an error, a width that
is not one of its trained MRL prefixes a warning. Queries get the task prompt of
--task; documents the document template. The model is sharded over the run's
training mesh (its config.json) or --mesh.
"""

from __future__ import annotations

import numpy as np
from absl import app, flags
from etils import epath

from gemini_embed import checkpoint, sharding, storage
from gemini_embed.data.jsonl import read_jsonl
from gemini_embed.encoding import check_dims, load_run
from gemini_embed.eval.embeddings import mrl_view

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training workdir or soup directory.')
_INPUT = flags.DEFINE_string('input', None, 'JSONL rows with a "text" field.')
_OUTPUT = flags.DEFINE_string('output', None, 'Where to write the float32 .npy.')
_KIND = flags.DEFINE_enum('kind', 'document', ['query', 'document'], 'Which side to encode as.')
_TASK = flags.DEFINE_string('task', 'retrieval', 'Task string of the query prompt.')
_DIM = flags.DEFINE_integer('dim', None, 'MRL prefix to keep (default: the full embedding).')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: latest).')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Texts per device batch.')
_MESH = flags.DEFINE_string('mesh', None, 'Mesh to run on, e.g. data:-1,fsdp:2,tensor:1 '
                            "(default: the run's config.json mesh).")


def read_texts(path: str) -> list[str]:
  """The "text" of every row; a bad row is an error naming its line."""
  texts = []
  for n, row in read_jsonl(path):
    if not isinstance(row.get('text'), str):
      raise ValueError(f'{path}:{n}: needs a "text" string field')
    texts.append(row['text'])
  return texts


def main(argv):
  del argv
  checkpoint.quiet_orbax_logs()
  dim = _DIM.value
  if dim is None:
    dim = checkpoint.read_model_info(_WORKDIR.value).embed_dim
  try:
    check_dims(_WORKDIR.value, [dim], '--dim')
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  storage.check_readable(_INPUT.value, '--input')
  texts = read_texts(_INPUT.value)
  output = _OUTPUT.value if _OUTPUT.value.endswith('.npy') else _OUTPUT.value + '.npy'
  storage.check_writable(str(epath.Path(output).parent), '--output')  # before the model loads
  mesh = sharding.parse_mesh(_MESH.value) if _MESH.value else None
  run = load_run(_WORKDIR.value, _STEP.value, mesh)
  if texts:
    emb = run.encoder(batch_size=_BATCH.value, progress=True)(texts, _KIND.value, _TASK.value)
    emb = mrl_view(emb, dim)
  else:
    emb = np.zeros((0, dim))
  with epath.Path(output).open('wb') as f:
    np.save(f, emb.astype(np.float32))
  print(f'{len(texts)} {_KIND.value} texts → {output} [{emb.shape[0]}, {dim}] (step {run.step})')


if __name__ == '__main__':
  flags.mark_flags_as_required(['workdir', 'input', 'output'])
  app.run(main)
