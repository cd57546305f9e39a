"""CATE learners for cluster-randomized trials (one contract: :class:`CRTLearner`).

Heavy backends (pymc, pymc-bart, stochtree, gpboost, econml) are imported when a learner is
fitted, so importing this package is cheap.
"""

import pandas as pd

from hte_mrt.data.crt import CRTData
from hte_mrt.estimators.learners.bamm import BayesianAdditiveMixedModel
from hte_mrt.estimators.learners.bart import BARTMixed, BayesianCausalForestMixed, StochtreeBCF
from hte_mrt.estimators.learners.base import CRTLearner
from hte_mrt.estimators.learners.calibration import calibration_test
from hte_mrt.estimators.learners.linear import LinearInteraction
from hte_mrt.estimators.learners.mixed_trees import (
    GPBoostLearner,
    MixedEffectsHistGB,
    MixedEffectsRandomForest,
)
from hte_mrt.estimators.learners.peers import EconMLCausalForest
from hte_mrt.results.cate import CATEResult

#: every learner by its short name (``learner.name``)
LEARNERS: dict[str, type[CRTLearner]] = {
    cls.name: cls
    for cls in (
        BayesianAdditiveMixedModel,
        BARTMixed,
        BayesianCausalForestMixed,
        StochtreeBCF,
        MixedEffectsRandomForest,
        MixedEffectsHistGB,
        GPBoostLearner,
        LinearInteraction,
        EconMLCausalForest,
    )
}

#: the default learner of :func:`cate`, :func:`calibration_test` and CRT plans
DEFAULT_LEARNER = "bamm"
DEFAULT_LEARNER_WHY = (
    "It is the additive mixed model: linear, spline and interaction terms for the control mean; "
    "for the treatment effect linear moderators under a horseshoe prior, spline terms, and a "
    "prior probability of 0.25 that the effect does not vary at all; a cluster random "
    "intercept. It is the default because on the package's randomized benchmark of 100 CRT "
    "designs drawn at random (benchmarks/results/crt_random) its error in tau(x, v) was below "
    "stochtree's Bayesian causal forest's in 68% of designs (median ratio 0.92) with median "
    "95% interval coverage 0.97 (BCF: 0.93) and ATE coverage 0.97, it fits in about a second "
    "(its variance parameters by a Laplace approximation, its coefficients exactly given them), "
    "and its CATE is a sum of readable terms. It does less well than a forest when the effect "
    "is a threshold or a product of covariates."
)


def cate(
    data: CRTData,
    learner: CRTLearner | None = None,
    frame: pd.DataFrame | None = None,
) -> CATEResult:
    r"""Fit a CATE learner to a cluster-randomized trial and return its CATEs.

    Estimates :math:`\tau(x, v) = E[Y(1) - Y(0) \mid x, v]`, marginal over the cluster random
    intercept, for the training rows (``frame=None``) or for new rows.

    Parameters
    ----------
    data : CRTData
        The validated trial.
    learner : CRTLearner, optional
        Any CRT learner (unfitted; it is fitted here). Default: the Bayesian additive mixed
        model, :class:`BayesianAdditiveMixedModel` at its defaults.
    frame : pandas.DataFrame, optional
        New rows to predict for (default: the training rows).

    Returns
    -------
    CATEResult
        Estimates and draws: ``table()`` one row per individual (``cluster``, ``estimate``,
        ``se``, ``lcl``, ``ucl``, ``pr_positive``), ``summary()`` the individual- and
        cluster-average ATEs and the sd of the CATE; ``ate()``, ``subgroups()``,
        ``contrasts()``, ``blp()``.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
    >>> res = hm.cate(data, hm.LinearInteraction(n_boot=50, seed=1, progress=False))
    >>> res.summary().table[["quantity", "estimate"]].round(2)
                          quantity  estimate
    0     ATE (individual-average)     -0.25
    1        ATE (cluster-average)     -0.26
    2  sd of CATE over individuals      0.41

    ``hm.cate(data)`` fits the default learner, ``hm.BayesianAdditiveMixedModel()`` (about a
    second at TASSH's size).
    """
    learner = BayesianAdditiveMixedModel() if learner is None else learner
    if not isinstance(learner, CRTLearner):
        from hte_mrt.errors import DesignError

        raise DesignError(
            f"cate: learner must be a CRT learner such as hm.BayesianAdditiveMixedModel(), "
            f"got {type(learner).__name__}."
        )
    return learner.fit(data).cate(frame)


__all__ = [
    "LEARNERS",
    "BARTMixed",
    "BayesianAdditiveMixedModel",
    "BayesianCausalForestMixed",
    "CRTLearner",
    "EconMLCausalForest",
    "GPBoostLearner",
    "LinearInteraction",
    "MixedEffectsHistGB",
    "MixedEffectsRandomForest",
    "StochtreeBCF",
    "calibration_test",
    "cate",
]
