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
# # Ablations of a demo run
# `make notebook WORKDIR=runs/demo` runs this on `make demo`'s output: the score at every
# MRL dim, the seed spread of the fine-tuned runs, loss curves per dataset, and the soup
# beside its ingredients. The logic lives in `gemini_embed/analysis/`; this only names runs.

# %% tags=["parameters"]
WORKDIR = 'runs/demo'           # make demo's output
OUT = 'runs/demo/notebooks/ablations'  # where the figures go
SEED_GROUPS = {'pre-finetune': ['prefinetune'], 'fine-tune (2 seeds)': ['finetune-a', 'finetune-b'],
               'soup': ['soup']}  # recipe → its runs, one per seed
SOUP, INGREDIENTS = 'soup', ['finetune-a', 'finetune-b']
TRAINED = ['prefinetune', 'finetune-a', 'finetune-b']  # runs with loss curves

# %%
import os

from IPython.display import Image, display

from gemini_embed import analysis

os.makedirs(OUT, exist_ok=True)


def show(fig, name):
  path = os.path.join(OUT, f'{name}.png')
  fig.savefig(path, dpi=100)
  display(Image(filename=path))


scores = analysis.aggregate_frame(os.path.join(WORKDIR, 'results.json'))
DIM = int(scores['dim'].max())
scores[['system', 'mean_task', 'mean_task_lo', 'mean_task_hi', 'mean_type']].round(4)

# %% [markdown]
# Mean(Task) against the MRL prefix width (band: 95% bootstrap interval).

# %%
show(analysis.score_vs_dim(scores), 'score_vs_dim')

# %% [markdown]
# Each recipe over its seeds: the bar is the mean, dots the seeds, the error bar their range.

# %%
show(analysis.ablation_bars(scores, SEED_GROUPS, DIM), 'ablation_bars')

# %% [markdown]
# Loss per dataset: task-homogeneous batches alternate between datasets, so each dataset
# gets its own line.

# %%
curves = analysis.metrics_frame({r: os.path.join(WORKDIR, r) for r in TRAINED})
show(analysis.loss_curves(curves), 'loss_curves')

# %%
show(analysis.soup_vs_ingredients(scores, SOUP, INGREDIENTS, DIM), 'soup_vs_ingredients')
