"""The TASSH-like CRT simulator, the linear reference learner and the simulation harness."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from hte_mrt.data.crt import CRTData, icc_anova
from hte_mrt.data.simulate_crt import (
    ICC_LEVELS,
    K_LEVELS,
    TAU_LEVELS,
    CRTSimulation,
    reference_tau_sd,
)
from hte_mrt.errors import DesignError
from hte_mrt.estimators.learners.linear import LinearInteraction
from hte_mrt.studies import METRICS, StudyResult, oat_scenarios, replicate_trial, run_study
from hte_mrt.studies.crt_simulation import TIMING
from tests.accuracy import assert_covers, assert_recovers, assert_same_sign_and_significant

G = {"a": 0.5, "b": -0.25, "c": -1.0}  # g(x4) = (2, -1, -4)[x4] / 4


# ---------------------------------------------------------------------------------------------
# simulator
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big():
    """2000 clusters, ICC 0.2 (about 50,000 individuals)."""
    sim = CRTSimulation(n_clusters=2000, icc=0.2)
    return sim, sim.simulate(11)


def test_columns_sizes_and_balanced_arms():
    for k in K_LEVELS:
        f = CRTSimulation(n_clusters=k).simulate(k)
        assert list(f.columns[:11]) == ["cluster", "arm", "y", "x1", "x2", "x3", "x4", "x5",
                                        "v1", "v2", "v3"]  # fmt: skip
        assert {"tau", "mu", "b", "u"} <= set(f.columns)
        per = f.groupby("cluster").agg(n=("y", "size"), arm=("arm", "first"),
                                       arms=("arm", "nunique"))  # fmt: skip
        assert len(per) == k
        assert per["n"].between(15, 35).all()
        assert (per["arms"] == 1).all()  # the whole cluster is randomized
        assert (per["arm"] == 1).sum() == k // 2 and (per["arm"] == 0).sum() == k // 2
        for col in ("v1", "v2", "v3", "b", "u"):
            assert (f.groupby("cluster")[col].nunique() == 1).all()


def test_variable_sizes_have_cv_about_06():
    f = CRTSimulation(n_clusters=3000, sizes="variable").simulate(2)
    n = f.groupby("cluster").size()
    cv = n.std() / n.mean()
    assert n.min() >= 5
    assert abs(n.mean() - 20) < 1.0  # mean 20 (se about 0.22)
    assert abs(cv - 0.6) < 0.05  # target 0.6; MC se of the CV ~0.013 with 3000 clusters
    u = CRTSimulation(n_clusters=3000).simulate(2).groupby("cluster").size()
    assert abs(u.mean() - 25) < 0.5 and u.min() >= 15 and u.max() <= 35


def test_icc_and_residual_variance(big):
    _, f = big
    b = f.groupby("cluster")["b"].first()
    assert abs(b.var() - 0.2) < 0.03  # var(b_j) = ICC (se about 0.006 on 2000 clusters)
    r = f["y"] - f["mu"] - f["arm"] * f["tau"]
    assert abs(icc_anova(r, f["cluster"]) - 0.2) < 0.03  # ANOVA ICC of y - mu - z tau
    assert abs((r - f["b"]).var() - 0.8) < 0.03  # var(e) = 1 - ICC
    # t3: scaled to variance ICC; check the scale robustly by the IQR (t3 IQR = 1.5298)
    b3 = CRTSimulation(n_clusters=4000, icc=0.2, intercept="t3").simulate(3)
    b3 = b3.groupby("cluster")["b"].first() / math.sqrt(0.2 / 3)
    q1, q3 = np.quantile(b3, [0.25, 0.75])
    assert abs((q3 - q1) - 1.5298) < 0.12
    # two-point mixture: +-sd_b, equal weights
    bm = CRTSimulation(n_clusters=400, icc=0.05, intercept="mixture").simulate(3)
    bm = bm.groupby("cluster")["b"].first()
    np.testing.assert_allclose(np.abs(bm), math.sqrt(0.05))
    assert 0.4 < (bm > 0).mean() < 0.6


def test_covariate_moments(big):
    _, f = big
    for x in ("x1", "x2"):
        assert abs(f[x].mean()) < 0.03 and abs(f[x].var() - 1.0) < 0.05
        assert abs(icc_anova(f[x], f["cluster"]) - 0.09) < 0.03  # within-cluster corr 0.3^2
    assert abs(f["x3"].mean() - 0.6) < 0.02
    share = f["x4"].value_counts(normalize=True)
    assert set(share.index) == {"a", "b", "c"}
    np.testing.assert_allclose(share[["a", "b", "c"]], [0.3, 0.3, 0.4], atol=0.02)
    assert f["x5"].between(0, 1).all() and abs(f["x5"].mean() - 0.5) < 0.02
    v = f.groupby("cluster")[["v1", "v2", "v3"]].first()
    assert abs(v["v1"].mean() - 0.45) < 0.04
    assert abs(v["v2"].var() - 1) < 0.1 and abs(v["v3"].var() - 1) < 0.1


def _tau_hand(kind, r):
    x1, x2, x3, v1 = r["x1"], r["x2"], r["x3"], r["v1"]
    return {
        "homogeneous": -0.2,
        "individual": -0.2 - 0.15 * x2 + 0.1 * x3,
        "individual_cluster": -0.2 - 0.15 * x2 + 0.1 * x3 - 0.15 * v1 + 0.1 * x2 * v1,
        "nonlinear": -0.2 - 0.25 * (x2 > 0.5) + 0.15 * math.sin(2 * x1) - 0.15 * v1,
    }[kind]


def _mu_hand(kind, r):
    x1, x2, x3, g, v1, v2 = r["x1"], r["x2"], r["x3"], G[r["x4"]], r["v1"], r["v2"]
    if kind == "linear":
        return 0.5 * x1 - 0.6 * x2 + 0.3 * x3 + g + 0.4 * v1 + 0.3 * v2
    return (-0.6 * abs(x2 - 0.5) + 0.8 * math.sin(x1) + 0.5 * x1 * x3 + g
            + 0.4 * v1 * (x2 > 0) + 0.3 * v2**2)  # fmt: skip


@pytest.mark.parametrize("tau", TAU_LEVELS)
@pytest.mark.parametrize("mu", ["linear", "nonlinear"])
def test_tau_and_mu_formulas_by_hand(tau, mu):
    sim = CRTSimulation(n_clusters=200, tau=tau, mu=mu, icc=0.05)
    f = sim.simulate(5)
    rows = [0, 7, 123, 250, 4000, len(f) - 1]
    for i in rows:
        r = f.iloc[i]
        assert r["tau"] == pytest.approx(_tau_hand(tau, r), abs=1e-12)
        assert r["mu"] == pytest.approx(_mu_hand(mu, r), abs=1e-12)
    np.testing.assert_allclose(sim.true_tau(f), f["tau"])
    np.testing.assert_allclose(sim.true_mu(f), f["mu"])
    # Y = mu + z tau + b + z u + e with var(e) = 1 - ICC (about 5000 rows: se of var 0.02)
    e = f["y"] - f["mu"] - f["arm"] * (f["tau"] + f["u"]) - f["b"]
    assert abs(e.var() - 0.95) < 0.08 and abs(e.mean()) < 0.05


def test_random_slope_sd_and_marginal_tau():
    # analytic sd of tau "individual": sqrt(0.15^2 + 0.1^2 * 0.6 * 0.4) = 0.15780
    assert reference_tau_sd("individual") == pytest.approx(0.15780, abs=0.002)
    sim = CRTSimulation(n_clusters=3000, random_slope=True)
    assert sim.sd_slope == pytest.approx(0.5 * reference_tau_sd("individual"))
    assert CRTSimulation(tau="homogeneous", random_slope=True).sd_slope == 0.05
    assert CRTSimulation().sd_slope == 0.0
    f = sim.simulate(4)
    u = f.groupby("cluster")["u"].first()
    assert abs(u.std() - sim.sd_slope) < 0.006 and abs(u.mean()) < 0.006
    np.testing.assert_allclose(f["tau"], sim.true_tau(f))  # tau excludes u_j (marginal)
    assert (CRTSimulation().simulate(4)["u"] == 0).all()


def test_reproducible_and_new_clusters():
    sim = CRTSimulation(n_clusters=32, sizes="variable", tau="nonlinear", intercept="t3")
    pd.testing.assert_frame_equal(sim.simulate(7), sim.simulate(7))
    assert not sim.simulate(7)["y"].equals(sim.simulate(8)["y"])
    d = sim.crt_data(7)
    assert isinstance(d, CRTData) and d.n_clusters == 32
    assert d.clusters_per_arm == {0: 16, 1: 16}
    assert d.categorical_levels == {"x4": ("a", "b", "c")}
    new = sim.new_clusters(1)
    assert len(new) == 50 * 20 and new["cluster"].nunique() == 50
    assert (new.groupby("cluster").size() == 20).all()
    assert new.groupby("cluster")["arm"].first().sum() == 25
    np.testing.assert_allclose(new["tau"], sim.true_tau(new))
    assert len(sim.new_clusters(1, n_clusters=10, size=5)) == 50


@pytest.mark.parametrize(
    ("kw", "arg"),
    [
        ({"n_clusters": 15}, "n_clusters"),
        ({"n_clusters": 2}, "n_clusters"),
        ({"n_clusters": 16.0}, "n_clusters"),
        ({"sizes": "huge"}, "sizes"),
        ({"icc": 1.0}, "icc"),
        ({"icc": -0.1}, "icc"),
        ({"mu": "cubic"}, "mu"),
        ({"tau": "quadratic"}, "tau"),
        ({"intercept": "cauchy"}, "intercept"),
        ({"random_slope": "yes"}, "random_slope"),
    ],
)
def test_bad_factor_raises_design_error(kw, arg):
    with pytest.raises(DesignError, match=arg):
        CRTSimulation(**kw)


# ---------------------------------------------------------------------------------------------
# the linear reference learner
# ---------------------------------------------------------------------------------------------
def test_linear_interaction_recovers_linear_cate():
    """Correctly specified (linear mu, tau "individual"), K = 400: over 4 replicates the mean
    in-sample ATE bias is below 0.05 (se about 0.015) and the PEHE below 0.12 (sd(tau) is
    0.158); out of sample (50 new clusters of 20) the PEHE is below 0.13."""
    sim = CRTSimulation(n_clusters=400, icc=0.05, tau="individual", mu="linear")
    bias, pehe, pehe_new, truths = [], [], [], []
    for r in range(4):
        d = sim.crt_data(r)
        m = LinearInteraction().fit(d)
        assert m.name == "linear" and m.fit_seconds_ >= 0
        res = m.cate()
        tau = sim.true_tau(res.frame)
        bias.append(res.ate()["estimate"] - tau.mean())
        truths.append(tau.mean())
        pehe.append(np.sqrt(np.mean((res.estimate - tau) ** 2)))
        new = sim.new_clusters(100 + r)
        rn = m.cate(new)
        assert len(rn) == 1000 and rn.draws is None
        pehe_new.append(np.sqrt(np.mean((rn.estimate - sim.true_tau(new)) ** 2)))
        assert np.isfinite(m.predict_outcome(new, arm=1)).all()
    # the true ATE is about -0.14: the 0.05 window excludes 0 and +0.14 (assert_recovers); a
    # null CATE has PEHE sqrt(0.14^2 + 0.158^2) = 0.21 and a constant one 0.158, both > 0.12
    ate_truth = float(np.mean(truths))
    assert_recovers(np.mean(bias) + ate_truth, ate_truth, 0.05, "LinearInteraction ATE")
    assert np.mean(pehe) < 0.12
    assert np.mean(pehe_new) < 0.13
    # params / clone follow the contract; bootstrap intervals cover the truth (ATE -0.142,
    # about 4 bootstrap SEs of 0.033 below 0) and exclude 0
    d9 = sim.crt_data(9)
    m = LinearInteraction(n_boot=20, seed=3).fit(d9)
    assert m.get_params() == {"n_boot": 20, "n_jobs": None, "seed": 3, "progress": True}
    a = m.ate()
    assert_covers(a["lcl"], a["ucl"], sim.true_tau(d9.frame).mean(), "bootstrap ATE interval")
    assert_same_sign_and_significant(a["lcl"], a["ucl"], -1, "bootstrap ATE")
    new_frame = sim.new_clusters(2)
    new = m.ate("cluster", frame=new_frame)
    truth_new = sim.true_tau(new_frame).mean()  # 50 clusters of 20: cluster average = mean
    assert_covers(new["lcl"], new["ucl"], truth_new, "new clusters' ATE interval")


def test_cluster_bootstrap_intervals_cover():
    """The cluster bootstrap (clusters resampled within arm, percentile intervals) around the OLS
    learner: K = 32, ICC 0.2, tau with a cluster-level moderator (and an x2 v1 term the linear
    learner leaves out), B = 100, 60 replicates. Coverage of tau(x, v) on new clusters is 0.93
    in 2,000 such replicates (0.94 with B = 400; the study's 200 replicates with B = 200:
    0.925-0.950 in every scenario but K = 16, ``benchmarks/results/crt_study_bootstrap``); the
    per-replicate sd is about 0.086, so 0.011 over 60 replicates, hence [0.87, 0.99]. Resampling
    rows instead of clusters ignores the intra-cluster correlation and gives 0.70 (CATE) and
    0.55 (ATE) here, which fails."""
    sim = CRTSimulation(icc=0.2, tau="individual_cluster")
    res = run_study(
        {"s": sim}, {"linear": (LinearInteraction, {"n_boot": 100})}, 60, seed=2026,
        n_jobs=1, progress=False,
    )  # fmt: skip
    d = res.raw[res.raw["sample"] == "new_clusters"]
    assert d["error"].isna().all()
    assert 0.87 <= d["coverage_cate"].mean() <= 0.99
    # ATE: one indicator per replicate, binomial sd about 0.03 around 0.93
    assert d["coverage_ate_ind"].mean() >= 0.80


# ---------------------------------------------------------------------------------------------
# the harness
# ---------------------------------------------------------------------------------------------
SCENARIOS = {
    "base": CRTSimulation(n_clusters=16),
    "icc=0.2": CRTSimulation(n_clusters=16, icc=0.2, tau="homogeneous"),
}
LEARNERS = {
    "linear": (LinearInteraction, {"n_boot": 10}),
    "broken": (LinearInteraction, {"n_boot": 1}),  # fails at cate(): n_boot >= 2 needed
}


@pytest.fixture(scope="module")
def study_joblib() -> StudyResult:
    return run_study(SCENARIOS, LEARNERS, n_reps=3, seed=42, n_jobs=2, progress=False)


def test_run_study_tidy_raw_and_errors(study_joblib):
    raw = study_joblib.raw
    assert len(raw) == 2 * 2 * 3 * 2
    assert list(raw.columns[:4]) == ["scenario", "learner", "rep", "sample"]
    assert set(METRICS) <= set(raw.columns)
    ok = raw[raw["learner"] == "linear"]
    assert ok["error"].isna().all()
    assert ok[["pehe", "bias_ate_ind", "coverage_cate", "width_ate_cl"]].notna().all().all()
    assert (ok.loc[ok["sample"] == "new_clusters", "n_individuals"] == 1000).all()
    assert (ok.loc[ok["sample"] == "in_sample", "n_clusters"] == 16).all()
    # homogeneous tau: rank correlation undefined
    assert ok.loc[ok["scenario"] == "icc=0.2", "spearman"].isna().all()
    assert ok.loc[ok["scenario"] == "base", "spearman"].notna().all()
    bad = raw[raw["learner"] != "linear"]
    assert bad["error"].notna().all() and bad["pehe"].isna().all()
    assert bad.loc[bad["learner"] == "broken", "error"].str.contains("n_boot >= 2").all()
    assert len(study_joblib.errors()) == len(bad)
    # common random numbers: the same trial in both scenarios (same K, sizes) for a replicate
    a = ok[(ok["scenario"] == "base") & (ok["sample"] == "in_sample")]["n_individuals"]
    b = ok[(ok["scenario"] == "icc=0.2") & (ok["sample"] == "in_sample")]["n_individuals"]
    assert list(a) == list(b)


def test_run_study_dask_equals_joblib(study_joblib):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        res = run_study(SCENARIOS, LEARNERS, n_reps=3, seed=42, client=client, progress=False)
    assert res.backend == "dask"
    pd.testing.assert_frame_equal(
        res.raw.drop(columns=list(TIMING)), study_joblib.raw.drop(columns=list(TIMING))
    )
    # sequential joblib too
    seq = run_study(SCENARIOS, {"linear": LEARNERS["linear"]}, 3, seed=42, progress=False)
    pd.testing.assert_frame_equal(
        seq.raw.drop(columns=list(TIMING)),
        study_joblib.raw[study_joblib.raw["learner"] == "linear"]
        .reset_index(drop=True)
        .drop(columns=list(TIMING)),
    )


def test_table_plot_csv(study_joblib, tmp_path):
    tab = study_joblib.table()
    assert len(tab) == 2 * 2 * 2
    for m in METRICS:
        assert m in tab.columns and f"{m}_mcse" in tab.columns
    for b in ("bias_ate_ind", "bias_ate_cl"):
        for c in (f"abs_{b}", f"abs_{b}_mcse", f"mean_abs_{b}", f"mean_abs_{b}_mcse"):
            assert c in tab.columns
    raw = study_joblib.raw
    row = tab[(tab["scenario"] == "base") & (tab["learner"] == "linear")
              & (tab["sample"] == "in_sample")].iloc[0]  # fmt: skip
    vals = raw[(raw["scenario"] == "base") & (raw["learner"] == "linear")
               & (raw["sample"] == "in_sample")]["pehe"]  # fmt: skip
    assert row["n_reps"] == 3 and row["n_failed"] == 0
    assert row["pehe"] == pytest.approx(vals.mean())
    assert row["pehe_mcse"] == pytest.approx(vals.std(ddof=1) / np.sqrt(3))
    assert row["abs_bias_ate_ind"] == pytest.approx(abs(row["bias_ate_ind"]))
    assert (tab.loc[tab["learner"] == "broken", "n_failed"] == 3).all()
    assert len(study_joblib.table(sample="new_clusters")) == 4
    # the results contract: a Summary with the study's size, a paper table, a short repr
    from hte_mrt._contract import Result

    s = study_joblib.summary()
    assert isinstance(study_joblib, Result) and s.info["replicates"] == 3 and s.info["seed"] == 42
    assert "StudyResult" in repr(study_joblib) and "<table" in study_joblib._repr_html_()
    assert "Scenario" not in tab.columns and len(study_joblib.table(style="paper")) == len(tab)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = study_joblib.plot("pehe")
    assert len(fig.axes) == 2
    plt.close(fig)
    with pytest.raises(DesignError, match="metric"):
        study_joblib.plot("nope")
    p = study_joblib.to_csv(tmp_path / "raw.csv")
    back = pd.read_csv(p)
    assert back.shape == raw.shape
    np.testing.assert_allclose(back["pehe"], raw["pehe"])


def test_run_study_in_blocks_equals_one_run(study_joblib):
    """A study run in blocks of replicates (resumed across sessions) equals the single run."""
    lin = {"linear": LEARNERS["linear"]}
    a = run_study(SCENARIOS, lin, n_reps=3, seed=42, progress=False, reps=[2])
    b = run_study(SCENARIOS, lin, n_reps=3, seed=42, progress=False, reps=[0, 1])
    both = StudyResult.concat([a, b])
    assert both.n_reps == 3
    ref = study_joblib.raw[study_joblib.raw["learner"] == "linear"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        both.raw.drop(columns=list(TIMING)), ref.drop(columns=list(TIMING))
    )
    with pytest.raises(DesignError, match="duplicated"):
        StudyResult.concat([a, a])
    assert a.n_reps == 1 and b.n_reps == 2
    other = run_study(SCENARIOS, LEARNERS, n_reps=3, seed=42, progress=False, reps=[1])
    with pytest.raises(DesignError, match="learner lists"):
        StudyResult.concat([a, other])
    with pytest.raises(DesignError, match="reps"):
        run_study(SCENARIOS, lin, n_reps=3, seed=42, reps=[3])
    with pytest.raises(DesignError, match="reps"):
        run_study(SCENARIOS, lin, n_reps=3, seed=42, reps=[1, 1])


def test_replicate_trial_is_the_studys_trial(study_joblib):
    """replicate_trial rebuilds a replicate's trial and new clusters from the study's seed
    (what tests/validation/crt_study_references.py relies on), without advancing the seed."""
    seeds = np.random.SeedSequence(42).spawn(3)
    raw = study_joblib.raw[study_joblib.raw["learner"] == "linear"].set_index(
        ["scenario", "rep", "sample"]
    )
    for name, sim in SCENARIOS.items():
        for r in range(3):
            frame, new, _ = replicate_trial(sim, seeds[r], 50, 20)
            ins, out = raw.loc[(name, r, "in_sample")], raw.loc[(name, r, "new_clusters")]
            assert len(frame) == ins["n_individuals"] and len(new) == out["n_individuals"]
            assert sim.true_tau(frame).mean() == pytest.approx(ins["true_ate_ind"], abs=1e-12)
            assert sim.true_tau(new).mean() == pytest.approx(out["true_ate_ind"], abs=1e-12)
    again, _, _ = replicate_trial(SCENARIOS["base"], seeds[0], 50, 20)
    first, none, _ = replicate_trial(SCENARIOS["base"], seeds[0], 0, 20)
    pd.testing.assert_frame_equal(again, first)
    assert none is None


def test_run_study_validates_inputs():
    with pytest.raises(DesignError, match="n_reps"):
        run_study(SCENARIOS, LEARNERS, n_reps=0)
    with pytest.raises(DesignError, match="CRTSimulation"):
        run_study({"x": object()}, LEARNERS, n_reps=1)
    with pytest.raises(DesignError, match="learners"):
        run_study(SCENARIOS, {}, n_reps=1)
    # a learner that cannot be built, or has bad parameters, stops the study before any run
    # (issue 18: not mid-run, after other models ran)
    with pytest.raises(DesignError, match="learner 'bad_params' cannot be built"):
        run_study(SCENARIOS, {**LEARNERS, "bad_params": (LinearInteraction, {"alpha": 1.0})}, 1)
    with pytest.raises(DesignError, match=r"learner 'bad_boot'.*n_boot"):
        run_study(SCENARIOS, {"bad_boot": LinearInteraction(n_boot="200")}, n_reps=1)


def test_oat_scenarios():
    base = CRTSimulation()
    sc = oat_scenarios(base)
    assert sc["base"] is base
    assert {"K=16", "K=60", "K=100", "sizes=variable", "icc=0.01", "icc=0.2", "mu=nonlinear",
            "tau=homogeneous", "tau=individual_cluster", "tau=nonlinear", "intercept=t3",
            "intercept=mixture", "random_slope=True"} == set(sc) - {"base"}  # fmt: skip
    assert len(sc) == 1 + 3 + 1 + (len(ICC_LEVELS) - 1) + 1 + 3 + 2 + 1
    for name, s in sc.items():
        diff = [f.name for f in fields(s) if getattr(s, f.name) != getattr(base, f.name)]
        assert len(diff) == (0 if name == "base" else 1)


def test_run_study_shows_a_progress_bar(capsys):
    """tqdm bar on stderr by default; the learners' own bars are off inside the study."""
    sim = {"base": CRTSimulation(n_clusters=8)}
    res = run_study(sim, {"linear": (LinearInteraction, {"n_boot": 3})}, 1, seed=1,
                    new_clusters=0)  # fmt: skip
    err = capsys.readouterr().err
    assert "run_study" in err and "cluster bootstrap" not in err
    assert res.raw["error"].isna().all() or "EstimationError" in str(res.raw["error"].iloc[0])
    run_study(sim, {"linear": LinearInteraction}, 1, seed=1, new_clusters=0, progress=False)
    assert capsys.readouterr().err == ""
