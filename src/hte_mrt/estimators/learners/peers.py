r"""Adapters for peer packages a trial statistician might use instead (for the simulation study).

:class:`EconMLCausalForest` wraps econml's ``CausalForestDML`` (Athey, Tibshirani & Wager 2019
generalized random forest on doubly-robust residuals) with ``groups`` = cluster, so that the
cross-fitting folds and the forest's subsamples are formed at the cluster level. It has no
random intercept: the clustering enters only through the grouped resampling. Its CATE estimand
is the same :math:`\tau(x, v) = E[Y(1) - Y(0) \mid x, v]`. Point predictions only here (the
econml intervals are not used by the study); cluster-bootstrap intervals via ``n_boot``.

The other peers named in the study are already learners: stochtree's BCF with random effects
(:class:`~hte_mrt.estimators.learners.bart.StochtreeBCF`) and GPBoost's S-learner
(:class:`~hte_mrt.estimators.learners.mixed_trees.GPBoostLearner`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hte_mrt.errors import DesignError
from hte_mrt.estimators.learners.base import CRTLearner, check_int


class EconMLCausalForest(CRTLearner):
    r"""econml ``CausalForestDML`` (discrete treatment, known-propensity-free DML nuisance
    models: gradient boosting for y, a classifier for z), grouped by cluster.

    Estimand :math:`\tau(x, v) = E[Y(1) - Y(0) \mid x, v]` from a generalized random forest on
    doubly robust residuals; no random intercept (the clusters only group the cross-fitting
    folds and the forest's subsamples).

    Parameters
    ----------
    n_estimators : int, default 400
        Trees of the causal forest (a positive multiple of 4).
    min_samples_leaf : int, default 5
        Minimum rows per leaf.
    cv : int, default 4
        Cross-fitting folds of the nuisance models (formed by cluster).
    n_boot, n_jobs, seed, progress
        Cluster-bootstrap replicates (0: none), joblib workers (bootstrap and econml), seed,
        and whether the bootstrap shows a progress bar.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> hm.EconMLCausalForest(n_estimators=100, seed=1).get_params()["n_estimators"]
    100
    """

    name: ClassVar[str] = "econml_cf"

    def __init__(
        self,
        n_estimators: int = 400,
        min_samples_leaf: int = 5,
        cv: int = 4,
        n_boot: int = 0,
        n_jobs: int | None = 1,
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.cv = cv
        self.n_boot = n_boot
        self.n_jobs = n_jobs
        self.seed = seed
        self.progress = progress

    def _check_params(self) -> None:
        owner = type(self).__name__
        n = check_int(owner, "n_estimators", self.n_estimators, 4)
        if n % 4:
            raise DesignError(
                f"{owner}: n_estimators must be a positive multiple of 4, got {n}; pass e.g. "
                f"n_estimators={4 * max(1, round(n / 4))}."
            )
        check_int(owner, "min_samples_leaf", self.min_samples_leaf, 1)
        check_int(owner, "cv", self.cv, 2)

    def _fit(self, W, z, y, cluster, rng) -> None:
        self._check_params()
        try:
            from econml.dml import CausalForestDML
        except ImportError as e:  # pragma: no cover - optional peer
            raise DesignError("EconMLCausalForest needs econml: pip install econml.") from e
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        seed = int(rng.integers(2**31))
        model = CausalForestDML(
            model_y=HistGradientBoostingRegressor(max_iter=100, random_state=seed),
            model_t=HistGradientBoostingClassifier(max_iter=50, random_state=seed),
            discrete_treatment=True,
            n_estimators=int(self.n_estimators),
            min_samples_leaf=int(self.min_samples_leaf),
            cv=int(self.cv),
            n_jobs=self.n_jobs,
            inference=False,  # no bootstrap-of-little-bags variance: point estimates only
            random_state=seed,
        )
        model.fit(y, z.astype(int), X=W, groups=cluster)
        self.model_ = model
        # the control-arm mean for predict_outcome: a plain regression on the control rows
        ctrl = z == 0
        self.mu_model_ = HistGradientBoostingRegressor(max_iter=100, random_state=seed).fit(
            W[ctrl], y[ctrl]
        )

    def _tau(self, W: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.effect(W), dtype=float).ravel()

    def _mu(self, W: np.ndarray) -> np.ndarray:
        return self.mu_model_.predict(W)
