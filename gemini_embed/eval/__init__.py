"""Evaluation: MTEB-style task types, their metrics, baselines, and reports.

    suite.py                  load SUITE/<type>/<name>/ (design.md's layout); the select /
                              report halves
    ranking_metrics.py        top-k ranking, nDCG / MAP / recall / MRR (trec_eval definitions)
    metrics.py                AP, best-threshold accuracy/F1, Spearman, V-measure, bitext F1
    aggregates.py             Mean(Task), Mean(Type), Borda
    bootstrap.py              per-item scores → bootstrap intervals, paired comparisons
    embeddings.py             calling an encoder callback; MRL prefix views
    task_runners.py           one runner per task type, every dim from one encode
    suite_evaluation.py       evaluate_suite(suite_dir, encoders, dims) → results
    results_report.py         write_results(results, out_dir): JSON, markdown, plot
    merge.py                  results JSONs of one suite half as one (as a joint run)
    compare.py                `python -m gemini_embed.eval.compare`: P(A > B) from results
                              JSONs (several are merged; --output writes the merge)
    bm25.py                   BM25 Okapi baseline (retrieval, reranking)
    sentence_transformer_encoder.py   a sentence-transformers directory (MiniLM) as an encoder
    mteb_adapter.py           an encoder callback behind mteb's encoder protocol (optional)
"""

import importlib

# Light, and eager: the function shares its module's name, which an import of the module
# would otherwise bind on this package in its place.
from gemini_embed.eval.sentence_transformer_encoder import (minilm_model_dir,
                                                            sentence_transformer_encoder)

# Names re-exported from their modules, imported on first use (PEP 562): a process that
# only reads a suite or a config does not pay for scikit-learn and SciPy (seconds of
# start-up in every training and soup run).
_EXPORTS = {
    'Bm25Okapi': 'bm25',
    'comparison_text': 'results_report', 'write_results': 'results_report',
    'SuiteFormatError': 'suite', 'load_suite': 'suite', 'resolve_half': 'suite',
    'comparison': 'suite_evaluation', 'evaluate_suite': 'suite_evaluation',
    'evaluate_tasks': 'suite_evaluation',
}
__all__ = sorted([*_EXPORTS, 'minilm_model_dir', 'sentence_transformer_encoder'])


def __getattr__(name: str):
  if name in _EXPORTS:
    return getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
