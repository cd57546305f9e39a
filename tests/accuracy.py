"""Accuracy checks shared by the tests and by their test (tests/test_null_estimators.py).

Every check that compares an estimate with an external reference (MRTAnalysis, MRT-SS, a
publication, an independent implementation) or with simulation truth goes through one of the
functions below, so that the same function can be pointed at a null estimator (tau = 0,
beta = 0) and at a sign-flipped one, and shown to FAIL there (tests/test_null_estimators.py).

A tolerance is always the caller's, with its derivation stated where it is chosen (the
quantity's scale and its Monte Carlo error, or the reference's printed precision). The checks
against a non-zero truth also insist that the tolerance is smaller than the truth itself
(:func:`assert_recovers`): a window wider than the effect would let an estimator that finds no
effect pass.

The reference values used in more than one place live here as constants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

# --------------------------------------------------------------------------- references
#: MRTAnalysis 0.3.1, ``wcls(data_mimicHeartSteps, id = "userid", outcome = "logstep_30min",
#: treatment = "intervention", rand_prob = 0.6, moderator_formula = ~1, control_formula =
#: ~logstep_pre30min, availability = "avail", numerator_prob = 0.5)``, ``summary()``; printed
#: to 10 significant digits, so rel = 1e-8 is the printed precision.
MRTANALYSIS_WCLS = {
    "estimate": 0.1574473195,
    "se": 0.06221929607,
    "lcl": 0.03100249667,
    "ucl": 0.2838921423,
    "p": 0.0161861221,
}
#: the same without the small-sample correction (``summary(fit, show_small_sample = FALSE)``)
MRTANALYSIS_WCLS_PLAIN = {"estimate": 0.1574473195, "se": 0.06051676393}
#: MRTAnalysis 0.3.1 ``emee(data_binary, ..., moderator_formula = ~1, control_formula =
#: ~time_var1 + time_var2, numerator_prob = 0.5)``; printed to 10 digits: rel = 1e-7
MRTANALYSIS_EMEE = {"estimate": 0.3405625707, "se": 0.05001931531, "t": 6.808621202}
#: Qian et al. 2022 (Psychological Methods), HeartSteps V1 primary analysis, printed to 5
#: decimals (p to 4): abs = 5e-6 (5e-5) is half a unit of the last printed digit
HEARTSTEPS_PUBLISHED = {
    "estimate": 0.13120,
    "se": 0.06739,
    "lcl": -0.00576,
    "ucl": 0.26815,
}
HEARTSTEPS_PUBLISHED_P = 0.0599
#: the same analysis moderated by study day: 0.5074 - 0.0185 day (4 decimals: abs = 5e-5)
HEARTSTEPS_DAY_PUBLISHED = {"Intercept": 0.5074, "study_day_nogap": -0.0185}
#: TASSH (Ogedegbe et al. 2018): adjusted difference in 12-month SBP change, mmHg, 95% CI
TASSH_PUBLISHED = {"estimate": -3.6, "lcl": -6.1, "ucl": -0.5}
#: MRT-SS (Liao et al. 2016) example: N = 46, power at 46 and 45 (printed to 6 decimals)
MRT_SS_EXAMPLE = {"n": 46, "power_at_n": 0.803257, "power_at_n_minus_1": 0.792521}


# --------------------------------------------------------------------------- point checks
def assert_matches_reference(
    got: Mapping, ref: Mapping, *, rel: float | None = None, abs: float | None = None
) -> None:
    """Every key of ``ref`` agrees with ``got`` to ``rel`` / ``abs`` (the reference's precision).

    ``got`` is a mapping or a pandas row. The references here are printed to far more digits
    than any effect's distance from 0, so a null or sign-flipped estimate cannot pass."""
    for key, want in ref.items():
        have = float(got[key])
        tol = max(rel * _abs(want) if rel is not None else 0.0, abs or 0.0)
        assert _abs(have - want) <= tol, (
            f"{key}: {have!r} differs from the reference {want!r} by "
            f"{_abs(have - want):.3g} > {tol:.3g}"
        )


def _abs(x: float) -> float:
    return x if x >= 0 else -x


def assert_recovers(estimate: float, truth: float, tol: float, what: str = "estimate") -> None:
    """``|estimate - truth| < tol`` with ``tol < |truth|``.

    The second condition is what makes the check a test: with a window as wide as the effect,
    an estimator that returns 0 (or a slightly shrunk -truth) would pass. ``truth == 0`` (a
    null truth, |truth| <= 1e-12) skips it."""
    estimate, truth = float(estimate), float(truth)
    if _abs(truth) > 1e-12:  # a truth of 0 up to rounding (e.g. a projection's -3e-15) is 0
        assert tol < _abs(truth), (
            f"{what}: tolerance {tol:.3g} is not below |truth| = {_abs(truth):.3g}: "
            "an estimator that finds no effect would pass"
        )
    err = estimate - truth
    assert math.isfinite(err) and _abs(err) < tol, (
        f"{what}: {estimate:.4g} vs truth {truth:.4g}: error {err:.3g} outside +-{tol:.3g}"
    )


def assert_same_sign_and_significant(lcl: float, ucl: float, truth_sign: int, what: str) -> None:
    """The interval excludes 0 on the side of the truth (a published effect whose CI excludes
    0, or a simulated effect many SEs from 0)."""
    if truth_sign > 0:
        assert lcl > 0, f"{what}: interval ({lcl:.4g}, {ucl:.4g}) does not lie above 0"
    else:
        assert ucl < 0, f"{what}: interval ({lcl:.4g}, {ucl:.4g}) does not lie below 0"


def assert_covers(lcl: float, ucl: float, truth: float, what: str = "interval") -> None:
    """``lcl <= truth <= ucl`` (use together with a point check: a wide interval around 0 covers
    anything)."""
    assert lcl <= truth <= ucl, f"{what}: ({lcl:.4g}, {ucl:.4g}) does not cover {truth:.4g}"


def assert_tracks(estimate, truth, min_corr: float, what: str = "CATE") -> None:
    """Pearson correlation of estimated and true individual effects above ``min_corr`` > 0.

    A constant estimate (the null estimator) has no correlation (NaN) and fails; a sign-flipped
    one has the negative correlation and fails."""
    estimate, truth = np.asarray(estimate, float), np.asarray(truth, float)
    assert min_corr > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(estimate, truth)[0, 1] if np.std(estimate) > 0 else np.nan
    assert np.isfinite(corr) and corr > min_corr, (
        f"{what}: correlation with the truth {corr:.3f}, want > {min_corr}"
    )


def assert_within_se(estimate: float, reference: float, se: float, k: float, what: str) -> None:
    """``|estimate - reference| < k se`` with ``k se < |reference|`` (see assert_recovers)."""
    assert_recovers(estimate, reference, k * se, what)


# --------------------------------------------------------------------------- simulation checks
def assert_unbiased(estimates, truth, n_mcse: float = 3.0, what: str = "estimate") -> None:
    """Mean over R replicates within ``n_mcse`` Monte Carlo SEs (empirical sd / sqrt(R)) of the
    truth, per column; for a non-zero truth the window must also be narrower than the truth."""
    est = np.atleast_2d(np.asarray(estimates, float).T).T
    truth = np.broadcast_to(np.asarray(truth, float), est.shape[1:])
    mcse = est.std(0, ddof=1) / np.sqrt(est.shape[0])
    for j in range(est.shape[1]):
        assert_recovers(est[:, j].mean(), truth[j], n_mcse * mcse[j] + 1e-12, f"{what}[{j}] mean")


def mc_sd(rate: float, n: int) -> float:
    """Monte Carlo sd of a rejection / coverage rate estimated from n replicates."""
    return math.sqrt(rate * (1 - rate) / n)


def assert_rate(hits, nominal: float, n_sd: float = 3.0, what: str = "rate") -> None:
    """The share of hits (rejections, covered truths) is within ``n_sd`` Monte Carlo sds of the
    nominal rate, on BOTH sides: a test that never rejects, or an interval that always covers,
    is as wrong as one that rejects too often."""
    hits = np.asarray(hits, bool)
    rate, tol = hits.mean(), n_sd * mc_sd(nominal, hits.size)
    assert _abs(rate - nominal) <= tol, (
        f"{what} {rate:.4f} over {hits.size} replicates: nominal {nominal} +- {tol:.4f}"
    )


def assert_power_at_least(reject, min_power: float, what: str = "power") -> None:
    """The rejection rate under an alternative is at least ``min_power``, which the caller sets
    3 Monte Carlo sds below the power it expects."""
    rate = np.asarray(reject, bool).mean()
    assert rate >= min_power, f"{what} {rate:.3f}, want >= {min_power:.3f}"


def assert_power_matches(power: float, reference: float, mc_se: float, n_sd: float = 3.0,
                         what: str = "power") -> None:  # fmt: skip
    """A simulated power within ``n_sd`` Monte Carlo SEs of an analytic reference."""
    assert _abs(power - reference) <= n_sd * mc_se, (
        f"{what} {power:.4f} vs reference {reference:.4f}: more than {n_sd} x {mc_se:.4f} apart"
    )


def assert_agrees_with_reference(cc, estimator: str, k: float) -> None:
    """Every row of ``estimator`` in a cross-check ``cc`` (hte_mrt.crosscheck) lies within
    ``k`` reference SEs of the reference result's estimate (e.g. WCLS, consistent for the
    marginal excursion effect), with ``k`` SE below |reference estimate| (assert_recovers): a
    posterior or bootstrap centred on 0, or on minus the effect, fails."""
    ref, other = cc.rows(cc.reference), cc.rows(estimator)
    for term in other.index:
        assert_within_se(
            other.loc[term, "estimate"],
            ref.loc[term, "estimate"],
            ref.loc[term, "se"],
            k,
            f"{estimator} {term} vs {cc.reference}",
        )
