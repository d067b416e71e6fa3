"""`python -m gemini_embed.sweep` (its doc in __main__.py): sweeps that train, score,
collect and choose.

    points.py    overrides ↔ point names; grid points (sweep(add)); Dirichlet mixtures
    launch.py    train + evaluate each point: local (--jobs, thread caps) or a pod
    collect.py   sweep.json, ratios.csv, metrics.csv, table.md, plots, best.json
    fit.py       score ~ mixture, leave-one-out Spearman, the proposed mixture
"""
