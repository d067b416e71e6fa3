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
    compare.py                `python -m gemini_embed.eval.compare`: P(A > B) from a results JSON
    bm25.py                   BM25 Okapi baseline (retrieval, reranking)
    sentence_transformer_encoder.py   a sentence-transformers directory (MiniLM) as an encoder
    mteb_adapter.py           an encoder callback behind mteb's encoder protocol (optional)
"""

from gemini_embed.eval.bm25 import Bm25Okapi
from gemini_embed.eval.results_report import comparison_text, write_results
from gemini_embed.eval.sentence_transformer_encoder import (minilm_model_dir,
                                                            sentence_transformer_encoder)
from gemini_embed.eval.suite import SuiteFormatError, load_suite, resolve_half
from gemini_embed.eval.suite_evaluation import comparison, evaluate_suite, evaluate_tasks

__all__ = ['Bm25Okapi', 'SuiteFormatError', 'comparison', 'comparison_text', 'evaluate_suite',
           'evaluate_tasks', 'load_suite', 'minilm_model_dir', 'resolve_half',
           'sentence_transformer_encoder', 'write_results']
