r"""Result of the calibration test of a CRT learner
(:func:`hte_mrt.estimators.learners.calibration.calibration_test`): per split, the ATE
:math:`\beta_1` and the heterogeneity slope
:math:`\beta_2 = \operatorname{cov}(\tau, S) / \operatorname{var}(S)` of the learner's CATE
:math:`S` on held-out clusters; over splits, medians (Chernozhukov et al.'s aggregation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from hte_mrt._contract import Result


@dataclass(repr=False)
class CalibrationTest(Result):
    """The calibration test's result.

    Attributes
    ----------
    splits : pandas.DataFrame
        One row per split and term: ``split``, ``term``, ``estimate``, ``se``, ``lcl``,
        ``ucl`` (at the split level), ``df``, ``p``, ``sd_cate``.
    conf_level : float
        The default interval level.
    learner : str
        The learner's short name.
    n_splits : int
        Splits asked for.
    failed : list
        (split, reason) of the splits the learner could not fit.
    held_out : list
        Per fitted split: (split, the main half's rows as positions in the trial, the
        learner's CATE there).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
    >>> cal = hm.calibration_test(data, hm.LinearInteraction(), n_splits=3, seed=1,
    ...                           progress=False)
    >>> cal.summary().table["term"].tolist()
    ['ATE', 'heterogeneity slope']
    """

    _kind: ClassVar[str] = "calibration test of a CATE learner"

    splits: pd.DataFrame
    conf_level: float
    learner: str
    n_splits: int
    failed: list = field(default_factory=list)
    held_out: list = field(default_factory=list, repr=False)

    def _table(self, conf_level: float) -> pd.DataFrame:
        """Per term: median estimate and se, median (two-sided) interval bounds, p = min(1, 2
        median p) (the split's own p when one split was asked for; the rule follows
        ``n_splits``, as the split intervals' level does, even if some splits failed); for the
        ATE the two-sided p of ATE = 0, for the heterogeneity slope the one-sided p of
        beta_2 <= 0. Splits whose CATE was constant count with p = 1 and no slope. Per-split
        standard errors are in ``splits``."""
        sp = self.splits.copy()
        alpha = 1.0 - conf_level
        split_level = 1.0 - alpha / 2 if self.n_splits > 1 else conf_level
        crit = stats.t.ppf(0.5 + split_level / 2, sp["df"].to_numpy(dtype=float))
        sp["lcl"] = sp["estimate"] - crit * sp["se"]
        sp["ucl"] = sp["estimate"] + crit * sp["se"]
        g = sp.groupby("term", sort=False)
        out = g[["estimate", "se", "lcl", "ucl", "df"]].median()
        p = g["p"].median()
        out["p"] = np.minimum(1.0, 2 * p) if self.n_splits > 1 else p
        out["sd_cate"] = g["sd_cate"].median()
        out["splits"] = len(sp["split"].unique())
        return out.reset_index()

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        t = self.table().set_index("term")
        alpha = 1 - self.conf_level
        verdict = (
            "heterogeneity detected"
            if t.loc["heterogeneity slope", "p"] < alpha
            else "no heterogeneity detected"
        )
        title = (
            f"Calibration test of {self.learner}: {self.n_splits} split(s) of the clusters in "
            "halves; medians over splits, cluster-robust t"
        )
        info = {"splits fitted": int(t["splits"].iloc[0]), "failed": len(self.failed)}
        notes = [
            "slope 1: calibrated CATE; below 1: heterogeneity overstated; above 1: understated.",
            f"Intervals two-sided; {verdict} (one-sided test of slope <= 0 at level {alpha:.2g}).",
        ]
        return title, info, notes

    def _repr_extra(self) -> str:
        t = self.table().set_index("term")
        a, s = t.loc["ATE"], t.loc["heterogeneity slope"]
        return (
            f"{self.learner}, ATE {a['estimate']:.4g} [{a['lcl']:.3g}, {a['ucl']:.3g}], "
            f"slope {s['estimate']:.4g} [{s['lcl']:.3g}, {s['ucl']:.3g}], "
            f"p(slope <= 0) {s['p']:.3g}"
        )
