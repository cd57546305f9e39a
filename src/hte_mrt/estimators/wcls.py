"""Weighted and centred least squares (Boruvka et al. 2018), as MRTAnalysis computes it.

On available rows, with x_it = [g_it ; (1[A_it = k] - pt_itk) f_it for k >= 1] and weights
W_it = pt_{A_it} / p_{A_it}, theta = (alpha, beta) solves sum_i X_i' W_i (y_i - X_i theta) = 0.
beta_k estimates the causal excursion effect f(s)' beta_k = E[Y(k) - Y(0) | S = s, I = 1].

Variance: sandwich B^-1 (sum_i e_i e_i') B^-1 with B = sum_i X_i' W_i X_i, e_i = X_i' W_i r_i, and
by default (n <= 50 participants) the Mancl-DeRouen correction r_i -> (I - H_ii)^-1 r_i,
H_ii = X_i B^-1 X_i' W_i, computed exactly in O(n d^3) (see :mod:`.sandwich`).
Inference: t with df = n - dim(theta), n = participants with an available decision point.
"""

from __future__ import annotations

from typing import Literal

from hte_mrt.data.schema import MRTData
from hte_mrt.estimands.excursion import Design, ExcursionEffect, NumeratorSpec, build_design
from hte_mrt.estimators.sandwich import group_crossprod, group_starts, wls_sandwich
from hte_mrt.results.frequentist import ExcursionResult

SMALL_SAMPLE_THRESHOLD = 50


def resolve_small_sample(small_sample: bool | Literal["auto"], n: int) -> bool:
    """``"auto"``: correct when n <= 50 participants (MRTAnalysis' rule)."""
    if small_sample == "auto":
        return n <= SMALL_SAMPLE_THRESHOLD
    return bool(small_sample)


def wcls(
    data: MRTData,
    moderators: str = "~ 1",
    controls: str = "~ 1",
    *,
    numerator: NumeratorSpec = None,
    lag: int = 0,
    small_sample: bool | Literal["auto"] = "auto",
    conf_level: float = 0.95,
    estimand: ExcursionEffect | None = None,
) -> ExcursionResult:
    """Estimate a (moderated, lagged) causal excursion effect of a continuous outcome by WCLS.

    Parameters
    ----------
    data
        A validated :class:`~hte_mrt.data.MRTData`.
    moderators, controls
        Formulas of f(S) and of the control terms (moderator main effects are added to the
        controls automatically).
    numerator
        Numerator probability pt (see :class:`ExcursionEffect`); default: the stated probability
        when it is constant. MRTAnalysis' default of 0.5 is *not* copied.
    lag
        Outcome ``lag`` decision points after the treatment.
    small_sample
        Mancl-DeRouen correction: ``"auto"`` (n <= 50), ``True`` or ``False``.
    conf_level
        Level of the reported confidence intervals.
    estimand
        Alternatively, a ready :class:`ExcursionEffect` (overrides the four arguments above).

    Returns
    -------
    ExcursionResult
        ``table()``, ``summary()``, ``conf_int()``, ``lincomb()``, ``joint_test()``,
        ``effect_curve()``, ``control_fit()``.
    """
    est = estimand or ExcursionEffect(moderators, controls, lag, numerator)
    design = build_design(data, est)
    return fit_design(design, small_sample=small_sample, conf_level=conf_level, lag=est.lag)


def fit_design(
    design: Design,
    *,
    small_sample: bool | Literal["auto"] = "auto",
    conf_level: float = 0.95,
    lag: int = 0,
) -> ExcursionResult:
    """WCLS on a prepared :class:`Design` (reuse the design across refits)."""
    starts = group_starts(design.group)
    C, b = group_crossprod(design.X, design.W, design.y, starts)
    n = design.n_groups
    small = resolve_small_sample(small_sample, n)
    theta, cov = wls_sandwich(C, b, small)
    return ExcursionResult(
        method="WCLS",
        scale="difference",
        names_control=design.g_names,
        names_effect=design.effect_names,
        theta=theta,
        cov_theta=cov,
        df=n - design.dim,
        n=n,
        conf_level=conf_level,
        small_sample=small,
        design=design,
        info={"lag": lag},
    )
