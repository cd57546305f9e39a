"""Simulation studies: CATE learners on simulated cluster-randomized trials."""

from hte_mrt.studies.crt_simulation import METRICS, StudyResult, oat_scenarios, run_study

__all__ = ["METRICS", "StudyResult", "oat_scenarios", "run_study"]
