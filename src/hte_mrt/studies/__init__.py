"""Simulation studies: CATE learners on simulated CRTs; simulation-based MRT power."""

from hte_mrt.studies.crt_simulation import (
    METRICS,
    StudyResult,
    oat_scenarios,
    replicate_trial,
    run_study,
)
from hte_mrt.studies.mrt_power import SimulatedPowerResult, heterogeneity_power, simulated_power

__all__ = [
    "METRICS",
    "SimulatedPowerResult",
    "StudyResult",
    "heterogeneity_power",
    "oat_scenarios",
    "replicate_trial",
    "run_study",
    "simulated_power",
]
