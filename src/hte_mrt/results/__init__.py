"""Results: labelled pandas / xarray containers returned by every estimator."""

from hte_mrt.results.bootstrap import BootstrapResult
from hte_mrt.results.crosscheck import CrossCheck
from hte_mrt.results.frequentist import ExcursionResult, JointTest
from hte_mrt.results.randomization import RandomizationResult

__all__ = ["BootstrapResult", "CrossCheck", "ExcursionResult", "JointTest", "RandomizationResult"]
