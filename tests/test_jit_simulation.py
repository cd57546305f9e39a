"""The JIT study simulator (Pieper, Fallon & Heinzl 2024): design facts and known effects."""

import numpy as np
import pytest

import hte_mrt as hm
from hte_mrt.data.simulate_jit import JITSimulation


@pytest.fixture(scope="module")
def trial():
    return JITSimulation().mrt_data(seed=1)


def test_design_counts_and_probabilities(trial):
    goal, social = trial.goal.frame, trial.social.frame
    # the paper's 1540 type-1 and 4620 type-2 decision points from 55 participants x 28 days
    assert (len(goal), len(social), trial.goal.n_participants) == (1540, 4620, 55)
    assert goal.groupby("id").size().eq(28).all() and social.groupby("id").size().eq(84).all()
    assert trial.goal.level_values == ["none", "subgoal", "overall"]
    np.testing.assert_allclose(trial.goal.probs[0], [1 / 3, 1 / 3, 1 / 3])
    # randomization among available rows: within 4 binomial SEs of 1/3 and 0.5
    av1 = goal[goal.avail == 1]
    for lev in ("none", "subgoal", "overall"):
        share = (av1.goal_feedback == lev).mean()
        assert abs(share - 1 / 3) < 4 * np.sqrt(2 / 9 / len(av1))
    av2 = social[social.avail == 1]
    assert abs(av2.social_feedback.mean() - 0.5) < 4 * np.sqrt(0.25 / len(av2))
    # availability about 0.8 before the weekly goal is reached (4 binomial SEs)
    before = social[social.goal_reached == 0]
    assert abs(before.avail.mean() - 0.8) < 4 * np.sqrt(0.16 / len(before))


def test_exclusion_rule_and_stage(trial):
    for f in (trial.goal.frame, trial.social.frame):
        # after full goal attainment: excluded (unavailable, untreated), stage 'end'
        done = f[f.goal_reached == 1]
        assert len(done) > 0 and done.avail.eq(0).all() and done.stage.eq("end").all()
        treat = "goal_feedback" if "goal_feedback" in f else "social_feedback"
        assert (done[treat].astype(str).isin(["none", "0"])).all()
        assert list(f.stage.cat.categories) == ["beginning", "middle", "end"]
        # the weekly goal resets: every week starts at the beginning stage
        first = f[f.day % 7 == 0]
        if "block" in f:
            first = first[first.block == 0]
        assert first.stage.eq("beginning").all() and first.goal_reached.eq(0).all()
    s = trial.social.frame
    # stage is endogenous: it follows cumulative activity within the week
    s = s.assign(week=s.day // 7)
    cum = s.groupby(["id", "week"])["pa"].cumsum() - s.pa
    goal = trial.participants.set_index("id").weekly_goal.reindex(s.id).to_numpy()
    share = cum.to_numpy() / goal
    code = np.where(share < 1 / 3, "beginning", np.where(share < 2 / 3, "middle", "end"))
    assert (code == s.stage.astype(str).to_numpy()).all()
    assert ((share >= 1) == s.goal_reached.astype(bool).to_numpy()).all()


def test_outcomes_are_skewed_minutes_within_the_window(trial):
    s = trial.social.frame
    assert s.social_use.between(0, 60).all() and trial.goal.frame.feedback_use.between(0, 60).all()
    np.testing.assert_allclose(s.social_use_log, np.log1p(s.social_use))
    assert 0.2 < (s.social_use == 0).mean() < 0.4  # p_no_use = 0.3 (4 SEs ~ 0.03)
    assert s.social_use.mean() > s.social_use.median()  # right-skewed
    p = trial.participants
    assert np.allclose(s.groupby("id").pa.sum(), p.total_pa)
    assert p.goal_weeks.between(0, 4).all()


def test_wcls_recovers_h1_to_h4():
    """A seeded trial of 2000 participants: WCLS by stage (saturated moderators) and overall,
    each within 4 of its standard errors of the known effect (the by-stage truth exact, the
    overall one a Monte Carlo average with an SE 30 times smaller than the estimate's)."""
    sim = JITSimulation(n_participants=2000)
    big = sim.mrt_data(seed=7)
    truth = sim.proximal_truth(n_participants=4000, seed=3)
    h4 = truth[truth.hypothesis == "H4"].set_index("stage").estimate
    fit = hm.wcls(big.social, moderators="~ 0 + stage", controls="~ stage").table()
    want = h4.reindex(["beginning", "middle", "end"]).to_numpy()
    assert np.all(np.abs(fit.estimate - want) < 4 * fit.se), fit
    h2 = truth[truth.hypothesis == "H2"]
    fit = hm.wcls(big.goal, moderators="~ 0 + stage", controls="~ stage").table()
    for _, row in fit.iterrows():
        lev, stage = row.term.split(":")
        stage = stage[len("stage[") : -1]
        want = h2[(h2.level == lev) & (h2.stage == stage)].estimate.item()
        assert abs(row.estimate - want) < 4 * row.se, row
    for hyp, data, levels in (("H3", big.social, ["social"]),
                              ("H1", big.goal, ["subgoal", "overall"])):  # fmt: skip
        fit = hm.wcls(data, moderators="~ 1", controls="~ stage").table()
        want = truth[truth.hypothesis == hyp].set_index("level").estimate[levels].to_numpy()
        assert np.all(np.abs(fit.estimate.to_numpy() - want) < 4 * fit.se.to_numpy()), fit
    # a null effect would be rejected: the truths are many SEs from 0
    assert np.all(np.abs(want) > 10 * fit.se.to_numpy())


def test_h5_truth_is_a_decomposition_and_reproducible():
    sim = JITSimulation()
    a = sim.distal_truth(n_participants=150, seed=2).set_index("effect")
    b = sim.distal_truth(n_participants=150, seed=2).set_index("effect")
    assert a.equals(b)
    # DCEE = NDEE + NIEE exactly (same potential outcomes), all positive here
    assert a.estimate["DCEE"] == pytest.approx(a.estimate["NDEE"] + a.estimate["NIEE"])
    assert (a.estimate > 4 * a.se).all()
    # without any path from social feedback to activity the distal effects vanish
    null = JITSimulation(pa_social=0.0, pa_direct=0.0).distal_truth(n_participants=50, seed=2)
    np.testing.assert_allclose(null.estimate, 0.0, atol=1e-9)
    # a goal message acts only directly when feedback-feature use does not move activity
    goal = JITSimulation(pa_feedback=0.0).distal_truth(n_participants=50, seed=2, decision="goal")
    goal = goal.set_index("effect").estimate
    assert goal["NIEE"] == pytest.approx(0.0, abs=1e-9) and goal["NDEE"] > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(prob_goal=(0.33, 0.33, 0.33)), "prob_goal.*sum to 1"),
        (dict(availability=1.5), "availability"),
        (dict(social_effect=(-0.9, 0.1, 0.1)), "social_effect.*negative"),
        (dict(use_noise=5.0), "log\\(61\\)"),
        (dict(goal_effect={"subgoal": (0.1, 0.1, 0.1)}), "goal_effect"),
        (dict(n_days=0), "n_days"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(hm.DesignError, match=match):
        JITSimulation(**kwargs)


def test_distal_truth_outcome_is_checked():
    with pytest.raises(hm.DesignError, match="outcome"):
        JITSimulation().distal_truth(outcome="steps")


def test_truth_table_lists_every_hypothesis():
    tab = JITSimulation().truth(n_participants=40, seed=1)
    assert sorted(tab.hypothesis.unique()) == ["H1", "H2", "H3", "H4", "H5"]
    assert list(tab.columns) == ["hypothesis", "decision", "outcome", "level", "stage", "effect",
                                 "estimate", "se"]  # fmt: skip
    h5 = tab[tab.hypothesis == "H5"]
    assert set(h5.effect) == {"DCEE", "NDEE", "NIEE"} and set(h5.decision) == {"social", "goal"}
