r"""Execute the project's notebooks (experiments/notebooks/*.py, jupytext py:percent) on a
demo workdir or a sweep: `make notebook WORKDIR=runs/demo [SWEEP=runs/sweep]`, or

    python -m gemini_embed.analysis.notebooks --workdir=runs/demo [--sweep=DIR]
        [--notebooks=ablations,mixtures] [--output=DIR]

Each notebook's `parameters` cell names the runs it reads; the values given here are put
in a cell after it (papermill's convention). The executed notebook is written to
OUTPUT/NAME.ipynb (default OUTPUT: WORKDIR/notebooks) and its figures to OUTPUT/NAME/*.png.
The kernel is this Python: a kernelspec for sys.executable is installed into a temporary
directory that JUPYTER_PATH points at, so "No such kernel" cannot happen in a venv.
"""

from __future__ import annotations

import os

from absl import app, flags

from gemini_embed.analysis.notebook_exec import NOTEBOOK_DIR, NOTEBOOKS, execute, figure_count

_WORKDIR = flags.DEFINE_string('workdir', 'runs/demo', 'The demo workdir (make demo).')
_SWEEP = flags.DEFINE_string('sweep', None, 'A sweep directory (default: WORKDIR/sweep).')
_NOTEBOOKS = flags.DEFINE_list('notebooks', list(NOTEBOOKS), 'Which notebooks to run.')
_OUTPUT = flags.DEFINE_string('output', None, 'Where they go (default: WORKDIR/notebooks).')


def main(argv):
  del argv
  output = _OUTPUT.value or os.path.join(_WORKDIR.value, 'notebooks')
  parameters = dict(ablations=dict(WORKDIR=_WORKDIR.value),
                    mixtures=dict(SWEEP=_SWEEP.value or os.path.join(_WORKDIR.value, 'sweep')))
  for name in _NOTEBOOKS.value:
    if name not in NOTEBOOKS:
      raise app.UsageError(f'--notebooks: {name!r} is not one of {list(NOTEBOOKS)}')
    params = dict(parameters[name], OUT=os.path.join(output, name))
    nb = execute(os.path.join(NOTEBOOK_DIR, f'{name}.py'), params,
                 os.path.join(output, f'{name}.ipynb'))
    print(f'{name}: {figure_count(nb)} figures; wrote {output}/{name}.ipynb and '
          f'{params["OUT"]}/*.png')


if __name__ == '__main__':
  app.run(main)
