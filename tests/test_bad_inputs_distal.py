"""A catalogue of bad inputs to the distal and mediation estimators (hm.dcee, hm.mcee; issue 20).

Each case is a call, the exception class it must raise (a subclass of
:class:`hte_mrt.errors.HteMrtError`), and regular expressions its message must match: the first
names the column / argument, the others say what to do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm
from hte_mrt.errors import (
    DataError,
    DesignError,
    EstimationError,
    FormulaError,
    HteMrtError,
    MissingColumnError,
    MissingValueError,
)
from hte_mrt.results.distal import DistalResult
from tests.test_bad_inputs_mrt import Case

SPEC = {"id": "id", "time": "t", "treatment": "A", "outcome": "yd", "prob": "prob",
        "availability": "avail"}  # fmt: skip


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    frame = hm.MRTSimulation(n_participants=12, n_decisions=10).simulate(seed=4)
    frame["yd"] = frame.groupby("id")["y"].transform("mean")
    frame["M"] = frame["y"].fillna(0.0)
    frame["w"] = 1.0
    data = hm.MRTData(frame, **SPEC)
    fit = hm.dcee(data, "~ S", "~ S")
    path = fit.to_netcdf(tmp_path_factory.mktemp("distal") / "dcee.nc")
    return SimpleNamespace(frame=frame, data=data, fit=fit, saved=path)


def trial(ctx, fn: Callable[[pd.DataFrame], None] | None = None, **kw) -> hm.MRTData:
    df = ctx.frame.copy()
    if fn is not None:
        fn(df)
    return hm.MRTData(df, **(SPEC | kw))


class NoPredict:
    def fit(self, X, y):
        return self


def _vary(df):
    df.loc[df.index[(df["id"] == 2)][3], "yd"] += 1.0


def _nan_mediator(df):
    df.loc[df.index[5], "M"] = np.nan


def _only_id1(df):
    df["only1"] = (df["id"] == df["id"].iloc[0]).astype(float)


def _categorical(df):
    df["arm"] = np.where(df["A"] == 1, "walk", "none")


CASES = [
    # ----------------------------------------------------------------- data
    Case("distal-outcome-varies", lambda c: hm.dcee(trial(c, _vary)), DataError,
         ["'yd'", "varies within participant id=2", "measured once per participant"]),
    Case("mcee-distal-outcome-varies", lambda c: hm.mcee(trial(c, _vary), "M"), DataError,
         ["'yd'", "participant id=2"]),
    Case("data-is-frame", lambda c: hm.dcee(c.frame), DataError, ["DataFrame", "MRTData"]),
    Case("categorical-treatment",
         lambda c: hm.dcee(trial(c, _categorical, treatment="arm", prob=None,
                                 levels={"none": 0.5, "walk": 0.5})),
         DataError, ["binary 0/1 treatment", "'arm'", "Recode"]),
    Case("mediator-absent", lambda c: hm.mcee(c.data, "mediator_x"), MissingColumnError,
         ["'mediator_x'", "mediator", "Available columns"]),
    Case("mediator-missing-value", lambda c: hm.mcee(trial(c, _nan_mediator), "M"),
         MissingValueError, ["'M'", "mediator", "impute or remove"]),
    Case("mediator-is-treatment", lambda c: hm.mcee(c.data, "A"), DesignError,
         ["mediator='A'", "role column"]),
    Case("mediator-not-a-string", lambda c: hm.mcee(c.data, 3), DesignError, ["mediator"]),
    # ----------------------------------------------------------------- formulas
    Case("moderator-unknown-column", lambda c: hm.dcee(c.data, "~ mood"), MissingColumnError,
         ["'mood'", "moderator formula", "Check the spelling"]),
    Case("control-unknown-column", lambda c: hm.dcee(c.data, "~ 1", "~ S + mood"),
         MissingColumnError, ["'mood'", "control formula"]),
    Case("mcee-moderator-unknown-column", lambda c: hm.mcee(c.data, "M", "~ day2"),
         MissingColumnError, ["'day2'", "moderator formula"]),
    Case("control-is-outcome", lambda c: hm.dcee(c.data, "~ 1", "~ yd"), FormulaError,
         ["'yd'", "outcome", "Remove 'yd'"]),
    Case("smooth-without-gam", lambda c: hm.dcee(c.data, "~ 1", "~ s(S)"), FormulaError,
         [r"s\(\)", "learner='gam'"]),
    Case("moderators-not-a-string", lambda c: hm.dcee(c.data, 1), FormulaError,
         ["moderators", "formula string"]),
    Case("controls-dict-unknown-key", lambda c: hm.mcee(c.data, "M", controls={"mu0": "~ S"}),
         DesignError, ["controls", "'mu0'", "'mu'"]),
    Case("controls-dict-without-formula",
         lambda c: hm.mcee(c.data, "M", controls={"q": "~ S + M"}), DesignError,
         ["controls", "'eta'", "controls\\['default'\\]"]),
    # ----------------------------------------------------------------- learners
    Case("learner-without-predict", lambda c: hm.dcee(c.data, learner=NoPredict()), DesignError,
         ["learner", "NoPredict", "fit\\(X, y\\) and predict\\(X\\)"]),
    Case("learner-unknown-name", lambda c: hm.dcee(c.data, learner="xgb"), DesignError,
         ["learner", "'xgb'", "'rf'"]),
    Case("learner-is-a-class", lambda c: hm.dcee(c.data, learner=NoPredict), DesignError,
         ["learner", "class NoPredict", "instance"]),
    Case("mcee-learner-without-predict",
         lambda c: hm.mcee(c.data, "M", learner={"q": NoPredict()}), DesignError,
         [r"learner\['q'\]", "fit\\(X, y\\)"]),
    Case("mcee-learner-unknown-nuisance", lambda c: hm.mcee(c.data, "M", learner={"mu1": "rf"}),
         DesignError, ["learner", "'mu1'", "'mu'"]),
    Case("dcee-learner-dict", lambda c: hm.dcee(c.data, learner={"mu": "rf"}), DesignError,
         ["learner", "not a dict"]),
    # ----------------------------------------------------------------- cross-fitting, seeds
    Case("cross-fit-more-folds-than-participants", lambda c: hm.dcee(c.data, cross_fit=13),
         DesignError, ["cross_fit=13", "12", "cross_fit <= 12"]),
    Case("mcee-cross-fit-too-many",
         lambda c: hm.mcee(c.data, "M", controls="~ S + M", cross_fit=20), DesignError,
         ["cross_fit=20", "participants"]),
    Case("cross-fit-true", lambda c: hm.dcee(c.data, cross_fit=True), DesignError,
         ["cross_fit", "number of folds", "cross_fit=5"]),
    Case("cross-fit-one-fold", lambda c: hm.dcee(c.data, cross_fit=1), DesignError,
         ["cross_fit", ">= 2"]),
    Case("cross-fit-string", lambda c: hm.dcee(c.data, cross_fit="5"), DesignError,
         ["cross_fit", "pass the number itself"]),
    Case("seed-string", lambda c: hm.dcee(c.data, seed="1"), DesignError, ["seed"]),
    Case("small-sample-string", lambda c: hm.mcee(c.data, "M", small_sample="yes"), DesignError,
         ["small_sample"]),
    Case("small-sample-one-participant-term",
         lambda c: hm.dcee(trial(c, _only_id1), "~ only1", small_sample=True), EstimationError,
         ["small_sample", "without any single participant", "small_sample=False"]),
    Case("conf-level-percent", lambda c: hm.dcee(c.data, conf_level=95), DesignError,
         ["conf_level", "did you mean 0.95"]),
    # ----------------------------------------------------------------- weights, known values
    Case("row-weights-negative",
         lambda c: hm.dcee(c.data, row_weights=-np.ones(len(c.frame))), DataError,
         ["row_weights", ">= 0"]),
    Case("row-weights-all-zero",
         lambda c: hm.mcee(c.data, "M", controls="~ M", row_weights=np.zeros(len(c.frame))),
         DataError, ["row_weights", "all 0"]),
    Case("row-weights-column-absent", lambda c: hm.dcee(c.data, row_weights="omega"),
         MissingColumnError, ["'omega'", "row_weights"]),
    Case("row-weights-wrong-length", lambda c: hm.dcee(c.data, row_weights=[1.0, 2.0]),
         DesignError, ["row_weights", "one value per row"]),
    Case("nuisance-unknown-name", lambda c: hm.mcee(c.data, "M", nuisance={"mu": np.zeros(3)}),
         DesignError, ["nuisance", "'mu'", "mu1"]),
    Case("nuisance-wrong-length", lambda c: hm.mcee(c.data, "M", nuisance={"mu1": np.zeros(3)}),
         DesignError, [r"nuisance\['mu1'\]", "one value per row"]),
    Case("nuisance-not-finite",
         lambda c: hm.dcee(c.data, nuisance={"mu0": np.full(len(c.frame), np.nan)}), DataError,
         [r"nuisance\['mu0'\]", "finite value on every row"]),
    Case("nuisance-not-a-table", lambda c: hm.dcee(c.data, nuisance=[1.0, 2.0]), DesignError,
         ["nuisance", "DataFrame or a dict"]),
    Case("nuisance-q-outside-01",
         lambda c: hm.mcee(c.data, "M", controls="~ M",
                           nuisance={"q1": np.full(len(c.frame), 1.2)}),
         EstimationError, ["q1", r"outside \(0, 1\)", "strictly between 0 and 1"]),
    # ----------------------------------------------------------------- results
    Case("bootstrap-after-loading",
         lambda c: DistalResult.from_netcdf(c.saved).bayesian_bootstrap(10, progress=False),
         DesignError, ["bayesian_bootstrap", "refit"]),
    Case("bootstrap-one-draw", lambda c: c.fit.bayesian_bootstrap(1, progress=False), DesignError,
         ["n_boot", ">= 2"]),
    Case("effect-curve-needs-grid", lambda c: c.fit.effect_curve(), DesignError,
         ["effect_curve", "'S'", "grid="]),
    Case("effect-curve-grid-lacks-moderator",
         lambda c: c.fit.effect_curve(pd.DataFrame({"x": [1.0]})), DesignError,
         ["grid lacks", "'S'"]),
    Case("lincomb-unknown-term", lambda c: c.fit.lincomb({"T": 1.0}), DesignError,
         ["'T'", "Intercept"]),
    Case("load-a-foreign-file", lambda c: DistalResult.from_netcdf(c.saved.with_suffix(".json")),
         DataError, ["not a saved hte_mrt DistalResult"]),
]  # fmt: skip


def test_catalogue_ids_unique():
    assert len({c.id for c in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(ctx, case):
    assert issubclass(case.exc, HteMrtError)
    with pytest.raises(case.exc) as info:
        case.call(ctx)
    msg = str(info.value)
    for pat in case.patterns:
        assert re.search(pat, msg), f"message lacks {pat!r}:\n{msg}"


def test_a_good_call_of_each_passes(ctx):
    """The catalogue's trial is fine as it is: the errors come from the edits."""
    assert np.isfinite(hm.dcee(ctx.data, "~ S", "~ S").theta).all()
    assert np.isfinite(hm.mcee(ctx.data, "M", "~ 1", "~ S + M").theta).all()


def test_mediator_in_the_wrong_formulas_warns(ctx):
    """As MRTAnalysis' mcee_general: q and mu need the mediator, p, eta and nu must not have it
    (legal but almost surely a mistake: a warning that names the mediator and the nuisance).
    Only formulas given per nuisance are used as written, so only they can warn."""
    with pytest.warns(hm.HteMrtWarning, match=r"'M' is not in the formula of q and mu.*controls="):
        hm.mcee(ctx.data, "M", "~ 1", {"default": "~ S", "q": "~ S", "mu": "~ S"})
    with pytest.warns(hm.HteMrtWarning, match=r"'M' is in the formula of eta.*remove 'M'"):
        hm.mcee(ctx.data, "M", "~ 1", {"default": "~ S + M", "eta": "~ S + M"})


def test_mcee_adds_the_mediator_to_q_and_mu_quietly(ctx):
    """controls without the mediator (the default "~ 1" included): q and mu get it as a linear
    term, no warning (pyproject turns HteMrtWarning into errors); the fit is the one with the
    mediator written out, to the last bit (the same formulas reach the same solver)."""
    for quiet, explicit in (("~ S", "~ S + M"), ("~ 1", "~ M")):
        a = hm.mcee(ctx.data, "M", "~ 1", quiet)
        b = hm.mcee(ctx.data, "M", "~ 1", explicit)
        np.testing.assert_array_equal(a.theta, b.theta)
        np.testing.assert_array_equal(a.cov_theta, b.cov_theta)
        assert a.info["controls"] == b.info["controls"]
    # the same in a per-nuisance table's default
    c = hm.mcee(ctx.data, "M", "~ 1", {"default": "~ S"})
    np.testing.assert_array_equal(c.theta, hm.mcee(ctx.data, "M", "~ 1", "~ S + M").theta)
    assert c.info["controls"]["q"] == "~ S + M" and c.info["controls"]["eta"] == "~ 1 + S"
