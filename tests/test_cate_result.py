"""CATEResult: saving (NetCDF + JSON, lossless round trip) and its plots."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from hte_mrt.errors import DataError, DesignError
from hte_mrt.estimators.learners import LinearInteraction
from hte_mrt.results.cate import CATEResult
from tests.crt_helpers import small_trial

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def fitted():
    _, data = small_trial(seed=4, K=12, m=10)
    return LinearInteraction(n_boot=20, n_jobs=1, seed=0).fit(data)


def _mixed_frame(n: int) -> pd.DataFrame:
    """Columns of every kind a prediction frame may hold, with missing values."""
    rng = np.random.default_rng(0)
    sex = pd.Categorical(rng.choice(["f", "m"], n), categories=["m", "f"], ordered=True)
    text = rng.choice(["urban", "rural"], n).astype(object)
    text[1] = np.nan
    count = pd.array(rng.integers(0, 5, n), dtype="Int64")
    count[2] = pd.NA
    return pd.DataFrame({
        "age": rng.normal(50, 10, n), "visits": rng.integers(0, 9, n), "sex": sex,
        "site_type": text, "smoker": rng.random(n) < 0.3, "count": count,
        "enrolled": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D"),
        3: rng.normal(size=n),  # a non-string column name
        "big": pd.array([2**53 + 1, None, *range(n - 2)], dtype="Int64"),  # beyond float64
        "flag": pd.array(rng.random(n) < 0.5, dtype="boolean"),
        "local_time": pd.date_range("2024-03-30", periods=n, freq="3h", tz="Europe/Paris"),
    })  # fmt: skip


def test_round_trip_is_lossless(fitted, tmp_path):
    m = fitted
    res = m.cate()
    path = res.to_netcdf(tmp_path / "cate.nc")
    back = CATEResult.from_netcdf(path)
    np.testing.assert_array_equal(back.estimate, res.estimate)
    np.testing.assert_array_equal(back.draws, res.draws)
    np.testing.assert_array_equal(back.cluster, res.cluster)
    pd.testing.assert_frame_equal(back.frame, res.frame)
    assert (back.learner, back.interval, back.conf_level) == ("linear", "bootstrap", 0.95)
    # the learner's description travels with the result, in the file and in the sidecar
    assert back.meta["learner_class"] == "LinearInteraction"
    assert back.meta["params"] == {"n_boot": 20, "n_jobs": 1, "seed": 0, "progress": True}
    assert back.meta["features"] == m.feature_names_
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["meta"]["params"]["n_boot"] == 20 and side["format"] == "hte_mrt.CATEResult/1"
    # text levels (cluster ids, x3) are stored in the file, not listed in the sidecar
    spec = {c["name"]: c for c in side["columns"]}
    assert spec["cl"]["levels"] == "column_0_levels" and spec["x3"]["kind"] == "object"
    pd.testing.assert_series_equal(back.ate("cluster"), res.ate("cluster"))
    pd.testing.assert_frame_equal(back.subgroups("x3"), res.subgroups("x3"))


def test_round_trip_keeps_column_types_and_missing_values(tmp_path):
    n = 40
    frame = _mixed_frame(n)
    rng = np.random.default_rng(1)
    res = CATEResult(
        estimate=rng.normal(size=n), draws=None, frame=frame,
        cluster=np.repeat(np.arange(8), 5), learner="test", meta={"note": np.int64(3)},
    )  # fmt: skip
    back = CATEResult.from_netcdf(res.to_netcdf(tmp_path / "mixed.nc"))
    pd.testing.assert_frame_equal(back.frame, frame)
    assert back.draws is None and back.interval == "none" and back.meta == {"note": 3}
    np.testing.assert_array_equal(back.cluster, np.repeat(np.arange(8), 5))
    # string cluster labels, e.g. "new" for rows predicted without a cluster column
    res.cluster = np.full(n, "new", dtype=object)
    back = CATEResult.from_netcdf(res.to_netcdf(tmp_path / "new.nc"))
    assert list(back.cluster) == ["new"] * n


def test_saving_refuses_what_it_cannot_restore_and_loading_a_foreign_file(tmp_path):
    n = 4
    res = CATEResult(estimate=np.zeros(n), draws=None, frame=pd.DataFrame({"a": np.ones(n)}),
                     cluster=np.arange(n), learner="t")  # fmt: skip
    # the sidecar sits beside the file: x.nc -> x.json, other names get .json appended
    res.to_netcdf(tmp_path / "run.v1")
    assert (tmp_path / "run.v1.json").is_file()
    with pytest.raises(DesignError, match="sidecar"):
        res.to_netcdf(tmp_path / "run.json")
    dup = pd.DataFrame(np.ones((n, 2)), columns=["a", "a"])
    with pytest.raises(DataError, match="duplicate column names"):
        CATEResult(np.zeros(n), None, dup, np.arange(n), "t").to_netcdf(tmp_path / "d.nc")
    bands = pd.DataFrame({"band": pd.cut(np.arange(n), [-1, 1, 9])})  # Interval levels
    with pytest.raises(DataError, match="'band' holds values of type Interval"):
        CATEResult(np.zeros(n), None, bands, np.arange(n), "t").to_netcdf(tmp_path / "b.nc")
    path = tmp_path / "other.nc"
    xr.Dataset({"estimate": ("individual", np.zeros(3))}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(DataError, match=r"not a saved (hte_mrt )?CATEResult"):
        CATEResult.from_netcdf(path)
    (tmp_path / "text.nc").write_text("not netcdf")
    with pytest.raises(DataError, match=r"not a saved (hte_mrt )?CATEResult"):
        CATEResult.from_netcdf(tmp_path / "text.nc")


def test_plots(fitted):
    import matplotlib.pyplot as plt

    m = fitted
    res = m.cate()
    ax = res.plot_cate()
    line = ax.get_lines()[0].get_ydata()
    np.testing.assert_array_equal(line, np.sort(res.estimate))
    assert len(ax.collections) == 1  # the interval band
    plt.close(ax.figure)
    ax = res.plot_subgroups("x3")
    sub = res.subgroups("x3")
    # one tick per level, the first level at the top, each at its estimate
    ticks = dict(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()), strict=True))
    want = [f"{lev} (n={n})" for lev, n in zip(sub["x3"], sub["n"], strict=True)]
    assert [ticks[y] for y in sorted(ticks, reverse=True)] == want
    pts = ax.get_lines()[0]
    np.testing.assert_allclose(np.asarray(pts.get_xdata(), float), sub["estimate"])
    np.testing.assert_array_equal(pts.get_ydata(), sorted(ticks, reverse=True))
    segs = ax.collections[0].get_segments()  # one interval line per level
    np.testing.assert_allclose([sg[0][0] for sg in segs], sub["lcl"])
    np.testing.assert_allclose([sg[1][0] for sg in segs], sub["ucl"])
    plt.close(ax.figure)
    # a (bootstrap) estimate outside its own interval still plots
    odd = CATEResult(np.full(6, 5.0), np.zeros((20, 6)), pd.DataFrame({"g": [0, 1] * 3}),
                     np.arange(6), "t", interval="bootstrap")  # fmt: skip
    plt.close(odd.plot_subgroups("g").figure)
    ax = res.plot_subgroups("x1", bins=[-10, 0, 10])
    assert len(ax.get_yticklabels()) == 2
    plt.close(ax.figure)


def test_contrasts_are_differences_of_subgroup_averages_draw_by_draw(fitted):
    res = fitted.cate()
    sub = res.subgroups("x3").set_index("x3")
    con = res.contrasts("x3").set_index("x3")
    assert list(con.index) == ["b", "c"] and set(con["reference"]) == {"a"}
    np.testing.assert_allclose(
        con["estimate"], sub.loc[["b", "c"], "estimate"] - sub.loc["a", "estimate"]
    )
    x3 = res.frame["x3"].to_numpy()
    d = res.draws[:, x3 == "c"].mean(axis=1) - res.draws[:, x3 == "a"].mean(axis=1)
    assert con.loc["c", "se"] == pytest.approx(np.std(d, ddof=1), rel=1e-12)
    assert con.loc["c", "lcl"] == pytest.approx(np.quantile(d, 0.025), rel=1e-12)
    assert con.loc["c", "pr_positive"] == np.mean(d > 0)
    assert (
        con.loc["c", "n"] == (x3 == "c").sum() and con.loc["c", "n_reference"] == (x3 == "a").sum()
    )
    # another reference, and bands of a numeric column
    assert list(res.contrasts("x3", reference="c")["x3"]) == ["a", "b"]
    band = res.contrasts("x1", bins=[-10, 0, 10])
    hi = res.frame["x1"].to_numpy() > 0
    assert band["estimate"].iloc[0] == pytest.approx(
        res.estimate[hi].mean() - res.estimate[~hi].mean(), rel=1e-12
    )
    with pytest.raises(DesignError, match="not a level"):
        res.contrasts("x3", reference="z")
    with pytest.raises(DesignError, match="single level"):
        res.contrasts(pd.Series(np.zeros(len(res))))
    # the reference is shown as the level (0, not 0.0), and categories keep their order
    g = pd.Series((res.frame["x1"] > 0).astype(int), name="pos")
    ref = res.contrasts(g, reference=0.0)["reference"].iloc[0]
    assert ref == 0 and isinstance(ref, int | np.integer)
    cat = pd.Series(pd.Categorical(res.frame["x3"], categories=["c", "b", "a"]), name="x3")
    assert list(res.subgroups(cat)["x3"]) == ["c", "b", "a"]
    assert list(res.contrasts(cat)["x3"]) == ["b", "a"]


def test_result_contract(fitted, tmp_path):
    """CATEResult follows the results contract: tidy per-individual table, a Summary of the
    ATEs, conf_int with statsmodels' alpha, a foreign file refused with a DataError."""
    from hte_mrt._contract import Result, Summary

    res = fitted.cate()
    assert isinstance(res, Result)
    tab = res.table()
    assert list(tab.columns) == ["cluster", "estimate", "se", "lcl", "ucl", "pr_positive"]
    assert len(tab) == len(res)
    np.testing.assert_allclose(tab["se"], res.draws.std(axis=0, ddof=1))
    np.testing.assert_allclose(tab["pr_positive"], (res.draws > 0).mean(axis=0))
    # conf_int(alpha=0.1) is the 90% interval, table(conf_level=0.9) the same
    ci = res.conf_int(alpha=0.1)
    np.testing.assert_allclose(ci["lcl"], np.quantile(res.draws, 0.05, axis=0))
    np.testing.assert_allclose(ci["ucl"], res.table(conf_level=0.9)["ucl"])
    assert res.ate(conf_level=0.5)["ucl"] < res.ate()["ucl"]
    s = res.summary()
    assert isinstance(s, Summary) and "linear" in s.title and "bootstrap" in s.title
    assert list(s.table["quantity"]) == [
        "ATE (individual-average)", "ATE (cluster-average)", "sd of CATE over individuals",
    ]  # fmt: skip
    assert {"estimate", "se", "lcl", "ucl", "pr_positive"} <= set(s.table.columns)
    assert any("shrinkage" in n for n in s.notes)
    assert "<table" in res._repr_html_() and "CATEResult" in repr(res)
    paper = res.table(style="paper")
    assert "Estimate (95% CI)" in paper.columns
    # a point learner without draws: estimates only, no intervals
    plain = LinearInteraction().fit(fitted.data_).cate()
    assert list(plain.table().columns) == ["cluster", "estimate"]
    with pytest.raises(DesignError, match="no draws"):
        plain.conf_int()
    with pytest.raises(DataError, match="does not exist"):
        CATEResult.from_netcdf(tmp_path / "missing.nc")


def test_moderator_importance_is_reproducible_at_its_defaults(fitted):
    """The permutations use the learner's seed unless one is given; progress=False is quiet."""
    a = fitted.moderator_importance(n_repeats=3, progress=False)
    b = fitted.moderator_importance(n_repeats=3, progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["covariate", "level", "importance", "perm_sd", "rank"]
    c = fitted.moderator_importance(n_repeats=3, seed=99, progress=False)
    assert not np.allclose(a.sort_values("covariate")["importance"],
                           c.sort_values("covariate")["importance"])  # fmt: skip


def test_progress_bars_show_and_can_be_silenced(capsys):
    """The bootstrap and moderator importance show a tqdm bar on stderr by default."""
    _, data = small_trial(seed=4, K=12, m=10)
    m = LinearInteraction(n_boot=5, n_jobs=1, seed=0).fit(data)
    m.bootstrap()
    assert "cluster bootstrap" in capsys.readouterr().err
    m.set_params(progress=False).bootstrap()
    m.moderator_importance(n_repeats=2)
    assert capsys.readouterr().err == ""
    m.moderator_importance(n_repeats=2, progress=True)
    assert "moderator importance" in capsys.readouterr().err
