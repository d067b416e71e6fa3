# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A mixture-rate sweep
# After `python -m gemini_embed.sweep --workdir=SWEEP ...`: the points' mixtures beside
# their scores (chosen on the dev suite's select half, reported on its report half), the
# score against each swept rate, and the chosen point's loss per dataset.

# %% tags=["parameters"]
SWEEP = 'runs/demo/sweep'             # the sweep's --workdir
OUT = 'runs/demo/notebooks/mixtures'  # where the figures go

# %%
import json
import os

import pandas as pd
from IPython.display import Image, Markdown, display

from gemini_embed import analysis

os.makedirs(OUT, exist_ok=True)


def show(fig, name):
  path = os.path.join(OUT, f'{name}.png')
  fig.savefig(path, dpi=100)
  display(Image(filename=path))


ratios = pd.read_csv(os.path.join(SWEEP, 'ratios.csv'), index_col='point')
metrics = pd.read_csv(os.path.join(SWEEP, 'metrics.csv'), index_col='point')
with open(os.path.join(SWEEP, 'best.json')) as f:
  best = json.load(f)
METRIC = best['metric']
display(Markdown(open(os.path.join(SWEEP, 'table.md')).read()))

# %%
select = metrics[f'select/{METRIC}'].dropna()
intervals = metrics.loc[select.index, [f'select/{METRIC}/lo', f'select/{METRIC}/hi']]
show(analysis.score_vs_rate(ratios, select, f'select {METRIC}',
                            intervals.set_axis(['lo', 'hi'], axis=1)), 'score_vs_rate')

# %% [markdown]
# The chosen point: its mixture, its report-half score, and its loss per dataset.

# %%
print(best['point'], best['report_score'], best['report_interval'])
curves = analysis.metrics_frame({best['point']: os.path.join(SWEEP, best['point'])})
show(analysis.loss_curves(curves), 'best_loss_curves')
