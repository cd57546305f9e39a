"""BayesMRT: agreement with WCLS / EMEE, the endogenous-covariate flag, saving, bad input.

MCMC here uses small data and few draws; tolerances are in units of the WCLS standard error
(the acceptance criterion), far above the Monte Carlo error of the posterior means
(posterior sd / sqrt(ESS) ~ 0.05 WCLS SE with ESS > 300).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hte_mrt import MRTData, wcls
from hte_mrt.data.simulate import MRTSimulation
from hte_mrt.errors import (
    ConvergenceWarning,
    DataError,
    DesignError,
    MissingColumnError,
    OutcomeTypeError,
    PriorError,
)
from hte_mrt.estimands import ExcursionEffect
from hte_mrt.estimators.bayes.model import BayesMRT
from hte_mrt.estimators.bootstrap import bayesian_bootstrap
from hte_mrt.estimators.emee import emee
from hte_mrt.results.bayes import BayesResult
from hte_mrt.results.crosscheck import crosscheck
from tests.conftest import assert_converged

# four chains: R-hat > 1.01 is then a reliable alarm (Vehtari et al. 2021), not a 2-chain fluke
FAST = dict(draws=500, tune=1000, chains=4, progress=False)
CONTROL = "~ jbsteps30pre_log"


@pytest.fixture(scope="module")
def hs_day(heartsteps):
    return BayesMRT("~ study_day_nogap", CONTROL, seed=11, **FAST).fit(heartsteps)


def test_heartsteps_marginal_agrees_with_wcls(heartsteps):
    post = BayesMRT("~ 1", CONTROL, seed=3, **FAST).fit(heartsteps)
    w = wcls(heartsteps, "~ 1", CONTROL)
    boot = bayesian_bootstrap(heartsteps, "~ 1", CONTROL, seed=1, progress=False)
    cc = crosscheck(w, post, boot)
    wr, row = cc.rows("WCLS").iloc[0], cc.rows("BayesMRT").iloc[0]
    assert wr["estimate"] == pytest.approx(0.1312, abs=1e-4)
    assert abs(row["difference_in_se"]) < 1 and not row["flag"]
    assert 0.5 < row["se_ratio"] < 1.5
    bb = cc.rows("Bayesian bootstrap").iloc[0]
    assert bb["estimate"] == pytest.approx(wr["estimate"], abs=0.2 * wr["se"])


def test_heartsteps_day_moderated_agrees_with_wcls(heartsteps, hs_day):
    w = wcls(heartsteps, "~ study_day_nogap", CONTROL)
    cc = crosscheck(
        w, hs_day, lincombs={"effect at day 20": {"Intercept": 1, "study_day_nogap": 20}}
    )
    tab = cc.rows("BayesMRT")
    assert list(tab.index) == ["Intercept", "study_day_nogap", "effect at day 20"]
    assert (tab["difference_in_se"].abs() < 1).all() and not cc.flagged
    s = hs_day.table().set_index("term")
    assert list(s.columns) == [
        "estimate",
        "se",
        "lcl",
        "ucl",
        "pr_positive",
        "r_hat",
        "ess_bulk",
        "ess_tail",
    ]
    assert list(s.index) == ["Intercept", "study_day_nogap", "sigma", "sd_b"]
    assert s.loc["study_day_nogap", "pr_positive"] < 0.05
    # equal-tailed intervals at conf_level; HDIs on their own
    s90 = hs_day.table(conf_level=0.9).set_index("term")
    assert (s90["lcl"] > s["lcl"]).all() and (s90["ucl"] < s["ucl"]).all()
    h = hs_day.hdi(0.9).set_index("term")
    assert list(h.columns) == ["lcl", "ucl"]
    # an HDI is no wider than the equal-tailed interval at the same level (unimodal posteriors)
    width_hdi, width_eq = h["ucl"] - h["lcl"], s90["ucl"] - s90["lcl"]
    assert (width_hdi <= width_eq * (1 + 1e-9)).all()
    ci = hs_day.conf_int(alpha=0.1)
    np.testing.assert_allclose(ci.to_numpy(), s90[["lcl", "ucl"]].to_numpy())
    paper = hs_day.table(style="paper")
    assert "Estimate (95% CI)" in paper.columns
    summ = hs_day.summary()
    assert summ.info["participants"] == 37 and summ.info["chains x draws"] == "4 x 500"
    assert "gaussian" in summ.title and "<table" in summ._repr_html_()
    assert summ.table.equals(hs_day.table())
    assert "37 participants" in repr(hs_day)
    # no divergences, ESS >= 10% of the draws, R-hat within its sampling spread at this ESS
    assert_converged(hs_day)


def test_effect_curve_and_participant_effects(heartsteps, hs_day):
    grid = pd.DataFrame({"study_day_nogap": [0.0, 20.0, 40.0]})
    curve = hs_day.effect_curve(grid)
    assert curve.dims == ("chain", "draw", "point")
    b = hs_day.posterior["beta"].values
    np.testing.assert_allclose(curve.values[..., 1], b[..., 0] + 20 * b[..., 1])
    summ = hs_day.effect_curve_summary(grid)
    assert summ["estimate"].is_monotonic_decreasing
    assert list(summ.columns) == [
        "study_day_nogap",
        "estimate",
        "se",
        "lcl",
        "ucl",
        "pr_positive",
    ]
    pe = hs_day.participant_effects()
    assert len(pe) == 37 and pe["lcl"].lt(pe["ucl"]).all()
    assert list(pe.columns) == ["participant", "estimate", "se", "lcl", "ucl", "pr_positive"]
    assert sorted(pe["participant"]) == list(range(1, 38))  # HeartSteps user ids, not positions
    # random effects are drawn from their exact conditional posterior: shrunk, centred
    bmean = hs_day.posterior["b"].mean(("chain", "draw")).values
    assert abs(bmean.mean()) < 0.15 and bmean.std() < hs_day.posterior["sd_b"].mean().item() * 1.5


def test_save_and_load_round_trip(tmp_path, heartsteps, hs_day):
    path = hs_day.to_netcdf(tmp_path / "fit.nc")
    assert path.with_suffix(".json").exists()
    back = BayesResult.from_netcdf(path)
    assert back.config == hs_day.config
    np.testing.assert_array_equal(back.posterior["beta"].values, hs_day.posterior["beta"].values)
    grid = pd.DataFrame({"study_day_nogap": [5.0]})
    np.testing.assert_allclose(back.effect_curve(grid).values, hs_day.effect_curve(grid).values)
    assert not list(tmp_path.glob("*.pkl"))
    pd.testing.assert_frame_equal(back.table(), hs_day.table())


def test_foreign_netcdf_is_refused(tmp_path):
    import xarray as xr

    path = tmp_path / "other.nc"
    xr.Dataset({"x": ("i", [1.0, 2.0])}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(DataError, match="BayesResult"):
        BayesResult.from_netcdf(path)
    with pytest.raises(DataError, match="does not exist"):
        BayesResult.from_netcdf(tmp_path / "missing.nc")


@pytest.mark.filterwarnings("ignore::hte_mrt.errors.ConvergenceWarning")
def test_seeded_fits_are_reproducible(heartsteps):
    kw = dict(draws=100, tune=100, chains=2, progress=False, seed=5)
    a = BayesMRT("~ 1", CONTROL, **kw).fit(heartsteps)
    b = BayesMRT("~ 1", CONTROL, **kw).fit(heartsteps)
    np.testing.assert_array_equal(a.posterior["beta"].values, b.posterior["beta"].values)
    np.testing.assert_array_equal(a.posterior["b"].values, b.posterior["b"].values)
    assert a.config["seed"] == 5 and a.config["draws"] == 100
    # the same model through an estimand: the formulas live there, the draws are the same
    c = BayesMRT(**kw).fit(heartsteps, estimand=ExcursionEffect("~ 1", CONTROL))
    np.testing.assert_array_equal(a.posterior["beta"].values, c.posterior["beta"].values)
    assert c.config["moderators"] == "~ 1" and c.config["controls"] == CONTROL


# 2 chains x 600 draws (ESS ~350): R-hat's sampling spread exceeds the 1.01 warning for some
# seeds of this converged model (seed 1: 1.012), so the warning is not an error here; the
# convergence check below is sized to the draws (tests/conftest.py: rhat_limit)
@pytest.mark.filterwarnings("ignore::hte_mrt.errors.ConvergenceWarning")
def test_binary_log_rr_agrees_with_emee(binary):
    post = BayesMRT(
        "~ 1",
        "~ time_var1 + time_var2",
        family="bernoulli",
        numerator=0.5,
        seed=2,
        draws=600,
        tune=600,
        chains=2,
        progress=False,
    ).fit(binary)
    assert_converged(post)
    e = emee(binary, "~ 1", "~ time_var1 + time_var2", numerator=0.5)
    cc = crosscheck(e, post)
    row = cc.rows("BayesMRT").iloc[0]
    assert cc.rows("EMEE")["estimate"].iloc[0] == pytest.approx(0.3406, abs=1e-4)
    assert abs(row["difference_in_se"]) < 1 and not row["flag"]
    rd = post.effect_draws("risk_difference").mean().item()
    assert 0 < rd < 0.2
    tab = post.table(scale="risk_difference").set_index("term")
    assert tab.loc["Intercept", "estimate"] == pytest.approx(rd)
    assert post.table().loc[0, "estimate"] == pytest.approx(post.effect_draws().mean().item())
    assert "log relative-risk" in post.summary().notes[0]


@pytest.mark.parametrize("endogenous", [True, False])
def test_crosscheck_flags_endogenous_moderator(endogenous):
    """Qian, Klasnja & Murphy (2020): when the moderator S feeds back each participant's own
    response, the random-slope model's (conditional) S coefficient differs from the marginal
    excursion effect that WCLS targets; the cross-check must flag it, and stay quiet otherwise."""
    sim = MRTSimulation(
        n_participants=60, n_decisions=100, sd_slope=1.0, s_outcome=0.4, slope_feedback=endogenous
    )
    data = sim.mrt_data(seed=3)
    post = BayesMRT("~ tfrac + S", "~ tfrac + S", random_slope=True, seed=1, **FAST).fit(data)
    tab = crosscheck(wcls(data, "~ tfrac + S", "~ tfrac + S"), post).rows("BayesMRT")
    if endogenous:
        assert tab.loc["S", "flag"] and abs(tab.loc["S", "difference_in_se"]) > 2
    else:
        assert not tab["flag"].any()


# ------------------------------------------------------------------ bad input (no sampling)
def _tiny(cluster_values=None, y=None):
    rng = np.random.default_rng(0)
    n, T = 8, 6
    df = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), T),
            "t": np.tile(np.arange(T), n),
            "A": rng.integers(0, 2, n * T),
            "y": rng.normal(size=n * T) if y is None else y,
            "x": rng.normal(size=n * T),
        }
    )
    kw = {}
    if cluster_values is not None:
        df["clinic"] = cluster_values
        kw["cluster"] = "clinic"
    return MRTData(df, id="id", time="t", treatment="A", outcome="y", prob=0.5, **kw)


def test_model_term_not_in_data():
    with pytest.raises(MissingColumnError, match="'nope'"):
        BayesMRT("~ nope").build(_tiny())


def test_single_cluster_is_refused():
    with pytest.raises(DesignError, match="single cluster"):
        BayesMRT("~ 1").build(_tiny(cluster_values="c1"))


def test_binary_model_on_non_binary_outcome():
    with pytest.raises(OutcomeTypeError, match="'y'"):
        BayesMRT("~ 1", family="bernoulli").build(_tiny())


@pytest.mark.parametrize(
    ("priors", "match"),
    [
        ({"betta": {"dist": "normal", "mu": 0, "sigma": 1}}, "betta"),
        ({"beta": {"dist": "normal", "mu": 0, "sigma": -1}}, "sigma"),
        ({"sd_b": {"dist": "normal", "mu": 0, "sigma": 1}}, "sd_b"),
        ({"beta": {"dist": "cauchy", "alpha": 0}}, "cauchy"),
        ({"beta": {"dist": "normal", "mu": 0}}, "beta"),
    ],
)
def test_invalid_priors_name_the_key(priors, match):
    with pytest.raises(PriorError, match=match) as err:
        BayesMRT("~ 1", priors=priors).build(_tiny())
    assert err.value.key == next(iter(priors))


def test_prior_override_and_prior_predictive():
    m = BayesMRT("~ 1", priors={"beta": {"dist": "normal", "mu": 0.0, "sigma": 0.1}}, seed=1)
    built = m.build(_tiny())
    assert built.priors["beta"]["sigma"] == 0.1
    pp = m.prior_predictive(_tiny(), draws=50)
    assert pp["y"].shape == (50, 48) and float(pp["beta"].std()) < 0.2
    np.testing.assert_array_equal(pp["y"], m.prior_predictive(_tiny(), draws=50)["y"])


def test_formulas_come_from_the_constructor_or_the_estimand():
    with pytest.raises(DesignError, match="moderators"):
        BayesMRT().build(_tiny())
    with pytest.raises(DesignError, match="disagrees"):
        BayesMRT("~ x").build(_tiny(), estimand=ExcursionEffect("~ 1"))
    with pytest.raises(DesignError, match="lag"):
        BayesMRT(lag=1).build(_tiny(), estimand=ExcursionEffect("~ 1"))
    # the same formula spelled differently agrees
    built = BayesMRT("~x", "~ 1").build(_tiny(), estimand=ExcursionEffect("~ x"))
    assert built.config["moderators"] == "~ x" and built.design.effect_names == ["Intercept", "x"]


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"draws": 0}, "draws"),
        ({"tune": 0}, "tune"),
        ({"chains": 2.5}, "chains"),
        ({"chains": True}, "chains"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"seed": -1}, "seed"),
        ({"target_accept": 1.5}, "target_accept"),
        ({"progress": "yes"}, "progress"),
        ({"sampler": "stan"}, "sampler"),
    ],
)
def test_bad_sampler_settings_name_the_argument(kw, name):
    with pytest.raises(DesignError, match=name):
        BayesMRT("~ 1", **kw)


def test_config_round_trip():
    m = BayesMRT("~ x", "~ 1", draws=10, tune=20, chains=1, seed=3, n_jobs=1, progress=False)
    cfg = m.config()
    assert BayesMRT.from_config(cfg) == m
    assert {"draws", "tune", "chains", "target_accept", "n_jobs", "progress", "seed"} <= set(cfg)


def test_divergences_are_reported_in_plain_words():
    assert issubclass(ConvergenceWarning, UserWarning)
    msgs = BayesResult._messages(
        {
            "divergences": 12,
            "chains": 4,
            "max_r_hat": 1.0,
            "min_ess_bulk": 1000.0,
            "total_draws": 4000,
            "bfmi": [1.0],
        }
    )
    assert len(msgs) == 1 and "12 divergent transitions" in msgs[0] and "target_accept" in msgs[0]


def test_categorical_treatment_has_one_block_per_level():
    from hte_mrt.data.datasets import heartsteps as hs

    data = hs(categorical=True)
    post = BayesMRT("~ 1", CONTROL, seed=4, **FAST).fit(data)
    w = wcls(data, "~ 1", CONTROL)
    tab = crosscheck(
        w,
        post,
        lincombs={"walking - sedentary": {"walking:Intercept": 1, "sedentary:Intercept": -1}},
    ).rows("BayesMRT")
    assert list(tab.index[:2]) == ["walking:Intercept", "sedentary:Intercept"]
    assert (tab["difference_in_se"].abs() < 1).all()


@pytest.mark.filterwarnings("ignore::hte_mrt.errors.ConvergenceWarning")
def test_penalized_spline_effect_over_time():
    """bs() moderators get a random-walk prior with learned smoothness; on data whose effect is
    linear in time the smooth posterior curve tracks the truth."""
    sim = MRTSimulation(n_participants=50, n_decisions=80, endogenous=False, beta=(0.5, -0.6, 0.0))
    data = sim.mrt_data(seed=8)
    # The truth is linear, so the smoothness scale's posterior piles up near 0 and its R-hat is
    # noisy (1.005-1.013 across seeds at ESS ~800; beta R-hat <= 1.004): the 1.01 warning is
    # not an error here, the convergence check is sized to the draws (conftest.rhat_limit).
    post = BayesMRT(
        "~ bs(tfrac, df=6)", "~ S", seed=3, draws=1000, tune=1000, chains=4, progress=False
    ).fit(data)
    assert_converged(post)
    assert "smooth_sd" in post.posterior
    grid = pd.DataFrame({"tfrac": np.linspace(0.05, 0.95, 10)})
    curve = post.effect_curve_summary(grid)
    truth = 0.5 - 0.6 * grid["tfrac"].to_numpy()
    inside = (curve["lcl"] <= truth) & (truth <= curve["ucl"])
    assert inside.mean() >= 0.8
    assert np.corrcoef(curve["estimate"], truth)[0, 1] > 0.8


def test_collinear_terms_are_named(heartsteps):
    with pytest.raises(DesignError, match="tfrac"):
        BayesMRT("~ bs(tfrac, df=6)", "~ tfrac + S").build(
            MRTSimulation(n_participants=12, n_decisions=20).mrt_data(seed=1)
        )


def test_rowlevel_and_collapsed_agree_on_small_data():
    sim = MRTSimulation(n_participants=14, n_decisions=15, endogenous=False, sd_participant=0.6)
    data = sim.mrt_data(seed=21)
    kw = dict(draws=1500, tune=1000, chains=2, progress=False, seed=9)
    a = BayesMRT("~ S", "~ S", **kw).fit(data)
    b = BayesMRT("~ S", "~ S", method="rowlevel", **kw).fit(data)
    ma, sa = a.posterior["beta"].mean(("chain", "draw")), a.posterior["beta"].std(("chain", "draw"))
    mb, sb = b.posterior["beta"].mean(("chain", "draw")), b.posterior["beta"].std(("chain", "draw"))
    # MC error of each mean ~ sd / sqrt(ESS ~ 800): the difference's MC sd ~ 0.05 sd
    assert float(np.max(np.abs(ma - mb) / sa)) < 0.15
    assert float(np.max(np.abs(sb / sa - 1))) < 0.12


def test_plots_render(tmp_path, heartsteps, hs_day):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = pd.DataFrame({"study_day_nogap": np.arange(0.0, 42.0, 2.0)})
    ax = hs_day.plot_effect_curve(grid, wcls=wcls(heartsteps, "~ study_day_nogap", CONTROL))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["posterior", "WCLS"]
    ax.figure.savefig(tmp_path / "curve.png")
    ax2 = hs_day.plot_participants()
    assert len(ax2.get_yticks()) == 37
    ax2.figure.savefig(tmp_path / "participants.png")
    plt.close("all")
    assert (tmp_path / "curve.png").stat().st_size > 5000


# --------------------------------------------------------- participant-level draws or summaries


@pytest.fixture(scope="module")
def clustered():
    sim = MRTSimulation(
        n_participants=60, n_decisions=30, n_clusters=6, sd_cluster=0.5, sd_slope=0.3
    )
    return sim.mrt_data(seed=3)


def _pd_model(participant_draws):
    return BayesMRT(
        "~ 1", "~ S", random_slope=True, draws=300, tune=500, chains=4, progress=False, seed=5,
        participant_draws=participant_draws,
    )  # fmt: skip


# these test the post-processing of the draws, not the sampler: a chance R-hat of 1.011 is noise
@pytest.mark.filterwarnings("ignore::hte_mrt.errors.ConvergenceWarning")
def test_participant_summaries_match_kept_draws(clustered, monkeypatch, tmp_path):
    """participant_draws=False keeps exact summaries of the same conditional draws: in one block
    the same numbers as the kept draws; in blocks of 7 participants (other random numbers) the
    same posterior within Monte Carlo error; intervals at the kept levels only."""
    from hte_mrt.estimators.bayes import posterior

    full = _pd_model(True).fit(clustered)
    monkeypatch.setattr(posterior, "_SUMMARY_CHUNK", 4 * 1200 * 60)  # one block
    one = _pd_model(False).fit(clustered)
    monkeypatch.undo()
    assert {"b", "u", "participant_effect"} <= set(full.posterior.data_vars)
    assert not {"b", "u", "participant_effect"} & set(one.posterior.data_vars)
    assert "c" in one.posterior and "participant_summary" in one.idata.children
    pf, p1 = full.participant_effects(), one.participant_effects()
    pd.testing.assert_frame_equal(pf, p1)  # c drawn in one chunk, units in one block
    assert one.table().equals(full.table())
    # blocks of 7 participants (and draws of c in chunks): new random numbers
    monkeypatch.setattr(posterior, "_SUMMARY_CHUNK", 4 * 7 * 1200)
    blk = _pd_model(False).fit(clustered).participant_effects()
    mcse = pf["se"] / np.sqrt(1200)  # the theta draws are shared: an upper bound
    assert (np.abs(blk["estimate"] - pf["estimate"]) < 5 * np.sqrt(2) * mcse).all()
    assert np.allclose(blk["se"], pf["se"], rtol=0.15)
    assert not np.array_equal(blk["estimate"], pf["estimate"])
    # the blocks' generators are spawned in block order: threads change nothing
    monkeypatch.setattr(posterior, "_summary_threads", lambda: 1)
    serial = _pd_model(False).fit(clustered)
    monkeypatch.setattr(posterior, "_summary_threads", lambda: 3)
    threaded = _pd_model(False).fit(clustered)
    pd.testing.assert_frame_equal(serial.participant_effects(), threaded.participant_effects())
    np.testing.assert_array_equal(serial.posterior["c"], threaded.posterior["c"])
    # other levels
    for level in (0.5, 0.8, 0.9, 0.99):
        np.testing.assert_allclose(
            one.participant_effects(level)[["lcl", "ucl"]],
            full.participant_effects(level)[["lcl", "ucl"]],
        )
    with pytest.raises(DesignError, match=r"conf_level=0.97.*participant_draws=True"):
        one.participant_effects(0.97)
    # saved and loaded with its summaries; plotted from them
    back = BayesResult.from_netcdf(one.to_netcdf(tmp_path / "summ.nc"))
    pd.testing.assert_frame_equal(back.participant_effects(), p1)
    assert back.config["participant_draws"] is False
    ax = back.plot_participants()
    assert len(ax.lines) + len(ax.collections) > 0


@pytest.mark.filterwarnings("ignore::hte_mrt.errors.ConvergenceWarning")
def test_participant_draws_default_depends_on_size(clustered, monkeypatch):
    from hte_mrt.estimators.bayes import posterior

    assert "participant_effect" in _pd_model(None).fit(clustered).posterior  # 1200 x 60 draws
    monkeypatch.setattr(posterior, "PARTICIPANT_DRAWS_MAX", 1200 * 60 - 1)
    res = _pd_model(None).fit(clustered)
    assert "participant_effect" not in res.posterior
    assert res.participant_effects().shape == (60, 6)


def test_participant_draws_bad_values():
    with pytest.raises(DesignError, match="participant_draws must be True or False"):
        BayesMRT("~ 1", participant_draws="no")
    with pytest.raises(DesignError, match="participant_draws=False needs the collapsed"):
        BayesMRT("~ 1", family="bernoulli", participant_draws=False)
    with pytest.raises(DesignError, match="participant_draws=False needs the collapsed"):
        BayesMRT("~ 1", method="rowlevel", participant_draws=False)


def test_crosscheck_forest_plot():
    """CrossCheck.plot: one interval per term and result, flagged terms starred."""
    import matplotlib.pyplot as plt

    sim = MRTSimulation(
        n_participants=60, n_decisions=100, sd_slope=1.0, s_outcome=0.4, slope_feedback=True
    )
    data = sim.mrt_data(seed=3)
    post = BayesMRT("~ tfrac + S", "~ tfrac + S", random_slope=True, seed=1, **FAST).fit(data)
    cc = crosscheck(
        wcls(data, "~ tfrac + S", "~ tfrac + S"), post, lincombs={"S + tfrac": {"S": 1, "tfrac": 1}}
    )
    ax = cc.plot(conf_level=0.9)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    terms = ["Intercept", "tfrac", "S", "S + tfrac"]
    assert labels == [t + (" *" if t in cc.flagged else "") for t in terms]
    assert "S *" in labels  # the endogenous moderator (see the test above)
    bars = [c for c in ax.containers if hasattr(c, "lines")]
    assert len(bars) == 2  # WCLS, BayesMRT
    # the drawn intervals are the table's at conf_level 0.9
    tab = cc.table(0.9)
    first = tab[tab["estimator"] == cc.labels[0]]
    seg = bars[0].lines[2][0].get_segments()
    np.testing.assert_allclose([s[0][0] for s in seg], first["lcl"])
    np.testing.assert_allclose([s[1][0] for s in seg], first["ucl"])
    with pytest.raises(DesignError, match="ax must be a matplotlib Axes"):
        cc.plot(ax="left")
    plt.close("all")


@pytest.mark.parametrize("rows", [10**9, 1000, 7])
def test_blockwise_rank_check_names_the_same_terms(monkeypatch, rows):
    """The rank check on tall designs stacks the R factors of row blocks (no design-sized QR
    workspace): any block size names the same collinear term and passes full-rank designs."""
    from scipy.linalg import qr

    import hte_mrt.estimands.excursion as exc

    monkeypatch.setattr(exc, "_QR_ROWS", rows)
    rng = np.random.default_rng(0)
    n = 5000
    x, z, w = rng.normal(size=(3, n))
    M = np.column_stack([np.ones(n), x, z, x + 2 * z, w])
    names = ["1", "x", "z", "x + 2z", "w"]
    # the full matrix's own pivoted QR: the term it drops
    Ms = M / np.sqrt((M**2).mean(axis=0))
    piv = qr(Ms, mode="economic", pivoting=True)[2]
    dropped = names[piv[-1]]
    with pytest.raises(DesignError, match=re.escape(f"['{dropped}'] can be written")):
        exc._check_rank(M, names, "control")
    exc._check_rank(M[:, [0, 1, 2, 4]], ["1", "x", "z", "w"], "control")  # full rank
    # collinear within the first 3000 rows only: full rank, whatever the blocks
    part = np.where(np.arange(n) < 3000, x, w)
    exc._check_rank(np.column_stack([np.ones(n), x, part]), ["1", "x", "part"], "control")
    with pytest.raises(DesignError, match=r"\['zero'\]"):
        exc._check_rank(np.column_stack([np.ones(n), x, 0 * x]), ["1", "x", "zero"], "control")


def test_release_arrow_memory_is_safe_without_and_with_pyarrow(monkeypatch):
    import sys

    from hte_mrt._util import release_arrow_memory

    pa = pytest.importorskip("pyarrow")
    calls = []
    pool = pa.default_memory_pool()

    class Pool:
        def release_unused(self):
            calls.append(1)
            pool.release_unused()

    monkeypatch.setattr(pa, "default_memory_pool", lambda: Pool())
    release_arrow_memory()
    assert calls == [1]
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # never imported: a no-op
    release_arrow_memory()
    assert calls == [1]
