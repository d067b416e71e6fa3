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

import json
import os
import sys
import tempfile

import jupytext
import nbformat
from absl import app, flags
from ipykernel import kernelspec
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK_DIR = os.path.join(ROOT, 'experiments', 'notebooks')
NOTEBOOKS = ('ablations', 'mixtures')
KERNEL = 'gemini-embed'


def with_parameters(nb: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
  """`nb` with a cell assigning `parameters` after the cell tagged `parameters`."""
  index = next((i for i, c in enumerate(nb.cells)
                if 'parameters' in c.get('metadata', {}).get('tags', [])), None)
  if index is None:
    raise ValueError('the notebook has no cell tagged "parameters" (jupytext: '
                     '`# %% tags=["parameters"]`)')
  source = '\n'.join(f'{k} = {v!r}' for k, v in parameters.items())
  cell = nbformat.v4.new_code_cell(source, metadata=dict(tags=['injected-parameters']))
  nb.cells.insert(index + 1, cell)
  return nb


def execute(source: str, parameters: dict, output: str, timeout: int = 600
            ) -> nbformat.NotebookNode:
  """Runs the py:percent notebook `source` with `parameters` on this Python's kernel and
  writes the executed notebook to `output` (.ipynb); raises on the first cell error."""
  nb = with_parameters(jupytext.read(source), parameters)
  with tempfile.TemporaryDirectory() as prefix:
    kernelspec.install(kernel_name=KERNEL, prefix=prefix)
    kernel_json = os.path.join(prefix, 'share', 'jupyter', 'kernels', KERNEL, 'kernel.json')
    with open(kernel_json) as f:
      spec = json.load(f)
    spec['argv'][0] = sys.executable
    # The kernel imports this checkout's gemini_embed, installed or not.
    spec['env'] = dict(MPLBACKEND='Agg', PYTHONPATH=os.pathsep.join(
        filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
    with open(kernel_json, 'w') as f:
      json.dump(spec, f)
    saved = os.environ.get('JUPYTER_PATH')
    os.environ['JUPYTER_PATH'] = os.path.join(prefix, 'share', 'jupyter')
    try:
      NotebookClient(nb, kernel_name=KERNEL, timeout=timeout,
                     resources={'metadata': {'path': os.getcwd()}}).execute()
    finally:
      if saved is None:
        os.environ.pop('JUPYTER_PATH')
      else:
        os.environ['JUPYTER_PATH'] = saved
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  nbformat.write(nb, output)
  return nb


def figure_count(nb: nbformat.NotebookNode) -> int:
  return sum('image/png' in out.get('data', {}) for c in nb.cells if c.cell_type == 'code'
             for out in c.get('outputs', []))


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
