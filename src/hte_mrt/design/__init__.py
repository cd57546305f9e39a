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

Modules: :mod:`~hte_mrt.design.curves` (:class:`Curve`), :mod:`~hte_mrt.design.continuous`
(Liao et al. 2016), :mod:`~hte_mrt.design.binary` (Cohn et al. 2023), what they share
(:mod:`~hte_mrt.design.base`, :mod:`~hte_mrt.design.common`), the result objects
(:mod:`~hte_mrt.design.results`), :mod:`~hte_mrt.design.plots`, the schedules
(:mod:`~hte_mrt.design.schedules`) and the audits (:mod:`~hte_mrt.design.audits`).

Simulation-based power for the analysis actually planned is in
:func:`hte_mrt.studies.simulated_power` (it needs the estimators).
"""

from hte_mrt.design.audits import AuditResult, audit
from hte_mrt.design.binary import BinaryDesign, binary_design, binary_power, binary_sample_size
from hte_mrt.design.common import DesignWarning, PowerNotReachableError
from hte_mrt.design.continuous import (
    ContinuousDesign,
    continuous_design,
    minimum_detectable_effect,
    mrt_power,
    mrt_sample_size,
    power_table,
)
from hte_mrt.design.curves import Curve
from hte_mrt.design.plots import plot_power_curve
from hte_mrt.design.results import MDEResult, PowerResult, SampleSizeResult
from hte_mrt.design.schedules import RandomizationDesign

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
