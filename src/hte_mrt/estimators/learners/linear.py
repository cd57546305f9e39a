r"""A reference learner: the linear-interaction S-learner (ordinary least squares).

With :math:`W = (x, v)` the encoded covariates (one-hot categorical levels, no intercept),

.. math:: E[Y \mid W, z] = \alpha_0 + W^\top\alpha + z\,(\beta_0 + W^\top\beta),

fitted by least squares (``numpy.linalg.lstsq`` on the normal equations; all-zero columns get
coefficient 0 and are listed in ``unidentified_``; any other rank deficiency raises
:class:`~hte_mrt.errors.EstimationError`), ignoring the clustering; so
:math:`\hat\tau(W) = \hat\beta_0 + W^\top\hat\beta` and
:math:`\hat\mu(W) = \hat\alpha_0 + W^\top\hat\alpha`. The estimates are unbiased when the
true control mean and CATE are linear in :math:`W` (the random intercept only inflates the
variance). Intervals come from the cluster bootstrap of
:class:`~hte_mrt.estimators.learners.base.CRTLearner`
(``n_boot`` resamples of clusters within arm).
"""

from __future__ import annotations

import numpy as np

from hte_mrt.errors import EstimationError
from hte_mrt.estimators.learners.base import CRTLearner


class LinearInteraction(CRTLearner):
    r"""OLS of y on :math:`[1, W, z, zW]`: a correctly specified model for linear mu and tau.

    Estimand: :math:`\tau(W) = \beta_0 + W^\top\beta` (see the module docstring), marginal
    over the cluster intercept, which OLS ignores (it only inflates the variance).

    Parameters
    ----------
    n_boot : int, default 0
        Cluster-bootstrap resamples for intervals (0: point estimates only; 200 or more for
        reported intervals).
    n_jobs : int, optional
        joblib workers for the bootstrap.
    seed : int, optional
        Seed of the bootstrap (same seed, same replicates).
    progress : bool, default True
        Show a progress bar during the bootstrap.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
    >>> res = hm.LinearInteraction(n_boot=50, seed=1, progress=False).fit(data).cate()
    >>> print(res.summary())
    CATE of linear (cluster-bootstrap percentile intervals)
    individuals: 797, clusters: 32, replicates: 50, conf_level: 95%
                       quantity  estimate      se     lcl      ucl  pr_positive
       ATE (individual-average)   -0.2497  0.1085 -0.5138 -0.08564            0
          ATE (cluster-average)   -0.2576  0.1084 -0.5202 -0.09381            0
    sd of CATE over individuals    0.4146 0.08630  0.2949   0.6008        1.000
    Note: Bootstrap intervals carry the learner's sampling variance, not its bias: ...
    """

    name = "linear"

    def __init__(
        self,
        n_boot: int = 0,
        n_jobs: int | None = None,
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        self.n_boot = n_boot
        self.n_jobs = n_jobs
        self.seed = seed
        self.progress = progress

    def _fit(self, W, z, y, cluster, rng) -> None:
        n, p = W.shape
        z = np.asarray(z, dtype=float)
        X = np.hstack([np.ones((n, 1)), W, z[:, None], z[:, None] * W])
        # lstsq on the normal equations: the same minimum-norm least-squares solution
        # (pinv(X'X) X'y = pinv(X) y), an order of magnitude faster for n >> p
        # a column that is zero in every row (e.g. a missing-value indicator seen only in the
        # control arm, times z) has no information: its coefficient is fixed at 0 and listed
        keep = np.any(X != 0, axis=0)
        self.unidentified_ = [int(k) for k in np.flatnonzero(~keep)]
        Xk = X[:, keep]
        ck, _, rank, _ = np.linalg.lstsq(Xk.T @ Xk, Xk.T @ np.asarray(y, dtype=float), rcond=None)
        if rank < Xk.shape[1]:
            # e.g. a cluster bootstrap resample in which a cluster covariate no longer varies
            # within an arm: the interaction is not identified, so refuse rather than guess
            raise EstimationError(
                f"LinearInteraction: the design [1, W, z, zW] has rank {rank} < {Xk.shape[1]} "
                "non-zero columns; drop covariates that are collinear within an arm."
            )
        coef = np.zeros(X.shape[1])
        coef[keep] = ck
        self.coef_ = coef
        self.n_features_ = p

    def _tau(self, W: np.ndarray) -> np.ndarray:
        p = self.n_features_
        return self.coef_[p + 1] + W @ self.coef_[p + 2 :]

    def _mu(self, W: np.ndarray) -> np.ndarray:
        p = self.n_features_
        return self.coef_[0] + W @ self.coef_[1 : p + 1]
