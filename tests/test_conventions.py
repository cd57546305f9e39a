"""One name per idea (docs/conventions.md) and one results contract, checked on the public surface.

The banned second names live in ``hte_mrt._contract`` (``ARGUMENT_SYNONYMS``,
``COLUMN_SYNONYMS``). This test walks every public name of ``import hte_mrt as hm`` (functions,
classes and their public methods) and every result class of the package, and fits small models to
read their tables.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm
from hte_mrt._contract import ARGUMENT_SYNONYMS, COLUMN_SYNONYMS, Result, Summary

BANNED_ARGS = {bad: good for good, bads in ARGUMENT_SYNONYMS.items() for bad in bads}
BANNED_COLS = {bad: good for good, bads in COLUMN_SYNONYMS.items() for bad in bads}


def _public_callables():
    """(qualified name, callable) for every public function, class and public method."""
    seen = set()
    for name in hm.__all__:
        obj = getattr(hm, name)
        if not callable(obj) or (isinstance(obj, type) and issubclass(obj, BaseException)):
            continue
        yield f"hm.{name}", obj
        if isinstance(obj, type):
            for attr, member in inspect.getmembers(obj):
                if attr.startswith("_") and attr != "__init__":
                    continue
                fn = member.fget if isinstance(member, property) else member
                if callable(fn) and id(fn) not in seen:
                    seen.add(id(fn))
                    yield f"hm.{name}.{attr}", fn


def _result_classes():
    out = {}
    for m in pkgutil.walk_packages(hm.__path__, prefix="hte_mrt."):
        if m.name.rsplit(".", 1)[-1].startswith("_kernel"):
            continue
        mod = importlib.import_module(m.name)
        for cname, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ != mod.__name__:
                continue
            if cname.endswith("Result") or cname in ("CalibrationTest", "CrossCheck", "JointTest"):
                out[f"{cls.__module__}.{cname}"] = cls
    return out


def test_no_second_name_in_public_signatures():
    bad = []
    for qual, fn in _public_callables():
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            continue
        for p in sig.parameters:
            if p in BANNED_ARGS:
                bad.append(f"{qual}({p}=...): use {BANNED_ARGS[p]!r}")
    assert not bad, "second names for one idea (docs/conventions.md):\n" + "\n".join(bad)


def test_every_result_class_follows_the_contract():
    classes = _result_classes()
    assert len(classes) >= 8, sorted(classes)  # the walk found the package's results
    bad = [
        f"{q}: missing {m}"
        for q, cls in classes.items()
        for m in ("table", "summary", "_repr_html_", "conf_int", "to_xarray", "to_netcdf")
        if not callable(getattr(cls, m, None))
    ]
    not_contract = [q for q, cls in classes.items() if not issubclass(cls, Result)]
    assert not bad, "\n".join(bad)
    assert not not_contract, f"result classes outside hte_mrt._contract.Result: {not_contract}"


def test_the_checks_would_catch_a_second_name():
    """Test of the test: a function with a banned argument and a table with a banned column."""

    def f(data, random_state=None, level=0.9):
        return data

    names = [p for p in inspect.signature(f).parameters if p in BANNED_ARGS]
    assert names == ["random_state", "level"]
    assert _bad_columns(pd.DataFrame(columns=["term", "mean", "p_gt_0"])) == ["mean", "p_gt_0"]


def _bad_columns(tab: pd.DataFrame) -> list[str]:
    return [str(c) for c in tab.columns if str(c) in BANNED_COLS]


CHECKED: set[str] = set()


def _check(res, label: str, tmp_path=None):
    CHECKED.add(type(res).__name__)
    tab = res.table()
    assert isinstance(tab, pd.DataFrame), label
    assert not _bad_columns(tab), f"{label}.table(): {_bad_columns(tab)}"
    s = res.summary()
    assert isinstance(s, Summary), f"{label}.summary() returns {type(s).__name__}"
    assert isinstance(s.table, pd.DataFrame) and "<table" in s._repr_html_() and str(s)
    assert not _bad_columns(s.table), f"{label}.summary().table: {_bad_columns(s.table)}"
    paper = res.table(style="paper")
    assert not paper.isna().any().any() and not (paper.astype(str) == "None").any().any(), label
    assert repr(res).startswith("<") and len(repr(res)) < 300, label
    if tmp_path is not None:  # the saved form is NetCDF + a JSON sidecar
        path = res.to_netcdf(tmp_path / f"{label}.nc")
        assert path.exists() and path.with_suffix(".json").exists(), label


@pytest.fixture(scope="module")
def heartsteps():
    return hm.load_dataset("heartsteps", as_data=True)


def test_frequentist_tables_use_the_conventional_columns(heartsteps, tmp_path):
    fit = hm.wcls(heartsteps, moderators="~ study_day_nogap", controls="~ jbsteps30pre_log")
    _check(fit, "wcls", tmp_path)
    ci = fit.conf_int(0.05)  # statsmodels' meaning: a 95% interval
    tab = fit.table(0.95).set_index("term")
    np.testing.assert_allclose(ci["lcl"], tab["lcl"])
    _check(fit.joint_test(), "joint_test")
    rt = hm.randomization_test(heartsteps, "~ 1", "~ jbsteps30pre_log", n_resamples=50, seed=1,
                               progress=False)  # fmt: skip
    _check(rt, "randomization_test", tmp_path)
    boot = hm.bayesian_bootstrap(heartsteps, "~ 1", "~ jbsteps30pre_log", n_boot=200, seed=1,
                                 progress=False)  # fmt: skip
    _check(boot, "bayesian_bootstrap", tmp_path)
    _check(hm.crosscheck(hm.wcls(heartsteps, "~ 1", "~ jbsteps30pre_log"), boot), "crosscheck")
    sim = hm.MRTSimulation(n_participants=30, n_decisions=20, endogenous=False)
    es = hm.effect_size(sim.mrt_data(seed=1), n_boot=20, seed=1, progress=False)
    _check(es, "effect_size", tmp_path)


def test_bayesian_tables_use_the_conventional_columns(tmp_path):
    data = hm.MRTSimulation(n_participants=20, n_decisions=20).mrt_data(seed=1)
    post = hm.BayesMRT("~ 1", "~ 1", chains=1, draws=100, tune=100, seed=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hm.ConvergenceWarning)  # 100 draws: a contract check
        res = post.fit(data)
    _check(res, "BayesMRT", tmp_path)


def test_design_and_cate_tables_use_the_conventional_columns(tmp_path):
    design = dict(days=42, per_day=5, effect=0.1, availability=0.8, prob=0.6)
    _check(hm.mrt_sample_size(**design), "mrt_sample_size", tmp_path)
    _check(hm.mrt_power(40, **design), "mrt_power")
    _check(hm.minimum_detectable_effect(40, days=42, per_day=5, availability=0.8, prob=0.6),
           "minimum_detectable_effect")  # fmt: skip
    _check(hm.simulated_power(40, **design, n_reps=20, seed=1, progress=False),
           "simulated_power")  # fmt: skip
    sim = hm.CRTSimulation(n_clusters=24)
    data = sim.crt_data(seed=1)
    learner = hm.LinearInteraction(n_boot=20, seed=1, progress=False).fit(data)
    _check(learner.cate(), "CATEResult", tmp_path)
    cal = hm.calibration_test(data, hm.LinearInteraction(), n_splits=2, seed=1, progress=False)
    _check(cal, "calibration_test")


def test_distal_tables_use_the_conventional_columns(tmp_path):
    frame = hm.MRTSimulation(n_participants=20, n_decisions=10).simulate(seed=1)
    frame["yd"] = frame.groupby("id")["y"].transform("mean")
    frame["m"] = frame["y"].fillna(0.0)
    data = hm.MRTData(frame, id="id", time="t", treatment="A", outcome="yd", prob="prob",
                      availability="avail")  # fmt: skip
    fit = hm.dcee(data, "~ 1", "~ S")
    _check(fit, "dcee", tmp_path)
    _check(hm.mcee(data, "m", "~ 1", "~ S + m"), "mcee", tmp_path)
    _check(fit.bayesian_bootstrap(n_boot=100, seed=1, progress=False), "distal_bootstrap",
           tmp_path)  # fmt: skip


def test_every_result_class_was_checked():
    """The table checks above cover the package's result classes (a new result class must be
    added to them)."""
    covered = {
        "ExcursionResult", "JointTest", "RandomizationResult", "BootstrapResult", "CrossCheck",
        "BayesResult", "SampleSizeResult", "PowerResult", "MDEResult", "SimulatedPowerResult",
        "CATEResult", "CalibrationTest", "DistalResult", "DistalBootstrapResult",
        "EffectSizeResult",
    }  # fmt: skip
    names = {q.rsplit(".", 1)[1] for q in _result_classes()}
    # checked elsewhere: AuditResult (tests/test_randomization_design.py), StudyResult
    # (tests/test_crt_simulation.py), RunResult (tests/test_plans.py)
    elsewhere = {"AuditResult", "StudyResult", "RunResult", "Result", "_DesignResult"}
    assert names - covered <= elsewhere, names - covered
