r"""Calibration test of a CATE learner in a cluster-randomized trial, by repeated sample
splitting ("generic machine learning" inference, Chernozhukov, Demirer, Duflo & Fernandez-Val).

For each split the clusters are halved at random within arm. The learner is fitted to one half
(auxiliary), and on the other half (main) its predictions :math:`\hat\mu` (control-arm mean) and
:math:`S` (CATE) enter the best-linear-predictor regression

.. math::

    y_{ij} - \hat\mu(w_{ij}) - p\,S(w_{ij}) = \alpha + \beta_1 (z_j - p)
        + \beta_2 (z_j - p)\,\{S(w_{ij}) - \bar S\} + \varepsilon_{ij},

with :math:`p` the share of treated clusters in the main half. As :math:`S` depends on the
auxiliary half only and :math:`z_j` is randomized,

.. math::

    \beta_1 = \text{the individual-average ATE (main half)}, \qquad
    \beta_2 = \frac{\operatorname{cov}\{\tau(x, v), S(x, v)\}}{\operatorname{var}\{S(x, v)\}}.

:math:`\beta_2 = 1` when the learner's CATE is calibrated (its heterogeneity neither shrunk nor
exaggerated); :math:`\beta_2 > 0` rejects "no heterogeneity that the learner detects" (one-sided
test of :math:`H_0: \beta_2 \le 0`; a constant CATE gives :math:`\beta_2 = 0`). Standard errors
are cluster-robust with the Mancl-DeRouen correction; t with :math:`K_{main} - 3` df.

Over ``n_splits`` splits the reported estimate is the median, the interval the medians of the
split intervals computed at level :math:`1 - \alpha/2`, and the p-value
:math:`\min(1, 2\,\text{median}(p))`: valid at level :math:`\alpha` (conservative), and free of the
luck of one split. With ``n_splits=1`` the single split's inference is used as it is.

Why not K-fold cross-fitting on all the data: the out-of-fold predictions of fold f come from a
fit to the other folds, whose error is anti-correlated with fold f's own noise; in simulation
this biased :math:`\hat\beta_2` by -0.2 to -1.5 under no heterogeneity. A held-out half has no
such dependence. Checked in ``tests/test_calibration.py`` (OLS learner, 200 simulated trials
per cell): with one split the slope's bias is within Monte Carlo error, its 95% interval
covers the target 0.955-0.969 and the 5% test rejects 0.020 of trials without heterogeneity;
with medians over 5 splits the test rejects 0.005 of them and the intervals cover 0.995-1.0,
and the power at K = 60 falls from 0.21 to 0.095: the price of not depending on one split.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from hte_mrt._contract import check_conf_level
from hte_mrt._util import tqdm
from hte_mrt.data.crt import CRTData
from hte_mrt.errors import DataError, DesignError, EstimationError, HteMrtWarning
from hte_mrt.estimators.learners.base import CRTLearner, check_bool, check_int, check_seed
from hte_mrt.estimators.sandwich import group_crossprod, group_starts, wls_sandwich
from hte_mrt.results.calibration import CalibrationTest


def split_clusters(cluster_arm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half (0: auxiliary, 1: main) of each cluster: clusters shuffled within arm and dealt
    alternately, the second arm continuing where the first stopped (halves differ by at most
    one cluster)."""
    half = np.empty(len(cluster_arm), dtype=np.int64)
    start = 0
    for a in (0, 1):
        idx = rng.permutation(np.flatnonzero(cluster_arm == a))
        half[idx] = (start + np.arange(len(idx))) % 2
        start += len(idx)
    return half


def blp_regression(
    y: np.ndarray, z: np.ndarray, mu: np.ndarray, S: np.ndarray, cluster: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """(beta_1, beta_2), their cluster-robust (Mancl-DeRouen) standard errors and the df
    (clusters - 3) of the regression in the module docstring, on one half. A CATE that is
    constant on the half has no slope: beta_2 and its se are NaN (the ATE from [1, z - p])."""
    codes = np.unique(cluster, return_inverse=True)[1]
    K = int(codes.max()) + 1
    p = float(pd.Series(z).groupby(codes).first().mean())
    d = z - p
    Sc = S - S.mean()
    flat = np.ptp(S) <= 1e-10 * (1.0 + np.abs(S).max())
    D = np.column_stack([np.ones(len(y)), d] + ([] if flat else [d * Sc]))
    order = np.argsort(codes, kind="stable")
    C, b = group_crossprod(D[order], np.ones(len(y)), (y - mu - p * S)[order],
                           group_starts(codes[order]))  # fmt: skip
    theta, cov = wls_sandwich(C, b, small_sample=True)
    est, se = theta[1:], np.sqrt(np.diag(cov)[1:])
    if flat:
        est, se = np.r_[est, np.nan], np.r_[se, np.nan]
    return est, se, K - 3


def calibration_test(
    data: CRTData,
    learner: CRTLearner | None = None,
    *,
    n_splits: int = 10,
    seed: int | None = None,
    conf_level: float = 0.95,
    progress: bool = True,
) -> CalibrationTest:
    r"""Calibration test of a CATE learner: is its heterogeneity real, shrunk or overstated?

    ``n_splits`` fits of a clone of the learner, each to half of the clusters (halved at
    random within arm); on the other half the best-linear-predictor regression of the module
    docstring estimates

    .. math::

        \beta_1 = \text{ATE}, \qquad
        \beta_2 = \frac{\operatorname{cov}\{\tau(x, v), S(x, v)\}}{\operatorname{var}\{S(x, v)\}},

    with :math:`S` the learner's CATE: :math:`\beta_2 = 1` for a calibrated CATE, 0 when the
    learner finds no heterogeneity that is there (one-sided test of :math:`\beta_2 \le 0`).
    Over splits: medians (Chernozhukov, Demirer, Duflo & Fernandez-Val).

    Parameters
    ----------
    data : CRTData
        The trial (at least 4 clusters per arm).
    learner : CRTLearner, optional
        Any CRT learner (fitted or not; clones are fitted here). Default: the package's default
        learner, :class:`BayesianAdditiveMixedModel` at its defaults (as :func:`cate`).
    n_splits : int, default 10
        Random halvings of the clusters (one fit each).
    seed : int, optional
        Seed of the splits and the fits (default: the learner's ``seed``).
    conf_level : float, default 0.95
        Interval level (per-split intervals at :math:`1 - \alpha/2` when medians are taken).
    progress : bool, default True
        Show a progress bar over the splits (the refits' own bars are off).

    Returns
    -------
    CalibrationTest
        ``table()``: one row per term (``ATE``, two-sided test of 0; ``heterogeneity slope``,
        one-sided test of :math:`\beta_2 \le 0`) with ``estimate``, ``se``, ``lcl``, ``ucl``,
        ``df``, ``p``, ``sd_cate``, ``splits``; ``splits`` (every split's estimates); a split
        the learner cannot fit (e.g. a rank-deficient half) is skipped and counted in
        ``failed`` (more than half failing is an error). A split on whose main half the CATE is
        constant has no slope (NaN, p = 1).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
    >>> cal = hm.calibration_test(data, hm.LinearInteraction(), n_splits=3, seed=1,
    ...                           progress=False)
    >>> cal.table()["term"].tolist()
    ['ATE', 'heterogeneity slope']
    >>> cal.table().columns.tolist()[:6]
    ['term', 'estimate', 'se', 'lcl', 'ucl', 'df']
    """
    if isinstance(data, CRTLearner) and isinstance(learner, CRTData):
        raise DesignError(
            "calibration_test takes (data, learner), data first as in hm.cate; got a learner "
            "first: call calibration_test(data, learner)."
        )
    if learner is None:
        from hte_mrt.estimators.learners.bamm import BayesianAdditiveMixedModel

        learner = BayesianAdditiveMixedModel(progress=False)
    if not isinstance(learner, CRTLearner):
        raise DesignError(
            "calibration_test needs a CRT learner (hte_mrt.estimators.learners), got "
            f"{type(learner).__name__}; pass e.g. hm.LinearInteraction() or "
            "hm.BayesianAdditiveMixedModel()."
        )
    if not isinstance(data, CRTData):
        raise DataError(
            f"calibration_test needs a CRTData, got {type(data).__name__}; build one with "
            "CRTData(frame, cluster=..., arm=..., outcome=...)."
        )
    R = check_int("calibration_test", "n_splits", n_splits, 1)
    conf_level = check_conf_level(conf_level)
    check_bool("calibration_test", "progress", progress)
    check_seed("calibration_test", seed)
    learner._check_shared_params()
    if hasattr(learner, "_check_params"):
        learner._check_params()  # before any split is fitted
    if np.ptp(data.y) == 0:
        raise DesignError(
            f"calibration_test: the outcome '{data.roles.outcome}' is constant "
            f"({data.y[0]:g}) in every row, so there is no effect and no heterogeneity to "
            "calibrate against; check the outcome column."
        )
    per_arm = data.clusters_per_arm
    if min(per_arm.values()) < 4:
        raise DesignError(
            f"calibration_test: {per_arm[0]} control and {per_arm[1]} treated clusters; halving "
            "needs at least 4 per arm (2 per arm in each half). Use the learner's intervals "
            "(hm.cate(...)) instead."
        )
    if sum(per_arm.values()) // 2 - 3 < 5:
        warnings.warn(
            f"calibration_test: {sum(per_arm.values())} clusters leave about "
            f"{sum(per_arm.values()) // 2 - 3} df per half; its intervals will be very wide.",
            HteMrtWarning,
            stacklevel=2,
        )
    X, V, names = data.encode()
    W = np.hstack([X, V]).astype(float)
    z, y, codes = data.arm.astype(float), data.y.astype(float), data.cluster_codes
    if seed is None:
        seed = getattr(learner, "seed", None)
    rng = np.random.default_rng(seed)
    # per-split intervals at 1 - alpha/2 when medians are aggregated (Chernozhukov et al.)
    alpha = 1.0 - conf_level
    split_level = 1.0 - alpha / 2 if R > 1 else conf_level
    rows, failed, held_out = [], [], []
    for s in tqdm(range(R), disable=not progress, desc="calibration test", unit="split",
                  leave=False):  # fmt: skip
        main = split_clusters(data.cluster_arm, rng)[codes] == 1
        aux = ~main
        m = learner._quiet_clone()
        m.feature_names_ = [*names.individual, *names.cluster]  # as fit() sets them
        m.n_individual_ = X.shape[1]
        fit_rng = np.random.default_rng(rng.integers(2**63))
        try:
            m._fit(W[aux], z[aux], y[aux], np.unique(codes[aux], return_inverse=True)[1], fit_rng)
            mu, S = m._mu(W[main]), m._tau(W[main])
            if not (np.isfinite(mu).all() and np.isfinite(S).all()):
                raise EstimationError("non-finite predictions on the main half")
            est, se, df = blp_regression(y[main], z[main], mu, S, codes[main])
        except EstimationError as exc:
            failed.append((s, str(exc)))
            continue
        held_out.append((s, np.flatnonzero(main), S))
        crit = stats.t.ppf(0.5 + split_level / 2, df)
        t = est / se
        p_slope = 1.0 if np.isnan(t[1]) else stats.t.sf(t[1], df)
        pv = (2 * stats.t.sf(abs(t[0]), df), p_slope)
        for k, term in enumerate(("ATE", "heterogeneity slope")):
            rows.append({"split": s, "term": term, "estimate": est[k], "se": se[k],
                         "lcl": est[k] - crit * se[k], "ucl": est[k] + crit * se[k],
                         "df": df, "p": pv[k], "sd_cate": float(S.std())})  # fmt: skip
    if len(failed) * 2 > R:
        raise EstimationError(
            f"calibration_test: {type(learner).__name__} could not be fitted on {len(failed)} "
            f"of {R} half-samples (first: {failed[0][1]}); the trial is too small for it."
        )
    return CalibrationTest(
        splits=pd.DataFrame(rows), conf_level=conf_level, learner=learner.name, n_splits=R,
        failed=failed, held_out=held_out,
    )  # fmt: skip
