r"""CATE results for cluster-randomized trials: one container for every learner.

Estimand (Li et al. 2026): with :math:`Y_{ij}(z) = \mu(x_{ij}, v_j) + z\,\tau(x_{ij}, v_j) + b_j
+ e_{ij}`, the conditional average treatment effect

.. math:: \tau(x, v) = E[Y(1) - Y(0) \mid x, v],

marginal over the cluster effect :math:`b_j`. Summaries over a set of individuals
:math:`\{(i, j)\}`:

* individual-average ATE :math:`\frac{1}{n}\sum_{ij} \tau(x_{ij}, v_j)`;
* cluster-average ATE :math:`\frac{1}{K}\sum_j \frac{1}{n_j}\sum_i \tau(x_{ij}, v_j)`;
* subgroup CATE: the individual average within each level of a grouping column;
* best linear projection: the least-squares coefficients of :math:`\tau(x_{ij}, v_j)` on chosen
  moderators (with an intercept), computed draw by draw.

Uncertainty comes as ``draws`` of the whole CATE vector: posterior draws for the Bayesian
learners, cluster-bootstrap replicates (clusters resampled within arm) for point learners.
Intervals are equal-tailed quantiles of the draws (percentile intervals for the bootstrap).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import xarray as xr

from hte_mrt._contract import Result, Summary, alpha_to_level, read_sidecar
from hte_mrt._util import check_ax, json_default, output_path
from hte_mrt.errors import DataError, DesignError

ATEKind = Literal["individual", "cluster"]
FORMAT = "hte_mrt.CATEResult/1"


@dataclass(repr=False)
class CATEResult(Result):
    r"""CATE point estimates and draws for a set of individuals.

    What :meth:`CRTLearner.cate` and :func:`hte_mrt.cate` return. Estimand
    :math:`\tau(x, v) = E[Y(1) - Y(0) \mid x, v]`, marginal over the cluster effect; summaries
    (ATEs, subgroups, contrasts, projections) are computed draw by draw.

    Parameters
    ----------
    estimate : numpy.ndarray
        (n,) point estimate (posterior mean, or the full-data fit of a point learner).
    draws : numpy.ndarray or None
        (n_draws, n) posterior draws or bootstrap replicates, or None (no intervals).
    frame : pandas.DataFrame
        The individuals' covariate rows (for subgroups and projections).
    cluster : numpy.ndarray
        The cluster label of each row (for the cluster-average ATE).
    learner : str
        The learner's short name.
    interval : {"posterior", "bootstrap", "none"}
        Where the draws come from.
    conf_level : float, default 0.95
        Default interval level of the tables.
    meta : dict
        The fitted learner's description (class, parameters, diagnostics, fit time).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
    >>> res = hm.LinearInteraction(n_boot=50, seed=1, progress=False).fit(data).cate()
    >>> res
    <CATEResult: CATE (cluster-randomized trial), linear, 797 individuals, bootstrap intervals>
    >>> res.table().columns.tolist()
    ['cluster', 'estimate', 'se', 'lcl', 'ucl', 'pr_positive']
    >>> res.summary().table["quantity"].tolist()
    ['ATE (individual-average)', 'ATE (cluster-average)', 'sd of CATE over individuals']
    >>> res.conf_int(alpha=0.1).columns.tolist()
    ['lcl', 'ucl']
    """

    _kind: ClassVar[str] = "CATE (cluster-randomized trial)"
    _format: ClassVar[str] = FORMAT

    estimate: np.ndarray
    draws: np.ndarray | None
    frame: pd.DataFrame
    cluster: np.ndarray
    learner: str
    interval: Literal["posterior", "bootstrap", "none"] = "none"
    conf_level: float = 0.95
    meta: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.estimate)

    def _q(self, conf_level: float | None = None) -> tuple[float, float]:
        a = (1.0 - self._level(conf_level)) / 2.0
        return a, 1.0 - a

    def to_xarray(self) -> xr.Dataset:
        """``estimate`` (individual) and, when present, ``draws`` (draw, individual)."""
        ds = xr.Dataset({"estimate": ("individual", self.estimate)})
        if self.draws is not None:
            ds["draws"] = (("draw", "individual"), self.draws)
        ds = ds.assign_coords(cluster=("individual", np.asarray(self.cluster)))
        ds.attrs.update(learner=self.learner, interval=self.interval)
        return ds

    def _table(self, conf_level: float) -> pd.DataFrame:
        """One row per individual: ``cluster``, ``estimate`` and, when draws exist, ``se``
        (posterior or bootstrap sd), ``lcl``, ``ucl`` (equal-tailed quantiles of the draws at
        ``conf_level``) and ``pr_positive`` (share of draws above 0)."""
        out = pd.DataFrame({"cluster": self.cluster, "estimate": self.estimate},
                           index=self.frame.index)  # fmt: skip
        if self.draws is not None:
            lo, hi = self._q(conf_level)
            out["se"] = self.draws.std(axis=0, ddof=1) if len(self.draws) > 1 else np.nan
            out["lcl"] = np.quantile(self.draws, lo, axis=0)
            out["ucl"] = np.quantile(self.draws, hi, axis=0)
            out["pr_positive"] = (self.draws > 0).mean(axis=0)
        return out

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Per-individual interval bounds ``lcl``, ``ucl`` (rows as in :meth:`table`);
        ``alpha`` has statsmodels' meaning (``alpha=0.05`` gives 95% intervals)."""
        if self.draws is None:
            raise DesignError(
                "conf_int: this CATE has no draws (a point learner without n_boot); refit with "
                "n_boot=200 or use a Bayesian learner."
            )
        return self.table(alpha_to_level(alpha))[["lcl", "ucl"]]

    def _summ(
        self, name: str, est: float, draws: np.ndarray | None, conf_level: float | None = None
    ) -> dict:
        row = {"quantity": name, "estimate": float(est)}
        if draws is not None:
            lo, hi = self._q(conf_level)
            row |= {
                "se": float(np.std(draws, ddof=1)),
                "lcl": float(np.quantile(draws, lo)),
                "ucl": float(np.quantile(draws, hi)),
                "pr_positive": float(np.mean(draws > 0)),
            }
        return row

    # ------------------------------------------------------------------ averages
    def _weights(self, kind: ATEKind) -> np.ndarray:
        if kind == "individual":
            return np.full(len(self), 1.0 / len(self))
        if kind == "cluster":
            if self.meta.get("no_cluster_column"):
                raise DesignError(
                    "ate(kind='cluster'): the prediction rows have no cluster column, so the "
                    "cluster average is undefined; add the cluster column to the frame."
                )
            codes, uniq = pd.factorize(pd.Series(self.cluster))
            sizes = np.bincount(codes)
            return 1.0 / (len(uniq) * sizes[codes])
        raise DesignError(
            f"ate: kind must be 'individual' or 'cluster', got {kind!r}; pass "
            "kind='individual' (mean over individuals) or kind='cluster' (mean of cluster means)."
        )

    def ate(self, kind: ATEKind = "individual", conf_level: float | None = None) -> pd.Series:
        r"""Individual- or cluster-average treatment effect with its interval.

        ``kind="individual"``: :math:`\frac1n\sum_{ij}\tau(x_{ij}, v_j)`;
        ``kind="cluster"``: :math:`\frac1K\sum_j\frac1{n_j}\sum_i\tau(x_{ij}, v_j)`,
        draw by draw.

        Returns
        -------
        pandas.Series
            ``quantity``, ``estimate`` and, when draws exist, ``se``, ``lcl``, ``ucl``,
            ``pr_positive``.

        Examples
        --------
        >>> import hte_mrt as hm
        >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
        >>> res = hm.LinearInteraction(n_boot=50, seed=1, progress=False).fit(data).cate()
        >>> res.ate("cluster").index.tolist()
        ['quantity', 'estimate', 'se', 'lcl', 'ucl', 'pr_positive']
        """
        self._level(conf_level)  # checked even when there are no draws to use it
        w = self._weights(kind)
        d = None if self.draws is None else self.draws @ w
        return pd.Series(self._summ(f"ATE ({kind}-average)", self.estimate @ w, d, conf_level))

    def _groups(self, by: str | pd.Series, bins) -> tuple[pd.Series, str]:
        """The group of each row (by position) and the grouping's name."""
        if isinstance(by, str | bytes) is False and (
            by is None or np.ndim(by) != 1 or isinstance(by, pd.DataFrame | Mapping)
        ):
            raise DesignError(
                f"subgroups: by must be a column name of the prediction rows or a Series with one "
                f"value per row, got {type(by).__name__}; pass e.g. by='x3'."
            )
        # a Series or array of one value per row is matched by row order (the prediction rows
        # are stored with a fresh 0..n-1 index, so the caller's labels cannot be matched)
        if isinstance(by, str):
            if by not in self.frame.columns:
                cols = [str(c) for c in self.frame.columns if not str(c).startswith("_")]
                raise DesignError(
                    f"subgroups: column '{by}' is not among the prediction rows' columns "
                    f"({', '.join(cols[:12])}{', ...' if len(cols) > 12 else ''}); pass one of "
                    "those, or a Series with one value per row."
                )
            g, name = self.frame[by], by
        else:
            vals = by.array if isinstance(by, pd.Series) else np.asarray(by)  # keeps categories
            if len(vals) != len(self):
                raise DesignError(
                    f"subgroups: 'by' has {len(vals)} values for {len(self)} prediction rows; "
                    "pass a column name or one value per row (in row order)."
                )
            g = pd.Series(vals, index=self.frame.index)
            name = getattr(by, "name", None) or "group"
        if bins is not None:
            ok = isinstance(bins, Integral) and not isinstance(bins, bool) and bins >= 1
            ok = ok or (not isinstance(bins, str | bool) and np.ndim(bins) == 1)
            if ok and not isinstance(bins, Integral):
                try:
                    edges = np.asarray(bins, dtype=float)
                except (TypeError, ValueError):
                    edges = np.array([np.nan])
                ok = (
                    len(edges) >= 2
                    and not np.isnan(edges).any()
                    and bool(np.all(np.diff(edges) > 0))
                )
            if not ok:
                raise DesignError(
                    f"subgroups: bins must be a number of bins (int >= 1) or a list of at least "
                    f"two increasing bin edges (numbers, no NaN), got {bins!r}; pass e.g. bins=3 "
                    "or bins=[0, 40, 60, 100]."
                )
            if not pd.api.types.is_numeric_dtype(g):
                raise DesignError(
                    f"subgroups: bins cut a numeric column, but '{name}' has dtype {g.dtype}; "
                    "drop bins= (one group per level) or pass a numeric column."
                )
            g = pd.cut(g, bins=bins)
        return g, name

    def subgroups(
        self, by: str | pd.Series, *, bins=None, conf_level: float | None = None
    ) -> pd.DataFrame:
        """Average CATE within each level of ``by`` (a column of ``frame``, or a Series / array
        with one value per prediction row, matched by row order: the rows are stored with a
        fresh 0..n-1 index); ``bins`` cuts a numeric column (passed to :func:`pandas.cut`).

        Returns
        -------
        pandas.DataFrame
            One row per level: the level (column named after ``by``), ``n``, ``estimate``
            and, when draws exist, ``se``, ``lcl``, ``ucl``, ``pr_positive``.

        Examples
        --------
        >>> import hte_mrt as hm
        >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
        >>> res = hm.LinearInteraction(n_boot=50, seed=1, progress=False).fit(data).cate()
        >>> res.subgroups("x3").columns.tolist()
        ['x3', 'n', 'estimate', 'se', 'lcl', 'ucl', 'pr_positive']
        """
        self._level(conf_level)  # checked even when there are no draws to use it
        g, name = self._groups(by, bins)
        lost = int(g.isna().sum())
        if lost:
            raise DesignError(
                f"subgroups: {lost} row(s) have no group (missing '{name}' or outside the bins "
                f"{bins}); widen the bins or fill the missing values."
            )
        rows = []
        for level in pd.unique(g.dropna()):
            m = (g == level).to_numpy()
            w = m / m.sum()
            d = None if self.draws is None else self.draws @ w
            row = self._summ(str(level), self.estimate @ w, d, conf_level)
            row = {
                name: level,
                "n": int(m.sum()),
                **{k: v for k, v in row.items() if k != "quantity"},
            }
            rows.append(row)
        out = pd.DataFrame(rows)
        if isinstance(g.dtype, pd.CategoricalDtype):  # the categories' order (e.g. bands)
            rank = {c: k for k, c in enumerate(g.cat.categories)}
            return out.sort_values(name, key=lambda v: v.map(rank)).reset_index(drop=True)
        try:
            out = out.sort_values(name).reset_index(drop=True)
        except TypeError:
            pass
        return out

    def contrasts(
        self, by: str | pd.Series, *, bins=None, reference=None, conf_level: float | None = None
    ) -> pd.DataFrame:
        r"""Differences of subgroup CATEs against a reference level, draw by draw:
        :math:`\bar\tau_g - \bar\tau_{\text{ref}}` with :math:`\bar\tau_g` the average CATE in
        level :math:`g` of ``by`` (as in :meth:`subgroups`; ``reference`` defaults to the first
        level there). Intervals and ``pr_positive`` come from the draws (posterior or cluster
        bootstrap), so they account for the correlation between the two averages. Descriptive:
        not adjusted for looking at several contrasts.

        Returns
        -------
        pandas.DataFrame
            One row per non-reference level: the level, ``reference``, ``n``,
            ``n_reference``, ``estimate`` and, when draws exist, ``se``, ``lcl``, ``ucl``,
            ``pr_positive``."""
        sub = self.subgroups(by, bins=bins, conf_level=conf_level)
        name = sub.columns[0]
        levels = list(sub[name])
        if len(levels) < 2:
            raise DesignError(
                f"contrasts: '{name}' has a single level ({levels[0]!r}) in these rows; there is "
                "nothing to compare: pass a column with two or more levels."
            )
        ref = levels[0] if reference is None else reference
        if ref not in levels:
            raise DesignError(
                f"contrasts: reference {ref!r} is not a level of '{name}' "
                f"(levels: {', '.join(map(str, levels))}); pass one of those."
            )
        ref = levels[levels.index(ref)]  # as the level is shown (e.g. 0, not 0.0)
        g = self._groups(by, bins)[0]
        masks = {lev: (g == lev).to_numpy() for lev in levels}
        rows = []
        for lev in levels:
            if lev == ref:
                continue
            w = masks[lev] / masks[lev].sum() - masks[ref] / masks[ref].sum()
            d = None if self.draws is None else self.draws @ w
            row = self._summ(f"{lev} - {ref}", self.estimate @ w, d, conf_level)
            rows.append({name: lev, "reference": ref, "n": int(masks[lev].sum()),
                         "n_reference": int(masks[ref].sum()),
                         **{k: v for k, v in row.items() if k != "quantity"}})  # fmt: skip
        return pd.DataFrame(rows)

    def blp(self, moderators: list[str], conf_level: float | None = None) -> pd.DataFrame:
        r"""Best linear projection of the CATE on ``moderators`` (numeric columns of ``frame``),
        with an intercept: :math:`\arg\min_\theta \sum_{ij} (\tau(x_{ij}, v_j) - m_{ij}'
        \theta)^2`, computed draw by draw.

        Returns
        -------
        pandas.DataFrame
            One row per ``term`` (``Intercept`` and the moderators): ``estimate`` and, when
            draws exist, ``se``, ``lcl``, ``ucl``, ``pr_positive``."""
        self._level(conf_level)  # checked even when there are no draws to use it
        if isinstance(moderators, str):
            moderators = [moderators]
        if (
            moderators is None
            or isinstance(moderators, bytes | Mapping | pd.DataFrame)
            or np.ndim(moderators) != 1
            or not all(isinstance(m, str) for m in moderators)
        ):
            raise DesignError(
                f"blp: moderators must be a list of column names, got {moderators!r}; pass e.g. "
                "blp(['x1', 'x2'])."
            )
        moderators = list(moderators)
        if not moderators:
            raise DesignError("blp: no moderators given; pass a list of numeric columns.")
        dup = sorted({m for m in moderators if moderators.count(m) > 1})
        if dup:
            raise DesignError(
                f"blp: moderators lists {dup} more than once (a collinear copy); list each "
                "column once."
            )
        missing = [m for m in moderators if m not in self.frame.columns]
        if missing:
            cols = [str(c) for c in self.frame.columns if not str(c).startswith("_")]
            raise DesignError(
                f"blp: column '{missing[0]}' is not among the prediction columns "
                f"({', '.join(cols[:12])}); pass moderators from those."
            )
        for m in moderators:
            if not (pd.api.types.is_numeric_dtype(self.frame[m])
                    or pd.api.types.is_bool_dtype(self.frame[m])):  # fmt: skip
                raise DesignError(
                    f"blp: column '{m}' is not numeric (dtype {self.frame[m].dtype}); project "
                    "on numeric columns, or use subgroups() / contrasts() for a categorical one."
                )
        M = np.column_stack([np.ones(len(self))] + [
            self.frame[m].to_numpy(dtype=float) for m in moderators
        ])  # fmt: skip
        pinv = np.linalg.pinv(M)
        coef = pinv @ self.estimate
        rows = []
        draws = None if self.draws is None else self.draws @ pinv.T
        for k, name in enumerate(["Intercept", *moderators]):
            rows.append(self._summ(name, coef[k], None if draws is None else draws[:, k],
                                   conf_level))  # fmt: skip
        return pd.DataFrame(rows).rename(columns={"quantity": "term"})

    def summary(self, conf_level: float | None = None) -> Summary:
        """Both ATEs and the spread of the CATE (its sd over individuals, draw by draw).

        Returns
        -------
        Summary
            ``.table``: one row per ``quantity`` (``ATE (individual-average)``, ``ATE
            (cluster-average)`` when the rows have clusters, ``sd of CATE over individuals``)
            with ``estimate`` and, when draws exist, ``se``, ``lcl``, ``ucl``,
            ``pr_positive``; prints as text, renders as HTML.
        """
        rows = [self.ate("individual", conf_level)]
        if not self.meta.get("no_cluster_column"):
            rows.append(self.ate("cluster", conf_level))
        # the spread of tau(x, v) over individuals: per draw, so estimate and interval agree
        if self.draws is None:
            sd_est, sd_d = self.estimate.std(ddof=1), None
        else:
            sd_d = self.draws.std(axis=1, ddof=1)
            sd_est = float(sd_d.mean())
        rows.append(pd.Series(self._summ("sd of CATE over individuals", sd_est, sd_d,
                                         conf_level)))  # fmt: skip
        title, info, notes = self._summary_parts()
        if "conf_level" in info:  # the level this summary's intervals were computed at
            info["conf_level"] = f"{self._level(conf_level):.0%}"
        return Summary(title, pd.DataFrame(rows).reset_index(drop=True), info, notes)

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        kind = {"posterior": "posterior credible intervals",
                "bootstrap": "cluster-bootstrap percentile intervals",
                "none": "no intervals"}.get(self.interval, self.interval)  # fmt: skip
        title = f"CATE of {self.learner} ({kind})"
        info: dict = {"individuals": len(self)}
        if not self.meta.get("no_cluster_column"):
            info["clusters"] = int(pd.Series(np.asarray(self.cluster)).nunique())
        if self.draws is not None:
            info["draws" if self.interval == "posterior" else "replicates"] = len(self.draws)
            info["conf_level"] = f"{self.conf_level:.0%}"
        notes = []
        if self.meta.get("degenerate"):
            notes.append(str(self.meta["degenerate"]))
        if self.interval == "bootstrap":
            notes.append(
                "Bootstrap intervals carry the learner's sampling variance, not its bias: they "
                "do not include a regularized learner's shrinkage toward no effect."
            )
            if self.meta.get("bootstrap_failed"):
                notes.append(f"{self.meta['bootstrap_failed']} bootstrap resample(s) could not "
                             "be fitted and were dropped.")  # fmt: skip
        elif self.interval == "none" and not self.meta.get("degenerate"):
            notes.append("No intervals: a point learner without n_boot (set n_boot=200).")
        if self.meta.get("no_cluster_column"):
            notes.append("The rows have no cluster column: no cluster-average ATE.")
        return title, info, notes

    # ------------------------------------------------------------------ saving
    def to_netcdf(self, path: str | Path) -> Path:
        """Save the result: NetCDF (h5netcdf) with ``estimate``, ``draws``, ``cluster`` and the
        prediction rows' columns along ``individual``, plus a JSON sidecar (``x.nc`` ->
        ``x.json``; other names get ``.json`` appended) with the learner, interval kind, level
        and ``meta`` (for a fitted learner's ``cate()``:
        its class, parameters, diagnostics and fit time). :meth:`from_netcdf` restores it,
        column dtypes included (text and categorical columns are stored as integer codes, with
        their levels in the file when they are text, else in the description)."""
        path = output_path(path, "to_netcdf", ".nc")
        if path.suffix == ".json":
            raise DesignError(
                f"to_netcdf: {path} ends in .json, the sidecar's suffix; use e.g. '.nc'."
            )
        names = list(self.frame.columns)
        bad = [c for c in names if not isinstance(c, str | int | float | np.integer | np.floating)]
        if bad or len(set(names)) < len(names):
            what = f"non-scalar name {bad[0]!r}" if bad else "duplicate column names"
            raise DataError(
                f"to_netcdf: the prediction rows have {what}; rename the columns (unique "
                "strings) before saving."
            )
        ds = xr.Dataset({"estimate": ("individual", self.estimate)})
        if self.draws is not None:
            ds["draws"] = (("draw", "individual"), self.draws)
        cols = []
        for k, (name, col) in enumerate([("cluster", pd.Series(self.cluster)),
                                         *self.frame.items()]):  # fmt: skip
            var = "cluster" if k == 0 else f"column_{k - 1}"
            values, spec = _encode_column(col, name)
            if isinstance(values, tuple):  # nullable integers: values and missing mask
                values, mask = values
                ds[f"{var}_isna"] = ("individual", mask)
            ds[var] = ("individual", values)
            levels = spec.get("levels")
            if levels and all(isinstance(v, str) for v in levels):
                # text levels (e.g. participant ids) go in the file, not the sidecar
                ds[f"{var}_levels"] = (f"{var}_level", np.array(levels, dtype=object))
                spec["levels"] = f"{var}_levels"
            cols.append({"name": name, "variable": var, **spec})
        desc = {
            "format": FORMAT, "learner": self.learner, "interval": self.interval,
            "conf_level": self.conf_level, "columns": cols, "meta": self.meta,
        }  # fmt: skip
        text = json.dumps(desc, indent=2, default=json_default)
        ds.attrs["hte_mrt"] = text
        ds.to_netcdf(path, engine="h5netcdf")
        _sidecar(path).write_text(text)
        return path

    @classmethod
    def from_netcdf(cls, path: str | Path) -> CATEResult:
        """Load a result saved by :meth:`to_netcdf`."""
        path = Path(path)
        read_sidecar(path, "CATEResult")  # a DataError for a missing or foreign file
        try:
            with xr.open_dataset(path, engine="h5netcdf") as f:
                ds = f.load()
            desc = json.loads(ds.attrs["hte_mrt"])
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(
                f"{path} is not a saved CATEResult (not a NetCDF file with a '{FORMAT}' "
                "description); write it with CATEResult.to_netcdf."
            ) from exc
        if desc.get("format") != FORMAT:
            raise DataError(
                f"{path} holds a {desc.get('format')!r} result; this version of hte_mrt reads "
                f"{FORMAT!r}."
            )
        spec = {c["variable"]: c for c in desc["columns"]}
        for c in spec.values():
            if isinstance(c.get("levels"), str):
                c["levels"] = [str(v) for v in ds[c["levels"]].values]

        def col(v: str, c: dict) -> pd.Series:
            isna = ds[f"{v}_isna"].values if f"{v}_isna" in ds else None
            return _decode_column(ds[v].values, c, isna)

        cluster = col("cluster", spec.pop("cluster")).to_numpy()
        frame = pd.DataFrame(
            {c["name"]: col(v, c) for v, c in spec.items()},
            index=pd.RangeIndex(ds.sizes["individual"]),
        )
        return cls(
            estimate=ds["estimate"].values, draws=ds["draws"].values if "draws" in ds else None,
            frame=frame, cluster=cluster, learner=desc["learner"], interval=desc["interval"],
            conf_level=desc["conf_level"], meta=desc["meta"],
        )  # fmt: skip

    # ------------------------------------------------------------------ plots
    def plot_cate(self, ax=None):
        """The individuals' CATEs in increasing order with their pointwise intervals (a band),
        and the individual-average ATE."""
        import matplotlib.pyplot as plt

        check_ax(ax, "CATEResult.plot_cate")

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        order = np.argsort(self.estimate, kind="stable")
        rank = np.arange(1, len(self) + 1)
        if self.draws is not None:
            t = self.table().iloc[order]
            label = f"{self.conf_level:.0%} {self.interval} interval"
            ax.fill_between(rank, t["lcl"], t["ucl"], alpha=0.25, lw=0, label=label)
        ax.plot(rank, self.estimate[order], lw=1.2, label=f"CATE ({self.learner})")
        ax.axhline(self.ate()["estimate"], color="k", ls="--", lw=0.8, label="ATE")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("individuals, ordered by estimated CATE")
        ax.set_ylabel("CATE")
        ax.legend(frameon=False, fontsize=8)
        ax.figure.tight_layout()
        return ax

    def plot_subgroups(self, by: str | pd.Series, *, bins=None, ax=None):
        """Forest plot of :meth:`subgroups` (estimate and interval per level), with the
        individual-average ATE as a reference line."""
        import matplotlib.pyplot as plt

        check_ax(ax, "CATEResult.plot_subgroups")

        t = self.subgroups(by, bins=bins)
        name = t.columns[0]
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 1.0 + 0.35 * len(t)))
        y = np.arange(len(t))[::-1]
        ax.plot(t["estimate"], y, "o", ms=4, color="C0")
        if "lcl" in t:  # lines, not error bars: a bootstrap estimate can lie outside its interval
            ax.hlines(y, t["lcl"], t["ucl"], color="C0", lw=1)
        ax.axvline(self.ate()["estimate"], color="k", ls="--", lw=0.8, label="ATE")
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_yticks(y, [f"{lev} (n={n})" for lev, n in zip(t[name], t["n"], strict=True)])
        ax.set_xlabel(f"average CATE ({self.learner})")
        ax.set_title(str(name), fontsize=9)
        ax.legend(frameon=False, fontsize=8)
        ax.figure.tight_layout()
        return ax

    def _repr_extra(self) -> str:
        return f"{self.learner}, {len(self)} individuals, {self.interval} intervals"


# -------------------------------------------------------------------------------------------------
# column codecs for to_netcdf / from_netcdf
# -------------------------------------------------------------------------------------------------
def _sidecar(path: Path) -> Path:
    """The JSON description beside a saved file: ``x.nc`` -> ``x.json``; other names get
    ``.json`` appended (``run.v1`` -> ``run.v1.json``)."""
    return (
        path.with_suffix(".json") if path.suffix == ".nc" else path.with_name(path.name + ".json")
    )


_JSON_SCALARS = (str, int, float, bool)


def _encode_column(col: pd.Series, name: Any = None):
    """(values for NetCDF, how to restore them): numbers and booleans as they are (nullable
    integers as int64 plus a missing mask, other nullable numbers as float with NaN),
    datetimes as int64 nanoseconds, anything else as integer codes (-1: missing) with its
    levels, which must be strings or numbers (a :class:`DataError` otherwise: they could not
    be restored as they were)."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes, levels = col.cat.codes.to_numpy(), col.cat.categories
        spec = {"kind": "category", "ordered": bool(dtype.ordered)}
    elif pd.api.types.is_bool_dtype(dtype) and not col.isna().any():
        return col.to_numpy(dtype=np.int8), {"kind": "bool", "dtype": str(dtype)}
    elif pd.api.types.is_numeric_dtype(dtype):
        if isinstance(dtype, np.dtype):
            return col.to_numpy(), {"kind": "numeric", "dtype": str(dtype)}
        if pd.api.types.is_integer_dtype(dtype):
            isna = col.isna().to_numpy()
            values = col.to_numpy(dtype=np.int64, na_value=0)
            return (values, isna.astype(np.int8)), {"kind": "numeric", "dtype": str(dtype)}
        return col.to_numpy(dtype=float, na_value=np.nan), {"kind": "numeric", "dtype": str(dtype)}
    elif isinstance(dtype, np.dtype) and dtype.kind == "M":
        return col.to_numpy().view("int64"), {"kind": "datetime", "dtype": str(dtype)}
    else:
        codes, levels = pd.factorize(col, use_na_sentinel=True)
        spec = {"kind": "object", "dtype": str(dtype)}
    target = dtype if spec["kind"] == "object" else dtype.categories.dtype
    levels = levels.tolist()
    odd = [v for v in levels if not isinstance(v, _JSON_SCALARS)]
    if odd:
        # e.g. tz-aware timestamps: kept as text when the dtype parses the text back exactly
        text = [str(v) for v in levels]
        try:
            ok = pd.Index(text, dtype=object).astype(target).equals(pd.Index(levels))
        except (TypeError, ValueError):
            ok = False
        if ok:
            return codes.astype(np.int64), spec | {"levels": text, "levels_dtype": str(target)}
        raise DataError(
            f"to_netcdf: column {name!r} holds values of type {type(odd[0]).__name__} (e.g. "
            f"{odd[0]!r}), which cannot be saved and restored as they are; convert the column "
            "to strings or numbers (e.g. .astype(str)) first."
        )
    return codes.astype(np.int64), spec | {"levels": levels}


def _decode_column(values: np.ndarray, spec: dict, isna: np.ndarray | None = None) -> pd.Series:
    kind = spec["kind"]
    if kind == "bool":
        return pd.Series(values.astype(bool)).astype(spec["dtype"])
    if kind == "numeric":
        if isna is not None:
            out = pd.Series(values.astype(np.int64)).astype(spec["dtype"])
            out[isna.astype(bool)] = pd.NA
            return out
        return pd.Series(values).astype(spec["dtype"])
    if kind == "datetime":
        return pd.Series(values.astype("int64").view(spec["dtype"]))
    levels = spec["levels"]
    if "levels_dtype" in spec:
        levels = pd.Index(levels, dtype=object).astype(spec["levels_dtype"])
    if kind == "category":
        return pd.Series(pd.Categorical.from_codes(values, levels, ordered=spec["ordered"]))
    out = np.empty(len(values), dtype=object)
    out[:] = [levels[c] if c >= 0 else np.nan for c in values]
    s = pd.Series(out, dtype=object)
    return s if spec["dtype"] == "object" else s.astype(spec["dtype"])
