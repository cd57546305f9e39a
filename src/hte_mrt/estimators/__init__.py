"""Estimators: WCLS, EMEE, the randomization test (and, later, Bayesian models and learners)."""
