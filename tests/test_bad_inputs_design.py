"""Catalogue of bad inputs on the design side (issue 18): the sample-size and power calculators
(continuous and binary), power tables, the minimum detectable effect, Curve constructors,
RandomizationDesign and its schedules, audits of malformed logs, simulated_power and
heterogeneity_power.

Each case is the call, the exception class (from the HteMrtError hierarchy) and regexes that the
message must contain: the name of the argument, and (every case) a hint of what to do.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

import hte_mrt as hm
from hte_mrt.design import DesignWarning, PowerNotReachableError
from hte_mrt.errors import DataError, DesignError, HteMrtError, MissingColumnError

HINT = (
    r"(?i)\b(pass|give|use|add|drop|remove|recode|convert|impute|replace|rename|raise|lower|"
    r"fill|refit|call|build|check|choose|name|deduplicate|randomize|round|widen|list|load|"
    r"increase|change|move)\b|e\.g\.|such as"
)

REF = dict(
    days=42,
    per_day=5,
    prob=0.4,
    availability=hm.Curve.quadratic(initial=0.7, mean=0.5, turn_day=42),
    effect=hm.Curve.quadratic(initial=0, mean=0.1, turn_day=28),
)
BIN = dict(prob=0.5, availability=0.8, beta=0.2, null_coef=np.log(0.3), decisions=30)
SIM = dict(days=10, per_day=5, prob=0.5, availability=0.8, effect=0.1, progress=False)


def ss(**kw):
    return hm.mrt_sample_size(**{**REF, **kw})


def bss(**kw):
    return hm.binary_sample_size(**{**BIN, **kw})


def sim(n=30, **kw):
    return hm.simulated_power(n, **{**SIM, "n_reps": 2, **kw})


@functools.cache
def rdesign():
    return hm.RandomizationDesign(days=14, per_day=5, probs=0.4)


def log():
    return rdesign().schedule(5, seed=1)


@functools.cache
def ref_design():
    return ss().design


CASES = [
    # ---- mrt_sample_size / mrt_power / power_table / minimum_detectable_effect -----------------
    ("ss-days-string", lambda: ss(days="42"), DesignError, [r"days", r"a string"]),
    ("ss-days-zero", lambda: ss(days=0), DesignError, [r"days must be a whole number >= 1"]),
    ("ss-days-fraction", lambda: ss(days=42.5), DesignError, [r"days"]),
    ("ss-per_day-bool", lambda: ss(per_day=True), DesignError, [r"per_day", r"a bool"]),
    ("ss-q-zero", lambda: ss(q=0), DesignError, [r"\bq must be"]),
    ("ss-prob-one", lambda: ss(prob=1.0), DesignError, [r"prob must lie in \(0, 1\)"]),
    ("ss-prob-string", lambda: ss(prob="0.4"), DesignError, [r"prob must be a Curve"]),
    ("ss-prob-length", lambda: ss(prob=[0.4] * 7), DesignError, [r"prob has 7 values"]),
    ("ss-prob-nan", lambda: ss(prob=np.r_[0.4, np.full(41, np.nan)]), DesignError,
     [r"prob is not finite"]),
    ("ss-availability-above-one", lambda: ss(availability=1.2), DesignError,
     [r"availability must lie in \[0, 1\]"]),
    ("ss-availability-zero", lambda: ss(availability=0.0), DesignError,
     [r"availability is 0 at every decision point"]),
    ("ss-availability-curve-out-of-range",
     lambda: ss(availability=hm.Curve.linear(initial=0.9, mean=1.0)), DesignError,
     [r"availability linear\(initial=0.9, mean=1\) must lie in \[0, 1\]"]),
    ("ss-effect-nan", lambda: ss(effect=np.nan), DesignError, [r"effect"]),
    ("ss-effect-string", lambda: ss(effect="big"), DesignError, [r"effect must be a Curve"]),
    ("ss-effect-dict", lambda: ss(effect={"mean": 0.1}), DesignError,
     [r"effect must be a Curve"]),
    ("ss-z-unknown", lambda: ss(z="cubic"), DesignError, [r"z must be", r"'cubic'"]),
    ("ss-z-vector-effect-without-z", lambda: ss(effect=np.full(42, 0.1)), DesignError, [r"\bz\b"]),
    ("ss-power-percent", lambda: ss(power=80), DesignError,
     [r"power \(target\) must lie in \(0, 1\)", r"did you mean 0.8"]),
    ("ss-power-string", lambda: ss(power="0.8"), DesignError, [r"power", r"a string"]),
    ("ss-alpha-zero", lambda: ss(alpha=0), DesignError, [r"alpha \(significance level\)"]),
    ("ss-alpha-string", lambda: ss(alpha="0.05"), DesignError, [r"alpha", r"a string"]),
    ("ss-power-below-alpha", lambda: ss(alpha=0.5, power=0.4), DesignError,
     [r"must exceed alpha"]),
    ("ss-n_max-string", lambda: ss(n_max="100"), DesignError, [r"n_max"]),
    ("ss-n_max-too-small", lambda: ss(n_max=20), PowerNotReachableError, [r"n_max = 20"]),
    ("ss-effect-zero", lambda: ss(effect=0.0), PowerNotReachableError, [r"effect is zero"]),
    ("ss-quadratic-impossible",
     lambda: ss(effect=hm.Curve.quadratic(initial=0.2, mean=0.1, turn_day=28, turn="max")),
     DesignError, [r"effect: Curve.quadratic", r"initial <= mean"]),
    ("power-n-too-small", lambda: hm.mrt_power(5, **REF), DesignError,
     [r"N = 5", r"N - p - q"]),
    ("power-n-string", lambda: hm.mrt_power("46", **REF), DesignError,
     [r"n \(number of participants\)"]),
    ("power-n-fraction", lambda: hm.mrt_power(46.5, **REF), DesignError,
     [r"n \(number of participants\) must be whole"]),
    ("power-n-bool", lambda: hm.mrt_power(True, **REF), DesignError,
     [r"n \(number of participants\)"]),
    ("power-n-inf", lambda: hm.mrt_power(np.inf, **REF), DesignError,
     [r"n \(number of participants\) must be finite"]),
    ("power-n-array", lambda: hm.mrt_power(np.array([46, 50]), **REF), DesignError,
     [r"n \(number of participants\) must be one whole number", r"hm\.power_table"]),
    ("power-n-list-of-one", lambda: hm.mrt_power([46], **REF), DesignError,
     [r"must be one whole number", r"hm\.power_table"]),
    ("plot-source-string", lambda: hm.plot_power_curve("x"), DesignError,
     [r"plot_power_curve: source must be", r"hm\.mrt_sample_size"]),
    ("plot-ax-string", lambda: hm.plot_power_curve(ref_design(), [30, 40], ax="x"), DesignError,
     [r"ax must be matplotlib Axes", r"ax=None"]),
    ("power-alpha-above-one", lambda: hm.mrt_power(46, **REF, alpha=1.5), DesignError,
     [r"alpha"]),
    ("power_table-empty", lambda: hm.power_table([], **REF), DesignError,
     [r"n \(number of participants\): no values"]),
    ("power_table-string", lambda: hm.power_table("20-40", **REF), DesignError,
     [r"n \(number of participants\) must be numbers"]),
    ("power_table-nan", lambda: hm.power_table([20, np.nan], **REF), DesignError,
     [r"must be finite"]),
    ("power_table-mixed-types", lambda: hm.power_table([20, "30"], **REF), DesignError,
     [r"n \(number of participants\) must be numbers"]),
    ("mde-n-string", lambda: hm.minimum_detectable_effect("46", **REF), DesignError,
     [r"n \(number of participants\)"]),
    ("mde-power-one", lambda: hm.minimum_detectable_effect(46, **REF, power=1.0), DesignError,
     [r"power \(target\)"]),
    ("mde-n-too-small", lambda: hm.minimum_detectable_effect(5, **REF), DesignError,
     [r"N = 5"]),
    ("ss-availability-string-array", lambda: ss(availability=np.array(["0.8"] * 42)),
     DesignError, [r"availability must be a Curve, a number or a vector of numbers"]),
    # ---- binary_sample_size / binary_power --------------------------------------------------
    ("binary-prob-zero", lambda: bss(prob=0), DesignError, [r"prob must lie in \(0, 1\)"]),
    ("binary-beta-too-large", lambda: bss(beta=2.0), DesignError,
     [r"treated success probability", r"Change beta"]),
    ("binary-null_coef-positive", lambda: bss(null_coef=0.5), DesignError,
     [r"null success probability", r"Change null_coef"]),
    ("binary-decisions-string", lambda: bss(decisions="30"), DesignError, [r"decisions"]),
    ("binary-decisions-missing",
     lambda: hm.binary_sample_size(prob=0.5, availability=0.8, beta=0.2, null_coef=-1.2),
     DesignError, [r"decisions"]),
    ("binary-beta-string", lambda: bss(beta="x"), DesignError, [r"beta must be a number"]),
    ("binary-prob-bool", lambda: bss(prob=True), DesignError, [r"prob must be a number"]),
    ("binary-f-columns", lambda: bss(f=np.ones((30, 2))), DesignError,
     [r"beta has 1 value\(s\) but f has 2"]),
    ("binary-g-nonfinite", lambda: bss(g=np.full(30, np.nan)), DesignError, [r"\bg must be"]),
    ("binary-f-dependent", lambda: bss(f=np.ones((30, 2)), beta=[0.1, 0.1]), DesignError,
     [r"f has linearly dependent columns"]),
    ("binary-lengths-disagree", lambda: bss(prob=np.full(20, 0.5)), DesignError,
     [r"disagree on the number of decision points"]),
    ("binary-power-one", lambda: bss(power=1.0), DesignError, [r"power \(target\)"]),
    ("binary-power-n-small", lambda: hm.binary_power(1, **BIN), DesignError, [r"N = 1"]),
    ("binary-power-n-string", lambda: hm.binary_power("50", **BIN), DesignError,
     [r"n \(number of participants\)"]),
    # ---- Curve constructors ----------------------------------------------------------------
    ("curve-constant-string", lambda: hm.Curve.constant("a"), DesignError,
     [r"Curve.constant\(value\)"]),
    ("curve-constant-nan", lambda: hm.Curve.constant(np.nan), DesignError,
     [r"Curve.constant\(value\) must be finite"]),
    ("curve-linear-string", lambda: hm.Curve.linear(initial="0", mean=0.1), DesignError,
     [r"Curve.linear\(initial\)"]),
    ("curve-quadratic-turn_day-zero", lambda: hm.Curve.quadratic(initial=0, mean=0.1, turn_day=0),
     DesignError, [r"turn_day"]),
    ("curve-quadratic-turn", lambda: hm.Curve.quadratic(0, 0.1, 28, turn="maximum"), DesignError,
     [r"Curve.quadratic\(turn\)"]),
    ("curve-quadratic-one-day", lambda: hm.Curve.quadratic(0, 0.1, 1).daily(1, name="effect"),
     DesignError, [r"effect: ", r"initial"]),
    ("curve-from_values-empty", lambda: hm.Curve.from_values([]), DesignError,
     [r"Curve.from_values"]),
    ("curve-from_values-text", lambda: hm.Curve.from_values(["a"]), DesignError,
     [r"Curve.from_values needs a vector of numbers"]),
    ("curve-from_values-string", lambda: hm.Curve.from_values("0.1"), DesignError,
     [r"Curve.from_values", r"string"]),
    ("curve-from_values-nan", lambda: hm.Curve.from_values([0.1, np.nan]), DesignError,
     [r"finite"]),
    ("curve-scaled-string", lambda: hm.Curve.constant(0.1).scaled("2"), DesignError,
     [r"Curve.scaled\(factor\)", r"a string"]),
    ("curve-scaled-nan", lambda: hm.Curve.constant(0.1).scaled(np.nan), DesignError,
     [r"Curve.scaled\(factor\) must be finite"]),
    ("curve-daily-string", lambda: hm.Curve.constant(0.1).daily("5"), DesignError,
     [r"days must be a whole number"]),
    ("curve-daily-zero", lambda: hm.Curve.constant(0.1).daily(0), DesignError,
     [r"days must be a whole number >= 1"]),
    ("curve-expand-per_day-zero", lambda: hm.Curve.constant(0.1).expand(5, 0), DesignError,
     [r"per_day must be a whole number >= 1"]),
    ("curve-from_values-2d", lambda: hm.Curve.from_values(np.ones((2, 2))), DesignError,
     [r"Curve.from_values needs a vector \(1-D\)", r"shape \(2, 2\)"]),
    ("curve-values-wrong-length", lambda: ss(effect=hm.Curve.from_values([0.1] * 5), z="constant"),
     DesignError, [r"effect: 5 values"]),
    # ---- RandomizationDesign / schedule -------------------------------------------------------
    ("rd-days-zero", lambda: hm.RandomizationDesign(days=0, per_day=3, probs=0.5), DesignError,
     [r"days"]),
    ("rd-probs-above-one", lambda: hm.RandomizationDesign(days=2, per_day=3, probs=1.2),
     DesignError, [r"probs"]),
    ("rd-probs-string", lambda: hm.RandomizationDesign(days=2, per_day=3, probs="half"),
     DesignError, [r"probs"]),
    ("rd-probs-length", lambda: hm.RandomizationDesign(days=2, per_day=3, probs=[0.5] * 4),
     DesignError, [r"probs has 4 values"]),
    ("rd-levels-one", lambda: hm.RandomizationDesign(days=2, per_day=3, probs=0.5, levels=(0,)),
     DesignError, [r"levels"]),
    ("rd-availability-two",
     lambda: hm.RandomizationDesign(days=2, per_day=3, probs=0.5, availability=2), DesignError,
     [r"availability"]),
    ("rd-state_probs-sum",
     lambda: hm.RandomizationDesign(days=2, per_day=3, probs={"a": 0.5, "b": 0.3},
                                    state_probs={"a": 0.5, "b": 0.6}),
     DesignError, [r"state_probs must be >= 0 and sum to 1"]),
    ("rd-state_probs-without-states",
     lambda: hm.RandomizationDesign(days=2, per_day=3, probs=0.5, state_probs={"a": 1}),
     DesignError, [r"state_probs"]),
    ("rd-probs-empty-dict", lambda: hm.RandomizationDesign(days=2, per_day=3, probs={}),
     DesignError, [r"probs"]),
    ("rd-probs-zero", lambda: hm.RandomizationDesign(days=2, per_day=3, probs=0.0), DesignError,
     [r"probs: the treatment is deterministic", r"strictly inside \(0, 1\)"]),
    ("rd-probs-one", lambda: hm.RandomizationDesign(days=2, per_day=3, probs=1.0), DesignError,
     [r"probs: the treatment is deterministic"]),
    ("rd-state_probs-string",
     lambda: hm.RandomizationDesign(days=2, per_day=3, probs={"hi": 0.5, "lo": 0.3},
                                    state_probs={"hi": "0.5", "lo": 0.5}),
     DesignError, [r"state_probs must map each state to a number", r"0.5, not '0.5'"]),
    ("stated-day-out-of-range", lambda: rdesign().stated([15], [1]), DesignError,
     [r"stated: day 15 is off the design's grid", r"from 1 to 14"]),
    ("stated-day-negative", lambda: rdesign().stated([-1], [1]), DesignError,
     [r"stated: day -1"]),
    ("stated-day-fraction", lambda: rdesign().stated([1.5], [1]), DesignError,
     [r"stated: day 1.5"]),
    ("stated-decision-out-of-range", lambda: rdesign().stated([1], [6]), DesignError,
     [r"stated: decision 6", r"from 1 to 5"]),
    ("stated-lengths-differ", lambda: rdesign().stated([1, 2], [1]), DesignError,
     [r"day has 2 values but decision has 1"]),
    ("stated-day-text", lambda: rdesign().stated(["a"], [0]), DesignError,
     [r"stated: day must be a vector of whole numbers"]),
    ("schedule-states-without-states", lambda: rdesign().schedule(5, seed=1,
                                                                 states=np.zeros((5, 70))),
     DesignError, [r"schedule: states is given", r"drop states"]),
    ("schedule-participants-zero", lambda: rdesign().schedule(0, seed=1), DesignError,
     [r"participants"]),
    ("schedule-participants-string", lambda: rdesign().schedule("5", seed=1), DesignError,
     [r"participants"]),
    ("schedule-participants-duplicate-ids", lambda: rdesign().schedule(["a", "a"], seed=1),
     DesignError, [r"participants"]),
    ("schedule-seed-string", lambda: rdesign().schedule(5, seed="a"), DesignError, [r"seed"]),
    # ---- audit with malformed logs ----------------------------------------------------------
    ("audit-log-ndarray", lambda: hm.audit(log().to_numpy(), rdesign()), DesignError,
     [r"log must be a pandas DataFrame"]),
    ("audit-log-empty", lambda: hm.audit(log().iloc[:0], rdesign()), DataError,
     [r"log has no rows"]),
    ("audit-no-design", lambda: hm.audit(log()), DesignError, [r"design", r"prob="]),
    ("audit-design-type", lambda: hm.audit(log(), "design"), DesignError,
     [r"design must be a RandomizationDesign"]),
    ("audit-treatment-column-missing", lambda: hm.audit(log().drop(columns="treatment"),
                                                        rdesign()),
     MissingColumnError, [r"treatment column 'treatment'", r"treatment="]),
    ("audit-day-column-renamed", lambda: hm.audit(log().rename(columns={"day": "Day"}),
                                                  rdesign()),
     MissingColumnError, [r"day column 'day'"]),
    ("audit-availability-column-missing", lambda: hm.audit(log(), rdesign(), available="avail"),
     MissingColumnError, [r"availability column 'avail'", r"available="]),
    ("audit-prob-column-missing", lambda: hm.audit(log(), prob="p"), MissingColumnError,
     [r"stated probability column 'p'", r"prob="]),
    ("audit-participants-string", lambda: hm.audit(log(), rdesign(), participants="abc"),
     DesignError, [r"participants must be a list of participant ids"]),
    ("audit-prob-column-strings",
     lambda: hm.audit(log().assign(p=lambda d: d["prob_1"].astype(str)), prob="p"), DataError,
     [r"stated probability column 'p'", r"pd\.to_numeric"]),
    ("audit-alpha-two", lambda: hm.audit(log(), rdesign(), alpha=2), DesignError, [r"alpha"]),
    ("audit-alpha-string", lambda: hm.audit(log(), rdesign(), alpha="0.05"), DesignError,
     [r"alpha"]),
    ("audit-block_days-zero", lambda: hm.audit(log(), rdesign(), block_days=0), DesignError,
     [r"block_days"]),
    ("audit-conf_level-percent", lambda: hm.audit(log(), rdesign(), conf_level=95), DesignError,
     [r"conf_level"]),
    ("audit-levels-mismatch", lambda: hm.audit(log(), rdesign(), levels=(0, 2)), DesignError,
     [r"levels \(0, 2\) differ"]),
    # ---- simulated_power / heterogeneity_power -------------------------------------------------
    ("sim-n-string", lambda: sim("30"), DesignError, [r"n \(number of participants\)"]),
    ("sim-n-too-small", lambda: sim(4), DesignError, [r"N = 4"]),
    ("sim-n_reps-zero", lambda: sim(n_reps=0), DesignError, [r"n_reps"]),
    ("sim-n_reps-string", lambda: sim(n_reps="10"), DesignError, [r"n_reps"]),
    ("sim-rho-one", lambda: sim(rho=1), DesignError, [r"rho"]),
    ("sim-rho-string", lambda: sim(rho="a"), DesignError, [r"rho"]),
    ("sim-sd_slope-negative", lambda: sim(sd_slope=-1), DesignError, [r"sd_slope"]),
    ("sim-availability_feedback-two", lambda: sim(availability_feedback=2), DesignError,
     [r"availability_feedback"]),
    ("sim-sd_cluster-string", lambda: sim(sd_cluster="0.5"), DesignError, [r"sd_cluster"]),
    ("sim-cluster_size-zero", lambda: sim(cluster_size=0), DesignError, [r"cluster_size"]),
    ("sim-cluster_size-without-sd_cluster", lambda: sim(cluster_size=7), DesignError,
     [r"cluster_size=7 has no effect", r"sd_cluster"]),
    ("sim-cluster_size-above-n", lambda: sim(cluster_size=40, sd_cluster=0.5), DesignError,
     [r"cluster_size=40 exceeds n = 30"]),
    ("sim-seed-generator", lambda: sim(seed=np.random.default_rng(1)), DesignError,
     [r"seed must be None, a non-negative integer", r"Generator", r"seed=1"]),
    ("sim-client-string", lambda: sim(client="x"), DesignError,
     [r"client must be a dask.distributed.Client", r"client=None"]),
    ("sim-small_sample-string", lambda: sim(small_sample="no"), DesignError,
     [r"small_sample must be True or False"]),
    ("sim-seed-string", lambda: sim(seed="a"), DesignError, [r"seed"]),
    ("sim-alpha-two", lambda: sim(alpha=2), DesignError, [r"alpha"]),
    ("sim-conf_level-percent", lambda: sim(conf_level=95), DesignError, [r"conf_level"]),
    ("sim-progress-string", lambda: sim(progress="no"), DesignError, [r"progress"]),
    ("sim-n_jobs-zero", lambda: sim(n_jobs=0), DesignError, [r"n_jobs"]),
    ("sim-design-invalid", lambda: sim(prob=1.5), DesignError, [r"prob must lie"]),
    ("heterogeneity-sd_slope-string",
     lambda: hm.heterogeneity_power(ref_design(), 46, sd_slope="a"), DesignError,
     [r"sd_slope"]),
    ("heterogeneity-n-too-small", lambda: hm.heterogeneity_power(ref_design(), 3, sd_slope=0.1),
     DesignError, [r"N = 3"]),
    ("heterogeneity-design-type", lambda: hm.heterogeneity_power("design", 46, sd_slope=0.1),
     DesignError, [r"design must be a ContinuousDesign"]),
    ("heterogeneity-alpha", lambda: hm.heterogeneity_power(ref_design(), 46, 0.1, alpha=0),
     DesignError, [r"alpha"]),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exc", "patterns"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input(call, exc, patterns):
    """The exception class, the name of the argument, and what to do."""
    with pytest.raises(exc) as info:
        call()
    assert isinstance(info.value, HteMrtError)
    msg = str(info.value)
    for pat in patterns:
        assert re.search(pat, msg), f"{pat!r} not in: {msg}"
    assert re.search(HINT, msg), f"no hint of what to do in: {msg}"


def test_catalogue_size():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 50


def test_small_n_warns():
    """A sample size below 10 comes with a DesignWarning (MRT-SS never returns fewer than 10),
    from the continuous and the binary calculator alike, and with the note on the result."""
    kw = dict(days=10, per_day=5, prob=0.5, availability=1.0, effect=0.5)
    with pytest.warns(DesignWarning, match=r"N = \d is below 10.*unreliable") as rec:
        res = hm.mrt_sample_size(**kw)
    assert res.n < 10 and "below 10" in res.note
    assert re.search(HINT, str(rec[0].message))
    with pytest.warns(DesignWarning, match=r"below 10.*unreliable"):
        b = hm.binary_sample_size(prob=0.5, availability=1.0, beta=0.7, null_coef=np.log(0.3),
                                  decisions=200)  # fmt: skip
    assert b.n < 10


def test_turning_day_after_the_trial_is_accepted():
    """A quadratic whose turning day lies after the last day is defined on the trial's days
    (monotone there): accepted, with the stated initial value and mean."""
    v = hm.Curve.quadratic(initial=0.7, mean=0.5, turn_day=42).daily(28)
    assert v[0] == pytest.approx(0.7) and v.mean() == pytest.approx(0.5)
    assert np.all(np.diff(v) < 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shape="cubic", mean=0.1), r"shape must be one of .*hm\.Curve\.linear"),
        (dict(shape="linear", mean=0.5), r"needs initial=.*hm\.Curve\.linear"),
        (dict(shape="quadratic", initial=0, mean=0.1), r"needs turn_day=.*hm\.Curve\.quadratic"),
        (dict(shape="constant", mean="0.1"), r"Curve\(mean\)"),
    ],
)
def test_curve_built_directly_is_checked(kwargs, match):
    """``hm.Curve(...)`` called directly is checked like its classmethods (a probe found a plain
    TypeError later, in mrt_sample_size)."""
    with pytest.raises(hm.DesignError, match=match):
        hm.Curve(**kwargs)
