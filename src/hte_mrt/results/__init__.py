"""Results: labelled pandas / xarray containers returned by every estimator."""

from hte_mrt.results.frequentist import ExcursionResult, JointTest

__all__ = ["ExcursionResult", "JointTest"]
