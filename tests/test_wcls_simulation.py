"""WCLS recovers the known causal excursion effect of simulated MRTs (hte_mrt.data.simulate)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from hte_mrt import wcls
from hte_mrt.data.simulate import COLUMNS, MODERATORS, MRTSimulation
from tests.accuracy import assert_rate, assert_unbiased

# ------------------------------------------------------------------ simulator basics


def test_simulate_reproducible_and_documented_columns():
    sim = MRTSimulation(n_participants=12, n_decisions=25, sd_slope=0.3, ar=0.4)
    a, b = sim.simulate(123), sim.simulate(123)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["y"], sim.simulate(124)["y"])
    assert list(a.columns) == list(COLUMNS)
    assert len(a) == 12 * 25
    assert (a.groupby("id")["t"].apply(list) == [list(range(25))] * 12).all()
    # never treated while unavailable; A, avail binary
    assert set(a["A"].unique()) <= {0, 1} and set(a["avail"].unique()) <= {0, 1}
    assert (a.loc[a["avail"] == 0, "A"] == 0).all()
    # documented truth columns
    np.testing.assert_allclose(a["beta_true"], sim.true_effect(a["tfrac"], a["S"]))
    np.testing.assert_allclose(a["tau"] - a["beta_true"], a["u"] + a["v"])
    np.testing.assert_allclose(a["tfrac"], a["t"] / 25)
    assert sim.true_beta() == {"Intercept": 0.3, "tfrac": -0.2, "S": 0.15}
    # the MRTData wrapper validates
    data = sim.mrt_data(123)
    assert data.n_participants == 12


def test_state_dependent_policy_goes_to_prob_column():
    sim = MRTSimulation(
        n_participants=10, n_decisions=20, prob=lambda s, f, a_prev: 0.3 + 0.4 / (1 + np.exp(-s))
    )
    df = sim.simulate(5)
    assert df["prob"].between(0.3, 0.7).all() and df["prob"].std() > 0
    data = sim.mrt_data(5)
    np.testing.assert_allclose(data.probs[:, 1][data.available], df["prob"][df["avail"] == 1])


def _lag_regression(df: pd.DataFrame) -> tuple[float, float]:
    """OLS of S_t on A_{t-1} (t >= 1): slope and its standard error."""
    a_prev = df.groupby("id")["A"].shift(1)
    keep = a_prev.notna().to_numpy()
    x, y = a_prev.to_numpy()[keep], df["S"].to_numpy()[keep]
    X = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    cov = resid @ resid / (len(y) - 2) * np.linalg.inv(X.T @ X)
    return float(coef[1]), float(np.sqrt(cov[1, 1]))


def test_endogenous_state_depends_on_past_treatment():
    kw = {"n_participants": 200, "n_decisions": 100}
    slope, se = _lag_regression(MRTSimulation(endogenous=True, **kw).simulate(11))
    print(f"\nendogenous S_t on A_(t-1): slope {slope:.3f} (se {se:.3f})")
    assert slope > 0.2 and slope / se > 10
    slope0, se0 = _lag_regression(MRTSimulation(endogenous=False, **kw).simulate(11))
    print(f"exogenous  S_t on A_(t-1): slope {slope0:.3f} (se {se0:.3f})")
    assert abs(slope0) < 4 * se0  # no dependence beyond chance


# ------------------------------------------------------------------ WCLS simulation study

N_REP = 1000
STUDY = MRTSimulation(
    n_participants=30,
    n_decisions=60,
    prob=0.4,
    availability=0.8,
    availability_after_treatment=0.6,  # availability depends on past treatment
    endogenous=True,  # S_t depends on A_(t-1) and Y_t
    sd_participant=0.5,
    sd_slope=0.2,  # heterogeneous participant effects (mean zero)
    ar=0.3,  # autocorrelated residuals
)


@pytest.mark.slow
def test_wcls_unbiased_with_nominal_coverage():
    truth = STUDY.true_beta()
    terms = list(truth)
    t0 = time.perf_counter()
    est = np.empty((N_REP, 3))
    se = np.empty((N_REP, 3))
    cover = np.empty((N_REP, 3), dtype=bool)
    for r, data in enumerate(STUDY.replicates(N_REP, seed=20240607)):
        tab = wcls(data, MODERATORS, MODERATORS, numerator=0.4).table().set_index("term")
        tab = tab.loc[terms]
        est[r], se[r] = tab["estimate"], tab["se"]
        beta = np.array([truth[k] for k in terms])
        cover[r] = (tab["lcl"].to_numpy() <= beta) & (beta <= tab["ucl"].to_numpy())
    elapsed = time.perf_counter() - t0

    beta = np.array([truth[k] for k in terms])
    bias = est.mean(0) - beta
    emp_sd = est.std(0, ddof=1)
    mcse = emp_sd / np.sqrt(N_REP)
    coverage = cover.mean(0)
    se_ratio = se.mean(0) / emp_sd
    report = pd.DataFrame(
        {
            "truth": beta,
            "mean_est": est.mean(0),
            "bias": bias,
            "mcse": mcse,
            "bias/mcse": bias / mcse,
            "emp_sd": emp_sd,
            "mean_se": se.mean(0),
            "se_ratio": se_ratio,
            "coverage95": coverage,
        },
        index=terms,
    )
    print(
        f"\nWCLS '{MODERATORS}', {N_REP} trials x {STUDY.n_participants} participants x "
        f"{STUDY.n_decisions} decisions ({elapsed:.1f} s; coverage MC se "
        f"{np.sqrt(0.95 * 0.05 / N_REP):.4f})"
    )
    print(report.to_string(float_format=lambda v: f"{v:.4f}"))

    check_wcls_study(est, se, cover, beta)


def check_wcls_study(est, se, cover, beta) -> None:
    """The study's accuracy checks (also pointed at null estimators in
    tests/test_null_estimators.py), per effect term:

    * bias within 3 Monte Carlo SEs (empirical sd / sqrt(R)) of 0, a window far below each
      true coefficient (0.3, -0.2, 0.15), so beta = 0 or -beta fail;
    * 95% coverage within 3 MC sds, sqrt(0.95 * 0.05 / R) (0.021 at R = 1000), of 0.95 on
      both sides (an interval that always covers fails too);
    * mean SE within 10% of the empirical sd (the SE's MC error is ~2% at R = 1000).
    """
    est, se, cover = np.asarray(est), np.asarray(se), np.asarray(cover)
    assert_unbiased(est, beta, n_mcse=3, what="WCLS")
    for j in range(est.shape[1]):
        assert_rate(cover[:, j], 0.95, what=f"WCLS coverage[{j}]")
    se_ratio = se.mean(0) / est.std(0, ddof=1)
    assert np.all(np.abs(se_ratio - 1) < 0.10), se_ratio
