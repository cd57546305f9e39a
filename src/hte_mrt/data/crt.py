"""The cluster-randomized-trial (CRT) data model: one row per individual, validated once.

Individuals i are nested in clusters j; the whole cluster is randomized to arm A_j in {0, 1}.
Roles:

* ``cluster`` the unit of randomization, ``arm`` A_j (0/1, constant within cluster);
* ``outcome`` Y_ij (numeric), optionally ``baseline`` (the outcome measured at baseline);
* ``individual`` covariates X_ij (moderators measured on individuals);
* ``cluster_covariates`` V_j (constant within cluster);
* optional ``id`` (individual identifier, used in reports).

Categorical covariates are encoded with levels learned once, at construction, so that
:meth:`CRTData.encode` gives the same columns for the fitting data and for new data (an unseen
level at prediction time is an error, never a silent all-zero row). Rows removed and values
filled are never silent: see :attr:`CRTData.exclusions` and :attr:`CRTData.imputations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from hte_mrt._util import first_ids
from hte_mrt._util import fmt_ids as _fmt_ids
from hte_mrt.data.checks import (
    excluded_rows,
    exclusions_table,
    numeric_outcome,
    require_column,
)
from hte_mrt.errors import (
    DataError,
    DesignError,
    DuplicateRowError,
    MissingColumnError,
    MissingValueError,
    TreatmentError,
    UnseenLevelError,
)

MISSING_LEVEL = "missing"
MissingPolicy = Literal["error", "indicator"]


# ---------------------------------------------------------------------------------------------
# ICC
# ---------------------------------------------------------------------------------------------
def icc_anova(y, cluster, group=None) -> float:
    """One-way ANOVA estimator of the intraclass correlation (unequal cluster sizes).

    With k clusters of sizes n_j (N in all), cluster means ybar_j and grand mean ybar::

        MSB = sum_j n_j (ybar_j - ybar)^2 / (k - 1)
        MSW = sum_ij (y_ij - ybar_j)^2 / (N - k)
        n0  = (N - sum_j n_j^2 / N) / (k - 1)
        ICC = (MSB - MSW) / (MSB + (n0 - 1) MSW)

    ``group`` (e.g. the arm): clusters nested in groups, the group means taken out first
    (ybar replaced by the cluster's group mean, k - 1 by k - g, and sum_j n_j^2 / N by
    sum_g sum_{j in g} n_j^2 / N_g), so that a treatment effect does not inflate the ICC.
    The estimate may be negative (returned as is); NaN where it is undefined.
    """
    y = np.asarray(y, dtype=float)
    cl = pd.factorize(pd.Series(np.asarray(cluster)), sort=False)[0]
    gr = (
        np.zeros(len(y), dtype=np.int64)
        if group is None
        else pd.factorize(pd.Series(np.asarray(group)), sort=False)[0]
    )
    ok = ~np.isnan(y)
    y, cl, gr = y[ok], cl[ok], gr[ok]
    d = pd.DataFrame({"y": y, "c": cl, "g": gr})
    per = d.groupby("c").agg(n=("y", "size"), mean=("y", "mean"), g=("g", "first"))
    k, n_tot, n_grp = len(per), len(d), per["g"].nunique()
    if k - n_grp < 1 or n_tot - k < 1:
        return float("nan")
    g_mean = d.groupby("g")["y"].mean()
    g_size = d.groupby("g")["y"].size()
    ssb = float((per["n"] * (per["mean"] - g_mean.loc[per["g"]].to_numpy()) ** 2).sum())
    ssw = float(((d["y"] - per["mean"].loc[d["c"]].to_numpy()) ** 2).sum())
    msb, msw = ssb / (k - n_grp), ssw / (n_tot - k)
    sum_sq = float((per.groupby("g")["n"].apply(lambda s: (s**2).sum()) / g_size).sum())
    n0 = (n_tot - sum_sq) / (k - n_grp)
    denom = msb + (n0 - 1.0) * msw
    return float((msb - msw) / denom) if denom > 0 else float("nan")


# ---------------------------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CRTRoles:
    """Which column plays which role."""

    cluster: str
    arm: str
    outcome: str
    individual: tuple[str, ...] = ()
    cluster_covariates: tuple[str, ...] = ()
    baseline: str | None = None
    id: str | None = None


class DesignNames(NamedTuple):
    """Column names of the encoded matrices."""

    individual: list[str]
    cluster: list[str]


class EncodedDesign(NamedTuple):
    """What :meth:`CRTData.encode` returns (unpacks as ``X, V, names``).

    ``X`` individual covariates, ``V`` cluster covariates; both have one row per row of the
    encoded frame (V repeats the cluster's values), no intercept, reference levels dropped.
    """

    X: np.ndarray
    V: np.ndarray
    names: DesignNames


@dataclass(frozen=True)
class _Covariate:
    name: str
    level: Literal["individual", "cluster"]
    categorical: bool
    levels: tuple = ()  # categorical: reference first (MISSING_LEVEL last when filled)
    fill: float | None = None  # numeric with missing indicator: the fill value
    indicator: bool = False  # numeric: adds <name>_missing

    @property
    def columns(self) -> list[str]:
        if self.categorical:
            return [f"{self.name}[{lev}]" for lev in self.levels[1:]]
        return [self.name, f"{self.name}_missing"] if self.indicator else [self.name]


@dataclass
class CRTSummary:
    """What :meth:`CRTData.summary` / :meth:`CRTData.describe` return."""

    arm: str
    cluster: str
    outcome: str
    n_individuals: int
    n_clusters: int
    by_arm: pd.DataFrame
    icc: float
    icc_within_arm: float
    exclusions: pd.DataFrame = field(repr=False)
    imputations: pd.DataFrame = field(repr=False)

    def __str__(self) -> str:
        lines = [
            "CRT data",
            f"  individuals           {self.n_individuals}",
            f"  clusters              {self.n_clusters} ('{self.cluster}')",
            f"  outcome               '{self.outcome}'",
            f"  by arm ('{self.arm}'): clusters, individuals, cluster sizes, outcome, ICC",
        ]
        lines += ["    " + s for s in self.by_arm.to_string(index=False).splitlines()]

        def icc(v: float) -> str:
            if np.isfinite(v):
                return f"{v:.4f}"
            return "undefined (no outcome variance within or between clusters)"

        lines += [
            f"  ICC (one-way ANOVA, arms pooled)       {icc(self.icc)}",
            f"  ICC (one-way ANOVA, within arm)        {icc(self.icc_within_arm)}",
        ]
        if len(self.exclusions):
            lines.append(f"  rows excluded         {len(self.exclusions)}")
            counts = self.exclusions["reason"].value_counts()
            lines += [f"    {n:6d}  {reason}" for reason, n in counts.items()]
        else:
            lines.append("  rows excluded         0")
        if len(self.imputations):
            lines.append("  missing covariate values filled (missing='indicator')")
            lines += ["    " + s for s in self.imputations.to_string(index=False).splitlines()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


# ---------------------------------------------------------------------------------------------
# CRTData
# ---------------------------------------------------------------------------------------------
class CRTData:
    """A validated cluster-randomized-trial data set (one row per individual).

    Parameters
    ----------
    frame
        One row per individual.
    cluster, arm, outcome
        Column names of the cluster (unit of randomization), the arm (0/1, constant within
        cluster) and the outcome (numeric).
    individual
        Individual-level covariates / moderators X_ij.
    cluster_covariates
        Cluster-level covariates V_j (must be constant within cluster).
    baseline
        The outcome measured at baseline (numeric). It is an individual covariate (added to
        ``individual`` if not listed there) and is reported by arm in :meth:`summary`.
    categorical
        Covariates to treat as categorical (one-hot, first level the reference). Default: the
        non-numeric columns. Levels are the pandas categories (in order) for a categorical
        dtype, else the sorted observed values.
    missing
        Missing covariate values. ``"error"`` (default): raise, naming the column and the count.
        ``"indicator"``: numeric columns are filled with their mean (individual covariates: over
        the analysis rows; cluster covariates: over clusters) and get a ``<col>_missing`` 0/1
        column; categorical columns get the level ``"missing"``. Listed in :attr:`imputations`.
    dropna_outcome
        ``False`` (default): a missing outcome raises. ``True``: those rows are removed and
        listed in :attr:`exclusions` with the reason.
    id
        Optional individual identifier (must be unique); used in reports and error messages.

    Raises
    ------
    MissingColumnError, MissingValueError, TreatmentError, OutcomeTypeError, DuplicateRowError,
    DataError (covariate varying within cluster, bad covariate type), DesignError (fewer than
    two clusters per arm).

    Examples
    --------
    The bundled TASSH trial (hypertension clinics in Ghana randomized to nurse-led task
    shifting):

    >>> import hte_mrt as hm
    >>> frame = hm.load_dataset("tassh")
    >>> data = hm.CRTData(
    ...     frame, cluster="Site_Number", arm="Trt_or_Ctrl", outcome="sbp_change_12m",
    ...     individual=["age", "female"], cluster_covariates=["urban"],
    ...     dropna_outcome=True, missing="indicator",
    ... )
    >>> data
    <CRTData: 641 individuals in 32 clusters (16 control / 16 intervention), ...>
    >>> len(data.exclusions)  # rows without the 12-month outcome, listed with the reason
    116
    >>> data.imputations[["column", "n_rows", "added"]]
      column  n_rows        added
    0    age       1  age_missing
    >>> X, V, names = data.encode()
    >>> X.shape, V.shape, names.individual
    ((641, 3), (641, 1), ['age', 'age_missing', 'female'])
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        cluster: str,
        arm: str,
        outcome: str,
        individual: Sequence[str] = (),
        cluster_covariates: Sequence[str] = (),
        baseline: str | None = None,
        categorical: Sequence[str] | None = None,
        missing: MissingPolicy = "error",
        dropna_outcome: bool = False,
        id: str | None = None,
    ) -> None:
        if not isinstance(missing, str) or missing not in ("error", "indicator"):
            raise DataError(
                f"CRTData: missing must be 'error' or 'indicator', got {missing!r}; pass "
                "missing='error' (raise on a missing covariate) or missing='indicator' (fill "
                "and flag)."
            )
        if not isinstance(dropna_outcome, bool | np.bool_):
            raise DataError(
                f"CRTData: dropna_outcome must be True or False, got {dropna_outcome!r}; pass "
                "dropna_outcome=True to exclude rows without an outcome (a string such as "
                "'no' would count as True)."
            )
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"CRTData needs a pandas DataFrame, got {type(frame).__name__}; pass "
                "pd.DataFrame(...) with one row per individual."
            )
        if isinstance(frame.columns, pd.MultiIndex):
            raise DataError(
                "CRTData needs one level of column names, but the frame has MultiIndex columns; "
                "flatten them first, e.g. frame.columns = ['_'.join(map(str, c)).strip('_') "
                "for c in frame.columns]."
            )
        if len(frame) == 0:
            raise DataError(
                "CRTData: the frame has no rows; pass one row per individual (at least two "
                "clusters per arm)."
            )
        if isinstance(individual, str) or isinstance(cluster_covariates, str):
            which = "individual" if isinstance(individual, str) else "cluster_covariates"
            raise DataError(
                f"CRTData: {which}= takes a list of column names, got the string "
                f"{individual if which == 'individual' else cluster_covariates!r}; pass "
                f"{which}=[...]."
            )
        individual = list(individual)
        if baseline is not None and baseline not in individual:
            individual.insert(0, baseline)
        cluster_covariates = list(cluster_covariates)
        self.roles = CRTRoles(
            cluster, arm, outcome, tuple(individual), tuple(cluster_covariates), baseline, id
        )
        self.missing = missing
        self._exclusions: list[pd.DataFrame] = []

        self._check_columns(frame, categorical)
        df = frame.copy()
        df["_row"] = np.arange(len(frame))  # position in the user's frame, for reports
        self._key = [cluster, id] if id is not None else [cluster, "_row"]
        self._check_cluster_and_id(df)
        self._check_arm(df)  # recodes the arm to int 0/1 in place
        self._check_cluster_covariates_constant(df)
        df, y = self._outcome(df, dropna_outcome)
        self._check_clusters_per_arm(df)
        self._covariates, self._imputations = self._learn_covariates(df, categorical)
        self._store(df, y)

    # ------------------------------------------------------------------ validation steps
    def _check_columns(self, frame: pd.DataFrame, categorical: Sequence[str] | None) -> None:
        """Every named column is present, no column plays two roles, ``categorical`` names
        covariates only."""
        r = self.roles
        role_cols = {"cluster": r.cluster, "arm": r.arm, "outcome": r.outcome}
        if r.id is not None:
            role_cols["id"] = r.id
        args = {"individual covariate": "individual", "cluster covariate": "cluster_covariates"}
        needed = [*role_cols.items()]
        needed += [("baseline" if c == r.baseline else "individual covariate", c)
                   for c in r.individual]  # fmt: skip
        needed += [("cluster covariate", c) for c in r.cluster_covariates]
        seen_roles: dict[object, str] = {}
        for role, col in role_cols.items():
            if col in seen_roles:
                raise DataError(
                    f"Column '{col}' is given for two roles, {seen_roles[col]}= and {role}=: "
                    "each role needs its own column. Pass the right column name to one of them.",
                    column=str(col),
                )
            seen_roles[col] = role
        for role, col in needed:
            try:
                require_column(frame, col, role)
            except MissingColumnError as exc:
                raise MissingColumnError(
                    f"{exc} Name an existing column in {args.get(role, role)}= (column names "
                    "are case-sensitive).",
                    column=exc.column,
                ) from None
        covs = [*r.individual, *r.cluster_covariates]
        dup = sorted({c for c in covs if covs.count(c) > 1})
        if dup:
            raise DataError(
                f"Column '{dup[0]}' is listed more than once among the covariates; list each "
                "covariate once, as individual or as cluster covariate.",
                column=dup[0],
            )
        clash = [c for c in covs if c in role_cols.values()]
        if clash:
            role = next(k for k, c in role_cols.items() if c == clash[0])
            other = "baseline" if clash[0] == r.baseline else "a covariate"
            raise DataError(
                f"Column '{clash[0]}' is the {role} and cannot also be {other}; remove it "
                "from baseline= / individual= / cluster_covariates=.",
                column=clash[0],
            )
        if categorical is not None:
            if isinstance(categorical, str):
                raise DataError(
                    f"CRTData: categorical= takes a list of column names, got the string "
                    f"{categorical!r}; pass categorical=[{categorical!r}]."
                )
            stray = [c for c in categorical if c not in covs]
            if stray:
                raise DataError(
                    f"Column '{stray[0]}' is listed in categorical= but is not a covariate; "
                    "add it to individual= or cluster_covariates=, or remove it from "
                    "categorical=.",
                    column=stray[0],
                )

    def _check_cluster_and_id(self, df: pd.DataFrame) -> None:
        """Every row has a cluster; ids (when given) are complete and unique."""
        cluster, id, key = self.roles.cluster, self.roles.id, self._key
        bad = df[cluster].isna().to_numpy()
        if bad.any():
            rows = list(df.loc[bad, "_row"].head(5))
            raise MissingValueError(
                f"Column '{cluster}' (cluster) has {bad.sum()} missing value(s), first at "
                f"row(s) {rows} of the input. Every individual belongs to a cluster: fill or "
                "remove those rows.",
                column=cluster,
                n_rows=int(bad.sum()),
                examples=rows,
            )
        if id is None:
            return
        bad = df[id].isna().to_numpy()
        if bad.any():
            ex = first_ids(df, bad, [cluster, "_row"])
            raise MissingValueError(
                f"Column '{id}' (id) has {bad.sum()} missing value(s), e.g. "
                f"{fmt_ids(ex, [cluster, 'row'])}. Give every individual an id.",
                column=id,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        dup_id = df.duplicated(id, keep=False).to_numpy()
        if dup_id.any():
            ex = first_ids(df, dup_id, key)
            raise DuplicateRowError(
                f"Column '{id}' (id): {dup_id.sum()} rows share an id with another row, "
                f"e.g. {fmt_ids(ex, key)}. CRTData takes one row per individual: "
                "deduplicate, or reshape repeated measures to one row.",
                column=id,
                n_rows=int(dup_id.sum()),
                examples=ex,
            )

    def _check_arm(self, df: pd.DataFrame) -> None:
        """The arm is complete, 0/1 and constant within cluster; recoded to int in ``df``."""
        cluster, arm, key = self.roles.cluster, self.roles.arm, self._key
        a_raw = df[arm]
        bad = a_raw.isna().to_numpy()
        if bad.any():
            ex = first_ids(df, bad, key)
            raise MissingValueError(
                f"Column '{arm}' (arm) has {bad.sum()} missing value(s), e.g. "
                f"{fmt_ids(ex, key)}. Record the randomized arm (0/1) of every cluster.",
                column=arm,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        a_num = pd.to_numeric(a_raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isin(a_num, (0.0, 1.0))
        if bad.any():
            ex = first_ids(df, bad, [*key, arm])
            raise TreatmentError(
                f"Column '{arm}' (arm) must be 0/1 (1 = intervention); {bad.sum()} row(s) are "
                f"not, e.g. {fmt_ids(ex, [*key, arm])}. Recode the arm to 0 (control) / 1.",
                column=arm,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        df[arm] = a_num.astype(np.int64)
        n_arm = df.groupby(cluster, sort=True)[arm].nunique()
        if (n_arm > 1).any():
            bad_cl = list(n_arm[n_arm > 1].index)
            n_bad = int(df[cluster].isin(bad_cl).sum())
            raise TreatmentError(
                f"Column '{arm}' (arm) varies within {len(bad_cl)} cluster(s), e.g. "
                f"{cluster}={bad_cl[:5]}. In a cluster-randomized trial the whole cluster "
                "receives one arm: fix the arm record of those clusters (if individuals were "
                "randomized, this is not a CRT).",
                column=arm,
                n_rows=n_bad,
                examples=bad_cl[:5],
            )

    def _check_cluster_covariates_constant(self, df: pd.DataFrame) -> None:
        """A cluster covariate takes one value per cluster."""
        cluster = self.roles.cluster
        for col in self.roles.cluster_covariates:
            n_val = df.groupby(cluster, sort=True)[col].nunique(dropna=False)
            if (n_val > 1).any():
                bad_cl = list(n_val[n_val > 1].index)
                raise DataError(
                    f"Column '{col}' (cluster covariate) varies within {len(bad_cl)} cluster(s), "
                    f"e.g. {cluster}={bad_cl[:5]}. A cluster covariate takes one value per "
                    "cluster: fix those clusters, or list the column in individual= if it is "
                    "measured on individuals.",
                    column=col,
                    n_rows=int(df[cluster].isin(bad_cl).sum()),
                    examples=bad_cl[:5],
                )

    def _outcome(self, df: pd.DataFrame, dropna_outcome: bool) -> tuple[pd.DataFrame, np.ndarray]:
        """The numeric outcome; rows where it is missing raise, or are dropped and recorded."""
        outcome, key = self.roles.outcome, self._key
        y = numeric_outcome(df, outcome, key)
        inf = np.isinf(y)
        if inf.any():
            ex = first_ids(df, inf, [*key, outcome])
            raise DataError(
                f"Column '{outcome}' (outcome) has {inf.sum()} infinite value(s), e.g. "
                f"{fmt_ids(ex, [*key, outcome])} (log(0) = -inf?). No average is defined with "
                "them: replace them (e.g. log(y + 1), or a floor before the log), or set them to "
                "NaN and pass dropna_outcome=True to exclude those rows.",
                column=outcome,
                n_rows=int(inf.sum()),
                examples=ex,
            )
        bad = np.isnan(y)
        if not bad.any():
            return df, y
        ex = first_ids(df, bad, key)
        if not dropna_outcome:
            raise MissingValueError(
                f"Column '{outcome}' (outcome) is missing for {bad.sum()} of {len(df)} "
                f"individuals, e.g. {fmt_ids(ex, key)}. Impute it, or pass "
                "dropna_outcome=True to exclude those rows (they are then listed in "
                ".exclusions; a complete-case analysis assumes missingness unrelated to the "
                "outcome given the covariates).",
                column=outcome,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        self._exclude(df, bad, f"outcome '{outcome}' missing")
        return df[~bad].reset_index(drop=True), y[~bad]

    def _check_clusters_per_arm(self, df: pd.DataFrame) -> None:
        """At least two clusters per arm among the analysis rows."""
        cluster, arm = self.roles.cluster, self.roles.arm
        per_arm = df.groupby(arm)[cluster].nunique().reindex([0, 1], fill_value=0)
        if (per_arm < 2).any():
            a_bad = int(per_arm.idxmin())
            which = list(df.loc[df[arm] == a_bad, cluster].unique()[:5])
            dropped = " (after dropping rows with a missing outcome)" if self._exclusions else ""
            raise DesignError(
                f"Column '{arm}' (arm): arm {a_bad} has {per_arm[a_bad]} cluster(s){dropped}"
                f"{f', {cluster}={which}' if which else ''}; at least 2 clusters per arm are "
                "needed. With one cluster per arm the treatment effect is confounded with the "
                "cluster effect and no between-cluster variance can be estimated: randomize "
                "more clusters."
            )

    def _learn_covariates(
        self, df: pd.DataFrame, categorical: Sequence[str] | None
    ) -> tuple[list[_Covariate], pd.DataFrame]:
        """Each covariate's type, levels and fill (learned once, reused by :meth:`encode`), and
        the table of filled values."""
        r = self.roles
        covariates: list[_Covariate] = []
        imput: list[dict] = []
        cluster_first = df.groupby(r.cluster, sort=False).head(1)
        for col in [*r.individual, *r.cluster_covariates]:
            level: Literal["individual", "cluster"] = (
                "cluster" if col in r.cluster_covariates else "individual"
            )
            s = df[col]
            is_cat = self._is_categorical(s, col, level, categorical)
            na = s.isna().to_numpy()
            if na.any() and self.missing == "error":
                ex = first_ids(df, na, self._key)
                raise MissingValueError(
                    f"Column '{col}' ({level} covariate) is missing for {na.sum()} of "
                    f"{len(df)} analysis rows, e.g. {fmt_ids(ex, self._key)}. Impute it, drop "
                    "the covariate, or pass missing='indicator' (numeric: mean fill plus a "
                    f"'{col}_missing' indicator; categorical: level '{MISSING_LEVEL}').",
                    column=col,
                    n_rows=int(na.sum()),
                    examples=ex,
                )
            n_clusters_na = int(cluster_first[col].isna().sum()) if level == "cluster" else None
            if is_cat:
                cov = _categorical_covariate(s, col, level, na, n_clusters_na, imput)
            else:
                _check_finite(df, s, col, level, self._key)
                cov = _numeric_covariate(s, col, level, na, n_clusters_na, cluster_first, imput)
            covariates.append(cov)
        imputations = pd.DataFrame(
            imput,
            columns=["column", "level", "kind", "n_rows", "n_clusters", "filled_with", "added"],
        )
        return covariates, imputations

    @staticmethod
    def _is_categorical(
        s: pd.Series, col: str, level: str, categorical: Sequence[str] | None
    ) -> bool:
        numeric = pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
        if categorical is None:
            return not numeric or isinstance(s.dtype, pd.CategoricalDtype)
        is_cat = col in categorical
        if not is_cat and not numeric:
            raise DataError(
                f"Column '{col}' ({level} covariate) is not numeric (dtype {s.dtype}) "
                "and not listed in categorical=; add it to categorical= or convert it "
                "(pd.to_numeric).",
                column=col,
            )
        return is_cat

    def _store(self, df: pd.DataFrame, y: np.ndarray) -> None:
        """The encoded design, the analysis frame (filled values and indicators) and arrays."""
        cluster, arm = self.roles.cluster, self.roles.arm
        self._encoded = self._encode(df)
        analysis = df.copy()
        for cov in self._covariates:  # the analysis frame carries the filled values + indicators
            na = analysis[cov.name].isna()
            if not na.any():
                continue
            if cov.categorical:
                analysis[cov.name] = analysis[cov.name].astype(object).where(~na, MISSING_LEVEL)
            else:
                analysis[f"{cov.name}_missing"] = na.astype(np.int64)
                analysis[cov.name] = analysis[cov.name].astype(float).fillna(cov.fill)
        self.frame: pd.DataFrame = analysis
        self.y = y
        self.arm = df[arm].to_numpy(dtype=np.int64)
        codes, uniques = pd.factorize(df[cluster], sort=True)
        self.cluster_codes = codes.astype(np.int64)
        self.cluster_values = pd.Index(uniques, name=cluster)
        arm_by = df.groupby(cluster, sort=True)[arm].first()
        self.cluster_arm = arm_by.reindex(self.cluster_values).to_numpy(dtype=np.int64)

    # ------------------------------------------------------------------ helpers
    def _exclusion_key(self) -> list[str]:
        return [self.roles.cluster] + ([self.roles.id] if self.roles.id else [])

    def _exclude(self, df: pd.DataFrame, mask: np.ndarray, reason: str) -> None:
        self._exclusions.append(excluded_rows(df, mask, self._exclusion_key(), reason))

    def _encode(self, frame: pd.DataFrame) -> EncodedDesign:
        blocks: dict[str, list[np.ndarray]] = {"individual": [], "cluster": []}
        names: dict[str, list[str]] = {"individual": [], "cluster": []}
        dup = frame.columns[frame.columns.duplicated()].unique().tolist()
        if dup:
            raise DataError(
                f"The prediction rows have more than one column named {dup[0]!r} (duplicated: "
                f"{dup}); rename or drop the copies so each covariate is one column."
            )
        for cov in self._covariates:  # every column present before any value is checked
            try:
                require_column(frame, cov.name, f"{cov.level} covariate")
            except MissingColumnError as exc:
                raise MissingColumnError(
                    f"{exc} Pass rows with every covariate the model was fitted on "
                    f"({', '.join(c.name for c in self._covariates)}).",
                    column=exc.column,
                ) from None
        for cov in self._covariates:
            s = frame[cov.name]
            na = s.isna().to_numpy()
            flag_col = f"{cov.name}_missing"
            if cov.categorical:
                vals = s.astype(object).to_numpy()
                idx = pd.Index(list(cov.levels), dtype=object).get_indexer(vals)
                has_missing = bool(cov.levels) and cov.levels[-1] == MISSING_LEVEL
                if na.any():
                    if not has_missing:
                        raise MissingValueError(
                            f"Column '{cov.name}' ({cov.level} covariate) has {na.sum()} missing "
                            "value(s), but had none in the fitting data, so there is no "
                            f"'{MISSING_LEVEL}' level to map them to. Impute them first.",
                            column=cov.name,
                            n_rows=int(na.sum()),
                        )
                    idx[na] = len(cov.levels) - 1
                unseen = idx < 0
                if unseen.any():
                    new = _sorted_levels(pd.unique(vals[unseen]))
                    raise UnseenLevelError(
                        f"Column '{cov.name}' ({cov.level} covariate) has level(s) "
                        f"{', '.join(map(repr, new[:5]))} ({unseen.sum()} row(s)) not seen in "
                        f"the fitting data (known levels: {', '.join(map(repr, cov.levels))}). "
                        "Recode them to a known level; a model cannot predict for a level it "
                        "was not fitted on.",
                        column=cov.name,
                        n_rows=int(unseen.sum()),
                        examples=new[:5],
                    )
                onehot = np.zeros((len(frame), len(cov.levels) - 1))
                rows = np.flatnonzero(idx > 0)
                onehot[rows, idx[rows] - 1] = 1.0
                blocks[cov.level].append(onehot)
            else:
                if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
                    raise DataError(
                        f"Column '{cov.name}' ({cov.level} covariate) was numeric in the "
                        f"fitting data but has dtype {s.dtype} here; convert it "
                        "(pd.to_numeric).",
                        column=cov.name,
                    )
                x = s.to_numpy(dtype=float, na_value=np.nan)
                if np.isinf(x).any():
                    k = int(np.isinf(x).sum())
                    raise DataError(
                        f"Column '{cov.name}' ({cov.level} covariate) has {k} infinite "
                        f"value(s) (first at row(s) {list(np.flatnonzero(np.isinf(x))[:5])}); "
                        "replace them with finite values (or NaN, then impute) before "
                        "predicting.",
                        column=cov.name,
                        n_rows=k,
                    )
                if cov.indicator:
                    flag = na.copy()
                    if flag_col in frame.columns:  # a filled frame (e.g. CRTData.frame)
                        flag |= frame[flag_col].fillna(0).to_numpy(dtype=float) == 1.0
                    x = np.where(na, cov.fill, x)
                    blocks[cov.level].append(np.column_stack([x, flag.astype(float)]))
                else:
                    if na.any():
                        raise MissingValueError(
                            f"Column '{cov.name}' ({cov.level} covariate) has {na.sum()} "
                            "missing value(s), but had none in the fitting data (no "
                            f"'{flag_col}' indicator). Impute them first.",
                            column=cov.name,
                            n_rows=int(na.sum()),
                        )
                    blocks[cov.level].append(x[:, None])
            names[cov.level] += cov.columns
        mats = {k: np.hstack(v) if v else np.zeros((len(frame), 0)) for k, v in blocks.items()}
        return EncodedDesign(
            mats["individual"],
            mats["cluster"],
            DesignNames(names["individual"], names["cluster"]),
        )

    # ------------------------------------------------------------------ public API
    def encode(self, frame: pd.DataFrame | None = None) -> EncodedDesign:
        """Covariate matrices ``(X, V, names)`` with the levels and fills learned at construction.

        ``frame=None``: the analysis rows. A new frame (prediction) needs the covariate columns
        only; an unseen categorical level raises :class:`UnseenLevelError`, a missing value where
        the fitting data had none raises :class:`MissingValueError`.
        """
        if frame is None:
            return self._encoded
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"encode needs a pandas DataFrame, got {type(frame).__name__}; pass a DataFrame "
                "with the covariate columns."
            )
        return self._encode(frame)

    @property
    def exclusions(self) -> pd.DataFrame:
        """Every input row removed during validation, with the reason (never silent)."""
        return exclusions_table(self._exclusions, self._exclusion_key())

    @property
    def imputations(self) -> pd.DataFrame:
        """Covariates filled under ``missing='indicator'``: column, rows, fill, added column."""
        return self._imputations.copy()

    @property
    def categorical_levels(self) -> dict[str, tuple]:
        """Levels of each categorical covariate, reference first."""
        return {c.name: c.levels for c in self._covariates if c.categorical}

    @property
    def n_individuals(self) -> int:
        return len(self.frame)

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_values)

    @property
    def clusters_per_arm(self) -> dict[int, int]:
        return {a: int((self.cluster_arm == a).sum()) for a in (0, 1)}

    def cluster_frame(self) -> pd.DataFrame:
        """One row per cluster: arm, size, outcome mean (and baseline mean), cluster covariates."""
        r = self.roles
        df = self.frame
        agg = {
            r.arm: (r.arm, "first"),
            "n": (r.outcome, "size"),
            "outcome_mean": (r.outcome, "mean"),
        }
        if r.baseline is not None:
            agg["baseline_mean"] = (r.baseline, "mean")
        out = df.groupby(r.cluster, sort=True).agg(**agg)
        extra = [c for c in r.cluster_covariates if c in df.columns]
        extra += [f"{c}_missing" for c in r.cluster_covariates if f"{c}_missing" in df.columns]
        if extra:
            out = out.join(df.groupby(r.cluster, sort=True)[extra].first())
        return out.reset_index()

    def describe(self) -> CRTSummary:
        """Clusters per arm, cluster sizes (min / median / max / CV) and the outcome ICC."""
        r = self.roles
        df = self.frame
        rows = []
        for a in (0, 1):
            sub = df[df[r.arm] == a]
            sizes = sub.groupby(r.cluster).size()
            ya = sub[r.outcome].to_numpy(dtype=float)
            row = {
                r.arm: a,
                "clusters": len(sizes),
                "individuals": len(sub),
                "size_min": int(sizes.min()),
                "size_median": float(sizes.median()),
                "size_max": int(sizes.max()),
                "size_cv": round(float(sizes.std(ddof=1) / sizes.mean()), 3),
                "outcome_mean": round(float(ya.mean()), 3),
                "outcome_sd": round(float(ya.std(ddof=1)), 3),
            }
            if r.baseline is not None:
                row["baseline_mean"] = round(float(sub[r.baseline].mean()), 3)
            row["icc"] = round(icc_anova(ya, sub[r.cluster]), 4)
            rows.append(row)
        return CRTSummary(
            arm=r.arm,
            cluster=r.cluster,
            outcome=r.outcome,
            n_individuals=self.n_individuals,
            n_clusters=self.n_clusters,
            by_arm=pd.DataFrame(rows),
            icc=icc_anova(self.y, df[r.cluster]),
            icc_within_arm=icc_anova(self.y, df[r.cluster], group=df[r.arm]),
            exclusions=self.exclusions,
            imputations=self.imputations,
        )

    def __repr__(self) -> str:
        r = self.roles
        return (
            f"<CRTData: {self.n_individuals} individuals in {self.n_clusters} clusters "
            f"({self.clusters_per_arm[0]} control / {self.clusters_per_arm[1]} intervention), "
            f"arm '{r.arm}', outcome '{r.outcome}', {len(r.individual)} individual and "
            f"{len(r.cluster_covariates)} cluster covariate(s)>"
        )


# ---------------------------------------------------------------------------------------------
# module helpers
# ---------------------------------------------------------------------------------------------
def fmt_ids(examples: list[tuple], cols: list[str]) -> str:
    """Like :func:`hte_mrt._util.fmt_ids`, the internal ``_row`` shown as ``row``."""
    return _fmt_ids(examples, ["row" if c == "_row" else c for c in cols])


def _py(v):
    """A numpy scalar as the Python scalar (so levels print as 1, not np.int64(1))."""
    return v.item() if isinstance(v, np.generic) else v


def _sorted_levels(values) -> list:
    vals = [_py(v) for v in values]
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def _check_finite(df: pd.DataFrame, s: pd.Series, col: str, level: str, key: list[str]) -> None:
    """A numeric covariate has no infinite values (DataError naming the column and rows)."""
    x = s.to_numpy(dtype=float, na_value=np.nan)
    inf = np.isinf(x)
    if inf.any():
        ex = first_ids(df, inf, [*key, col])
        raise DataError(
            f"Column '{col}' ({level} covariate) has {inf.sum()} infinite value(s), e.g. "
            f"{fmt_ids(ex, [*key, col])}; replace them with finite values (or NaN with "
            "missing='indicator'), or drop the covariate.",
            column=col,
            n_rows=int(inf.sum()),
            examples=ex,
        )


def _imput_row(
    col: str, level: str, kind: str, na: np.ndarray, n_clusters: int | None, fill
) -> dict:
    return {
        "column": col,
        "level": level,
        "kind": kind,
        "n_rows": int(na.sum()),
        "n_clusters": n_clusters,
        "filled_with": fill,
        "added": f"level '{MISSING_LEVEL}'" if kind == "categorical" else f"{col}_missing",
    }


def _categorical_covariate(
    s: pd.Series, col: str, level: str, na: np.ndarray, n_clusters_na, imput: list[dict]
) -> _Covariate:
    """A categorical covariate: its observed levels, reference first ('missing' last)."""
    obs = s[~na]
    if isinstance(s.dtype, pd.CategoricalDtype):
        seen = set(obs.unique())
        levels = [_py(c) for c in s.cat.categories if c in seen]
    else:
        levels = _sorted_levels(obs.unique())
    if na.any():
        levels.append(MISSING_LEVEL)
        imput.append(_imput_row(col, level, "categorical", na, n_clusters_na, MISSING_LEVEL))
    if len(levels) < 2:
        raise DataError(
            f"Column '{col}' ({level} covariate) has a single level "
            f"{levels[0]!r} in the analysis rows: it carries no information. Drop "
            "it from the covariates.",
            column=col,
        )
    return _Covariate(col, level, True, tuple(levels))  # type: ignore[arg-type]


def _numeric_covariate(
    s: pd.Series,
    col: str,
    level: str,
    na: np.ndarray,
    n_clusters_na,
    cluster_first: pd.DataFrame,
    imput: list[dict],
) -> _Covariate:
    """A numeric covariate: its mean fill (individual: over rows; cluster: over clusters) when
    values are missing, then a ``<col>_missing`` indicator."""
    x = s.to_numpy(dtype=float, na_value=np.nan)
    fill = None
    if na.any():
        if level == "cluster":
            fill = float(np.nanmean(cluster_first[col].to_numpy(dtype=float)))
        else:
            fill = float(np.nanmean(x))
        imput.append(_imput_row(col, level, "numeric", na, n_clusters_na, fill))
        if np.isnan(fill):
            raise MissingValueError(
                f"Column '{col}' ({level} covariate) is missing on every analysis "
                "row; drop it from the covariates.",
                column=col,
                n_rows=int(na.sum()),
            )
    xo = x[~na]
    if len(xo) and np.all(xo == xo[0]):
        raise DataError(
            f"Column '{col}' ({level} covariate) is constant ({xo[0]:g}) in the "
            "analysis rows: it carries no information. Drop it from the covariates.",
            column=col,
        )
    return _Covariate(col, level, False, fill=fill, indicator=bool(na.any()))  # type: ignore[arg-type]
