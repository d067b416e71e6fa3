"""Runs into pandas frames, and the plots researchers make of them (notebooks in
experiments/notebooks/ call these; the sweep tool draws its score-vs-rate plot here).

    runs.py    config.json, metrics.jsonl, results.json → frames; a point's named metrics
    plots.py   score vs MRL dim, ablation bars with the seed spread, loss curves per
               dataset, score vs mixture rate, a soup beside its ingredients
"""

from gemini_embed.analysis.plots import (ablation_bars, loss_curves, score_vs_dim, score_vs_rate,
                                         soup_vs_ingredients)
from gemini_embed.analysis.runs import (aggregate_frame, config_frame, metrics_frame, read_json,
                                        results_metrics, task_frame)

__all__ = ['ablation_bars', 'aggregate_frame', 'config_frame', 'loss_curves', 'metrics_frame',
           'read_json', 'results_metrics', 'score_vs_dim', 'score_vs_rate', 'soup_vs_ingredients',
           'task_frame']
