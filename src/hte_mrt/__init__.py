"""hte_mrt: treatment-effect heterogeneity in micro-randomized and cluster-randomized trials."""

from hte_mrt.data import MRTData
from hte_mrt.errors import HteMrtError
from hte_mrt.estimands import ExcursionEffect
from hte_mrt.estimators.wcls import wcls

__version__ = "0.1.0"
__all__ = ["ExcursionEffect", "HteMrtError", "MRTData", "__version__", "wcls"]
