r"""Result of the calibration test of a CRT learner
(:func:`hte_mrt.estimators.learners.calibration.calibration_test`): per split, the ATE
:math:`\beta_1` and the heterogeneity slope
:math:`\beta_2 = \operatorname{cov}(\tau, S) / \operatorname{var}(S)` of the learner's CATE
:math:`S` on held-out clusters; over splits, medians (Chernozhukov et al.'s aggregation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class CalibrationTest:
    """``splits``: one row per split and term (estimate, se, lcl, ucl, df, p, sd_cate);
    ``failed``: (split, reason) of the splits the learner could not fit; ``held_out``: per
    fitted split, (split, the main half's rows as positions in the trial, the learner's CATE
    there)."""

    splits: pd.DataFrame
    conf_level: float
    learner: str
    n_splits: int
    failed: list = field(default_factory=list)
    held_out: list = field(default_factory=list, repr=False)

    @property
    def table(self) -> pd.DataFrame:
        """Per term: median estimate, median (two-sided) interval bounds, p = min(1, 2 median p)
        (the split's own p when one split was asked for; the rule follows ``n_splits``, as the
        split intervals' level does, even if some splits failed); for the ATE the two-sided p of
        ATE = 0, for the heterogeneity slope the one-sided p of beta_2 <= 0. Splits whose CATE
        was constant count with p = 1 and no slope. Per-split standard errors are in
        ``splits``."""
        g = self.splits.groupby("term", sort=False)
        out = g[["estimate", "lcl", "ucl", "df", "sd_cate"]].median()
        p = g["p"].median()
        out["p"] = np.minimum(1.0, 2 * p) if self.n_splits > 1 else p
        out["splits"] = len(self.splits["split"].unique())
        return out.reset_index()

    def summary(self) -> str:
        t = self.table
        slope = t.set_index("term").loc["heterogeneity slope"]
        alpha = 1 - self.conf_level
        verdict = "heterogeneity detected" if slope["p"] < alpha else "no heterogeneity detected"
        failed = f"; {len(self.failed)} split(s) failed" if self.failed else ""
        return (
            f"Calibration test of {self.learner}: {self.n_splits} split(s) of the clusters in "
            f"halves{failed}; medians over splits, cluster-robust t\n"
            + t.to_string(index=False, float_format=lambda v: f"{v:.4g}")
            + "\nslope 1: calibrated CATE; below 1: heterogeneity overstated; above 1: understated."
            f" Intervals two-sided; {verdict} (one-sided test of slope <= 0 at level {alpha:.2g})."
        )

    def __repr__(self) -> str:
        t = self.table.set_index("term")
        a, s = t.loc["ATE"], t.loc["heterogeneity slope"]
        return (
            f"<CalibrationTest {self.learner}: ATE {a['estimate']:.4g} "
            f"[{a['lcl']:.3g}, {a['ucl']:.3g}], slope {s['estimate']:.4g} "
            f"[{s['lcl']:.3g}, {s['ucl']:.3g}], p(slope <= 0) {s['p']:.3g}>"
        )
