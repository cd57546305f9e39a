"""Bayesian hierarchical Gaussian models for MRTs (collapsed and row-level reference)."""

from hte_mrt.estimators.bayes.collapsed import (
    CollapsedStats,
    add_log_likelihood,
    build_collapsed_model,
    collapsed_logp_numpy,
    collapsed_stats,
    draw_random_effects,
    pointwise_loglik,
    posterior_params,
)
from hte_mrt.estimators.bayes.rowlevel import build_rowlevel_model

__all__ = [
    "CollapsedStats",
    "add_log_likelihood",
    "build_collapsed_model",
    "build_rowlevel_model",
    "collapsed_logp_numpy",
    "collapsed_stats",
    "draw_random_effects",
    "pointwise_loglik",
    "posterior_params",
]
