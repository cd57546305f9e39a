r"""A reference learner: the linear-interaction S-learner (ordinary least squares).

With :math:`W = (x, v)` the encoded covariates (one-hot categorical levels, no intercept),

.. math:: E[Y \mid W, z] = \alpha_0 + W^\top\alpha + z\,(\beta_0 + W^\top\beta),

fitted by least squares (``numpy.linalg.lstsq`` on the normal equations, minimum-norm if the
design is rank deficient), ignoring the clustering; so
:math:`\hat\tau(W) = \hat\beta_0 + W^\top\hat\beta` and
:math:`\hat\mu(W) = \hat\alpha_0 + W^\top\hat\alpha`. The estimates are unbiased when the
true control mean and CATE are linear in :math:`W` (the random intercept only inflates the
variance). Intervals come from the cluster bootstrap of
:class:`~hte_mrt.estimators.learners.base.CRTLearner`
(``n_boot`` resamples of clusters within arm).
"""

from __future__ import annotations

import numpy as np

from hte_mrt.estimators.learners.base import CRTLearner


class LinearInteraction(CRTLearner):
    """OLS of y on [1, W, z, z W]: a correctly specified model for linear mu and tau.

    Parameters
    ----------
    n_boot
        Cluster-bootstrap resamples for intervals (0: point estimates only).
    n_jobs
        joblib workers for the bootstrap.
    random_state
        Seed of the bootstrap.
    """

    name = "linear"

    def __init__(self, n_boot: int = 0, n_jobs: int | None = None, random_state=None) -> None:
        self.n_boot = n_boot
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, W, z, y, cluster, rng) -> None:
        n, p = W.shape
        z = np.asarray(z, dtype=float)
        X = np.hstack([np.ones((n, 1)), W, z[:, None], z[:, None] * W])
        # lstsq on the normal equations: the same minimum-norm least-squares solution
        # (pinv(X'X) X'y = pinv(X) y), an order of magnitude faster for n >> p
        coef, *_ = np.linalg.lstsq(X.T @ X, X.T @ np.asarray(y, dtype=float), rcond=None)
        self.coef_ = coef
        self.n_features_ = p

    def _tau(self, W: np.ndarray) -> np.ndarray:
        p = self.n_features_
        return self.coef_[p + 1] + W @ self.coef_[p + 2 :]

    def _mu(self, W: np.ndarray) -> np.ndarray:
        p = self.n_features_
        return self.coef_[0] + W @ self.coef_[1 : p + 1]
