"""Results of the estimating-equation estimators (WCLS, EMEE): labelled, statsmodels-like.

Inference for a single coefficient or a linear combination c'beta uses
t = c'beta_hat / sqrt(c' V c) against t(df), df = n - dim(theta). Joint tests of d1 contrasts
L beta = 0 use Hotelling's T^2 = (L beta)' (L V L')^-1 (L beta) with
F = T^2 (df - d1 + 1) / (d1 df) ~ F(d1, df - d1 + 1).
(MRTAnalysis applies a Hotelling adjustment with d1 = number of nonzero weights to *single*
combinations, which makes their intervals too narrow; we do not.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from hte_mrt.errors import DesignError

TABLE_COLUMNS = ["term", "estimate", "se", "lcl", "ucl", "t", "df", "p"]


def _t_table(
    names: Sequence[str], est: np.ndarray, se: np.ndarray, df: int, level: float
) -> pd.DataFrame:
    if not 0 < level < 1:
        raise ValueError(f"conf_level must lie in (0, 1), got {level!r}.")
    crit = stats.t.ppf(0.5 + level / 2, df)
    t = est / se
    return pd.DataFrame(
        {
            "term": list(names),
            "estimate": est,
            "se": se,
            "lcl": est - crit * se,
            "ucl": est + crit * se,
            "t": t,
            "df": df,
            "p": 2 * stats.t.sf(np.abs(t), df),
        }
    )


@dataclass
class JointTest:
    """Hotelling T^2 test of L beta = 0."""

    contrasts: pd.DataFrame
    t2: float
    f: float
    df1: int
    df2: int
    p: float

    def __str__(self) -> str:
        return (
            f"Hotelling T^2 = {self.t2:.4f}, F({self.df1}, {self.df2}) = {self.f:.4f}, "
            f"p = {self.p:.4g}"
        )


@dataclass
class ExcursionResult:
    """Fitted causal excursion effect (WCLS or EMEE).

    ``params`` / ``cov`` cover the effect terms beta; ``params_all`` / ``cov_all`` add the
    control terms alpha (nuisance: report with care).
    """

    method: str
    scale: str
    names_control: list[str]
    names_effect: list[str]
    theta: np.ndarray
    cov_theta: np.ndarray
    df: int
    n: int
    conf_level: float
    small_sample: bool
    design: Any = field(repr=False)
    info: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------ labelled parameters
    @property
    def _q(self) -> int:
        return len(self.names_control)

    @property
    def params(self) -> pd.Series:
        """Effect coefficients beta, labelled by term."""
        return pd.Series(self.theta[self._q :], index=self.names_effect, name="estimate")

    @property
    def bse(self) -> pd.Series:
        """Standard errors of beta."""
        return pd.Series(np.sqrt(np.diag(self.cov)), index=self.names_effect, name="se")

    @property
    def cov(self) -> pd.DataFrame:
        """Covariance of beta (small-sample corrected when ``small_sample``)."""
        c = self.cov_theta[self._q :, self._q :]
        return pd.DataFrame(c, index=self.names_effect, columns=self.names_effect)

    @property
    def params_all(self) -> pd.Series:
        names = [f"control:{n}" for n in self.names_control] + self.names_effect
        return pd.Series(self.theta, index=names, name="estimate")

    @property
    def cov_all(self) -> pd.DataFrame:
        idx = self.params_all.index
        return pd.DataFrame(self.cov_theta, index=idx, columns=idx)

    def to_xarray(self) -> xr.Dataset:
        """Estimates and covariance as a labelled Dataset (dims ``term``, ``term2``)."""
        p = self.params
        return xr.Dataset(
            {
                "estimate": ("term", p.to_numpy()),
                "se": ("term", self.bse.to_numpy()),
                "cov": (("term", "term2"), self.cov.to_numpy()),
            },
            coords={"term": list(p.index), "term2": list(p.index)},
            attrs={"method": self.method, "scale": self.scale, "df": self.df, "n": self.n},
        )

    # ------------------------------------------------------------ tables
    def table(self, conf_level: float | None = None) -> pd.DataFrame:
        """Tidy table of the effect terms: term, estimate, se, lcl, ucl, t, df, p."""
        level = self.conf_level if conf_level is None else conf_level
        return _t_table(
            self.names_effect, self.params.to_numpy(), self.bse.to_numpy(), self.df, level
        )

    def control_fit(self, conf_level: float | None = None) -> pd.DataFrame:
        """Control-model coefficients alpha (nuisance parameters; not causal)."""
        level = self.conf_level if conf_level is None else conf_level
        q = self._q
        se = np.sqrt(np.diag(self.cov_theta)[:q])
        return _t_table(self.names_control, self.theta[:q], se, self.df, level)

    def conf_int(self, level: float | None = None) -> pd.DataFrame:
        """Confidence intervals for beta (columns ``lcl``, ``ucl``)."""
        return self.table(level).set_index("term")[["lcl", "ucl"]]

    # ------------------------------------------------------------ contrasts
    def _contrast_matrix(self, weights: Any, names: Sequence[str] | None) -> pd.DataFrame:
        p = len(self.names_effect)
        if isinstance(weights, pd.DataFrame):
            L = weights.reindex(columns=self.names_effect, fill_value=0.0)
            unknown = set(weights.columns) - set(self.names_effect)
            if unknown:
                raise DesignError(
                    f"Unknown effect term(s) {sorted(unknown)}; terms are {self.names_effect}."
                )
            return L.astype(float)
        if isinstance(weights, Mapping):
            weights = [weights]
        if isinstance(weights, list) and weights and isinstance(weights[0], Mapping):
            rows = []
            for w in weights:
                unknown = set(w) - set(self.names_effect)
                if unknown:
                    raise DesignError(
                        f"Unknown effect term(s) {sorted(unknown)}; terms are {self.names_effect}."
                    )
                rows.append([float(w.get(n, 0.0)) for n in self.names_effect])
            arr = np.asarray(rows)
        else:
            arr = np.atleast_2d(np.asarray(weights, dtype=float))
            if arr.shape[1] != p:
                raise DesignError(
                    f"Contrast weights need {p} entries (one per effect term {self.names_effect}), "
                    f"got {arr.shape[1]}."
                )
        if names is None:
            names = [self._name_combo(row) for row in arr]
        return pd.DataFrame(arr, index=list(names), columns=self.names_effect)

    def _name_combo(self, row: np.ndarray) -> str:
        parts = []
        for w, n in zip(row, self.names_effect, strict=True):
            if w == 0:
                continue
            sign = "-" if w < 0 else "+"
            mag = "" if abs(w) == 1 else f"{abs(w):g}*"
            parts.append(f"{sign} {mag}{n}")
        s = " ".join(parts)
        return s[2:] if s.startswith("+ ") else s

    def lincomb(
        self, weights: Any, names: Sequence[str] | None = None, conf_level: float | None = None
    ) -> pd.DataFrame:
        """Scalar t(df) inference for each linear combination c'beta.

        ``weights``: ``{term: weight}``, a list of such dicts, an array with one entry per effect
        term (or a matrix, one row per combination), or a DataFrame with term columns.
        """
        L = self._contrast_matrix(weights, names)
        M = L.to_numpy()
        est = M @ self.params.to_numpy()
        se = np.sqrt(np.einsum("ij,jk,ik->i", M, self.cov.to_numpy(), M))
        level = self.conf_level if conf_level is None else conf_level
        return _t_table(list(L.index), est, se, self.df, level)

    def joint_test(self, weights: Any = None) -> JointTest:
        """Hotelling T^2 test that every listed contrast is 0 (default: all of beta)."""
        if weights is None:
            weights = np.eye(len(self.names_effect))
        L = self._contrast_matrix(weights, None)
        M = L.to_numpy()
        d1 = M.shape[0]
        if d1 > self.df:
            raise DesignError(f"{d1} contrasts cannot be tested jointly with df = {self.df}.")
        est = M @ self.params.to_numpy()
        V = M @ self.cov.to_numpy() @ M.T
        t2 = float(est @ np.linalg.solve(V, est))
        df2 = self.df - d1 + 1
        f = t2 * df2 / (d1 * self.df)
        return JointTest(L, t2, f, d1, df2, float(stats.f.sf(f, d1, df2)))

    def effect_curve(self, grid: pd.DataFrame, conf_level: float | None = None) -> pd.DataFrame:
        """beta(s) = f(s)'beta with pointwise t intervals on a grid of moderator values.

        ``grid`` holds the moderator columns; one output row per grid row (and treatment level).
        """
        F = self.design.f_matrix(grid)
        p = F.shape[1]
        levels = self.design.levels
        out = []
        for j, lev in enumerate(levels):
            M = np.zeros((len(grid), len(self.names_effect)))
            M[:, j * p : (j + 1) * p] = F
            tab = self.lincomb(M, names=[str(i) for i in range(len(grid))], conf_level=conf_level)
            tab = pd.concat([grid.reset_index(drop=True), tab.drop(columns="term")], axis=1)
            if len(levels) > 1:
                tab.insert(0, "level", lev)
            out.append(tab)
        return pd.concat(out, ignore_index=True)

    # ------------------------------------------------------------ printing
    def summary(self, conf_level: float | None = None) -> str:
        """Text summary (like statsmodels / MRTAnalysis) of the effect terms."""
        level = self.conf_level if conf_level is None else conf_level
        tab = self.table(level)
        pct = f"{100 * level:g}%"
        tab = tab.rename(columns={"lcl": f"{pct} lcl", "ucl": f"{pct} ucl"})
        scale = {"difference": "additive", "log_rr": "log relative risk"}[self.scale]
        corr = "Mancl-DeRouen small-sample corrected" if self.small_sample else "uncorrected"
        lines = [
            f"{self.method}: causal excursion effect ({scale} scale)",
            f"  participants n = {self.n}, df = {self.df}, {corr} sandwich variance",
        ]
        if self.info.get("lag"):
            lines.append(f"  lag {self.info['lag']}")
        ex = self.design.exclusions
        if len(ex):
            lines.append(f"  rows excluded: {len(ex)} (see .design.exclusions)")
        with pd.option_context("display.width", 120, "display.float_format", "{:.5g}".format):
            lines.append(tab.to_string(index=False))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
