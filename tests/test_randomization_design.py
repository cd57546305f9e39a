"""Randomization schedules (RandomizationDesign) and audits of delivered randomization."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from hte_mrt.design import Curve, RandomizationDesign, audit
from hte_mrt.errors import DesignError, MissingColumnError


def _log_with_deviant(seed: int, availability: float | None = None) -> pd.DataFrame:
    """40 participants x 210 decision points at p = 0.6; participant 7 delivered at p = 0.8."""
    design = RandomizationDesign(days=42, per_day=5, probs=0.6, availability=availability)
    log = design.schedule(40, seed=seed)
    rows = log["participant"] == 7
    if "available" in log:
        rows &= log["available"] == 1
    rng = np.random.default_rng(10_000 + seed)
    log.loc[rows, "treatment"] = (rng.random(int(rows.sum())) < 0.8).astype(int)
    return log


def test_audit_flags_the_deviant_participant_only():
    design = RandomizationDesign(days=42, per_day=5, probs=0.6)
    raw05, n_null = 0, 0
    for seed in range(6):
        res = audit(_log_with_deviant(seed), design, alpha=0.01)
        bp = res.by_participant.set_index("participant")
        assert res.flagged_participants == [7], res.summary()
        assert bp.loc[7, "p_adjusted"] < 0.01
        assert bp.loc[7, "stated_rate"] == pytest.approx(0.6)
        assert res.flagged_blocks == []  # one deviant in 40 is diluted in the pooled blocks
        null = bp.drop(index=7)
        raw05 += int((null["p"] < 0.05).sum())
        n_null += len(null)
    # the unadjusted per-participant tests reject a true null at about their level (the exact
    # test is slightly conservative): 6 x 39 tests
    assert 0.01 <= raw05 / n_null <= 0.10
    flagged = res.summary().table
    assert flagged["participant"].tolist() == [7] and "level 1: observed" in str(res.summary())
    assert len(res.gaps) == len(res.duplicates) == len(res.invalid) == 0


def test_audit_with_availability_and_defects():
    design = RandomizationDesign(days=42, per_day=5, probs=0.6, availability=0.8)
    log = _log_with_deviant(3, availability=0.8)
    # defects: 2 treated while unavailable, 3 missing rows, 2 duplicated rows, 1 bad level
    unav = log.index[log["available"] == 0][[5, 50]]
    log.loc[unav, "treatment"] = 1
    missing = log.index[[10, 500, 8000]]
    gone = log.loc[missing, ["participant", "day", "decision"]]
    dup_src = log.index[[20, 4000]]
    bad = log.index[777]
    log.loc[bad, "treatment"] = 2
    bad_key = tuple(log.loc[bad, ["participant", "day", "decision"]])
    log = pd.concat([log.drop(index=missing), log.loc[dup_src]], ignore_index=True)
    res = audit(log, design, alpha=0.01)

    assert res.flagged_participants == [7]
    got = res.unavailable_treated[["participant", "day", "decision"]]
    want = log.loc[
        log["available"].eq(0) & log["treatment"].eq(1), ["participant", "day", "decision"]
    ]
    assert len(got) == 2
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    # the bad-level row is invalid, so its grid point is also reported missing
    gaps = {tuple(r) for r in res.gaps[["participant", "day", "decision"]].to_numpy()}
    assert gaps == {tuple(r) for r in gone.to_numpy()} | {bad_key}
    assert len(res.duplicates) == 4 and set(res.duplicates["copy"]) == {1, 2}
    assert len(res.invalid) == 1 and "not one of the levels" in res.invalid["reason"].iloc[0]
    flags = res.flags()
    counts = flags["check"].value_counts()
    assert counts["treated while unavailable"] == 2
    assert counts["missing decision point"] == 4
    assert counts["duplicated row"] == 4
    assert counts["invalid row"] == 1
    assert counts["probability (participant)"] == 1
    text = str(res.summary())
    for s in ("treatment delivered while unavailable: 2", "missing decision points: 4",
              "duplicated rows: 4", "invalid rows (not tested): 1"):  # fmt: skip
        assert s in text
    fig = res.plot()
    assert len(fig.axes) == 2


def test_audit_from_probability_column():
    # time-varying stated probability in the log itself (no design): Poisson-binomial tests
    design = RandomizationDesign(days=14, per_day=4, probs=Curve.linear(initial=0.3, mean=0.5))
    log = design.schedule(30, seed=8)
    res = audit(log, prob="prob_1", block_days=1)
    assert "inferred from the log" in res.grid and res.flagged_participants == []
    assert len(res.by_block) == 14 and res.by_block["flagged"].sum() == 0
    assert "no availability column" in str(res.summary())
    # the design and the log's stated column disagree on 3 rows
    log.loc[[1, 2, 3], ["prob_0", "prob_1"]] = [0.5, 0.5]
    res2 = audit(log, design, prob=["prob_0", "prob_1"])
    assert res2.prob_mismatch["row"].tolist() == [1, 2, 3]
    with pytest.raises(MissingColumnError, match="treatment"):
        audit(log.drop(columns="treatment"), design)


def test_schedule_reproducible_and_frequencies_match():
    levels = ("none", "walk", "breathe")
    design = RandomizationDesign(
        days=20,
        per_day=5,
        levels=levels,
        probs={
            "stressed": [0.2, 0.4, 0.4],
            "calm": lambda day, decision: [0.5, 0.25, 0.25] if day <= 10 else [0.7, 0.2, 0.1],
        },
        state_probs={"stressed": 0.3, "calm": 0.7},
        availability=0.9,
    )
    a = design.schedule(200, seed=1)
    pd.testing.assert_frame_equal(a, design.schedule(200, seed=1))
    assert not a["treatment"].equals(design.schedule(200, seed=2)["treatment"])
    assert list(a.columns) == ["participant", "day", "decision", "t", "state", "prob_none",
                               "prob_walk", "prob_breathe", "availability", "available",
                               "treatment"]  # fmt: skip
    assert len(a) == 200 * 100
    n = len(a)
    assert abs((a["state"] == "stressed").mean() - 0.3) < 4 * np.sqrt(0.21 / n)
    assert abs(a["available"].mean() - 0.9) < 4 * np.sqrt(0.09 / n)
    assert (a.loc[a["available"] == 0, "treatment"] == "none").all()
    av = a[a["available"] == 1]
    calm = av["state"] == "calm"
    cells = [
        ("stressed", av["state"] == "stressed", [0.2, 0.4, 0.4]),
        ("calm, days 1-10", calm & (av["day"] <= 10), [0.5, 0.25, 0.25]),
        ("calm, days 11-20", calm & (av["day"] > 10), [0.7, 0.2, 0.1]),
    ]
    for name, m, probs in cells:
        m_ = int(m.sum())
        for lev, p in zip(levels, probs, strict=True):
            freq = (av.loc[m, "treatment"] == lev).mean()
            assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / m_), (name, lev, freq, p)
    # the schedule itself passes its audit; multi-level: every level is tested. Holm keeps the
    # family-wise error at alpha = 0.05 over the 600 participant x level tests, so a valid
    # schedule is flagged with probability <= 0.05 (seed 42, e.g., flags one participant with
    # p = 1.5e-5, an honest ~1% event; seeds 0-9 flag nobody).
    res = audit(a, design)
    assert set(res.by_participant["level"]) == set(levels)
    assert res.flagged_participants == [] and res.flagged_blocks == []
    assert len(res.flags()) == 0 and res.ok


def test_table_and_csv(tmp_path):
    design = RandomizationDesign(days=3, per_day=2, probs=[0.5, 0.4, 0.3], availability=0.7)
    tab = design.table()
    assert tab["prob_1"].tolist() == [0.5, 0.5, 0.4, 0.4, 0.3, 0.3]
    assert np.allclose(tab["prob_0"] + tab["prob_1"], 1)
    out = design.to_csv(tmp_path / "schedule.csv", participants=["a", "b"], seed=1)
    back = pd.read_csv(tmp_path / "schedule.csv")
    assert len(back) == 12 and back["participant"].tolist()[:6] == ["a"] * 6
    assert back["treatment"].tolist() == out["treatment"].tolist()
    design.to_csv(tmp_path / "table.csv")
    assert len(pd.read_csv(tmp_path / "table.csv")) == 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"probs": 1.2}, "day 1, decision 1 .*outside \\[0, 1\\]"),
        ({"probs": [[0.5, 0.6]]}, "sum to 1.1"),
        (
            {"probs": {"a": 0.5, "b": lambda d, k: 0.5 if d < 2 else -0.1}},
            "state 'b', day 2, decision 1",
        ),
        ({"probs": 0.5, "levels": (0, 1, 2)}, "one probability per level"),
        ({"probs": [0.2, 0.3, 0.4], "levels": ("a", "b", "c")}, "sum to 0.9"),
        ({"probs": {"a": 0.5}, "state_probs": {"b": 1.0}}, "state_probs"),
        ({"probs": 0.5, "availability": 1.5}, "availability"),
        ({"probs": 0.5, "levels": (1, 1)}, "distinct"),
    ],
)
def test_design_validation(kwargs, match):
    with pytest.raises(DesignError, match=match):
        RandomizationDesign(days=3, per_day=2, **kwargs)


def test_audit_result_contract():
    from scipy import stats

    from hte_mrt._contract import Summary

    design = RandomizationDesign(days=14, per_day=5, probs=0.4)
    res = audit(design.schedule(20, seed=2), design)
    tab = res.table()
    assert len(tab) == 20 + 2 and set(tab["family"]) == {"participant", "block"}
    assert {"lcl", "ucl", "p", "p_adjusted", "flagged"} <= set(tab.columns)
    row = tab.iloc[0]
    ci = stats.binomtest(int(row["observed"]), int(row["n"])).proportion_ci(method="exact")
    assert (row["lcl"], row["ucl"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    ci90 = stats.binomtest(int(row["observed"]), int(row["n"])).proportion_ci(0.9, "exact")
    assert tuple(res.table(0.9).iloc[0][["lcl", "ucl"]]) == pytest.approx((ci90.low, ci90.high))
    s = res.summary()
    assert isinstance(s, Summary) and len(s.table) == 0 and "missing decision points: 0" in str(s)
    paper = res.table(style="paper")
    assert not paper.isna().any().any() and not (paper.astype(str) == "None").any().any()
    assert repr(res).startswith("<AuditResult:")
