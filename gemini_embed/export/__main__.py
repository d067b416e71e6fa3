"""`python -m gemini_embed.export --workdir=DIR[:STEP] --output=OUT [--format] [--dtype]`."""

from __future__ import annotations

from absl import app, flags

from gemini_embed import checkpoint
from gemini_embed.export import DTYPES, FORMATS, export, parse_workdir, push_to_hub

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training workdir or soup, optionally DIR:STEP.')
_OUTPUT = flags.DEFINE_string('output', None, 'Directory to write the exported model to.')
_FORMAT = flags.DEFINE_enum('format', 'sentence-transformers', list(FORMATS),
                            'sentence-transformers (modules, prompts) or hf (base model only).')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', sorted(DTYPES), 'Weight dtype of the export.')
_PUSH = flags.DEFINE_string('push_to_hub', None, 'Also upload OUT to this Hub repo (online only; '
                            'untested offline).')


def main(argv):
  del argv
  checkpoint.quiet_orbax_logs()
  workdir, step = parse_workdir(_WORKDIR.value)
  summary = export(workdir, _OUTPUT.value, step, fmt=_FORMAT.value, dtype=_DTYPE.value)
  print(f'{workdir} (step {summary["step"]}, {summary["family"]}, {summary["embed_dim"]} dims) '
        f'→ {_OUTPUT.value} [{_FORMAT.value}, {_DTYPE.value}]')
  if _PUSH.value:
    push_to_hub(_OUTPUT.value, _PUSH.value)


if __name__ == '__main__':
  flags.mark_flags_as_required(['workdir', 'output'])
  app.run(main)
