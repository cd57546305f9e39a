"""CATE learners for cluster-randomized trials (one contract: :class:`CRTLearner`).

Heavy backends (pymc, pymc-bart, stochtree, gpboost, econml) are imported when a learner is
fitted, so importing this package is cheap.
"""

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
]
