r"""Tree S-learners with a cluster random intercept: MERF, mixed-effects boosting, GPBoost.

All three fit the semiparametric mixed model

.. math:: Y_{ij} = f(w_{ij}, z_j) + b_j + e_{ij}, \qquad b_j \sim N(0, \sigma_b^2), \quad
   e_{ij} \sim N(0, \sigma^2),

with :math:`w_{ij} = (x_{ij}, v_j)` and the arm :math:`z_j` one more feature of the tree
ensemble :math:`f` (an S-learner). The CATE, marginal over :math:`b_j` (so defined for clusters
never seen), and the control-arm mean are

.. math:: \tau(w) = f(w, 1) - f(w, 0), \qquad \mu(w) = f(w, 0):

predictions always use :math:`b = 0`, whatever the cluster of the prediction rows.

* :class:`MixedEffectsRandomForest` (``"merf"``): the EM algorithm of Hajjem, Bellavance &
  Larocque (2014, J Stat Comput Simul 84:1313) around scikit-learn's random forest.
* :class:`MixedEffectsHistGB` (``"merf_hgb"``): the same EM around histogram gradient boosting.
* :class:`GPBoostLearner` (``"gpboost"``): gpboost's joint tree boosting and grouped random
  effect (Sigrist 2022, JMLR 23:1).

Intervals: cluster bootstrap (``n_boot``), from :class:`~hte_mrt.estimators.learners.base.
CRTLearner`.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np

from hte_mrt.errors import DesignError, EstimationError
from hte_mrt.estimators.learners.base import CRTLearner, check_int

_SEED_MAX = 2**31 - 1  # integer seeds handed to sklearn / gpboost


# ---------------------------------------------------------------------------------------------
# parameter checks
# ---------------------------------------------------------------------------------------------
def _check_positive(owner: str, name: str, value: Any, upper: float | None = None) -> None:
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and value > 0 and (upper is None or value <= upper)
    if not ok:
        rng = f"in (0, {upper:g}]" if upper is not None else "> 0"
        raise DesignError(
            f"{owner}: {name} must be a number {rng}, got {value!r}; pass a number such as "
            f"{name}={upper if upper is not None else 0.1:g}."
        )


def _check_common(learner: CRTLearner) -> None:
    owner = type(learner).__name__
    check_int(owner, "n_boot", learner.n_boot, 0)
    nj = learner.n_jobs
    if nj is not None and (isinstance(nj, bool) or not isinstance(nj, Integral) or nj == 0):
        raise DesignError(
            f"{owner}: n_jobs must be None or a nonzero integer (joblib: -1 = all cores), "
            f"got {nj!r}; pass e.g. n_jobs=1 or n_jobs=-1."
        )


def _single_thread() -> Any:
    """OpenMP limited to one thread: on trial-sized data threads cost more than they save (and
    oversubscribe the cores under the parallel bootstrap)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _with_arm(W: np.ndarray, z: float | np.ndarray) -> np.ndarray:
    """The S-learner design [W, z]."""
    return np.column_stack([W, np.broadcast_to(np.asarray(z, float), (len(W),))])


# ---------------------------------------------------------------------------------------------
# EM for a random intercept around any regressor (Hajjem et al. 2014, q = 1)
# ---------------------------------------------------------------------------------------------
def _anova_start(r: np.ndarray, cluster: np.ndarray, n_j: np.ndarray) -> tuple[float, float]:
    """Starting (sigma^2, sigma_b^2): one-way ANOVA moments of the first-pass residuals."""
    K, N = len(n_j), len(r)
    total = float(np.var(r)) or 1.0
    mean_j = np.bincount(cluster, r, minlength=K) / n_j
    ssw = float(((r - mean_j[cluster]) ** 2).sum())
    ssb = float((n_j * (mean_j - r.mean()) ** 2).sum())
    msw = ssw / max(N - K, 1)
    msb = ssb / max(K - 1, 1)
    n0 = (N - (n_j**2).sum() / N) / max(K - 1, 1)
    s2 = max(msw, 1e-3 * total)
    # a floor keeps EM (slow when sigma_b^2 starts near 0) moving
    d = max((msb - msw) / n0, 0.01 * total)
    return s2, d


def _em_random_intercept(
    fit_fixed: Callable[[np.ndarray], tuple[Any, np.ndarray]],
    y: np.ndarray,
    cluster: np.ndarray,
    max_em_iter: int,
    tol: float,
) -> dict[str, Any]:
    r"""EM of a random-intercept mixed model with a nonparametric fixed part.

    ``fit_fixed(target)`` fits the fixed part to ``target`` and returns ``(model, fhat)``, the
    fitted values used for the residuals (out-of-bag for MERF). Iteration r:

    (a) fit :math:`f` to :math:`y_{ij} - b_j`, residuals :math:`r_{ij} = y_{ij} - \hat f_{ij}`;
    (b) E-step: :math:`b_j = E[b_j \mid r] = \frac{n_j\sigma_b^2}{\sigma^2 + n_j\sigma_b^2}
        \bar r_j`, with :math:`v_j = \mathrm{Var}(b_j \mid r) =
        \frac{\sigma_b^2\sigma^2}{\sigma^2 + n_j\sigma_b^2}`;
    (c) M-step: :math:`\sigma^2 = \frac1N\sum_j(\lVert r_j - b_j\rVert^2 + n_j v_j)`,
        :math:`\sigma_b^2 = \frac1K\sum_j(b_j^2 + v_j)`;

    until the generalized log-likelihood :math:`-\frac12\mathrm{GLL}`,
    :math:`\mathrm{GLL} = \sum_j [\lVert r_j - b_j\rVert^2/\sigma^2 + b_j^2/\sigma_b^2 +
    \log\sigma_b^2 + n_j\log\sigma^2]`, changes by less than ``tol`` (relative).
    """
    K = int(cluster.max()) + 1
    n_j = np.bincount(cluster, minlength=K).astype(float)
    N = len(y)
    floor = 1e-8 * (float(np.var(y)) or 1.0)
    b = np.zeros(K)
    s2 = d = None
    trace: list[float] = []
    converged = False
    model = None
    for _ in range(max_em_iter):
        model, fhat = fit_fixed(y - b[cluster])  # (a)
        r = y - fhat
        if s2 is None:
            s2, d = _anova_start(r, cluster, n_j)
        rbar = np.bincount(cluster, r, minlength=K) / n_j
        b = d * n_j / (s2 + n_j * d) * rbar  # (b) BLUP given the current components
        v = d * s2 / (s2 + n_j * d)
        eps = r - b[cluster]
        ss = float(eps @ eps)
        s2 = max((ss + float((n_j * v).sum())) / N, floor)  # (c)
        d = max((float(b @ b) + float(v.sum())) / K, floor)
        gll = ss / s2 + float(b @ b) / d + K * np.log(d) + N * np.log(s2)
        if not np.isfinite(gll):
            raise EstimationError(
                "mixed-effects EM: the log-likelihood is not finite (sigma^2 = "
                f"{s2:.3g}, sigma_b^2 = {d:.3g}); check the outcome for extreme values."
            )
        trace.append(-0.5 * gll)
        if len(trace) > 1 and abs(trace[-1] - trace[-2]) <= tol * abs(trace[-1]):
            converged = True
            break
    return {
        "model": model,
        "sigma2": s2,
        "sigma_b2": d,
        "b": b,
        "trace": np.asarray(trace),
        "converged": converged,
    }


class _MixedEMLearner(CRTLearner):
    """Shared EM plumbing; subclasses give ``_check_params`` and ``_fit_fixed``."""

    def _check_params(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_fixed(self, X: np.ndarray, target: np.ndarray, seed: int) -> tuple[Any, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _fit(
        self,
        W: np.ndarray,
        z: np.ndarray,
        y: np.ndarray,
        cluster: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        self._check_params()
        Wz = _with_arm(W, z)
        seed = int(rng.integers(_SEED_MAX))  # one seed: every EM pass grows the same ensemble
        out = _em_random_intercept(
            lambda target: self._fit_fixed(Wz, target, seed),
            np.asarray(y, float),
            np.asarray(cluster, np.int64),
            self.max_em_iter,
            self.tol,
        )
        self.model_ = out["model"]
        self.sigma2_ = out["sigma2"]
        self.sigma_b2_ = out["sigma_b2"]
        self.cluster_effects_ = out["b"]
        self.loglik_trace_ = out["trace"]
        self.n_iter_ = len(out["trace"])
        self.converged_ = out["converged"]

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X)

    def _tau(self, W: np.ndarray) -> np.ndarray:
        return self._predict(_with_arm(W, 1.0)) - self._predict(_with_arm(W, 0.0))

    def _mu(self, W: np.ndarray) -> np.ndarray:
        return self._predict(_with_arm(W, 0.0))


# ---------------------------------------------------------------------------------------------
# MERF
# ---------------------------------------------------------------------------------------------
class MixedEffectsRandomForest(_MixedEMLearner):
    r"""Mixed-effects random forest (MERF; Hajjem, Bellavance & Larocque 2014) S-learner.

    Model :math:`Y_{ij} = f(x_{ij}, v_j, z_j) + b_j + e_{ij}` with :math:`b_j \sim
    N(0, \sigma_b^2)`, :math:`e_{ij} \sim N(0, \sigma^2)` and :math:`f` a random forest fitted
    by EM: (a) the forest is grown on :math:`y_{ij} - b_j`; (b) :math:`b_j = E[b_j \mid
    \text{resid}] = \frac{n_j\sigma_b^2}{\sigma^2 + n_j\sigma_b^2}\,\overline{\text{resid}}_j`;
    (c) :math:`\sigma^2, \sigma_b^2` by the EM formulas with the conditional-variance terms;
    until the generalized log-likelihood changes by less than ``tol`` (relative) or after
    ``max_em_iter`` passes. Estimand:

    .. math:: \tau(x, v) = f(x, v, 1) - f(x, v, 0),

    marginal over :math:`b_j` (new clusters get :math:`b = 0`).

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features
        Passed to :class:`sklearn.ensemble.RandomForestRegressor` (``max_features``: a fraction
        in (0, 1], a count, ``"sqrt"`` or ``"log2"``; 1.0 keeps the arm a candidate at every
        split).
    max_em_iter, tol
        EM passes (each grows a forest) and the relative change of the log-likelihood at which
        EM stops.
    oob
        Residuals for the E-step from out-of-bag predictions (default, as in the authors' R
        code: in-sample forest predictions nearly interpolate and shrink the variance
        components) or, with ``False``, from in-sample predictions.
    n_boot, n_jobs, seed, progress
        Cluster-bootstrap replicates for intervals (0: none), joblib workers for the bootstrap
        and the forest (``RandomForestRegressor(n_jobs=...)``), seed, and whether the
        bootstrap shows a progress bar.

    Attributes
    ----------
    sigma_b2_, sigma2_ : float
        The variance components (after ``fit``).
    cluster_effects_ : numpy.ndarray
        :math:`b_j` by cluster code (order of ``data_.cluster_values``).
    loglik_trace_ : numpy.ndarray
        :math:`-\frac12` GLL per EM pass (it rises, then hovers within a fraction of a
        percent: the forest is regrown every pass, so EM's monotonicity holds only
        approximately).
    n_iter_, converged_ : int, bool
        EM passes and whether ``tol`` was met.
    model_ : sklearn.ensemble.RandomForestRegressor
        The final forest.

    Notes
    -----
    As an S-learner the forest splits on the arm only where that pays, so a small effect is
    shrunk toward 0. In the package's CRT study (``benchmarks/results/crt_study/
    references.md``, 200 replicates per scenario) its mean ATE sat 82-95% of the way from the
    truth to 0 and its PEHE was only 3-11% below that of :math:`\hat\tau \equiv 0`: a
    low PEHE here says little about the effect. The EM gradient-boosting learner shrinks less
    (33-52%).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
    >>> m = hm.MixedEffectsRandomForest(n_estimators=50, max_em_iter=3, seed=1).fit(data)
    >>> round(float(m.ate()["estimate"]), 2), m.n_iter_
    (-0.03, 3)
    """

    name: ClassVar[str] = "merf"

    def __init__(
        self,
        n_estimators: int = 300,
        min_samples_leaf: int = 5,
        max_features: float | int | str | None = 1.0,
        max_em_iter: int = 20,
        tol: float = 1e-4,
        oob: bool = True,
        n_boot: int = 0,
        n_jobs: int | None = None,
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_em_iter = max_em_iter
        self.tol = tol
        self.oob = oob
        self.n_boot = n_boot
        self.n_jobs = n_jobs
        self.seed = seed
        self.progress = progress

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_int(owner, "n_estimators", self.n_estimators, 1)
        check_int(owner, "min_samples_leaf", self.min_samples_leaf, 1)
        check_int(owner, "max_em_iter", self.max_em_iter, 1)
        _check_positive(owner, "tol", self.tol)
        mf = self.max_features
        if isinstance(mf, str):
            ok = mf in ("sqrt", "log2")
        elif isinstance(mf, Integral) and not isinstance(mf, bool):
            ok = mf >= 1
        elif isinstance(mf, Real) and not isinstance(mf, bool):
            ok = 0 < mf <= 1
        else:
            ok = mf is None
        if not ok:
            raise DesignError(
                f"{owner}: max_features must be a fraction in (0, 1], a count >= 1, 'sqrt', "
                f"'log2' or None, got {mf!r}; pass one of those (default 1.0)."
            )
        if self.oob and self.n_estimators < 20:
            raise DesignError(
                f"{owner}: oob=True needs n_estimators >= 20 so that every row has out-of-bag "
                f"trees (got {self.n_estimators}); grow more trees or pass oob=False."
            )
        _check_common(self)

    def _fit_fixed(self, X: np.ndarray, target: np.ndarray, seed: int) -> tuple[Any, np.ndarray]:
        from sklearn.ensemble import RandomForestRegressor

        rf = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            oob_score=bool(self.oob),
            n_jobs=self.n_jobs,
            random_state=seed,
        ).fit(X, target)
        return rf, rf.oob_prediction_ if self.oob else rf.predict(X)


# ---------------------------------------------------------------------------------------------
# Mixed-effects histogram gradient boosting
# ---------------------------------------------------------------------------------------------
class MixedEffectsHistGB(_MixedEMLearner):
    r"""Mixed-effects gradient boosting S-learner: the MERF EM around histogram boosting.

    Model :math:`Y_{ij} = f(x_{ij}, v_j, z_j) + b_j + e_{ij}` with :math:`f` a
    :class:`sklearn.ensemble.HistGradientBoostingRegressor` on :math:`[x, v, z]` (the arm a
    feature, so trees learn its interactions), :math:`b_j \sim N(0, \sigma_b^2)`, fitted by
    the EM of :class:`MixedEffectsRandomForest` with in-sample fitted values for the residuals
    (boosting has no out-of-bag predictions). Estimand
    :math:`\tau(x, v) = f(x, v, 1) - f(x, v, 0)`, marginal over :math:`b_j`.

    Parameters
    ----------
    learning_rate, n_estimators, max_leaf_nodes, min_samples_leaf
        Passed to :class:`~sklearn.ensemble.HistGradientBoostingRegressor` (``n_estimators``:
        the number of trees, its ``max_iter``; no early stopping).
    max_em_iter, tol
        EM passes and the relative change of the log-likelihood at which EM stops.
    n_boot, n_jobs, seed, progress
        Cluster-bootstrap replicates (0: none), joblib workers for the bootstrap, seed, and
        whether the bootstrap shows a progress bar. Each boosting fit runs on one OpenMP thread
        (trial-sized data: threads cost more than they save).

    Attributes: as :class:`MixedEffectsRandomForest` (``sigma_b2_``, ``sigma2_``,
    ``cluster_effects_``, ``loglik_trace_``, ``n_iter_``, ``converged_``, ``model_``).
    In-sample residuals make ``sigma2_`` smaller than the noise variance.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
    >>> m = hm.MixedEffectsHistGB(n_estimators=50, max_em_iter=3, seed=1).fit(data)
    >>> round(float(m.ate()["estimate"]), 2)
    -0.05
    """

    name: ClassVar[str] = "merf_hgb"

    def __init__(
        self,
        learning_rate: float = 0.05,
        n_estimators: int = 300,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        max_em_iter: int = 10,
        tol: float = 1e-4,
        n_boot: int = 0,
        n_jobs: int | None = None,
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.max_em_iter = max_em_iter
        self.tol = tol
        self.n_boot = n_boot
        self.n_jobs = n_jobs
        self.seed = seed
        self.progress = progress

    def _check_params(self) -> None:
        owner = type(self).__name__
        _check_positive(owner, "learning_rate", self.learning_rate)
        check_int(owner, "n_estimators", self.n_estimators, 1)
        check_int(owner, "max_leaf_nodes", self.max_leaf_nodes, 2)
        check_int(owner, "min_samples_leaf", self.min_samples_leaf, 1)
        check_int(owner, "max_em_iter", self.max_em_iter, 1)
        _check_positive(owner, "tol", self.tol)
        _check_common(self)

    def _fit_fixed(self, X: np.ndarray, target: np.ndarray, seed: int) -> tuple[Any, np.ndarray]:
        from sklearn.ensemble import HistGradientBoostingRegressor

        hgb = HistGradientBoostingRegressor(
            learning_rate=self.learning_rate,
            max_iter=self.n_estimators,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            early_stopping=False,
            random_state=seed,
        )
        with _single_thread():
            hgb.fit(X, target)
            return hgb, hgb.predict(X)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        with _single_thread():
            return self.model_.predict(X)


# ---------------------------------------------------------------------------------------------
# GPBoost
# ---------------------------------------------------------------------------------------------
class GPBoostLearner(CRTLearner):
    r"""GPBoost S-learner: tree boosting jointly with a grouped (cluster) random intercept.

    Model :math:`Y_{ij} = f(x_{ij}, v_j, z_j) + b_j + e_{ij}`, :math:`b_j \sim
    N(0, \sigma_b^2)`, with :math:`f` boosted trees and the variance components re-estimated
    at every boosting round (Sigrist 2022; ``gpboost.GPModel(group_data=cluster)`` with
    ``gpboost.train``). Estimand :math:`\tau(x, v) = f(x, v, 1) - f(x, v, 0)` from the tree
    ensemble alone (the "fixed_effect" part of ``predict``), i.e. :math:`b = 0`.

    Parameters
    ----------
    n_estimators, learning_rate, max_depth, min_data_in_leaf
        Boosting parameters (``n_estimators``: boosting rounds, gpboost's
        ``num_boost_round``; ``num_leaves`` is ``2**max_depth``).
    n_boot, n_jobs, seed, progress
        Cluster-bootstrap replicates (0: none), joblib workers for the bootstrap, seed, and
        whether the bootstrap shows a progress bar. Each fit runs gpboost on one thread
        (trial-sized data: threads cost more than they save).

    Attributes (after ``fit``): ``sigma_b2_``, ``sigma2_`` (gpboost's estimates),
    ``booster_``, ``gp_model_`` (``None`` in a pickled copy, e.g. a bootstrap fit returned by
    a joblib worker: gpboost's model holds a C pointer; predictions need only ``booster_``).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
    >>> m = hm.GPBoostLearner(n_estimators=50, seed=1).fit(data)
    >>> round(float(m.ate()["estimate"]), 2), round(m.sigma_b2_, 2)
    (-0.01, 0.1)
    """

    name: ClassVar[str] = "gpboost"

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 5,
        min_data_in_leaf: int = 20,
        n_boot: int = 0,
        n_jobs: int | None = None,
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_data_in_leaf = min_data_in_leaf
        self.n_boot = n_boot
        self.n_jobs = n_jobs
        self.seed = seed
        self.progress = progress

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_int(owner, "n_estimators", self.n_estimators, 1)
        _check_positive(owner, "learning_rate", self.learning_rate)
        check_int(owner, "max_depth", self.max_depth, 1)
        if self.max_depth > 16:
            raise DesignError(
                f"{owner}: max_depth must be <= 16, got {self.max_depth}; pass e.g. max_depth=5."
            )
        check_int(owner, "min_data_in_leaf", self.min_data_in_leaf, 1)
        _check_common(self)

    def _fit(
        self,
        W: np.ndarray,
        z: np.ndarray,
        y: np.ndarray,
        cluster: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        self._check_params()
        try:
            import gpboost as gpb
        except ImportError as e:  # pragma: no cover - optional dependency
            raise EstimationError(
                "GPBoostLearner needs the gpboost package: pip install gpboost."
            ) from e
        seed = int(rng.integers(_SEED_MAX))
        threads = 1  # trial-sized data; an explicit count also silences gpboost's thread notice
        gp_model = gpb.GPModel(
            group_data=np.asarray(cluster, np.int64),
            likelihood="gaussian",
            seed=seed,
            num_parallel_threads=threads,
        )
        params = {
            "objective": "regression_l2",
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "num_leaves": 2**self.max_depth,
            "min_data_in_leaf": self.min_data_in_leaf,
            "seed": seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": threads,
            "verbose": -1,
        }
        train = gpb.Dataset(_with_arm(W, z), label=np.asarray(y, float))
        try:
            self.booster_ = gpb.train(
                params=params,
                train_set=train,
                gp_model=gp_model,
                num_boost_round=self.n_estimators,
                verbose_eval=False,
            )
        except Exception as e:  # gpboost raises its own GPBoostError / ValueError
            raise EstimationError(f"GPBoostLearner: gpboost failed to fit: {e}") from e
        self.gp_model_ = gp_model
        cov = gp_model.get_cov_pars()  # DataFrame: Error_var, Group_1
        self.sigma2_ = float(np.asarray(cov).ravel()[0])
        self.sigma_b2_ = float(np.asarray(cov).ravel()[1])

    def __getstate__(self) -> dict:
        # gpboost's GPModel holds a C pointer and cannot be pickled (joblib workers return
        # bootstrap fits this way); predictions need only the booster, which pickles itself
        state = self.__dict__.copy()
        if state.get("gp_model_") is not None:
            state["gp_model_"] = None
        return state

    def _f(self, W: np.ndarray, z: float) -> np.ndarray:
        # the tree ensemble only (= predict(...)["fixed_effect"]): b = 0 for every row
        return np.asarray(
            self.booster_.predict(_with_arm(W, z), ignore_gp_model=True, pred_latent=True), float
        )

    def _tau(self, W: np.ndarray) -> np.ndarray:
        return self._f(W, 1.0) - self._f(W, 0.0)

    def _mu(self, W: np.ndarray) -> np.ndarray:
        return self._f(W, 0.0)
