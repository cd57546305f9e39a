"""hte_mrt: treatment-effect heterogeneity in micro-randomized and cluster-randomized trials.

Everything a user calls is reachable from ``import hte_mrt as hm``:

* data: :class:`MRTData`, :class:`CRTData`, :func:`load_dataset`, the simulators
  :class:`MRTSimulation`, :class:`CRTSimulation`, :class:`DistalSimulation`,
  :class:`MediationSimulation` and :class:`JITSimulation` (the Pieper et al. 2024 study);
* estimands and estimators: :class:`ExcursionEffect` (one estimand, several estimators),
  :func:`wcls`, :func:`emee`, :func:`randomization_test`, :func:`bayesian_bootstrap`,
  :class:`BayesMRT`, :func:`crosscheck`, :func:`effect_size`; distal and mediated effects
  :func:`dcee`, :func:`mcee`; the CRT learners, :func:`cate` and :func:`calibration_test`;
* design: :func:`mrt_sample_size`, :func:`mrt_power`, :func:`power_table`,
  :func:`minimum_detectable_effect`, :func:`binary_sample_size`, :func:`binary_power`,
  :class:`Curve`, :class:`RandomizationDesign`, :func:`audit`, :func:`simulated_power`;
* plans and reports: :func:`load_plan`, :func:`validate_plan`, :func:`run_plan`.

Internals stay importable from their modules but are not part of this surface.
"""

from hte_mrt.data import CRTData, MRTData
from hte_mrt.data.datasets import load_dataset
from hte_mrt.data.simulate import MRTSimulation
from hte_mrt.data.simulate_crt import CRTSimulation
from hte_mrt.data.simulate_distal import DistalSimulation, MediationSimulation
from hte_mrt.data.simulate_jit import JITSimulation
from hte_mrt.design import (
    Curve,
    RandomizationDesign,
    audit,
    binary_power,
    binary_sample_size,
    minimum_detectable_effect,
    mrt_power,
    mrt_sample_size,
    plot_power_curve,
    power_table,
)
from hte_mrt.errors import (
    ConvergenceWarning,
    DataError,
    DegenerateDataWarning,
    DesignError,
    HteMrtError,
    HteMrtWarning,
    PlanError,
)
from hte_mrt.estimands import ExcursionEffect
from hte_mrt.estimators.bayes.model import BayesMRT
from hte_mrt.estimators.bootstrap import bayesian_bootstrap
from hte_mrt.estimators.distal import dcee, mcee
from hte_mrt.estimators.effect_size import effect_size
from hte_mrt.estimators.emee import emee
from hte_mrt.estimators.learners import (
    BARTMixed,
    BayesianAdditiveMixedModel,
    BayesianCausalForestMixed,
    CRTLearner,
    EconMLCausalForest,
    GPBoostLearner,
    LinearInteraction,
    MixedEffectsHistGB,
    MixedEffectsRandomForest,
    StochtreeBCF,
    calibration_test,
    cate,
)
from hte_mrt.estimators.randomization import randomization_test
from hte_mrt.estimators.wcls import wcls
from hte_mrt.reports.plans import load_plan
from hte_mrt.reports.run import run_plan
from hte_mrt.reports.run import validate as validate_plan
from hte_mrt.results.bayes import BayesResult
from hte_mrt.results.bootstrap import BootstrapResult
from hte_mrt.results.cate import CATEResult
from hte_mrt.results.crosscheck import crosscheck
from hte_mrt.results.distal import DistalBootstrapResult, DistalResult
from hte_mrt.results.effect_size import EffectSizeResult
from hte_mrt.results.frequentist import ExcursionResult
from hte_mrt.studies import heterogeneity_power, simulated_power

__version__ = "0.1.0"
__all__ = [
    "BARTMixed",
    "BayesMRT",
    "BayesResult",
    "BayesianAdditiveMixedModel",
    "BayesianCausalForestMixed",
    "BootstrapResult",
    "CATEResult",
    "CRTData",
    "CRTLearner",
    "CRTSimulation",
    "ConvergenceWarning",
    "Curve",
    "DataError",
    "DegenerateDataWarning",
    "DesignError",
    "DistalBootstrapResult",
    "DistalResult",
    "DistalSimulation",
    "EconMLCausalForest",
    "EffectSizeResult",
    "ExcursionEffect",
    "ExcursionResult",
    "GPBoostLearner",
    "HteMrtError",
    "HteMrtWarning",
    "JITSimulation",
    "LinearInteraction",
    "MRTData",
    "MRTSimulation",
    "MediationSimulation",
    "MixedEffectsHistGB",
    "MixedEffectsRandomForest",
    "PlanError",
    "RandomizationDesign",
    "StochtreeBCF",
    "__version__",
    "audit",
    "bayesian_bootstrap",
    "binary_power",
    "binary_sample_size",
    "calibration_test",
    "cate",
    "crosscheck",
    "dcee",
    "effect_size",
    "emee",
    "heterogeneity_power",
    "load_dataset",
    "load_plan",
    "mcee",
    "minimum_detectable_effect",
    "mrt_power",
    "mrt_sample_size",
    "plot_power_curve",
    "power_table",
    "randomization_test",
    "run_plan",
    "simulated_power",
    "validate_plan",
    "wcls",
]
