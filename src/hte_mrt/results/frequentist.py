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
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from hte_mrt._contract import Result, check_conf_level, read_sidecar
from hte_mrt.data.checks import check_grid, check_path
from hte_mrt.errors import DesignError

TABLE_COLUMNS = ["term", "estimate", "se", "lcl", "ucl", "t", "df", "p"]
_SCALES = {"difference": "additive", "log_rr": "log relative risk"}


def _t_table(
    names: Sequence[str], est: np.ndarray, se: np.ndarray, df: int, level: float
) -> pd.DataFrame:
    level = check_conf_level(level)
    crit = stats.t.ppf(0.5 + level / 2, df)
    est, se = np.asarray(est, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, est / np.where(se > 0, se, 1.0), np.nan)  # se 0: t undefined
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


def _combination(row: pd.Series) -> str:
    """'2*a - b' for one contrast row (index = effect terms)."""
    parts = []
    for n, w in row.items():
        if w == 0:
            continue
        sign = "-" if w < 0 else "+"
        mag = "" if abs(w) == 1 else f"{abs(w):g}*"
        parts.append(f"{sign} {mag}{n}")
    s = " ".join(parts)
    return s[2:] if s.startswith("+ ") else s


def _hypothesis(row: pd.Series) -> str:
    """'2*a - b = 0' for one contrast row."""
    return _combination(row) + " = 0"


def contrast_matrix(
    weights: Any, terms: Sequence[str], names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Linear-combination weights as a matrix (one row per combination, one column per term).

    ``weights``: ``{term: weight}`` (or a pandas Series indexed by term: read by name, not
    position), a list of such dicts, an array with one entry per term (or a matrix, one row per
    combination), or a DataFrame with term columns. Weights are finite numbers. Rows are named by
    ``names`` or by the combination written out ("Intercept + 20*day").
    """
    terms = list(terms)
    p = len(terms)
    hint = (
        f"give {{term: weight}} (terms: {terms}), a list of such dicts, or an array with one "
        f"entry per term"
    )
    if weights is None or isinstance(weights, str | bytes):
        raise DesignError(f"weights: {hint}; got {weights!r}.")
    if isinstance(weights, pd.Series):
        # a Series is read by its index (term names), like a dict: one combination
        weights = dict(weights.items())
    if isinstance(weights, Mapping) and not weights:
        raise DesignError(f"weights is an empty dict: {hint}.")
    if isinstance(weights, pd.DataFrame):
        unknown = set(weights.columns) - set(terms)
        if unknown:
            raise DesignError(
                f"Unknown effect term(s) {sorted(map(str, unknown))} in the weights; use the "
                f"terms {terms}."
            )
        if weights.empty:
            raise DesignError(f"weights is an empty DataFrame: {hint}.")
        if names is None:
            names = list(weights.index)
        weights = [
            dict(zip(weights.columns, row, strict=True))
            for row in weights.itertuples(index=False, name=None)
        ]
    if isinstance(weights, Mapping):
        weights = [weights]
    if isinstance(weights, list) and weights and isinstance(weights[0], Mapping):
        rows = []
        for w in weights:
            if not isinstance(w, Mapping):
                raise DesignError(f"weights: every entry must be a {{term: weight}} dict: {hint}.")
            unknown = set(w) - set(terms)
            if unknown:
                raise DesignError(
                    f"Unknown effect term(s) {sorted(map(str, unknown))} in the weights; use "
                    f"the terms {terms}."
                )
            rows.append([_weight(w.get(n, 0.0), n) for n in terms])
        arr = np.asarray(rows, dtype=float)
    else:
        flat = np.asarray(weights, dtype=object).ravel() if not np.isscalar(weights) else []
        for v in flat:
            if isinstance(v, str | bytes | bool | np.bool_) or v is None:
                raise DesignError(
                    f"weights must be numbers: {hint}; got {v!r} (pass 1.0, not '1')."
                )
        try:
            arr = np.atleast_2d(np.asarray(weights, dtype=float))
        except (TypeError, ValueError):
            raise DesignError(f"weights must be numbers: {hint}; got {weights!r}.") from None
        if arr.ndim != 2 or arr.size == 0:
            raise DesignError(f"weights: {hint}; got an array of shape {arr.shape}.")
        if arr.shape[1] != p:
            raise DesignError(
                f"Contrast weights need {p} entries (one per effect term {terms}), "
                f"got {arr.shape[1]}."
            )
    if not np.all(np.isfinite(arr)):
        raise DesignError(f"weights must be finite numbers (no NaN or inf): {hint}.")
    zero = ~arr.any(axis=1)
    if zero.any():
        raise DesignError(
            f"weights: combination {int(np.flatnonzero(zero)[0]) + 1} has every weight 0; give "
            "at least one nonzero weight per combination."
        )
    if names is None:
        names = [_combination(pd.Series(row, index=terms)) for row in arr]
    elif isinstance(names, str) or len(list(names)) != len(arr):
        raise DesignError(
            f"names must be a list of {len(arr)} row name(s), one per combination, got {names!r}."
        )
    return pd.DataFrame(arr, index=list(names), columns=terms)


def _weight(v: Any, term: str) -> float:
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number):
        raise DesignError(
            f"weights: the weight of {term!r} must be a number, got {v!r}; pass a number "
            "such as 1.0 (not a string)."
        )
    return float(v)


@dataclass(eq=False, repr=False)
class JointTest(Result):
    """Hotelling T^2 test that every contrast in L beta is 0 (from
    :meth:`ExcursionResult.joint_test`).

    ``table()`` has ONE row: ``term`` (the hypothesis, e.g. "Intercept = 0; day = 0"), ``t2``
    (Hotelling's T^2), ``f``, ``df1``, ``df2`` and ``p``; the contrast matrix is ``contrasts``.
    A joint test has no intervals, so ``conf_int`` raises :class:`~hte_mrt.errors.DesignError`.

    Attributes
    ----------
    contrasts : pandas.DataFrame
        The contrast matrix L (one row per contrast, one column per effect term).
    t2, f : float
        Hotelling's T^2 and its F transform F = T^2 (df - d1 + 1) / (d1 df).
    df1, df2 : int
        Degrees of freedom of the F reference distribution.
    p : float
        P(F(df1, df2) >= f).
    """

    contrasts: pd.DataFrame
    t2: float
    f: float
    df1: int
    df2: int
    p: float
    method: str = "WCLS"

    _kind: ClassVar[str] = "Hotelling T^2 joint test"

    def _table(self, conf_level: float) -> pd.DataFrame:
        hyp = "; ".join(_hypothesis(r) for _, r in self.contrasts.iterrows())
        return pd.DataFrame(
            {
                "term": [hyp],
                "t2": [self.t2],
                "f": [self.f],
                "df1": [self.df1],
                "df2": [self.df2],
                "p": [self.p],
            }
        )

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        title = f"{self.method}: Hotelling T^2 joint test of {self.df1} contrast(s)"
        return title, {"F": f"F({self.df1}, {self.df2}) = {self.f:.4g}", "p": self.p}, []

    def _repr_extra(self) -> str:
        return f"F({self.df1}, {self.df2}) = {self.f:.4g}, p = {self.p:.3g}"

    def __str__(self) -> str:
        return (
            f"Hotelling T^2 = {self.t2:.4f}, F({self.df1}, {self.df2}) = {self.f:.4f}, "
            f"p = {self.p:.4g}"
        )


def _lincomb_table(
    L: pd.DataFrame, theta: np.ndarray, cov: np.ndarray, df: float, conf_level: float
) -> pd.DataFrame:
    """The t table of the combinations ``L`` (rows: combinations, columns: terms) of
    ``theta`` with covariance ``cov``: term, estimate, se, lcl, ucl, t, df, p."""
    M = L.to_numpy()
    est = M @ theta
    se = np.sqrt(np.einsum("ij,jk,ik->i", M, cov, M))
    return _t_table(list(L.index), est, se, df, conf_level)


def _hotelling_test(
    L: pd.DataFrame,
    theta: np.ndarray,
    cov: np.ndarray,
    df: float,
    method: str,
    *,
    dependent: str = "",
    singular: str = "",
) -> JointTest:
    """Hotelling T^2 test that every combination in ``L`` of ``theta`` is 0 (F on d1 and
    df - d1 + 1 df). ``dependent`` / ``singular`` extend the messages on linearly dependent
    contrasts and on a singular contrast covariance."""
    M = L.to_numpy()
    d1 = M.shape[0]
    if d1 > df:
        raise DesignError(
            f"weights: {d1} contrasts cannot be tested jointly with df = {df}; test "
            "fewer contrasts at once."
        )
    if np.linalg.matrix_rank(M) < d1:
        raise DesignError(
            f"weights: the {d1} contrasts are linearly dependent{dependent and ' ' + dependent}; "
            "drop the redundant row(s)."
        )
    est = M @ theta
    V = M @ cov @ M.T
    if not np.all(np.isfinite(V)) or np.linalg.matrix_rank(V) < d1:
        raise DesignError(
            f"joint_test: the covariance of the contrasts is singular{singular}, so no joint "
            "test is possible."
        )
    t2 = float(est @ np.linalg.solve(V, est))
    df2 = df - d1 + 1
    f = t2 * df2 / (d1 * df)
    return JointTest(L, t2, f, d1, df2, float(stats.f.sf(f, d1, df2)), method=method)


@dataclass(eq=False, repr=False)
class ExcursionResult(Result):
    r"""A fitted causal excursion effect (WCLS or EMEE): the result of :func:`hm.wcls
    <hte_mrt.wcls>`, :func:`hm.emee <hte_mrt.emee>` and ``ExcursionEffect.fit``.

    The effect terms beta model the causal excursion effect as :math:`f(s)^\top \beta`
    (additive scale for WCLS, log relative risk for EMEE); ``params`` / ``cov`` cover beta,
    ``params_all`` / ``cov_all`` add the control terms alpha (nuisance: report with care).

    ``table(conf_level=None, style="tidy")`` has the columns ``term``, ``estimate``, ``se``,
    ``lcl``, ``ucl``, ``t``, ``df``, ``p`` (t intervals and two-sided p with df = n - dim(theta));
    ``style="paper"`` gives a publication table. ``conf_int(alpha=0.05)`` has statsmodels'
    meaning (0.05 gives 95% intervals). ``summary()`` prints the method, scale, participants,
    df, variance estimator, lag and excluded rows above the table.

    Saving: ``to_netcdf(path)`` writes the estimates, covariance, df, n, method, scale, term
    names, conf_level and the estimand (NetCDF + JSON sidecar); ``ExcursionResult.from_netcdf(
    path)`` restores them. The design matrices are not saved, so ``effect_curve`` on a loaded
    result needs the data: ``ExcursionResult.from_netcdf(path, data=trial)``.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> trial = hm.load_dataset("heartsteps", as_data=True)
    >>> fit = hm.wcls(trial, "~ 1", "~ jbsteps30pre_log")
    >>> fit
    <ExcursionResult: WCLS causal excursion effect (additive scale), 1 term, n = 37>
    >>> fit.table().round(4)
            term  estimate      se     lcl     ucl       t  df       p
    0  Intercept    0.1312  0.0674 -0.0058  0.2682  1.9467  34  0.0599
    >>> fit.conf_int(alpha=0.1).round(3)
                 lcl    ucl
    term
    Intercept  0.017  0.245
    >>> s = fit.summary()
    >>> s.title
    'WCLS: causal excursion effect (additive scale)'
    >>> s.info["variance"]
    'sandwich, Mancl-DeRouen small-sample corrected'
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
    design: Any = field(default=None, repr=False)
    info: dict = field(default_factory=dict, repr=False)
    estimand: Any = field(default=None, repr=False)

    _format: ClassVar[str] = "hte_mrt.ExcursionResult/1"

    # ------------------------------------------------------------ contract
    @property
    def _kind(self) -> str:  # type: ignore[override]
        return (
            f"{self.method} causal excursion effect ({_SCALES.get(self.scale, self.scale)} scale)"
        )

    def _repr_extra(self) -> str:
        k = len(self.names_effect)
        return f"{k} term{'s' if k != 1 else ''}, n = {self.n}"

    def _table(self, conf_level: float) -> pd.DataFrame:
        return _t_table(
            self.names_effect, self.params.to_numpy(), self.bse.to_numpy(), self.df, conf_level
        )

    @property
    def n_excluded(self) -> int:
        """Rows excluded from the analysis (validation, lag); details in ``design.exclusions``."""
        if self.design is not None:
            return len(self.design.exclusions)
        return int(self.info.get("n_excluded", 0))

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        scale = _SCALES.get(self.scale, self.scale)
        corr = "Mancl-DeRouen small-sample corrected" if self.small_sample else "uncorrected"
        info = {
            "participants": self.n,
            "df": self.df,
            "variance": f"sandwich, {corr}",
            "lag": int(self.info.get("lag", 0)),
            "rows excluded": self.n_excluded,
        }
        notes = []
        if self.info.get("degenerate"):
            notes.append(str(self.info["degenerate"]))
        without = getattr(self.design, "participants_without_rows", None) or []
        if without:
            notes.append(
                f"{len(without)} participant(s) have no analysed decision point (never "
                f"available, or every outcome lost to the lag), e.g. {list(without[:5])}: "
                + (
                    "they are counted in n and df (as MRTAnalysis' EMEE does)."
                    if self.n > self.design.n_groups
                    else "they are not counted in n."
                )
            )
        if self.n_excluded and self.design is not None:
            notes.append(f"{self.n_excluded} row(s) excluded: see .design.exclusions.")
        if self.scale == "log_rr":
            notes.append("Estimates are log relative risks: exp() gives the risk ratio.")
        return f"{self.method}: causal excursion effect ({scale} scale)", info, notes

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
        """Control (``control:`` prefix) and effect coefficients."""
        names = [f"control:{n}" for n in self.names_control] + self.names_effect
        return pd.Series(self.theta, index=names, name="estimate")

    @property
    def cov_all(self) -> pd.DataFrame:
        """Covariance of all coefficients (controls first)."""
        idx = self.params_all.index
        return pd.DataFrame(self.cov_theta, index=idx, columns=idx)

    # ------------------------------------------------------------ saving
    def to_xarray(self) -> xr.Dataset:
        """Estimates and covariance as a labelled Dataset.

        Variables ``estimate``, ``se``, ``cov`` over the effect terms (dims ``term``,
        ``term2``) and ``theta``, ``cov_theta`` over every coefficient (dims ``param``,
        ``param2``; control terms first).
        """
        p = self.params
        names_all = list(self.params_all.index)
        return xr.Dataset(
            {
                "estimate": ("term", p.to_numpy()),
                "se": ("term", self.bse.to_numpy()),
                "cov": (("term", "term2"), self.cov.to_numpy()),
                "theta": ("param", np.asarray(self.theta, dtype=float)),
                "cov_theta": (("param", "param2"), np.asarray(self.cov_theta, dtype=float)),
            },
            coords={
                "term": list(p.index),
                "term2": list(p.index),
                "param": names_all,
                "param2": names_all,
            },
            attrs={
                "method": self.method,
                "scale": self.scale,
                "df": self.df,
                "n": self.n,
                "hte_mrt_class": type(self).__name__,
            },
        )

    def _sidecar_meta(self) -> dict:
        est = self.estimand
        estimand = None
        if est is not None:
            num = est.numerator
            if isinstance(num, Mapping):
                num = {str(k): v for k, v in num.items()}
            estimand = {
                "moderators": est.moderators,
                "controls": est.controls,
                "lag": int(est.lag),
                "numerator": num,
            }
        info = {k: v for k, v in self.info.items() if k != "n_excluded"}
        return {
            "method": self.method,
            "scale": self.scale,
            "names_control": list(self.names_control),
            "names_effect": list(self.names_effect),
            "df": int(self.df),
            "n": int(self.n),
            "conf_level": float(self.conf_level),
            "small_sample": bool(self.small_sample),
            "info": info | {"n_excluded": self.n_excluded},
            "estimand": estimand,
        }

    @classmethod
    def from_netcdf(cls, path: str | Path, data: Any = None) -> ExcursionResult:
        """Restore a result saved by :meth:`to_netcdf`.

        Parameters
        ----------
        path : str or Path
            The ``.nc`` file (its JSON sidecar lies beside it).
        data : MRTData, optional
            The trial the result was fitted on. With it the design is rebuilt from the saved
            estimand, so ``effect_curve`` works; without it ``effect_curve`` raises
            :class:`~hte_mrt.errors.DesignError`.

        Returns
        -------
        ExcursionResult
        """
        check_path(path)
        meta = read_sidecar(path, "ExcursionResult")
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            theta = ds["theta"].to_numpy().copy()
            cov_theta = ds["cov_theta"].to_numpy().copy()
        return cls._from_parts(meta, theta, cov_theta, data, path)

    @classmethod
    def _from_parts(
        cls, meta: dict, theta: np.ndarray, cov_theta: np.ndarray, data: Any, path: Any
    ) -> ExcursionResult:
        """A result from its sidecar metadata and saved coefficients (design rebuilt from
        ``data`` when given)."""
        from hte_mrt.estimands.excursion import ExcursionEffect, build_design, check_mrt_data

        est = None
        if meta.get("estimand"):
            e = meta["estimand"]
            est = ExcursionEffect(e["moderators"], e["controls"], int(e["lag"]), e["numerator"])
        design = None
        if data is not None:
            check_mrt_data(data, "from_netcdf(data=...)")
            if est is None:
                raise DesignError(
                    f"{path} does not record its estimand, so the design cannot be rebuilt from "
                    "data; load it without data=."
                )
            design = build_design(data, est, add_moderator_main_effects=meta["method"] == "WCLS")
            if design.effect_names != meta["names_effect"]:
                raise DesignError(
                    f"data= gives effect terms {design.effect_names}, but the saved result has "
                    f"{meta['names_effect']}: pass the trial the result was fitted on."
                )
        return cls(
            method=meta["method"],
            scale=meta["scale"],
            names_control=list(meta["names_control"]),
            names_effect=list(meta["names_effect"]),
            theta=theta,
            cov_theta=cov_theta,
            df=int(meta["df"]),
            n=int(meta["n"]),
            conf_level=float(meta["conf_level"]),
            small_sample=bool(meta["small_sample"]),
            design=design,
            info=dict(meta.get("info") or {}),
            estimand=est,
        )

    # ------------------------------------------------------------ tables
    def control_fit(self, conf_level: float | None = None) -> pd.DataFrame:
        """Control-model coefficients alpha (nuisance parameters; not causal).

        Returns the columns of ``table()``: term, estimate, se, lcl, ucl, t, df, p.
        """
        level = self._level(conf_level)
        q = self._q
        se = np.sqrt(np.diag(self.cov_theta)[:q])
        return _t_table(self.names_control, self.theta[:q], se, self.df, level)

    # ------------------------------------------------------------ contrasts
    def _contrast_matrix(self, weights: Any, names: Sequence[str] | None) -> pd.DataFrame:
        return contrast_matrix(weights, self.names_effect, names)

    def lincomb(
        self, weights: Any, names: Sequence[str] | None = None, conf_level: float | None = None
    ) -> pd.DataFrame:
        """Scalar t(df) inference for each linear combination c'beta.

        Parameters
        ----------
        weights
            ``{term: weight}`` (or a Series indexed by term), a list of such dicts, an array
            with one entry per effect term (or a matrix, one row per combination), or a
            DataFrame with term columns.
        names : sequence of str, optional
            Row names (default: the combination written out, e.g. "Intercept + 20*day").
        conf_level : float, optional
            Interval level (default: the result's ``conf_level``).

        Returns
        -------
        pandas.DataFrame
            One row per combination: term, estimate, se, lcl, ucl, t, df, p.
        """
        L = self._contrast_matrix(weights, names)
        return _lincomb_table(
            L, self.params.to_numpy(), self.cov.to_numpy(), self.df, self._level(conf_level)
        )

    def joint_test(self, weights: Any = None) -> JointTest:
        """Hotelling T^2 test that every listed contrast is 0 (default: all of beta).

        ``weights`` as for :meth:`lincomb`. Returns a :class:`JointTest` (``table()``: one row
        with term, t2, f, df1, df2, p).
        """
        if weights is None:
            weights = np.eye(len(self.names_effect))
        L = self._contrast_matrix(weights, None)
        return _hotelling_test(
            L, self.params.to_numpy(), self.cov.to_numpy(), self.df, self.method,
            dependent="(one is a combination of the others), so the joint hypothesis is "
            "stated twice",
            singular=" or undefined (e.g. a constant outcome gives standard errors of 0; see "
            "summary())",
        )  # fmt: skip

    def effect_curve(self, grid: pd.DataFrame, conf_level: float | None = None) -> pd.DataFrame:
        """beta(s) = f(s)'beta with pointwise t intervals on a grid of moderator values.

        Parameters
        ----------
        grid : pandas.DataFrame
            The moderator columns; one output row per grid row (and treatment level).
        conf_level : float, optional
            Interval level (default: the result's ``conf_level``).

        Returns
        -------
        pandas.DataFrame
            The grid columns (and ``level`` for a categorical treatment), then estimate, se,
            lcl, ucl, t, df, p.
        """
        if self.design is None:
            raise DesignError(
                "effect_curve needs the design (the moderator formula's encoding), which is not "
                "saved with the result: load it with ExcursionResult.from_netcdf(path, "
                "data=<the trial>) or refit."
            )
        check_grid(grid)
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
