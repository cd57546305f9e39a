"""Trial design: sample size, power and minimum detectable effect for MRTs.

* continuous proximal outcome: Liao, Klasnja, Tewari & Murphy (2016), as MRT-SS computes it —
  :func:`mrt_sample_size`, :func:`mrt_power`, :func:`power_table`,
  :func:`minimum_detectable_effect`;
* binary proximal outcome (log relative risk): Cohn, Qian & Murphy (2023), as
  MRTSampleSizeBinary computes it — :func:`binary_sample_size`, :func:`binary_power`;
* :class:`Curve` describes effect / availability / probability trajectories over days;
  :func:`plot_power_curve` draws power against N;
* randomization schedules from a design (:class:`RandomizationDesign`) and audits of recorded
  trial logs (:func:`audit`).

Simulation-based power for the analysis actually planned is in
:func:`hte_mrt.studies.simulated_power` (it needs the estimators).
"""

from hte_mrt.design.randomization import AuditResult, RandomizationDesign, audit
from hte_mrt.design.samplesize import (
    BinaryDesign,
    ContinuousDesign,
    Curve,
    DesignWarning,
    MDEResult,
    PowerNotReachableError,
    PowerResult,
    SampleSizeResult,
    binary_design,
    binary_power,
    binary_sample_size,
    continuous_design,
    minimum_detectable_effect,
    mrt_power,
    mrt_sample_size,
    plot_power_curve,
    power_table,
)

__all__ = [
    "AuditResult",
    "BinaryDesign",
    "ContinuousDesign",
    "Curve",
    "DesignWarning",
    "MDEResult",
    "PowerNotReachableError",
    "PowerResult",
    "RandomizationDesign",
    "SampleSizeResult",
    "audit",
    "binary_design",
    "binary_power",
    "binary_sample_size",
    "continuous_design",
    "minimum_detectable_effect",
    "mrt_power",
    "mrt_sample_size",
    "plot_power_curve",
    "power_table",
]
