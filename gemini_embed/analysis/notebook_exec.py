"""Run a jupytext py:percent notebook with nbclient on this Python's kernel.

The values of `parameters` are put in a cell after the notebook's `parameters` cell
(papermill's convention). A kernelspec for sys.executable is installed into a temporary
directory that JUPYTER_PATH points at, so "No such kernel" cannot happen in a venv.
`python -m gemini_embed.analysis.notebooks` is the command line over it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import jupytext
import nbformat
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
