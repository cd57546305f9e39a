"""Partitioned trials (MRTData.from_parquet / from_dask): the same numbers and the same named
errors as in memory.

Tolerances: WCLS and EMEE on partitions differ from the in-memory fit only by the order of
floating-point summation (per-partition sums of the same per-participant terms), i.e. a few
units of 1e-16 relative per operation, amplified by the condition number of B (~1e2 here):
1e-10 relative is far above that and far below any real difference (a wrong row or weight
changes estimates at 1e-3 or more). The randomization test draws the same uniforms (the same
stream, jumped to each row's place), so its t statistics agree to the same tolerance.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm
from hte_mrt.data.large import LargeMRTData
from hte_mrt.errors import (
    DataError,
    MissingColumnError,
    MissingValueError,
    PartitionWarning,
    ProbabilityError,
)

pytest.importorskip("dask")
pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

RTOL = 1e-10
ROLES = dict(id="id", time="t", treatment="A", outcome="y", availability="avail")


def _frame(seed: int = 3, n: int = 48, T: int = 15) -> pd.DataFrame:
    sim = hm.MRTSimulation(n_participants=n, n_decisions=T, n_clusters=6, sd_cluster=0.3)
    f = sim.simulate(seed=seed)
    rng = np.random.default_rng(seed)
    f["loc"] = np.where(f["S"] > 0.6, "out", np.where(f["S"] < -0.6, "home", "work"))
    f["p"] = np.where(f["avail"] == 1, 0.5, np.nan)  # a probability column
    f["yb"] = (f["y"] > 0.2).astype(float)
    f["w"] = rng.normal(size=len(f))
    return f


def _write(frame: pd.DataFrame, folder, n_parts: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.sort(frame["id"].unique())
    for k, chunk in enumerate(np.array_split(ids, n_parts)):
        frame[frame["id"].isin(chunk)].to_parquet(folder / f"part-{k}.parquet")


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    frame = _frame()
    # a level of 'loc' missing from one partition: levels must still be fixed trial-wide
    ids = np.sort(frame["id"].unique())
    first = frame["id"].isin(np.array_split(ids, 4)[0])
    frame.loc[first & (frame["loc"] == "home"), "loc"] = "work"
    folder = tmp_path_factory.mktemp("trial")
    _write(frame, folder)
    big = hm.MRTData.from_parquet(folder, prob=0.5, client="sync", **ROLES)
    return frame, folder, big, big.to_memory()


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = np.max(np.abs(b))
    assert np.max(np.abs(a - b)) <= rtol * scale, (a, b)


def _same_fit(a, b):
    assert a.names_effect == b.names_effect and a.names_control == b.names_control
    assert (a.n, a.df, a.small_sample, a.method) == (b.n, b.df, b.small_sample, b.method)
    _close(a.theta, b.theta)
    _close(a.cov_theta, b.cov_theta)
    assert a.n_excluded == b.n_excluded


def test_first_pass_matches_memory(trial):
    _, _, big, mem = trial
    assert isinstance(big, LargeMRTData)
    assert (big.n_participants, big.n_rows, big.n_partitions) == (mem.n_participants, 720, 4)
    assert list(big.id_values) == list(mem.id_values)
    assert big.categories["loc"] == ["home", "out", "work"]
    assert big.is_binary and big.level_values == mem.level_values


@pytest.mark.parametrize(
    "kw",
    [
        dict(moderators="~ 1", controls="~ S"),
        dict(moderators="~ S + tfrac", controls="~ S + w", small_sample=False),
        dict(moderators="~ C(loc)", controls="~ S"),  # a level absent from one partition
        dict(moderators="~ S", controls="~ loc", lag=2),
        dict(moderators="~ 1", controls="~ S", numerator=0.4),
    ],
    ids=["marginal", "moderated-uncorrected", "categorical", "lag", "numerator"],
)
def test_wcls_equals_memory(trial, kw):
    _, _, big, mem = trial
    _same_fit(hm.wcls(big, **kw), hm.wcls(mem, **kw))


def test_wcls_through_estimand_and_effect_curve(trial):
    _, _, big, mem = trial
    est = hm.ExcursionEffect("~ S", "~ S")
    a, b = est.fit(big, estimator="wcls"), est.fit(mem, estimator="wcls")
    _same_fit(a, b)
    grid = pd.DataFrame({"S": [-1.0, 0.0, 1.0]})
    _close(a.effect_curve(grid)["estimate"], b.effect_curve(grid)["estimate"])
    assert "partitions" in a.info


@pytest.mark.parametrize("variant", ["emee", "emee2"])
def test_emee_equals_memory(trial, tmp_path, variant):
    frame = trial[0]
    _write(frame, tmp_path / "b")
    roles = ROLES | {"outcome": "yb"}
    big = hm.MRTData.from_parquet(tmp_path / "b", prob="p", client="sync", **roles)
    mem = big.to_memory()
    kw = dict(moderators="~ S", controls="~ S", variant=variant, numerator=0.5)
    a, b = hm.emee(big, **kw), hm.emee(mem, **kw)
    _same_fit(a, b)
    assert a.info["newton_steps"] == b.info["newton_steps"]


def test_local_cluster_and_dask_frame(trial):
    """The one test that starts a (threaded, in-process) LocalCluster: parquet and a dask
    DataFrame, participant-partitioned and not (shuffled once, with a warning)."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    frame, folder, _, mem = trial
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        big = hm.MRTData.from_parquet(folder, prob=0.5, client=client, **ROLES)
        ref = hm.wcls(mem, "~ S", "~ C(loc)")
        _same_fit(hm.wcls(big, "~ S", "~ C(loc)"), ref)
        ordered = dd.from_pandas(frame.sort_values(["id", "t"]), npartitions=3, sort=False)
        assert len(ordered.partitions[0].compute()) % 15 == 0  # whole participants
        big2 = hm.MRTData.from_dask(ordered, prob=0.5, client=client, **ROLES)
        _same_fit(hm.wcls(big2, "~ S", "~ C(loc)"), ref)
        mixed = dd.from_pandas(frame.sample(frac=1, random_state=2), npartitions=3, sort=False)
        with pytest.warns(PartitionWarning, match="shuffled by participant once"):
            big3 = hm.MRTData.from_dask(mixed, prob=0.5, client=client, **ROLES)
        assert big3.n_partitions == 3
        _same_fit(hm.wcls(big3, "~ S", "~ C(loc)"), ref)


def _corrupt_missing_column(f):
    return f.drop(columns=["y"])


def _corrupt_nan_id(f):
    f = f.astype({"id": float})
    f.loc[f.index[4], "id"] = np.nan
    return f


def _corrupt_prob(f):
    f.loc[f.index[f["avail"].to_numpy() == 1][2], "p"] = 1.3
    return f


@pytest.mark.parametrize(
    ("corrupt", "exc", "patterns"),
    [
        (_corrupt_missing_column, MissingColumnError, [r"part-2\.parquet", r"'y'"]),
        (_corrupt_nan_id, MissingValueError, [r"part-2\.parquet", r"'id' \(id\)"]),
        (_corrupt_prob, ProbabilityError, [r"part-2\.parquet", r"'p'", r"\(0, 1\)"]),
    ],
    ids=["missing-column", "nan-id", "prob-out-of-range"],
)
def test_corrupt_partition_named(trial, tmp_path, corrupt, exc, patterns):
    frame = trial[0]
    _write(frame, tmp_path)
    part = pd.read_parquet(tmp_path / "part-2.parquet")
    corrupt(part).to_parquet(tmp_path / "part-2.parquet")
    with pytest.raises(exc) as info:
        hm.MRTData.from_parquet(tmp_path, prob="p", client="sync", **ROLES)
    for pat in patterns:
        assert re.search(pat, str(info.value)), str(info.value)
    # the same class in memory
    if corrupt is not _corrupt_missing_column:
        frames = [pd.read_parquet(tmp_path / f"part-{k}.parquet") for k in range(4)]
        with pytest.raises(exc):
            hm.MRTData(pd.concat(frames, ignore_index=True), prob="p", **ROLES)


def test_exclusions_and_never_available(trial, tmp_path):
    frame = trial[0].copy()
    frame.loc[frame.index[[5, 400]], "y"] = np.nan
    frame.loc[frame["id"] == frame["id"].max(), "avail"] = 0
    frame.loc[frame["id"] == frame["id"].max(), "A"] = 0
    _write(frame, tmp_path)
    with pytest.warns(hm.errors.DegenerateDataWarning, match="never available"):
        big = hm.MRTData.from_parquet(tmp_path, prob=0.5, missing="drop", client="sync", **ROLES)
    with pytest.warns(hm.errors.DegenerateDataWarning, match="never available"):
        mem = hm.MRTData(frame, prob=0.5, missing="drop", **ROLES)
    pd.testing.assert_frame_equal(big.exclusions, mem.exclusions, check_dtype=False)
    a, b = hm.wcls(big, "~ S", "~ S"), hm.wcls(mem, "~ S", "~ S")
    _same_fit(a, b)
    assert a.design.participants_without_rows == b.design.participants_without_rows


def test_trial_wide_checks(trial):
    _, _, big, _ = trial
    with pytest.raises(hm.errors.DesignError, match="lag=40 decision points is longer"):
        hm.wcls(big, lag=40)
    with pytest.raises(hm.errors.DesignError, match="collinear"):
        hm.wcls(big, "~ S", "~ I(2 * S)")
    with pytest.raises(hm.errors.DesignError, match="fitted on the data"):
        hm.wcls(big, "~ 1", "~ center(S)")
    with pytest.raises(DataError, match="does not run on partitioned data"):
        hm.bayesian_bootstrap(big, n_boot=10, progress=False)


@pytest.mark.parametrize(
    "kw",
    [dict(moderators="~ S", controls="~ S"), dict(controls="~ S", lag=1, small_sample=False)],
    ids=["moderated", "lag-uncorrected"],
)
def test_randomization_redraw_equals_memory(trial, tmp_path, kw):
    """Participants scattered over partitions (id mod 3): each row still gets its in-memory
    uniform, so the null t statistics are the in-memory ones."""
    frame = trial[0]
    tmp_path.mkdir(exist_ok=True)
    for k in range(3):
        frame[frame["id"] % 3 == k].to_parquet(tmp_path / f"p{k}.parquet")
    big = hm.MRTData.from_parquet(tmp_path, prob=0.5, client="sync", **ROLES)
    a = hm.randomization_test(big, n_resamples=200, seed=11, progress=False, **kw)
    b = hm.randomization_test(trial[3], n_resamples=200, seed=11, progress=False, **kw)
    _close(a.t_null, b.t_null)
    pd.testing.assert_frame_equal(a.table(), b.table(), rtol=1e-9)


def test_randomization_permute_partition_invariant(trial, tmp_path):
    """``permute`` draws a stream per participant: the same numbers however the trial is
    partitioned (not the in-memory stream, as documented)."""
    frame, _, big, _ = trial
    for k in range(2):
        frame[frame["id"] % 2 == k].to_parquet(tmp_path / f"p{k}.parquet")
    other = hm.MRTData.from_parquet(tmp_path, prob=0.5, client="sync", **ROLES)
    kw = dict(scheme="permute", n_resamples=100, seed=4, progress=False)
    a, b = hm.randomization_test(big, **kw), hm.randomization_test(other, **kw)
    _close(a.t_null, b.t_null)
    c = hm.randomization_test(big, **(kw | {"seed": 5}))
    assert np.max(np.abs(a.t_null - c.t_null)) > 0.1


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    sim = hm.MRTSimulation(
        n_participants=60, n_decisions=20, n_clusters=6, sd_cluster=0.3, sd_slope=0.2
    )
    frame = sim.simulate(seed=1)
    folder = tmp_path_factory.mktemp("clustered")
    for k in range(3):  # participants scattered over the partitions
        frame[frame["id"] % 3 == k].to_parquet(folder / f"part-{k}.parquet")
    big = hm.MRTData.from_parquet(folder, prob=0.5, cluster="cluster", client="sync", **ROLES)
    return big, big.to_memory()


def test_bayes_statistics_equal_memory(clustered):
    """The collapsed model's per-participant statistics, cluster codes, centring map and
    default priors, reduced over partitions, are the in-memory ones (to summation order)."""
    big, mem = clustered
    model = hm.BayesMRT("~ S", "~ S", random_slope=True, progress=False)
    a, b = model.build(big), model.build(mem)
    for k in ("T", "ZZ", "XZ", "Zy", "XX", "Xy", "yy", "x_rms"):
        _close(getattr(a.stats, k), getattr(b.stats, k))
    assert (a.stats.n_obs, a.stats.d) == (b.stats.n_obs, b.stats.d)
    assert a.stats.cluster.tolist() == b.stats.cluster.tolist()
    assert a.cluster_values == b.cluster_values
    _close([a.stats.y_mean, a.stats.y_sd], [b.stats.y_mean, b.stats.y_sd])
    _close(a.theta_map, b.theta_map)
    assert list(a.design.group_values) == list(b.design.group_values)
    for key in ("intercept", "alpha", "beta", "sd_b", "sd_u", "sd_c", "sigma"):
        for name, v in b.priors[key].items():
            if name != "dist":
                _close(a.priors[key][name], v)


@pytest.mark.filterwarnings("ignore::hte_mrt.errors.ConvergenceWarning")
def test_bayes_posterior_agrees_with_memory(clustered):
    """Same model, same seed: the priors differ from memory only in the last bits (moments
    reduced over partitions), so the chains are not bit-identical but sample the same
    posterior. Posterior means must agree within 5 Monte Carlo standard errors of their
    difference, sqrt(se_a^2 / ess_a + se_b^2 / ess_b) (a short, seeded run: the R-hat
    warning of 600 draws is not the point here)."""
    big, mem = clustered
    model = hm.BayesMRT(
        "~ S", "~ S", random_slope=True, draws=300, tune=300, chains=2, seed=1, progress=False
    )
    a, b = model.fit(big).table(), model.fit(mem).table()
    assert list(a["term"]) == list(b["term"])
    mcse = np.sqrt(a["se"] ** 2 / a["ess_bulk"] + b["se"] ** 2 / b["ess_bulk"])
    assert np.all(np.abs(a["estimate"] - b["estimate"]) < 5 * mcse), (a, b)


def test_bayes_refuses_row_level_models(clustered):
    big, _ = clustered
    with pytest.raises(hm.errors.DesignError, match="collapsed Gaussian"):
        hm.BayesMRT("~ 1", family="bernoulli", progress=False).fit(big)


@pytest.mark.parametrize(
    ("call", "exc", "pattern"),
    [
        (lambda f: hm.MRTData.from_parquet(f / "nowhere", prob=0.5, **ROLES), DataError,
         "No Parquet file or folder"),
        (lambda f: hm.MRTData.from_parquet(f, prob=0.5, client=42, **ROLES), DataError,
         "client= must be a distributed.Client"),
        (lambda f: hm.MRTData.from_parquet(f, client="sync", **ROLES), DataError,
         "Give the randomization probability"),
        (lambda f: hm.MRTData.from_parquet(f, prob=0.5, client="sync", **(ROLES | {"id": 3})),
         DataError, "id= must be the name of a column"),
        (lambda f: hm.MRTData.from_parquet(f, prob=0.5, missing="skip", client="sync", **ROLES),
         DataError, "missing must be 'error'"),
    ],
    ids=["no-files", "bad-client", "no-prob", "id-not-a-name", "bad-missing"],
)  # fmt: skip
def test_bad_arguments_named(trial, call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(trial[1])


def test_categorical_treatment_equals_memory(trial, tmp_path):
    """Three treatment levels (probabilities 0.4 / 0.3 / 0.3): WCLS and the redraws agree."""
    frame = trial[0].copy()
    rng = np.random.default_rng(8)
    lev = rng.choice(["none", "walk", "rest"], p=[0.4, 0.3, 0.3], size=len(frame))
    frame["arm"] = np.where(frame["avail"] == 1, lev, "none")
    _write(frame, tmp_path, n_parts=3)
    roles = ROLES | {"treatment": "arm"}
    levels = {"none": 0.4, "walk": 0.3, "rest": 0.3}
    big = hm.MRTData.from_parquet(tmp_path, levels=levels, client="sync", **roles)
    mem = big.to_memory()
    _same_fit(hm.wcls(big, "~ S", "~ S"), hm.wcls(mem, "~ S", "~ S"))
    kw = dict(n_resamples=50, seed=2, progress=False)
    _close(hm.randomization_test(big, **kw).t_null, hm.randomization_test(mem, **kw).t_null)


@pytest.mark.parametrize(
    "block", [4_000_000, 500, 7], ids=["one-block", "blocks", "per-participant"]
)
def test_in_memory_blocks_are_bit_identical(trial, monkeypatch, block):
    """In memory, WCLS's and the collapsed model's statistics are built block by block of
    participants: the same numbers, bit for bit, as from the whole design matrix."""
    import hte_mrt.estimators.sandwich as sandwich
    from hte_mrt.estimands.excursion import ExcursionEffect, build_design
    from hte_mrt.estimators.bayes.collapsed import collapsed_stats, collapsed_stats_design

    monkeypatch.setattr(sandwich, "BLOCK_ELEMENTS", block)
    mem = trial[3]
    design = build_design(mem, ExcursionEffect("~ S + C(loc)", "~ S + w"))
    starts = sandwich.group_starts(design.group)
    whole = sandwich.group_crossprod(design.X, design.W, design.y, starts)
    blocked = sandwich.design_crossprod(design, starts)
    assert all(np.array_equal(a, b) for a, b in zip(whole, blocked, strict=True))
    at = (design.a_index == 1) - design.num[:, 1]
    a = collapsed_stats(design.X, at, design.y, design.group)
    b = collapsed_stats_design(design, at)
    for k in ("T", "ZZ", "XZ", "Zy", "XX", "Xy", "yy", "x_rms", "groups"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert (a.y_mean, a.y_sd, a.n_obs) == (b.y_mean, b.y_sd, b.n_obs)


def test_empty_partitions_are_left_out(trial):
    import dask.dataframe as dd

    frame = trial[0]
    ddf = dd.from_pandas(frame.sort_values(["id", "t"]), npartitions=4, sort=False)
    ddf = ddf[ddf["id"] < ddf["id"].max().compute() // 2]  # the later partitions empty
    big = hm.MRTData.from_dask(ddf, prob=0.5, client="sync", **ROLES)
    sub = frame[frame["id"] < frame["id"].max() // 2]
    small = hm.MRTData(sub, prob=0.5, **ROLES)
    assert big.n_partitions < 4 and big.n_participants == small.n_participants
    _same_fit(hm.wcls(big, "~ S", "~ S"), hm.wcls(small, "~ S", "~ S"))
    with pytest.raises(DataError, match="Every partition is empty"):
        hm.MRTData.from_dask(ddf[ddf["id"] < -1], prob=0.5, client="sync", **ROLES)


def test_describe_matches_memory(trial):
    _, _, big, mem = trial
    a, b = big.describe(), mem.describe()
    assert (a.n_participants, a.n_rows, a.decision_points) == (
        b.n_participants,
        b.n_rows,
        b.decision_points,
    )
    assert a.availability_rate == pytest.approx(b.availability_rate, rel=1e-12)
    pd.testing.assert_frame_equal(a.randomization, b.randomization)
    assert a.decisions_per_participant.to_dict() == b.decisions_per_participant.to_dict()
    assert str(a) == str(b)
