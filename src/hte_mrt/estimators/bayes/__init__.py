"""Hierarchical Bayesian models of causal excursion effects in MRTs (:class:`BayesMRT`).

The collapsed Gaussian likelihood (random effects integrated out) lives in :mod:`.collapsed`;
its sufficient statistics, pointwise log-likelihood and exact random-effect draws are exported
for users who work with the posterior directly.
"""

from hte_mrt.estimators.bayes.collapsed import (
    CollapsedStats,
    add_log_likelihood,
    collapsed_stats,
    draw_random_effects,
    pointwise_loglik,
    posterior_params,
)
from hte_mrt.estimators.bayes.model import BayesMRT

__all__ = [
    "BayesMRT",
    "CollapsedStats",
    "add_log_likelihood",
    "collapsed_stats",
    "draw_random_effects",
    "pointwise_loglik",
    "posterior_params",
]
