"""A catalogue of bad inputs to the MRT entry points (issue 18, section 1).

Each case is a call, the exception class it must raise (a subclass of
:class:`hte_mrt.errors.HteMrtError`), and regular expressions its message must match: the first
names the column / argument, the others say what to do. Legal but degenerate data (a constant
outcome, an all-0 or all-1 binary outcome in EMEE, a participant never available) must warn with
:class:`~hte_mrt.errors.DegenerateDataWarning` and return a result whose summary says why.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hte_mrt as hm
from hte_mrt.errors import (
    DataError,
    DegenerateDataWarning,
    DesignError,
    DuplicateRowError,
    EstimationError,
    FormulaError,
    HteMrtError,
    MissingColumnError,
    MissingValueError,
    OutcomeTypeError,
    PriorError,
    ProbabilityError,
    TreatmentError,
)
from hte_mrt.results.bayes import BayesResult
from hte_mrt.results.bootstrap import BootstrapResult
from hte_mrt.results.crosscheck import CrossCheck
from hte_mrt.results.randomization import RandomizationResult

SPEC = {"id": "id", "time": "t", "treatment": "A", "outcome": "y", "prob": 0.5,
        "availability": "avail"}  # fmt: skip


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A small simulated trial, its fits, and saved / foreign files."""
    sim = hm.MRTSimulation(n_participants=12, n_decisions=10)
    frame = sim.simulate(seed=3)
    frame["yb"] = (frame["y"] > 0).astype(int)
    frame["arm"] = np.where(frame["A"] == 1, "walk", "none")
    data = hm.MRTData(frame, **SPEC)
    fit = hm.wcls(data, "~ S")
    d = tmp_path_factory.mktemp("bad_inputs_mrt")
    fit.to_netcdf(d / "wcls.nc")
    rt = hm.randomization_test(data, n_resamples=20, seed=1, progress=False)
    rt.to_netcdf(d / "rand.nc")
    boot = hm.bayesian_bootstrap(data, "~ S", n_boot=50, seed=1, progress=False)
    boot.to_netcdf(d / "boot.nc")
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(d / "foreign.nc", engine="h5netcdf")
    (d / "text.nc").write_text("not a netcdf file")
    cache: dict = {}

    def bayes():
        """One tiny BayesMRT fit, made on first use (its diagnostics do not matter here)."""
        if "fit" not in cache:
            from hte_mrt.errors import ConvergenceWarning

            model = hm.BayesMRT("~ S", draws=50, tune=50, chains=1, progress=False, seed=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                cache["fit"] = model.fit(data)
            cache["fit"].to_netcdf(d / "bayes.nc")
        return cache["fit"]

    return SimpleNamespace(frame=frame, data=data, fit=fit, boot=boot, dir=d, bayes=bayes)


def mrt(ctx, frame=None, **kw):
    return hm.MRTData(ctx.frame if frame is None else frame, **(SPEC | kw))


def edit(ctx, fn: Callable[[pd.DataFrame], None]) -> pd.DataFrame:
    """A copy of the trial frame changed by ``fn``."""
    df = ctx.frame.copy()
    fn(df)
    return df


def first_available(df: pd.DataFrame) -> int:
    return int(df.index[df["avail"] == 1][0])


def set_at_available(col: str, value) -> Callable[[pd.DataFrame], None]:
    def f(df):
        if col in df and value is not None and isinstance(value, str):
            df[col] = df[col].astype(object)
        df.loc[first_available(df), col] = value

    return f


def quiet(fn):
    """Run ``fn`` with hte_mrt's degenerate-data warnings silenced (cases whose error comes
    after a warning, e.g. no participant ever available)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        return fn()


@dataclass
class Case:
    id: str
    call: Callable
    exc: type[HteMrtError]
    patterns: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------- MRTData
DATA_CASES = [
    Case("frame-is-list", lambda c: hm.MRTData([1, 2], **SPEC), DataError,
         ["DataFrame", r"pd\.DataFrame\(\.\.\.\)"]),
    Case("frame-is-mrtdata", lambda c: hm.MRTData(c.data, **SPEC), DataError,
         ["DataFrame", "convert"]),
    Case("duplicated-column-names", lambda c: mrt(c, pd.concat([c.frame, c.frame[["y"]]], axis=1)),
         DataError, ["'y'", "rename or drop the copies"]),
    Case("zero-rows", lambda c: mrt(c, c.frame.iloc[:0]), DataError,
         ["no rows", "Check the filter"]),
    Case("id-column-absent", lambda c: mrt(c, id="uid"), MissingColumnError,
         ["'uid'", "Available columns"]),
    Case("outcome-case-typo", lambda c: mrt(c, outcome="Y"), MissingColumnError,
         ["'Y'", "Did you mean 'y'"]),
    Case("treatment-absent", lambda c: mrt(c, treatment="a"), MissingColumnError,
         ["'a'", "Did you mean 'A'"]),
    Case("availability-absent", lambda c: mrt(c, availability="available"), MissingColumnError,
         ["'available'", "Available columns"]),
    Case("cluster-absent", lambda c: mrt(c, cluster="site"), MissingColumnError,
         ["'site'", "Available columns"]),
    Case("role-not-a-string", lambda c: mrt(c, id=5), DataError,
         ["id=", "name of a column"]),
    Case("role-is-list", lambda c: mrt(c, outcome=["y"]), DataError,
         ["outcome=", "name of a column"]),
    Case("no-probability", lambda c: mrt(c, prob=None), DataError,
         ["prob=", "levels="]),
    Case("prob-and-levels", lambda c: mrt(c, levels={0: 0.5, 1: 0.5}), DataError,
         ["prob=", "not both"]),
    Case("prob-number-as-string", lambda c: mrt(c, prob="0.6"), MissingColumnError,
         ["prob='0.6'", r"pass the number: prob=0\.6"]),
    Case("prob-column-absent", lambda c: mrt(c, prob="p_rand"), MissingColumnError,
         ["'p_rand'", "Available columns"]),
    Case("prob-above-one", lambda c: mrt(c, prob=1.5), ProbabilityError,
         [r"prob=1\.5", r"strictly in \(0, 1\)", "mark it unavailable"]),
    Case("prob-zero", lambda c: mrt(c, prob=0), ProbabilityError,
         ["prob=0", "mark it unavailable"]),
    Case("prob-bool", lambda c: mrt(c, prob=True), ProbabilityError,
         ["prob=", r"number in \(0, 1\) such as 0\.6"]),
    Case("prob-list", lambda c: mrt(c, prob=[0.5]), ProbabilityError,
         ["prob=", "name of a probability column"]),
    Case("prob-column-infinite", lambda c: mrt(c, edit(c, set_at_available("prob", np.inf)),
                                               prob="prob"), ProbabilityError,
         ["'prob'", "strictly in", "mark it unavailable"]),
    Case("prob-column-text", lambda c: mrt(c, edit(c, set_at_available("prob", "half")),
                                           prob="prob"), ProbabilityError,
         ["'prob'", "pd.to_numeric"]),
    Case("prob-column-missing-value", lambda c: mrt(c, edit(c, set_at_available("prob", np.nan)),
                                                    prob="prob"), MissingValueError,
         ["'prob'", "needs its probability"]),
    Case("levels-not-a-dict", lambda c: mrt(c, treatment="arm", prob=None,
                                            levels=[("none", 0.5), ("walk", 0.5)]), DataError,
         ["levels=", "dict"]),
    Case("levels-single", lambda c: mrt(c, treatment="arm", prob=None, levels={"none": 1.0}),
         DataError, ["levels=", "at least two"]),
    Case("levels-do-not-sum-to-one", lambda c: mrt(c, treatment="arm", prob=None,
                                                   levels={"none": 0.5, "walk": 0.4}),
         ProbabilityError, ["do not sum to 1", "one probability per level"]),
    Case("levels-number-as-string", lambda c: mrt(c, treatment="arm", prob=None,
                                                  levels={"none": "0.5", "walk": 0.5}),
         MissingColumnError, [r"levels\['none'\]", r"levels\['none'\]=0\.5"]),
    Case("levels-unknown-treatment-value", lambda c: mrt(c, treatment="arm", prob=None,
                                                         levels={"none": 0.5, "run": 0.5}),
         TreatmentError, ["'arm'", "list every level"]),
    Case("missing-argument", lambda c: mrt(c, missing="impute"), DataError,
         ["missing", "'drop'"]),
    Case("missing-argument-bool", lambda c: mrt(c, missing=True), DataError,
         ["missing", "'error'"]),
    Case("outcome-minus-inf", lambda c: mrt(c, edit(c, set_at_available("y", -np.inf))),
         DataError, ["'y'", "infinite", r"log\(x \+ 0\.5\)", "missing='drop'"]),
    Case("outcome-plus-inf-unavailable-row", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "y", np.where(df.index == df.index[df.avail == 0][0], np.inf, df["y"])))),
         DataError, ["'y'", "infinite", "missing='drop'"]),
    Case("outcome-text", lambda c: mrt(c, edit(c, set_at_available("y", "high"))),
         OutcomeTypeError, ["'y'", "pd.to_numeric"]),
    Case("outcome-missing", lambda c: mrt(c, edit(c, set_at_available("y", np.nan))),
         MissingValueError, ["'y'", "missing='drop'"]),
    Case("outcome-all-missing-drop", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "y", np.nan)), missing="drop"), MissingValueError, ["'y'", "outcome= names"]),
    Case("id-missing", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "id", df["id"].astype(float).where(df.index != 4)))), MissingValueError,
         ["'id'", "fill or remove"]),
    Case("time-text", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "t", df["t"].astype(str)))), DataError, ["'t'", "pd.to_numeric"]),
    Case("time-infinite", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "t", df["t"].astype(float).where(df.index != 3, np.inf)))), DataError,
         ["'t'", "fix or\\s+remove"]),
    Case("duplicate-decision-point", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "t", df["t"].where(df.index != 1, 0)))), DuplicateRowError,
         ["'id', 't'", "Keep one row"]),
    Case("treatment-not-binary", lambda c: mrt(c, edit(c, set_at_available("A", 2))),
         TreatmentError, ["'A'", "Recode"]),
    Case("treatment-while-unavailable", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "A", np.where(df.avail == 0, 1, df.A)))), TreatmentError,
         ["'A'", "fix the availability"]),
    Case("treatment-missing", lambda c: mrt(c, edit(c, set_at_available("A", np.nan))),
         MissingValueError, ["'A'", "Record the randomized treatment"]),
    Case("availability-not-0-1", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "avail", df.avail.where(df.index != 0, 2)))), DataError, ["'avail'", "Recode it as 0/1"]),
    Case("availability-missing", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "avail", df.avail.astype(float).where(df.index != 0)))), MissingValueError,
         ["'avail'", "Record availability"]),
    Case("cluster-varies-within-participant", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "site", df.index % 2)), cluster="site"), DataError, ["'site'", "one cluster"]),
    Case("cluster-missing", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "site", np.where(df.index == 0, np.nan, 1.0))), cluster="site"), MissingValueError,
         ["'site'", "Fill it"]),
    Case("outcome-is-treatment", lambda c: mrt(c, outcome="A"), DataError,
         ["'A'", "treatment= and outcome=", "each role needs its own column"]),
    Case("availability-is-treatment", lambda c: mrt(c, availability="A"), DataError,
         ["'A'", "treatment= and availability=", "Pass the right column"]),
    Case("prob-column-is-outcome", lambda c: mrt(c, prob="y"), DataError,
         ["'y'", "outcome= and prob=", "each role needs its own column"]),
    Case("cluster-is-id", lambda c: mrt(c, cluster="id"), DataError,
         ["'id'", "id= and cluster=", "each role needs its own column"]),
    Case("outcome-complex", lambda c: mrt(c, edit(c, lambda df: df.__setitem__(
        "y", df["y"] + 1j))), OutcomeTypeError, ["'y'", "complex", r"np\.real"]),
]  # fmt: skip

# ------------------------------------------------------------------------------- wcls
WCLS_CASES = [
    Case("wcls-dataframe", lambda c: hm.wcls(c.frame), DataError,
         ["DataFrame", r"hm\.MRTData\("]),
    Case("wcls-dict", lambda c: hm.wcls({"y": [1]}), DataError, ["dict", r"hm\.MRTData\("]),
    Case("wcls-moderators-not-string", lambda c: hm.wcls(c.data, 1), FormulaError,
         ["moderators", "'~ 1'"]),
    Case("wcls-controls-none", lambda c: hm.wcls(c.data, "~ 1", None), FormulaError,
         ["controls", "formula string"]),
    Case("wcls-moderator-absent", lambda c: hm.wcls(c.data, "~ zz"), MissingColumnError,
         ["'zz'", "Check the spelling"]),
    Case("wcls-control-absent-in-transform", lambda c: hm.wcls(c.data, "~ 1", "~ center(zz)"),
         MissingColumnError, ["'zz'", "Check the spelling"]),
    Case("wcls-formula-syntax", lambda c: hm.wcls(c.data, "~ S +"), FormulaError,
         ["moderator formula '~ S \\+'", "Write it like '~ 1'"]),
    Case("wcls-formula-log-of-negative", lambda c: hm.wcls(c.data, "~ log(S)"), FormulaError,
         [r"'~ log\(S\)'", "log of a value <= 0"]),
    Case("wcls-formula-lhs", lambda c: hm.wcls(c.data, "y ~ S"), FormulaError,
         ["left-hand side", "'~ 1'"]),
    Case("wcls-conf-level-percent", lambda c: hm.wcls(c.data, conf_level=95), DesignError,
         ["conf_level", r"0\.95"]),
    Case("wcls-conf-level-string", lambda c: hm.wcls(c.data, conf_level="0.95"), DesignError,
         ["conf_level", r"such as 0\.95"]),
    Case("wcls-conf-level-one", lambda c: hm.wcls(c.data, conf_level=1.0), DesignError,
         ["conf_level", r"\(0, 1\)"]),
    Case("wcls-small-sample-no", lambda c: hm.wcls(c.data, small_sample="no"), DesignError,
         ["small_sample", "True or False"]),
    Case("wcls-small-sample-int", lambda c: hm.wcls(c.data, small_sample=1), DesignError,
         ["small_sample", "True or False or 'auto'"]),
    Case("wcls-lag-fraction", lambda c: hm.wcls(c.data, lag=1.5), DesignError,
         ["lag", "whole number", "not rounded"]),
    Case("wcls-lag-negative", lambda c: hm.wcls(c.data, lag=-1), DesignError,
         ["lag", ">= 0"]),
    Case("wcls-lag-bool", lambda c: hm.wcls(c.data, lag=True), DesignError,
         ["lag", "whole number"]),
    Case("wcls-lag-string", lambda c: hm.wcls(c.data, lag="1"), DesignError,
         ["lag", "whole number"]),
    Case("wcls-lag-longer-than-trial", lambda c: hm.wcls(c.data, lag=100), DesignError,
         ["lag=100", "longer than the trial", "Use a lag below 10"]),
    Case("wcls-numerator-above-one", lambda c: hm.wcls(c.data, numerator=1.5), DesignError,
         ["numerator", r"\(0, 1\)"]),
    Case("wcls-numerator-bool", lambda c: hm.wcls(c.data, numerator=True), DesignError,
         ["numerator", "such as 0.5"]),
    Case("wcls-numerator-column-absent", lambda c: hm.wcls(c.data, numerator="p_tilde"),
         MissingColumnError, ["'p_tilde'", "numerator=0.5"]),
    Case("wcls-numerator-dict-bad", lambda c: hm.wcls(c.data, numerator={1: "x", 2: 7}),
         DesignError, [r"numerator\[2\]", r"\(0, 1\)"]),
    Case("wcls-estimand-wrong-type", lambda c: hm.wcls(c.data, estimand="~ 1"), DesignError,
         ["estimand", r"hm\.ExcursionEffect"]),
    Case("wcls-all-unavailable", lambda c: quiet(lambda: hm.wcls(mrt(c, edit(
        c, lambda df: (df.__setitem__("avail", 0), df.__setitem__("A", 0)))))), DesignError,
         ["'avail'", "availability= names the right column"]),
    Case("wcls-moderator-infinite", lambda c: hm.wcls(mrt(c, edit(
        c, set_at_available("S", np.inf))), "~ S"), DataError,
         ["'S'", "infinite", r"log\(x \+ 0\.5\)"]),
    Case("wcls-moderator-missing", lambda c: hm.wcls(mrt(c, edit(
        c, set_at_available("S", np.nan))), "~ S"), MissingValueError,
         ["'S'", "Impute it"]),
    Case("wcls-varying-prob-needs-numerator", lambda c: hm.wcls(mrt(c, edit(
        c, lambda df: df.__setitem__("p", np.where(df.index % 2, 0.4, 0.6))), prob="p")),
         DesignError, ["numerator", "numerator=0.5"]),
    Case("wcls-too-few-participants", lambda c: hm.wcls(
        c.data, "~ C(id)"), DesignError, ["participants", "simplify"]),
    Case("wcls-moderator-is-outcome", lambda c: hm.wcls(c.data, "~ y"), FormulaError,
         ["'y'", "outcome", "moderator formula '~ y'", "Remove 'y'"]),
    Case("wcls-control-is-outcome", lambda c: hm.wcls(c.data, controls="~ S + y"), FormulaError,
         ["'y'", "outcome", r"control formula '~ S \+ y'", "Remove 'y'"]),
    Case("wcls-moderator-is-treatment", lambda c: hm.wcls(c.data, "~ A"), FormulaError,
         ["'A'", "treatment", "Remove 'A'"]),
    Case("wcls-control-is-treatment-in-transform", lambda c: hm.wcls(
        c.data, controls="~ center(A)"), FormulaError, ["'A'", "treatment", "Remove 'A'"]),
    Case("wcls-control-is-availability", lambda c: hm.wcls(c.data, controls="~ avail"),
         FormulaError, ["'avail'", "availability", "Remove 'avail'"]),
    Case("wcls-moderator-is-prob-column", lambda c: hm.wcls(mrt(c, prob="prob"), "~ prob"),
         FormulaError, ["'prob'", "randomization probability", "as a control"]),
    Case("wcls-moderator-complex", lambda c: hm.wcls(mrt(c, edit(c, lambda df: df.__setitem__(
        "S", df["S"] + 1j))), "~ S"), DataError, ["'S'", "complex", r"np\.real"]),
    Case("wcls-never-treated", lambda c: hm.wcls(mrt(c, edit(c, lambda df: df.__setitem__(
        "A", 0)))), TreatmentError, ["'A'", "does not vary", "treatment= names"]),
    Case("wcls-always-treated", lambda c: hm.wcls(mrt(c, edit(c, lambda df: df.__setitem__(
        "A", df["avail"])))), TreatmentError, ["'A'", "does not vary", "availability= marks"]),
    Case("wcls-outcome-overflows", lambda c: hm.wcls(mrt(c, edit(c, lambda df: df.__setitem__(
        "y", df["y"] * 1e300))), "~ S"), EstimationError,
         ["outcome", "overflowed", "Rescale the outcome"]),
]  # fmt: skip

# ------------------------------------------------------------------------------- emee
EMEE_CASES = [
    Case("emee-dataframe", lambda c: hm.emee(c.frame), DataError, ["DataFrame", r"hm\.MRTData"]),
    Case("emee-variant", lambda c: hm.emee(mrt(c, outcome="yb"), variant="emee3"), DesignError,
         ["variant", "'emee2'"]),
    Case("emee-small-sample-auto", lambda c: hm.emee(mrt(c, outcome="yb"), small_sample="auto"),
         DesignError, ["small_sample", "True or False"]),
    Case("emee-tol-negative", lambda c: hm.emee(mrt(c, outcome="yb"), tol=-1), DesignError,
         ["tol", "1e-12"]),
    Case("emee-maxiter-zero", lambda c: hm.emee(mrt(c, outcome="yb"), maxiter=0), DesignError,
         ["maxiter", ">= 1"]),
    Case("emee-maxiter-string", lambda c: hm.emee(mrt(c, outcome="yb"), maxiter="100"),
         DesignError, ["maxiter", "pass the number itself"]),
    Case("emee-start-length", lambda c: hm.emee(mrt(c, outcome="yb"), start=[0, 0, 0]),
         DesignError, ["start", "controls then effects"]),
    Case("emee-start-text", lambda c: hm.emee(mrt(c, outcome="yb"), start="zero"), DesignError,
         ["start", "controls then effects"]),
    Case("emee-outcome-not-binary", lambda c: hm.emee(c.data), OutcomeTypeError,
         ["'y'", r"wcls\(\)"]),
    Case("emee-categorical-treatment", lambda c: hm.emee(mrt(
        c, outcome="yb", treatment="arm", prob=None, levels={"none": 0.5, "walk": 0.5})),
         DesignError, ["binary treatment", "subset the data|use WCLS"]),
    Case("emee-conf-level", lambda c: hm.emee(mrt(c, outcome="yb"), conf_level=90), DesignError,
         ["conf_level", r"0\.9"]),
]  # fmt: skip

# ------------------------------------------------------------------------------- randomization
RAND_CASES = [
    Case("rand-dataframe", lambda c: hm.randomization_test(c.frame), DataError,
         ["DataFrame", r"hm\.MRTData"]),
    Case("rand-n-resamples-zero", lambda c: hm.randomization_test(c.data, n_resamples=0),
         DesignError, ["n_resamples", ">= 1"]),
    Case("rand-n-resamples-string", lambda c: hm.randomization_test(c.data, n_resamples="200"),
         DesignError, ["n_resamples", "200 rather than '200'"]),
    Case("rand-n-resamples-fraction", lambda c: hm.randomization_test(c.data, n_resamples=10.5),
         DesignError, ["n_resamples", "whole number"]),
    Case("rand-scheme", lambda c: hm.randomization_test(c.data, scheme="shuffle"), DesignError,
         ["scheme", "'redraw' or 'permute'"]),
    Case("rand-alpha-percent", lambda c: hm.randomization_test(c.data, alpha=5), DesignError,
         ["alpha", r"such as 0\.05"]),
    Case("rand-seed-string", lambda c: hm.randomization_test(c.data, seed="1"), DesignError,
         ["seed", "pass the number itself"]),
    Case("rand-seed-negative", lambda c: hm.randomization_test(c.data, seed=-3), DesignError,
         ["seed", ">= 0 or None"]),
    Case("rand-progress-string", lambda c: hm.randomization_test(c.data, progress="no"),
         DesignError, ["progress", "True or False"]),
    Case("rand-small-sample", lambda c: hm.randomization_test(c.data, small_sample="yes"),
         DesignError, ["small_sample", "True or False"]),
    Case("rand-moderator-is-outcome", lambda c: hm.randomization_test(c.data, "~ y"),
         FormulaError, ["'y'", "outcome", "Remove 'y'"]),
]  # fmt: skip

# ------------------------------------------------------------------------------- bootstrap
BOOT_CASES = [
    Case("boot-dataframe", lambda c: hm.bayesian_bootstrap(c.frame), DataError,
         ["DataFrame", r"hm\.MRTData"]),
    Case("boot-n-boot-zero", lambda c: hm.bayesian_bootstrap(c.data, n_boot=0), DesignError,
         ["n_boot", ">= 1"]),
    Case("boot-n-boot-one", lambda c: hm.bayesian_bootstrap(c.data, n_boot=1, progress=False),
         DesignError, ["n_boot=1", "n_boot >= 2"]),
    Case("boot-n-boot-string", lambda c: hm.bayesian_bootstrap(c.data, n_boot="200"),
         DesignError, ["n_boot", "200 rather than '200'"]),
    Case("boot-which", lambda c: hm.bayesian_bootstrap(c.data, which="both"), DesignError,
         ["which", "'effect' or 'all'"]),
    Case("boot-seed-fraction", lambda c: hm.bayesian_bootstrap(c.data, seed=1.5), DesignError,
         ["seed", "whole number"]),
    Case("boot-progress", lambda c: hm.bayesian_bootstrap(c.data, progress="yes"), DesignError,
         ["progress", "True or False"]),
    Case("boot-conf-level", lambda c: hm.bayesian_bootstrap(c.data, conf_level=0), DesignError,
         ["conf_level", r"0\.95"]),
]  # fmt: skip

# ------------------------------------------------------------------------------- estimand
ESTIMAND_CASES = [
    Case("estimand-lag-fraction", lambda c: hm.ExcursionEffect("~ 1", lag=0.5), DesignError,
         ["lag", "whole number"]),
    Case("estimand-moderators-none", lambda c: hm.ExcursionEffect(None), FormulaError,
         ["moderators", "'~ 1'"]),
    Case("estimand-numerator-dict", lambda c: hm.ExcursionEffect(numerator={"1": 2}),
         DesignError, [r"numerator\['1'\]", r"\(0, 1\)"]),
    Case("estimand-fit-dataframe", lambda c: hm.ExcursionEffect().fit(c.frame), DataError,
         ["DataFrame", r"hm\.MRTData\("]),
    Case("estimand-fit-unknown-estimator", lambda c: hm.ExcursionEffect().fit(
        c.data, estimator="ols"), DesignError, ["'ols'", "'wcls'"]),
    Case("estimand-fit-estimator-object", lambda c: hm.ExcursionEffect().fit(
        c.data, estimator=42), DesignError, ["estimator", "fit\\(data, estimand"]),
    Case("estimand-fit-unknown-option", lambda c: hm.ExcursionEffect().fit(
        c.data, n_boot=100), DesignError, ["'n_boot'", "'wcls'", "it takes"]),
    Case("estimand-fit-estimand-argument-as-option", lambda c: hm.ExcursionEffect().fit(
        c.data, lag=1), DesignError, ["'lag'", r"belong\(s\) to the estimand"]),
    Case("estimand-fit-sampler-option-to-model", lambda c: hm.ExcursionEffect().fit(
        c.data, estimator=hm.BayesMRT(), draws=10), DesignError,
         ["'draws'", r"constructor, e\.g\. hm\.BayesMRT\(draws=500"]),
    Case("wcls-formula-and-estimand", lambda c: hm.wcls(c.data, "~ S",
                                                         estimand=hm.ExcursionEffect()),
         DesignError, ["moderators='~ S'", "not both"]),
    Case("wcls-lag-and-estimand", lambda c: hm.wcls(c.data, lag=1,
                                                     estimand=hm.ExcursionEffect("~ 1")),
         DesignError, ["lag=1", "not both"]),
    Case("emee-numerator-and-estimand", lambda c: hm.emee(
        mrt(c, outcome="yb"), numerator=0.4, estimand=hm.ExcursionEffect()), DesignError,
         ["numerator=0.4", "not both"]),
    Case("boot-formula-and-estimand", lambda c: hm.bayesian_bootstrap(
        c.data, "~ S", estimand=hm.ExcursionEffect(), n_boot=10, progress=False), DesignError,
         ["moderators='~ S'", "not both"]),
    Case("rand-formula-and-estimand", lambda c: hm.randomization_test(
        c.data, "~ S", estimand=hm.ExcursionEffect(), n_resamples=10, progress=False),
         DesignError, ["moderators='~ S'", "not both"]),
    Case("estimand-fit-bad-option", lambda c: hm.ExcursionEffect().fit(
        c.data, small_sample="no"), DesignError, ["small_sample", "True or False"]),
]  # fmt: skip

# ------------------------------------------------------------------------------- crosscheck
CROSS_CASES = [
    Case("cross-not-a-result", lambda c: hm.crosscheck(c.fit, "x"), DesignError,
         ["argument 2", r"table\(conf_level\)"]),
    Case("cross-threshold-string", lambda c: hm.crosscheck(c.fit, c.boot, threshold="1"),
         DesignError, ["threshold", r"such as 1\.0"]),
    Case("cross-threshold-zero", lambda c: hm.crosscheck(c.fit, c.boot, threshold=0),
         DesignError, ["threshold", "positive number"]),
    Case("cross-threshold-inf", lambda c: hm.crosscheck(c.fit, c.boot, threshold=np.inf),
         DesignError, ["threshold", "positive number"]),
    Case("cross-reference-bool", lambda c: hm.crosscheck(c.fit, c.boot, reference=True),
         DesignError, ["reference", "position 0..1"]),
    Case("cross-reference-range", lambda c: hm.crosscheck(c.fit, c.boot, reference=5),
         DesignError, ["reference", "position 0..1"]),
    Case("cross-reference-label", lambda c: hm.crosscheck(c.fit, c.boot, reference="Bayes"),
         DesignError, ["reference", "one of the labels"]),
    Case("cross-labels-string", lambda c: hm.crosscheck(c.fit, c.boot, labels="ab"),
         DesignError, ["labels", "list of 2 strings"]),
    Case("cross-labels-length", lambda c: hm.crosscheck(c.fit, c.boot, labels=["a"]),
         DesignError, ["labels", "2 names"]),
    Case("cross-lincombs-list", lambda c: hm.crosscheck(c.fit, c.boot, lincombs=[1]),
         DesignError, ["lincombs", r"\{name: \{term: weight\}\}"]),
    Case("cross-lincombs-entry", lambda c: hm.crosscheck(c.fit, c.boot, lincombs={"x": 1}),
         DesignError, [r"lincombs\['x'\]", r"\{term: weight\}"]),
    Case("cross-lincombs-term", lambda c: hm.crosscheck(c.fit, c.boot,
                                                        lincombs={"x": {"zz": 1}}),
         DesignError, ["'zz'", "use the terms"]),
    Case("cross-conf-level", lambda c: hm.crosscheck(c.fit, c.boot, conf_level=95),
         DesignError, ["conf_level", r"0\.95"]),
    Case("cross-loaded-other-level", lambda c: (hm.crosscheck(c.fit, c.boot).to_netcdf(
        c.dir / "cc.nc"), CrossCheck.from_netcdf(c.dir / "cc.nc"))[1].table(conf_level=0.9),
         DesignError, [r"conf_level=0\.95", r"rerun hm\.crosscheck"]),
    Case("cross-different-lags", lambda c: hm.crosscheck(c.fit, hm.wcls(c.data, "~ S", lag=1)),
         DesignError, ["lag", "Refit them with the same"]),
    Case("cross-bayes-lag-0-vs-wcls-lag-1", lambda c: hm.crosscheck(
        hm.wcls(c.data, "~ S", lag=1), c.bayes()), DesignError, ["lag: WCLS 1, BayesMRT 0",
                                                                 "Refit them with the same"]),
    Case("cross-different-scales", lambda c: hm.crosscheck(
        hm.wcls(mrt(c, outcome="yb"), "~ S"), hm.emee(mrt(c, outcome="yb"), "~ S")),
         DesignError, ["effect scale", "additive", "log relative risk", "Refit"]),
    Case("cross-different-numerators", lambda c: hm.crosscheck(
        hm.wcls(c.data, "~ S", numerator=0.5), hm.wcls(c.data, "~ S", numerator=0.4)),
         DesignError, ["numerator", "Refit them with the same"]),
    Case("cross-different-data", lambda c: hm.crosscheck(c.fit, hm.wcls(mrt(
        c, c.frame[c.frame["id"] != c.frame["id"].iloc[0]]), "~ S")), DesignError,
         ["participants", "Refit them with the same"]),
    Case("cross-extra-terms", lambda c: hm.crosscheck(hm.wcls(c.data), c.fit), DesignError,
         ["'S'", "same moderator formula"]),
    Case("cross-mismatched-terms", lambda c: hm.crosscheck(c.fit, hm.wcls(c.data)),
         DesignError, ["'S'", "same moderator formula"]),
]  # fmt: skip

# ------------------------------------------------------------------------------- result methods
RESULT_CASES = [
    Case("lincomb-unknown-term", lambda c: c.fit.lincomb({"zz": 1}), DesignError,
         ["'zz'", "use the terms"]),
    Case("lincomb-string", lambda c: c.fit.lincomb("Intercept"), DesignError,
         ["weights", r"\{term: weight\}"]),
    Case("lincomb-none", lambda c: c.fit.lincomb(None), DesignError,
         ["weights", r"\{term: weight\}"]),
    Case("lincomb-empty-dict", lambda c: c.fit.lincomb({}), DesignError,
         ["weights", "empty", r"\{term: weight\}"]),
    Case("lincomb-wrong-length", lambda c: c.fit.lincomb([1, 2, 3]), DesignError,
         ["2 entries", "one per effect term"]),
    Case("lincomb-weight-string", lambda c: c.fit.lincomb({"S": "1"}), DesignError,
         ["'S'", "must be a number"]),
    Case("lincomb-all-zero", lambda c: c.fit.lincomb({"S": 0}), DesignError,
         ["weights", "at least one nonzero"]),
    Case("lincomb-nan", lambda c: c.fit.lincomb([np.nan, 1]), DesignError,
         ["weights", "finite"]),
    Case("lincomb-names-string", lambda c: c.fit.lincomb({"S": 1}, names="slope"), DesignError,
         ["names", "list of 1 row name"]),
    Case("lincomb-conf-level", lambda c: c.fit.lincomb({"S": 1}, conf_level=95), DesignError,
         ["conf_level", r"0\.95"]),
    Case("joint-dependent-rows", lambda c: c.fit.joint_test([[1, 0], [2, 0]]), DesignError,
         ["weights", "linearly dependent", "drop the redundant"]),
    Case("joint-unknown-term", lambda c: c.fit.joint_test({"zz": 1}), DesignError,
         ["'zz'", "use the terms"]),
    Case("curve-grid-list", lambda c: c.fit.effect_curve([0, 1]), DesignError,
         ["grid", "DataFrame"]),
    Case("curve-grid-missing-column", lambda c: c.fit.effect_curve(pd.DataFrame({"x": [1.0]})),
         MissingColumnError, ["'S'", "one column per"]),
    Case("curve-grid-missing-value", lambda c: c.fit.effect_curve(pd.DataFrame({"S": [np.nan]})),
         MissingValueError, ["'S'", "every grid row"]),
    Case("curve-grid-infinite", lambda c: c.fit.effect_curve(pd.DataFrame({"S": [0.0, np.inf]})),
         DesignError, ["grid column 'S'", "infinite", "give finite moderator values"]),
    Case("curve-grid-missing-names-column", lambda c: c.fit.effect_curve(
        pd.DataFrame({"S": [0.0, np.nan]})), MissingValueError,
         ["grid column 'S'", "every grid row"]),
    Case("curve-grid-text", lambda c: c.fit.effect_curve(pd.DataFrame({"S": ["high"]})),
         FormulaError, [r"\['Intercept', 'S'\]|\['S'\]", "types and levels used in the fit"]),
    Case("curve-grid-empty", lambda c: c.fit.effect_curve(pd.DataFrame({"S": []})),
         DesignError, ["grid", "at least one row"]),
    Case("curve-conf-level", lambda c: c.fit.effect_curve(pd.DataFrame({"S": [0.0]}),
                                                          conf_level=-1), DesignError,
         ["conf_level", r"0\.95"]),
    Case("conf-int-alpha-percent", lambda c: c.fit.conf_int(alpha=95), DesignError,
         ["alpha", r"alpha=0\.05 gives a 95% interval"]),
    Case("conf-int-alpha-string", lambda c: c.fit.conf_int(alpha="0.05"), DesignError,
         ["alpha", r"such as 0\.05"]),
    Case("table-style", lambda c: c.fit.table(style="latex"), DesignError,
         ["style", "'paper'"]),
    Case("table-conf-level", lambda c: c.fit.table(conf_level=95), DesignError,
         ["conf_level", r"0\.95"]),
    Case("summary-conf-level", lambda c: c.fit.summary(conf_level="95%"), DesignError,
         ["conf_level", r"0\.95"]),
    Case("boot-lincomb-term", lambda c: c.boot.lincomb({"zz": 1}), DesignError,
         ["'zz'", "use the terms"]),
    Case("curve-loaded-without-data", lambda c: hm.ExcursionResult.from_netcdf(
        c.dir / "wcls.nc").effect_curve(pd.DataFrame({"S": [0.0]})), DesignError,
         ["effect_curve", "data=<the trial>"]),
    Case("load-with-dataframe", lambda c: hm.ExcursionResult.from_netcdf(
        c.dir / "wcls.nc", data=c.frame), DataError, ["DataFrame", r"hm\.MRTData\("]),
    Case("load-with-other-trial", lambda c: hm.ExcursionResult.from_netcdf(
        c.dir / "wcls.nc", data=mrt(c, edit(c, lambda df: df.__setitem__(
            "S", (df.S > 0).map({True: "hi", False: "lo"}))))), DesignError,
         ["effect terms", "pass the trial the result was fitted on"]),
]  # fmt: skip

# ------------------------------------------------------------------------------- BayesMRT
BAYES_CTOR = [
    ("tune-zero", {"tune": 0}, DesignError, ["tune", ">= 1", "warm-up"]),
    ("tune-negative", {"tune": -5}, DesignError, ["tune", ">= 1"]),
    ("tune-fraction", {"tune": 10.5}, DesignError, ["tune", "whole number"]),
    ("draws-zero", {"draws": 0}, DesignError, ["draws", ">= 1"]),
    ("draws-string", {"draws": "100"}, DesignError, ["draws", "pass the number itself"]),
    ("chains-zero", {"chains": 0}, DesignError, ["chains", ">= 1", "e.g. 4"]),
    ("chains-bool", {"chains": True}, DesignError, ["chains", "integer"]),
    ("target-accept-above-one", {"target_accept": 1.5}, DesignError,
     ["target_accept", r"such as 0\.9"]),
    ("target-accept-string", {"target_accept": "0.9"}, DesignError,
     ["target_accept", r"such as 0\.9"]),
    ("n-jobs-zero", {"n_jobs": 0}, DesignError, ["n_jobs", "or None"]),
    ("seed-negative", {"seed": -1}, DesignError, ["seed", "or None"]),
    ("seed-string", {"seed": "1"}, DesignError, ["seed", "pass the number itself"]),
    ("progress-string", {"progress": "no"}, DesignError, ["progress", "True or False"]),
    ("random-slope-string", {"random_slope": "no"}, DesignError,
     ["random_slope", "True or False"]),
    ("correlated-int", {"correlated": 1}, DesignError, ["correlated", "True or False"]),
    ("cluster-intercept-string", {"cluster_intercept": "yes"}, DesignError,
     ["cluster_intercept", "True or False or None"]),
    ("family", {"family": "poisson"}, DesignError, ["family", "'bernoulli'"]),
    ("method", {"method": "fast"}, DesignError, ["method", "'collapsed'"]),
    ("sampler", {"sampler": "stan"}, DesignError, ["sampler", "'nutpie'"]),
    ("lag-fraction", {"lag": 1.5}, DesignError, ["lag", "whole number"]),
    ("numerator-above-one", {"numerator": 2}, DesignError, ["numerator", r"\(0, 1\)"]),
    ("moderators-not-string", {"moderators": 1}, DesignError, ["moderators", "'~ 1'"]),
    ("priors-not-dict", {"priors": "weak"}, PriorError, ["priors", "dict such as"]),
    ("prior-unknown-key", {"priors": {"slope": {"dist": "normal", "mu": 0, "sigma": 1}}},
     PriorError, ["'slope'", "use one of the known keys"]),
    ("prior-not-mapping", {"priors": {"beta": 1}}, PriorError, ["'beta'", "'dist'"]),
    ("prior-unknown-dist", {"priors": {"beta": {"dist": "cauchy", "mu": 0, "sigma": 1}}},
     PriorError, ["'beta'", "use one of"]),
    ("prior-missing-parameter", {"priors": {"beta": {"dist": "normal", "mu": 0}}}, PriorError,
     ["'beta'", "takes parameters"]),
    ("prior-quoted-number", {"priors": {"beta": {"dist": "normal", "mu": 0, "sigma": "1"}}},
     PriorError, ["'beta'", "'sigma'", "without quotes"]),
    ("prior-negative-scale", {"priors": {"sd_b": {"dist": "halfnormal", "sigma": -1}}},
     PriorError, ["'sd_b'", "positive"]),
    ("prior-infinite", {"priors": {"beta": {"dist": "normal", "mu": 0, "sigma": np.inf}}},
     PriorError, ["'beta'", "finite"]),
    ("prior-scale-normal", {"priors": {"sigma": {"dist": "normal", "mu": 0, "sigma": 1}}},
     PriorError, ["'sigma'", "halfnormal"]),
    ("prior-lkj-elsewhere", {"priors": {"beta": {"dist": "lkj", "eta": 2}}}, PriorError,
     ["'beta'", "'corr' only"]),
]  # fmt: skip


def bayes_ctor(kw: dict) -> Callable:
    return lambda c: hm.BayesMRT(**({"moderators": "~ 1"} | kw))


BAYES_CASES = [
    Case(f"bayes-{name}", bayes_ctor(kw), exc, pats) for name, kw, exc, pats in BAYES_CTOR
] + [
    Case("bayes-fit-dataframe", lambda c: hm.BayesMRT("~ 1").fit(c.frame), DataError,
         ["DataFrame", r"hm\.MRTData\("]),
    Case("bayes-fit-no-moderators", lambda c: hm.BayesMRT().fit(c.data), DesignError,
         ["moderators", r"hm\.BayesMRT\(moderators="]),
    Case("bayes-fit-estimand-type", lambda c: hm.BayesMRT().fit(c.data, estimand="~ 1"),
         DesignError, ["estimand", r"hm\.ExcursionEffect"]),
    Case("bayes-fit-estimand-disagrees", lambda c: hm.BayesMRT("~ S").fit(
        c.data, estimand=hm.ExcursionEffect("~ 1")), DesignError,
         ["moderators", "one place"]),
    Case("bayes-fit-correlated-without-slope", lambda c: hm.BayesMRT(
        "~ 1", correlated=True).fit(c.data), DesignError, ["correlated", "random_slope=True"]),
    Case("bayes-fit-cluster-without-column", lambda c: hm.BayesMRT(
        "~ 1", cluster_intercept=True).fit(c.data), DesignError,
         ["cluster_intercept", "no cluster column"]),
    Case("bayes-fit-bernoulli-continuous", lambda c: hm.BayesMRT(
        "~ 1", family="bernoulli").fit(c.data), OutcomeTypeError, ["'y'", "0/1"]),
    Case("bayes-fit-prior-vector-length", lambda c: hm.BayesMRT(
        "~ S", priors={"beta": {"dist": "normal", "mu": [0, 0, 0], "sigma": 1}}).fit(c.data),
         PriorError, ["'beta'", r"'mu' has 3 values", "2 effect term", "give one number"]),
    Case("bayes-prior-predictive-draws", lambda c: hm.BayesMRT("~ 1").prior_predictive(
        c.data, draws=0), DesignError, ["draws", ">= 1"]),
    Case("bayes-fit-moderator-is-outcome", lambda c: hm.BayesMRT("~ y").fit(c.data),
         FormulaError, ["'y'", "outcome", "Remove 'y'"]),
    Case("bayes-fit-control-is-treatment", lambda c: hm.BayesMRT("~ 1", controls="~ A").fit(
        c.data), FormulaError, ["'A'", "treatment", "Remove 'A'"]),
    Case("bayes-prior-predictive-dataframe", lambda c: hm.BayesMRT("~ 1").prior_predictive(
        c.frame), DataError, ["DataFrame", r"hm\.MRTData\("]),
]  # fmt: skip

BAYES_RESULT_CASES = [
    Case("posterior-scale", lambda c: c.bayes().table(scale="odds"), DesignError,
         ["scale 'odds'", "use one of 'difference'"]),
    Case("posterior-style", lambda c: c.bayes().table(style="latex"), DesignError,
         ["style", "'paper'"]),
    Case("posterior-conf-level", lambda c: c.bayes().table(conf_level=95), DesignError,
         ["conf_level", r"0\.95"]),
    Case("posterior-conf-int", lambda c: c.bayes().conf_int(alpha=95), DesignError,
         ["alpha", r"alpha=0\.05"]),
    Case("posterior-hdi", lambda c: c.bayes().hdi(conf_level=1.5), DesignError,
         ["conf_level", r"0\.95"]),
    Case("posterior-curve-infinite", lambda c: c.bayes().effect_curve(
        pd.DataFrame({"S": [np.inf]})), DesignError, ["grid column 'S'", "give finite"]),
    Case("posterior-plot-curve-x", lambda c: c.bayes().plot_effect_curve(
        pd.DataFrame({"S": [0.0, 1.0]}), x="nosuch"), DesignError,
         ["x='nosuch'", "pass x= one of those"]),
    Case("posterior-plot-curve-wcls", lambda c: c.bayes().plot_effect_curve(
        pd.DataFrame({"S": [0.0, 1.0]}), wcls="x"), DesignError,
         ["wcls must be", r"hm\.wcls"]),
    Case("posterior-plot-curve-ax", lambda c: c.bayes().plot_effect_curve(
        pd.DataFrame({"S": [0.0, 1.0]}), ax="x"), DesignError,
         ["ax must be a matplotlib Axes", r"plt\.subplots"]),
    Case("posterior-curve-list", lambda c: c.bayes().effect_curve([0.0]), DesignError,
         ["grid", "DataFrame"]),
    Case("posterior-curve-missing-column", lambda c: c.bayes().effect_curve(
        pd.DataFrame({"x": [0.0]})), MissingColumnError, ["'S'", "one column per"]),
    Case("posterior-curve-summary-level", lambda c: c.bayes().effect_curve_summary(
        pd.DataFrame({"S": [0.0]}), conf_level="0.9"), DesignError, ["conf_level", "such as"]),
    Case("posterior-participants-level", lambda c: c.bayes().participant_effects(
        conf_level=0), DesignError, ["conf_level", r"0\.95"]),
    Case("posterior-loaded-curve-missing-column", lambda c: (c.bayes(), BayesResult.from_netcdf(
        c.dir / "bayes.nc"))[1].effect_curve(pd.DataFrame({"x": [0.0]})), MissingColumnError,
         ["'S'", "one column per"]),
    Case("posterior-load-with-dataframe", lambda c: (c.bayes(), BayesResult.from_netcdf(
        c.dir / "bayes.nc", data=c.frame)), DataError, ["DataFrame", r"hm\.MRTData\("]),
]  # fmt: skip

# ------------------------------------------------------------------------------- from_netcdf
LOADERS = {
    "ExcursionResult": hm.ExcursionResult.from_netcdf,
    "BootstrapResult": BootstrapResult.from_netcdf,
    "RandomizationResult": RandomizationResult.from_netcdf,
    "BayesResult": BayesResult.from_netcdf,
    "CrossCheck": CrossCheck.from_netcdf,
}
OTHER_CLASS_FILE = {"ExcursionResult": "boot.nc", "BootstrapResult": "wcls.nc",
                    "RandomizationResult": "wcls.nc", "BayesResult": "rand.nc",
                    "CrossCheck": "boot.nc"}  # fmt: skip
NETCDF_CASES = []
for cls_name, load in LOADERS.items():
    NETCDF_CASES += [
        Case(f"{cls_name}-missing-file", (lambda f: lambda c: f(c.dir / "nope.nc"))(load),
             DataError, ["nope.nc", "does not exist", r"written by to_netcdf\(\)"]),
        Case(f"{cls_name}-foreign-netcdf", (lambda f: lambda c: f(c.dir / "foreign.nc"))(load),
             DataError, ["foreign.nc", f"not a saved hte_mrt {cls_name}",
                         "from_netcdf of the class that wrote it"]),
        Case(f"{cls_name}-not-netcdf", (lambda f: lambda c: f(c.dir / "text.nc"))(load),
             DataError, ["text.nc", "from_netcdf of the class that wrote it"]),
        Case(f"{cls_name}-other-class", (lambda f, n: lambda c: f(c.dir / n))(
            load, OTHER_CLASS_FILE[cls_name]), DataError,
             [f"not a saved hte_mrt {cls_name}", "format tag 'hte_mrt\\.",
              "from_netcdf of the class that wrote it"]),
        Case(f"{cls_name}-directory", (lambda f: lambda c: f(c.dir))(load), DataError,
             [f"not a saved hte_mrt {cls_name}", "from_netcdf of the class"]),
        Case(f"{cls_name}-not-a-path", (lambda f: lambda c: f(5))(load), DataError,
             ["path", "str or Path"]),
    ]  # fmt: skip

# ------------------------------------------------------------------------------- data helpers
HELPER_CASES = [
    Case("dataset-case", lambda c: hm.load_dataset("HeartSteps"), DataError,
         ["'HeartSteps'", "Did you mean 'heartsteps'"]),
    Case("dataset-unknown", lambda c: hm.load_dataset("heartsteps.csv"), DataError,
         ["'heartsteps.csv'", r"pd\.read_csv"]),
    Case("dataset-not-string", lambda c: hm.load_dataset(["heartsteps"]), DataError,
         ["heartsteps", "bundled datasets"]),
    Case("dataset-as-data-string", lambda c: hm.load_dataset("heartsteps", as_data="yes"),
         DesignError, ["as_data", "True or False"]),
    Case("sim-n-participants-string", lambda c: hm.MRTSimulation(n_participants="30"),
         DesignError, ["n_participants", "pass the number itself"]),
    Case("sim-n-decisions-fraction", lambda c: hm.MRTSimulation(n_decisions=10.5), DesignError,
         ["n_decisions", "whole number"]),
    Case("sim-prob-string", lambda c: hm.MRTSimulation(prob="0.5"), DesignError,
         ["prob", r"such as 0\.5"]),
    Case("sim-prob-one", lambda c: hm.MRTSimulation(prob=1), DesignError,
         ["prob", r"\(0, 1\)"]),
    Case("sim-availability-zero", lambda c: hm.MRTSimulation(availability=0), DesignError,
         ["availability", r"\(0, 1\]"]),
    Case("lincomb-series-unknown-term", lambda c: c.fit.lincomb(pd.Series({"zz": 1})),
         DesignError, ["'zz'", "use the terms"]),
    Case("joint-test-series-unknown-term", lambda c: c.fit.joint_test(pd.Series({"zz": 1})),
         DesignError, ["'zz'", "use the terms"]),
    Case("boot-lincomb-series-unknown-term", lambda c: c.boot.lincomb(pd.Series({"zz": 1})),
         DesignError, ["'zz'", "use the terms"]),
    Case("lincomb-string-weights", lambda c: c.fit.lincomb(["1", "0"]), DesignError,
         ["weights must be numbers", r"pass 1\.0"]),
    Case("lincomb-frame-string-weight", lambda c: c.fit.lincomb(pd.DataFrame({"S": ["2"]})),
         DesignError, ["weight of 'S'", "such as 1.0"]),
    Case("lincomb-frame-nan", lambda c: c.fit.lincomb(pd.DataFrame({"S": [np.nan]})),
         DesignError, ["finite", r"\{term: weight\}"]),
    Case("lincomb-frame-names-length", lambda c: c.fit.lincomb(
        pd.DataFrame({"S": [1.0, 2.0]}), names=["a"]), DesignError,
         ["names", "one per combination"]),
    Case("to-netcdf-missing-folder", lambda c: c.fit.to_netcdf(c.dir / "nosuch" / "w.nc"),
         DataError, ["path", "does not exist", "create it first"]),
    Case("to-netcdf-none", lambda c: c.fit.to_netcdf(None), DataError,
         ["path must be a file name", "such as 'result.nc'"]),
    Case("to-netcdf-number", lambda c: c.fit.to_netcdf(1), DataError,
         ["path must be a file name", "such as 'result.nc'"]),
    Case("to-netcdf-folder", lambda c: c.fit.to_netcdf(c.dir), DataError,
         ["path", "is a folder", "give a file name"]),
    Case("boot-to-netcdf-missing-folder", lambda c: c.boot.to_netcdf(c.dir / "no" / "b.nc"),
         DataError, ["path", "create it first"]),
    Case("posterior-to-netcdf-none", lambda c: c.bayes().to_netcdf(None), DataError,
         ["path must be a file name", "such as 'result.nc'"]),
    Case("crosscheck-to-netcdf-folder", lambda c: hm.crosscheck(c.fit, c.boot).to_netcdf(c.dir),
         DataError, ["path", "is a folder", "give a file name"]),
    Case("design-to-csv-missing-folder", lambda c: hm.RandomizationDesign(
        days=2, per_day=3, probs=0.5).to_csv(c.dir / "nosuch" / "d.csv"), DataError,
         ["path", "does not exist", "create it first"]),
    Case("design-to-csv-none", lambda c: hm.RandomizationDesign(
        days=2, per_day=3, probs=0.5).to_csv(None), DataError,
         ["path must be a file name", "such as 'result.csv'"]),
    Case("sim-beta-length", lambda c: hm.MRTSimulation(beta=(1, 2)), DesignError,
         ["beta", r"\(beta0, beta1, beta2\)"]),
    Case("sim-endogenous-string", lambda c: hm.MRTSimulation(endogenous="no"), DesignError,
         ["endogenous", "True or False"]),
    Case("sim-sd-error-negative", lambda c: hm.MRTSimulation(sd_error=-1), DesignError,
         ["sd_error", "got -1", r"\[0, inf\)"]),
    Case("sim-sd-error-nan", lambda c: hm.MRTSimulation(sd_error=np.nan), DesignError,
         ["sd_error", "finite number", "got nan"]),
    Case("sim-ar-one", lambda c: hm.MRTSimulation(ar=1.0), DesignError,
         ["ar", r"\(-1, 1\)", "got 1.0"]),
    Case("sim-baseline-string", lambda c: hm.MRTSimulation(baseline="x"), DesignError,
         ["baseline", "got 'x'", "lambda s, tfrac"]),
    Case("sim-true-effect-string", lambda c: hm.MRTSimulation().true_effect("a", 1),
         DesignError, ["tfrac", "got 'a'", "number or an array"]),
    Case("sim-seed-string", lambda c: hm.MRTSimulation(n_participants=2, n_decisions=2)
         .simulate(seed="1"), DesignError, ["seed", "pass the number itself"]),
]  # fmt: skip

# issue 20: the standardized effect size and the distal / mediation / JIT simulators
SIM_CASES = [
    Case("effect-size-not-data", lambda c: hm.effect_size(c.frame, n_boot=0, progress=False),
         DataError, ["MRTData", "wrap the frame"]),
    Case("effect-size-categorical", lambda c: hm.effect_size(
        mrt(c, treatment="arm", prob=None, levels={"none": 0.5, "walk": 0.5}), n_boot=0,
        progress=False), DataError, ["binary treatment", "'arm'", "Recode"]),
    Case("effect-size-span", lambda c: hm.effect_size(c.data, span=0.01, n_boot=0,
         progress=False), DesignError, ["span=0.01", "larger span"]),
    Case("effect-size-controls", lambda c: hm.effect_size(c.data, controls="~ nope", n_boot=0,
         progress=False), FormulaError, ["controls", "Name columns"]),
    Case("effect-size-n-boot", lambda c: hm.effect_size(c.data, n_boot=1.5, progress=False),
         DesignError, ["n_boot", "whole number"]),
    Case("distal-sim-effect", lambda c: hm.DistalSimulation(effect=(1.0,)), DesignError,
         ["effect", r"\(gamma0, gamma1\)"]),
    Case("distal-sim-truth-formula", lambda c: hm.DistalSimulation().truth("~ S + Z"),
         DesignError, ["moderators", "monte_carlo_truth"]),
    Case("mediation-sim-effect-formula", lambda c: hm.MediationSimulation().truth("dp"),
         DesignError, ["effect", "one-sided formula"]),
    Case("jit-prob-goal-sum", lambda c: hm.JITSimulation(prob_goal=(0.33, 0.33, 0.33)),
         DesignError, ["prob_goal", "sum to 1", "1/3"]),
    Case("jit-use-window", lambda c: hm.JITSimulation(use_noise=5.0), DesignError,
         ["use_noise", r"log\(61\)"]),
    Case("jit-distal-outcome", lambda c: hm.JITSimulation().distal_truth(outcome="steps"),
         DesignError, ["outcome", "'total_pa' or 'goal_weeks'"]),
]  # fmt: skip

ALL_CASES = (
    DATA_CASES
    + WCLS_CASES
    + EMEE_CASES
    + RAND_CASES
    + BOOT_CASES
    + ESTIMAND_CASES
    + CROSS_CASES
    + RESULT_CASES
    + BAYES_CASES
    + BAYES_RESULT_CASES
    + NETCDF_CASES
    + HELPER_CASES
    + SIM_CASES
)


def test_catalogue_size():
    assert len(ALL_CASES) >= 60
    assert len({c.id for c in ALL_CASES}) == len(ALL_CASES)


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_bad_input(ctx, case):
    assert issubclass(case.exc, HteMrtError)
    with pytest.raises(case.exc) as info:
        case.call(ctx)
    msg = str(info.value)
    assert type(info.value) is case.exc or isinstance(info.value, case.exc)
    for pat in case.patterns:
        assert re.search(pat, msg), f"message lacks {pat!r}:\n{msg}"


# ------------------------------------------------------------------------------- degenerate data
def _constant(col, value):
    return lambda df: df.__setitem__(col, value)


def test_never_available_participant_warns_with_ids(ctx):
    df = edit(ctx, lambda d: (d.__setitem__("avail", np.where(d.id == 3, 0, d.avail)),
                              d.__setitem__("A", np.where(d.id == 3, 0, d.A))))  # fmt: skip
    with pytest.warns(DegenerateDataWarning, match=r"'avail'.*never available.*id=\[3\]"):
        data = mrt(ctx, df)
    fit = hm.wcls(data)
    assert fit.n == ctx.data.n_participants - 1
    notes = " ".join(fit.summary().notes)
    assert "no analysed decision point" in notes and "[3]" in notes
    assert "not counted in n" in notes
    # EMEE counts every participant in n (as MRTAnalysis): the note says so
    df["yb"] = (df["y"] > 0).astype(int)
    with pytest.warns(DegenerateDataWarning):
        data_b = mrt(ctx, df, outcome="yb")
    em = hm.emee(data_b)
    assert em.n == ctx.data.n_participants
    assert "counted in n and df" in " ".join(em.summary().notes)


def test_all_unavailable_warns_then_names_the_column(ctx):
    df = edit(ctx, lambda d: (d.__setitem__("avail", 0), d.__setitem__("A", 0)))
    with pytest.warns(DegenerateDataWarning, match=r"'avail'.*0 on every row"):
        data = mrt(ctx, df)
    with pytest.raises(DesignError, match="'avail'"):
        hm.wcls(data)


def test_constant_outcome_wcls(ctx):
    data = mrt(ctx, edit(ctx, _constant("y", 2.0)))
    with pytest.warns(DegenerateDataWarning, match=r"'y'.*constant \(= 2\)"):
        fit = hm.wcls(data)
    tab = fit.table()
    assert (tab["estimate"] == 0).all() and (tab["se"] == 0).all()
    assert tab["t"].isna().all() and tab["p"].isna().all()
    notes = " ".join(fit.summary().notes)
    assert "constant" in notes and "undefined" in notes
    with pytest.raises(DesignError, match="singular or undefined"):
        fit.joint_test()


def test_constant_outcome_randomization_test(ctx):
    data = mrt(ctx, edit(ctx, _constant("y", 2.0)))
    with pytest.warns(DegenerateDataWarning, match="constant"):
        rt = hm.randomization_test(data, n_resamples=20, seed=1, progress=False)
    tab = rt.table()
    # without the guard, NaN t's would give the smallest possible p_randomization, 1/(R+1)
    assert tab["p_randomization"].isna().all()
    assert "constant" in " ".join(rt.summary().notes)


def test_constant_outcome_bootstrap(ctx):
    data = mrt(ctx, edit(ctx, _constant("y", 2.0)))
    with pytest.warns(DegenerateDataWarning, match="constant"):
        boot = hm.bayesian_bootstrap(data, n_boot=20, seed=1, progress=False)
    assert (boot.table()["estimate"] == 0).all()
    assert "constant" in " ".join(boot.summary().notes)


def test_emee_all_one(ctx):
    data = mrt(ctx, edit(ctx, _constant("yb", 1)), outcome="yb")
    with pytest.warns(DegenerateDataWarning, match=r"'yb'.*constant \(= 1\)"):
        fit = hm.emee(data)
    tab = fit.table()
    assert (tab["estimate"] == 0).all() and tab["p"].isna().all()
    assert "constant" in " ".join(fit.summary().notes)


def test_emee_all_zero(ctx):
    data = mrt(ctx, edit(ctx, _constant("yb", 0)), outcome="yb")
    with pytest.warns(DegenerateDataWarning, match=r"'yb'.*is 0 on all"):
        fit = hm.emee(data)
    assert fit.table()["estimate"].isna().all()
    assert "undefined" in " ".join(fit.summary().notes)


# ------------------------------------------------------------------------------- lag
def test_lag_counts_decision_points_not_time_units(ctx):
    """With time = decision / 5, lag=1 is the outcome at the next decision point: the same
    estimate (to rounding) as lag=1 on the integer decision index, with no rows lost."""
    on_index = hm.wcls(ctx.data, lag=1)
    df = ctx.frame.copy()
    df["t"] = df["t"] / 5
    scaled = hm.wcls(mrt(ctx, df), lag=1)
    np.testing.assert_allclose(scaled.theta, on_index.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scaled.cov_theta, on_index.cov_theta, rtol=0, atol=1e-12)
    assert scaled.n_excluded == on_index.n_excluded
    # the lag-1 outcome is the next row's outcome, whatever the gaps in the time column
    gappy = ctx.frame.copy()
    gappy["t"] = gappy["t"] ** 2
    np.testing.assert_allclose(hm.wcls(mrt(ctx, gappy), lag=1).theta, on_index.theta, atol=1e-12)


def test_lag_skips_over_dropped_rows(ctx):
    """A row dropped for a missing outcome keeps its place: lag 1 of the row before it has no
    outcome (and is excluded), it does not jump to the row after."""
    df = ctx.frame.copy()
    i = first_available(df) + 1
    df.loc[i, "avail"], df.loc[i, "A"] = 1, 0
    df.loc[i, "y"] = np.nan
    data = mrt(ctx, df, missing="drop")
    fit = hm.wcls(data, lag=1)
    ex = fit.design.exclusions
    assert ((ex["id"] == df.loc[i - 1, "id"]) & (ex["t"] == df.loc[i - 1, "t"])).any()


def test_crosscheck_round_trip(ctx, tmp_path):
    cc = hm.crosscheck(ctx.fit, ctx.boot, lincombs={"S at 1": {"Intercept": 1, "S": 1}})
    cc.to_netcdf(tmp_path / "cc.nc")
    back = CrossCheck.from_netcdf(tmp_path / "cc.nc")
    pd.testing.assert_frame_equal(back.table(), cc.table(), check_dtype=False)
    assert back.labels == cc.labels and back.reference == cc.reference
    assert back.flagged == cc.flagged
    assert str(back.summary()) == str(cc.summary())


def test_randomization_result_round_trip(ctx, tmp_path):
    rt = hm.randomization_test(ctx.data, "~ S", n_resamples=30, seed=2, progress=False)
    rt.to_netcdf(tmp_path / "rt.nc")
    back = RandomizationResult.from_netcdf(tmp_path / "rt.nc", data=ctx.data)
    pd.testing.assert_frame_equal(back.table(), rt.table())
    np.testing.assert_array_equal(back.t_null, rt.t_null)
    assert back.seed == 2 and back.scheme == rt.scheme
    assert back.observed.design is not None


def test_lincomb_series_is_read_by_term_name(ctx):
    """A pandas Series of weights means {term: weight}, whatever the order of its index."""
    by_name = ctx.fit.lincomb(pd.Series({"S": 2.0, "Intercept": 1.0}))
    by_dict = ctx.fit.lincomb({"Intercept": 1.0, "S": 2.0})
    assert by_name["term"].tolist() == ["Intercept + 2*S"]
    np.testing.assert_allclose(by_name["estimate"], by_dict["estimate"])


def test_multiindex_columns_are_refused():
    """A frame with MultiIndex columns gets a DataError saying how to flatten them (it used to
    reach pandas as a KeyError)."""
    df = hm.MRTSimulation(n_participants=5, n_decisions=5).simulate(seed=1)
    df.columns = pd.MultiIndex.from_tuples([(c, "") for c in df.columns])
    with pytest.raises(hm.DataError, match=r"MultiIndex columns; flatten them"):
        hm.MRTData(df, id="id", time="t", treatment="A", outcome="y", prob="prob",
                   availability="avail")  # fmt: skip
